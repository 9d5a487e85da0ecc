//! Files mgrnotify keeps under the mgr root: written whole or not at all (a reader
//! or a crash sees the old content or the new, never half), and locks between runs.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Who may read a file written here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// As the umask says (plugin XML, statistics).
    Shared,
    /// The owner only, in folders only the owner may enter: customer mail.
    Private,
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename, creating
/// its folders.
pub fn write_atomically(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = create(&tmp, true, access)?;
    file.write_all(bytes)?;
    if access == Access::Private {
        file.sync_all()?;
    }
    drop(file);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// An exclusive lock on the file `path` (created when missing), held until the returned
/// file is dropped or the process ends. With `wait`, waits for another holder to let
/// go; without, `None` when another holds it.
pub fn lock(path: &Path, wait: bool, access: Access) -> io::Result<Option<File>> {
    let file = create(path, false, access)?;
    let mode = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    // SAFETY: flock on a descriptor we own; it is released when the file is closed.
    if unsafe { libc::flock(file.as_raw_fd(), mode) } == 0 {
        return Ok(Some(file));
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(None)
    } else {
        Err(e)
    }
}

/// Opens `path` for writing, creating it and its folders.
fn create(path: &Path, truncate: bool, access: Access) -> io::Result<File> {
    let (dir_mode, file_mode) = match access {
        Access::Shared => (0o777, 0o666),
        Access::Private => (0o700, 0o600),
    };
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(dir_mode)
            .create(dir)?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(truncate)
        .mode(file_mode)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_whole_files_and_locks_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/state.txt");
        write_atomically(&path, b"one", Access::Private).unwrap();
        write_atomically(&path, b"two", Access::Private).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&path), mode(path.parent().unwrap())), (0o600, 0o700));
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        let lock_path = dir.path().join("x.lock");
        let held = lock(&lock_path, false, Access::Shared)
            .unwrap()
            .expect("free");
        assert!(lock(&lock_path, false, Access::Shared).unwrap().is_none());
        drop(held);
        assert!(lock(&lock_path, true, Access::Shared).unwrap().is_some());
    }
}
