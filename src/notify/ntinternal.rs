//! ntinternal: notifications for the client area. Send only, no gateways: each row's
//! message is stored in a table of mgrnotify's own (`InternalTable` in
//! `mgrnotify.conf`, default `mgrnotify_internal`; see
//! [`crate::db::schema::create_internal_table`]), in the transaction that removes the
//! row from the queue.

use crate::db::schema::{is_table_name, INTERNAL_TABLE};
use crate::notify::{Kind, NotifyError, NotifyFeatures, NotifyModule};
use crate::root::MgrRoot;

const KIND: Kind = Kind::Internal;

pub struct Ntinternal {
    root: MgrRoot,
}

impl Ntinternal {
    pub fn new(root: MgrRoot) -> Self {
        Self { root }
    }
}

impl NotifyModule for Ntinternal {
    /// Every user has the client area: no contact field is needed. The HTML a template
    /// makes is stored beside its text version.
    fn features(&self) -> NotifyFeatures {
        NotifyFeatures {
            features: &["html"],
            contact_type: None,
        }
    }

    /// Nothing comes in to the client area through a module.
    fn get_message(&self, gate: &str) -> Result<(), NotifyError> {
        crate::info!("getmessage --gate {gate}: client-area notifications only go out");
        Ok(())
    }

    fn process_queue(&self) -> Result<(), NotifyError> {
        super::process_queue(&self.root, KIND)
    }
}

/// The table named by `InternalTable` in `mgrnotify.conf`, or the default.
pub fn table_name(root: &MgrRoot) -> Result<String, NotifyError> {
    let path = root.mgrnotify_conf();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(NotifyError(format!("cannot read {}: {e}", path.display()))),
    };
    let mut name = INTERNAL_TABLE.to_owned();
    for entry in crate::conf::entries(&text).filter(|e| e.key == "InternalTable") {
        if !is_table_name(entry.value) {
            return Err(NotifyError(format!(
                "{} line {}: InternalTable '{}' is not a table name (letters, digits and _, \
                 not starting with a digit, at most 64)",
                path.display(),
                entry.line,
                entry.value
            )));
        }
        entry.value.clone_into(&mut name);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_name_from_the_conf() {
        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        assert_eq!(table_name(&root).unwrap(), "mgrnotify_internal");
        std::fs::create_dir_all(dir.path().join("etc/mgrnotify")).unwrap();
        std::fs::write(
            root.mgrnotify_conf(),
            "QueueWorkers 2\nInternalTable client_notes\n",
        )
        .unwrap();
        assert_eq!(table_name(&root).unwrap(), "client_notes");
        std::fs::write(root.mgrnotify_conf(), "InternalTable notes;drop\n").unwrap();
        let e = table_name(&root).unwrap_err().0;
        assert!(
            e.contains("line 1") && e.contains("not a table name"),
            "{e}"
        );
    }
}
