//! ntsms: SMS notifications through the SMS gateways (`notify_module='ntsms'`).

use std::path::Path;

use crate::notify::{NotifyError, NotifyFeatures, NotifyModule};
use crate::root::MgrRoot;

pub struct Ntsms {
    #[allow(dead_code)]
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

    fn user_notify(&self, _file: &Path) -> Result<(), NotifyError> {
        Err(NotifyError("not built yet".into()))
    }

    fn get_message(&self, _gate: &str) -> Result<(), NotifyError> {
        Err(NotifyError(
            "ntsms gateways are outgoing only: there are no messages to get".into(),
        ))
    }

    fn process_queue(&self) -> Result<(), NotifyError> {
        Err(NotifyError("not built yet".into()))
    }
}
