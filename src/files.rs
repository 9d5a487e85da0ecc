//! Reading a file whose name came from input (a queue row, a notice's attachment):
//! opened without following a final symlink and without blocking, checked on the
//! opened descriptor to be a regular file (a FIFO or a device never holds or floods
//! a run), and read up to a size limit.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
