//! The SMTP transport (lettre's SMTP client over rustls): the connection settings
//! from a gateway's parameters, opening a connection (EHLO, STARTTLS or implicit TLS,
//! AUTH PLAIN or LOGIN), one mail transaction, and connections kept for the next
//! message.
//!
//! A [`SmtpClient`] keeps the connections that finished a message well, per
//! settings, and hands one to the next message with the same settings (RSET first:
//! a connection the server closed in the meantime is found out there and replaced by
//! a new one, once, before the message counts as failed). Threads that send at the
//! same time each get a connection of their own.

use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use lettre::address::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, SmtpConnection, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail as MailFrom, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::Error as SmtpError;

use crate::gateway::GatewayError;
use crate::mail::message::Mail;
use crate::mail::server::Endpoint;
use crate::xml::Params;

/// Connections kept at most; more are closed after their message.
const MAX_IDLE: usize = 32;
/// How long a goodbye (QUIT) to a kept connection may take.
const QUIT_TIMEOUT: Duration = Duration::from_secs(2);
/// The module name errors are reported under.
const MODULE: &str = "gwsmtp";

pub use crate::mail::server::Security;

/// SMTP's usual port: 25 plain, 587 submission with STARTTLS, 465 SMTPS.
pub fn default_port(security: Security) -> u16 {
    match security {
        Security::None => 25,
        Security::StartTls => 587,
        Security::Tls => 465,
    }
}

/// Where and how to connect: `host`, `port`, `security`, `login`, `password`,
/// `ca_file`, `timeout`. Two messages with equal settings may share a connection.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub endpoint: Endpoint,
    pub security: Security,
    login: Option<String>,
    password: String,
}

impl SmtpSettings {
    /// Reads the settings from a gateway's parameters; a relative `ca_file` is taken
    /// relative to `base` (the mgr root).
    pub fn from_params(params: &Params, base: &Path) -> Result<Self, GatewayError> {
        let (endpoint, security) = Endpoint::from_params(params, base, default_port)?;
        let login = params.get("login").map(|l| l.trim().to_owned());
        let password = params.get("password").unwrap_or_default().to_owned();
        if login.is_some() && password.is_empty() {
            return Err(GatewayError::missed("password"));
        }
        Ok(Self {
            endpoint,
            security,
            login,
            password,
        })
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> String {
        self.endpoint.server()
    }
}

/// An SMTP failure, as the gateway reports it: the server and what went wrong.
fn failure(msg: String) -> GatewayError {
    GatewayError::provider(MODULE, msg)
}

/// Sends mails and keeps their connections for the next one.
#[derive(Default)]
pub struct SmtpClient {
    idle: Mutex<Vec<(SmtpSettings, SmtpConnection)>>,
}

impl SmtpClient {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends one mail: on a kept connection of the same settings when there is one
    /// that still answers RSET, else on a new one.
    pub fn send(&self, settings: &SmtpSettings, mail: &Mail) -> Result<(), GatewayError> {
        let mut conn = match self.take_idle(settings) {
            Some(conn) => conn,
            None => open(settings)?,
        };
        let result = transaction(&mut conn, settings, mail);
        match &result {
            Ok(()) => self.keep(settings.clone(), conn),
            // The server refused something and said so: the connection is fine for
            // the next mail once this transaction is reset.
            Err(refused) if refused.answered => {
                if conn.command(Rset).is_ok() {
                    self.keep(settings.clone(), conn);
                }
            }
            // A broken connection is dropped without a goodbye that could only wait.
            Err(_) => {}
        }
        result.map_err(|r| r.error)
    }

    /// Connects, says EHLO, starts TLS and logs in as `settings` say, and says goodbye.
    pub fn check(&self, settings: &SmtpSettings) -> Result<(), GatewayError> {
        let mut conn = open(settings)?;
        quit(&mut conn);
        Ok(())
    }

    /// How many connections are kept now.
    pub fn idle_connections(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(SmtpSettings, SmtpConnection)>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A kept connection of these settings that answers RSET.
    fn take_idle(&self, settings: &SmtpSettings) -> Option<SmtpConnection> {
        loop {
            let mut conn = {
                let mut idle = self.lock();
                let at = idle.iter().position(|(s, _)| s == settings)?;
                idle.swap_remove(at).1
            };
            match conn.command(Rset) {
                Ok(_) => return Some(conn),
                Err(e) => crate::info!(
                    "{}: a kept connection is gone ({}): opening a new one",
                    settings.server(),
                    describe(&e, settings)
                ),
            }
        }
    }

    fn keep(&self, settings: SmtpSettings, mut conn: SmtpConnection) {
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push((settings, conn));
        } else {
            drop(idle);
            quit(&mut conn);
        }
    }
}

impl Drop for SmtpClient {
    fn drop(&mut self) {
        for (_, mut conn) in std::mem::take(&mut *self.lock()) {
            quit(&mut conn);
        }
    }
}

fn quit(conn: &mut SmtpConnection) {
    let _ = conn.set_timeout(Some(QUIT_TIMEOUT));
    let _ = conn.command(Quit);
}

/// Opens a connection: TCP (or TLS), EHLO, STARTTLS, AUTH as the settings say.
fn open(settings: &SmtpSettings) -> Result<SmtpConnection, GatewayError> {
    let server = settings.server();
    let hello = ClientId::default();
    let tls = match settings.security {
        Security::None => None,
        Security::StartTls | Security::Tls => Some(tls_parameters(settings)?),
    };
    let implicit_tls = tls.as_ref().filter(|_| settings.security == Security::Tls);
    let mut conn = SmtpConnection::connect(
        (settings.endpoint.host.as_str(), settings.endpoint.port),
        Some(settings.endpoint.timeout),
        &hello,
        implicit_tls,
        None,
    )
    .map_err(|e| {
        failure(format!(
            "cannot connect to {server}: {}",
            describe(&e, settings)
        ))
    })?;
    if let (Security::StartTls, Some(tls)) = (settings.security, &tls) {
        if !conn.can_starttls() {
            quit(&mut conn);
            return Err(failure(format!(
                "{server} does not offer STARTTLS: use security tls (usually port 465) \
                 or, for a local relay, none"
            )));
        }
        conn.starttls(tls, &hello).map_err(|e| {
            failure(format!(
                "{server}: STARTTLS failed: {}",
                describe(&e, settings)
            ))
        })?;
    }
    if let Some(login) = &settings.login {
        let mechanisms = [Mechanism::Plain, Mechanism::Login];
        if conn.server_info().get_auth_mechanism(&mechanisms).is_none() {
            quit(&mut conn);
            return Err(failure(format!(
                "{server} offers no AUTH PLAIN or LOGIN to log in as {login}{}",
                if settings.security == Security::None {
                    " (servers often offer it only over TLS: try security starttls)"
                } else {
                    ""
                }
            )));
        }
        let credentials = Credentials::new(login.clone(), settings.password.clone());
        if let Err(e) = conn.auth(&mechanisms, &credentials) {
            quit(&mut conn);
            return Err(failure(format!(
                "{server} refused the login of {login}: {}",
                describe(&e, settings)
            )));
        }
    }
    Ok(conn)
}

/// A failed transaction: the error, and whether the server answered it (then the
/// connection is still good).
struct Refused {
    error: GatewayError,
    answered: bool,
}

/// MAIL FROM, RCPT TO for each recipient, DATA and the message.
fn transaction(
    conn: &mut SmtpConnection,
    settings: &SmtpSettings,
    mail: &Mail,
) -> Result<(), Refused> {
    let server = settings.server();
    // `what` the server refused when it answered; else the step the connection failed at.
    let refused = |what: String, step: &str, e: SmtpError| {
        let answered = e.status().is_some();
        let msg = if answered {
            format!("{what}: {}", describe(&e, settings))
        } else {
            format!(
                "{server}: the connection failed at {step}: {}",
                describe(&e, settings)
            )
        };
        Refused {
            error: failure(msg),
            answered,
        }
    };
    let local = |msg: String| Refused {
        error: failure(msg),
        answered: true,
    };
    let mut options = Vec::new();
    if !mail.source.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(local(format!(
                "{server} does not take 8-bit messages (no 8BITMIME)"
            )));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let non_ascii = mail
        .envelope
        .from()
        .into_iter()
        .chain(mail.envelope.to())
        .map(Address::to_string)
        .find(|a| !a.is_ascii());
    if let Some(address) = non_ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(local(format!(
                "{server} does not take non-ASCII addresses (no SMTPUTF8): {address}"
            )));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    let from = mail.envelope.from().cloned();
    let sender = from.as_ref().map(Address::to_string).unwrap_or_default();
    conn.command(MailFrom::new(from, options)).map_err(|e| {
        refused(
            format!("{server} refused the sender {sender}"),
            "MAIL FROM",
            e,
        )
    })?;
    for to in mail.envelope.to() {
        conn.command(Rcpt::new(to.clone(), Vec::new()))
            .map_err(|e| refused(format!("{server} refused the recipient {to}"), "RCPT TO", e))?;
    }
    conn.command(Data)
        .map_err(|e| refused(format!("{server} refused DATA"), "DATA", e))?;
    let sent = match String::from_utf8(data_block(&mail.source)) {
        Ok(block) => conn.command(block),
        Err(_) => conn.message(&mail.source),
    };
    sent.map_err(|e| refused(format!("{server} refused the message"), "the message", e))?;
    Ok(())
}

/// The message as DATA sends it, in one piece: dot-stuffed (a line's leading `.`
/// doubled) and ended with `CRLF . CRLF`, as lettre's own `message` does. lettre writes
/// the final dot separately; with Nagle's algorithm that small write then waits for the
/// server's delayed ACK of the message (40 ms on Linux), which caps a kept connection at
/// about 25 mails a second.
fn data_block(source: &[u8]) -> Vec<u8> {
    let mut block = Vec::with_capacity(source.len() + source.len() / 64 + 5);
    let mut line_start = true;
    for (i, &b) in source.iter().enumerate() {
        if line_start && b == b'.' {
            block.push(b'.');
        }
        block.push(b);
        line_start = b == b'\n' && i > 0 && source[i - 1] == b'\r';
    }
    block.extend_from_slice(b"\r\n.\r\n");
    block
}

/// What an SMTP error says, for the operator: the server's reply (code and text)
/// when it answered, else what happened on the way.
fn describe(e: &SmtpError, settings: &SmtpSettings) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) {
                return format!(
                    "no answer within {} s (the gateway's timeout)",
                    settings.endpoint.timeout.as_secs_f64()
                );
            }
        }
        causes.push(cause.to_string());
        source = cause.source();
    }
    let detail = causes.first().cloned().unwrap_or_else(|| e.to_string());
    if let Some(code) = e.status() {
        return format!("{code} {detail}").trim_end().to_owned();
    }
    let detail = if detail.is_empty() {
        e.to_string()
    } else {
        detail
    };
    let hint = if detail.contains("UnknownIssuer") {
        " (the server's certificate is not signed by a trusted CA: a private CA's \
         certificate goes in ca_file)"
    } else if detail.contains("NotValidForName") {
        " (the server's certificate is not for this host name)"
    } else {
        ""
    };
    format!("{detail}{hint}")
}

/// The CAs a server certificate is checked against: the system's (or, when the
/// system has none, the Mozilla roots built in), and those of `ca_file`.
fn tls_parameters(settings: &SmtpSettings) -> Result<TlsParameters, GatewayError> {
    static SYSTEM_HAS_ROOTS: OnceLock<bool> = OnceLock::new();
    let system = *SYSTEM_HAS_ROOTS
        .get_or_init(|| !rustls_native_certs::load_native_certs().certs.is_empty());
    let mut builder =
        TlsParameters::builder(settings.endpoint.host.clone()).certificate_store(if system {
            CertificateStore::Default
        } else {
            CertificateStore::WebpkiRoots
        });
    if let Some(path) = &settings.endpoint.ca_file {
        builder = builder.add_root_certificate(read_ca_file(path)?);
    }
    builder
        .build_rustls()
        .map_err(|e| failure(format!("cannot set up TLS for {}: {e}", settings.server())))
}

fn read_ca_file(path: &Path) -> Result<Certificate, GatewayError> {
    let bad = |msg: String| GatewayError::value("ca_file", msg);
    let pem = crate::tls::read_ca_file(path).map_err(bad)?;
    Certificate::from_pem(&pem).map_err(|e| bad(format!("ca_file {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().copied().collect()
    }

    #[test]
    fn the_data_block_is_dot_stuffed_and_ended() {
        assert_eq!(
            data_block(b".a\r\n.b\r\nc.\n.d\r\n"),
            b"..a\r\n..b\r\nc.\n.d\r\n\r\n.\r\n"
        );
        assert_eq!(data_block(b""), b"\r\n.\r\n");
    }

    #[test]
    fn ports_default_by_security() {
        let base = Path::new("/");
        for (security, port) in [("none", 25), ("starttls", 587), ("tls", 465), ("", 587)] {
            let s = SmtpSettings::from_params(
                &params(&[("host", "mx.test"), ("security", security)]),
                base,
            )
            .unwrap();
            assert_eq!(s.endpoint.port, port, "{security}");
        }
        let s = SmtpSettings::from_params(
            &params(&[("host", "mx.test"), ("port", "2525"), ("security", "tls")]),
            base,
        )
        .unwrap();
        assert_eq!((s.endpoint.port, s.security), (2525, Security::Tls));
    }

    #[test]
    fn bad_settings_name_their_parameter() {
        let base = Path::new("/");
        let err = |pairs: &[(&str, &str)]| {
            SmtpSettings::from_params(&params(pairs), base)
                .err()
                .map(|e| e.object)
        };
        assert_eq!(err(&[]).as_deref(), Some("host"));
        assert_eq!(err(&[("host", "a b")]).as_deref(), Some("host"));
        assert_eq!(
            err(&[("host", "h"), ("port", "70000")]).as_deref(),
            Some("port")
        );
        assert_eq!(
            err(&[("host", "h"), ("security", "ssl3")]).as_deref(),
            Some("security")
        );
        assert_eq!(
            err(&[("host", "h"), ("timeout", "-1")]).as_deref(),
            Some("timeout")
        );
        assert_eq!(
            err(&[("host", "h"), ("login", "u")]).as_deref(),
            Some("password")
        );
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty.pem"), "nothing here").unwrap();
        let e = read_ca_file(&dir.path().join("empty.pem")).err().unwrap();
        assert!(e.msg.contains("no PEM certificate"), "{}", e.msg);
        let e = read_ca_file(&dir.path().join("missing.pem")).err().unwrap();
        assert_eq!(e.object, "ca_file");
    }
}
