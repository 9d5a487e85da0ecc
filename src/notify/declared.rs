//! Notification types that gateways declare (`nt<name>`, not ntsms/ntemail/ntinternal):
//! a provider script's or a built-in gateway's metadata names the type and its contact
//! field, and that is all a new channel needs. `mgrnotify sync` makes BILLmanager's
//! files from the declarations; the role serves the one queue with the contact field,
//! and `getmessage` runs the type's ingoing gateways and hands the chat messages they
//! return on to support.

use crate::db::{schema, DbError, DbSettings};
use crate::files;
use crate::gateway::GatewaySettings;
use crate::notify::{NotifyError, NotifyFeatures, NotifyModule};
use crate::queue::send::{Channel, Destination};
use crate::roles::{Build, RoleSpec};
use crate::root::MgrRoot;
use crate::script::{Contact, Metadata};
use crate::tickets::{ticket_reference, Sender, Tickets};

/// The commands a declared type serves, for `--help`.
pub const COMMANDS: &[&str] = &["features", "process", "getmessage"];

/// One declared notification type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// `nt<name>`.
    pub role: String,
    /// The gateway role whose metadata declares it.
    pub declared_by: String,
    pub contact: Contact,
}

/// The types that `declarers` (gateway role and its metadata) declare, in order: the
/// first declaration of a type wins; a later one with another contact is a message.
pub fn collect<'a>(
    declarers: impl IntoIterator<Item = (&'a str, &'a Metadata)>,
) -> (Vec<Declaration>, Vec<String>) {
    let mut found: Vec<Declaration> = Vec::new();
    let mut problems = Vec::new();
    for (by, meta) in declarers {
        let Some(contact) = &meta.contact else {
            continue;
        };
        match found.iter().find(|d| d.role == meta.notify_module) {
            Some(d) if d.contact != *contact => problems.push(format!(
                "{by}: declares {} with another contact than {} does: {}'s is used",
                meta.notify_module, d.declared_by, d.declared_by
            )),
            Some(_) => {}
            None => found.push(Declaration {
                role: meta.notify_module.clone(),
                declared_by: by.to_owned(),
                contact: contact.clone(),
            }),
        }
    }
    (found, problems)
}

/// The built-in gateways of `table` with their metadata: they declare first.
pub fn builtin_declarers<'a>(
    table: &'a [RoleSpec],
) -> impl Iterator<Item = (&'a str, &'a Metadata)> + 'a {
    table.iter().filter_map(|r| match r.build {
        Build::Builtin(builtin) => Some((r.name, builtin.metadata())),
        _ => None,
    })
}

/// What the installed gateways declare (built-in ones, then scripts by name), and a
/// message for each script that could not be read and each conflicting declaration.
pub fn declarations(root: &MgrRoot, table: &[RoleSpec]) -> (Vec<Declaration>, Vec<String>) {
    let mut problems = Vec::new();
    let mut scripts: Vec<(String, Metadata)> = Vec::new();
    match crate::script::installed(root, table) {
        Ok(installed) => {
            for (role, path) in installed {
                match crate::script::load_metadata(&path) {
                    Ok(meta) => scripts.push((role, meta)),
                    Err(e) => problems.push(format!("{role}: {e}")),
                }
            }
        }
        Err(e) => problems.push(format!("cannot read {}: {e}", root.scripts_dir().display())),
    }
    let (found, conflicts) =
        collect(builtin_declarers(table).chain(scripts.iter().map(|(r, m)| (r.as_str(), m))));
    problems.extend(conflicts);
    (found, problems)
}

/// The declaration of type `role`, if a gateway declares it (`mgrnotify sync` reports
/// the scripts that cannot be read).
pub fn find(root: &MgrRoot, table: &[RoleSpec], role: &str) -> Option<Declaration> {
    // A built-in gateway's type is known without compiling every script.
    let (builtin, _) = collect(builtin_declarers(table));
    if let Some(d) = builtin.into_iter().find(|d| d.role == role) {
        return Some(d);
    }
    declarations(root, table)
        .0
        .into_iter()
        .find(|d| d.role == role)
}

/// The notification role of a declared type.
pub struct DeclaredType {
    root: MgrRoot,
    declaration: Declaration,
}

impl DeclaredType {
    pub fn new(root: MgrRoot, declaration: Declaration) -> Self {
        Self { root, declaration }
    }

    fn channel(&self) -> Channel {
        // An HTML template reaches chat channels as its text version, with the HTML
        // beside it for those that can show some (Telegram's subset).
        Channel {
            role: self.declaration.role.clone(),
            contact_field: self.declaration.contact.field.clone(),
            html: true,
            attachments: false,
            destination: Destination::Gateways,
        }
    }
}

/// Largest chat message handed on; a larger one is kept for the operator.
const MAX_MESSAGE: usize = 64 * 1024;
/// Longest subject of a new ticket: the text's first line, cut.
const MAX_SUBJECT_CHARS: usize = 100;

impl DeclaredType {
    /// Hands chat messages (`{"from": <contact>, "text": ..}`) to support, as email's
    /// incoming mail is: the sender found by the type's contact column; `#123 text` from
    /// the owner of ticket 123 is a reply to it, any other text a new ticket. A message
    /// that cannot be posted (no such sender, several, not a chat message, mgrctl
    /// failing) is kept under `var/mgrnotify/<type>/unmatched/` or `failed/` for the
    /// operator; nothing is dropped. `Err` when mgrctl or the database failed.
    fn hand_on(&self, messages: &[Vec<u8>]) -> Result<(), NotifyError> {
        let role = &self.declaration.role;
        let column = &self.declaration.contact.field;
        let fail = |e: String| NotifyError::Ingoing(e);
        let tickets = Tickets::load(&self.root).map_err(|e| fail(e.to_string()))?;
        let mut conn = DbSettings::load(&self.root)
            .and_then(|s| s.connect(1, crate::db::TOOL_TIMEOUT))
            .and_then(|pool| {
                pool.get_conn()
                    .map_err(|e| DbError::query("cannot get a database connection", e))
            })
            .map_err(|e| fail(e.to_string()))?;
        let mut errors = Vec::new();
        for (n, source) in messages.iter().enumerate() {
            let Some((from, text)) = chat_message(source) else {
                self.keep("unmatched", n, source, "not a chat message {from, text}");
                continue;
            };
            let customer = match tickets.sender(&mut conn, column, &from) {
                Ok(Sender::Known(c)) => c,
                Ok(Sender::Unknown) => {
                    self.keep(
                        "unmatched",
                        n,
                        source,
                        &format!("no user has {column} '{from}'"),
                    );
                    continue;
                }
                Ok(Sender::Ambiguous) => {
                    self.keep(
                        "unmatched",
                        n,
                        source,
                        &format!("several users have {column} '{from}'"),
                    );
                    continue;
                }
                Err(e) => {
                    self.keep("failed", n, source, &e.to_string());
                    errors.push(e.to_string());
                    continue;
                }
            };
            let (ticket, body) = match ticket_reference(&text, '#') {
                Some((id, body)) if !body.is_empty() => (Some(id), body),
                _ => (None, text.as_str()),
            };
            let subject: String = text
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(MAX_SUBJECT_CHARS)
                .collect();
            if let Err(e) = tickets.post(&mut conn, &customer, ticket, &subject, body) {
                self.keep("failed", n, source, &e.to_string());
                errors.push(e.to_string());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(fail(format!("{role}: {}", errors.join("; "))))
        }
    }

    /// Keeps a message that was not posted in `var/mgrnotify/<type>/<folder>/`.
    fn keep(&self, folder: &str, n: usize, source: &[u8], why: &str) {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = self
            .root
            .state_dir(&self.declaration.role)
            .join(folder)
            .join(format!("{stamp}-{n}.json"));
        match files::write_atomically(&path, source, files::Access::Private) {
            Ok(()) => crate::warn!("getmessage: kept {}: {why}", path.display()),
            Err(e) => crate::error!(
                "getmessage: a message could not be kept ({why}): {}: {e}",
                path.display()
            ),
        }
    }
}

/// The sender and text of a chat message a gateway returned: a JSON object with the
/// strings `from` and `text` (not empty), at most [`MAX_MESSAGE`] bytes.
fn chat_message(source: &[u8]) -> Option<(String, String)> {
    if source.len() > MAX_MESSAGE {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(source).ok()?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    Some((field("from")?, field("text")?))
}

impl NotifyModule for DeclaredType {
    fn features(&self) -> NotifyFeatures {
        NotifyFeatures {
            features: &[],
            contact_type: Some(self.declaration.contact.field.clone()),
        }
    }

    /// Runs `ingoing` of each active ingoing gateway of the type (or of gateway `gate`).
    /// A gateway may handle what it receives itself (gwjabber, gwtelegram answer and
    /// post); the chat messages it returns are handed on to support ([`Self::hand_on`]).
    fn get_message(&self, gate: &str) -> Result<(), NotifyError> {
        let role = &self.declaration.role;
        let rows = ingoing_gateways(&self.root, role)
            .map_err(|e| NotifyError::Ingoing(e.to_string()))?
            .into_iter()
            .filter(|g| gate == "all" || g.id.trim() == gate.trim())
            .collect::<Vec<_>>();
        if rows.is_empty() {
            crate::info!("getmessage --gate {gate}: no active ingoing {role} gateway");
            return Ok(());
        }
        let own_exe = crate::gateway::own_exe();
        let timeout = crate::queue::config::QueueConfig::load(&self.root)
            .map_err(|e| NotifyError::Ingoing(e.to_string()))?
            .gateway_timeout;
        let mut failed = Vec::new();
        for g in rows {
            let result = GatewaySettings::new(g.columns.clone(), &g.xmlparams).and_then(|s| {
                crate::gateway::open(&self.root, &g.module, own_exe.as_deref(), timeout)?
                    .ingoing(&s)
            });
            match result {
                Ok(messages) if messages.is_empty() => {
                    crate::info!("getmessage: gateway {} ({}): done", g.id, g.module)
                }
                Ok(messages) => {
                    crate::info!(
                        "getmessage: gateway {} ({}): {} message(s)",
                        g.id,
                        g.module,
                        messages.len()
                    );
                    if let Err(e) = self.hand_on(&messages) {
                        failed.push(format!("gateway {} ({}): {e}", g.id, g.module));
                    }
                }
                Err(e) => failed.push(format!("gateway {} ({}): {e}", g.id, g.module)),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(NotifyError::Ingoing(failed.join("; ")))
        }
    }

    fn process_queue(&self) -> Result<(), NotifyError> {
        crate::queue::process(&self.root, &self.channel())?;
        Ok(())
    }
}

/// The active ingoing gateway rows of notification module `role`.
fn ingoing_gateways(root: &MgrRoot, role: &str) -> Result<Vec<schema::GatewayRow>, DbError> {
    let mut conn = DbSettings::load(root)?
        .connect(1, crate::db::TOOL_TIMEOUT)?
        .get_conn()
        .map_err(|e| DbError::query("cannot get a database connection", e))?;
    Ok(schema::gateways(&mut conn, role)?
        .into_iter()
        .filter(schema::GatewayRow::is_active_ingoing)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(module: &str, field: Option<&str>) -> Metadata {
        Metadata {
            title_en: "T".into(),
            title_ru: "T".into(),
            description_en: "T".into(),
            description_ru: "T".into(),
            notify_module: module.into(),
            fields: Vec::new(),
            required_one_of: Vec::new(),
            contact: field.map(|f| Contact {
                field: f.into(),
                title_en: "C".into(),
                title_ru: "C".into(),
                label_en: "C".into(),
                label_ru: "C".into(),
                hint_en: String::new(),
                hint_ru: String::new(),
                check: None,
                size: 128,
            }),
        }
    }

    /// The first declaration of a type wins; the same one again is failover, another
    /// contact is a conflict that names both gateways.
    #[test]
    fn first_declaration_wins_and_conflicts_are_named() {
        let (a, b, c, sms) = (
            meta("ntchat", Some("chat")),
            meta("ntchat", Some("chat")),
            meta("ntchat", Some("other")),
            meta("ntsms", None),
        );
        let (found, problems) = collect([("gwsms", &sms), ("gwa", &a), ("gwb", &b), ("gwc", &c)]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].role.as_str(), found[0].declared_by.as_str()),
            ("ntchat", "gwa")
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("gwc: declares ntchat"),
            "{problems:?}"
        );
        assert!(problems[0].contains("gwa"), "{problems:?}");
    }

    #[test]
    fn built_in_gateways_declare_first() {
        let roles: Vec<_> = builtin_declarers(crate::roles::ROLES)
            .filter_map(|(by, m)| m.contact.as_ref().map(|_| (by, m.notify_module.as_str())))
            .collect();
        assert!(roles.contains(&("gwjabber", "ntjabber")), "{roles:?}");
    }
}
