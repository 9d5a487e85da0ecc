//! Third-party gateway modules: any program in `gate/` (in any language) that speaks
//! the gateway protocol, run as `gate/<module> --command <command>` with the input on
//! stdin. A [`ProgramGateway`] is a [`GatewayModule`] like the in-process ones, so the
//! queue sees only gateways.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::gateway::{
    self, Delivery, Feature, Features, GatewayError, GatewayModule, GatewaySettings, OutgoingInput,
};
use crate::queue::stop;
use crate::root::MgrRoot;

/// Largest reply read from a gateway program; more is garbage, not a reply.
const MAX_REPLY: u64 = 1024 * 1024;
/// Largest stderr kept from a gateway program, for the error text.
const MAX_STDERR: u64 = 64 * 1024;
/// How often a caller waiting for a gateway program looks whether the run is stopping.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// A gateway module that is a program of its own in `gate/`.
pub struct ProgramGateway {
    root: MgrRoot,
    module: String,
    path: PathBuf,
    /// How long one exchange may take before the program (and all it started) is killed.
    timeout: Duration,
}

impl ProgramGateway {
    pub fn new(root: &MgrRoot, module: &str, path: PathBuf, timeout: Duration) -> Self {
        Self {
            root: root.clone(),
            module: module.to_owned(),
            path,
            timeout,
        }
    }

    /// `gate/<module> --command <command>`, cwd = root, `input` on stdin. Its reply is
    /// all it writes until its stdout ends; then, or at the time limit, or when the run
    /// stops, its process group is killed: nothing it started outlives the exchange.
    /// Returns its stdout (lossy UTF-8) and whether it exited 0.
    fn exchange(&self, command: &str, input: &str) -> Result<(String, bool), GatewayError> {
        self.exchange_limited(command, input, MAX_REPLY)
    }

    /// [`Self::exchange`] with a reply of at most `max_reply` bytes.
    fn exchange_limited(
        &self,
        command: &str,
        input: &str,
        max_reply: u64,
    ) -> Result<(String, bool), GatewayError> {
        let module = self.module.as_str();
        let mut program = Command::new(&self.path);
        program
            .args(["--command", command])
            .current_dir(self.root.path());
        let reply =
            run_bounded(&mut program, input.as_bytes(), self.timeout, max_reply).map_err(|e| {
                GatewayError::provider(module, format!("cannot start {}: {e}", self.path.display()))
            })?;
        let limit = self.timeout.as_secs_f64();
        if reply.stopped {
            return Err(GatewayError::provider(
                module,
                "killed: the run is stopping",
            ));
        }
        let Some(status) = reply.status else {
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
        let text = String::from_utf8_lossy(&reply.stdout).into_owned();
        if status.success() {
            return Ok((text, true));
        }
        // A failed exit: the reply's error, with what it said on stderr.
        let mut e = match gateway::parse_reply(module, &text, false) {
            Err(e) => e,
            Ok(_) => GatewayError::provider(module, "exited with an error"),
        };
        let err_text = String::from_utf8_lossy(&reply.stderr);
        if !err_text.trim().is_empty() {
            e.msg = format!("{} (stderr: {})", e.msg, gateway::excerpt(err_text.trim()));
        }
        if status.code().is_none() {
            e.msg = format!("{} (killed by a signal)", e.msg);
        }
        Err(e)
    }
}

impl GatewayModule for ProgramGateway {
    /// What the program says to `--command features`; nothing when it cannot say.
    fn features(&self) -> Features {
        let mut features = Features {
            features: Vec::new(),
            notify_module: String::new(),
        };
        let Ok((text, true)) = self.exchange("features", "") else {
            return features;
        };
        let Ok(doc) = crate::xml::parse(text.trim()) else {
            return features;
        };
        for node in doc.descendants() {
            if node.has_tag_name("feature") {
                let feature = Feature::ALL
                    .into_iter()
                    .find(|f| node.attribute("name") == Some(f.name()));
                features.features.extend(feature);
            } else if node.has_tag_name("notify_module") {
                features.notify_module = crate::xml::text_of(node);
            }
        }
        features
    }

    fn outgoing(&self, input: &OutgoingInput) -> Result<Delivery, GatewayError> {
        // A third-party module's password fields are known from its plugin XML.
        crate::plugin::register_secrets(&self.root, &self.module, &input.settings.params);
        let (text, exited_ok) = self.exchange("outgoing", &input.to_xml())?;
        gateway::parse_reply(&self.module, &text, exited_ok)
    }

    /// The seed's ingoing exchange: the gateway's settings in, `<messages>` out. What
    /// the program printed it counts as handed on.
    fn ingoing(&self, settings: &GatewaySettings) -> Result<Vec<Vec<u8>>, GatewayError> {
        crate::plugin::register_secrets(&self.root, &self.module, &settings.params);
        let limit = crate::xml::MAX_INPUT_BYTES as u64;
        let (text, exited_ok) = self.exchange_limited("ingoing", &settings.to_xml(), limit)?;
        if !exited_ok {
            gateway::parse_reply(&self.module, &text, false)?;
        }
        gateway::parse_messages(&self.module, &text)
    }
}

/// How a program run by [`run_bounded`] ended.
pub struct Finished {
    /// Its output, at most the limit given (more was read and dropped).
    pub stdout: Vec<u8>,
    /// Its error output, at most 64 KiB.
    pub stderr: Vec<u8>,
    /// Its stdout reached its end.
    pub stdout_closed: bool,
    /// Its exit status; `None` when it did not exit in time and was killed.
    pub status: Option<ExitStatus>,
    /// The run is stopping (SIGTERM): the program was killed early.
    pub stopped: bool,
}

/// Runs `command` (with `input` on its stdin) in a process group of its own, reading
/// at most `max_stdout` bytes of output, until it has exited and its stdout has ended,
/// or `timeout` has passed, or the run stops; then kills the group, so nothing it
/// started outlives it. The DB settings of the environment are not passed on.
pub fn run_bounded(
    command: &mut Command,
    input: &[u8],
    timeout: Duration,
    max_stdout: u64,
) -> std::io::Result<Finished> {
    command
        // The DB password has no business in another program's environment.
        .env_remove(crate::db::URL_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = spawn_past_text_busy(command)?;
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        // A program that does not read its stdin must not block us.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let reply = Exchange::run(&mut child, Instant::now() + timeout, max_stdout);
    let status = kill_group(&mut child);
    Ok(Finished {
        status: status.filter(|_| reply.exited),
        stdout: reply.stdout,
        stderr: reply.stderr,
        stdout_closed: reply.stdout_closed,
        stopped: reply.stopped,
    })
}

/// Starts `command`, trying again for a moment while the kernel says its file is busy
/// (ETXTBSY): a program just written is briefly held open for writing by any process
/// forked at that instant, until that process execs.
fn spawn_past_text_busy(command: &mut Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 10 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            started => return started,
        }
    }
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
    fn run(child: &mut Child, deadline: Instant, max_stdout: u64) -> Self {
        let mut stdout = Pipe::new(child.stdout.take().map(OwnedFd::from), max_stdout);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::GatewaySettings;
    use crate::xml::Params;

    fn program(dir: &std::path::Path, text: &str) -> ProgramGateway {
        use std::os::unix::fs::PermissionsExt;
        let root = MgrRoot::new(dir);
        std::fs::create_dir_all(root.gate_dir()).unwrap();
        let path = root.gate_module("gwprog");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        ProgramGateway::new(&root, "gwprog", path, Duration::from_secs(5))
    }

    fn input() -> OutgoingInput {
        OutgoingInput {
            settings: GatewaySettings::new(Params::new(), "").unwrap(),
            message: "hello".into(),
            subject: String::new(),
            html: None,
            attachments: Vec::new(),
            user: Params::new(),
            project: Params::new(),
        }
    }

    #[test]
    fn a_program_is_a_gateway_module() {
        let dir = tempfile::tempdir().unwrap();
        let gateway = program(
            dir.path(),
            "#!/bin/sh\nif [ \"$2\" = features ]; then\n\
             echo '<doc><features><feature name=\"outgoing\"/></features>\
             <notify_module>ntsms</notify_module></doc>'; exit 0; fi\n\
             grep -q '<message>hello</message>' && echo '<doc><id>42</id></doc>'\n",
        );
        let module: &dyn GatewayModule = &gateway;
        let features = module.features();
        assert_eq!(features.features, [Feature::Outgoing]);
        assert_eq!(features.notify_module, "ntsms");
        assert_eq!(module.outgoing(&input()).unwrap().id.as_deref(), Some("42"));
    }

    #[test]
    fn a_failed_exit_carries_its_error_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let gateway = program(
            dir.path(),
            "#!/bin/sh\ncat >/dev/null\necho 'balance low' >&2\n\
             echo '<doc><error type=\"gateway\"><msg>refused</msg></error></doc>'\nexit 1\n",
        );
        let e = gateway.outgoing(&input()).unwrap_err();
        assert_eq!(e.msg, "refused (stderr: balance low)");
    }
}
