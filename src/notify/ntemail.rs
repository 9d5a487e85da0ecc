//! ntemail: email notifications through the email gateways (`notify_module='ntemail'`:
//! gwsmtp, or any program in `gate/`). The message is text/plain, or
//! multipart/alternative when the template made HTML; the notice's attachments go
//! with it (see [`crate::mail::attachments`] for which files may). Its getmessage reads
//! the incoming mail gateways into tickets ([`crate::inbox`]).

use crate::notify::{Kind, NotifyError, NotifyFeatures, NotifyModule};
use crate::queue;
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
            contact_type: Some(KIND.contact_field().to_owned()),
        }
    }

    fn get_message(&self, gate: &str) -> Result<(), NotifyError> {
        Ok(crate::inbox::get_message(&self.root, gate)?)
    }

    fn process_queue(&self) -> Result<(), NotifyError> {
        queue::process(&self.root, &KIND.into())?;
        Ok(())
    }
}
