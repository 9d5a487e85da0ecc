//! ntemail: email notifications (`notify_module='ntemail'`); its getmessage reads the
//! incoming mail gateways into tickets ([`crate::inbox`]).

use crate::notify::{Kind, NotifyError, NotifyFeatures, NotifyModule};
use crate::root::MgrRoot;

const KIND: Kind = Kind::Email;

pub struct Ntemail {
    root: MgrRoot,
}

impl Ntemail {
    pub fn new(root: MgrRoot) -> Self {
        Self { root }
    }
}

impl NotifyModule for Ntemail {
    fn features(&self) -> NotifyFeatures {
        NotifyFeatures {
            features: &["html"],
            contact_type: KIND.contact_field(),
        }
    }

    fn get_message(&self, gate: &str) -> Result<(), NotifyError> {
        Ok(crate::inbox::get_message(&self.root, gate)?)
    }

    fn process_queue(&self) -> Result<(), NotifyError> {
        Err(NotifyError::NotAvailable(KIND.role()))
    }
}
