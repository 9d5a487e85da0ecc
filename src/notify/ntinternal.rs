//! ntinternal: notifications for the client area. Send only, no gateways: each row's
//! message is stored in a table of mgrnotify's own (`InternalTable` in
//! `mgrnotify.conf`, default `mgrnotify_internal`; see
//! [`crate::db::schema::create_internal_table`]), in the transaction that removes the
//! row from the queue.

use crate::notify::{Kind, NotifyError, NotifyFeatures, NotifyModule};
use crate::queue;
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
        queue::process(&self.root, &KIND.into())?;
        Ok(())
    }
}
