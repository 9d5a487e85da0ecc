//! The receiver of one bot account: stays logged in (tokio-xmpp logs in again after a
//! lost connection, waiting 1 s, 2 s, ... up to 30 s between tries), announces itself
//! so the server hands over the messages it kept while the bot was away, answers every
//! chat message with what its [`Handler`] says, and ends on SIGTERM or SIGINT, or once
//! the handler no longer wants it (its gateway switched off or changed).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio_xmpp::jid::BareJid;
use tokio_xmpp::parsers::message::{Message, MessageType};
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::{Event, Stanza};

use crate::xmpp::{chat, Account, XmppError};

/// Message ids remembered to drop a message the server hands over twice.
const REMEMBERED: usize = 4096;
/// How often the receiver asks whether it is still wanted.
const RECHECK: Duration = Duration::from_secs(5);

/// What the receiver asks its owner.
pub trait Handler {
    /// The reply to `text` from `from` (a bare JID).
    fn answer(&mut self, from: &BareJid, text: &str) -> String;
    /// False once the receiver should end (nothing it serves is there any more).
    fn wanted(&mut self) -> bool;
}

/// Runs until SIGTERM or SIGINT or until `handler` no longer wants it; `Err` when the
/// account cannot log in at all (a wrong password) or the runtime cannot start.
pub fn run(account: Arc<Account>, handler: &mut impl Handler) -> Result<(), XmppError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| XmppError::transient(format!("cannot start the XMPP runtime: {e}")))?;
    runtime.block_on(async move {
        let signal_error =
            |e: std::io::Error| XmppError::transient(format!("cannot watch for signals: {e}"));
        let mut term = signal(SignalKind::terminate()).map_err(signal_error)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
        // A refused login ends the receiver at once; a server that is away is waited for.
        match account.check_login().await {
            Err(e) if e.permanent => return Err(e),
            Err(e) => crate::warn!("{e}; logging in again in a moment"),
            Ok(()) => {}
        }
        let mut client = account.client()?;
        let mut seen = Seen::default();
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                _ = recheck.tick() => {
                    if handler.wanted() {
                        continue;
                    }
                    crate::info!(
                        "receiver of {}: no active ingoing gateway has these settings any more, stopping",
                        account.jid
                    );
                    break;
                }
                _ = term.recv() => {
                    crate::info!("receiver of {}: SIGTERM, stopping", account.jid);
                    break;
                }
                _ = interrupt.recv() => {
                    crate::info!("receiver of {}: SIGINT, stopping", account.jid);
                    break;
                }
                event = client.next() => event,
            };
            match event {
                None => {
                    return Err(XmppError::transient(format!(
                        "the stream of {} ended",
                        account.jid
                    )))
                }
                Some(Event::Online { resumed, .. }) => {
                    crate::info!("receiver of {}: online", account.jid);
                    if !resumed {
                        let presence = Stanza::Presence(Presence::available());
                        if let Err(e) = client.send_stanza(presence).await {
                            crate::warn!("cannot announce presence: {e}");
                        }
                    }
                }
                Some(Event::Disconnected(e)) => {
                    crate::warn!(
                        "receiver of {}: disconnected ({e}), reconnecting",
                        account.jid
                    )
                }
                Some(Event::Stanza(Stanza::Message(message))) => {
                    let Some((from, text)) = incoming(&message, &account.jid) else {
                        continue;
                    };
                    if !seen.first_time(&from, &message) {
                        crate::info!("a message from {from} came again: already answered");
                        continue;
                    }
                    let reply = handler.answer(&from, &text);
                    if let Err(e) = client.send_stanza(chat(from.clone(), &reply)).await {
                        crate::warn!("cannot answer {from}: {e}");
                    }
                }
                Some(Event::Stanza(_)) => {}
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), client.send_end()).await;
        Ok(())
    })
}

/// The sender and text of a message a person wrote to the bot: a chat or normal
/// message with a body, from someone else's account.
fn incoming(message: &Message, bot: &BareJid) -> Option<(BareJid, String)> {
    if !matches!(message.type_, MessageType::Chat | MessageType::Normal) {
        return None;
    }
    let from = message.from.as_ref()?.to_bare();
    if from.node().is_none() || from == *bot {
        return None;
    }
    let (_, body) = message.get_best_body(Vec::new())?;
    let text = body.trim();
    (!text.is_empty()).then(|| (from, text.to_owned()))
}

/// The ids of the messages answered lately, per sender.
#[derive(Default)]
struct Seen {
    order: VecDeque<String>,
    keys: HashSet<String>,
}

impl Seen {
    /// False when a message with this sender and id was answered already; a message
    /// without an id is always new.
    fn first_time(&mut self, from: &BareJid, message: &Message) -> bool {
        let Some(id) = &message.id else { return true };
        let key = format!("{from}\u{0}{}", id.0);
        if !self.keys.insert(key.clone()) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
        true
    }
}
