//! ntsms: SMS notifications through the SMS gateways (`notify_module='ntsms'`).

use std::path::Path;

use crate::notify::{NotifyError, NotifyFeatures, NotifyModule};
use crate::queue;
use crate::root::MgrRoot;

const ROLE: &str = "ntsms";

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
            contact_type: "phone",
        }
    }

    fn user_notify(&self, file: &Path) -> Result<(), NotifyError> {
        queue::deliver_one(&self.root, ROLE, self.features().contact_type, file)
            .map_err(|e| NotifyError(e.0))
    }

    /// SMS gateways only send: there is never anything to get, and saying so is not
    /// an error BILLmanager should show.
    fn get_message(&self, gate: &str) -> Result<(), NotifyError> {
        crate::info!("getmessage --gate {gate}: SMS gateways only send, nothing to get");
        Ok(())
    }

    fn process_queue(&self) -> Result<(), NotifyError> {
        queue::process(&self.root, ROLE, self.features().contact_type)
            .map(|_| ())
            .map_err(|e| NotifyError(e.0))
    }
}
