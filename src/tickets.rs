//! Incoming messages (mail, chat) into BILLmanager's support tickets, through its own
//! API as ISPsystem's jabber example does: `sbin/mgrctl -m billmgr -o xml
//! clientticket.edit ...`, as the user who wrote (`su=`). The sender is found by a
//! contact column of the user table; a message naming a ticket of that user becomes a
//! reply to it, any other a new ticket.
//!
//! mgrctl's path is `sbin/mgrctl` under the mgr root unless `Mgrctl` in
//! `etc/mgrnotify/mgrnotify.conf` says otherwise (`MgrctlTimeout`: seconds, default
//! 60). It runs with a time limit and a bounded output; success is exit 0 and no
//! `<error` in what it printed. The message text is customer data and goes into argv
//! as the API wants it; logs get an excerpt only.

use std::fmt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mysql::prelude::Queryable;

pub use crate::db::schema::Customer;
use crate::db::{schema, DbError};
use crate::root::MgrRoot;

/// Largest output read from mgrctl; its answer to an edit is a few hundred bytes.
const MAX_OUTPUT: u64 = 1024 * 1024;
/// Longest message text passed on (Linux refuses a single argument over 128 KiB).
const MAX_TEXT_BYTES: usize = 100 * 1024;
/// Characters of a message text the log gets.
const LOG_EXCERPT: usize = 80;

/// Where mgrctl is and how long it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tickets {
    mgrctl: PathBuf,
    timeout: Duration,
    /// mgrctl's working directory: the mgr root, as BILLmanager starts its tools.
    cwd: Option<PathBuf>,
}

/// Why a message could not be posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketError {
    /// `mgrnotify.conf` has a bad `Mgrctl*` line.
    Config(String),
    /// The database could not be asked about the user or the ticket.
    Db(DbError),
    /// mgrctl could not be run, failed, or answered with an error.
    Mgrctl(String),
}

impl fmt::Display for TicketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TicketError::Config(msg) => f.write_str(msg),
            TicketError::Db(e) => write!(f, "{e}"),
            TicketError::Mgrctl(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for TicketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TicketError::Db(e) => Some(e),
            TicketError::Config(_) | TicketError::Mgrctl(_) => None,
        }
    }
}

impl From<DbError> for TicketError {
    fn from(e: DbError) -> Self {
        TicketError::Db(e)
    }
}

/// Who wrote, as the user table knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    Known(Customer),
    /// No user has this contact.
    Unknown,
    /// Several users have it: posting as either could leak a message to the other.
    Ambiguous,
}

/// What became of a posted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// A reply to the sender's ticket with this id.
    Reply(String),
    /// A new ticket.
    NewTicket,
}

impl Tickets {
    pub fn new(mgrctl: PathBuf, timeout: Duration) -> Self {
        Self {
            mgrctl,
            timeout,
            cwd: None,
        }
    }

    /// The settings of `root`: its `sbin/mgrctl`, or `Mgrctl` and `MgrctlTimeout` of
    /// `mgrnotify.conf`.
    pub fn load(root: &MgrRoot) -> Result<Self, TicketError> {
        let path = root.mgrnotify_conf();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(TicketError::Config(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        let mut tickets = Self::new(root.path().join("sbin/mgrctl"), Duration::from_secs(60));
        tickets.cwd = Some(root.path().to_owned());
        for crate::conf::Entry { line, key, value } in crate::conf::entries(&text) {
            let bad = |what: &str| {
                TicketError::Config(format!(
                    "{} line {line}: {key} '{value}' is not {what}",
                    path.display()
                ))
            };
            match key {
                "Mgrctl" if value.is_empty() => return Err(bad("a path")),
                "Mgrctl" => tickets.mgrctl = root.path().join(value),
                "MgrctlTimeout" => {
                    let seconds = value
                        .parse::<u64>()
                        .ok()
                        .filter(|s| (1..=3600).contains(s))
                        .ok_or_else(|| bad("a number of seconds from 1 to 3600"))?;
                    tickets.timeout = Duration::from_secs(seconds);
                }
                _ => {}
            }
        }
        Ok(tickets)
    }

    /// Who has `contact` in the user column `column` (`email`, or a chat contact
    /// column), compared case-insensitively.
    pub fn sender(
        &self,
        conn: &mut impl Queryable,
        column: &str,
        contact: &str,
    ) -> Result<Sender, DbError> {
        if contact.trim().is_empty() {
            return Ok(Sender::Unknown);
        }
        let mut users = schema::users_by_contact(conn, column, contact)?;
        Ok(match users.len() {
            0 => Sender::Unknown,
            1 => Sender::Known(users.remove(0)),
            _ => Sender::Ambiguous,
        })
    }

    /// Posts `text` as `customer`: a reply to `ticket` when it is one of theirs, else
    /// a new ticket with `subject` (a ticket number of someone else's ticket is never
    /// written into).
    pub fn post(
        &self,
        conn: &mut impl Queryable,
        customer: &Customer,
        ticket: Option<&str>,
        subject: &str,
        text: &str,
    ) -> Result<Posted, TicketError> {
        let own = match ticket {
            Some(id) => match schema::ticket_account(conn, id)? {
                Some(account) if !account.is_empty() && account == customer.account => Some(id),
                other => {
                    crate::info!(
                        "ticket {id} named by user {} is {}: posting a new ticket",
                        customer.name,
                        if other.is_some() {
                            "someone else's"
                        } else {
                            "not there"
                        }
                    );
                    None
                }
            },
            None => None,
        };
        let text = fit_text(text);
        let mut args = vec![
            "-m".to_owned(),
            "billmgr".to_owned(),
            "-o".to_owned(),
            "xml".to_owned(),
            "clientticket.edit".to_owned(),
        ];
        if let Some(id) = own {
            args.push(format!("elid={id}"));
        }
        args.push(format!("su={}", clean(&customer.name)));
        if own.is_none() {
            let subject = clean(subject.trim());
            let subject = if subject.is_empty() {
                "(no subject)".to_owned()
            } else {
                subject
            };
            args.push(format!("subject={subject}"));
        }
        args.push(format!("message={text}"));
        args.push("sok=ok".to_owned());
        self.run(&args)?;
        let posted = match own {
            Some(id) => Posted::Reply(id.to_owned()),
            None => Posted::NewTicket,
        };
        crate::info!(
            "posted {} as {}: {}",
            match &posted {
                Posted::Reply(id) => format!("a reply to ticket {id}"),
                Posted::NewTicket => "a new ticket".to_owned(),
            },
            customer.name,
            crate::log::excerpt(&text, LOG_EXCERPT, "…")
        );
        Ok(posted)
    }

    /// Runs mgrctl with `args`.
    fn run(&self, args: &[String]) -> Result<(), TicketError> {
        let path = self.mgrctl.display();
        let mut command = Command::new(&self.mgrctl);
        command.args(args);
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        let run = crate::gateway::program::run_bounded(&mut command, b"", self.timeout, MAX_OUTPUT)
            .map_err(|e| TicketError::Mgrctl(format!("cannot run {path}: {e}")))?;
        let output = String::from_utf8_lossy(&run.stdout);
        let fail = |why: String| {
            let stderr = String::from_utf8_lossy(&run.stderr);
            let mut msg = format!("{path} {why}");
            for (name, text) in [("output", output.trim()), ("stderr", stderr.trim())] {
                if !text.is_empty() {
                    msg.push_str(&format!(" ({name}: {})", crate::gateway::excerpt(text)));
                }
            }
            Err(TicketError::Mgrctl(msg))
        };
        if run.stopped {
            return fail("was killed: the run is stopping".into());
        }
        match run.status {
            None => fail(format!(
                "did not finish within {} s and was killed",
                self.timeout.as_secs()
            )),
            Some(status) if !status.success() => fail(format!("failed ({status})")),
            Some(_) if output.contains("<error") => fail("answered with an error".into()),
            Some(_) => Ok(()),
        }
    }
}

/// `#123 text` (with `sign` `#`): the ticket id and the text; `None` when the text
/// does not start with the sign and a number.
pub fn ticket_reference(text: &str, sign: char) -> Option<(&str, &str)> {
    let rest = text.strip_prefix(sign)?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (id, text) = rest.split_at(end);
    (!id.is_empty() && id.len() <= 18).then(|| (id, text.trim()))
}

/// The text as an argument can carry it: no NUL, and within [`MAX_TEXT_BYTES`] (cut
/// at a character boundary, with a note).
fn fit_text(text: &str) -> String {
    let text = text.replace('\0', "");
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[… message cut: longer than {MAX_TEXT_BYTES} bytes]",
        &text[..end]
    )
}

/// One line without NULs: for `su=` and `subject=`.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '\0')
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_references() {
        assert_eq!(
            ticket_reference("#123 thanks", '#'),
            Some(("123", "thanks"))
        );
        assert_eq!(ticket_reference("@7: ok", '@'), Some(("7", ": ok")));
        assert_eq!(ticket_reference("#123", '#'), Some(("123", "")));
        assert_eq!(ticket_reference("@123 hi", '#'), None);
        assert_eq!(ticket_reference("# 12 hi", '#'), None);
        assert_eq!(ticket_reference("hello", '#'), None);
    }

    #[test]
    fn config_lines_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        let t = Tickets::load(&root).unwrap();
        assert_eq!(t.mgrctl, dir.path().join("sbin/mgrctl"));
        assert_eq!(t.timeout, Duration::from_secs(60));
        std::fs::create_dir_all(dir.path().join("etc/mgrnotify")).unwrap();
        std::fs::write(
            root.mgrnotify_conf(),
            "QueueWorkers 2\nMgrctl /opt/mgrctl\nMgrctlTimeout 5\n",
        )
        .unwrap();
        let t = Tickets::load(&root).unwrap();
        assert_eq!(t.mgrctl, PathBuf::from("/opt/mgrctl"));
        assert_eq!(t.timeout, Duration::from_secs(5));
        std::fs::write(root.mgrnotify_conf(), "\nMgrctlTimeout soon\n").unwrap();
        let e = Tickets::load(&root).unwrap_err().to_string();
        assert!(e.contains("line 2: MgrctlTimeout 'soon'"), "{e}");
    }

    #[test]
    fn texts_fit_an_argument() {
        assert_eq!(fit_text("a\0b"), "ab");
        let long = "я".repeat(MAX_TEXT_BYTES);
        let fitted = fit_text(&long);
        assert!(fitted.len() < MAX_TEXT_BYTES + 100 && fitted.ends_with("bytes]"));
        assert_eq!(clean("Re:\r\n hi\0"), "Re:   hi");
    }
}
