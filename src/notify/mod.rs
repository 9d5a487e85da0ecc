//! The notification module protocol (the seed's "Notification module architecture"):
//! the trait every notification role implements and `serve`, which runs one
//! `--command` (features, process, getmessage).

pub mod declared;
pub mod ntemail;
pub mod ntinternal;
pub mod ntsms;

use std::fmt;
use std::process::ExitCode;

use crate::error::BillmgrError;
use crate::inbox::InboxError;
use crate::queue::QueueError;
use crate::root::MgrRoot;
use crate::xml;

/// The notification roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sms,
    Email,
    Internal,
}

impl Kind {
    pub fn role(self) -> &'static str {
        match self {
            Kind::Sms => "ntsms",
            Kind::Email => "ntemail",
            Kind::Internal => "ntinternal",
        }
    }

    /// The commands the role serves, for `--help` (SMS and the client area only send).
    pub fn commands(self) -> &'static [&'static str] {
        match self {
            Kind::Sms | Kind::Internal => &["features", "process"],
            Kind::Email => &["features", "process", "getmessage"],
        }
    }

    /// The `<user>` field that holds a user's address on this channel; the queue
    /// requires it and fills it from the user table when the notice lacks it.
    pub fn contact_field(self) -> &'static str {
        match self {
            Kind::Sms => "phone",
            Kind::Email => "email",
            // The client area addresses the user by id.
            Kind::Internal => "id",
        }
    }
}

/// A notification module's failure, with the context an operator needs.
#[derive(Debug)]
pub enum NotifyError {
    /// The queue run failed.
    Queue(QueueError),
    /// No `--command` was given.
    NoCommand,
    /// A `--command` the notification modules do not have.
    UnknownCommand(String),
    /// `getmessage` without `--gate`.
    NoGate,
    /// A notification role a later version brings.
    NotAvailable(&'static str),
    /// `getmessage`: ingoing gateways of a declared type failed.
    Ingoing(String),
    /// Incoming mail could not be read or handed on.
    Inbox(InboxError),
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::Queue(e) => e.fmt(f),
            NotifyError::Inbox(e) => e.fmt(f),
            NotifyError::NoCommand => {
                f.write_str("no --command given: use features, process or getmessage")
            }
            NotifyError::UnknownCommand(command) => write!(
                f,
                "unknown command '{command}': use features, process or getmessage"
            ),
            NotifyError::NoGate => f.write_str("getmessage needs --gate ID or --gate all"),
            NotifyError::Ingoing(msg) => f.write_str(msg),
            NotifyError::NotAvailable(role) => {
                write!(
                    f,
                    "{role} is not available yet in this version of mgrnotify"
                )
            }
        }
    }
}

impl std::error::Error for NotifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NotifyError::Queue(e) => Some(e),
            NotifyError::Inbox(e) => Some(e),
            _ => None,
        }
    }
}

impl From<InboxError> for NotifyError {
    fn from(e: InboxError) -> Self {
        Self::Inbox(e)
    }
}

impl From<QueueError> for NotifyError {
    fn from(e: QueueError) -> Self {
        Self::Queue(e)
    }
}

impl BillmgrError for NotifyError {
    fn error_type(&self) -> &str {
        match self {
            NotifyError::NoCommand => "missed",
            NotifyError::UnknownCommand(_) => "unknown",
            NotifyError::NotAvailable(_) => "unsupported",
            NotifyError::Queue(_)
            | NotifyError::Inbox(_)
            | NotifyError::NoGate
            | NotifyError::Ingoing(_) => "notify",
        }
    }

    fn object(&self) -> &str {
        ""
    }
}

/// What `--command features` reports.
pub struct NotifyFeatures {
    pub features: &'static [&'static str],
    /// The user field a message goes to; none for a module every user can receive.
    pub contact_type: Option<String>,
}

impl NotifyFeatures {
    pub fn to_xml(&self) -> String {
        let mut w = xml::Writer::new();
        w.start("doc");
        w.start("features");
        for f in self.features {
            w.start("feature");
            w.attr("name", f);
            w.end();
        }
        w.end();
        if let Some(contact_type) = &self.contact_type {
            w.start("contact_type");
            w.text(contact_type);
        }
        w.finish() + "\n"
    }
}

/// A notification module, as the seed's C++ API has it.
pub trait NotifyModule {
    fn features(&self) -> NotifyFeatures;
    /// Processes incoming messages of one gateway, or of all (`all`).
    fn get_message(&self, gate: &str) -> Result<(), NotifyError>;
    /// Works through this module's rows of the notifytask queue.
    fn process_queue(&self) -> Result<(), NotifyError>;
}

/// Runs one command of a notification role. Every failure is alike: logged, said on
/// stderr, and as error XML on stdout for BILLmanager; exit 1.
pub fn serve(root: &MgrRoot, kind: Kind, command: &str, gate: Option<&str>) -> ExitCode {
    let result = match kind {
        Kind::Sms => run(&ntsms::Ntsms::new(root.clone()), command, gate),
        Kind::Email => run(&ntemail::Ntemail::new(root.clone()), command, gate),
        Kind::Internal => run(&ntinternal::Ntinternal::new(root.clone()), command, gate),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::error::fail(
            kind.role(),
            &format!("--command {command}: "),
            &e,
            ExitCode::FAILURE,
        ),
    }
}

/// Runs one command of a declared notification type.
pub fn serve_declared(
    root: &MgrRoot,
    declaration: declared::Declaration,
    command: &str,
    gate: Option<&str>,
) -> ExitCode {
    let role = declaration.role.clone();
    let module = declared::DeclaredType::new(root.clone(), declaration);
    match run(&module, command, gate) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::error::fail(
            &role,
            &format!("--command {command}: "),
            &e,
            ExitCode::FAILURE,
        ),
    }
}

/// A `nt<name>` that no installed gateway declares: the role table's error, exit 2.
pub fn unknown_type(root: &MgrRoot, role: &str) -> ExitCode {
    let msg = format!(
        "unknown role '{role}': no gateway in {} declares it; start me as {}",
        root.scripts_dir().display(),
        crate::roles::known_names(crate::roles::ROLES)
    );
    eprintln!("{role}: {msg}");
    print!("{}", xml::error_doc("unknown", role, &msg));
    ExitCode::from(2)
}

fn run(module: &dyn NotifyModule, command: &str, gate: Option<&str>) -> Result<(), NotifyError> {
    match command {
        "features" => {
            print!("{}", module.features().to_xml());
            Ok(())
        }
        "process" => module.process_queue(),
        "getmessage" => match gate {
            Some(g) => module.get_message(g),
            None => Err(NotifyError::NoGate),
        },
        "" => Err(NotifyError::NoCommand),
        other => Err(NotifyError::UnknownCommand(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind of a failure decides the `type` BILLmanager sees.
    #[test]
    fn error_xml_type_by_kind() {
        let xml_of = |e: NotifyError| crate::error::to_xml(&e);
        assert!(xml_of(NotifyError::NoCommand).contains(r#"type="missed""#));
        assert!(xml_of(NotifyError::UnknownCommand("x".into())).contains(r#"type="unknown""#));
        assert!(xml_of(NotifyError::NotAvailable("ntemail")).contains(r#"type="unsupported""#));
        assert!(xml_of(NotifyError::NoGate).contains(r#"type="notify""#));
        let stopped = QueueError::WorkersGone { pending: 2 };
        let doc = xml_of(stopped.into());
        assert!(doc.contains(r#"type="notify""#), "{doc}");
        assert!(doc.contains("2 row(s) not yet handled"), "{doc}");
    }

    /// An unknown command fails before anything else is done, with its own type.
    #[test]
    fn unknown_and_missing_commands() {
        let dir = tempfile::tempdir().unwrap();
        let module = ntsms::Ntsms::new(MgrRoot::new(dir.path()));
        assert!(matches!(
            run(&module, "frobnicate", None),
            Err(NotifyError::UnknownCommand(c)) if c == "frobnicate"
        ));
        assert!(matches!(
            run(&module, "", None),
            Err(NotifyError::NoCommand)
        ));
    }
}
