//! `cargo bench --bench queue`: 10,000 queued SMS through `ntsms --command process`,
//! against a local fake ePochta answering at once and after 50 ms, with gwepochta
//! in-process; and in the same run the one-subprocess-per-message way BILLmanager
//! modules work (gwepochta as a separate program, and a third-party shell gateway).
//! Prints messages per second and the run's peak RSS (wait4's ru_maxrss).
//!
//! Beside each in-process run stands the ceiling: what the database allows a queue at
//! all — a bare loop of 16 connections that each claim a row by primary key, delete it
//! and commit, one transaction a row — so the ratio is measured in one run. The runs
//! are made at the server's own durability setting and again at the durable default
//! real installs run (`innodb_flush_log_at_trx_commit=1`; the tests' private server
//! starts with 2).
//!
//! Beside the rates stands where the CPU goes, in ms a message (a row for the ceiling):
//! ntsms's own (wait4), the database server's (its /proc stat, when it runs on this
//! machine) and the bench process's, which is the fake provider during an ntsms run and
//! the loop's client side during the ceiling. On a machine whose cores are all busy the
//! rate is bounded by cores / (the sum of the three).
//!
//! Uses the test MariaDB (MGRNOTIFY_TEST_DB_URL, or the private server the tests start).
//!
//! `QUEUE_BENCH_CONF` adds lines to ntsms's mgrnotify.conf (`QueueClaimRows 1`, say).
//!
//! To profile ntsms: `QUEUE_BENCH_ONLY=1` makes one in-process run (provider at once,
//! the server's durability), and `QUEUE_BENCH_WRAP` runs ntsms under a program, e.g.
//! `QUEUE_BENCH_WRAP="perf record -g -o /tmp/ntsms.perf --" cargo bench --profile
//! profiling --bench queue` (the profiling profile keeps the symbols).

#[path = "../tests/common/mod.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_http::{FakeHttp, Response};
use common::mariadb::{notice_file, wait_rusage, TestDb, RECORDING_GATEWAY};
use common::mgr_root::MgrRoot;
use mysql::prelude::Queryable;

const MESSAGES: usize = 10_000;
const WORKERS: usize = 16;

struct Figures {
    sent: usize,
    left: usize,
    seconds: f64,
    peak_rss_mb: f64,
    /// CPU time (user + system) ntsms spent per message: unlike the rate, it hardly
    /// depends on what else the machine runs.
    cpu_ms_per_message: f64,
    /// The same for the database server and the fake provider during the run.
    others: Others,
}

/// CPU ms a message of the database server (when it can be watched) and of this
/// process (the fake provider, or the ceiling loop's client side).
#[derive(Clone, Copy, Default)]
struct Others {
    server_ms: Option<f64>,
    bench_ms: f64,
}

impl Others {
    fn describe(&self, own: Option<f64>, own_name: &str) -> String {
        let server = match self.server_ms {
            Some(ms) => format!("{ms:.3}"),
            None => "?".to_owned(),
        };
        let mut text = String::new();
        if let Some(own) = own {
            text.push_str(&format!("{own_name} {own:.3} + "));
        }
        text.push_str(&format!("database server {server} + "));
        text.push_str(&format!(
            "{} {:.3}",
            if own.is_some() {
                "fake provider"
            } else {
                "loop client"
            },
            self.bench_ms
        ));
        if let Some(server) = self.server_ms {
            let total = own.unwrap_or(0.0) + server + self.bench_ms;
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            text.push_str(&format!(
                " = {total:.3} ms CPU (at most {:.0} a second on {cores} cores)",
                cores as f64 * 1000.0 / total
            ));
        }
        text
    }
}

/// CPU seconds used so far by the database server (when it runs here) and by this
/// process.
struct CpuClock {
    server_pid: Option<u32>,
    server: Option<f64>,
    bench: f64,
}

impl CpuClock {
    fn start(conn: &mut mysql::Conn) -> Self {
        let server_pid = conn
            .query_first::<String, _>("SELECT @@pid_file")
            .ok()
            .flatten()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|pid| pid.trim().parse().ok());
        Self {
            server_pid,
            server: server_pid.and_then(process_cpu),
            bench: own_cpu(),
        }
    }

    /// What was used since `start`, in ms per `items`.
    fn per(&self, items: usize) -> Others {
        let per = |seconds: f64| 1000.0 * seconds / items.max(1) as f64;
        Others {
            server_ms: self
                .server
                .zip(self.server_pid.and_then(process_cpu))
                .map(|(before, after)| per(after - before)),
            bench_ms: per(own_cpu() - self.bench),
        }
    }
}

/// User + system CPU seconds of process `pid` (its /proc stat, in clock ticks).
fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / per_second)
}

/// User + system CPU seconds of this process.
fn own_cpu() -> f64 {
    // SAFETY: zeroed rusage is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills `usage`, ours.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    seconds_of(usage.ru_utime) + seconds_of(usage.ru_stime)
}

fn seconds_of(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
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
    if std::env::var_os("QUEUE_BENCH_ONLY").is_some() {
        let f = epochta_run(messages, Duration::ZERO, false);
        report("ntsms in-process, provider at once", &f);
        return;
    }
    if script.is_file() {
        durability_runs(messages);
    }
    if script.is_file() {
        let f = epochta_run(messages, Duration::ZERO, true);
        report("gwepochta as a subprocess per message, at once", &f);
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

/// At the server's setting and at the durable default: the ceiling, and ntsms
/// in-process against a provider that answers at once and after 50 ms.
fn durability_runs(messages: usize) {
    let db = TestDb::create();
    let mut conn = db.conn();
    let original: i64 = conn
        .query_first("SELECT @@GLOBAL.innodb_flush_log_at_trx_commit")
        .ok()
        .flatten()
        .unwrap_or(1);
    for setting in [original, 1] {
        if setting != original && original == 1 {
            continue;
        }
        if conn
            .query_drop(format!(
                "SET GLOBAL innodb_flush_log_at_trx_commit = {setting}"
            ))
            .is_err()
        {
            println!(
                "  (cannot set innodb_flush_log_at_trx_commit: the account lacks the privilege)"
            );
            break;
        }
        println!("  innodb_flush_log_at_trx_commit = {setting}:");
        // The ceiling moves with the machine's load: measured just before and just
        // after the ntsms run, and their mean is what the run is compared with.
        let (before, cpu) = ceiling_run(messages);
        let at_once = epochta_run(messages, Duration::ZERO, false);
        let (after, _) = ceiling_run(messages);
        let ceiling = (before + after) / 2.0;
        println!(
            "    ceiling (claim by id, delete, commit; {WORKERS} connections): {ceiling:.0} rows/s \
             ({before:.0} before the ntsms run, {after:.0} after); CPU a row: {}",
            cpu.describe(None, "")
        );
        for (delay, f) in [
            (0, at_once),
            (50, epochta_run(messages, Duration::from_millis(50), false)),
        ] {
            let rate = f.sent as f64 / f.seconds;
            let share = if delay == 0 {
                format!("{:.0}% of the ceiling", 100.0 * rate / ceiling)
            } else {
                format!(
                    "{:.0}% of workers/latency",
                    100.0 * rate / (WORKERS as f64 / 0.050)
                )
            };
            println!(
                "    ntsms in-process, provider after {delay} ms: {rate:.0} messages/s ({share}), \
                 peak RSS {:.1} MB; CPU a message: {}",
                f.peak_rss_mb,
                f.others.describe(Some(f.cpu_ms_per_message), "ntsms")
            );
        }
    }
    let _ = conn.query_drop(format!(
        "SET GLOBAL innodb_flush_log_at_trx_commit = {original}"
    ));
}

/// Rows per second the database allows: `messages` rows, then WORKERS connections
/// that each claim a row by primary key, delete it and commit; and the CPU it took.
fn ceiling_run(messages: usize) -> (f64, Others) {
    let db = TestDb::create();
    let mut conn = db.conn();
    for chunk in (0..messages).collect::<Vec<_>>().chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|n| format!("('ntsms', 'b/{n}', 0, '2026-01-01 00:00:00')"))
            .collect();
        conn.query_drop(format!(
            "INSERT INTO notifytask (modulename, filename, priority, createdate) VALUES {}",
            values.join(",")
        ))
        .expect("queue the ceiling rows");
    }
    let ids: Vec<u64> = conn
        .query("SELECT id FROM notifytask ORDER BY id")
        .expect("read the ids");
    let ids = std::sync::Arc::new(std::sync::Mutex::new(ids.into_iter()));
    let connections: Vec<_> = (0..WORKERS).map(|_| db.conn()).collect();
    let clock = CpuClock::start(&mut conn);
    let started = Instant::now();
    let workers: Vec<_> = connections
        .into_iter()
        .map(|mut conn| {
            let ids = ids.clone();
            std::thread::spawn(move || loop {
                let Some(id) = ids.lock().expect("ids").next() else {
                    break;
                };
                let mut tx = conn
                    .start_transaction(mysql::TxOpts::default())
                    .expect("begin");
                let row: Option<u64> = tx
                    .exec_first(
                        "SELECT id FROM notifytask WHERE id = ? FOR UPDATE SKIP LOCKED",
                        (id,),
                    )
                    .expect("claim");
                if row.is_some() {
                    tx.exec_drop("DELETE FROM notifytask WHERE id = ?", (id,))
                        .expect("delete");
                }
                tx.commit().expect("commit");
            })
        })
        .collect();
    for w in workers {
        w.join().expect("ceiling worker");
    }
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    (rate, clock.per(messages))
}

fn report(label: &str, f: &Figures) {
    println!(
        "  {label}: {} sent, {} left, {:.2} s, {:.0} messages/s, peak RSS {:.1} MB; CPU a \
         message: {}",
        f.sent,
        f.left,
        f.seconds,
        f.sent as f64 / f.seconds,
        f.peak_rss_mb,
        f.others.describe(Some(f.cpu_ms_per_message), "ntsms")
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
        &format!(
            "QueueWorkers {WORKERS}\nQueueTimeBudget 0\n{}\n",
            std::env::var("QUEUE_BENCH_CONF").unwrap_or_default()
        ),
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
    let ntsms = root.path().join("notify/ntsms");
    let wrap = std::env::var("QUEUE_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(&ntsms);
            c
        }
        None => Command::new(&ntsms),
    };
    let clock = CpuClock::start(&mut conn);
    let started = Instant::now();
    // Reaped by wait4 below, which also reads its peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = command
        .args(["--command", "process"])
        .current_dir(root.path())
        .env_remove("MGR_ROOT")
        .env("MGRNOTIFY_DB_URL", db.url())
        .stdin(Stdio::null())
        .spawn()
        .expect("start ntsms");
    let (ok, usage) = wait_rusage(child.id());
    let seconds = started.elapsed().as_secs_f64();
    let others = clock.per(messages);
    assert!(
        ok,
        "ntsms --command process failed: see {}",
        root.path().display()
    );
    let left: usize = conn
        .query_first("SELECT COUNT(*) FROM notifytask")
        .expect("count rows")
        .unwrap_or(0);
    let cpu = seconds_of(usage.ru_utime) + seconds_of(usage.ru_stime);
    Figures {
        sent: messages - left,
        left,
        seconds,
        peak_rss_mb: usage.ru_maxrss as f64 / 1024.0,
        cpu_ms_per_message: 1000.0 * cpu / messages.max(1) as f64,
        others,
    }
}
