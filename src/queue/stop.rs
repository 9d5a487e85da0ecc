//! Stopping a run on SIGTERM or SIGINT. The handler only notes the signal; the
//! dispatcher then stops handing out rows, and each worker kills the gateway program it
//! runs (with its process group) and puts its row back, unchanged. A second signal
//! ends the process at once, the default way.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal that asked the run to stop; 0 while none did.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn note(signal: libc::c_int) {
    // Async-signal-safe: one atomic store.
    SIGNAL.store(signal, Ordering::SeqCst);
}

/// Makes SIGTERM and SIGINT ask the run to stop instead of ending the process.
pub fn install() -> Result<(), std::io::Error> {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is a valid value to fill in; the handler only
        // stores an atomic, which is async-signal-safe; sigaction reads `action` only.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
            // The second signal gets the default action; reads restart, poll does not.
            action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if installed != 0 {
            let e = std::io::Error::last_os_error();
            return Err(std::io::Error::new(
                e.kind(),
                format!("cannot handle signal {signal}: {e}"),
            ));
        }
    }
    Ok(())
}

/// A signal asked the run to stop.
pub fn requested() -> bool {
    SIGNAL.load(Ordering::Relaxed) != 0
}

/// The name of the signal that asked the run to stop.
pub fn signal_name() -> &'static str {
    match SIGNAL.load(Ordering::Relaxed) {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "a signal",
    }
}
