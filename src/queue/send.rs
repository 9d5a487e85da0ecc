//! Sending one notification file: render it, choose the gateways of its provider, and
//! hand the message to each in turn until one accepts it (failover). A gateway module
//! that is one of our own roles (a built-in gateway or a script) runs in-process, one
//! value per run serving every worker; any other (third-party, in any language) runs
//! as `gate/<module> --command outgoing` with the seed's XML on stdin.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::db::schema::GatewayRow;
use crate::gateway::script::ScriptGateway;
use crate::gateway::{self, Delivery, GatewayError, GatewayModule, GatewaySettings, OutgoingInput};
use crate::notice::{self, Notice};
use crate::roles::{self, Build};
use crate::root::MgrRoot;
use crate::xml::Params;

/// Largest reply read from a gateway program; more is garbage, not a reply.
const MAX_REPLY: u64 = 1024 * 1024;
/// Largest stderr kept from a gateway program, for the error text.
const MAX_STDERR: u64 = 64 * 1024;

/// How a gateway module is reached, decided once per module per run.
enum Route {
    InProcess(Arc<dyn GatewayModule + Send + Sync>),
    Program(PathBuf),
    Unusable(String),
}

/// Sends notification files through the gateways of one notification module.
pub struct Courier {
    root: MgrRoot,
    role: String,
    /// Active outgoing gateways of the role, in failover order.
    gateways: Vec<GatewayRow>,
    timeout: Duration,
    own_exe: Option<PathBuf>,
    routes: Mutex<HashMap<String, Arc<Route>>>,
}

/// Reads a user's fields by id from BILLmanager's user table (see
/// [`crate::db::schema::user_fields`]).
pub type UserLookup<'a> = dyn FnMut(&str) -> Option<Params> + 'a;

/// What a successful delivery went through, for the log.
#[derive(Debug, Clone)]
pub struct Sent {
    pub gateway_id: String,
    pub module: String,
    pub provider_message_id: Option<String>,
}

impl Courier {
    pub fn new(root: MgrRoot, role: &str, gateways: Vec<GatewayRow>, timeout: Duration) -> Self {
        Self {
            root,
            role: role.to_owned(),
            gateways: gateways
                .into_iter()
                .filter(GatewayRow::is_active_outgoing)
                .collect(),
            timeout,
            own_exe: std::env::current_exe()
                .ok()
                .and_then(|p| p.canonicalize().ok()),
            routes: Mutex::new(HashMap::new()),
        }
    }

    /// Sends every notify block of a queue row's file. The error is the reason an
    /// operator reads in err_info.
    pub fn deliver_file(
        &self,
        filename: &str,
        users: &mut UserLookup<'_>,
    ) -> Result<Vec<Sent>, String> {
        if filename.trim().is_empty() {
            return Err("the row has no filename".into());
        }
        let path = self.root.notify_file(filename);
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("the notification file {} is missing", path.display())
            }
            _ => format!("cannot read the notification file {}: {e}", path.display()),
        })?;
        let notices = notice::parse_file(&text)
            .map_err(|e| format!("the notification file {}: {e}", path.display()))?;
        let total = notices.len();
        let mut sent = Vec::with_capacity(total);
        for (index, n) in notices.iter().enumerate() {
            match self.deliver_notice(n, users) {
                Ok(s) => sent.push(s),
                Err(reason) if total == 1 => return Err(reason),
                Err(reason) => {
                    return Err(format!(
                        "notify block {} of {total}: {reason}{}",
                        index + 1,
                        if index > 0 {
                            " (the blocks before it were sent and are sent again on retry)"
                        } else {
                            ""
                        }
                    ))
                }
            }
        }
        Ok(sent)
    }

    /// Sends one notice: the user's phone and the provider's gateways first, then
    /// each gateway in order until one accepts.
    pub fn deliver_notice(&self, n: &Notice, users: &mut UserLookup<'_>) -> Result<Sent, String> {
        let completed;
        let n = match with_user_from_db(n, users) {
            Some(filled) => {
                completed = filled;
                &completed
            }
            None => n,
        };
        let user_id = n.user.get("id").unwrap_or("?");
        if n.user.get("phone").is_none() {
            return Err(format!("user {user_id} has no phone number"));
        }
        let provider = n
            .provider_id()
            .ok_or("the notice has no project/id: its provider is unknown")?;
        let candidates: Vec<&GatewayRow> = self
            .gateways
            .iter()
            .filter(|g| g.project.trim() == provider)
            .collect();
        if candidates.is_empty() {
            return Err(format!(
                "no active outgoing {} gateway for provider {provider}",
                self.role
            ));
        }
        let rendered = crate::template::render(n).map_err(|e| format!("template: {e}"))?;
        let mut reasons = Vec::new();
        for g in candidates {
            let attempt =
                GatewaySettings::new(g.columns.clone(), &g.xmlparams).and_then(|settings| {
                    let input = OutgoingInput {
                        settings,
                        message: rendered.text.clone(),
                        subject: rendered.subject.clone(),
                        html: None,
                        attachments: Vec::new(),
                        user: n.user.clone(),
                        project: n.project(),
                    };
                    self.send(&g.module, &input)
                });
            match attempt {
                Ok(delivery) => {
                    return Ok(Sent {
                        gateway_id: g.id.clone(),
                        module: g.module.clone(),
                        provider_message_id: delivery.id,
                    })
                }
                Err(e) => {
                    crate::warn!(
                        "user {user_id}: gateway {} ({}) failed: {e}",
                        g.id,
                        g.module
                    );
                    reasons.push(format!("gateway {} ({}): {e}", g.id, g.module));
                }
            }
        }
        Err(reasons.join("; "))
    }

    fn send(&self, module: &str, input: &OutgoingInput) -> Result<Delivery, GatewayError> {
        match &*self.route(module) {
            Route::InProcess(m) => m.outgoing(input),
            Route::Program(path) => {
                // A third-party module's password fields are known from its plugin XML.
                crate::plugin::register_secrets(&self.root, module, &input.settings.params);
                self.run_program(module, path, &input.to_xml())
            }
            Route::Unusable(why) => Err(GatewayError::new("unknown", module, why.clone())),
        }
    }

    fn route(&self, module: &str) -> Arc<Route> {
        let mut routes = match self.routes.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        routes
            .entry(module.to_owned())
            .or_insert_with(|| Arc::new(self.resolve(module)))
            .clone()
    }

    fn resolve(&self, module: &str) -> Route {
        let safe = !module.is_empty()
            && !module.starts_with('.')
            && module
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !safe {
            return Route::Unusable(format!(
                "gateway_module '{module}' is not a module name in gate/"
            ));
        }
        let path = self.root.gate_module(module);
        let Ok(target) = path.canonicalize() else {
            return Route::Unusable(format!(
                "unknown gateway module '{module}': {} does not exist",
                path.display()
            ));
        };
        let ours = self.own_exe.as_deref() == Some(target.as_path());
        if let (true, Some(Build::Builtin(builtin))) =
            (ours, roles::lookup(module).map(|r| r.build))
        {
            return Route::InProcess(builtin.open(&self.root));
        }
        if ours && self.root.script(module).is_file() {
            return match ScriptGateway::open(&self.root, module) {
                Ok(g) => Route::InProcess(Arc::new(g)),
                Err(e) => Route::Unusable(e.to_string()),
            };
        }
        Route::Program(path)
    }

    /// `gate/<module> --command outgoing`, cwd = root, the input on stdin, killed
    /// with its process group after the time limit.
    fn run_program(
        &self,
        module: &str,
        path: &Path,
        input: &str,
    ) -> Result<Delivery, GatewayError> {
        let mut child = Command::new(path)
            .args(["--command", "outgoing"])
            .current_dir(self.root.path())
            // The DB password has no business in a gateway's environment.
            .env_remove(crate::db::URL_ENV)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                GatewayError::provider(module, format!("cannot start {}: {e}", path.display()))
            })?;
        let stdout = collect(child.stdout.take(), MAX_REPLY);
        let stderr = collect(child.stderr.take(), MAX_STDERR);
        if let Some(mut stdin) = child.stdin.take() {
            let input = input.to_owned();
            // A module that does not read its stdin must not block us.
            std::thread::spawn(move || {
                let _ = stdin.write_all(input.as_bytes());
            });
        }
        let deadline = Instant::now() + self.timeout;
        let Some(status) = wait_until(&mut child, deadline) else {
            kill_group(&mut child);
            return Err(GatewayError::provider(
                module,
                format!(
                    "did not answer within {} s and was killed",
                    self.timeout.as_secs_f64()
                ),
            ));
        };
        let out = stdout
            .recv_timeout(Duration::from_secs(1))
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&out);
        gateway::parse_reply(module, &text, status.success()).map_err(|mut e| {
            if !status.success() {
                let err_text = stderr
                    .recv_timeout(Duration::from_millis(200))
                    .unwrap_or_default();
                let err_text = String::from_utf8_lossy(&err_text);
                if !err_text.trim().is_empty() {
                    e.msg = format!("{} (stderr: {})", e.msg, gateway::excerpt(err_text.trim()));
                }
                if status.code().is_none() {
                    e.msg = format!("{} (killed by a signal)", e.msg);
                }
            }
            e
        })
    }
}

/// The notice with the fields its `<user>` lacks read from the user table, when it
/// has no phone but a user id; `None` when nothing needs or can be added.
fn with_user_from_db(n: &Notice, users: &mut UserLookup<'_>) -> Option<Notice> {
    if n.user.get("phone").is_some() {
        return None;
    }
    let from_db = users(n.user.get("id")?)?;
    let mut filled = n.clone();
    for (k, v) in from_db.iter() {
        if filled.user.get(k).is_none() {
            filled.user.set(k, v);
        }
    }
    Some(filled)
}

/// Reads a pipe to its end (at most `limit` bytes) on a thread of its own.
fn collect(pipe: Option<impl Read + Send + 'static>, limit: u64) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(pipe) = pipe {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut limited = pipe.take(limit);
            let _ = limited.read_to_end(&mut buf);
            // Drain what is left so the child is not blocked writing.
            let _ = std::io::copy(&mut limited.into_inner(), &mut std::io::sink());
            let _ = tx.send(buf);
        });
    }
    rx
}

/// Waits for the child to exit by `deadline`, polling often at first (a fast module
/// answers in a few milliseconds) and less often later.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_micros(200);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Kills the child and everything it started.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group we created
        // for this child (process_group(0)); it touches no memory.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
