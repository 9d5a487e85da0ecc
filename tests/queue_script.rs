//! ntsms sending through our own script gateway gwepochta in-process (no subprocess),
//! against a fake ePochta that checks each request against the seed's API.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::fake_http::{FakeHttp, Request, Response};
use common::mariadb::{notice_file, run_process, TestDb};
use common::mgr_root::{stderr, MgrRoot};

fn epochta(status: i32) -> FakeHttp {
    FakeHttp::start(move |req: &Request| {
        let body = req.body_text();
        let ok = req.method == "POST"
            && req.path() == "/members/sms/xml.php"
            && body.contains("<SMS>")
            && body.contains("SEND")
            && body.contains("<username>login1</username>")
            && body.contains("<password>pw-secret</password>")
            // gwepochta sends the number in international digits, as ePochta expects.
            && body.contains("<number>79990000001</number>")
            && body.contains("Hello via ePochta")
            && body.contains("Shop");
        if !ok {
            return Response::text(400, "unexpected request");
        }
        Response::xml(&format!(
            "<RESPONSE><status>{status}</status><credits>1.0</credits></RESPONSE>"
        ))
    })
}

fn setup(fake: &FakeHttp) -> (MgrRoot, TestDb, u64) {
    let root = MgrRoot::new();
    let db = TestDb::create();
    db.add_epochta_gateway(1, "login1", "pw-secret", &fake.url());
    root.write(
        "var/notify/e",
        &notice_file("Hello via ePochta", Some("+79990000001"), 1),
    );
    let id = db.add_task("e", 0, "2026-01-01 00:00:00", false);
    (root, db, id)
}

#[test]
fn gwepochta_in_process_sends_and_deletes_the_row() {
    let fake = epochta(0);
    let (root, db, _) = setup(&fake);
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.count(), 1);
    assert!(db.tasks().is_empty(), "{:?}", db.tasks());
    // In-process: no gwepochta subprocess answered an outgoing command.
    assert!(!root.read("var/gwepochta.log").contains("outgoing"));
    assert!(!root.read("var/ntsms.log").contains("pw-secret"));
}

#[test]
fn gwepochta_refusal_goes_to_err_info() {
    let fake = epochta(-1);
    let (root, db, id) = setup(&fake);
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.count(), 1, "the provider was asked");
    let row = db.task(id).expect("the row stays");
    assert_eq!(row.error_count, 1);
    let info = row.err_info.unwrap_or_default();
    assert!(info.contains("gwepochta"), "{info}");
    assert!(!info.contains("pw-secret"), "{info}");
}

#[test]
fn workers_reuse_connections_to_the_provider() {
    let fake = epochta(0);
    let (root, db, _) = setup(&fake);
    for n in 0..40 {
        let name = format!("k{n}");
        let text = root.read("var/notify/e");
        root.write(&format!("var/notify/{name}"), &text);
        db.add_task(&name, 0, "2026-01-01 00:00:00", false);
    }
    root.write("etc/mgrnotify/mgrnotify.conf", "QueueWorkers 4\n");
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.count(), 41);
    assert!(db.tasks().is_empty());
    // Keep-alive: one connection a worker or so, not one a message.
    assert!(
        fake.connections() <= 8,
        "{} connections",
        fake.connections()
    );
}

#[test]
fn sixteen_workers_keep_one_connection_each() {
    // The provider answers in rounds: each request waits until 16 have arrived (or
    // 2 s have passed), so all 16 workers hold a request at once, round after round.
    const WORKERS: usize = 16;
    let arrived = Arc::new((Mutex::new(0usize), Condvar::new()));
    let fake = FakeHttp::start(move |_| {
        let (count, wake) = &*arrived;
        let mut n = count.lock().unwrap();
        *n += 1;
        let round_full = (*n).div_ceil(WORKERS) * WORKERS;
        wake.notify_all();
        let _ = wake
            .wait_timeout_while(n, Duration::from_secs(2), |n| *n < round_full)
            .unwrap();
        Response::xml("<RESPONSE><status>0</status><credits>1.0</credits></RESPONSE>")
    });
    let (root, db, _) = setup(&fake);
    for n in 1..4 * WORKERS {
        let name = format!("k{n}");
        root.write(
            &format!("var/notify/{name}"),
            &notice_file("Hello via ePochta", Some("+79990000001"), 1),
        );
        db.add_task(&name, 0, "2026-01-01 00:00:00", false);
    }
    root.write(
        "etc/mgrnotify/mgrnotify.conf",
        &format!("QueueWorkers {WORKERS}\n"),
    );
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.count(), 4 * WORKERS);
    assert!(db.tasks().is_empty());
    // Every worker keeps its keep-alive connection between messages.
    assert!(
        fake.connections() <= WORKERS,
        "{} connections for {} messages",
        fake.connections(),
        fake.count()
    );
}
