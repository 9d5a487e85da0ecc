//! `cargo bench --bench queue`: 10,000 queued SMS through `ntsms --command process`,
//! against a local fake ePochta answering at once and after 50 ms, with gwepochta
//! in-process; and in the same run the one-subprocess-per-message way BILLmanager
//! modules work (gwepochta as a separate program, and a third-party shell gateway).
//! Prints messages per second and the run's peak RSS (wait4's ru_maxrss).
//!
//! Uses the test MariaDB (MGRNOTIFY_TEST_DB_URL, or the private server the tests start).

#[path = "../tests/common/mod.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_http::{FakeHttp, Response};
use common::mariadb::{notice_file, TestDb, RECORDING_GATEWAY};
use common::mgr_root::MgrRoot;
use mysql::prelude::Queryable;

const MESSAGES: usize = 10_000;
const WORKERS: usize = 16;

struct Figures {
    sent: usize,
    left: usize,
    seconds: f64,
    peak_rss_mb: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: keep that quick.
    let messages = if args.iter().any(|a| a == "--bench") {
        MESSAGES
    } else {
        200
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gwepochta.rhai");
    println!("queue bench: {messages} messages, {WORKERS} workers");
    if script.is_file() {
        for (label, delay, separate) in [
            ("gwepochta in-process, provider answers at once", 0, false),
            (
                "gwepochta in-process, provider answers after 50 ms",
                50,
                false,
            ),
            ("gwepochta as a subprocess per message, at once", 0, true),
        ] {
            let f = epochta_run(messages, Duration::from_millis(delay), separate);
            report(label, &f);
            if delay == 50 {
                let ideal = WORKERS as f64 / 0.050;
                let rate = f.sent as f64 / f.seconds;
                println!(
                    "    {:.0}% of workers/latency ({ideal:.0}/s)",
                    100.0 * rate / ideal
                );
            }
        }
    } else {
        println!("  gwepochta runs skipped: scripts/gwepochta.rhai is not in this tree yet");
    }
    if script.is_file() {
        // Memory is flat in queue length: the same run on a queue ten times shorter.
        let short = (messages / 10).max(1);
        let f = epochta_run(short, Duration::ZERO, false);
        report(
            &format!("gwepochta in-process, at once, a {short}-message queue"),
            &f,
        );
    }
    let f = third_party_run(messages);
    report("third-party shell gateway, a subprocess per message", &f);
}

fn report(label: &str, f: &Figures) {
    println!(
        "  {label}: {} sent, {} left, {:.2} s, {:.0} messages/s, peak RSS {:.1} MB",
        f.sent,
        f.left,
        f.seconds,
        f.sent as f64 / f.seconds,
        f.peak_rss_mb
    );
}

fn epochta_run(messages: usize, delay: Duration, separate_program: bool) -> Figures {
    let fake = FakeHttp::start(move |_| {
        Response::xml("<RESPONSE><status>0</status><credits>1</credits></RESPONSE>").after(delay)
    });
    let root = MgrRoot::new();
    if separate_program {
        // A copy of the binary is not "us": ntsms runs it as BILLmanager would.
        let link = root.path().join("gate/gwepochta");
        std::fs::remove_file(&link).expect("remove the gate symlink");
        std::fs::copy(common::mgr_root::BIN, &link).expect("copy the binary");
    }
    let db = TestDb::create();
    db.add_epochta_gateway(1, "bench", "pw", &fake.url());
    let mut f = run(&root, &db, messages);
    f.sent = fake.count().min(f.sent);
    f
}

fn third_party_run(messages: usize) -> Figures {
    let root = MgrRoot::new();
    let path = root.write("gate/gwrecord", RECORDING_GATEWAY);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let db = TestDb::create();
    db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    run(&root, &db, messages)
}

/// Queues `messages` rows, runs `ntsms --command process` once, and measures it.
fn run(root: &MgrRoot, db: &TestDb, messages: usize) -> Figures {
    root.write(
        "etc/mgrnotify/mgrnotify.conf",
        &format!("QueueWorkers {WORKERS}\nQueueTimeBudget 0\n"),
    );
    let mut conn = db.conn();
    for chunk in (0..messages).collect::<Vec<_>>().chunks(1000) {
        let mut values = Vec::with_capacity(chunk.len());
        for n in chunk {
            root.write(
                &format!("var/notify/b/{n}"),
                &notice_file(&format!("bench message {n}"), Some("+79990000001"), 1),
            );
            values.push(format!("('ntsms', 'b/{n}', 0, '2026-01-01 00:00:00')"));
        }
        conn.query_drop(format!(
            "INSERT INTO notifytask (modulename, filename, priority, createdate) VALUES {}",
            values.join(",")
        ))
        .expect("queue the bench rows");
    }
    let started = Instant::now();
    // Reaped by wait4 below, which also reads its peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(root.path().join("notify/ntsms"))
        .args(["--command", "process"])
        .current_dir(root.path())
        .env_remove("MGR_ROOT")
        .env("MGRNOTIFY_DB_URL", db.url())
        .stdin(Stdio::null())
        .spawn()
        .expect("start ntsms");
    let (ok, peak_kb) = wait_rusage(child.id());
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        ok,
        "ntsms --command process failed: see {}",
        root.path().display()
    );
    let left: usize = conn
        .query_first("SELECT COUNT(*) FROM notifytask")
        .expect("count rows")
        .unwrap_or(0);
    Figures {
        sent: messages - left,
        left,
        seconds,
        peak_rss_mb: peak_kb as f64 / 1024.0,
    }
}

/// Waits for the child and returns whether it succeeded and its peak RSS in KiB.
fn wait_rusage(pid: u32) -> (bool, i64) {
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = libc::pid_t::try_from(pid).expect("pid fits");
    // SAFETY: waiting for a child we spawned and have not waited for.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    (
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        usage.ru_maxrss,
    )
}
