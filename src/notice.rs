//! BILLmanager's notification file: one or more `<notify>` blocks, each a
//! template, the notice as XML text, the user and a fallback subject.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Cause;
use crate::files::FileError;
use crate::root::MgrRoot;
use crate::xml::{self, Params};
use NoticeErrorKind::*;

/// One `<notify>` block.
#[derive(Debug, Clone, Default)]
pub struct Notice {
    /// The template: an XSLT stylesheet, EJS text, or plain text.
    pub tmpl: String,
    /// The notice document as text (`<doc><project>..</project><subject>..`).
    pub notice_xml: String,
    /// The recipient: id, name, email, phone and addon fields.
    pub user: Params,
    /// Used when the notice has no subject of its own.
    pub template_subject: String,
}

/// Why a notification file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeError {
    pub kind: NoticeErrorKind,
    msg: String,
    cause: Cause,
}

/// What is wrong with a notification file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeErrorKind {
    /// It does not exist (any more).
    Missing,
    /// It is outside `var/notify`, not a regular file, or too large: never read.
    Refused,
    /// The system would not let us resolve, open or read it.
    Unreadable,
    /// Its content is not a notification file: not UTF-8, empty, not XML, no block.
    Malformed,
}

impl NoticeError {
    fn new(kind: NoticeErrorKind, msg: String) -> Self {
        Self {
            kind,
            msg,
            cause: Cause::none(),
        }
    }

    fn io(kind: NoticeErrorKind, msg: String, e: std::io::Error) -> Self {
        Self {
            kind,
            msg,
            cause: Cause::new(e),
        }
    }
}

impl fmt::Display for NoticeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for NoticeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.get()
    }
}

/// The queue's notification files: those under the root's `var/notify` (resolved once
/// per run), read and deleted nowhere else.
pub struct QueuedFiles {
    root: MgrRoot,
    /// `var/notify` with every symlink resolved, once it could be.
    dir: std::sync::OnceLock<PathBuf>,
}

/// A queue row's file, read.
pub struct QueuedFile {
    /// Where it really is, every symlink resolved: the path to delete it by.
    pub path: PathBuf,
    pub text: String,
}

impl QueuedFiles {
    pub fn new(root: &MgrRoot) -> Self {
        Self {
            root: root.clone(),
            dir: std::sync::OnceLock::new(),
        }
    }

    fn dir(&self) -> Result<&Path, NoticeError> {
        if let Some(dir) = self.dir.get() {
            return Ok(dir);
        }
        let dir = self.root.notify_files_dir();
        let real = dir.canonicalize().map_err(|e| {
            let msg = format!(
                "cannot resolve the notification folder {}: {e}",
                dir.display()
            );
            NoticeError::io(Unreadable, msg, e)
        })?;
        Ok(self.dir.get_or_init(|| real))
    }

    /// Where a queue row's notification file (`filename`, see
    /// [`MgrRoot::notify_file`]) really is, every symlink resolved, when that is under
    /// `var/notify`: a file elsewhere is never read, sent or deleted.
    pub fn path(&self, filename: &str) -> Result<PathBuf, NoticeError> {
        let path = self.root.notify_file(filename);
        let dir = self.dir()?;
        let real = path.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                let msg = format!("the notification file {} is missing", path.display());
                NoticeError::io(Missing, msg, e)
            }
            _ => {
                let msg = format!(
                    "cannot resolve the notification file {}: {e}",
                    path.display()
                );
                NoticeError::io(Unreadable, msg, e)
            }
        })?;
        if !real.starts_with(dir) {
            return Err(NoticeError::new(
                Refused,
                format!(
                    "refused: the notification file {} is {}, outside {}",
                    path.display(),
                    real.display(),
                    dir.display()
                ),
            ));
        }
        Ok(real)
    }

    /// Reads a queue row's notification file: a regular file under `var/notify` (see
    /// [`Self::path`]) of at most `max_bytes`. It is opened without blocking and
    /// checked on the opened descriptor, so a FIFO or a device never holds or floods
    /// the run.
    pub fn read(&self, filename: &str, max_bytes: u64) -> Result<QueuedFile, NoticeError> {
        let path = self.path(filename)?;
        let text = read_regular(&path, max_bytes)?;
        Ok(QueuedFile { path, text })
    }
}

/// The text of the regular file at `path`, of at most `max_bytes`.
fn read_regular(path: &Path, max_bytes: u64) -> Result<String, NoticeError> {
    let shown = path.display();
    let bytes = crate::files::read_regular(path, max_bytes).map_err(|e| match e {
        FileError::TooLarge(_) => NoticeError::new(
            Refused,
            format!(
                "refused: the notification file {shown} is larger than QueueMaxFileSize \
                 ({max_bytes} bytes)"
            ),
        ),
        FileError::NotRegular(_) => NoticeError::new(
            Refused,
            format!("refused: the notification file {shown} {e}"),
        ),
        FileError::Missing => {
            NoticeError::new(Missing, format!("the notification file {shown} is missing"))
        }
        FileError::Open(io) | FileError::Read(io) => {
            let msg = format!("cannot read the notification file {shown}: {io}");
            NoticeError::io(Unreadable, msg, io)
        }
    })?;
    String::from_utf8(bytes).map_err(|_| {
        NoticeError::new(
            Malformed,
            format!("the notification file {shown} is not UTF-8 text"),
        )
    })
}

/// Parses a notification file's text into its notify blocks (at least one).
pub fn parse_file(text: &str) -> Result<Vec<Notice>, NoticeError> {
    if text.trim().is_empty() {
        return Err(NoticeError::new(
            Malformed,
            "the notification file is empty".into(),
        ));
    }
    let doc = xml::parse(text).map_err(|e| {
        NoticeError::new(Malformed, format!("the notification file is not XML: {e}"))
    })?;
    let root = doc.root_element();
    let blocks: Vec<_> = if root.has_tag_name("notify") {
        vec![root]
    } else {
        root.children()
            .filter(|c| c.has_tag_name("notify"))
            .collect()
    };
    if blocks.is_empty() {
        return Err(NoticeError::new(
            Malformed,
            "the notification file has no <notify> block".into(),
        ));
    }
    Ok(blocks.into_iter().map(notice_from).collect())
}

fn notice_from(block: roxmltree::Node<'_, '_>) -> Notice {
    let child = |name: &str| block.children().find(|c| c.has_tag_name(name));
    let notice_xml = match child("notice_xml") {
        // Escaped text, as BILLmanager writes it; or the document nested as elements.
        Some(n) => match n.first_element_child() {
            Some(inner) => block.document().input_text()[inner.range()].to_owned(),
            None => xml::text_of(n),
        },
        None => String::new(),
    };
    Notice {
        tmpl: child("tmpl").map(xml::text_of).unwrap_or_default(),
        notice_xml,
        user: child("user").map(Params::from_children).unwrap_or_default(),
        template_subject: child("templatesubject")
            .map(xml::text_of)
            .unwrap_or_default(),
    }
}

impl Notice {
    fn notice_doc(&self) -> Option<roxmltree::Document<'_>> {
        xml::parse(&self.notice_xml).ok()
    }

    /// The provider (`project/id` under notice_xml's root) the notice belongs to.
    pub fn provider_id(&self) -> Option<String> {
        let doc = self.notice_doc()?;
        let project = doc
            .root_element()
            .children()
            .find(|c| c.has_tag_name("project"))?;
        let id = project.children().find(|c| c.has_tag_name("id"))?;
        Some(xml::text_of(id).trim().to_owned()).filter(|s| !s.is_empty())
    }

    /// The notice's project block (id, name, ...), for the gateway's `<project>`.
    pub fn project(&self) -> Params {
        self.notice_doc()
            .and_then(|doc| {
                doc.root_element()
                    .children()
                    .find(|c| c.has_tag_name("project"))
                    .map(Params::from_children)
            })
            .unwrap_or_default()
    }

    /// The files to attach: `attachments/attachment` under notice_xml's root (text: the
    /// path; attributes `name` and `type`), as given (see [`crate::mail::attachments`]).
    pub fn attachments(&self) -> Vec<crate::gateway::Attachment> {
        let Some(doc) = self.notice_doc() else {
            return Vec::new();
        };
        doc.root_element()
            .children()
            .filter(|c| c.has_tag_name("attachments"))
            .flat_map(|a| a.children().filter(|c| c.has_tag_name("attachment")))
            .map(|a| crate::gateway::Attachment {
                name: a.attribute("name").unwrap_or_default().trim().to_owned(),
                content_type: a.attribute("type").unwrap_or_default().trim().to_owned(),
                path: xml::text_of(a).trim().to_owned(),
            })
            .collect()
    }

    /// The subject before macros: notice_xml's `subject`, then
    /// `noticeparams/subject`, then `templatesubject`.
    pub fn raw_subject(&self) -> String {
        let from_doc = self.notice_doc().and_then(|doc| {
            let root = doc.root_element();
            let direct = root
                .children()
                .find(|c| c.has_tag_name("subject"))
                .map(xml::text_of);
            let params = || {
                root.children()
                    .find(|c| c.has_tag_name("noticeparams"))?
                    .children()
                    .find(|c| c.has_tag_name("subject"))
                    .map(xml::text_of)
            };
            direct
                .filter(|s| !s.trim().is_empty())
                .or_else(|| params().filter(|s| !s.trim().is_empty()))
        });
        from_doc.unwrap_or_else(|| self.template_subject.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"<doc><notify>
<tmpl>Hello</tmpl>
<notice_xml>&lt;doc&gt;&lt;project&gt;&lt;id&gt;1&lt;/id&gt;&lt;name&gt;Hosting&lt;/name&gt;&lt;/project&gt;&lt;noticeparams&gt;&lt;subject&gt;Params subject&lt;/subject&gt;&lt;/noticeparams&gt;&lt;attachments&gt;&lt;attachment&gt;/tmp/a.pdf&lt;/attachment&gt;&lt;/attachments&gt;&lt;/doc&gt;</notice_xml>
<user><id>7</id><name>client</name><phone>+79990000000</phone></user>
<templatesubject>Fallback</templatesubject>
</notify></doc>"#;

    #[test]
    fn reads_the_design_shape() {
        let n = &parse_file(FILE).unwrap()[0];
        assert_eq!(n.tmpl, "Hello");
        assert_eq!(n.provider_id().as_deref(), Some("1"));
        assert_eq!(n.project().get("name"), Some("Hosting"));
        assert_eq!(n.raw_subject(), "Params subject");
        assert_eq!(n.user.get("phone"), Some("+79990000000"));
        let attachments = n.attachments();
        assert_eq!(attachments.len(), 1);
        assert_eq!(attachments[0].path, "/tmp/a.pdf");
        assert!(attachments[0].name.is_empty() && attachments[0].content_type.is_empty());
    }

    #[test]
    fn subject_order() {
        let mut n = parse_file(FILE).unwrap().remove(0);
        n.notice_xml =
            "<doc><subject>Own</subject><noticeparams><subject>P</subject></noticeparams></doc>"
                .into();
        assert_eq!(n.raw_subject(), "Own");
        n.notice_xml = "<doc/>".into();
        assert_eq!(n.raw_subject(), "Fallback");
    }

    #[test]
    fn bad_files() {
        assert!(parse_file("").is_err());
        assert!(parse_file("<doc>").is_err());
        let e = parse_file("<doc/>").unwrap_err();
        assert!(e.to_string().contains("notify"), "{e}");
        assert_eq!(e.kind, Malformed);
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn only_regular_files_under_var_notify_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        std::fs::create_dir_all(dir.path().join("var/notify/d")).unwrap();
        let files = QueuedFiles::new(&root);
        let read_queued = |name: &str, max: u64| files.read(name, max).map(|f| f.text);
        std::fs::write(dir.path().join("var/notify/d/1"), "text").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        assert_eq!(read_queued("d/1", 4).unwrap(), "text");
        assert_eq!(read_queued("var/notify/d/1", 4).unwrap(), "text");
        let e = read_queued("d/1", 3).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        assert_eq!(e.kind, Refused);
        let e = read_queued("d/2", 4).unwrap_err();
        assert!(e.to_string().contains("is missing"), "{e}");
        assert_eq!(e.kind, Missing);
        assert!(std::error::Error::source(&e).is_some());
        for outside in [
            "../../secret",
            "d/../../../secret",
            "/dev/zero",
            "/etc/passwd",
        ] {
            let e = read_queued(outside, 100).unwrap_err();
            assert_eq!(e.kind, Refused, "{outside}: {e}");
            let e = e.to_string();
            assert!(
                e.contains("refused") && e.contains("outside"),
                "{outside}: {e}"
            );
        }
        let e = read_queued("d", 100).unwrap_err().to_string();
        assert!(e.contains("not a regular file but a folder"), "{e}");
        std::os::unix::fs::symlink("/dev/null", dir.path().join("var/notify/null")).unwrap();
        assert!(read_queued("null", 100)
            .unwrap_err()
            .to_string()
            .contains("outside"));
        std::fs::write(dir.path().join("var/notify/bad"), [0xff, 0xfe]).unwrap();
        assert!(read_queued("bad", 100)
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
    }
}
