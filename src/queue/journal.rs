//! The sent journal: rows a run has sent but whose delete has not committed yet.
//!
//! A worker claims several rows in one transaction and deletes the sent ones when it
//! commits: one commit for many rows instead of one each. Between a send and that
//! commit, a killed run, a lost connection or a refused delete would leave a sent row
//! queued, to be sent again. So each send is first written down, one line in the
//! worker's journal under `var/mgrnotify/sent/<role>/`, and the lines go only when the
//! deletes have committed. A row that a journal names (the same id and file) was
//! sent: whoever claims it next deletes it without sending it again.
//!
//! A journal is locked by its run while the run lives. Once the lock is free and none
//! of its rows is queued any more, it is removed ([`Journals::remove_settled`]).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::db::schema::Task;
use crate::files::{self, Access};
use crate::root::MgrRoot;

/// What a journal line escapes in a filename: the separator, the line end, and `%`.
const IN_LINE: &AsciiSet = &CONTROLS.add(b' ').add(b'%');
/// Larger journals are not read: a worker writes a few lines at a time.
const MAX_JOURNAL_BYTES: u64 = 1 << 20;

/// A role's journals, as one run sees them.
pub struct Journals {
    dir: PathBuf,
    /// Starts the names of this run's journals.
    run: String,
    opened: AtomicUsize,
    /// This run's journals still written to: their rows are in `unsettled`.
    live: Mutex<HashSet<OsString>>,
    /// Rows this run sent whose delete has not committed (or never will): id, filename.
    unsettled: Mutex<HashMap<i64, String>>,
    /// Journals of ended runs, read once: name, and the file's identity when read.
    ended: Mutex<HashMap<OsString, (FileId, Rows)>>,
}

/// A file's inode and size: a journal whose run has ended no longer changes.
type FileId = (u64, u64);
/// A journal's rows: id and filename.
type Rows = Vec<(i64, String)>;

impl Journals {
    /// The journals of `role`, creating their folder.
    pub fn open(root: &MgrRoot, role: &str) -> io::Result<Arc<Self>> {
        let dir = root.state_dir("sent").join(role);
        std::fs::create_dir_all(&dir)?;
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Ok(Arc::new(Self {
            dir,
            run: format!("{}.{started}", std::process::id()),
            opened: AtomicUsize::new(0),
            live: Mutex::default(),
            unsettled: Mutex::default(),
            ended: Mutex::default(),
        }))
    }

    /// A new journal for one worker, locked for as long as it is written to.
    pub fn journal(self: &Arc<Self>) -> io::Result<SentJournal> {
        let n = self.opened.fetch_add(1, Ordering::Relaxed);
        let name = OsString::from(format!("{}-{n}", self.run));
        let path = self.dir.join(&name);
        // Locked under a name readers skip, then renamed: nobody ever sees it unlocked.
        let tmp = self.dir.join(format!(".{}-{n}.tmp", self.run));
        let file = files::lock(&tmp, false, Access::Shared)?
            .ok_or_else(|| io::Error::other("a new journal is locked by another process"))?;
        std::fs::rename(&tmp, &path)?;
        lock(&self.live).insert(name.clone());
        Ok(SentJournal {
            journals: self.clone(),
            file,
            name,
            path,
            pending: Vec::new(),
        })
    }

    /// Which of the claimed `tasks` a journal names: sent already, by this run or
    /// another, and not deleted.
    pub fn sent_before(&self, tasks: &[Task]) -> HashSet<i64> {
        let mut named = HashSet::new();
        {
            let unsettled = lock(&self.unsettled);
            for t in tasks {
                if unsettled.get(&t.id) == Some(&t.filename) {
                    named.insert(t.id);
                }
            }
        }
        for (_, rows) in self.others(false) {
            for t in tasks {
                if rows.iter().any(|(id, f)| *id == t.id && *f == t.filename) {
                    named.insert(t.id);
                }
            }
        }
        named
    }

    /// Removes the journals of ended runs none of whose rows `queued` says is still
    /// in the queue (it counts them).
    pub fn remove_settled<E>(
        &self,
        mut queued: impl FnMut(&[(i64, String)]) -> Result<usize, E>,
    ) -> Result<(), E> {
        for (path, rows) in self.others(true) {
            if queued(&rows)? == 0 {
                let _ = std::fs::remove_file(&path);
                if let Some(name) = path.file_name() {
                    lock(&self.ended).remove(name);
                }
            }
        }
        Ok(())
    }

    /// The journals other than this run's live ones, with their rows: those of runs
    /// still going too, unless `ended_only`.
    fn others(&self, ended_only: bool) -> Vec<(PathBuf, Rows)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.as_encoded_bytes().starts_with(b".") || lock(&self.live).contains(&name) {
                continue;
            }
            let path = entry.path();
            if let Some(rows) = self.read(&path, &name, ended_only) {
                found.push((path, rows));
            }
        }
        found
    }

    /// The rows of the journal at `path`: `None` when it cannot be read, or when its
    /// run still holds it and `ended_only`.
    fn read(&self, path: &Path, name: &OsString, ended_only: bool) -> Option<Rows> {
        let (mut file, size) = files::open_regular(path).ok()?;
        let meta = file.metadata().ok()?;
        let id = (std::os::unix::fs::MetadataExt::ino(&meta), size);
        if let Some((known, rows)) = lock(&self.ended).get(name) {
            if *known == id {
                return Some(rows.clone());
            }
        }
        // SAFETY: flock on a descriptor we own; it is released when the file is closed.
        let ended = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
        if ended_only && !ended {
            return None;
        }
        let mut text = String::new();
        (&mut file)
            .take(MAX_JOURNAL_BYTES)
            .read_to_string(&mut text)
            .ok()?;
        let rows = parse(&text);
        if ended {
            lock(&self.ended).insert(name.clone(), (id, rows.clone()));
        }
        Some(rows)
    }
}

/// One worker's journal.
pub struct SentJournal {
    journals: Arc<Journals>,
    file: File,
    name: OsString,
    path: PathBuf,
    /// Rows written since the last [`Self::settled`].
    pending: Vec<i64>,
}

impl SentJournal {
    /// Row `id` (file `filename`) was sent.
    pub fn record(&mut self, id: i64, filename: &str) -> io::Result<()> {
        lock(&self.journals.unsettled).insert(id, filename.to_owned());
        self.pending.push(id);
        let line = format!("{id} {}\n", utf8_percent_encode(filename, IN_LINE));
        self.file.write_all(line.as_bytes())
    }

    /// Rows were written since the last [`Self::settled`].
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The deletes of every row written so far have committed.
    pub fn settled(&mut self) -> io::Result<()> {
        let mut unsettled = lock(&self.journals.unsettled);
        for id in self.pending.drain(..) {
            unsettled.remove(&id);
        }
        // Back to the start too: the next line must not follow a hole.
        self.file.set_len(0)?;
        self.file.rewind()
    }
}

impl Drop for SentJournal {
    /// A journal whose rows all settled goes. One that did not is left, unlocked, for
    /// whoever claims its rows next; this run keeps them in `unsettled`.
    fn drop(&mut self) {
        lock(&self.journals.live).remove(&self.name);
        if self.pending.is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A journal's rows: `<id> <filename, percent-encoded>` a line; other lines are skipped.
fn parse(text: &str) -> Rows {
    text.lines()
        .filter_map(|line| {
            let (id, filename) = line.split_once(' ')?;
            let filename = percent_decode_str(filename).decode_utf8().ok()?;
            Some((id.parse().ok()?, filename.into_owned()))
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: i64, filename: &str) -> Task {
        Task {
            id,
            filename: filename.to_owned(),
            error_count: 0,
        }
    }

    fn root() -> (tempfile::TempDir, MgrRoot) {
        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        (dir, root)
    }

    #[test]
    fn a_row_is_named_until_its_delete_settles_and_only_with_its_own_file() {
        let (_dir, root) = root();
        let journals = Journals::open(&root, "ntsms").unwrap();
        let mut journal = journals.journal().unwrap();
        journal.record(7, "2026-01-01/a b%\n").unwrap();
        let claimed = [task(7, "2026-01-01/a b%\n"), task(8, "x")];
        assert_eq!(journals.sent_before(&claimed), HashSet::from([7]));
        // Another row reusing the id is not the sent one.
        assert!(journals.sent_before(&[task(7, "other")]).is_empty());
        journal.settled().unwrap();
        assert!(journals.sent_before(&claimed).is_empty());
        // What is written after a settle is all the file holds, and another run reads it.
        journal.record(9, "f/9").unwrap();
        assert_eq!(std::fs::read_to_string(&journal.path).unwrap(), "9 f/9\n");
        let other = Journals::open(&root, "ntsms").unwrap();
        assert_eq!(other.sent_before(&[task(9, "f/9")]), HashSet::from([9]));
        journal.settled().unwrap();
        let path = journal.path.clone();
        drop(journal);
        assert!(!path.exists(), "a settled journal goes with its worker");
    }

    #[test]
    fn another_run_honours_a_journal_left_behind_and_it_goes_once_settled() {
        let (_dir, root) = root();
        let first = Journals::open(&root, "ntsms").unwrap();
        let mut journal = first.journal().unwrap();
        journal.record(3, "f/3").unwrap();
        journal.record(4, "f/4").unwrap();
        let second = Journals::open(&root, "ntsms").unwrap();
        // While the first run holds it, the second honours it but never removes it.
        assert_eq!(
            second.sent_before(&[task(3, "f/3"), task(5, "f/5")]),
            HashSet::from([3])
        );
        second.remove_settled(|_| Ok::<_, ()>(0)).unwrap();
        assert!(journal.path.exists());
        let path = journal.path.clone();
        drop(journal);
        assert!(path.exists(), "a journal with unsettled rows stays");
        assert_eq!(
            second.sent_before(&[task(4, "f/4")]),
            HashSet::from([4]),
            "its rows are still named"
        );
        // Ended, but a row is still queued: kept; none: removed.
        second
            .remove_settled(|rows| Ok::<_, ()>(rows.len()))
            .unwrap();
        assert!(path.exists());
        second.remove_settled(|_| Ok::<_, ()>(0)).unwrap();
        assert!(!path.exists());
        // The first run still knows its own rows were sent.
        assert_eq!(first.sent_before(&[task(4, "f/4")]), HashSet::from([4]));
    }

    #[test]
    fn lines_that_do_not_parse_are_skipped() {
        assert_eq!(
            parse("1 a%20b\nnonsense\n2\nx y\n3 %FF\n4 c\n"),
            [(1, "a b".to_owned()), (4, "c".to_owned())]
        );
    }
}
