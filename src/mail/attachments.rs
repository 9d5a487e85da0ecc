//! Which files a notice may attach, and reading them.
//!
//! A notice names its attachments by path (relative to the mgr root, or absolute);
//! whoever can shape a notice must not be able to mail out any file the module can
//! read. So a path is resolved (every symlink followed) and must end inside the mgr
//! root or a folder listed in `AttachmentDirs` of `mgrnotify.conf` (by default the
//! system's temporary folder); it must be a
//! regular file; and there are limits on count and size. Gateways get the resolved
//! absolute path.

use std::path::{Path, PathBuf};

use crate::files::FileError;
use crate::gateway::Attachment;
use crate::root::MgrRoot;

/// The most bytes of all attachments of one mail together: a mail server refuses a
/// message much larger (base64 adds a third), and a runaway file must not be read
/// into memory whole.
pub const MAX_ATTACHMENT_BYTES: u64 = 16 * 1024 * 1024;

/// The most attachments of one mail.
pub const MAX_ATTACHMENTS: usize = 32;

/// Where attachments may come from: the mgr root, and the folders of `AttachmentDirs`.
#[derive(Debug, Clone)]
pub struct AttachmentPolicy {
    allowed: Vec<PathBuf>,
    root: PathBuf,
}

impl AttachmentPolicy {
    /// The mgr root and `extra` folders (`AttachmentDirs`, see
    /// [`crate::queue::config::QueueConfig`]).
    pub fn new(root: &MgrRoot, extra: &[PathBuf]) -> Self {
        // A folder that does not exist holds nothing to attach.
        let allowed = std::iter::once(root.path())
            .chain(extra.iter().map(PathBuf::as_path))
            .filter_map(|d| d.canonicalize().ok())
            .collect();
        Self {
            allowed,
            root: root.path().to_path_buf(),
        }
    }

    /// The attachments with their resolved absolute paths, names and types; the
    /// first one that is missing, outside the allowed folders, not a regular file or
    /// over a limit is the error (the mail must not go without it).
    pub fn resolve(&self, attachments: &[Attachment]) -> Result<Vec<Attachment>, String> {
        if attachments.len() > MAX_ATTACHMENTS {
            return Err(format!(
                "the notice has {} attachments, more than the {MAX_ATTACHMENTS} a mail may carry",
                attachments.len()
            ));
        }
        let mut total = 0u64;
        attachments
            .iter()
            .map(|a| {
                let resolved = self.resolve_one(a)?;
                total += size_of(Path::new(&resolved.path))?;
                if total > MAX_ATTACHMENT_BYTES {
                    return Err(too_large(&resolved.path));
                }
                Ok(resolved)
            })
            .collect()
    }

    fn resolve_one(&self, attachment: &Attachment) -> Result<Attachment, String> {
        let given = attachment.path.trim();
        if given.is_empty() {
            return Err("an attachment has no file path".into());
        }
        let path = if Path::new(given).is_absolute() {
            PathBuf::from(given)
        } else {
            self.root.join(given)
        };
        let real = path.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("the attachment file {} does not exist", path.display())
            }
            _ => format!("cannot resolve the attachment file {}: {e}", path.display()),
        })?;
        if !self.allowed.iter().any(|dir| real.starts_with(dir)) {
            return Err(format!(
                "refused: the attachment file {} is {}, outside the mgr root and the \
                 AttachmentDirs of mgrnotify.conf",
                path.display(),
                real.display()
            ));
        }
        let name = match attachment.name.trim() {
            "" => file_name(&path),
            name => name.to_owned(),
        };
        Ok(Attachment {
            content_type: match attachment.content_type.trim() {
                "" => guess_type(&name).to_owned(),
                given => given.to_owned(),
            },
            name,
            path: real.display().to_string(),
        })
    }
}

/// The size of a regular file, checked on the opened file.
fn size_of(path: &Path) -> Result<u64, String> {
    let (_, size) = crate::files::open_regular(path).map_err(|e| refused(path, &e))?;
    Ok(size)
}

/// Reads an attachment's file for the mail, counted against `budget` (the bytes the
/// mail's attachments may still take).
pub fn read(path: &Path, budget: &mut u64) -> Result<Vec<u8>, String> {
    let bytes = crate::files::read_regular(path, *budget).map_err(|e| match e {
        FileError::TooLarge(_) => too_large(&path.display().to_string()),
        e => refused(path, &e),
    })?;
    *budget -= bytes.len() as u64;
    Ok(bytes)
}

fn refused(path: &Path, e: &FileError) -> String {
    match e {
        FileError::NotRegular(_) => format!("refused: the attachment file {} {e}", path.display()),
        _ => format!("the attachment file {} {e}", path.display()),
    }
}

fn too_large(path: &str) -> String {
    format!(
        "the attachment file {path} makes the attachments larger than {} MiB together",
        MAX_ATTACHMENT_BYTES / (1024 * 1024)
    )
}

/// The file name shown for `path` when the notice gives none.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".to_owned())
}

/// The MIME type of a file name's extension; `application/octet-stream` when unknown.
pub fn guess_type(name: &str) -> &'static str {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment(path: &str) -> Attachment {
        Attachment {
            path: path.into(),
            ..Attachment::default()
        }
    }

    #[test]
    fn inside_the_root_or_the_listed_folders_only() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        std::fs::create_dir_all(dir.path().join("var/docs")).unwrap();
        std::fs::write(dir.path().join("var/docs/invoice.pdf"), "%PDF").unwrap();
        std::fs::write(other.path().join("x.txt"), "x").unwrap();
        let policy = AttachmentPolicy::new(&root, &[]);

        let got = policy
            .resolve(&[attachment("var/docs/invoice.pdf")])
            .unwrap();
        assert_eq!(got[0].name, "invoice.pdf");
        assert_eq!(got[0].content_type, "application/pdf");
        let real = dir
            .path()
            .canonicalize()
            .unwrap()
            .join("var/docs/invoice.pdf");
        assert_eq!(got[0].path, real.display().to_string());

        let outside = other.path().join("x.txt").display().to_string();
        let e = policy.resolve(&[attachment(&outside)]).unwrap_err();
        assert!(e.contains("outside the mgr root"), "{e}");
        // A symlink inside the root that leads out is outside.
        std::os::unix::fs::symlink(other.path().join("x.txt"), dir.path().join("var/link"))
            .unwrap();
        let e = policy.resolve(&[attachment("var/link")]).unwrap_err();
        assert!(e.contains("outside the mgr root"), "{e}");
        let e = policy
            .resolve(&[attachment("../../etc/passwd")])
            .unwrap_err();
        assert!(e.contains("outside") || e.contains("does not exist"), "{e}");
        let e = policy.resolve(&[attachment("var/docs")]).unwrap_err();
        assert!(e.contains("not a regular file but a folder"), "{e}");
        let e = policy.resolve(&[attachment("var/none.pdf")]).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let many: Vec<Attachment> = (0..=MAX_ATTACHMENTS)
            .map(|_| attachment("var/docs/invoice.pdf"))
            .collect();
        assert!(policy.resolve(&many).unwrap_err().contains("more than"));
        let big = std::fs::File::create(dir.path().join("var/docs/big.bin")).unwrap();
        big.set_len(MAX_ATTACHMENT_BYTES).unwrap();
        let e = policy
            .resolve(&[
                attachment("var/docs/big.bin"),
                attachment("var/docs/invoice.pdf"),
            ])
            .unwrap_err();
        assert!(
            e.contains("invoice.pdf makes the attachments larger than 16 MiB"),
            "{e}"
        );

        let policy = AttachmentPolicy::new(
            &root,
            &[PathBuf::from("/nonexistent"), other.path().to_path_buf()],
        );
        let got = policy.resolve(&[attachment(&outside)]).unwrap();
        assert_eq!(got[0].content_type, "text/plain");
    }
}
