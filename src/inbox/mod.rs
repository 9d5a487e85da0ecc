//! Incoming mail into tickets: ntemail's `getmessage --gate ID|all`. For each active
//! ingoing gateway of ntemail (or the one named) the mailbox is read in-process
//! (gwimap, gwpop3) or through the gateway program's `--command ingoing` (any other
//! module in `gate/`), and each mail is handed on:
//!
//! - a known sender (`user.email`, case-insensitively) → a reply to the ticket its
//!   subject names (`ticket_pattern`, default `\[#(\d+)\]`), or a new ticket;
//! - an unknown (or ambiguous) sender, or an automatic mail (`Auto-Submitted`,
//!   `Precedence: bulk`: an out-of-office reply to a ticket notification would otherwise
//!   start a mail loop) → kept under `var/mgrnotify/unmatched/<gateway>/`;
//! - a mail that cannot be read → kept under `var/mgrnotify/failed/<gateway>/`;
//! - mgrctl failing → left unread and tried again next run; the third failed run keeps
//!   it under `failed/` with the reason.
//!
//! A mail counts as handed on (IMAP \Seen, POP3 UIDL recorded) only once it was posted
//! or kept. A gateway program has handed its mail on already when it prints it, so
//! a mail from one that cannot be posted is kept under `failed/` at once. One run at a
//! time reads a gateway (a lock per gateway): two runs never post a mail twice.

pub mod state;
pub mod text;

use std::fmt;

use mysql::PooledConn;
use regex::{Regex, RegexBuilder};

use crate::db::schema::{self, GatewayRow};
use crate::db::{DbError, DbSettings};
use crate::gateway::incoming::{mailbox_settings, state_of};
use crate::gateway::program::ProgramGateway;
use crate::gateway::{GatewayModule, GatewaySettings};
use crate::mail::mailbox::Protocol;
use crate::notify::Kind;
use crate::queue::config::{ConfigError, QueueConfig};
use crate::roles::Build;
use crate::root::MgrRoot;
use crate::tickets::{Sender, TicketError, Tickets};
use state::{key_of, GatewayState, Kept};

/// The notification module incoming mail belongs to.
const KIND: Kind = Kind::Email;
/// The ticket number pattern when the gateway sets none.
pub const DEFAULT_TICKET_PATTERN: &str = r"\[#(\d+)\]";
/// Failed runs after which a mail is kept for an operator.
pub const MAX_ATTEMPTS: u32 = 3;

/// Why getmessage did not read all it should have.
#[derive(Debug)]
pub enum InboxError {
    /// `mgrnotify.conf` cannot be read or has a bad line.
    Config(ConfigError),
    /// `Mgrctl` settings are wrong.
    Tickets(TicketError),
    /// The database cannot be used: nothing was read.
    Db(DbError),
    /// `--gate` names no active ingoing gateway of ntemail.
    NoGateway(String),
    /// These gateways failed (the others were read): gateway id, module, why.
    Gateways(Vec<(String, String, String)>),
}

impl fmt::Display for InboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InboxError::Config(e) => e.fmt(f),
            InboxError::Tickets(e) => e.fmt(f),
            InboxError::Db(e) => e.fmt(f),
            InboxError::NoGateway(gate) => write!(
                f,
                "there is no active ingoing gateway of {} with id '{gate}'",
                KIND.role()
            ),
            InboxError::Gateways(failures) => {
                for (i, (id, module, why)) in failures.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}gateway {id} ({module}): {why}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for InboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InboxError::Config(e) => Some(e),
            InboxError::Tickets(e) => Some(e),
            InboxError::Db(e) => Some(e),
            InboxError::NoGateway(_) | InboxError::Gateways(_) => None,
        }
    }
}

/// Reads the mail of gateway `gate` (an id, or `all`) into tickets. Every gateway is
/// tried; the error names each one that failed.
pub fn get_message(root: &MgrRoot, gate: &str) -> Result<(), InboxError> {
    let gate = gate.trim();
    let queue = QueueConfig::load(root).map_err(InboxError::Config)?;
    let tickets = Tickets::load(root).map_err(InboxError::Tickets)?;
    let pool = DbSettings::load(root)
        .and_then(|s| s.connect(1, queue.db_timeout))
        .map_err(InboxError::Db)?;
    let mut conn = pool
        .get_conn()
        .map_err(|e| InboxError::Db(DbError::query("cannot connect to the database", e)))?;
    let gateways: Vec<GatewayRow> = schema::gateways(&mut conn, KIND.role())
        .map_err(InboxError::Db)?
        .into_iter()
        .filter(|g| g.is_active_ingoing() && (gate == "all" || g.id == gate))
        .collect();
    if gateways.is_empty() {
        if gate == "all" {
            crate::info!("getmessage: no active ingoing gateway of {}", KIND.role());
            return Ok(());
        }
        return Err(InboxError::NoGateway(gate.to_owned()));
    }
    let run = Run {
        root,
        tickets: &tickets,
        queue: &queue,
    };
    let failures: Vec<(String, String, String)> = gateways
        .iter()
        .filter_map(|g| {
            let why = run.gateway(&mut conn, g).err()?;
            crate::error!("getmessage: gateway {} ({}): {why}", g.id, g.module);
            Some((g.id.clone(), g.module.clone(), why))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(InboxError::Gateways(failures))
    }
}

/// What a mail came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Posted or kept: it counts as handed on.
    Done,
    /// Not posted this time: it stays unread.
    Again,
}

struct Run<'a> {
    root: &'a MgrRoot,
    tickets: &'a Tickets,
    queue: &'a QueueConfig,
}

impl Run<'_> {
    fn gateway(&self, conn: &mut PooledConn, row: &GatewayRow) -> Result<(), String> {
        let settings =
            GatewaySettings::new(row.columns.clone(), &row.xmlparams).map_err(|e| e.msg)?;
        let pattern = ticket_pattern(&settings)?;
        let builtin = crate::roles::lookup(&row.module).and_then(|r| match r.build {
            Build::Builtin(b) => b.mailbox_protocol(),
            _ => None,
        });
        match builtin {
            Some(protocol) => self.mailbox(conn, protocol, &settings, &pattern),
            None => self.program(conn, row, &settings, &pattern),
        }
    }

    /// A gwimap or gwpop3 gateway: each mail is marked handed on once posted or kept.
    fn mailbox(
        &self,
        conn: &mut PooledConn,
        protocol: Protocol,
        settings: &GatewaySettings,
        pattern: &Regex,
    ) -> Result<(), String> {
        let mailbox = mailbox_settings(self.root, protocol, settings).map_err(|e| e.msg)?;
        let state = state_of(self.root, settings, &mailbox);
        let Some(_lock) = state.lock()? else {
            crate::info!(
                "getmessage: another run is reading {} now",
                mailbox.server()
            );
            return Ok(());
        };
        let mut session = mailbox.open(state.uidl_file()).map_err(|e| e.msg)?;
        let ids = session.unread()?;
        crate::info!(
            "getmessage: {} unread message(s) at {}",
            ids.len(),
            mailbox.server()
        );
        for id in ids {
            let (key, outcome) = match session.fetch(&id)? {
                Ok(source) => {
                    let key = key_of(&source);
                    if state.was_posted(&key) {
                        crate::info!("getmessage: message {id} was posted before: not again");
                        (key, Outcome::Done)
                    } else {
                        let outcome = self.hand_on(conn, &state, pattern, &key, &source, false)?;
                        (key, outcome)
                    }
                }
                Err(size) => {
                    let reason = format!("message {id} of {size} bytes is too large to fetch");
                    crate::warn!("getmessage: {reason}: left on the server");
                    let key = key_of(format!("{id}/{size}").as_bytes());
                    state.keep(Kept::Failed, &key, None, &reason)?;
                    (key, Outcome::Done)
                }
            };
            if outcome == Outcome::Done {
                session.handed_on(&id)?;
                state.handed_on(&key)?;
            }
        }
        session.close()
    }

    /// Any other ingoing module: its `--command ingoing` hands the mail on as it prints
    /// it.
    fn program(
        &self,
        conn: &mut PooledConn,
        row: &GatewayRow,
        settings: &GatewaySettings,
        pattern: &Regex,
    ) -> Result<(), String> {
        let module = &row.module;
        if !crate::roles::is_module_name(module) {
            return Err(format!("'{module}' is not a gateway module name"));
        }
        let path = self.root.gate_module(module);
        if !path.is_file() {
            return Err(format!("{} does not exist", path.display()));
        }
        let state = GatewayState::new(self.root, &row.id);
        let Some(_lock) = state.lock()? else {
            crate::info!("getmessage: another run is reading gateway {} now", row.id);
            return Ok(());
        };
        let gateway = ProgramGateway::new(self.root, module, path, self.queue.gateway_timeout);
        let sources = gateway.ingoing(settings).map_err(|e| e.to_string())?;
        crate::info!("getmessage: {} message(s) from {module}", sources.len());
        for source in sources {
            self.hand_on(conn, &state, pattern, &key_of(&source), &source, true)?;
        }
        Ok(())
    }

    /// Posts one mail, or keeps it. `Err` only when the database fails: then the run
    /// of this gateway ends and its mail stays unread.
    fn hand_on(
        &self,
        conn: &mut PooledConn,
        state: &GatewayState,
        pattern: &Regex,
        key: &str,
        source: &[u8],
        handed_already: bool,
    ) -> Result<Outcome, String> {
        let mail = match text::read(source) {
            Ok(mail) => mail,
            Err(why) => {
                let path = state.keep(Kept::Failed, key, Some(source), &why)?;
                crate::warn!("getmessage: {why}: kept as {}", path.display());
                return Ok(Outcome::Done);
            }
        };
        if let Some(why) = &mail.automatic {
            let reason = format!("an automatic mail ({why}) from {}: not posted", mail.from);
            let path = state.keep(Kept::Unmatched, key, Some(source), &reason)?;
            crate::warn!("getmessage: {reason}: kept as {}", path.display());
            return Ok(Outcome::Done);
        }
        let customer = match self
            .tickets
            .sender(conn, KIND.contact_field(), &mail.from)
            .map_err(|e| e.to_string())?
        {
            Sender::Known(c) => c,
            other => {
                let why = match other {
                    Sender::Ambiguous => "several users have",
                    _ => "no user has",
                };
                let reason = format!("{why} the sender's address {}", mail.from);
                let path = state.keep(Kept::Unmatched, key, Some(source), &reason)?;
                crate::warn!("getmessage: {reason}: kept as {}", path.display());
                return Ok(Outcome::Done);
            }
        };
        let ticket = text::ticket_number(pattern, &mail.subject);
        let error = match self.tickets.post(
            conn,
            &customer,
            ticket.as_deref(),
            &mail.subject,
            &mail.text,
        ) {
            Ok(_) => {
                if !handed_already {
                    state.posted(key)?;
                }
                state.clear_failures(key)?;
                return Ok(Outcome::Done);
            }
            Err(TicketError::Db(e)) => return Err(e.to_string()),
            Err(e) => e.to_string(),
        };
        let reason = if handed_already {
            format!("not posted, and its gateway program handed it on already: {error}")
        } else {
            let attempt = state.add_failure(key)?;
            if attempt < MAX_ATTEMPTS {
                crate::warn!(
                    "getmessage: mail from {} not posted (attempt {attempt}/{MAX_ATTEMPTS}), \
                     left unread: {error}",
                    mail.from
                );
                return Ok(Outcome::Again);
            }
            format!("not posted after {attempt} attempts: {error}")
        };
        let path = state.keep(Kept::Failed, key, Some(source), &reason)?;
        state.clear_failures(key)?;
        crate::error!(
            "getmessage: mail from {} {reason}: kept as {}",
            mail.from,
            path.display()
        );
        Ok(Outcome::Done)
    }
}

/// The gateway's `ticket_pattern`, compiled with a size limit (it is an operator's
/// input, run on customers' subjects).
fn ticket_pattern(settings: &GatewaySettings) -> Result<Regex, String> {
    let text = settings
        .params
        .get("ticket_pattern")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_TICKET_PATTERN);
    RegexBuilder::new(text)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("ticket_pattern '{text}' is not a regular expression: {e}"))
}
