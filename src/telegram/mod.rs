//! Telegram as BILLmanager 6 offers it: customers put their Telegram username in the
//! profile (the user-table field `telegram`), send `/start` to the provider's bot, and
//! then get notifications there and can write to support.
//!
//! - [`api`]: the Bot API client (every request and reply bounded);
//! - [`state`]: what the channel keeps under `var/` per bot: chat links, the poll
//!   offset and the poll lock;
//! - [`poll`]: `nttelegram --command getmessage`: fetches updates, links chats,
//!   hands messages to support, answers the sender.
//!
//! `gate/gwtelegram` ([`crate::gateway::telegram`]) sends through the same client.
//! Everything belongs to the bot (its numeric id, the part of the token before `:`),
//! not to a gateway row: BILLmanager keeps the outgoing and the ingoing gateway as two
//! rows with the same token.

pub mod api;
pub mod poll;
pub mod replies;
pub mod state;

use crate::gateway::GatewayError;
use crate::http::{ApiUrl, Timeouts};
use crate::xml::Params;

/// The name of the channel's state folder under `var/mgrnotify/`.
pub const CHANNEL: &str = "telegram";
/// The user-table field (and `<user>` child) that holds a customer's Telegram
/// username, without `@`.
pub const CONTACT_FIELD: &str = "telegram";
/// The Bot API's own origin; `api_url` replaces it.
const API_ORIGIN: &str = "https://api.telegram.org";

/// A bot as a gateway row configures it.
#[derive(Debug, Clone)]
pub struct Bot {
    token: String,
    /// The bot's numeric id: the token's part before `:`. Not a secret; names the
    /// bot's state folder.
    pub id: String,
    api_url: Option<ApiUrl>,
    pub timeouts: Timeouts,
}

impl Bot {
    /// The bot of a gateway's parameters `token`, `api_url` and `timeout`. The token is a
    /// registered secret from here on (it is part of every request's URL path).
    pub fn from_params(params: &Params) -> Result<Self, GatewayError> {
        let token = params
            .get("token")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| GatewayError::missed("token"))?;
        crate::log::add_secret(token);
        let (id, secret) = token.split_once(':').unwrap_or(("", ""));
        crate::log::add_secret(secret);
        let well_formed = !id.is_empty()
            && id.len() <= 20
            && id.bytes().all(|b| b.is_ascii_digit())
            && !secret.is_empty()
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !well_formed {
            return Err(GatewayError::value(
                "token",
                "token must be the bot token BotFather gave, like 123456789:AAH...",
            ));
        }
        let api_url = params
            .get("api_url")
            .filter(|u| !u.trim().is_empty())
            .map(ApiUrl::parse)
            .transpose()
            .map_err(|e| GatewayError::value("api_url", e.to_string()))?;
        let timeouts = Timeouts::from_param(params.get("timeout"))
            .map_err(|e| GatewayError::value("timeout", e.to_string()))?;
        Ok(Self {
            id: id.to_owned(),
            token: token.to_owned(),
            api_url,
            timeouts,
        })
    }

    /// The URL of a Bot API method: `https://api.telegram.org/bot<token>/<method>`,
    /// its origin replaced by `api_url`.
    fn method_url(&self, method: &str) -> Result<String, GatewayError> {
        let url = format!("{API_ORIGIN}/bot{}/{method}", self.token);
        match &self.api_url {
            None => Ok(url),
            Some(api) => api
                .rewrite(&url)
                .map_err(|e| GatewayError::value("api_url", e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().copied().collect()
    }

    #[test]
    fn the_token_names_the_bot_and_is_a_secret() {
        let bot = Bot::from_params(&params(&[
            ("token", "123456:AAE-secret_part9"),
            ("api_url", "http://127.0.0.1:9"),
        ]))
        .unwrap();
        assert_eq!(bot.id, "123456");
        assert_eq!(
            bot.method_url("getMe").unwrap(),
            "http://127.0.0.1:9/bot123456:AAE-secret_part9/getMe"
        );
        let logged = crate::log::redact("GET /bot123456:AAE-secret_part9/getMe");
        assert!(!logged.contains("AAE-secret_part9"), "{logged}");
    }

    #[test]
    fn bad_tokens_are_refused() {
        for bad in [
            "", "abc", "123456", ":abc", "12a:abc", "123:ab/c", "123:a b",
        ] {
            let e = Bot::from_params(&params(&[("token", bad)])).unwrap_err();
            assert!(matches!(e.kind.as_str(), "value" | "missed"), "{bad}: {e}");
        }
    }
}
