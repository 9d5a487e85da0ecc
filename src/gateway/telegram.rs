//! `gate/gwtelegram`: a Telegram bot as a gateway of `nttelegram`. Outgoing sends the
//! message to the chat the customer linked with `/start` ([`crate::telegram::state`]),
//! an HTML one in Telegram's HTML subset ([`html_text::to_telegram`]);
//! ingoing polls the bot ([`crate::telegram::poll`]); check_connection asks `getMe`.
//! Built into the binary rather than a provider script: linking and support need the
//! user and ticket tables, mgrctl and per-bot files under `var/`, which a sandboxed
//! script does not get.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::gateway::input::checked_params;
use crate::gateway::{
    Delivery, Feature, Features, GatewayError, GatewayModule, GatewaySettings, OutgoingInput,
};
use crate::http::HttpClient;
use crate::root::MgrRoot;
use crate::script::{Contact, Field, FieldKind, Metadata};
use crate::telegram::api::{ApiError, BotApi, MAX_TEXT_CHARS};
use crate::telegram::state::BotState;
use crate::telegram::{poll, Bot, CONTACT_FIELD};
use crate::template::html_text;

/// The role's name, as errors name it.
const MODULE: &str = "gwtelegram";

pub struct TelegramGateway {
    root: MgrRoot,
    http: HttpClient,
    /// Each bot's username (from `getMe`), for the "send /start to @bot" advice.
    bot_names: Mutex<HashMap<String, String>>,
}

impl TelegramGateway {
    pub fn new(root: &MgrRoot) -> Self {
        Self {
            root: root.clone(),
            http: HttpClient::new(),
            bot_names: Mutex::new(HashMap::new()),
        }
    }

    /// `@name` of the bot, or "the bot" when Telegram cannot say.
    fn bot_name(&self, bot: &Bot) -> String {
        let mut names = self
            .bot_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(name) = names.get(&bot.id) {
            return name.clone();
        }
        match BotApi::new(bot, &self.http).get_me() {
            Ok(username) => {
                let name = format!("@{username}");
                names.insert(bot.id.clone(), name.clone());
                name
            }
            Err(e) => {
                crate::warn!("cannot learn the bot's name: {e}");
                "the bot".to_owned()
            }
        }
    }
}

/// The bot of a gateway's parameters, checked against the form.
pub fn bot(settings: &GatewaySettings) -> Result<Bot, GatewayError> {
    Bot::from_params(&checked_params(metadata(), &settings.params)?)
}

impl GatewayModule for TelegramGateway {
    fn features(&self) -> Features {
        Features {
            features: vec![
                Feature::Outgoing,
                Feature::Ingoing,
                Feature::CheckConnection,
            ],
            notify_module: "nttelegram".to_owned(),
        }
    }

    fn outgoing(&self, input: &OutgoingInput) -> Result<Delivery, GatewayError> {
        let bot = bot(&input.settings)?;
        let user_id = input
            .user
            .get("id")
            .ok_or_else(|| GatewayError::missed("user/id"))?;
        let username = input
            .user
            .get(CONTACT_FIELD)
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                GatewayError::value(
                    CONTACT_FIELD,
                    format!("user {user_id} has no Telegram username in the profile"),
                )
                .into_permanent()
            })?;
        let link = BotState::new(&self.root, &bot.id)
            .link(user_id, username)
            .map_err(|e| {
                GatewayError::provider(MODULE, format!("cannot read the chat link: {e}"))
            })?;
        let Some(link) = link else {
            return Err(GatewayError::provider(
                MODULE,
                format!(
                    "user {user_id} (Telegram @{}) has not linked the chat: ask the customer \
                     to send /start to {}",
                    username.trim_start_matches('@'),
                    self.bot_name(&bot)
                ),
            )
            .into_permanent());
        };
        let api = BotApi::new(&bot, &self.http);
        let text = crate::gateway::subject_and_text(&input.subject, &input.message);
        let sent = match input
            .html
            .as_deref()
            .and_then(|h| telegram_html(&input.subject, h))
        {
            Some(html) => match api.send_message(link.chat_id, &html, true) {
                Err(ApiError::Refused {
                    code: 400,
                    description,
                }) if description.contains("parse entities") => {
                    crate::warn!("Telegram refused the HTML ({description}): sent as text");
                    api.send_message(link.chat_id, &text, false)
                }
                other => other,
            },
            None => api.send_message(link.chat_id, &text, false),
        };
        let id = sent.map_err(|e| e.into_gateway_error())?;
        Ok(Delivery {
            id: Some(id.to_string()),
        })
    }

    /// Polls the bot and hands every message on itself: nothing is left to return.
    fn ingoing(&self, settings: &GatewaySettings) -> Result<Vec<Vec<u8>>, GatewayError> {
        let bot = bot(settings)?;
        let polled = poll::poll_bot(&self.root, &bot, &self.http)
            .map_err(|e| GatewayError::provider(MODULE, e.to_string()))?;
        crate::info!(
            "ingoing: bot {}: {}",
            bot.id,
            if polled.busy {
                "another run polls this bot".to_owned()
            } else {
                format!("{} update(s) handled", polled.handled)
            }
        );
        Ok(Vec::new())
    }

    fn check_connection(&self, settings: &GatewaySettings) -> Result<(), GatewayError> {
        let bot = bot(settings)?;
        let name = BotApi::new(&bot, &self.http)
            .get_me()
            .map_err(|e| e.into_gateway_error())?;
        crate::info!("check_connection: the token is the bot @{name}'s");
        Ok(())
    }

    fn password_fields(&self) -> Vec<String> {
        metadata().password_fields()
    }
}

/// The message in Telegram's HTML subset, the subject bold above it; `None` when it
/// would not fit one message (the text version is sent instead, split).
fn telegram_html(subject: &str, html: &str) -> Option<String> {
    let body = html_text::to_telegram(html);
    let subject = subject.trim();
    let text = if subject.is_empty() || html_text::to_text(html).starts_with(subject) {
        body
    } else {
        format!("<b>{}</b>\n\n{body}", crate::xml::escape_text(subject))
    };
    (!text.trim().is_empty() && text.chars().count() <= MAX_TEXT_CHARS).then_some(text)
}

/// gwtelegram's form.
pub fn metadata() -> &'static Metadata {
    static METADATA: OnceLock<Metadata> = OnceLock::new();
    METADATA.get_or_init(|| Metadata {
        title_en: "Telegram bot".into(),
        title_ru: "Бот Telegram".into(),
        description_en: "Notifications to customers' Telegram chats, and their messages \
                         to support, through a bot of @BotFather"
            .into(),
        description_ru: "Уведомления в чаты Telegram клиентов и их сообщения в поддержку \
                         через бота от @BotFather"
            .into(),
        notify_module: "nttelegram".into(),
        contact: Some(Contact {
            field: CONTACT_FIELD.into(),
            title_en: "Telegram messages".into(),
            title_ru: "Сообщения Telegram".into(),
            label_en: "Telegram".into(),
            label_ru: "Telegram".into(),
            hint_en: "Your Telegram username, without @; then send /start to our bot".into(),
            hint_ru: "Ваше имя пользователя в Telegram, без @; затем отправьте /start нашему боту"
                .into(),
            check: None,
            size: 64,
        }),
        required_one_of: Vec::new(),
        fields: vec![
            Field {
                kind: FieldKind::Password,
                required: true,
                identifier: true,
                ..Field::text(
                    "token",
                    ("Bot token", "Токен бота"),
                    (
                        "The token @BotFather gave for the bot, like 123456789:AAH...",
                        "Токен, который @BotFather выдал для бота, вида 123456789:AAH...",
                    ),
                )
            },
            Field::text(
                "api_url",
                ("Bot API address", "Адрес Bot API"),
                (
                    "Optional: scheme, host and port of a Bot API server (a local one, a \
                     proxy) instead of https://api.telegram.org",
                    "Необязательно: схема, хост и порт сервера Bot API (локального, прокси) \
                     вместо https://api.telegram.org",
                ),
            ),
            Field::text(
                "timeout",
                ("Timeout, s", "Тайм-аут, с"),
                (
                    "Optional: seconds to wait for each answer of the Bot API, up to 300; \
                     30 when empty",
                    "Необязательно: сколько секунд ждать каждого ответа Bot API, до 300; \
                     пусто — 30",
                ),
            ),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_a_password() {
        assert_eq!(metadata().password_fields(), ["token"]);
    }
}
