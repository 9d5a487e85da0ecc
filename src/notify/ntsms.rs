//! ntsms: SMS notifications through the SMS gateways (`notify_module='ntsms'`).

use crate::notify::{Kind, NotifyError, NotifyFeatures, NotifyModule};
use crate::queue;
use crate::root::MgrRoot;

const KIND: Kind = Kind::Sms;

pub struct Ntsms {
    root: MgrRoot,
}

impl Ntsms {
    pub fn new(root: MgrRoot) -> Self {
        Self { root }
    }
}

impl NotifyModule for Ntsms {
    fn features(&self) -> NotifyFeatures {
        NotifyFeatures {
            features: &["sms"],
            contact_type: Some(KIND.contact_field().to_owned()),
        }
    }

    /// SMS gateways only send: there is never anything to get, and saying so is not
    /// an error BILLmanager should show.
    fn get_message(&self, gate: &str) -> Result<(), NotifyError> {
        crate::info!("getmessage --gate {gate}: SMS gateways only send, nothing to get");
        Ok(())
    }

    fn process_queue(&self) -> Result<(), NotifyError> {
        queue::process(&self.root, &KIND.into())?;
        Ok(())
    }
}
