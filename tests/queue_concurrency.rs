//! Never twice, never lost: three runs at once (both claim modes), and a run killed
//! with SIGKILL in the middle.

mod common;

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex};

use common::fake_http::{FakeHttp, Request, Response};
use common::mariadb::{
    add_program, add_slow_gateway, delivered, notice_file, running_pids, spawn_process,
    wait_bounded, TestDb, RECORDING_GATEWAY,
};
use common::mgr_root::MgrRoot;

fn fill(root: &MgrRoot, db: &TestDb, rows: usize) {
    fill_for(root, db, rows, "+1");
}

fn fill_for(root: &MgrRoot, db: &TestDb, rows: usize, phone: &str) {
    for n in 0..rows {
        root.write(
            &format!("var/notify/q/{n}"),
            &notice_file(&format!("row{n}"), Some(phone), 1),
        );
        db.add_task(
            &format!("q/{n}"),
            (n % 3) as i32,
            "2026-01-01 00:00:00",
            false,
        );
    }
}

/// Starts three `process` runs at once and waits for all; each must succeed.
fn three_runs_at_once(root: &MgrRoot, db: &TestDb) {
    let runs: Vec<Child> = (0..3).map(|_| spawn_process(root, &db.url())).collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// How often each row's message reached the provider.
fn counts(root: &MgrRoot) -> HashMap<String, usize> {
    let mut c = HashMap::new();
    for line in delivered(root) {
        *c.entry(line).or_insert(0) += 1;
    }
    c
}

fn three_runs_deliver_each_row_exactly_once(claim: &str) {
    let root = MgrRoot::new();
    root.write(
        "etc/mgrnotify/mgrnotify.conf",
        &format!("QueueWorkers 4\nQueueBatchSize 7\nQueueClaim {claim}\n"),
    );
    let db = TestDb::create();
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    let rows = 150;
    fill(&root, &db, rows);
    three_runs_at_once(&root, &db);
    let c = counts(&root);
    assert_eq!(c.len(), rows, "every row delivered");
    let twice: Vec<_> = c.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert!(db.tasks().is_empty());
    // Each run finished its own work and said so.
    let log = root.read("var/ntsms.log");
    assert_eq!(log.matches("process: done").count(), 3, "{log}");
}

#[test]
fn three_concurrent_runs_skip_locked() {
    three_runs_deliver_each_row_exactly_once("skip_locked");
}

#[test]
fn three_concurrent_runs_named_locks() {
    three_runs_deliver_each_row_exactly_once("named_locks");
}

/// The fast path: gwepochta in-process, three runs at once against one fake ePochta
/// that counts the SENDs of every message text.
fn three_in_process_runs_send_each_row_exactly_once(claim: &str) {
    let sends: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let seen = sends.clone();
    let fake = FakeHttp::start(move |req: &Request| {
        let body = req.body_text();
        let text = body
            .split_once("<text>")
            .and_then(|(_, rest)| rest.split_once("</text>"))
            .map(|(t, _)| t.to_owned());
        match text {
            Some(t) if req.path() == "/members/sms/xml.php" && body.contains("SEND") => {
                *seen.lock().unwrap().entry(t).or_insert(0) += 1;
                Response::xml("<RESPONSE><status>0</status></RESPONSE>")
            }
            _ => Response::text(400, "unexpected request"),
        }
    });
    let root = MgrRoot::new();
    root.write(
        "etc/mgrnotify/mgrnotify.conf",
        &format!("QueueWorkers 6\nQueueBatchSize 11\nQueueClaim {claim}\n"),
    );
    let db = TestDb::create();
    db.add_epochta_gateway(1, "l", "pw", &fake.url());
    let rows = 300;
    fill_for(&root, &db, rows, "+79990000001");
    three_runs_at_once(&root, &db);
    let sends = sends.lock().unwrap();
    assert_eq!(sends.len(), rows, "every row sent");
    let twice: Vec<_> = sends.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(fake.count(), rows);
    assert!(db.tasks().is_empty());
}

#[test]
fn three_in_process_runs_skip_locked() {
    three_in_process_runs_send_each_row_exactly_once("skip_locked");
}

#[test]
fn three_in_process_runs_named_locks() {
    three_in_process_runs_send_each_row_exactly_once("named_locks");
}

#[test]
fn sigkill_mid_run_loses_nothing_and_repeats_only_the_in_flight() {
    let workers = 4;
    let root = MgrRoot::new();
    // Jobs of 4 rows: when the kill comes, each worker is a few jobs in, with rows sent
    // but not yet deleted, which only its sent journal keeps from being sent again.
    root.write(
        "etc/mgrnotify/mgrnotify.conf",
        &format!("QueueWorkers {workers}\nQueueClaimRows 4\n"),
    );
    let db = TestDb::create();
    // A slow provider: the message is recorded after 0.2 s, so some are in flight
    // whenever the run is killed.
    add_slow_gateway(&root, &db, "sleep 0.2");
    let rows = 60;
    fill(&root, &db, rows);

    let mut run = spawn_process(&root, &db.url());
    let started = Instant::now();
    while delivered(&root).len() < 12 {
        assert!(started.elapsed() < Duration::from_secs(30), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.kill().unwrap(); // SIGKILL
    run.wait().unwrap();
    // Let the orphaned in-flight gateways finish.
    std::thread::sleep(Duration::from_millis(600));

    let left: Vec<u64> = db.tasks().iter().map(|t| t.id).collect();
    assert!(!left.is_empty(), "the kill came too late to test anything");
    let first = counts(&root);
    // Never lost: every row is either still queued or was delivered.
    assert!(left.len() + first.len() >= rows);
    assert!(db.tasks().iter().all(|t| t.error_count == 0));

    let out = spawn_process(&root, &db.url()).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.tasks().is_empty());
    let c = counts(&root);
    let expected: Vec<String> = (0..rows).map(|n| format!("+1|row{n}")).collect();
    let missing: Vec<&String> = expected.iter().filter(|k| !c.contains_key(*k)).collect();
    let strange: Vec<&String> = c.keys().filter(|k| !expected.contains(k)).collect();
    assert!(
        missing.is_empty() && strange.is_empty(),
        "missing {missing:?}, unexpected lines {strange:?}"
    );
    let twice = c.values().filter(|n| **n > 1).count();
    assert!(
        twice <= workers,
        "{twice} rows sent twice: more than the {workers} in flight"
    );
    assert!(c.values().all(|n| *n <= 2));
}

#[test]
fn sigterm_stops_the_run_kills_the_gateways_and_leaves_the_rows_queued() {
    let workers = 16;
    let root = MgrRoot::new();
    root.write(
        "etc/mgrnotify/mgrnotify.conf",
        &format!("QueueWorkers {workers}\nQueueGatewayTimeout 60s\n"),
    );
    let db = TestDb::create();
    // Hangs, with a child of its own; both pids go to var/gw.pids.
    add_program(
        &root,
        "gwhang",
        "#!/bin/sh\necho $$ >> var/gw.pids\nsleep 60 &\necho $! >> var/gw.pids\n\
         cat >/dev/null\nwait\necho '<doc/>'\n",
    );
    db.add_gateway("gwhang", 1, "", "on", "outgoing");
    let rows = 24;
    fill(&root, &db, rows);

    let run = spawn_process(&root, &db.url());
    let started = Instant::now();
    while root.read("var/gw.pids").lines().count() < 2 * workers {
        assert!(started.elapsed() < Duration::from_secs(30), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = i32::try_from(run.id()).unwrap();
    // SAFETY: kill(2) on the ntsms process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let out = wait_bounded(run, Duration::from_secs(10));
    assert_eq!(running_pids(&root, "var/gw.pids"), Vec::<i32>::new());
    let left = db.tasks();
    assert_eq!(left.len(), rows, "every row stays queued");
    assert!(
        left.iter()
            .all(|t| t.error_count == 0 && t.err_info.is_none()),
        "{left:?}"
    );
    assert!(delivered(&root).is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stopped by SIGTERM"), "{err}");
}
