//! Script-backed gateways: one implementation of [`GatewayModule`] for every
//! `gw<name>.rhai` provider script.
//!
//! A `ScriptGateway` is Send + Sync: the queue opens it once and calls `outgoing` from
//! many threads. The script is compiled once per process (scripts are cached by path),
//! the command engine is built on the first command (so `features` stays cheap), and
//! one keep-alive HTTP agent serves every call of the gateway.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use rhai::{Array, Dynamic, Engine, Map};

use crate::gateway::{
    Delivery, Feature, Features, GatewayError, GatewayModule, GatewaySettings, OutgoingInput,
};
use crate::http::{ApiUrl, HttpClient, HttpRequest, Timeouts};
use crate::root::MgrRoot;
use crate::script::host_http::{self, CallSettings};
use crate::script::{self, Command, Failure, Metadata, Script};
use crate::xml::Params;

pub struct ScriptGateway {
    role: String,
    script: Arc<Script>,
    /// Built on the first command, with the gateway's keep-alive HTTP client.
    engine: OnceLock<Engine>,
    dry_run: bool,
    recorded: Mutex<Vec<HttpRequest>>,
}

impl ScriptGateway {
    /// The gateway `role` (`gwepochta`) backed by `etc/mgrnotify/scripts/<role>.rhai`.
    pub fn open(root: &MgrRoot, role: &str) -> Result<Self, GatewayError> {
        Self::from_path(role, &root.script(role))
    }

    /// The gateway `role` backed by the script at `path`.
    pub fn from_path(role: &str, path: &Path) -> Result<Self, GatewayError> {
        if !path.is_file() {
            return Err(GatewayError::new(
                "unknown",
                role,
                format!("no provider script {} for gateway {role}", path.display()),
            ));
        }
        let script = cached_script(path)
            .map_err(|e| GatewayError::new("script", &e.file, e.located_msg()))?;
        Ok(Self {
            role: role.to_owned(),
            script,
            engine: OnceLock::new(),
            dry_run: false,
            recorded: Mutex::new(Vec::new()),
        })
    }

    /// In dry-run, requests are recorded (see [`Self::take_recorded_requests`]) and
    /// answered with a synthetic empty `200` reply instead of being sent.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// The requests recorded in dry-run since the last call, after `api_url`, with
    /// secrets redacted.
    pub fn take_recorded_requests(&self) -> Vec<HttpRequest> {
        self.recorded
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    pub fn role(&self) -> &str {
        &self.role
    }

    pub fn metadata(&self) -> &Metadata {
        self.script.metadata()
    }

    fn engine(&self) -> &Engine {
        self.engine
            .get_or_init(|| script::runtime_engine(Arc::new(HttpClient::new())))
    }

    /// The parameters a command works with (see [`crate::gateway::input::checked_params`]).
    fn prepare(&self, params: &Params) -> Result<Params, GatewayError> {
        crate::gateway::input::checked_params(self.script.metadata(), params)
    }

    /// Runs one command function with the gateway's (prepared) parameters in force.
    fn run(
        &self,
        command: Command,
        params: &Params,
        arg: Dynamic,
    ) -> Result<Dynamic, GatewayError> {
        let settings = CallSettings {
            api_url: params
                .get("api_url")
                .map(ApiUrl::parse)
                .transpose()
                .map_err(|e| GatewayError::value("api_url", e.to_string()))?,
            timeouts: Timeouts::from_param(params.get("timeout"))
                .map_err(|e| GatewayError::value("timeout", e.to_string()))?,
            dry_run: self.dry_run,
        };
        let engine = self.engine();
        // What the script registers as secret lasts as long as the command: the texts
        // that leave it (its error, the recorded requests) are redacted here.
        crate::log::with_command_secrets(|| {
            let (result, recorded) =
                host_http::with_settings(settings, || self.script.run(engine, command, arg));
            if !recorded.is_empty() {
                if let Ok(mut all) = self.recorded.lock() {
                    all.extend(recorded.iter().map(HttpRequest::redacted));
                }
            }
            result.map_err(|e| {
                let mut error = self.command_error(command, &e);
                error.msg = crate::log::redact(&error.msg);
                error
            })
        })
    }

    fn command_error(&self, command: Command, e: &rhai::EvalAltResult) -> GatewayError {
        let failure = Failure::from_eval(e);
        crate::debug!(
            "{} {}(): {}",
            self.script.file(),
            command.name(),
            failure.located_msg()
        );
        if failure.raised {
            let error = GatewayError::provider(&self.role, failure.msg);
            if failure.permanent {
                error.into_permanent()
            } else {
                error
            }
        } else if failure.line.is_none() {
            // rhai reports sandbox limits without the line they struck at.
            self.script_error(format!("in fn {}(): {}", command.name(), failure.msg))
        } else {
            self.script_error(failure.located_msg())
        }
    }

    fn script_error(&self, msg: impl Into<String>) -> GatewayError {
        GatewayError::new("script", self.script.file(), msg)
    }
}

impl GatewayModule for ScriptGateway {
    fn features(&self) -> Features {
        let features = self
            .script
            .commands()
            .iter()
            .map(|c| match c {
                Command::Outgoing => Feature::Outgoing,
                Command::CheckConnection => Feature::CheckConnection,
                Command::Formtune => Feature::Formtune,
                Command::Ingoing => Feature::Ingoing,
            })
            .collect();
        Features {
            features,
            notify_module: self.script.metadata().notify_module.clone(),
        }
    }

    fn outgoing(&self, input: &OutgoingInput) -> Result<Delivery, GatewayError> {
        let params = &self.prepare(&input.settings.params)?;
        let mut req = Map::new();
        req.insert("params".into(), Dynamic::from_map(params_map(params)));
        req.insert(
            "gateway".into(),
            Dynamic::from_map(params_map(&input.settings.gateway)),
        );
        req.insert("message".into(), Dynamic::from(input.message.clone()));
        req.insert("subject".into(), Dynamic::from(input.subject.clone()));
        req.insert("user".into(), Dynamic::from_map(params_map(&input.user)));
        req.insert(
            "project".into(),
            Dynamic::from_map(params_map(&input.project)),
        );
        let reply = self.run(Command::Outgoing, params, Dynamic::from_map(req))?;
        if reply.is_unit() {
            return Ok(Delivery::default());
        }
        let Some(map) = reply.read_lock::<Map>() else {
            return Err(self.script_error(format!(
                "outgoing() returned a {}; return () or #{{id: \"provider id\"}}",
                reply.type_name()
            )));
        };
        let id = map
            .get("id")
            .filter(|id| !id.is_unit())
            .map(|id| id.to_string())
            .filter(|id| !id.trim().is_empty());
        Ok(Delivery { id })
    }

    fn ingoing(&self, settings: &GatewaySettings) -> Result<Vec<Vec<u8>>, GatewayError> {
        if !self.script.defines(Command::Ingoing) {
            return Err(GatewayError::new(
                "unsupported",
                "ingoing",
                format!("{} defines no fn ingoing(params)", self.script.file()),
            ));
        }
        let params = &self.prepare(&settings.params)?;
        let reply = self.run(
            Command::Ingoing,
            params,
            Dynamic::from_map(params_map(params)),
        )?;
        if reply.is_unit() {
            return Ok(Vec::new());
        }
        let messages = reply.try_cast::<Array>().ok_or_else(|| {
            self.script_error("ingoing() must return an array of message texts or maps")
        })?;
        // A map (a chat message: `#{from, text}`) is handed on as its JSON text.
        messages
            .into_iter()
            .map(|m| {
                if m.is_map() {
                    serde_json::to_vec(&m).map_err(|e| {
                        self.script_error(format!("ingoing(): a message map is not JSON: {e}"))
                    })
                } else {
                    Ok(m.to_string().into_bytes())
                }
            })
            .collect()
    }

    fn formtune(&self, form: &str) -> Result<String, GatewayError> {
        if !self.script.defines(Command::Formtune) {
            return Ok(form.to_owned());
        }
        let reply = self.run(
            Command::Formtune,
            &Params::new(),
            Dynamic::from(form.to_owned()),
        )?;
        reply.into_string().map_err(|t| {
            self.script_error(format!(
                "formtune() must return the form XML text, not a {t}"
            ))
        })
    }

    fn password_fields(&self) -> Vec<String> {
        self.script.metadata().password_fields()
    }

    fn check_connection(&self, settings: &GatewaySettings) -> Result<(), GatewayError> {
        if !self.script.defines(Command::CheckConnection) {
            return Err(GatewayError::new(
                "unsupported",
                "check_connection",
                format!(
                    "{} defines no fn check_connection(params)",
                    self.script.file()
                ),
            ));
        }
        let params = &self.prepare(&settings.params)?;
        self.run(
            Command::CheckConnection,
            params,
            Dynamic::from_map(params_map(params)),
        )
        .map(|_| ())
    }
}

/// Parameters as a script map of strings.
fn params_map(params: &Params) -> Map {
    params
        .iter()
        .map(|(k, v)| (k.into(), Dynamic::from(v.to_owned())))
        .collect()
}

type ScriptCache = Mutex<HashMap<PathBuf, (Option<SystemTime>, Arc<Script>)>>;

/// Each script is compiled once per process (per version of the file).
fn cached_script(path: &Path) -> Result<Arc<Script>, script::ScriptError> {
    static CACHE: OnceLock<ScriptCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    if let Ok(entries) = cache.lock() {
        if let Some((when, script)) = entries.get(path) {
            if *when == modified && modified.is_some() {
                return Ok(script.clone());
            }
        }
    }
    let script = Arc::new(Script::load(path)?);
    if let Ok(mut entries) = cache.lock() {
        entries.insert(path.to_owned(), (modified, script.clone()));
    }
    Ok(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn script_gateway_is_send_and_sync() {
        assert_send_sync::<ScriptGateway>();
    }
}
