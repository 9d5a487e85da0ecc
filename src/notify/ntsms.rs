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
        queue::deliver_one(&self.root, ROLE, file).map_err(|e| NotifyError(e.0))
    }

    fn get_message(&self, _gate: &str) -> Result<(), NotifyError> {
        Err(NotifyError(
            "ntsms gateways are outgoing only: there are no messages to get".into(),
        ))
    }

    fn process_queue(&self) -> Result<(), NotifyError> {
        queue::process(&self.root, ROLE)
            .map(|_| ())
            .map_err(|e| NotifyError(e.0))
    }
}
