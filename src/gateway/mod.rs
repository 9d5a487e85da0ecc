//! The gateway module protocol (the seed's "Gateway module architecture"): the trait
//! every gateway role implements, and `serve`, which answers one `--command` with XML
//! on stdout. Errors are mapped to BILLmanager's error XML here and nowhere else.

pub mod incoming;
pub mod input;
pub mod jabber;
pub mod mail_form;
pub mod messages;
pub mod program;
pub mod script;
pub mod smtp;
pub mod telegram;

use std::fmt;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

pub use input::{Attachment, GatewaySettings, OutgoingInput};
pub use messages::{messages_xml, parse_messages};

use crate::error::BillmgrError;
use crate::mail::mailbox::Protocol;
use crate::root::MgrRoot;
use crate::script::Metadata;
use crate::xml;

/// Largest stdin a gateway command accepts; BILLmanager sends a few kilobytes.
const MAX_INPUT: u64 = 16 * 1024 * 1024;

/// Error types that say the request itself is wrong (bad input XML, a missing or bad
/// parameter): the same request fails the same way every time. A third-party module's
/// error XML with one of these types is permanent too.
const PERMANENT_TYPES: &[&str] = &["xml", "missed", "value"];

/// A failure as BILLmanager shows it: `<error type=".." object=".."><msg>..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    /// BILLmanager's error type: `xml`, `missed`, `value`, `gateway`, `script`, ...
    pub kind: String,
    /// What the error is about: a parameter name, a provider, a script.
    pub object: String,
    /// Human text for the operator.
    pub msg: String,
    /// The request can never succeed as it is (an invalid number, a gateway set up
    /// wrongly): the queue records it at once for an operator instead of retrying.
    pub permanent: bool,
}

impl GatewayError {
    pub fn new(kind: &str, object: &str, msg: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            object: object.to_owned(),
            msg: msg.into(),
            permanent: PERMANENT_TYPES.contains(&kind),
        }
    }
    /// The same error, marked as one that retrying cannot cure.
    pub fn into_permanent(mut self) -> Self {
        self.permanent = true;
        self
    }
    /// The input is not the XML the command expects.
    pub fn xml(msg: impl Into<String>) -> Self {
        Self::new("xml", "", msg)
    }
    /// A required parameter is missing.
    pub fn missed(name: &str) -> Self {
        Self::new(
            "missed",
            name,
            format!("required parameter '{name}' is missing"),
        )
    }
    /// A parameter has a value the module cannot use.
    pub fn value(name: &str, msg: impl Into<String>) -> Self {
        Self::new("value", name, msg)
    }
    /// The provider refused or failed: its answer is in `msg`.
    pub fn provider(module: &str, msg: impl Into<String>) -> Self {
        Self::new("gateway", module, msg)
    }

    pub fn to_xml(&self) -> String {
        crate::error::to_xml(self)
    }
}

impl BillmgrError for GatewayError {
    fn error_type(&self) -> &str {
        &self.kind
    }

    fn object(&self) -> &str {
        &self.object
    }

    fn message(&self) -> String {
        self.msg.clone()
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.object.is_empty() {
            write!(f, "{}: {}", self.kind, self.msg)
        } else {
            write!(f, "{} ({}): {}", self.kind, self.object, self.msg)
        }
    }
}

impl std::error::Error for GatewayError {}

/// The seed's gateway features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Outgoing,
    Ingoing,
    Formtune,
    CheckConnection,
}

impl Feature {
    /// Every feature of the seed's gateway protocol.
    pub const ALL: [Feature; 4] = [
        Feature::Outgoing,
        Feature::Ingoing,
        Feature::Formtune,
        Feature::CheckConnection,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Feature::Outgoing => "outgoing",
            Feature::Ingoing => "ingoing",
            Feature::Formtune => "formtune",
            Feature::CheckConnection => "check_connection",
        }
    }
}

/// What `--command features` reports.
#[derive(Debug, Clone)]
pub struct Features {
    pub features: Vec<Feature>,
    pub notify_module: String,
}

impl Features {
    /// The commands a gateway with these features serves: `features` and each feature.
    pub fn commands(&self) -> Vec<&'static str> {
        std::iter::once("features")
            .chain(self.features.iter().map(|f| f.name()))
            .collect()
    }

    pub fn to_xml(&self) -> String {
        let mut w = xml::Writer::new();
        w.start("doc");
        w.start("features");
        for f in &self.features {
            w.start("feature");
            w.attr("name", f.name());
            w.end();
        }
        w.end();
        w.start("notify_module");
        w.text(&self.notify_module);
        w.finish() + "\n"
    }
}

/// A message the provider accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// The provider's id for the message, when it gives one.
    pub id: Option<String>,
}

impl Delivery {
    pub fn to_xml(&self) -> String {
        match &self.id {
            None => "<doc/>\n".to_owned(),
            Some(id) => {
                let mut w = xml::Writer::new();
                w.start("doc");
                w.start("id");
                w.text(id);
                w.finish() + "\n"
            }
        }
    }
}

/// A gateway module, as the seed's C++ API has it.
pub trait GatewayModule {
    fn features(&self) -> Features;
    /// Sends one message.
    fn outgoing(&self, input: &OutgoingInput) -> Result<Delivery, GatewayError>;
    /// Fetches received messages (their raw source) and counts them as handed on.
    fn ingoing(&self, _settings: &GatewaySettings) -> Result<Vec<Vec<u8>>, GatewayError> {
        Err(unsupported("ingoing"))
    }
    /// Tunes the gateway edit form; the default leaves it as it is.
    fn formtune(&self, form: &str) -> Result<String, GatewayError> {
        Ok(form.to_owned())
    }
    /// Checks the credentials entered into the form against the provider.
    fn check_connection(&self, _settings: &GatewaySettings) -> Result<(), GatewayError> {
        Err(unsupported("check_connection"))
    }
    /// Names of the module's password fields, whose values are secrets wherever
    /// they appear in a command's input.
    fn password_fields(&self) -> Vec<String> {
        Vec::new()
    }
}

fn unsupported(command: &str) -> GatewayError {
    GatewayError::new(
        "unsupported",
        command,
        format!("this gateway does not support --command {command}"),
    )
}

/// Answers one command: reads stdin where the command takes input, writes the reply
/// XML to stdout. Success exits 0, an error XML exits 1.
pub fn serve(module: &dyn GatewayModule, command: &str) -> ExitCode {
    let reply = answer(module, command, &mut std::io::stdin().lock());
    let (text, code) = match reply {
        Ok(text) => (text, ExitCode::SUCCESS),
        Err(e) => {
            crate::error!("--command {command}: {e}");
            (e.to_xml(), ExitCode::FAILURE)
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    code
}

/// The commands the gateway `name` serves, for `--help`; all of them when a script
/// cannot be read (its error comes with the first command).
pub fn commands(root: &MgrRoot, name: &str, build: crate::roles::Build) -> Vec<&'static str> {
    let features = match build {
        crate::roles::Build::Builtin(builtin) => Some(builtin.open(root).features()),
        _ => script::ScriptGateway::open(root, name)
            .ok()
            .map(|module| module.features()),
    };
    features.map_or_else(
        || {
            Features {
                features: Feature::ALL.to_vec(),
                notify_module: String::new(),
            }
            .commands()
        },
        |f| f.commands(),
    )
}

/// The reply text for `command`, given stdin.
pub fn answer(
    module: &dyn GatewayModule,
    command: &str,
    stdin: &mut dyn Read,
) -> Result<String, GatewayError> {
    let features = module.features();
    let supported = |f: Feature| features.features.contains(&f);
    // Every input's secrets are known before anything can log or echo it.
    let read = |stdin: &mut dyn Read| {
        let text = read_input(stdin)?;
        input::register_form_secrets(&text, &module.password_fields());
        Ok::<_, GatewayError>(text)
    };
    match command {
        "features" => Ok(features.to_xml()),
        "formtune" => {
            let form = read(stdin)?;
            parse_input(&form)?;
            if !supported(Feature::Formtune) {
                return Ok(form);
            }
            let tuned = module.formtune(&form)?;
            xml::parse(&tuned).map_err(|e| {
                GatewayError::new(
                    "xml",
                    "formtune",
                    format!("the tuned form is not an XML document: {e}"),
                )
            })?;
            Ok(tuned)
        }
        "check_connection" if supported(Feature::CheckConnection) => {
            let form = read(stdin)?;
            let doc = parse_input(&form)?;
            module.check_connection(&GatewaySettings::from_doc(&doc)?)?;
            Ok(form)
        }
        "outgoing" if supported(Feature::Outgoing) => {
            let input = OutgoingInput::parse(&read(stdin)?)?;
            crate::info!(
                "outgoing: user {} via gateway {}",
                input.user.get("id").unwrap_or("?"),
                input.settings.gateway.get("id").unwrap_or("?")
            );
            let delivery = module.outgoing(&input)?;
            crate::info!(
                "outgoing: sent, provider id {}",
                delivery.id.as_deref().unwrap_or("none")
            );
            Ok(delivery.to_xml())
        }
        "ingoing" if supported(Feature::Ingoing) => {
            let doc_text = read(stdin)?;
            let doc = parse_input(&doc_text)?;
            let messages = module.ingoing(&GatewaySettings::from_doc(&doc)?)?;
            Ok(messages_xml(&messages) + "\n")
        }
        "outgoing" | "ingoing" | "check_connection" => Err(unsupported(command)),
        "" => Err(GatewayError::new(
            "missed",
            "command",
            format!("no --command given: use {}", features.commands().join(", ")),
        )),
        other => Err(GatewayError::new(
            "unknown",
            "command",
            format!(
                "unknown command '{other}': use {}",
                features.commands().join(", ")
            ),
        )),
    }
}

pub fn read_input(stdin: &mut dyn Read) -> Result<String, GatewayError> {
    let mut buf = Vec::new();
    stdin
        .take(MAX_INPUT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| GatewayError::xml(format!("cannot read stdin: {e}")))?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(GatewayError::xml("input is larger than 16 MiB"));
    }
    String::from_utf8(buf).map_err(|_| GatewayError::xml("input is not UTF-8 text"))
}

fn parse_input(text: &str) -> Result<roxmltree::Document<'_>, GatewayError> {
    if text.trim().is_empty() {
        return Err(GatewayError::xml(
            "empty input: expected an XML document on stdin",
        ));
    }
    xml::parse(text).map_err(|e| GatewayError::xml(format!("input is not an XML document: {e}")))
}

/// Reads a gateway module's reply (stdout and whether it exited 0), for modules run
/// as programs: empty or `<doc/>` is success, `<doc><id>` carries the provider's id,
/// an `<error>` or a failed exit is a failure.
pub fn parse_reply(module: &str, stdout: &str, exited_ok: bool) -> Result<Delivery, GatewayError> {
    let text = stdout.trim();
    if text.is_empty() {
        return if exited_ok {
            Ok(Delivery::default())
        } else {
            Err(GatewayError::provider(
                module,
                "exited with an error and printed nothing",
            ))
        };
    }
    let doc = xml::parse(text).map_err(|e| {
        GatewayError::provider(
            module,
            format!(
                "replied with something that is not XML ({e}): {}",
                excerpt(text)
            ),
        )
    })?;
    let root = doc.root_element();
    if let Some(err) = root.descendants().find(|n| n.has_tag_name("error")) {
        let msg = err
            .children()
            .find(|c| c.has_tag_name("msg"))
            .map(xml::text_of)
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| err.attribute("type").unwrap_or("error").to_owned());
        return Err(GatewayError::new(
            err.attribute("type").unwrap_or("gateway"),
            err.attribute("object").unwrap_or(module),
            msg,
        ));
    }
    if !exited_ok {
        return Err(GatewayError::provider(
            module,
            format!("exited with an error: {}", excerpt(text)),
        ));
    }
    let id = root
        .children()
        .find(|c| c.has_tag_name("id"))
        .map(xml::text_of)
        .filter(|s| !s.trim().is_empty());
    Ok(Delivery { id })
}

/// A chat message's text: the subject on a line of its own above the message, unless
/// the message already starts with it.
pub fn subject_and_text(subject: &str, message: &str) -> String {
    let subject = subject.trim();
    let message = message.trim();
    if subject.is_empty() || message.starts_with(subject) {
        message.to_owned()
    } else {
        format!("{subject}\n\n{message}")
    }
}

/// The first 300 characters of a text, for error messages (redacted).
pub fn excerpt(text: &str) -> String {
    crate::log::excerpt(text, 300, "…")
}

/// The gateways built into the binary, each a role of the role table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `gwsmtp`: outgoing email over SMTP.
    Smtp,
    /// `gwimap`: incoming email over IMAP.
    Imap,
    /// `gwpop3`: incoming email over POP3.
    Pop3,
    /// `gwtelegram`: a Telegram bot.
    Telegram,
    /// `gwjabber`: an XMPP bot account.
    Jabber,
}

impl Builtin {
    /// The gateway, ready for commands; one value serves every message of a run
    /// (and keeps its connections).
    pub fn open(self, root: &MgrRoot) -> Arc<dyn GatewayModule + Send + Sync> {
        match self {
            Builtin::Smtp => Arc::new(smtp::SmtpGateway::new(root)),
            Builtin::Imap => Arc::new(incoming::MailboxGateway::new(root, Protocol::Imap)),
            Builtin::Pop3 => Arc::new(incoming::MailboxGateway::new(root, Protocol::Pop3)),
            Builtin::Telegram => Arc::new(telegram::TelegramGateway::new(root)),
            Builtin::Jabber => Arc::new(jabber::JabberGateway::new(root)),
        }
    }

    /// Runs a command of the role's own that BILLmanager never sends (the Jabber
    /// receiver); `None` for every other command.
    pub fn serve_own(self, root: &MgrRoot, command: &str) -> Option<ExitCode> {
        match (self, command) {
            (Builtin::Jabber, jabber::RECEIVE) => Some(jabber::serve_receive(root)),
            _ => None,
        }
    }

    /// Its settings form, for the plugin XML.
    pub fn metadata(self) -> &'static Metadata {
        match self {
            Builtin::Smtp => smtp::metadata(),
            Builtin::Imap => incoming::metadata(Protocol::Imap),
            Builtin::Pop3 => incoming::metadata(Protocol::Pop3),
            Builtin::Telegram => telegram::metadata(),
            Builtin::Jabber => jabber::metadata(),
        }
    }

    /// The mail protocol of an incoming mail gateway.
    pub fn mailbox_protocol(self) -> Option<Protocol> {
        match self {
            Builtin::Smtp | Builtin::Telegram | Builtin::Jabber => None,
            Builtin::Imap => Some(Protocol::Imap),
            Builtin::Pop3 => Some(Protocol::Pop3),
        }
    }
}

/// A gateway module as the queue and the notification roles use it, shared by workers.
pub type SharedGateway = Arc<dyn GatewayModule + Send + Sync>;

/// Opens gateway module `module` of `gate/`: our own roles run in-process (a provider
/// script, a built-in gateway); any other program there is a
/// [`program::ProgramGateway`] bounded by `timeout`. Our own executable (`own_exe`) is
/// never run as a subprocess.
pub fn open(
    root: &MgrRoot,
    module: &str,
    own_exe: Option<&std::path::Path>,
    timeout: std::time::Duration,
) -> Result<SharedGateway, GatewayError> {
    use crate::roles::Build;
    let unusable = |why: String| Err(GatewayError::new("unknown", module, why).into_permanent());
    let safe = !module.is_empty()
        && !module.starts_with('.')
        && module
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !safe {
        return unusable(format!(
            "gateway_module '{module}' is not a module name in gate/"
        ));
    }
    let path = root.gate_module(module);
    let Ok(target) = path.canonicalize() else {
        return unusable(format!(
            "unknown gateway module '{module}': {} does not exist",
            path.display()
        ));
    };
    if own_exe != Some(target.as_path()) {
        return Ok(Arc::new(program::ProgramGateway::new(
            root, module, path, timeout,
        )));
    }
    match crate::roles::lookup(module).map(|spec| spec.build) {
        Some(Build::Script) => Ok(Arc::new(script::ScriptGateway::open(root, module)?)),
        Some(Build::Builtin(builtin)) => Ok(builtin.open(root)),
        _ => unusable(format!(
            "gate/{module} is mgrnotify itself, but {module} is none of its gateways"
        )),
    }
}

/// The running executable, as [`open`] compares it.
pub fn own_exe() -> Option<std::path::PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_heads_the_message_once() {
        assert_eq!(subject_and_text("Invoice", "Paid."), "Invoice\n\nPaid.");
        assert_eq!(subject_and_text("", "Paid."), "Paid.");
        assert_eq!(
            subject_and_text("Invoice", "Invoice 5 paid."),
            "Invoice 5 paid."
        );
    }

    #[test]
    fn replies() {
        assert_eq!(parse_reply("gwx", "", true), Ok(Delivery::default()));
        assert_eq!(parse_reply("gwx", "<doc/>", true), Ok(Delivery::default()));
        assert_eq!(
            parse_reply("gwx", "<doc><id>42</id></doc>", true)
                .unwrap()
                .id
                .as_deref(),
            Some("42")
        );
        let e = parse_reply(
            "gwx",
            r#"<doc><error type="auth"><msg>bad login</msg></error></doc>"#,
            true,
        )
        .unwrap_err();
        assert_eq!((e.kind.as_str(), e.msg.as_str()), ("auth", "bad login"));
        assert!(parse_reply("gwx", "", false).is_err());
        assert!(parse_reply("gwx", "<doc/>", false).is_err());
        assert!(
            parse_reply("gwx", "Traceback (most recent call last)", true)
                .unwrap_err()
                .msg
                .contains("not XML")
        );
    }
}
