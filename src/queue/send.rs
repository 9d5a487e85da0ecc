//! Sending one notification file: render it, choose the gateways of its provider, and
//! hand the message to each in turn until one accepts it (failover). The gateways are
//! [`GatewayModule`]s: one of our own roles runs in-process, any other module in `gate/`
//! is a [`ProgramGateway`]. A channel that keeps its messages itself (the client area)
//! stores them through the claimed row's transaction instead ([`RowTx`]). Nothing here
//! knows which channel it sends on: what differs comes with the [`Channel`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::db::schema::{GatewayRow, InternalMessage};
use crate::gateway::{Attachment, GatewayError, GatewaySettings, OutgoingInput};
use crate::mail::attachments::AttachmentPolicy;
use crate::notice::{self, Notice};
use crate::queue::config::QueueConfig;
use crate::queue::stop;
use crate::root::MgrRoot;
use crate::template::Body;
use crate::xml::Params;

use crate::gateway::SharedGateway as Gateway;

/// What the queue sends on: a notification module (`modulename`, `notify_module`), the
/// `<user>` field that holds a user's address on it, what a message carries, and where
/// it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub role: String,
    pub contact_field: String,
    /// Messages carry an HTML version and a text version made from it when the
    /// template made HTML; otherwise the rendered text alone.
    pub html: bool,
    /// Messages carry the notice's attachments (email).
    pub attachments: bool,
    pub destination: Destination,
}

/// Where a channel's messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The role's active outgoing gateways of the notice's provider, in failover order.
    Gateways,
    /// mgrnotify's table of client-area messages (`InternalTable`, see
    /// [`crate::db::schema::insert_internal`]), written in the transaction that removes
    /// the row from the queue.
    Table,
}

impl From<crate::notify::Kind> for Channel {
    /// Email carries HTML and attachments; client-area messages carry HTML and go to
    /// mgrnotify's table; SMS is the text alone.
    fn from(kind: crate::notify::Kind) -> Self {
        use crate::notify::Kind;
        Self {
            role: kind.role().to_owned(),
            contact_field: kind.contact_field().to_owned(),
            html: kind != Kind::Sms,
            attachments: kind == Kind::Email,
            destination: match kind {
                Kind::Sms | Kind::Email => Destination::Gateways,
                Kind::Internal => Destination::Table,
            },
        }
    }
}

/// The claimed row's transaction, as sending needs it.
pub trait RowTx {
    /// A user's fields by id from BILLmanager's user table.
    fn user_fields(&mut self, id: &str) -> Option<Params>;
    /// Stores the messages of the row in `table`, all or none; they are kept only when
    /// the row's delete commits.
    fn store(&mut self, table: &str, messages: &[InternalMessage]) -> Result<(), String>;
}

/// Sends notification files through the gateways of one notification module.
pub struct Courier {
    root: MgrRoot,
    files: notice::QueuedFiles,
    channel: Channel,
    /// Active outgoing gateways of the role, in failover order.
    gateways: Vec<Route>,
    /// Where attachments may come from (channels that carry them).
    attachments: AttachmentPolicy,
    /// The table a [`Destination::Table`] channel stores in.
    internal_table: String,
    timeout: Duration,
    max_file_size: u64,
    own_exe: Option<PathBuf>,
    /// Each gateway module, opened once per run.
    modules: Mutex<HashMap<String, Result<Gateway, GatewayError>>>,
}

/// Why a notification was not sent, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub kind: SendErrorKind,
    /// The reason an operator reads in err_info (not yet redacted: that happens where
    /// it is written).
    pub msg: String,
    /// The gateway module tried last; empty when none was.
    pub gateway: String,
}

/// What kind of failure a [`SendError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendErrorKind {
    /// The queue row or its notification file is missing, refused or unparsable.
    BadFile,
    /// The user has no address for the channel.
    NoContact,
    /// No usable gateway for the notice's provider.
    NoGateway,
    /// The template cannot be rendered.
    Template,
    /// An attachment is missing or refused: the message never goes without it.
    Attachment,
    /// Every gateway refused for good (see [`GatewayError::permanent`]).
    Refused,
    /// At least one gateway failed in a way that may pass (a timeout, a 5xx, a refused
    /// connection, the run stopping).
    Transient,
}

impl SendError {
    fn new(kind: SendErrorKind, msg: impl Into<String>) -> Self {
        Self {
            kind,
            msg: msg.into(),
            gateway: String::new(),
        }
    }

    /// Trying again cannot help: the row waits for an operator.
    pub fn is_permanent(&self) -> bool {
        self.kind != SendErrorKind::Transient
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for SendError {}

/// Reads a user's fields by id from BILLmanager's user table (see
/// [`crate::db::schema::user_fields`]).
pub type UserLookup<'a> = dyn FnMut(&str) -> Option<Params> + 'a;

/// A notice ready to send.
pub struct Prepared<'a> {
    /// The notice, its `<user>` completed from the user table.
    pub notice: Notice,
    /// The provider's active outgoing gateways, in failover order (none for a table).
    pub gateways: Vec<&'a Route>,
    pub rendered: crate::template::Rendered,
    /// What the message carries: the rendered text alone, or for a channel that
    /// carries HTML the text version and the HTML.
    pub body: Body,
    /// The notice's attachments, resolved (channels that carry them).
    pub attachments: Vec<Attachment>,
}

/// A gateway row with its settings, read once per run (the row's xmlparams parsed,
/// its secrets registered).
pub struct Route {
    pub row: GatewayRow,
    settings: Result<GatewaySettings, GatewayError>,
}

/// A queue row's file, sent.
pub struct Delivered {
    /// Each notify block's delivery.
    pub sent: Vec<Sent>,
    /// Where the file really is (checked to be under `var/notify` when it was read).
    pub path: PathBuf,
}

/// What a successful delivery went through, for the log.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The gateway row; empty when the message was stored in a table.
    pub gateway_id: String,
    /// The gateway module, or the table.
    pub module: String,
    pub provider_message_id: Option<String>,
}

impl Sent {
    /// "sent through gateway 3 (gwsmtp)", "stored in mgrnotify_internal".
    pub fn via(&self) -> String {
        if self.gateway_id.is_empty() {
            format!("stored in {}", self.module)
        } else {
            format!("sent through gateway {} ({})", self.gateway_id, self.module)
        }
    }
}

impl Courier {
    pub fn new(
        root: MgrRoot,
        channel: Channel,
        gateways: Vec<GatewayRow>,
        config: &QueueConfig,
    ) -> Self {
        Self {
            files: notice::QueuedFiles::new(&root),
            attachments: AttachmentPolicy::new(&root, &config.attachment_dirs),
            internal_table: config.internal_table.clone(),
            root,
            channel,
            gateways: gateways
                .into_iter()
                .filter(GatewayRow::is_active_outgoing)
                .map(|row| Route {
                    settings: GatewaySettings::new(row.columns.clone(), &row.xmlparams),
                    row,
                })
                .collect(),
            timeout: config.gateway_timeout,
            max_file_size: config.max_file_size,
            own_exe: crate::gateway::own_exe(),
            modules: Mutex::new(HashMap::new()),
        }
    }

    /// The notification module it sends for.
    pub fn role(&self) -> &str {
        &self.channel.role
    }

    /// Sends every notify block of a queue row's file, or stores them all when the
    /// channel's destination is a table. The error is the reason an operator reads in
    /// err_info.
    pub fn deliver_file(
        &self,
        filename: &str,
        row: &mut dyn RowTx,
    ) -> Result<Delivered, SendError> {
        let (path, notices) = self.read_file(filename)?;
        if self.channel.destination == Destination::Table {
            let sent = self.store_notices(&notices, &self.internal_table, row)?;
            return Ok(Delivered { sent, path });
        }
        let total = notices.len();
        let mut sent = Vec::with_capacity(total);
        for (index, n) in notices.iter().enumerate() {
            match self.deliver_notice(n, &mut |id| row.user_fields(id)) {
                Ok(s) => sent.push(s),
                Err(reason) if total == 1 => return Err(reason),
                Err(reason) => {
                    return Err(SendError {
                        kind: reason.kind,
                        gateway: reason.gateway,
                        msg: format!(
                            "{}{}",
                            in_block(index, total, &reason.msg),
                            if index > 0 {
                                " (the blocks before it were sent and are sent again on retry)"
                            } else {
                                ""
                            }
                        ),
                    })
                }
            }
        }
        Ok(Delivered { sent, path })
    }

    /// Renders every block and stores them together: a block that cannot be rendered
    /// stores none.
    fn store_notices(
        &self,
        notices: &[Notice],
        table: &str,
        row: &mut dyn RowTx,
    ) -> Result<Vec<Sent>, SendError> {
        let total = notices.len();
        let mut messages = Vec::with_capacity(total);
        for (index, n) in notices.iter().enumerate() {
            let in_block = |e: SendError| SendError {
                msg: in_block(index, total, &e.msg),
                ..e
            };
            let p = self
                .prepare(n, &mut |id| row.user_fields(id))
                .map_err(in_block)?;
            let number = |field: &str, value: Option<&str>| match value.map(str::trim) {
                None | Some("") => Ok(None),
                Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                    in_block(SendError::new(
                        SendErrorKind::BadFile,
                        format!("{field} '{v}' is not a number"),
                    ))
                }),
            };
            let user_id = number("user id", p.notice.user.get("id"))?.ok_or_else(|| {
                in_block(SendError::new(
                    SendErrorKind::NoContact,
                    "the notice has no user id",
                ))
            })?;
            messages.push(InternalMessage {
                user_id,
                project_id: number("project id", p.notice.provider_id().as_deref())?,
                subject: p.rendered.subject,
                text: p.body.text,
                html: p.body.html,
            });
        }
        row.store(table, &messages).map_err(|e| SendError {
            kind: SendErrorKind::Transient,
            msg: e,
            gateway: table.to_owned(),
        })?;
        Ok(vec![Sent {
            gateway_id: String::new(),
            module: table.to_owned(),
            provider_message_id: None,
        }])
    }

    /// Everything about a notice up to the sending: the user's contact (from the user
    /// table when the notice lacks it), the provider's gateways in failover order, and
    /// the rendered message.
    pub fn prepare(
        &self,
        n: &Notice,
        users: &mut UserLookup<'_>,
    ) -> Result<Prepared<'_>, SendError> {
        use SendErrorKind::*;
        let contact = self.channel.contact_field.as_str();
        let notice = with_user_from_db(n, contact, users).unwrap_or_else(|| n.clone());
        let user_id = notice.user.get("id").unwrap_or("?");
        if notice.user.get(contact).is_none() {
            return Err(SendError::new(
                NoContact,
                format!("user {user_id} has no {}", contact_name(contact)),
            ));
        }
        let gateways = match self.channel.destination {
            Destination::Gateways => self.gateways_of(&notice)?,
            Destination::Table => Vec::new(),
        };
        let rendered = crate::template::render(&notice)
            .map_err(|e| SendError::new(Template, format!("template: {e}")))?;
        let attachments = if self.channel.attachments {
            self.attachments
                .resolve(&notice.attachments())
                .map_err(|e| SendError::new(SendErrorKind::Attachment, e))?
        } else {
            Vec::new()
        };
        let body = if self.channel.html {
            rendered.body()
        } else {
            Body {
                text: rendered.text.clone(),
                html: None,
            }
        };
        Ok(Prepared {
            notice,
            gateways,
            rendered,
            body,
            attachments,
        })
    }

    /// The active outgoing gateways of the notice's provider, in failover order.
    fn gateways_of(&self, notice: &Notice) -> Result<Vec<&Route>, SendError> {
        use SendErrorKind::NoGateway;
        let provider = notice.provider_id().ok_or_else(|| {
            SendError::new(
                NoGateway,
                "the notice has no project/id: its provider is unknown",
            )
        })?;
        let gateways: Vec<&Route> = self
            .gateways
            .iter()
            .filter(|g| g.row.project.trim() == provider)
            .collect();
        if gateways.is_empty() {
            return Err(SendError::new(
                NoGateway,
                format!(
                    "no active outgoing {} gateway for provider {provider}",
                    self.channel.role
                ),
            ));
        }
        Ok(gateways)
    }

    /// The notices of a queue row's file as they would be sent, without sending: for
    /// `mgrnotify queue show`.
    pub fn preview_file(
        &self,
        filename: &str,
        users: &mut UserLookup<'_>,
    ) -> Result<Vec<Result<Prepared<'_>, SendError>>, SendError> {
        let (_, notices) = self.read_file(filename)?;
        Ok(notices.iter().map(|n| self.prepare(n, users)).collect())
    }

    /// Where a queue row's file really is, and its notices.
    fn read_file(&self, filename: &str) -> Result<(PathBuf, Vec<Notice>), SendError> {
        use SendErrorKind::BadFile;
        if filename.trim().is_empty() {
            return Err(SendError::new(BadFile, "the row has no filename"));
        }
        let file = self
            .files
            .read(filename, self.max_file_size)
            .map_err(|e| SendError::new(BadFile, e.to_string()))?;
        let notices = notice::parse_file(&file.text).map_err(|e| {
            SendError::new(
                BadFile,
                format!(
                    "the notification file {}: {e}",
                    self.root.notify_file(filename).display()
                ),
            )
        })?;
        Ok((file.path, notices))
    }

    /// Sending is a write in the claimed row's transaction (a table channel).
    pub fn writes_in_transaction(&self) -> bool {
        self.channel.destination == Destination::Table
    }

    /// Where a row's notification file really is, when it exists under `var/notify`.
    pub fn file_path(&self, filename: &str) -> Option<PathBuf> {
        self.files.path(filename).ok()
    }

    /// The field of `<user>` that holds the contact.
    pub fn contact_field(&self) -> &str {
        &self.channel.contact_field
    }

    /// Sends one notice: the user's contact and the provider's gateways first, then
    /// each gateway in order until one accepts.
    pub fn deliver_notice(
        &self,
        n: &Notice,
        users: &mut UserLookup<'_>,
    ) -> Result<Sent, SendError> {
        use SendErrorKind::*;
        let Prepared {
            notice: n,
            gateways: candidates,
            rendered,
            body,
            attachments,
        } = self.prepare(n, users)?;
        let n = &n;
        let user_id = n.user.get("id").unwrap_or("?");
        let mut reasons = Vec::new();
        let mut permanent = true;
        let mut last_tried = String::new();
        for Route { row: g, settings } in candidates {
            if stop::requested() {
                reasons.push("the run is stopping".to_owned());
                permanent = false;
                break;
            }
            let attempt = settings.clone().and_then(|settings| {
                let input = OutgoingInput {
                    settings,
                    message: body.text.clone(),
                    subject: rendered.subject.clone(),
                    html: body.html.clone(),
                    attachments: attachments.clone(),
                    user: n.user.clone(),
                    project: n.project(),
                };
                self.gateway(&g.module)?.outgoing(&input)
            });
            match attempt {
                Ok(delivery) => {
                    return Ok(Sent {
                        gateway_id: g.id.clone(),
                        module: g.module.clone(),
                        provider_message_id: delivery.id,
                    })
                }
                Err(e) => {
                    crate::warn!(
                        "user {user_id}: gateway {} ({}) failed: {e}",
                        g.id,
                        g.module
                    );
                    permanent &= e.permanent;
                    last_tried.clone_from(&g.module);
                    reasons.push(format!(
                        "gateway {} ({}): {}",
                        g.id,
                        g.module,
                        failure_of(&e, &g.module)
                    ));
                }
            }
        }
        let kind = if permanent { Refused } else { Transient };
        Err(SendError {
            kind,
            msg: reasons.join("; "),
            gateway: last_tried,
        })
    }

    /// The gateway module `module`, opened on first use.
    fn gateway(&self, module: &str) -> Result<Gateway, GatewayError> {
        let mut modules = self
            .modules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        modules
            .entry(module.to_owned())
            .or_insert_with(|| self.open(module))
            .clone()
    }
    fn open(&self, module: &str) -> Result<Gateway, GatewayError> {
        crate::gateway::open(&self.root, module, self.own_exe.as_deref(), self.timeout)
    }
}

/// A block's reason, numbered when the file has more than one.
fn in_block(index: usize, total: usize, msg: &str) -> String {
    if total == 1 {
        msg.to_owned()
    } else {
        format!("notify block {} of {total}: {msg}", index + 1)
    }
}

/// A gateway's error as err_info tells it after `gateway ID (module): `: without the
/// kind and object when they only repeat that the gateway (module) failed.
fn failure_of(e: &GatewayError, module: &str) -> String {
    let names_the_module = e.object.is_empty() || e.object == module;
    match (e.kind.as_str(), names_the_module) {
        ("gateway", true) => e.msg.clone(),
        (kind, true) => format!("{kind}: {}", e.msg),
        _ => e.to_string(),
    }
}

/// How an error names a contact field.
fn contact_name(field: &str) -> String {
    match field {
        "phone" => "phone number".to_owned(),
        "email" => "email address".to_owned(),
        other => format!("'{other}'"),
    }
}

/// The notice with the fields its `<user>` lacks read from the user table, when it
/// has no `contact` field but a user id; `None` when nothing needs or can be added.
fn with_user_from_db(n: &Notice, contact: &str, users: &mut UserLookup<'_>) -> Option<Notice> {
    if n.user.get(contact).is_some() {
        return None;
    }
    let from_db = users(n.user.get("id")?)?;
    let mut filled = n.clone();
    for (k, v) in from_db.iter() {
        if filled.user.get(k).is_none() {
            filled.user.set(k, v);
        }
    }
    Some(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(user: &str) -> Notice {
        let text = format!(
            "<doc><notify><tmpl>hi</tmpl><notice_xml>&lt;doc&gt;&lt;project&gt;&lt;id&gt;1\
             &lt;/id&gt;&lt;/project&gt;&lt;/doc&gt;</notice_xml><user><id>7</id>{user}</user>\
             </notify></doc>"
        );
        notice::parse_file(&text).unwrap().remove(0)
    }

    fn courier(root: &MgrRoot, role: &str, contact_field: &str) -> Courier {
        let channel = Channel {
            role: role.into(),
            contact_field: contact_field.into(),
            html: role == "ntemail",
            attachments: role == "ntemail",
            destination: Destination::Gateways,
        };
        let config = QueueConfig::load(root).unwrap();
        Courier::new(root.clone(), channel, Vec::new(), &config)
    }

    #[test]
    fn the_contact_field_is_the_channels() {
        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        let mut nobody = |_: &str| None;
        let email = courier(&root, "ntemail", "email");
        // An email notice needs no phone; it gets as far as choosing a gateway.
        let e = email
            .deliver_notice(&notice("<email>a@example.com</email>"), &mut nobody)
            .unwrap_err();
        assert!(e.msg.contains("no active outgoing ntemail gateway"), "{e}");
        let e = email
            .deliver_notice(&notice("<phone>+1</phone>"), &mut nobody)
            .unwrap_err();
        assert!(e.msg.contains("user 7 has no email address"), "{e}");
        // The user table fills the channel's field.
        let mut table = |id: &str| {
            let mut p = Params::new();
            p.set("id", id);
            p.set("email", "b@example.com");
            Some(p)
        };
        let e = email.deliver_notice(&notice(""), &mut table).unwrap_err();
        assert!(e.msg.contains("no active outgoing ntemail gateway"), "{e}");
        let sms = courier(&root, "ntsms", "phone");
        let e = sms
            .deliver_notice(&notice("<email>a@example.com</email>"), &mut nobody)
            .unwrap_err();
        assert!(e.msg.contains("user 7 has no phone number"), "{e}");
    }

    #[test]
    fn err_info_names_the_gateway_once() {
        let refused = GatewayError::provider("gwsmtp", "535 authentication failed");
        assert_eq!(failure_of(&refused, "gwsmtp"), "535 authentication failed");
        let bad = GatewayError::value("port", "'x' is not a port");
        assert_eq!(
            failure_of(&bad, "gwsmtp"),
            "value (port): 'x' is not a port"
        );
        let xml = GatewayError::xml("not XML");
        assert_eq!(failure_of(&xml, "gwsmtp"), "xml: not XML");
    }

    #[test]
    fn our_own_executable_in_gate_is_never_run_as_a_program() {
        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        std::fs::create_dir_all(root.gate_dir()).unwrap();
        let own = std::env::current_exe().unwrap();
        for module in ["gwnoscript", "mgrnotify"] {
            std::os::unix::fs::symlink(&own, root.gate_module(module)).unwrap();
        }
        let c = courier(&root, "ntsms", "phone");
        for (module, why) in [
            ("gwnoscript", "no provider script"),
            ("mgrnotify", "none of its gateways"),
        ] {
            let e = c.gateway(module).err().expect(module);
            assert!(e.msg.contains(why), "{module}: {e}");
        }
    }
}
