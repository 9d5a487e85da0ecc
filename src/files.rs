//! Files under the mgr root. Reading one whose name came from input (a queue row, a
//! notice's attachment): opened without following a final symlink and without
//! blocking, checked on the opened descriptor to be a regular file (a FIFO or a device
//! never holds or floods a run), and read up to a size limit. Writing the files
//! mgrnotify keeps: whole or not at all (a reader or a crash sees the old content or
//! the new, never half); and locks between runs.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file was not read. The text completes "the file X ...".
#[derive(Debug)]
pub enum FileError {
    Missing,
    Open(std::io::Error),
    /// Not a regular file: what it is instead.
    NotRegular(&'static str),
    TooLarge(u64),
    Read(std::io::Error),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Missing => f.write_str("does not exist"),
            FileError::Open(e) => write!(f, "cannot be opened: {e}"),
            FileError::NotRegular(what) => write!(f, "is not a regular file but {what}"),
            FileError::TooLarge(max) => write!(f, "is larger than {max} bytes"),
            FileError::Read(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

/// Opens `path` as a regular file and returns it with its size.
pub fn open_regular(path: &Path) -> Result<(File, u64), FileError> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => FileError::Missing,
            _ if e.raw_os_error() == Some(libc::ELOOP) => FileError::NotRegular("a symlink"),
            _ => FileError::Open(e),
        })?;
    let meta = file.metadata().map_err(FileError::Open)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(FileError::NotRegular(if kind.is_dir() {
            "a folder"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "something else"
        }));
    }
    Ok((file, meta.len()))
}

/// The bytes of the regular file `path`, at most `max_bytes` of them.
pub fn read_regular(path: &Path, max_bytes: u64) -> Result<Vec<u8>, FileError> {
    let (file, size) = open_regular(path)?;
    if size > max_bytes {
        return Err(FileError::TooLarge(max_bytes));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(FileError::Read)?;
    // It grew since the stat.
    if bytes.len() as u64 > max_bytes {
        return Err(FileError::TooLarge(max_bytes));
    }
    Ok(bytes)
}

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
    fn only_regular_files_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "12345").unwrap();
        assert_eq!(read_regular(&file, 5).unwrap(), b"12345");
        assert!(matches!(
            read_regular(&file, 4),
            Err(FileError::TooLarge(4))
        ));
        assert!(matches!(
            read_regular(&dir.path().join("none"), 4),
            Err(FileError::Missing)
        ));
        assert!(matches!(
            read_regular(dir.path(), 4),
            Err(FileError::NotRegular("a folder"))
        ));
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 4),
            Err(FileError::NotRegular("a device"))
        ));
        std::os::unix::fs::symlink(&file, dir.path().join("link")).unwrap();
        let e = read_regular(&dir.path().join("link"), 9).unwrap_err();
        assert_eq!(e.to_string(), "is not a regular file but a symlink");
    }

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
