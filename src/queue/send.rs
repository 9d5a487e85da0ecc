//! Sending one notification file: render it, choose the gateways of its provider, and
//! hand the message to each in turn until one accepts it (failover). A gateway module
//! that is one of our own script roles runs in-process; any other (third-party, in any
//! language) runs as `gate/<module> --command outgoing` with the seed's XML on stdin.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::db::schema::GatewayRow;
use crate::gateway::script::ScriptGateway;
use crate::gateway::{self, Delivery, GatewayError, GatewayModule, GatewaySettings, OutgoingInput};
use crate::notice::{self, Notice};
use crate::queue::config::QueueConfig;
use crate::queue::stop;
use crate::root::MgrRoot;
use crate::xml::Params;

/// Largest reply read from a gateway program; more is garbage, not a reply.
const MAX_REPLY: u64 = 1024 * 1024;
/// Largest stderr kept from a gateway program, for the error text.
const MAX_STDERR: u64 = 64 * 1024;
/// How often a worker waiting for a gateway program looks whether the run is stopping.
const STOP_CHECK: Duration = Duration::from_millis(50);

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
    max_file_size: u64,
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
    pub fn new(root: MgrRoot, role: &str, gateways: Vec<GatewayRow>, config: &QueueConfig) -> Self {
        Self {
            root,
            role: role.to_owned(),
            gateways: gateways
                .into_iter()
                .filter(GatewayRow::is_active_outgoing)
                .collect(),
            timeout: config.gateway_timeout,
            max_file_size: config.max_file_size,
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
        let text =
            notice::read_queued(&self.root, filename, self.max_file_size).map_err(|e| e.0)?;
        let notices = notice::parse_file(&text).map_err(|e| {
            format!(
                "the notification file {}: {e}",
                self.root.notify_file(filename).display()
            )
        })?;
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
            if stop::requested() {
                reasons.push("the run is stopping".to_owned());
                break;
            }
            let attempt =
                GatewaySettings::new(g.columns.clone(), &g.xmlparams).and_then(|settings| {
                    let input = OutgoingInput {
                        settings,
                        message: rendered.text.clone(),
                        subject: rendered.subject.clone(),
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
        if ours && self.root.script(module).is_file() {
            return match ScriptGateway::open(&self.root, module) {
                Ok(g) => Route::InProcess(Arc::new(g)),
                Err(e) => Route::Unusable(e.to_string()),
            };
        }
        Route::Program(path)
    }

    /// `gate/<module> --command outgoing`, cwd = root, the input on stdin. Its reply is
    /// all it writes until its stdout ends; then, or at the time limit, or when the run
    /// stops, its process group is killed: nothing it started outlives the exchange.
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
        if let Some(mut stdin) = child.stdin.take() {
            let input = input.to_owned();
            // A module that does not read its stdin must not block us.
            std::thread::spawn(move || {
                let _ = stdin.write_all(input.as_bytes());
            });
        }
        let reply = Exchange::run(&mut child, Instant::now() + self.timeout);
        let status = kill_group(&mut child);
        let limit = self.timeout.as_secs_f64();
        if reply.stopped {
            return Err(GatewayError::provider(
                module,
                "killed: the run is stopping",
            ));
        }
        let Some(status) = status.filter(|_| reply.exited) else {
            return Err(GatewayError::provider(
                module,
                format!("did not answer within {limit} s and was killed"),
            ));
        };
        if !reply.stdout_closed && reply.stdout.iter().all(u8::is_ascii_whitespace) {
            // Nothing yet is not the empty reply that means success.
            return Err(GatewayError::provider(
                module,
                format!(
                    "exited without a reply, while a process it started kept its output \
                     open for {limit} s (killed)"
                ),
            ));
        }
        let text = String::from_utf8_lossy(&reply.stdout);
        gateway::parse_reply(module, &text, status.success()).map_err(|mut e| {
            if !status.success() {
                let err_text = String::from_utf8_lossy(&reply.stderr);
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

/// What a gateway program wrote, and how the exchange ended.
struct Exchange {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Its stdout reached its end: the reply is complete.
    stdout_closed: bool,
    /// The program itself exited (it is not reaped yet: its pid and process group stay
    /// reserved until [`kill_group`]).
    exited: bool,
    /// The run is stopping: the exchange was cut short.
    stopped: bool,
}

impl Exchange {
    /// Reads stdout and stderr until the program has exited and its stdout has ended,
    /// or until `deadline`, or until the run stops.
    fn run(child: &mut Child, deadline: Instant) -> Self {
        let mut stdout = Pipe::new(child.stdout.take().map(OwnedFd::from), MAX_REPLY);
        let mut stderr = Pipe::new(child.stderr.take().map(OwnedFd::from), MAX_STDERR);
        let mut exited = false;
        // A fast module answers in a few milliseconds: look for its exit often at first.
        let mut pause = Duration::from_micros(200);
        let stopped = loop {
            stdout.drain();
            stderr.drain();
            exited = exited || has_exited(child);
            if exited && stdout.is_closed() {
                break false;
            }
            if stop::requested() {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            // Output wakes us at once; an exit is no event on the pipes.
            let wait = if stdout.is_closed() {
                pause = (pause * 2).min(Duration::from_millis(20));
                pause
            } else {
                STOP_CHECK
            };
            wait_readable(&[&stdout, &stderr], wait.min(deadline - now));
        };
        Self {
            stdout_closed: stdout.is_closed(),
            stdout: stdout.bytes,
            stderr: stderr.bytes,
            exited,
            stopped,
        }
    }
}

/// Our end of one of a program's output pipes, read without blocking.
struct Pipe {
    file: Option<File>,
    bytes: Vec<u8>,
    limit: u64,
}

impl Pipe {
    fn new(fd: Option<OwnedFd>, limit: u64) -> Self {
        let file = fd.map(File::from);
        if let Some(f) = &file {
            // SAFETY: fcntl on a descriptor we own; only its status flags change.
            unsafe {
                let flags = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
                libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
        }
        Self {
            file,
            bytes: Vec::new(),
            limit,
        }
    }

    fn is_closed(&self) -> bool {
        self.file.is_none()
    }

    /// Takes what is there now (keeping at most `limit` bytes; more is read and
    /// dropped so the program is never blocked writing); notes the end of the output.
    fn drain(&mut self) {
        let Some(file) = &mut self.file else { return };
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    let room = usize::try_from(self.limit)
                        .unwrap_or(usize::MAX)
                        .saturating_sub(self.bytes.len());
                    self.bytes.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        self.file = None;
    }
}

/// Waits until one of the open `pipes` has something to read (or has ended), or
/// `wait` has passed.
fn wait_readable(pipes: &[&Pipe], wait: Duration) {
    let mut fds: Vec<libc::pollfd> = pipes
        .iter()
        .filter_map(|p| p.file.as_ref())
        .map(|f| libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    if fds.is_empty() {
        std::thread::sleep(wait);
        return;
    }
    let timeout = libc::timespec {
        tv_sec: libc::time_t::try_from(wait.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 10^9: fits a c_long everywhere.
        tv_nsec: wait.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs; `timeout` lives
    // through the call; no signal mask is passed. An interrupted call just returns.
    unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &timeout,
            std::ptr::null(),
        );
    }
}

/// Whether the child has exited, without reaping it (WNOWAIT): until it is reaped its
/// pid, and so its process group id, cannot be reused by another process.
fn has_exited(child: &Child) -> bool {
    let pid: libc::id_t = child.id();
    // SAFETY: waitid writes only into `info`, a zeroed siginfo_t we own.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r != 0 || info.si_pid() != 0
    }
}

/// Kills the child and everything it started (its process group), then reaps it: its
/// own exit status when it had exited before.
fn kill_group(child: &mut Child) -> Option<ExitStatus> {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group we created
        // for this child (process_group(0)); the child is not reaped yet, so the group
        // id is still ours. It touches no memory.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    child.wait().ok()
}
