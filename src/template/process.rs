//! Rendering in a child process, so that a template's limits hold even where an engine
//! cannot be interrupted: QuickJS never reaches its interrupt handler inside a native
//! built-in (a catastrophic regular expression, `indexOf` over `{length: 2**40}`), and
//! libxslt checks its deadline only when it allocates.
//!
//! Each thread that renders has one render process, forked from it on its first render
//! and reused by the next ones (a fork costs far more than a render). The thread sends a
//! job over a socket and waits for the answer until the engine's time limit plus
//! [`SLACK`]; a process that has not answered by then is killed and reaped at once, and
//! the next render forks a new one. The process holds only the socket (no other
//! descriptor of the parent), has an address-space limit, dies with the thread that forked
//! it, and never runs anything but the render code of this crate.

use std::cell::RefCell;
use std::ffi::c_int;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{ejs, xslt, TemplateError, TemplateErrorKind};

/// How long past the engine's own time limit the parent waits before it kills the render
/// process: the engines stop what they can interrupt themselves at the limit.
const SLACK: Duration = Duration::from_millis(500);
/// Address space a render process may add to what it inherited at the fork: above the
/// engines' own limits (64 MiB of JavaScript heap, 512 MiB of libxml2 allocations).
const ADDRESS_SPACE_HEADROOM: u64 = 1024 * 1024 * 1024;

/// What to render, and with which engine.
#[derive(Clone, Copy)]
pub(crate) enum Job<'a> {
    /// An EJS template and the notice as JSON.
    Ejs {
        template: &'a str,
        data_json: &'a str,
    },
    /// An XSLT stylesheet and the notice XML.
    Xslt {
        stylesheet: &'a str,
        document: &'a str,
    },
}

impl Job<'_> {
    fn code(&self) -> u8 {
        match self {
            Job::Ejs { .. } => 1,
            Job::Xslt { .. } => 2,
        }
    }

    fn texts(&self) -> [&str; 2] {
        match *self {
            Job::Ejs {
                template,
                data_json,
            } => [template, data_json],
            Job::Xslt {
                stylesheet,
                document,
            } => [stylesheet, document],
        }
    }

    fn engine(&self) -> &'static str {
        match self {
            Job::Ejs { .. } => "EJS",
            Job::Xslt { .. } => "XSLT",
        }
    }

    fn time_limit(&self) -> Duration {
        match self {
            Job::Ejs { .. } => ejs::TIME_LIMIT,
            Job::Xslt { .. } => xslt::TIME_LIMIT,
        }
    }

    /// The error of a render that was killed at its deadline: the words the engine uses
    /// when it stops a template itself.
    fn overrun(&self) -> TemplateError {
        let what = match self {
            Job::Ejs { .. } => "template",
            Job::Xslt { .. } => "stylesheet",
        };
        TemplateError::new(
            TemplateErrorKind::Limit,
            format!(
                "{}: the {what} ran longer than {} s and was stopped",
                self.engine(),
                self.time_limit().as_secs()
            ),
        )
    }

    /// Renders in this process: only the render process calls this.
    fn render_here(&self) -> Result<String, TemplateError> {
        match *self {
            Job::Ejs {
                template,
                data_json,
            } => ejs::render_here(template, data_json),
            Job::Xslt {
                stylesheet,
                document,
            } => xslt::transform_here(stylesheet, document),
        }
    }
}

/// Held while the parent loads libxml2/libxslt and while it forks, so that no render
/// process starts with a copy of a half-done load (it would wait for the load for ever).
static FORK_GUARD: Mutex<()> = Mutex::new(());

fn fork_guard() -> MutexGuard<'static, ()> {
    FORK_GUARD.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// This thread's render process, once it has one.
    static RENDERER: RefCell<Option<Renderer>> = const { RefCell::new(None) };
}

/// Renders `job` in this thread's render process; a render that overruns its time limit
/// ends with the engine's time-limit error within the limit plus [`SLACK`].
pub(crate) fn render(job: Job<'_>) -> Result<String, TemplateError> {
    if let Job::Xslt { .. } = job {
        // Loaded in the parent, so that render processes inherit the loaded libraries
        // (and a missing library is reported without a fork).
        let _guard = fork_guard();
        xslt::load()?;
    }
    let deadline = Instant::now() + job.time_limit() + SLACK;
    RENDERER.with(|slot| {
        let mut slot = slot.try_borrow_mut().map_err(|_| {
            TemplateError::new(
                TemplateErrorKind::Engine,
                "a template rendered another template",
            )
        })?;
        if slot.as_mut().is_some_and(|r| r.has_exited()) {
            *slot = None;
        }
        let renderer = match slot.as_mut() {
            Some(renderer) => renderer,
            None => slot.insert(Renderer::start(job.engine())?),
        };
        match renderer.exchange(job, deadline) {
            Ok(answer) => answer,
            Err(broken) => {
                let ended = slot.take().map(|r| r.stop()).unwrap_or_default();
                Err(match broken {
                    Broken::Overrun => job.overrun(),
                    Broken::Ended => TemplateError::new(
                        TemplateErrorKind::Engine,
                        format!(
                            "{}: the render process ended unexpectedly ({ended})",
                            job.engine()
                        ),
                    ),
                })
            }
        }
    })
}

/// Why an exchange with the render process failed.
enum Broken {
    /// No answer by the deadline.
    Overrun,
    /// The process closed its end (it died, or was killed).
    Ended,
}

/// A render process and the parent's end of its socket.
struct Renderer {
    pid: libc::pid_t,
    socket: UnixStream,
}

impl Renderer {
    fn start(engine: &str) -> Result<Self, TemplateError> {
        let fail = |what: &str, e: std::io::Error| {
            TemplateError::new(
                TemplateErrorKind::Engine,
                format!("{engine}: cannot start a render process ({what}: {e})"),
            )
        };
        let (parent_end, child_end) = UnixStream::pair().map_err(|e| fail("socketpair", e))?;
        parent_end
            .set_nonblocking(true)
            .map_err(|e| fail("socket", e))?;
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        let _guard = fork_guard();
        // SAFETY: the child runs only `serve`, which never returns: it uses this thread's
        // copy of memory, the allocator (which glibc keeps usable after fork), system calls
        // and the engines, whose only process-wide state (the libxml2 load) is complete or
        // not begun (`FORK_GUARD`); no other thread of the parent runs an engine.
        match unsafe { libc::fork() } {
            -1 => Err(fail("fork", std::io::Error::last_os_error())),
            0 => serve(child_end.as_raw_fd(), parent),
            pid => Ok(Self {
                pid,
                socket: parent_end,
            }),
        }
    }

    /// Whether the process has ended on its own since the last render. It is reaped then
    /// (or was by someone else): its number is forgotten, never to be killed.
    fn has_exited(&mut self) -> bool {
        // SAFETY: `pid` is our child; WNOHANG never blocks.
        let reaped = unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), libc::WNOHANG) };
        if reaped == 0 {
            return false;
        }
        self.pid = 0;
        true
    }

    /// Sends the job and reads the answer, both before `deadline`.
    fn exchange(
        &mut self,
        job: Job<'_>,
        deadline: Instant,
    ) -> Result<Result<String, TemplateError>, Broken> {
        let [first, second] = job.texts();
        let (Ok(first_len), Ok(second_len)) =
            (u32::try_from(first.len()), u32::try_from(second.len()))
        else {
            return Ok(Err(TemplateError::new(
                TemplateErrorKind::Limit,
                format!(
                    "{}: the template or the notice is larger than 4 GiB",
                    job.engine()
                ),
            )));
        };
        let mut header = [0u8; 9];
        header[0] = job.code();
        header[1..5].copy_from_slice(&first_len.to_le_bytes());
        header[5..9].copy_from_slice(&second_len.to_le_bytes());
        let fd = self.socket.as_raw_fd();
        for part in [&header[..], first.as_bytes(), second.as_bytes()] {
            send_all(fd, part, Some(deadline))?;
        }
        let mut answer_header = [0u8; 5];
        receive_exact(fd, &mut answer_header, Some(deadline))?;
        let len = u32::from_le_bytes([
            answer_header[1],
            answer_header[2],
            answer_header[3],
            answer_header[4],
        ]) as usize;
        let mut text = vec![0u8; len];
        receive_exact(fd, &mut text, Some(deadline))?;
        let text = String::from_utf8(text).map_err(|_| Broken::Ended)?;
        Ok(match answer_header[0] {
            0 => Ok(text),
            code => Err(TemplateError::new(
                TemplateErrorKind::from_code(code).ok_or(Broken::Ended)?,
                text,
            )),
        })
    }

    /// Kills and reaps the process; says how it ended.
    fn stop(mut self) -> String {
        let pid = std::mem::take(&mut self.pid);
        if pid == 0 {
            return String::from("it exited");
        }
        let status = kill_and_reap(pid);
        if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) != libc::SIGKILL {
            format!("killed by signal {}", libc::WTERMSIG(status))
        } else if libc::WIFEXITED(status) {
            format!("exit status {}", libc::WEXITSTATUS(status))
        } else {
            String::from("killed")
        }
    }
}

impl Drop for Renderer {
    fn drop(&mut self) {
        let pid = std::mem::take(&mut self.pid);
        if pid != 0 {
            kill_and_reap(pid);
        }
    }
}

/// Kills a render process and waits for it (it cannot block SIGKILL); its wait status.
fn kill_and_reap(pid: libc::pid_t) -> c_int {
    let mut status = 0;
    // SAFETY: `pid` is our child and not yet reaped, so the number is still its own.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        while libc::waitpid(pid, &mut status, 0) == -1
            && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {}
    }
    status
}

/// Writes all of `bytes` (without SIGPIPE), waiting for room until `deadline` if given.
fn send_all(fd: RawFd, mut bytes: &[u8], deadline: Option<Instant>) -> Result<(), Broken> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for its length; `fd` is a socket we own.
        let sent =
            unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
        if sent > 0 {
            bytes = &bytes[sent as usize..];
            continue;
        }
        wait_for(fd, libc::POLLOUT, deadline)?;
    }
    Ok(())
}

/// Fills `buf`, waiting for data until `deadline` if given.
fn receive_exact(fd: RawFd, mut buf: &mut [u8], deadline: Option<Instant>) -> Result<(), Broken> {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for writes of its length; `fd` is a socket we own.
        let received = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if received > 0 {
            buf = &mut buf[received as usize..];
            continue;
        }
        if received == 0 {
            return Err(Broken::Ended);
        }
        wait_for(fd, libc::POLLIN, deadline)?;
    }
    Ok(())
}

/// After a send or recv that moved nothing: waits until the socket is ready again, or
/// tells why it will not be.
fn wait_for(fd: RawFd, events: libc::c_short, deadline: Option<Instant>) -> Result<(), Broken> {
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EINTR) => return Ok(()),
        Some(libc::EAGAIN) => {}
        _ => return Err(Broken::Ended),
    }
    let timeout_ms: c_int = match deadline {
        None => -1,
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Broken::Overrun);
            }
            c_int::try_from(left.as_millis() + 1).unwrap_or(c_int::MAX)
        }
    };
    let mut poll = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut poll, 1, timeout_ms) };
    if ready == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(Broken::Overrun);
    }
    Ok(())
}

/// The render process: sets itself up, then answers jobs until the parent closes the
/// socket. Never returns.
fn serve(socket: RawFd, parent: libc::pid_t) -> ! {
    let socket = isolate(socket, parent);
    loop {
        let mut header = [0u8; 9];
        if receive_exact(socket, &mut header, None).is_err() {
            break;
        }
        let first_len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
        let second_len = u32::from_le_bytes([header[5], header[6], header[7], header[8]]);
        let mut first = vec![0u8; first_len as usize];
        let mut second = vec![0u8; second_len as usize];
        if receive_exact(socket, &mut first, None).is_err()
            || receive_exact(socket, &mut second, None).is_err()
        {
            break;
        }
        let answer = match (
            header[0],
            String::from_utf8(first),
            String::from_utf8(second),
        ) {
            (code @ (1 | 2), Ok(first), Ok(second)) => {
                let job = if code == 1 {
                    Job::Ejs {
                        template: &first,
                        data_json: &second,
                    }
                } else {
                    Job::Xslt {
                        stylesheet: &first,
                        document: &second,
                    }
                };
                std::panic::catch_unwind(|| job.render_here()).unwrap_or_else(|_| {
                    Err(TemplateError::new(
                        TemplateErrorKind::Engine,
                        format!("{}: the renderer failed on this template", job.engine()),
                    ))
                })
            }
            _ => Err(TemplateError::new(
                TemplateErrorKind::Engine,
                "the render process got a broken job",
            )),
        };
        let (status, text) = match &answer {
            Ok(text) => (0u8, text.as_str()),
            Err(e) => (e.kind.code(), e.msg.as_str()),
        };
        let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
        let mut answer_header = [status, 0, 0, 0, 0];
        answer_header[1..].copy_from_slice(&len.to_le_bytes());
        let text = &text.as_bytes()[..len as usize];
        if send_all(socket, &answer_header, None).is_err() || send_all(socket, text, None).is_err()
        {
            break;
        }
    }
    // SAFETY: ends this process at once: no exit handlers or destructors run, which
    // belong to the parent (its buffered output must not be written twice).
    unsafe { libc::_exit(0) }
}

/// Cuts the render process off from the parent's resources; returns the socket's new
/// number. Every step is best effort: the engines keep their own limits regardless.
fn isolate(socket: RawFd, parent: libc::pid_t) -> RawFd {
    const SOCKET: RawFd = 3;
    // SAFETY: plain system calls on this process's own descriptors, signals and limits.
    unsafe {
        // Die with the thread that forked us (the parent's deadline cannot act then).
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(0);
        }
        libc::prctl(libc::PR_SET_NAME, c"template-render".as_ptr());
        // The parent's handlers (a graceful stop on SIGTERM) are not ours: die instead.
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(signal, libc::SIG_DFL);
        }
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        // Only the socket stays open: no database or provider connection, no other
        // thread's render socket, and no stdout or stderr that someone reads to the end.
        if socket != SOCKET {
            libc::dup2(socket, SOCKET);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for standard in 0..3 {
            if null >= 0 {
                libc::dup2(null, standard);
            } else {
                libc::close(standard);
            }
        }
        if libc::syscall(libc::SYS_close_range, SOCKET + 1, libc::c_uint::MAX, 0) != 0 {
            let mut open_files: libc::rlimit = std::mem::zeroed();
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut open_files);
            for fd in SOCKET + 1..c_int::try_from(open_files.rlim_cur).unwrap_or(65536) {
                libc::close(fd);
            }
        }
        // No core dump: the copy of the parent's memory holds gateway passwords.
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        if let Some(size) = address_space_size() {
            let limit = size.saturating_add(ADDRESS_SPACE_HEADROOM);
            let limit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
        }
    }
    SOCKET
}

/// The size of this process's address space, from /proc/self/statm.
fn address_space_size() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
