//! `gate/gwimap` and `gate/gwpop3`: incoming mail, gateways of ntemail. Their forms
//! are described by [`metadata`]; the mailbox is read by [`crate::mail::mailbox`].
//! `--command ingoing` prints the unread mail and counts it as handed on (IMAP
//! \Seen; POP3 UIDLs remembered under `var/mgrnotify/`, deleted with `delete=on`);
//! ntemail's getmessage reads the mailbox in-process instead, and counts a mail as
//! handed on only once it is posted or kept.

use std::sync::OnceLock;

use crate::gateway::input::checked_params;
use crate::gateway::mail_form::{self, option};
use crate::gateway::{
    Delivery, Feature, Features, GatewayError, GatewayModule, GatewaySettings, OutgoingInput,
};
use crate::inbox::state::{key_of, GatewayState, Kept};
use crate::mail::mailbox::{MailboxSettings, Protocol};
use crate::root::MgrRoot;
use crate::script::{Field, FieldKind, Metadata};

/// Bytes of mail one `--command ingoing` reply carries at most (the last message may
/// go past it); the rest stays unread for the next call.
const MAX_REPLY_SOURCES: usize = 64 * 1024 * 1024;

/// gwimap or gwpop3, by its protocol.
pub struct MailboxGateway {
    root: MgrRoot,
    protocol: Protocol,
}

impl MailboxGateway {
    pub fn new(root: &MgrRoot, protocol: Protocol) -> Self {
        Self {
            root: root.clone(),
            protocol,
        }
    }

    /// A failure of the mailbox, named after this gateway.
    fn error(&self, msg: String) -> GatewayError {
        GatewayError::provider(self.protocol.module(), msg)
    }
}

/// The mailbox settings of a gateway's parameters, checked against its form.
pub fn mailbox_settings(
    root: &MgrRoot,
    protocol: Protocol,
    settings: &GatewaySettings,
) -> Result<MailboxSettings, GatewayError> {
    let params = checked_params(metadata(protocol), &settings.params)?;
    MailboxSettings::from_params(protocol, &params, root.path())
}

/// The gateway id state is kept under: the row id BILLmanager passes, else a name
/// made from the server and login (a form being checked has no id yet).
pub fn state_of(
    root: &MgrRoot,
    settings: &GatewaySettings,
    mailbox: &MailboxSettings,
) -> GatewayState {
    let id = settings
        .gateway
        .get("id")
        .or_else(|| settings.params.get("id"))
        .map(str::to_owned)
        .unwrap_or_else(|| key_of(format!("{}/{}", mailbox.server(), mailbox.login).as_bytes()));
    GatewayState::new(root, &id)
}

impl GatewayModule for MailboxGateway {
    fn features(&self) -> Features {
        Features {
            features: vec![
                Feature::Ingoing,
                Feature::Formtune,
                Feature::CheckConnection,
            ],
            notify_module: "ntemail".to_owned(),
        }
    }

    fn outgoing(&self, _input: &OutgoingInput) -> Result<Delivery, GatewayError> {
        Err(GatewayError::new(
            "unsupported",
            "outgoing",
            format!("{} only receives mail", self.protocol.module()),
        ))
    }

    fn ingoing(&self, settings: &GatewaySettings) -> Result<Vec<Vec<u8>>, GatewayError> {
        let mailbox = mailbox_settings(&self.root, self.protocol, settings)?;
        let state = state_of(&self.root, settings, &mailbox);
        let _lock = state
            .lock()
            .map_err(|e| self.error(e))?
            .ok_or_else(|| self.error("another run is reading this mailbox now".into()))?;
        let mut session = mailbox.open(state.uidl_file())?;
        let mut taken = Vec::new();
        let mut sources = Vec::new();
        let mut total = 0;
        for id in session.unread().map_err(|e| self.error(e))? {
            if total >= MAX_REPLY_SOURCES {
                // The rest waits for the next call: one reply is held in memory whole.
                break;
            }
            match session.fetch(&id).map_err(|e| self.error(e))? {
                Ok(source) => {
                    total += source.len();
                    sources.push(source);
                }
                Err(size) => {
                    let reason = format!("message {id} of {size} bytes is too large to fetch");
                    crate::warn!("{reason}: left on the server");
                    state
                        .keep(
                            Kept::Failed,
                            &key_of(format!("{id}/{size}").as_bytes()),
                            None,
                            &reason,
                        )
                        .map_err(|e| self.error(e))?;
                }
            }
            taken.push(id);
        }
        // Printed next: counted as handed on now.
        for id in &taken {
            session.handed_on(id).map_err(|e| self.error(e))?;
        }
        session.close().map_err(|e| self.error(e))?;
        crate::info!(
            "ingoing: {} message(s) from {}",
            sources.len(),
            mailbox.server()
        );
        Ok(sources)
    }

    fn check_connection(&self, settings: &GatewaySettings) -> Result<(), GatewayError> {
        let mailbox = mailbox_settings(&self.root, self.protocol, settings)?;
        let state = state_of(&self.root, settings, &mailbox);
        let mut session = mailbox.open(state.uidl_file())?;
        session.close().map_err(|e| self.error(e))
    }

    fn password_fields(&self) -> Vec<String> {
        metadata(self.protocol).password_fields()
    }
}

/// The form of gwimap or gwpop3: fields, labels and hints in English and Russian.
pub fn metadata(protocol: Protocol) -> &'static Metadata {
    static IMAP: OnceLock<Metadata> = OnceLock::new();
    static POP3: OnceLock<Metadata> = OnceLock::new();
    match protocol {
        Protocol::Imap => IMAP.get_or_init(|| build(protocol)),
        Protocol::Pop3 => POP3.get_or_init(|| build(protocol)),
    }
}

fn build(protocol: Protocol) -> Metadata {
    let (name, plain, tls) = match protocol {
        Protocol::Imap => ("IMAP", 143, 993),
        Protocol::Pop3 => ("POP3", 110, 995),
    };
    let mut fields = vec![
        Field {
            required: true,
            identifier: true,
            ..Field::text(
                "host",
                ("Mail server", "Почтовый сервер"),
                (
                    "Host name or address of the server, e.g. imap.gmail.com",
                    "Имя или адрес сервера, например imap.yandex.ru",
                ),
            )
        },
        Field::text(
            "port",
            ("Port", "Порт"),
            (
                &format!("Empty: {plain} with STARTTLS or without encryption, {tls} with TLS"),
                &format!("Пусто — {plain} для STARTTLS и без шифрования, {tls} для TLS"),
            ),
        ),
        mail_form::security(vec![
            option("starttls", "STARTTLS", "STARTTLS"),
            option("tls", "TLS from the start", "TLS сразу"),
            option(
                "none",
                "None (a local server only)",
                "Без шифрования (только локальный сервер)",
            ),
        ]),
        Field {
            required: true,
            identifier: true,
            ..Field::text(
                "login",
                ("Login", "Логин"),
                (
                    "The mailbox's user name",
                    "Имя пользователя почтового ящика",
                ),
            )
        },
        mail_form::password(true),
    ];
    match protocol {
        Protocol::Imap => fields.push(Field::text(
            "folder",
            ("Folder", "Папка"),
            (
                "Where the mail to read is; INBOX when empty",
                "Откуда читать почту; пусто — INBOX",
            ),
        )),
        Protocol::Pop3 => fields.push(Field {
            kind: FieldKind::Checkbox,
            default: Some("off".into()),
            ..Field::text(
                "delete",
                ("Delete fetched mail", "Удалять полученные письма"),
                (
                    "Off: the mail stays on the server and is remembered as fetched",
                    "Выключено — письма остаются на сервере и запоминаются как полученные",
                ),
            )
        }),
    }
    fields.extend([Field::text(
        "ticket_pattern",
        ("Ticket number pattern", "Шаблон номера тикета"),
        (
            "A regular expression whose first group is the ticket number in a \
                 subject; \\[#(\\d+)\\] when empty",
            "Регулярное выражение, первая группа которого — номер тикета в теме; \
                 пусто — \\[#(\\d+)\\]",
        ),
    )]);
    fields.extend(mail_form::ca_file_and_timeout());
    Metadata {
        title_en: format!("{name} (incoming email)"),
        title_ru: format!("{name} (входящая почта)"),
        description_en: format!(
            "Incoming email from a mailbox over {name}: mail from customers becomes \
             tickets"
        ),
        description_ru: format!(
            "Входящая почта из ящика по {name}: письма клиентов становятся тикетами"
        ),
        notify_module: "ntemail".into(),
        required_one_of: Vec::new(),
        contact: None,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_differ_only_where_the_protocols_do() {
        let imap = metadata(Protocol::Imap);
        let pop3 = metadata(Protocol::Pop3);
        assert!(imap.field("folder").is_some() && imap.field("delete").is_none());
        assert!(pop3.field("delete").is_some() && pop3.field("folder").is_none());
        for m in [imap, pop3] {
            assert_eq!(m.password_fields(), ["password"]);
            let pattern = m.field("ticket_pattern").expect("ticket_pattern");
            for hint in [&pattern.hint_en, &pattern.hint_ru] {
                assert!(
                    hint.contains(crate::inbox::DEFAULT_TICKET_PATTERN),
                    "{hint}"
                );
            }
        }
    }
}
