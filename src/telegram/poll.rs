//! Incoming Telegram messages: `gwtelegram --command ingoing` (which
//! `nttelegram --command getmessage --gate ID|all` runs for each ingoing gateway) polls
//! the bot's `getUpdates` and handles every update in order:
//! - `/start` links the chat to the user whose `telegram` field holds the sender's
//!   username, and says whether it did;
//! - text from a linked chat goes to support through [`crate::tickets`]: `#<id> text`
//!   a reply to the user's ticket `id`, anything else a new ticket; the bot confirms;
//! - anything from a chat that is not linked gets a short help answer.
//!
//! An update is confirmed (the offset under `var/` moved past it) right after it was
//! handled and before it is answered: a run that dies before that handles it again
//! next time, one that dies after it has posted it once. A failure to hand a message
//! on (the database, mgrctl) ends the bot's poll without confirming it, so nothing is
//! lost; after three runs in which mgrctl did not take it, the message is logged as an
//! error and given up, so it cannot hold up the others. One run polls a bot at a time
//! ([`BotState::try_lock`]).

use std::fmt;
use std::time::{Duration, Instant};

use mysql::PooledConn;

use crate::db::{schema, DbError, DbSettings};
use crate::http::HttpClient;
use crate::root::MgrRoot;
use crate::telegram::api::{ApiError, BotApi, Message, Update};
use crate::telegram::replies::{Lang, Reply};
use crate::telegram::state::BotState;
use crate::telegram::{Bot, CONTACT_FIELD};
use crate::tickets::{Customer, Posted, Sender, TicketError, Tickets};

/// A run stops fetching further batches of a bot after this long; BILLmanager starts
/// getmessage again on its schedule.
const RUN_BUDGET: Duration = Duration::from_secs(50);
/// Runs in which support may fail to take one message before it is given up.
const MAX_ATTEMPTS: u32 = 3;
/// Longest subject of a new ticket, in characters (its first line).
const SUBJECT_CHARS: usize = 100;

/// Why polling a bot could not go on; the update being handled stays unconfirmed.
#[derive(Debug)]
pub enum PollError {
    /// The user or ticket tables could not be read.
    Db(DbError),
    /// The message could not be handed to support (mgrctl, its settings).
    Tickets(TicketError),
    /// The Bot API failed or answered oddly.
    Api(ApiError),
    /// The bot's files under `var/` could not be read or written.
    State {
        what: &'static str,
        source: std::io::Error,
    },
}

impl fmt::Display for PollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollError::Db(e) => e.fmt(f),
            PollError::Tickets(e) => write!(f, "cannot hand the message to support: {e}"),
            PollError::Api(e) => e.fmt(f),
            PollError::State { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for PollError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PollError::Db(e) => Some(e),
            PollError::Tickets(e) => Some(e),
            PollError::Api(e) => Some(e),
            PollError::State { source, .. } => Some(source),
        }
    }
}

impl From<DbError> for PollError {
    fn from(e: DbError) -> Self {
        Self::Db(e)
    }
}

impl From<TicketError> for PollError {
    fn from(e: TicketError) -> Self {
        Self::Tickets(e)
    }
}

impl From<ApiError> for PollError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

/// A failure of the bot's files.
fn state_error(what: &'static str) -> impl FnOnce(std::io::Error) -> PollError {
    move |source| PollError::State { what, source }
}

/// What one poll of a bot did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Polled {
    pub handled: usize,
    /// Another run was polling the bot: this one left it alone.
    pub busy: bool,
}

/// Polls one bot until no update is left or the run's budget is spent.
pub fn poll_bot(root: &MgrRoot, bot: &Bot, http: &HttpClient) -> Result<Polled, PollError> {
    let state = BotState::new(root, &bot.id);
    let Some(_lock) = state
        .try_lock()
        .map_err(state_error("cannot lock the bot's state"))?
    else {
        return Ok(Polled {
            handled: 0,
            busy: true,
        });
    };
    let mut conn = DbSettings::load(root)?
        .connect(1, crate::db::TOOL_TIMEOUT)?
        .get_conn()
        .map_err(|e| DbError::query("cannot get a database connection", e))?;
    let api = BotApi::new(bot, http);
    let mut handler = Handler {
        state: &state,
        tickets: Tickets::load(root)?,
        conn: &mut conn,
    };
    let started = Instant::now();
    let mut polled = Polled::default();
    while started.elapsed() < RUN_BUDGET && !crate::queue::stop::requested() {
        let offset = state
            .offset()
            .map_err(state_error("cannot read the offset"))?;
        let updates = api.get_updates(offset)?;
        let fresh: Vec<Update> = updates
            .into_iter()
            .filter(|u| u.update_id >= offset)
            .collect();
        if fresh.is_empty() {
            break;
        }
        for update in fresh {
            let answer = match handler.handle(&update) {
                Ok(answer) => answer,
                Err(PollError::Tickets(e)) => give_up_after_attempts(&mut handler, &update, e)?,
                Err(e) => return Err(e),
            };
            state
                .confirm(update.update_id.saturating_add(1))
                .map_err(state_error("cannot record the offset"))?;
            polled.handled += 1;
            if let Some((chat_id, text)) = answer {
                if let Err(e) = api.send_message(chat_id, &text, false) {
                    crate::warn!(
                        "update {}: cannot answer chat {chat_id}: {e}",
                        update.update_id
                    );
                }
            }
        }
    }
    Ok(polled)
}

/// After [`MAX_ATTEMPTS`] runs in which support did not take an update's message,
/// the update is given up (logged as an error with the message, the sender told), so
/// one message cannot hold up the bot's others for good; before that, the error.
fn give_up_after_attempts(
    handler: &mut Handler<'_>,
    update: &Update,
    e: TicketError,
) -> Result<Option<(i64, String)>, PollError> {
    let attempts = handler
        .state
        .failed_attempt(update.update_id)
        .map_err(state_error("cannot count the failed attempts"))?;
    let Some(m) = update.message.as_ref().filter(|_| attempts >= MAX_ATTEMPTS) else {
        return Err(PollError::Tickets(e));
    };
    crate::error!(
        "update {}: support did not take the message from chat {} in {attempts} runs, \
         given up: {e}; the message: {}",
        update.update_id,
        m.chat_id,
        crate::log::excerpt(m.text.as_deref().unwrap_or_default(), 500, "…")
    );
    let lang = match m.username.as_deref().map(|u| handler.sender(u)) {
        Some(Ok(Sender::Known(c))) => handler.language(&c),
        _ => None,
    };
    let lang = lang.unwrap_or(Lang::of(m.language.as_deref()));
    Ok(Some((m.chat_id, Reply::NotPosted.text(lang))))
}

struct Handler<'a> {
    state: &'a BotState,
    tickets: Tickets,
    conn: &'a mut PooledConn,
}

impl Handler<'_> {
    /// Handles one update; the answer to send (chat and text), if any. An error leaves
    /// the update unconfirmed.
    fn handle(&mut self, update: &Update) -> Result<Option<(i64, String)>, PollError> {
        let Some(m) = update.message.as_ref().filter(|m| m.private) else {
            crate::debug!(
                "update {}: not a private message, skipped",
                update.update_id
            );
            return Ok(None);
        };
        let lang = Lang::of(m.language.as_deref());
        let is_start = m
            .text
            .as_deref()
            .is_some_and(|t| t == "/start" || t.starts_with("/start "));
        let customer = match m.username.as_deref() {
            None => None,
            Some(username) => match self.sender(username)? {
                Sender::Known(c) => Some(Ok(c)),
                Sender::Ambiguous => Some(Err(Reply::Ambiguous {
                    username: username.to_owned(),
                })),
                Sender::Unknown => Some(Err(Reply::NotRegistered {
                    username: username.to_owned(),
                })),
            },
        };
        if is_start {
            let (reply, lang) = match (customer, m.username.as_deref()) {
                (Some(Ok(c)), Some(username)) => {
                    self.state
                        .save_link(&c.id, m.chat_id, username)
                        .map_err(state_error("cannot save the chat link"))?;
                    crate::info!("user {} linked Telegram chat {}", c.name, m.chat_id);
                    let lang = self.language(&c).unwrap_or(lang);
                    (Reply::Linked { name: c.name }, lang)
                }
                (Some(Err(reply)), _) => (reply, lang),
                _ => (Reply::NoUsername, lang),
            };
            return Ok(Some((m.chat_id, reply.text(lang))));
        }
        let linked = match (customer, m.username.as_deref()) {
            (Some(Ok(c)), Some(username)) => self
                .state
                .link(&c.id, username)
                .map_err(state_error("cannot read the chat link"))?
                .filter(|l| l.chat_id == m.chat_id)
                .map(|_| c),
            _ => None,
        };
        let Some(customer) = linked else {
            return Ok(Some((m.chat_id, Reply::Help.text(lang))));
        };
        let lang = self.language(&customer).unwrap_or(lang);
        let reply = self.hand_to_support(&customer, m)?;
        Ok(Some((m.chat_id, reply.text(lang))))
    }

    /// Hands a linked user's message to support.
    fn hand_to_support(&mut self, customer: &Customer, m: &Message) -> Result<Reply, PollError> {
        if m.too_long {
            return Ok(Reply::TooLong);
        }
        let Some(text) = m.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Reply::TextOnly);
        };
        let (ticket, body) = ticket_reference(text);
        let subject: String = body
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(SUBJECT_CHARS)
            .collect();
        let posted = self
            .tickets
            .post(self.conn, customer, ticket, &subject, body)?;
        Ok(match (posted, ticket) {
            (Posted::Reply(id), _) => Reply::Replied {
                ticket: id.parse().unwrap_or_default(),
            },
            (Posted::NewTicket, Some(id)) => Reply::NotYourTicket {
                ticket: id.parse().unwrap_or_default(),
            },
            (Posted::NewTicket, None) => Reply::Opened,
        })
    }

    /// Who has `username` in the profile, as asked (without `@`) or as customers often
    /// type it (with `@`).
    fn sender(&mut self, username: &str) -> Result<Sender, DbError> {
        match self.tickets.sender(self.conn, CONTACT_FIELD, username)? {
            Sender::Unknown => {
                self.tickets
                    .sender(self.conn, CONTACT_FIELD, &format!("@{username}"))
            }
            found => Ok(found),
        }
    }

    /// The user's own language, when the user table has one.
    fn language(&mut self, c: &Customer) -> Option<Lang> {
        let fields = schema::user_fields(self.conn, &["language".to_owned()], &c.id)?;
        let code = fields.get("language").filter(|l| !l.trim().is_empty())?;
        Some(Lang::of(Some(code)))
    }
}

/// `#123 text` → (Some("123"), "text"); anything else → (None, the text).
fn ticket_reference(text: &str) -> (Option<&str>, &str) {
    let Some(rest) = text.strip_prefix('#') else {
        return (None, text);
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 18 {
        return (None, text);
    }
    let body = rest[digits..].trim();
    if body.is_empty() {
        return (None, text);
    }
    (Some(&rest[..digits]), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_references() {
        assert_eq!(ticket_reference("#123 thanks"), (Some("123"), "thanks"));
        assert_eq!(ticket_reference("#7\nok"), (Some("7"), "ok"));
        assert_eq!(ticket_reference("hello #5"), (None, "hello #5"));
        assert_eq!(ticket_reference("#abc"), (None, "#abc"));
        assert_eq!(ticket_reference("#12"), (None, "#12"));
    }
}
