//! What incoming mail keeps between runs, under `var/mgrnotify/` of the mgr root,
//! per gateway id: a lock (one fetch of a gateway at a time), the POP3 UIDLs handed
//! on, the failed attempts per message, the messages posted but not yet marked in the
//! mailbox (so a failure between the two posts nothing twice), and the mails kept for an operator
//! (`unmatched/<gateway>/`, `failed/<gateway>/`). Files holding mail are the owner's
//! only (0600 in 0700 folders): they are customer data.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::files::Access;
use crate::root::MgrRoot;

/// Largest state file read; a line a message.
const MAX_STATE_FILE: u64 = 1024 * 1024;
/// Failed attempts per message: `<key> <count>` lines.
const ATTEMPTS: &str = "attempts";
/// Messages posted but not yet counted as handed on in the mailbox: `<key>` lines.
const POSTED: &str = "posted";

/// Why a mail is kept for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// Nobody in the user table has the sender's address.
    Unmatched,
    /// It could not be posted (or read) three times, or never can be.
    Failed,
}

impl Kept {
    fn folder(self) -> &'static str {
        match self {
            Kept::Unmatched => "unmatched",
            Kept::Failed => "failed",
        }
    }
}

/// One gateway's state.
pub struct GatewayState {
    base: PathBuf,
    gateway: String,
}

/// Held while a gateway's mailbox is read; dropping it (or the process dying) ends it.
pub struct Lock {
    _file: File,
}

impl GatewayState {
    /// The state of gateway `id` (a gateway row id; any other text is hashed into a
    /// safe file name).
    pub fn new(root: &MgrRoot, id: &str) -> Self {
        let safe = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        Self {
            base: root.path().join("var/mgrnotify"),
            gateway: if safe {
                id.to_owned()
            } else {
                key_of(id.as_bytes())
            },
        }
    }

    /// Takes the gateway's lock; `None` when another run holds it.
    pub fn lock(&self) -> Result<Option<Lock>, String> {
        let path = self.path("locks", "lock");
        crate::files::lock(&path, false, Access::Private)
            .map(|held| held.map(|file| Lock { _file: file }))
            .map_err(|e| format!("cannot lock {}: {e}", path.display()))
    }

    /// The file of POP3 UIDLs handed on.
    pub fn uidl_file(&self) -> PathBuf {
        self.path("pop3", "uidl")
    }

    /// Records one more failed attempt for message `key` and returns the count.
    pub fn add_failure(&self, key: &str) -> Result<u32, String> {
        let mut counts = self.entries(ATTEMPTS);
        let n = match counts.iter_mut().find(|(k, _)| k == key) {
            Some((_, n)) => {
                let next = n.parse::<u32>().unwrap_or(0).saturating_add(1);
                *n = next.to_string();
                next
            }
            None => {
                counts.push((key.to_owned(), "1".to_owned()));
                1
            }
        };
        self.save(ATTEMPTS, &counts)?;
        Ok(n)
    }

    /// Forgets the failed attempts of message `key` (posted or kept now).
    pub fn clear_failures(&self, key: &str) -> Result<(), String> {
        self.remove(ATTEMPTS, key)
    }

    /// Whether message `key` was posted in a run that could not count it as handed on
    /// (the mailbox failed just after): it must not be posted again.
    pub fn was_posted(&self, key: &str) -> bool {
        self.entries(POSTED).iter().any(|(k, _)| k == key)
    }

    /// Notes that message `key` was posted, until [`Self::handed_on`].
    pub fn posted(&self, key: &str) -> Result<(), String> {
        let mut keys = self.entries(POSTED);
        if !keys.iter().any(|(k, _)| k == key) {
            keys.push((key.to_owned(), String::new()));
            self.save(POSTED, &keys)?;
        }
        Ok(())
    }

    /// Message `key` counts as handed on in the mailbox now: nothing to remember.
    pub fn handed_on(&self, key: &str) -> Result<(), String> {
        self.remove(POSTED, key)
    }

    /// The `key value` lines of `var/mgrnotify/<folder>/<gateway>.txt`.
    fn entries(&self, folder: &str) -> Vec<(String, String)> {
        let mut text = String::new();
        if let Ok(f) = File::open(self.path(folder, "txt")) {
            let _ = f.take(MAX_STATE_FILE).read_to_string(&mut text);
        }
        text.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ').unwrap_or((l, ""));
                (!k.is_empty()).then(|| (k.to_owned(), v.trim().to_owned()))
            })
            .collect()
    }

    fn remove(&self, folder: &str, key: &str) -> Result<(), String> {
        let mut entries = self.entries(folder);
        let before = entries.len();
        entries.retain(|(k, _)| k != key);
        if entries.len() == before {
            return Ok(());
        }
        self.save(folder, &entries)
    }

    fn save(&self, folder: &str, entries: &[(String, String)]) -> Result<(), String> {
        let text: String = entries.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        let path = self.path(folder, "txt");
        write_private(&path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Keeps a mail's source (when there is one) as `<key>.eml` and the reason as
    /// `<key>.txt` in `<why>/<gateway>/`; the same mail kept twice is one file.
    pub fn keep(
        &self,
        why: Kept,
        key: &str,
        source: Option<&[u8]>,
        reason: &str,
    ) -> Result<PathBuf, String> {
        let dir = self.base.join(why.folder()).join(&self.gateway);
        let eml = dir.join(format!("{key}.eml"));
        if let Some(source) = source {
            write_private(&eml, source)
                .map_err(|e| format!("cannot keep the mail as {}: {e}", eml.display()))?;
        }
        let note = dir.join(format!("{key}.txt"));
        let stamp = time::OffsetDateTime::now_utc()
            .format(crate::db::schema::RETRY_STAMP)
            .unwrap_or_default();
        write_private(&note, format!("{stamp} UTC\n{reason}\n").as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", note.display()))?;
        Ok(if source.is_some() { eml } else { note })
    }

    /// `var/mgrnotify/<folder>/<gateway>.<ext>`.
    fn path(&self, folder: &str, ext: &str) -> PathBuf {
        self.base
            .join(folder)
            .join(format!("{}.{ext}", self.gateway))
    }
}

/// A short stable name for a mail: the first 128 bits of its SHA-256, in hex.
pub fn key_of(source: &[u8]) -> String {
    Sha256::digest(source)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a file of mail or of what was done with it: whole, and private to the owner.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::files::write_atomically(path, bytes, Access::Private)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_per_message_and_survive_a_new_state() {
        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        let s = GatewayState::new(&root, "3");
        assert_eq!(s.add_failure("aa").unwrap(), 1);
        assert_eq!(s.add_failure("bb").unwrap(), 1);
        assert_eq!(GatewayState::new(&root, "3").add_failure("aa").unwrap(), 2);
        assert_eq!(GatewayState::new(&root, "4").add_failure("aa").unwrap(), 1);
        s.clear_failures("aa").unwrap();
        assert_eq!(s.add_failure("aa").unwrap(), 1);
        assert!(!s.was_posted("cc"));
        s.posted("cc").unwrap();
        assert!(GatewayState::new(&root, "3").was_posted("cc"));
        s.handed_on("cc").unwrap();
        assert!(!s.was_posted("cc"));
    }

    #[test]
    fn one_lock_at_a_time_and_odd_ids_are_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        let s = GatewayState::new(&root, "7");
        let held = s.lock().unwrap().expect("free");
        assert!(s.lock().unwrap().is_none());
        drop(held);
        assert!(s.lock().unwrap().is_some());
        let odd = GatewayState::new(&root, "../../etc");
        assert!(!odd.uidl_file().to_string_lossy().contains(".."));
    }

    #[test]
    fn kept_mail_is_private_and_named_by_its_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = GatewayState::new(&MgrRoot::new(dir.path()), "5");
        let key = key_of(b"mail");
        let path = s.keep(Kept::Unmatched, &key, Some(b"mail"), "why").unwrap();
        assert_eq!(
            path,
            dir.path()
                .join(format!("var/mgrnotify/unmatched/5/{key}.eml"))
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"mail");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let note = std::fs::read_to_string(path.with_extension("txt")).unwrap();
        assert!(note.ends_with("UTC\nwhy\n"), "{note}");
    }
}
