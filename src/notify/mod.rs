//! The notification module protocol (the seed's "Notification module architecture"):
//! the trait every notification role implements and `serve`, which runs one
//! `--command` (features, process, getmessage).

pub mod ntemail;
pub mod ntsms;

use std::fmt;
use std::process::ExitCode;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyError(pub String);

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::log::redact(&self.0))
    }
}

impl std::error::Error for NotifyError {}

/// What `--command features` reports.
pub struct NotifyFeatures {
    pub features: &'static [&'static str],
    pub contact_type: &'static str,
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
        w.start("contact_type");
        w.text(self.contact_type);
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

/// Every failure of a notification role, alike: logged, said on stderr, and as error
/// XML on stdout for BILLmanager; exit 1.
fn fail(role: &str, command: &str, kind: &str, msg: &str) -> ExitCode {
    crate::error!("--command {command}: {msg}");
    eprintln!("{role}: {}", crate::log::redact(msg));
    print!("{}", xml::error_doc(kind, role, msg));
    ExitCode::FAILURE
}

/// Runs one command of a notification role.
pub fn serve(root: &MgrRoot, kind: Kind, command: &str, gate: Option<&str>) -> ExitCode {
    let module: Box<dyn NotifyModule> = match kind {
        Kind::Sms => Box::new(ntsms::Ntsms::new(root.clone())),
        Kind::Email => Box::new(ntemail::Ntemail::new(root.clone())),
        Kind::Internal => {
            let role = kind.role();
            return fail(
                role,
                command,
                "unsupported",
                &format!("{role} is not available yet in this version of mgrnotify"),
            );
        }
    };
    let result = match command {
        "features" => {
            print!("{}", module.features().to_xml());
            Ok(())
        }
        "process" => module.process_queue(),
        "getmessage" => match gate {
            Some(g) => module.get_message(g),
            None => Err(NotifyError(
                "getmessage needs --gate ID or --gate all".into(),
            )),
        },
        "" => Err(NotifyError(
            "no --command given: use features, process or getmessage".into(),
        )),
        other => Err(NotifyError(format!(
            "unknown command '{other}': use features, process or getmessage"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let kind_of_error = match command {
                "" => "missed",
                "features" | "process" | "getmessage" => "notify",
                _ => "unknown",
            };
            fail(kind.role(), command, kind_of_error, &e.to_string())
        }
    }
}
