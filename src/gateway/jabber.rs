//! `gate/gwjabber`: an XMPP bot account as a gateway of `ntjabber`, the seed's Jabber
//! example done over tokio-xmpp ([`crate::xmpp`]). Outgoing sends a chat message to the
//! user's `jabber` contact through a session kept for the next message; ingoing makes
//! sure the one receiver of the bot account runs (`--command receive`, started in the
//! background, holding a lock under `var/mgrnotify/jabber/`); the receiver answers
//! customers and posts `#123 text` to their ticket 123 through mgrctl.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio_xmpp::jid::BareJid;

use crate::db::{schema, DbSettings};
use crate::files;
use crate::gateway::input::checked_params;
use crate::gateway::{
    Delivery, Feature, Features, GatewayError, GatewayModule, GatewaySettings, OutgoingInput,
};
use crate::root::MgrRoot;
use crate::script::{Contact, Field, FieldKind, Metadata, SelectOption};
use crate::tickets::{ticket_reference, Sender, Tickets};
use crate::xmpp::{receiver, Account, Session, XmppError};

/// The role's name, as errors name it.
const MODULE: &str = "gwjabber";
/// The user-table field (and `<user>` child) that holds a customer's JID.
pub const CONTACT_FIELD: &str = "jabber";
/// The folder of the channel's state under `var/mgrnotify/`.
const CHANNEL: &str = "jabber";
/// The command `ingoing` starts the receiver with (not one BILLmanager sends).
pub const RECEIVE: &str = "receive";
/// Longest message text posted to a ticket; a longer one is answered, not posted (the
/// server bounds a stanza's size; this bounds what reaches mgrctl).
const MAX_MESSAGE_CHARS: usize = 16 * 1024;
/// The sessions kept for the next message, at most.
const MAX_IDLE_SESSIONS: usize = 8;

pub struct JabberGateway {
    root: MgrRoot,
    /// Logged-in sessions waiting for the next message: one per worker that sent.
    idle: Mutex<Vec<Session>>,
}

impl JabberGateway {
    pub fn new(root: &MgrRoot) -> Self {
        Self {
            root: root.clone(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The bot account of a gateway's parameters, checked against the form.
    fn account(&self, settings: &GatewaySettings) -> Result<Account, GatewayError> {
        let params = checked_params(metadata(), &settings.params)?;
        Account::from_params(&params, self.root.path())
            .map_err(|(name, msg)| GatewayError::value(name, msg))
    }

    /// A session of `account`: an idle one, or a new login.
    fn session(&self, account: &Account) -> Result<Session, GatewayError> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = idle.iter().position(|s| s.account() == account) {
            return Ok(idle.swap_remove(i));
        }
        drop(idle);
        Session::open(Arc::new(account.clone())).map_err(gateway_error)
    }

    fn keep(&self, session: Session) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(session);
        }
    }

    /// The receiver's lock file of `account`.
    fn lock_path(&self, account: &Account) -> std::path::PathBuf {
        self.root
            .state_dir(CHANNEL)
            .join(format!("{}.receiver.lock", account.key()))
    }
}

fn gateway_error(e: XmppError) -> GatewayError {
    let error = GatewayError::provider(MODULE, e.msg);
    if e.permanent {
        error.into_permanent()
    } else {
        error
    }
}

impl GatewayModule for JabberGateway {
    fn features(&self) -> Features {
        Features {
            features: Feature::ALL.to_vec(),
            notify_module: "ntjabber".to_owned(),
        }
    }

    fn outgoing(&self, input: &OutgoingInput) -> Result<Delivery, GatewayError> {
        let account = self.account(&input.settings)?;
        let user_id = input.user.get("id").unwrap_or("?");
        let contact = input
            .user
            .get(CONTACT_FIELD)
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                GatewayError::value(
                    CONTACT_FIELD,
                    format!("user {user_id} has no Jabber contact in the profile"),
                )
                .into_permanent()
            })?;
        let to = BareJid::new(contact).ok().filter(|j| j.node().is_some()).ok_or_else(|| {
            GatewayError::value(
                CONTACT_FIELD,
                format!("user {user_id}'s Jabber contact '{contact}' is not a JID like name@example.com"),
            )
            .into_permanent()
        })?;
        let text = crate::gateway::subject_and_text(&input.subject, &input.message);
        let mut session = self.session(&account)?;
        match session.send(&to, &text, input.subject.trim()) {
            Ok(()) => {
                self.keep(session);
                Ok(Delivery::default())
            }
            // The session is dropped: the next message logs in afresh.
            Err(e) => Err(gateway_error(e)),
        }
    }

    /// Starts the bot account's receiver unless it runs already; returns at once.
    fn ingoing(&self, settings: &GatewaySettings) -> Result<Vec<Vec<u8>>, GatewayError> {
        let account = self.account(settings)?;
        let lock = self.lock_path(&account);
        let held = files::lock(&lock, false, files::Access::Private)
            .map_err(|e| GatewayError::provider(MODULE, format!("{}: {e}", lock.display())))?;
        if held.is_none() {
            crate::info!("ingoing: the receiver of {} runs already", account.jid);
            return Ok(Vec::new());
        }
        drop(held);
        start_receiver(&self.root, settings).map_err(|e| {
            GatewayError::provider(MODULE, format!("cannot start the receiver: {e}"))
        })?;
        crate::info!("ingoing: started the receiver of {}", account.jid);
        Ok(Vec::new())
    }

    /// Offers `@id` and `#id` as the ticket format, as the seed's example does.
    fn formtune(&self, form: &str) -> Result<String, GatewayError> {
        let mut w = crate::xml::Writer::new();
        w.start("slist");
        w.attr("name", "ticket_format");
        for format in TICKET_FORMATS {
            w.start("val");
            w.text(format);
            w.end();
        }
        crate::xml::append_to_root(form, &w.finish())
            .map_err(|e| GatewayError::xml(format!("the form is not an XML document: {e}")))
    }

    fn check_connection(&self, settings: &GatewaySettings) -> Result<(), GatewayError> {
        let account = self.account(settings)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| GatewayError::provider(MODULE, format!("cannot start a runtime: {e}")))?;
        runtime
            .block_on(account.check_login())
            .map_err(gateway_error)?;
        crate::info!("check_connection: {} logged in", account.jid);
        Ok(())
    }

    fn password_fields(&self) -> Vec<String> {
        metadata().password_fields()
    }
}

/// Starts `gwjabber --command receive` in a session of its own (it outlives the
/// command that started it), the gateway's settings on its stdin: the password never
/// reaches argv or the environment.
fn start_receiver(root: &MgrRoot, settings: &GatewaySettings) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .arg0(MODULE)
        .args(["--command", RECEIVE])
        .env("MGR_ROOT", root.path())
        .current_dir(root.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(settings.to_xml().as_bytes())?;
    }
    // Reaped by init once this process has ended; nobody waits for it here.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// `gwjabber --command receive`: reads the gateway's settings from stdin, takes the
/// account's lock (another receiver holds it: nothing to do) and receives until
/// SIGTERM.
pub fn serve_receive(root: &MgrRoot) -> ExitCode {
    match receive(root) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::error!("--command {RECEIVE}: {e}");
            eprintln!("{MODULE}: {}", crate::log::redact(&e));
            ExitCode::FAILURE
        }
    }
}

fn receive(root: &MgrRoot) -> Result<(), String> {
    let text = crate::gateway::read_input(&mut std::io::stdin().lock()).map_err(|e| e.msg)?;
    let doc = crate::xml::parse(&text).map_err(|e| format!("the settings on stdin: {e}"))?;
    let settings = GatewaySettings::from_doc(&doc).map_err(|e| e.msg)?;
    let gateway = JabberGateway::new(root);
    let account = gateway.account(&settings).map_err(|e| e.msg)?;
    let sign = ticket_sign(settings.params.get("ticket_format"));
    let lock_path = gateway.lock_path(&account);
    let Some(mut lock) = files::lock(&lock_path, false, files::Access::Private)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?
    else {
        crate::info!("the receiver of {} runs already", account.jid);
        return Ok(());
    };
    // The holder's pid, for the operator's `kill`.
    lock.set_len(0)
        .and_then(|()| writeln!(lock, "{}", std::process::id()))
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let tickets = Tickets::load(root).map_err(|e| e.to_string())?;
    let db = DbSettings::load(root).map_err(|e| e.to_string())?;
    crate::info!("receiver of {}: starting", account.jid);
    let account = Arc::new(account);
    let mut support = Support {
        gateway,
        account: account.clone(),
        tickets,
        db,
        sign,
        pool: None,
    };
    receiver::run(account, &mut support).map_err(|e| e.to_string())
}

/// The ticket formats the form offers (in the seed's example's order): the sign, then
/// `id`.
const TICKET_FORMATS: [&str; 2] = ["@id", "#id"];
/// The format of a gateway that names none.
const DEFAULT_TICKET_FORMAT: &str = "#id";

/// The sign that starts a ticket number (`#` unless the gateway says `@id`).
fn ticket_sign(format: Option<&str>) -> char {
    match format.map(str::trim) {
        Some("@id") => '@',
        _ => '#',
    }
}

/// What the receiver answers customers with: their message posted to their ticket, or
/// why not.
struct Support {
    /// The gateway's settings as the receiver started with them, to compare with the
    /// gateway rows.
    gateway: JabberGateway,
    account: Arc<Account>,
    tickets: Tickets,
    db: DbSettings,
    sign: char,
    /// Opened at the first message, opened again after a failure.
    pool: Option<mysql::Pool>,
}

impl receiver::Handler for Support {
    fn answer(&mut self, from: &BareJid, text: &str) -> String {
        match self.try_answer(from, text) {
            Ok(reply) => reply,
            Err(e) => {
                self.pool = None;
                crate::error!("a message from {from}: {e}");
                "Sorry, your message could not be handled now: please try again later.".to_owned()
            }
        }
    }

    /// Whether an active ingoing gwjabber row still has the settings the receiver runs
    /// with; a row switched off, deleted or given a new password ends it, and the next
    /// `ingoing` starts one with the new settings. When the database cannot say, it is.
    fn wanted(&mut self) -> bool {
        let rows = self.conn().and_then(|mut conn| {
            schema::gateways(&mut conn, &metadata().notify_module).map_err(|e| e.to_string())
        });
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                self.pool = None;
                crate::warn!("cannot read the gateway rows of {}: {e}", self.account.jid);
                return true;
            }
        };
        rows.iter()
            .filter(|g| g.is_active_ingoing() && g.module == MODULE)
            .filter_map(|g| GatewaySettings::new(g.columns.clone(), &g.xmlparams).ok())
            .any(|settings| {
                self.gateway.account(&settings).ok().as_ref() == Some(&*self.account)
                    && ticket_sign(settings.params.get("ticket_format")) == self.sign
            })
    }
}

impl Support {
    /// A connection of the pool, opened at first use and again after a failure.
    fn conn(&mut self) -> Result<mysql::PooledConn, String> {
        let pool = match &self.pool {
            Some(pool) => pool.clone(),
            None => {
                let pool = self
                    .db
                    .connect(1, crate::db::TOOL_TIMEOUT)
                    .map_err(|e| e.to_string())?;
                self.pool = Some(pool.clone());
                pool
            }
        };
        pool.get_conn()
            .map_err(|e| format!("cannot get a database connection: {e}"))
    }

    fn try_answer(&mut self, from: &BareJid, text: &str) -> Result<String, String> {
        let sign = self.sign;
        let help =
            format!("To reply to a ticket, write its number and your text: {sign}123 Thank you");
        let mut conn = self.conn()?;
        let customer = match self
            .tickets
            .sender(&mut conn, CONTACT_FIELD, from.as_str())
            .map_err(|e| e.to_string())?
        {
            Sender::Known(c) => c,
            Sender::Unknown => {
                crate::info!("a message from {from}, who is no user's Jabber contact");
                return Ok(format!(
                    "You are not registered: no account has {from} as its Jabber contact. \
                     Add it in your profile first."
                ));
            }
            Sender::Ambiguous => {
                return Ok(format!(
                    "Several accounts have {from} as their Jabber contact: please write to \
                     support from the client area."
                ))
            }
        };
        let Some((id, body)) = ticket_reference(text, sign) else {
            return Ok(help);
        };
        if body.is_empty() {
            return Ok(help);
        }
        if body.chars().count() > MAX_MESSAGE_CHARS {
            return Ok(format!(
                "Your message is longer than {MAX_MESSAGE_CHARS} characters: please shorten \
                 it or write to support from the client area."
            ));
        }
        let owner = schema::ticket_account(&mut conn, id).map_err(|e| e.to_string())?;
        if owner.as_deref() != Some(customer.account.as_str()) || customer.account.is_empty() {
            crate::info!(
                "user {} named ticket {id}, which is not theirs",
                customer.name
            );
            return Ok(format!("Ticket {sign}{id} is not one of your tickets."));
        }
        self.tickets
            .post(&mut conn, &customer, Some(id), "", body)
            .map_err(|e| e.to_string())?;
        Ok(format!("Your message was added to ticket {sign}{id}."))
    }
}

/// gwjabber's form, and the ntjabber type it declares.
pub fn metadata() -> &'static Metadata {
    static METADATA: OnceLock<Metadata> = OnceLock::new();
    METADATA.get_or_init(|| Metadata {
        title_en: "Jabber (XMPP)".into(),
        title_ru: "Jabber (XMPP)".into(),
        description_en: "Notifications to customers' Jabber (XMPP) accounts from a bot \
                         account, and their replies to support tickets"
            .into(),
        description_ru: "Уведомления на Jabber (XMPP) клиентов от учётной записи бота и их \
                         ответы в запросы поддержки"
            .into(),
        notify_module: "ntjabber".into(),
        contact: Some(Contact {
            field: CONTACT_FIELD.into(),
            title_en: "Jabber messages".into(),
            title_ru: "Сообщения Jabber".into(),
            label_en: "Jabber".into(),
            label_ru: "Jabber".into(),
            hint_en: "Your Jabber (XMPP) address for notifications, like name@example.com".into(),
            hint_ru: "Ваш адрес Jabber (XMPP) для уведомлений, вида name@example.com".into(),
            check: Some("email".into()),
            size: 128,
        }),
        required_one_of: Vec::new(),
        fields: vec![
            Field {
                required: true,
                identifier: true,
                check: Some("email".into()),
                ..Field::text(
                    "jabber",
                    ("Bot JID", "JID бота"),
                    (
                        "The bot's account, like bot@example.com",
                        "Учётная запись бота, вида bot@example.com",
                    ),
                )
            },
            Field {
                kind: FieldKind::Password,
                required: true,
                ..Field::text("password", ("Password", "Пароль"), ("", ""))
            },
            Field {
                kind: FieldKind::Select,
                default: Some(DEFAULT_TICKET_FORMAT.into()),
                options: TICKET_FORMATS
                    .iter()
                    .map(|f| SelectOption {
                        value: (*f).into(),
                        label_en: (*f).into(),
                        label_ru: (*f).into(),
                    })
                    .collect(),
                ..Field::text(
                    "ticket_format",
                    ("Ticket number format", "Формат номера запроса"),
                    (
                        "How customers name a ticket in a reply: #123 text or @123 text",
                        "Как клиенты указывают запрос в ответе: #123 текст или @123 текст",
                    ),
                )
            },
            Field::text(
                "host",
                ("Server", "Сервер"),
                (
                    "Optional: the server to connect to when the JID's domain does not lead to it",
                    "Необязательно: сервер, если его не найти по домену JID",
                ),
            ),
            Field::text(
                "port",
                ("Port", "Порт"),
                ("Optional: 5222 when empty", "Необязательно: пусто — 5222"),
            ),
            Field::text(
                "ca_file",
                ("CA file", "Файл CA"),
                (
                    "Optional: PEM file of a private CA the server's certificate is signed by, trusted besides the system's",
                    "Необязательно: PEM-файл частного CA, которым подписан сертификат сервера, в дополнение к системным",
                ),
            ),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_signs() {
        assert_eq!(ticket_sign(Some("@id")), '@');
        assert_eq!(ticket_sign(Some(" #id")), '#');
        assert_eq!(ticket_sign(None), '#');
    }

    #[test]
    fn the_password_is_a_password_and_the_type_is_declared() {
        assert_eq!(metadata().password_fields(), ["password"]);
        assert_eq!(
            metadata().contact.as_ref().map(|c| c.field.as_str()),
            Some("jabber")
        );
    }
}
