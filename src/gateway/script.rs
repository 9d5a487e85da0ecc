//! Script-backed gateways: one implementation of [`GatewayModule`] for every
//! `gw<name>.rhai` provider script.

use crate::gateway::{Delivery, Feature, Features, GatewayError, GatewayModule, OutgoingInput};
use crate::root::MgrRoot;

pub struct ScriptGateway {
    role: String,
}

impl ScriptGateway {
    pub fn open(root: &MgrRoot, role: &str) -> Result<Self, GatewayError> {
        let path = root.script(role);
        if !path.is_file() {
            return Err(GatewayError::new(
                "unknown",
                role,
                format!("no provider script {} for gateway {role}", path.display()),
            ));
        }
        Ok(Self {
            role: role.to_owned(),
        })
    }
}

impl GatewayModule for ScriptGateway {
    fn features(&self) -> Features {
        Features {
            features: vec![Feature::Outgoing],
            notify_module: "ntsms".into(),
        }
    }

    fn outgoing(&self, _input: &OutgoingInput) -> Result<Delivery, GatewayError> {
        Err(GatewayError::provider(&self.role, "not built yet"))
    }
}
