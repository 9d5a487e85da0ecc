//! `gate/gwsmtp`: outgoing email over SMTP, a gateway of ntemail. The form it is
//! configured with is described by [`metadata`] (the plugin XML and the parameter
//! checks come from it, as for a provider script); the mail is built by
//! [`crate::mail::message`] and sent by [`crate::mail::smtp`].
//!
//! One `SmtpGateway` keeps its SMTP connections across the messages sent through it:
//! the queue holds one per run and calls it from every worker.

use std::sync::OnceLock;

use crate::gateway::input::checked_params;
use crate::gateway::mail_form::{self, option};
use crate::gateway::{
    Delivery, Feature, Features, GatewayError, GatewayModule, GatewaySettings, OutgoingInput,
};
use crate::mail::message::{self, Content, Sender};
use crate::mail::smtp::{SmtpClient, SmtpSettings};
use crate::root::MgrRoot;
use crate::script::{Field, Metadata};
use crate::template::html_text;
use crate::xml::Params;

pub struct SmtpGateway {
    root: MgrRoot,
    client: SmtpClient,
}

impl SmtpGateway {
    pub fn new(root: &MgrRoot) -> Self {
        Self {
            root: root.clone(),
            client: SmtpClient::new(),
        }
    }

    /// How many SMTP connections are kept for the next message.
    pub fn idle_connections(&self) -> usize {
        self.client.idle_connections()
    }

    fn settings(&self, params: &Params) -> Result<(Params, SmtpSettings), GatewayError> {
        let params = checked_params(metadata(), params)?;
        let settings = SmtpSettings::from_params(&params, self.root.path())?;
        Ok((params, settings))
    }
}

impl GatewayModule for SmtpGateway {
    fn features(&self) -> Features {
        Features {
            features: vec![
                Feature::Outgoing,
                Feature::Formtune,
                Feature::CheckConnection,
            ],
            notify_module: "ntemail".to_owned(),
        }
    }

    fn outgoing(&self, input: &OutgoingInput) -> Result<Delivery, GatewayError> {
        let (params, settings) = self.settings(&input.settings.params)?;
        let sender = Sender::from_params(&params)?;
        // A caller that knows only the seed's XML puts an HTML document into <message>:
        // it goes as HTML with a text version, as ntemail's own HTML does.
        let text_of_html;
        let (text, html) = match input.html.as_deref() {
            Some(html) => (input.message.as_str(), Some(html)),
            None if html_text::looks_like_html(&input.message) => {
                text_of_html = html_text::to_text(&input.message);
                (text_of_html.as_str(), Some(input.message.as_str()))
            }
            None => (input.message.as_str(), None),
        };
        let content = Content {
            recipients: input.user.get("email").unwrap_or_default(),
            subject: &input.subject,
            text,
            html,
            attachments: &input.attachments,
        };
        let mail = message::compose(&sender, &content, self.root.path())?;
        self.client.send(&settings, &mail)?;
        Ok(Delivery {
            id: Some(mail.message_id),
        })
    }

    fn check_connection(&self, settings: &GatewaySettings) -> Result<(), GatewayError> {
        let (params, settings) = self.settings(&settings.params)?;
        Sender::from_params(&params)?;
        self.client.check(&settings)
    }

    fn password_fields(&self) -> Vec<String> {
        metadata().password_fields()
    }
}

/// gwsmtp's form: its fields, labels and hints in English and Russian.
pub fn metadata() -> &'static Metadata {
    static METADATA: OnceLock<Metadata> = OnceLock::new();
    METADATA.get_or_init(|| Metadata {
        title_en: "SMTP (email)".into(),
        title_ru: "SMTP (электронная почта)".into(),
        description_en: "Outgoing email through an SMTP server: STARTTLS or TLS, \
                         AUTH PLAIN or LOGIN"
            .into(),
        description_ru: "Исходящая почта через SMTP-сервер: STARTTLS или TLS, \
                         AUTH PLAIN или LOGIN"
            .into(),
        notify_module: "ntemail".into(),
        required_one_of: Vec::new(),
        contact: None,
        fields: [
            Field {
                required: true,
                identifier: true,
                ..Field::text(
                    "host",
                    ("SMTP server", "SMTP-сервер"),
                    (
                        "Host name or address of the mail server, e.g. smtp.gmail.com",
                        "Имя или адрес почтового сервера, например smtp.yandex.ru",
                    ),
                )
            },
            Field::text(
                "port",
                ("Port", "Порт"),
                (
                    "Empty: 587 with STARTTLS, 465 with TLS, 25 without encryption",
                    "Пусто — 587 для STARTTLS, 465 для TLS, 25 без шифрования",
                ),
            ),
            mail_form::security(vec![
                option("starttls", "STARTTLS (port 587)", "STARTTLS (порт 587)"),
                option(
                    "tls",
                    "TLS from the start (port 465)",
                    "TLS сразу (порт 465)",
                ),
                option(
                    "none",
                    "None (a local relay only)",
                    "Без шифрования (только локальный релей)",
                ),
            ]),
            Field {
                identifier: true,
                ..Field::text(
                    "login",
                    ("Login", "Логин"),
                    (
                        "Empty: send without logging in (a relay that trusts this server)",
                        "Пусто — отправлять без входа (релей, доверяющий этому серверу)",
                    ),
                )
            },
            mail_form::password(false),
            Field {
                required: true,
                ..Field::text(
                    "from_email",
                    ("Sender address", "Адрес отправителя"),
                    (
                        "The From address; the server must allow it for the login",
                        "Адрес в поле From; сервер должен разрешать его для логина",
                    ),
                )
            },
            Field::text(
                "from_name",
                ("Sender name", "Имя отправителя"),
                (
                    "Shown beside the address, e.g. the company's name",
                    "Показывается рядом с адресом, например название компании",
                ),
            ),
            Field::text(
                "reply_to",
                ("Reply-To address", "Адрес для ответов"),
                (
                    "Optional: where customers' replies go, e.g. the support mailbox",
                    "Необязательно: куда идут ответы клиентов, например ящик поддержки",
                ),
            ),
        ]
        .into_iter()
        .chain(mail_form::ca_file_and_timeout())
        .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn smtp_gateway_is_send_and_sync() {
        assert_send_sync::<SmtpGateway>();
    }

    #[test]
    fn the_form_offers_every_security_choice() {
        let security = metadata().field("security").unwrap();
        let values: Vec<&str> = security.options.iter().map(|o| o.value.as_str()).collect();
        assert_eq!(values, crate::mail::smtp::Security::CHOICES);
        assert_eq!(metadata().password_fields(), ["password"]);
    }
}
