//! The Bot API (core.telegram.org/bots/api) as mgrnotify uses it: `getMe`,
//! `getUpdates` and `sendMessage`, each a JSON POST to `/bot<token>/<method>`.
//!
//! Replies are untrusted: the body is capped by [`crate::http`], JSON nesting by
//! serde_json's recursion limit, a batch of updates by [`MAX_UPDATES`], a message's
//! text by [`MAX_TEXT_CHARS`]; anything else is a clear error, never a panic.

use serde_json::{json, Value};

use crate::gateway::GatewayError;
use crate::http::{HttpClient, HttpRequest};
use crate::telegram::Bot;

/// Most updates one `getUpdates` asks for (the Bot API's own maximum).
pub const MAX_UPDATES: usize = 100;
/// Longest text of one message, in characters (the Bot API's own limit): longer
/// outgoing texts are split, longer incoming ones refused.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Longest Telegram username (the Bot API allows 32).
const MAX_USERNAME_CHARS: usize = 32;

/// What a Bot API call failed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The API could not be reached or did not answer in time.
    Transport(String),
    /// The API answered `ok: false` (`error_code`, `description`).
    Refused { code: i64, description: String },
    /// The answer is not the Bot API's JSON.
    BadReply(String),
}

impl ApiError {
    /// Retrying cannot help: a bad token (401), a chat that blocked the bot or does
    /// not exist (403, 400), a method the server does not know (404).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ApiError::Refused {
                code: 400 | 401 | 403 | 404,
                ..
            }
        )
    }

    pub fn into_gateway_error(self) -> GatewayError {
        let permanent = self.is_permanent();
        let e = GatewayError::provider("gwtelegram", self.to_string());
        if permanent {
            e.into_permanent()
        } else {
            e
        }
    }
}

impl std::error::Error for ApiError {}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Transport(msg) => write!(f, "Telegram Bot API not reached: {msg}"),
            ApiError::Refused { code, description } => {
                write!(f, "Telegram Bot API refused ({code}): {description}")
            }
            ApiError::BadReply(msg) => write!(f, "Telegram Bot API answered oddly: {msg}"),
        }
    }
}

/// One incoming private message, as far as mgrnotify reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub chat_id: i64,
    /// A private chat with the bot; groups and channels are not served.
    pub private: bool,
    /// The sender's username without `@`, when they have one.
    pub username: Option<String>,
    /// The sender's client language (`ru`, `en`, ...), when Telegram gives it.
    pub language: Option<String>,
    /// The text; `None` for stickers, photos and the like.
    pub text: Option<String>,
    /// The text was longer than [`MAX_TEXT_CHARS`] and is not kept.
    pub too_long: bool,
}

/// One update of `getUpdates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub update_id: i64,
    /// `None` for the kinds mgrnotify does not serve (edits, callbacks, ...).
    pub message: Option<Message>,
}

/// The Bot API of one bot.
pub struct BotApi<'a> {
    bot: &'a Bot,
    http: &'a HttpClient,
}

impl<'a> BotApi<'a> {
    pub fn new(bot: &'a Bot, http: &'a HttpClient) -> Self {
        Self { bot, http }
    }

    /// The bot's username (`getMe`): checks the token.
    pub fn get_me(&self) -> Result<String, ApiError> {
        let me = self.call("getMe", &json!({}))?;
        me.get("username")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::BadReply("getMe has no username".into()))
    }

    /// The updates from `offset` on, oldest first; asking with `offset` confirms those
    /// before it (Telegram forgets them).
    pub fn get_updates(&self, offset: i64) -> Result<Vec<Update>, ApiError> {
        let body = json!({
            "offset": offset,
            "limit": MAX_UPDATES,
            "timeout": 0,
            "allowed_updates": ["message"],
        });
        let result = self.call("getUpdates", &body)?;
        let list = result
            .as_array()
            .ok_or_else(|| ApiError::BadReply("getUpdates' result is not a list".into()))?;
        if list.len() > MAX_UPDATES {
            return Err(ApiError::BadReply(format!(
                "getUpdates returned {} updates, more than the {MAX_UPDATES} asked for",
                list.len()
            )));
        }
        let mut updates = list
            .iter()
            .map(parse_update)
            .collect::<Result<Vec<_>, _>>()?;
        updates.sort_by_key(|u| u.update_id);
        Ok(updates)
    }

    /// Sends `text` to a chat, in pieces of at most [`MAX_TEXT_CHARS`]; `html` sends
    /// with `parse_mode=HTML` (the text must hold only Telegram's HTML subset). The id
    /// of the first piece.
    pub fn send_message(&self, chat_id: i64, text: &str, html: bool) -> Result<i64, ApiError> {
        let mut first = None;
        for piece in split_text(text, MAX_TEXT_CHARS) {
            let mut body = json!({ "chat_id": chat_id, "text": piece });
            if html {
                body["parse_mode"] = json!("HTML");
            }
            let sent = self.call("sendMessage", &body)?;
            let id = sent
                .get("message_id")
                .and_then(Value::as_i64)
                .ok_or_else(|| ApiError::BadReply("sendMessage has no message_id".into()))?;
            first.get_or_insert(id);
        }
        first.ok_or_else(|| ApiError::BadReply("nothing to send: the text is empty".into()))
    }

    /// One method call: its `result` when the API answered `ok: true`.
    fn call(&self, method: &str, body: &Value) -> Result<Value, ApiError> {
        let url = self
            .bot
            .method_url(method)
            .map_err(|e| ApiError::Transport(e.msg))?;
        let request = HttpRequest {
            method: "POST".into(),
            url,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
        };
        let reply = self
            .http
            .send(&request, self.bot.timeouts)
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        let answer: Value = serde_json::from_str(&reply.body).map_err(|e| {
            ApiError::BadReply(format!(
                "{method}: HTTP {} with a body that is not JSON ({e}): {}",
                reply.status,
                crate::log::excerpt(&reply.body, 200, "…")
            ))
        })?;
        match answer.get("ok").and_then(Value::as_bool) {
            Some(true) => answer
                .get("result")
                .cloned()
                .ok_or_else(|| ApiError::BadReply(format!("{method}: ok without a result"))),
            Some(false) => Err(ApiError::Refused {
                code: answer
                    .get("error_code")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::from(reply.status)),
                description: crate::log::excerpt(
                    answer
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("no description"),
                    300,
                    "…",
                ),
            }),
            None => Err(ApiError::BadReply(format!(
                "{method}: HTTP {} without \"ok\"",
                reply.status
            ))),
        }
    }
}

fn parse_update(value: &Value) -> Result<Update, ApiError> {
    let update_id = value
        .get("update_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::BadReply("an update without update_id".into()))?;
    let message = value.get("message").and_then(parse_message);
    Ok(Update { update_id, message })
}

/// A message with a chat; `None` when it lacks one (then it cannot be answered).
fn parse_message(value: &Value) -> Option<Message> {
    let chat = value.get("chat")?;
    let chat_id = chat.get("id")?.as_i64()?;
    let from = value.get("from");
    let text = value.get("text").and_then(Value::as_str);
    let too_long = text.is_some_and(|t| t.chars().count() > MAX_TEXT_CHARS);
    Some(Message {
        chat_id,
        private: chat.get("type").and_then(Value::as_str) == Some("private"),
        username: from
            .and_then(|f| f.get("username"))
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty() && u.chars().count() <= MAX_USERNAME_CHARS)
            .map(str::to_owned),
        language: from
            .and_then(|f| f.get("language_code"))
            .and_then(Value::as_str)
            .map(|l| l.chars().take(8).collect()),
        text: text.filter(|_| !too_long).map(str::to_owned),
        too_long,
    })
}

/// `text` in pieces of at most `max` characters, cut after the last line break in the
/// second half of a piece, else after its last space there, else at the limit.
pub fn split_text(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        let limit = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let window = &rest[..limit];
        let late = |at: &usize| *at >= limit / 2;
        let cut = window
            .rfind('\n')
            .filter(late)
            .or_else(|| window.rfind(' ').filter(late))
            .map_or(limit, |at| at + 1);
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_split_at_line_breaks_within_the_limit() {
        let text = format!("{}\n{}", "а".repeat(3000), "b".repeat(3000));
        let pieces = split_text(&text, MAX_TEXT_CHARS);
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|p| p.chars().count() <= MAX_TEXT_CHARS));
        assert_eq!(pieces.concat(), text);
        let one_line = "x".repeat(9000);
        let pieces = split_text(&one_line, MAX_TEXT_CHARS);
        assert_eq!(
            pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [4096, 4096, 808]
        );
        assert!(split_text("", 10).is_empty());
        assert_eq!(split_text("ab\ncd ef gh", 8), ["ab\ncd ", "ef gh"]);
    }

    #[test]
    fn updates_are_read_defensively() {
        let u = parse_update(&json!({"update_id": 5, "message": {
            "message_id": 1, "date": 0,
            "chat": {"id": 42, "type": "private"},
            "from": {"id": 42, "is_bot": false, "first_name": "A", "username": "alice",
                     "language_code": "ru"},
            "text": "/start"}}))
        .unwrap();
        let m = u.message.unwrap();
        assert_eq!((m.chat_id, m.private), (42, true));
        assert_eq!(m.username.as_deref(), Some("alice"));
        assert_eq!(m.text.as_deref(), Some("/start"));
        let long = parse_update(&json!({"update_id": 6, "message": {
            "chat": {"id": 1, "type": "private"}, "text": "x".repeat(5000)}}))
        .unwrap();
        assert!(long.message.unwrap().too_long);
        assert_eq!(
            parse_update(&json!({"update_id": 7, "edited_message": {}}))
                .unwrap()
                .message,
            None
        );
        assert!(parse_update(&json!({"message": {}})).is_err());
    }
}
