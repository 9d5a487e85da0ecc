//! A mailbox to read incoming mail from, over IMAP ([`super::imap`]) or POP3
//! ([`super::pop3`]): its settings from a gateway's parameters, and the few steps
//! incoming mail needs — list what is unread, fetch one message, count one as handed on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::gateway::GatewayError;
use crate::mail::server::{Endpoint, Security};
use crate::mail::wire::Wire;
use crate::xml::Params;

/// Largest message fetched; a bigger one is not read (it is reported instead).
pub const MAX_MESSAGE: usize = 32 * 1024 * 1024;
/// Most messages taken in one session; the rest wait for the next run.
pub const MAX_MESSAGES: usize = 500;
/// Longest protocol line (a message's own lines come through literals or are bounded
/// by the message size).
pub const MAX_LINE: usize = 1024 * 1024;
/// Longest a whole session may take.
const SESSION: Duration = Duration::from_secs(15 * 60);

/// The mail protocols of the incoming gateways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
}

impl Protocol {
    /// The gateway role that speaks it.
    pub fn module(self) -> &'static str {
        match self {
            Protocol::Imap => "gwimap",
            Protocol::Pop3 => "gwpop3",
        }
    }
}

/// IMAP's usual port: 143 plain or with STARTTLS, 993 with TLS.
fn imap_port(security: Security) -> u16 {
    if security == Security::Tls {
        993
    } else {
        143
    }
}

/// POP3's usual port: 110 plain or with STLS, 995 with TLS.
fn pop3_port(security: Security) -> u16 {
    if security == Security::Tls {
        995
    } else {
        110
    }
}

/// A mailbox's settings: `host`, `port`, `security`, `login`, `password`, `ca_file`,
/// `timeout`; IMAP's `folder`, POP3's `delete`.
#[derive(Clone)]
pub struct MailboxSettings {
    pub protocol: Protocol,
    pub endpoint: Endpoint,
    pub security: Security,
    pub login: String,
    password: String,
    /// IMAP: the folder read (default INBOX).
    pub folder: String,
    /// POP3: delete what was handed on (default off: remember its UIDL).
    pub delete: bool,
}

impl MailboxSettings {
    /// Reads the settings from a gateway's parameters; a relative `ca_file` is taken
    /// relative to `base` (the mgr root).
    pub fn from_params(
        protocol: Protocol,
        params: &Params,
        base: &Path,
    ) -> Result<Self, GatewayError> {
        let default_port = match protocol {
            Protocol::Imap => imap_port,
            Protocol::Pop3 => pop3_port,
        };
        let (endpoint, security) = Endpoint::from_params(params, base, default_port)?;
        let login = params
            .get("login")
            .map(str::trim)
            .ok_or_else(|| GatewayError::missed("login"))?;
        let password = params
            .get("password")
            .ok_or_else(|| GatewayError::missed("password"))?;
        crate::log::add_secret(password);
        let delete = match params.get("delete").map(str::trim) {
            None | Some("off") => false,
            Some("on") => true,
            Some(other) => {
                return Err(GatewayError::value(
                    "delete",
                    format!("delete '{other}' is not on or off"),
                ))
            }
        };
        Ok(Self {
            protocol,
            endpoint,
            security,
            login: login.to_owned(),
            password: password.to_owned(),
            folder: params.get("folder").unwrap_or("INBOX").trim().to_owned(),
            delete,
        })
    }

    /// Connects, secures the connection as `security` says and logs in.
    pub fn open(&self, state_dir: PathBuf) -> Result<Box<dyn Mailbox>, GatewayError> {
        let fail = |msg: String| GatewayError::provider(self.protocol.module(), msg);
        let mut wire = Wire::connect(&self.endpoint, SESSION).map_err(fail)?;
        if self.security == Security::Tls {
            wire.start_tls().map_err(fail)?;
        }
        let starttls = self.security == Security::StartTls;
        Ok(match self.protocol {
            Protocol::Imap => Box::new(
                super::imap::Imap::login(wire, starttls, &self.login, &self.password, &self.folder)
                    .map_err(fail)?,
            ),
            Protocol::Pop3 => Box::new(
                super::pop3::Pop3::login(
                    wire,
                    starttls,
                    &self.login,
                    &self.password,
                    self.delete,
                    state_dir,
                )
                .map_err(fail)?,
            ),
        })
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> String {
        self.endpoint.server()
    }
}

/// An open, logged-in mailbox.
pub trait Mailbox {
    /// The ids (IMAP UIDs, POP3 UIDLs) of the messages not handed on yet, oldest first,
    /// at most [`MAX_MESSAGES`].
    fn unread(&mut self) -> Result<Vec<String>, String>;
    /// A message's raw source; `Ok(Err(size))` when it is larger than [`MAX_MESSAGE`]
    /// (it is not read).
    fn fetch(&mut self, id: &str) -> Result<Result<Vec<u8>, usize>, String>;
    /// Counts a message as handed on: IMAP marks it \Seen; POP3 remembers its UIDL
    /// (and deletes it with `delete=on`).
    fn handed_on(&mut self, id: &str) -> Result<(), String>;
    /// Ends the session (POP3's deletions take effect here).
    fn close(&mut self) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        [
            ("host", "mail.example.com"),
            ("login", "u"),
            ("password", "p"),
        ]
        .iter()
        .chain(pairs)
        .copied()
        .collect()
    }

    #[test]
    fn ports_default_by_protocol_and_security() {
        let base = Path::new("/m");
        for (protocol, security, port) in [
            (Protocol::Imap, "starttls", 143),
            (Protocol::Imap, "tls", 993),
            (Protocol::Imap, "none", 143),
            (Protocol::Pop3, "starttls", 110),
            (Protocol::Pop3, "tls", 995),
        ] {
            let s =
                MailboxSettings::from_params(protocol, &params(&[("security", security)]), base)
                    .unwrap();
            assert_eq!(s.endpoint.port, port, "{protocol:?} {security}");
        }
        let s = MailboxSettings::from_params(Protocol::Imap, &params(&[]), base).unwrap();
        assert_eq!(
            (s.security, s.folder.as_str(), s.delete),
            (Security::StartTls, "INBOX", false)
        );
        let s = MailboxSettings::from_params(
            Protocol::Pop3,
            &params(&[("delete", "on"), ("ca_file", "etc/ca.pem")]),
            base,
        )
        .unwrap();
        assert!(s.delete);
        assert_eq!(
            s.endpoint.ca_file.as_deref(),
            Some(Path::new("/m/etc/ca.pem"))
        );
    }

    #[test]
    fn bad_settings_name_their_parameter() {
        let base = Path::new("/m");
        let bad = |pairs: &[(&str, &str)]| {
            MailboxSettings::from_params(Protocol::Imap, &params(pairs), base)
                .err()
                .map(|e| e.object)
        };
        assert_eq!(bad(&[("delete", "yes")]).as_deref(), Some("delete"));
        assert_eq!(bad(&[("port", "99999")]).as_deref(), Some("port"));
        assert_eq!(bad(&[("security", "ssl")]).as_deref(), Some("security"));
        let mut no_password = Params::new();
        no_password.set("host", "h");
        no_password.set("login", "u");
        let e = MailboxSettings::from_params(Protocol::Imap, &no_password, base)
            .err()
            .unwrap();
        assert_eq!(e.object, "password");
    }
}
