//! What the channel keeps per bot, under `var/mgrnotify/telegram/<bot id>/`:
//! - `links/<user id>`: `<chat id> <username>`, written when the user sent `/start`;
//!   the link holds only while the user's `telegram` field still names that username;
//! - `offset`: the next update to fetch (everything before it was handled);
//! - `failing`: `<update id> <attempts>` of the update support refused last;
//! - `poll.lock`: held by the one run that polls the bot.
//!
//! Files are replaced whole (written aside, synced, renamed), so a crash leaves the old
//! or the new content, never a torn one; only mgrnotify's user may read them. The token
//! is never written here.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::files;
use crate::root::MgrRoot;

/// Largest state file read (a link or an offset is a line).
const MAX_FILE: u64 = 4096;

/// A user's chat with the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub chat_id: i64,
    /// The username the user had when linking, lower-cased.
    pub username: String,
}

/// The state folder of one bot.
pub struct BotState {
    dir: PathBuf,
}

/// Held while a run polls the bot; released when dropped (or when the run dies).
pub type PollLock = File;

impl BotState {
    pub fn new(root: &MgrRoot, bot_id: &str) -> Self {
        Self {
            dir: root.state_dir(super::CHANNEL).join(bot_id),
        }
    }

    /// The user's link, when they linked with their present `username`.
    pub fn link(&self, user_id: &str, username: &str) -> io::Result<Option<Link>> {
        let Some(path) = self.link_path(user_id) else {
            return Ok(None);
        };
        let Some(text) = read_small(&path)? else {
            return Ok(None);
        };
        let link = text.split_once(' ').and_then(|(chat, name)| {
            Some(Link {
                chat_id: chat.trim().parse().ok()?,
                username: name.trim().to_owned(),
            })
        });
        Ok(link.filter(|l| l.username == normalize_username(username)))
    }

    /// Links a user to a chat (replacing an earlier link).
    pub fn save_link(&self, user_id: &str, chat_id: i64, username: &str) -> io::Result<()> {
        let path = self.link_path(user_id).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad user id '{user_id}'"),
            )
        })?;
        write_durably(
            &path,
            &format!("{chat_id} {}\n", normalize_username(username)),
        )
    }

    /// The next update id to fetch; 0 (Telegram's oldest kept) when none was handled.
    pub fn offset(&self) -> io::Result<i64> {
        match read_small(&self.dir.join("offset"))? {
            None => Ok(0),
            Some(text) => text.trim().parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} does not hold a number",
                        self.dir.join("offset").display()
                    ),
                )
            }),
        }
    }

    /// Records that every update before `next` was handled.
    pub fn confirm(&self, next: i64) -> io::Result<()> {
        write_durably(&self.dir.join("offset"), &format!("{next}\n"))
    }

    /// Counts one more failed attempt to hand update `update_id` on; how many there
    /// were (the count starts afresh for another update).
    pub fn failed_attempt(&self, update_id: i64) -> io::Result<u32> {
        let path = self.dir.join("failing");
        let before = read_small(&path)?
            .and_then(|t| {
                let (id, count) = t.trim().split_once(' ')?;
                (id.parse::<i64>().ok()? == update_id).then(|| count.parse::<u32>().ok())?
            })
            .unwrap_or(0);
        let now = before.saturating_add(1);
        write_durably(&path, &format!("{update_id} {now}\n"))?;
        Ok(now)
    }

    /// The poll lock, or `None` when another run holds it.
    pub fn try_lock(&self) -> io::Result<Option<PollLock>> {
        files::lock(&self.dir.join("poll.lock"), false, files::Access::Private)
    }

    fn link_path(&self, user_id: &str) -> Option<PathBuf> {
        let valid = !user_id.is_empty()
            && user_id.len() <= 20
            && user_id.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| self.dir.join("links").join(user_id))
    }
}

/// A username as compared: without a leading `@`, lower-case (Telegram's usernames
/// are case-insensitive).
pub fn normalize_username(name: &str) -> String {
    name.trim().trim_start_matches('@').to_lowercase()
}

fn read_small(path: &Path) -> io::Result<Option<String>> {
    match files::read_regular(path, MAX_FILE) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(files::FileError::Missing) => Ok(None),
        Err(e) => Err(io::Error::other(format!("{} {e}", path.display()))),
    }
}

/// Replaces `path` with `text` whole, readable by mgrnotify's user only.
fn write_durably(path: &Path, text: &str) -> io::Result<()> {
    files::write_atomically(path, text.as_bytes(), files::Access::Private)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_hold_for_the_username_they_were_made_with() {
        let dir = tempfile::tempdir().unwrap();
        let state = BotState::new(&MgrRoot::new(dir.path()), "123");
        assert_eq!(state.link("7", "alice").unwrap(), None);
        state.save_link("7", 4242, "@Alice").unwrap();
        let link = state.link("7", "alice").unwrap().unwrap();
        assert_eq!(link.chat_id, 4242);
        assert!(state.link("7", "ALICE").unwrap().is_some());
        assert_eq!(state.link("7", "mallory").unwrap(), None);
        assert_eq!(state.link("../7", "alice").unwrap(), None);
        assert!(state.save_link("7/../../x", 1, "a").is_err());
    }

    #[test]
    fn offsets_and_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let state = BotState::new(&MgrRoot::new(dir.path()), "123");
        assert_eq!(state.offset().unwrap(), 0);
        state.confirm(77).unwrap();
        assert_eq!(state.offset().unwrap(), 77);
        assert_eq!(state.failed_attempt(77).unwrap(), 1);
        assert_eq!(state.failed_attempt(77).unwrap(), 2);
        assert_eq!(state.failed_attempt(78).unwrap(), 1);
        let held = state.try_lock().unwrap();
        assert!(held.is_some());
        assert!(state.try_lock().unwrap().is_none());
        drop(held);
        assert!(state.try_lock().unwrap().is_some());
    }
}
