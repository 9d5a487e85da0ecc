//! XMPP for `gate/gwjabber`, on tokio-xmpp: a bot account ([`Account`]), a blocking
//! [`Session`] that sends chat messages, and the long-lived [`receiver`] of a bot.
//! The async runtime stays inside this module: each session and the receiver run
//! their own current-thread tokio runtime, behind plain blocking calls.
//!
//! - [`connector`]: STARTTLS with the system roots plus the operator's `ca_file`.

pub mod connector;
pub mod receiver;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use sasl::common::Credentials;
use tokio::runtime::Runtime;
use tokio_xmpp::connect::{DnsConfig, ServerConnector};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::message::{Lang, Message};
use tokio_xmpp::parsers::ns;
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Client, Stanza};

use crate::xml::Params;

/// How long a login (TCP, STARTTLS, SASL, resource binding) may take.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long handing one message to the server may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// The standard client port, when `host` is given without `port`.
const DEFAULT_PORT: u16 = 5222;

/// A failure, with whether trying again later may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmppError {
    pub msg: String,
    /// The settings are wrong (a bad password, a JID that is no JID): retrying with
    /// them cannot help.
    pub permanent: bool,
}

impl XmppError {
    fn transient(msg: impl Into<String>) -> Self {
        Self {
            msg: msg.into(),
            permanent: false,
        }
    }
    fn permanent(msg: impl Into<String>) -> Self {
        Self {
            msg: msg.into(),
            permanent: true,
        }
    }
}

impl std::fmt::Display for XmppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::log::redact(&self.msg))
    }
}

/// A bot account as a gateway's parameters configure it.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub jid: BareJid,
    password: String,
    /// The server to connect to instead of the JID domain's SRV record.
    host: Option<String>,
    port: u16,
    ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Account({})", self.jid)
    }
}

impl Account {
    /// The account of parameters `jabber`, `password`, `host`, `port` and `ca_file` (a
    /// relative path is taken from `base`, the mgr root). The password is a registered
    /// secret from here on. `Err` names the parameter and says what is wrong.
    pub fn from_params(params: &Params, base: &Path) -> Result<Self, (&'static str, String)> {
        let value = |name: &str| params.get(name).map(str::trim).filter(|v| !v.is_empty());
        let password = params
            .get("password")
            .filter(|p| !p.is_empty())
            .ok_or(("password", "the bot's password is missing".to_owned()))?;
        crate::log::add_secret(password);
        let text = value("jabber").ok_or(("jabber", "the bot's JID is missing".to_owned()))?;
        let jid = BareJid::new(text)
            .ok()
            .filter(|j| j.node().is_some())
            .ok_or((
                "jabber",
                format!("'{text}' is not a JID like bot@example.com"),
            ))?;
        let port = match value("port") {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or(("port", format!("'{p}' is not a port number")))?,
        };
        Ok(Self {
            jid,
            password: password.to_owned(),
            host: value("host").map(str::to_owned),
            port,
            ca_file: value("ca_file").map(|f| base.join(f)),
        })
    }

    /// A file name for what belongs to the account (its receiver's lock): the bare JID,
    /// lower-case, with anything but letters, digits, `.`, `@`, `-` and `_` as `_`.
    pub fn key(&self) -> String {
        self.jid
            .as_str()
            .to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    fn connector(&self) -> Result<connector::StartTls, XmppError> {
        let dns = match &self.host {
            Some(host) => DnsConfig::no_srv(host, self.port),
            None => DnsConfig::srv_default_client(self.jid.domain().as_str()),
        };
        let tls =
            crate::tls::client_config(self.ca_file.as_deref()).map_err(XmppError::permanent)?;
        Ok(connector::StartTls { dns, tls })
    }

    /// Where it connects, for messages.
    fn server(&self) -> String {
        match &self.host {
            Some(host) => format!("{host}:{}", self.port),
            None => format!("the server of {}", self.jid.domain()),
        }
    }

    /// Logs in once (TCP, STARTTLS, SASL) and says why that failed.
    pub async fn check_login(&self) -> Result<(), XmppError> {
        let attempt = async {
            let connector = self.connector()?;
            let jid = Jid::from(self.jid.clone());
            let (pending, binding) = connector
                .connect(&jid, ns::JABBER_CLIENT, Timeouts::default())
                .await
                .map_err(|e| self.explain(e))?;
            let (features, stream) = pending
                .recv_features()
                .await
                .map_err(|e| self.explain(e.into()))?;
            let creds = Credentials::default()
                .with_username(self.jid.node().map(|n| n.as_str()).unwrap_or_default())
                .with_password(self.password.clone())
                .with_channel_binding(binding);
            tokio_xmpp::client_login(stream, features.sasl_mechanisms, creds)
                .await
                .map(|_| ())
                .map_err(|e| self.explain(e))
        };
        match tokio::time::timeout(LOGIN_TIMEOUT, attempt).await {
            Ok(result) => result,
            Err(_) => Err(XmppError::transient(format!(
                "no login at {} within {} s",
                self.server(),
                LOGIN_TIMEOUT.as_secs()
            ))),
        }
    }

    /// An error of the library in an operator's words.
    fn explain(&self, e: tokio_xmpp::Error) -> XmppError {
        let text = e.to_string();
        let at = self.server();
        match e {
            tokio_xmpp::Error::Auth(_) => XmppError::permanent(format!(
                "{at} refused the login of {} ({text}): check the JID and the password",
                self.jid
            )),
            _ if text.contains("UnknownIssuer") => XmppError::permanent(format!(
                "{at}: the server's certificate is not signed by a trusted CA ({text}): a \
                 private CA's certificate goes in ca_file"
            )),
            _ if text.contains("NotValidForName") => XmppError::permanent(format!(
                "{at}: the server's certificate is not for {} ({text})",
                self.jid.domain()
            )),
            _ if text.contains("STARTTLS") => XmppError::permanent(format!("{at}: {text}")),
            // The library shows DNS failures as debug dumps: said plainly here.
            tokio_xmpp::Error::DnsNet(e) if e.is_no_records_found() => {
                XmppError::transient(match &self.host {
                    Some(host) => {
                        format!("cannot find the server {host}: DNS has no address for it")
                    }
                    None => format!(
                        "cannot find the XMPP server of {}: DNS has no SRV record or address \
                         for it; set host (and port) to the server's name",
                        self.jid.domain()
                    ),
                })
            }
            tokio_xmpp::Error::DnsNet(e) => {
                XmppError::transient(format!("cannot look up {at} in DNS: {e}"))
            }
            tokio_xmpp::Error::DnsProto(e) => {
                XmppError::transient(format!("cannot look up {at} in DNS: {e}"))
            }
            _ => XmppError::transient(format!("cannot log in at {at}: {text}")),
        }
    }

    /// A client that logs in (and logs in again after a lost connection, with
    /// tokio-xmpp's growing delay); must be called inside a runtime.
    fn client(&self) -> Result<Client, XmppError> {
        Ok(Client::new_with_connector(
            self.jid.clone(),
            self.password.clone(),
            self.connector()?,
            Timeouts::default(),
        ))
    }
}

/// Waits until `client` is online; `Err` after [`LOGIN_TIMEOUT`].
async fn online(client: &mut Client, account: &Account) -> Result<(), XmppError> {
    let wait = async {
        while let Some(event) = client.next().await {
            if event.is_online() {
                return true;
            }
        }
        false
    };
    match tokio::time::timeout(LOGIN_TIMEOUT, wait).await {
        Ok(true) => Ok(()),
        _ => Err(XmppError::transient(format!(
            "{} did not come online at {} within {} s",
            account.jid,
            account.server(),
            LOGIN_TIMEOUT.as_secs()
        ))),
    }
}

/// A chat message to `to`.
pub fn chat(to: BareJid, text: &str) -> Stanza {
    Stanza::Message(chat_message(to, text))
}

fn chat_message(to: BareJid, text: &str) -> Message {
    Message::chat(Some(Jid::from(to))).with_body(Lang::default(), text.to_owned())
}

/// A logged-in account that sends chat messages, its runtime with it.
pub struct Session {
    runtime: Runtime,
    /// Taken only when the session ends.
    client: Option<Client>,
    account: Arc<Account>,
}

impl Session {
    /// Checks the login (so a wrong password is said at once), then opens the session.
    pub fn open(account: Arc<Account>) -> Result<Self, XmppError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| XmppError::transient(format!("cannot start the XMPP runtime: {e}")))?;
        let client = runtime.block_on(async {
            account.check_login().await?;
            let mut client = account.client()?;
            online(&mut client, &account).await?;
            Ok::<_, XmppError>(client)
        })?;
        Ok(Self {
            runtime,
            client: Some(client),
            account,
        })
    }

    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Hands a chat message to `to` to the server, with `subject` as its `<subject>`
    /// when there is one (as the seed's example sends it).
    pub fn send(&mut self, to: &BareJid, text: &str, subject: &str) -> Result<(), XmppError> {
        let mut message = chat_message(to.clone(), text);
        if !subject.is_empty() {
            message.subjects.insert(Lang::default(), subject.to_owned());
        }
        let stanza = Stanza::Message(message);
        let Some(client) = self.client.as_mut() else {
            return Err(XmppError::transient("the session has ended"));
        };
        let sent = self.runtime.block_on(async {
            // What the server sent meanwhile (pings, a re-login's Online) is read and
            // dropped, so the client's event queue never fills and holds up sending.
            while let Some(Some(_)) = client.next().now_or_never() {}
            tokio::time::timeout(SEND_TIMEOUT, client.send_stanza(stanza)).await
        });
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(XmppError::transient(format!(
                "the message to {to} was not sent: {e}"
            ))),
            Err(_) => Err(XmppError::transient(format!(
                "the message to {to} was not sent within {} s",
                SEND_TIMEOUT.as_secs()
            ))),
        }
    }
}

impl Drop for Session {
    /// Ends the stream politely, within a bound.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            self.runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(2), client.send_end()).await;
            });
        }
    }
}
