//! `ntsms --command process` against a real MariaDB: order, success, failure with
//! backoff and attempts, failover, DoNothing, bad rows, third-party gateways in shell
//! and Python, configuration errors.

mod common;

use common::fake_http::{FakeHttp, Response};
use std::time::Duration;

use common::mariadb::{
    add_program, add_slow_gateway, delivered, notice_file, run_process, run_process_bounded,
    running_pids, TestDb, RECORDING_GATEWAY,
};
use common::mgr_root::{stderr, MgrRoot};

/// A gateway that always fails the way the seed says: error XML and exit 1.
const FAILING_GATEWAY: &str = r#"#!/bin/sh
cat >/dev/null
echo '<doc><error type="gateway" object="provider"><msg>provider says: balance is empty</msg></error></doc>'
exit 1
"#;

fn setup(conf: &str) -> (MgrRoot, TestDb) {
    let root = MgrRoot::new();
    root.write("etc/mgrnotify/mgrnotify.conf", conf);
    (root, TestDb::create())
}

fn queue(root: &MgrRoot, db: &TestDb, name: &str, text: &str, provider: u32) -> u64 {
    root.write(
        &format!("var/notify/2026-01-01/{name}"),
        &notice_file(text, Some("+79990000001"), provider),
    );
    db.add_task(
        &format!("2026-01-01/{name}"),
        0,
        "2026-01-01 10:00:00",
        false,
    )
}

#[test]
fn sends_highest_priority_first_then_oldest_and_deletes_row_and_file() {
    let (root, db) = setup("QueueWorkers 1\n");
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    db.add_gateway(
        "gwrecord",
        1,
        "<doc><login>u</login></doc>",
        "on",
        "outgoing",
    );
    for (name, priority, created) in [
        ("old-low", 0, "2026-01-01 09:00:00"),
        ("new-high", 5, "2026-01-02 09:00:00"),
        ("old-high", 5, "2026-01-01 09:00:00"),
        ("new-low", 0, "2026-01-03 09:00:00"),
    ] {
        root.write(
            &format!("var/notify/d/{name}"),
            &notice_file(name, Some("+7999"), 1),
        );
        db.add_task(&format!("d/{name}"), priority, created, false);
    }
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        delivered(&root),
        [
            "+7999|old-high",
            "+7999|new-high",
            "+7999|old-low",
            "+7999|new-low"
        ]
    );
    assert!(db.tasks().is_empty());
    assert!(!root.path().join("var/notify/d/old-high").exists());
    let log = root.read("var/ntsms.log");
    assert!(log.contains("sent through gateway"), "{log}");
}

#[test]
fn absolute_filenames_under_var_notify_work() {
    let (root, db) = setup("");
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    db.add_gateway("gwrecord", 1, "", "on", "1");
    let file = root.write("var/notify/d/n1", &notice_file("abs", Some("+1"), 1));
    db.add_task(&file.display().to_string(), 0, "2026-01-01 00:00:00", false);
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(delivered(&root), ["+1|abs"]);
    assert!(!file.exists());
}

#[test]
fn failure_backs_off_counts_attempts_and_waits_for_the_operator() {
    let (root, db) = setup("QueueMaxAttempts 2\nQueueRetryBase 1h\nQueueRetryCap 2h\n");
    add_program(&root, "gwfail", FAILING_GATEWAY);
    db.add_gateway("gwfail", 1, "", "on", "outgoing");
    let id = queue(&root, &db, "a", "hello", 1);

    assert!(run_process(&root, &db).status.success());
    let row = db.task(id).expect("the row stays");
    assert_eq!(row.error_count, 1);
    let info = row.err_info.unwrap();
    assert!(info.contains("provider says: balance is empty"), "{info}");
    assert!(
        info.contains("[attempt 1/2, transient, retry after 20"),
        "{info}"
    );

    // Not due yet: a second run leaves it alone.
    assert!(run_process(&root, &db).status.success());
    assert_eq!(db.task(id).unwrap().error_count, 1);

    // Time passes (the retry time moves into the past): tried again, the last time.
    db.exec(
        "UPDATE notifytask SET err_info = REPLACE(err_info, 'retry after 20', 'retry after 19')",
    );
    assert!(run_process(&root, &db).status.success());
    let row = db.task(id).unwrap();
    assert_eq!(row.error_count, 2);
    assert!(row.err_info.as_deref().unwrap().contains("no more retries"));
    assert!(root.path().join("var/notify/2026-01-01/a").exists());

    // Out of attempts: it stays, untouched, run after run.
    assert!(run_process(&root, &db).status.success());
    assert_eq!(db.task(id).unwrap().error_count, 2);

    // The operator fixes the gateway and resets error_count: sent at once.
    add_program(&root, "gwfail", RECORDING_GATEWAY);
    db.exec("UPDATE notifytask SET error_count = 0");
    assert!(run_process(&root, &db).status.success());
    assert!(db.task(id).is_none());
    assert_eq!(delivered(&root), ["+79990000001|hello"]);
}

#[test]
fn failover_tries_the_next_gateway_in_id_order() {
    let (root, db) = setup("");
    add_program(&root, "gwfail", FAILING_GATEWAY);
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    add_program(
        &root,
        "gwother",
        RECORDING_GATEWAY.replace("delivered", "wrong").as_str(),
    );
    db.add_gateway("gwother", 1, "", "off", "outgoing");
    db.add_gateway("gwother", 1, "", "on", "ingoing");
    db.add_gateway("gwother", 2, "", "on", "outgoing");
    db.add_gateway("gwfail", 1, "", "ON", "outgoing");
    db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    let id = queue(&root, &db, "f", "failover", 1);
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(db.task(id).is_none());
    assert_eq!(delivered(&root), ["+79990000001|failover"]);
    assert_eq!(root.read("var/wrong.log"), "");
    let log = root.read("var/ntsms.log");
    assert!(log.contains("(gwfail) failed"), "{log}");
}

#[test]
fn all_gateways_failing_names_each_reason() {
    let (root, db) = setup("");
    add_program(&root, "gwfail", FAILING_GATEWAY);
    let first = db.add_gateway("gwfail", 1, "", "on", "outgoing");
    let second = db.add_gateway("gwmissing", 1, "", "on", "outgoing");
    let id = queue(&root, &db, "x", "x", 1);
    assert!(run_process(&root, &db).status.success());
    let info = db.task(id).unwrap().err_info.unwrap();
    assert!(
        info.contains(&format!("gateway {first} (gwfail): "))
            && info.contains(&format!("gateway {second} (gwmissing): ")),
        "{info}"
    );
}

#[test]
fn do_nothing_sends_only_forced_rows() {
    let (root, db) = setup("");
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    root.write("etc/billmgr.DoNothing", "");
    root.write("var/notify/plain", &notice_file("plain", Some("+1"), 1));
    root.write("var/notify/forced", &notice_file("forced", Some("+1"), 1));
    let plain = db.add_task("plain", 0, "2026-01-01 00:00:00", false);
    db.add_task("forced", 0, "2026-01-01 00:00:00", true);
    assert!(run_process(&root, &db).status.success());
    assert_eq!(delivered(&root), ["+1|forced"]);
    let left = db.tasks();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, plain);
    assert_eq!(left[0].error_count, 0);
}

#[test]
fn bad_rows_get_clear_reasons_and_never_stop_the_others() {
    let (root, db) = setup("QueueGatewayTimeout 1s\nQueueWorkers 3\n");
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    add_program(
        &root,
        "gwhang",
        "#!/bin/sh\ncat >/dev/null\nsleep 30\necho '<doc/>'\n",
    );
    add_program(
        &root,
        "gwgarbage",
        "#!/bin/sh\ncat >/dev/null\necho 'Traceback (most recent call last): oops'\n",
    );
    db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    db.add_gateway("gwnothere", 2, "", "on", "outgoing");
    db.add_gateway("gwhang", 3, "", "on", "outgoing");
    db.add_gateway("gwgarbage", 4, "", "on", "outgoing");
    db.add_gateway("gwrecord", 5, "<doc><login>", "on", "outgoing");

    let mut expect = Vec::new();
    let mut add = |name: &str, file: Option<String>, why: &str| {
        if let Some(text) = file {
            root.write(&format!("var/notify/{name}"), &text);
        }
        expect.push((
            db.add_task(name, 0, "2026-01-01 00:00:00", false),
            why.to_owned(),
        ));
    };
    add("missing", None, "is missing");
    add("garbled", Some("<doc><notify>".into()), "is not XML");
    add(
        "nophone",
        Some(notice_file("t", None, 1)),
        "user 7 has no phone number",
    );
    add(
        "noprovider",
        Some(notice_file("t", Some("+1"), 9)),
        "no active outgoing ntsms gateway for provider 9",
    );
    add(
        "unknownmodule",
        Some(notice_file("t", Some("+1"), 2)),
        "unknown gateway module 'gwnothere'",
    );
    add(
        "hangs",
        Some(notice_file("t", Some("+1"), 3)),
        "did not answer within 1 s and was killed",
    );
    add("garbage", Some(notice_file("t", Some("+1"), 4)), "not XML");
    add(
        "badparams",
        Some(notice_file("t", Some("+1"), 5)),
        "xmlparams is not an XML document",
    );
    root.write("var/notify/good", &notice_file("good", Some("+1"), 1));
    let good = db.add_task("good", 0, "2026-01-01 00:00:00", false);

    let started = std::time::Instant::now();
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(delivered(&root), ["+1|good"]);
    assert!(db.task(good).is_none());
    for (id, why) in expect {
        let row = db
            .task(id)
            .unwrap_or_else(|| panic!("row for '{why}' was lost"));
        assert_eq!(row.error_count, 1, "{why}");
        let info = row.err_info.unwrap_or_default();
        assert!(info.contains(&why), "expected '{why}' in err_info: {info}");
        // A timeout or a garbled reply may pass; the rest cannot without an operator.
        let marker = if why.contains("killed") || why == "not XML" {
            "[attempt 1/10, transient, retry after"
        } else {
            "[attempt 1/10, permanent: not retried"
        };
        assert!(info.contains(marker), "{why}: {info}");
        assert!(info.chars().count() <= 255, "{info}");
    }
}

#[test]
fn python_gateway_posts_to_a_provider() {
    let fake = FakeHttp::start(|req| {
        assert_eq!(req.path(), "/send");
        Response::text(200, "msg-42")
    });
    let (root, db) = setup("");
    add_program(
        &root,
        "gwpy",
        r#"#!/usr/bin/env python3
import sys, urllib.request, xml.etree.ElementTree as ET
doc = ET.fromstring(sys.stdin.read())
params = ET.fromstring(doc.findtext('gateway/xmlparams'))
body = (doc.findtext('user/phone') + '|' + doc.findtext('message') + '|' + params.findtext('sender')).encode()
reply = urllib.request.urlopen(urllib.request.Request(params.findtext('url'), data=body), timeout=10)
print('<doc><id>%s</id></doc>' % reply.read().decode())
"#,
    );
    db.add_gateway(
        "gwpy",
        1,
        &format!(
            "<doc><url>{}/send</url><sender>Shop</sender></doc>",
            fake.url()
        ),
        "on",
        "outgoing",
    );
    let id = queue(&root, &db, "py", "from python", 1);
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(db.tasks(), vec![], "row {id} should be gone");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].body_text(), "+79990000001|from python|Shop");
    assert!(root.read("var/ntsms.log").contains("provider id msg-42"));
}

#[test]
fn bad_configuration_is_a_clear_error_and_changes_nothing() {
    let (root, db) = setup("QueueWorkers lots\n");
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    let id = queue(&root, &db, "c", "c", 1);
    let out = run_process(&root, &db);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("QueueWorkers 'lots' is not a number"),
        "{}",
        stderr(&out)
    );
    assert_eq!(db.task(id).unwrap().error_count, 0);
    assert!(delivered(&root).is_empty());
}

#[test]
fn time_budget_ends_the_run_and_the_rest_waits() {
    let (root, db) = setup("QueueWorkers 1\nQueueTimeBudget 1s\n");
    add_slow_gateway(&root, &db, "sleep 0.3");
    for n in 0..20 {
        queue(&root, &db, &format!("t{n}"), &format!("t{n}"), 1);
    }
    let started = std::time::Instant::now();
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    // Without the budget all 20 would go, 6 s of gateway time; a loaded machine may
    // fit fewer than usual into the budget, so only the bounds that prove it are asserted.
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    let sent = delivered(&root).len();
    assert!((1..=6).contains(&sent), "{sent} sent");
    assert_eq!(db.tasks().len(), 20 - sent);
    assert!(db.tasks().iter().all(|t| t.error_count == 0));
    assert!(root.read("var/ntsms.log").contains("time budget spent"));
}

#[test]
fn a_notice_without_phone_takes_it_from_the_user_table() {
    let (root, db) = setup("");
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    db.exec("INSERT INTO `user` (id, name, realname, phone) VALUES (7, 'client', 'Ivan', '+79990000077')");
    root.write(
        "var/notify/fromdb",
        &notice_file("Dear {user.realname}", None, 1),
    );
    db.add_task("fromdb", 0, "2026-01-01 00:00:00", false);
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(delivered(&root), ["+79990000077|Dear Ivan"]);
    assert!(db.tasks().is_empty());
}

#[test]
fn a_negative_error_count_neither_hangs_nor_stops_the_run() {
    let (root, db) = setup("QueueWorkers 2\n");
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    add_program(&root, "gwfail", FAILING_GATEWAY);
    db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    db.add_gateway("gwfail", 2, "", "on", "outgoing");
    let sent = queue(&root, &db, "sent", "odd", 1);
    let failing = queue(&root, &db, "failing", "odd", 2);
    queue(&root, &db, "plain", "plain", 1);
    db.exec(&format!(
        "UPDATE notifytask SET error_count = -1 WHERE id IN ({sent}, {failing})"
    ));
    let out = run_process_bounded(&root, &db, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut got = delivered(&root);
    got.sort();
    assert_eq!(got, ["+79990000001|odd", "+79990000001|plain"]);
    let left = db.tasks();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].id, failing);
    // -1 counts as no failure yet: this was the first, and it backs off.
    assert_eq!(left[0].error_count, 1);
    let info = left[0].err_info.as_deref().unwrap_or_default();
    assert!(
        info.contains("[attempt 1/10, transient, retry after"),
        "{info}"
    );
}

#[test]
fn err_info_fits_an_old_utf8mb3_column_and_an_unrecordable_failure_stops_nothing() {
    let (root, db) = setup("QueueWorkers 2\n");
    // Databases created years ago: three bytes a character at most, and shorter.
    db.exec("ALTER TABLE notifytask MODIFY err_info VARCHAR(160) CHARACTER SET utf8mb3 NULL");
    let reason = format!(
        "balance \u{1F4B8} is empty, пополните счёт {}",
        "\u{1F600}".repeat(200)
    );
    add_program(
        &root,
        "gwemoji",
        &FAILING_GATEWAY.replace("provider says: balance is empty", &reason),
    );
    add_program(&root, "gwfail", FAILING_GATEWAY);
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    db.add_gateway("gwemoji", 1, "", "on", "outgoing");
    db.add_gateway("gwfail", 2, "", "on", "outgoing");
    db.add_gateway("gwrecord", 3, "", "on", "outgoing");
    let emoji = queue(&root, &db, "emoji", "e", 1);
    let refused = queue(&root, &db, "refused", "r", 2);
    let good = queue(&root, &db, "good", "good", 3);
    // A failure that cannot be written at all: the server refuses the UPDATE of one row.
    db.exec(&format!(
        "CREATE TRIGGER refuse_one BEFORE UPDATE ON notifytask FOR EACH ROW \
         BEGIN IF NEW.id = {refused} THEN \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by a trigger'; END IF; END"
    ));

    let out = run_process_bounded(&root, &db, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(delivered(&root), ["+79990000001|good"]);
    assert!(db.task(good).is_none());

    let row = db.task(emoji).expect("the failed row stays");
    assert_eq!(row.error_count, 1);
    let info = row.err_info.unwrap_or_default();
    assert!(
        info.contains(": balance \u{FFFD} is empty, пополните счёт \u{FFFD}\u{FFFD}"),
        "{info}"
    );
    assert!(info.chars().count() <= 160, "{info}");
    assert!(info.contains("…"), "{info}");
    assert!(
        info.ends_with(" UTC]") && info.contains("[attempt 1/10, transient, retry after"),
        "{info}"
    );

    // Not recorded, so left as it was: it is tried again on the next run.
    let row = db
        .task(refused)
        .expect("the row that could not be recorded stays");
    assert_eq!((row.error_count, row.err_info), (0, None));
    let log = root.read("var/ntsms.log");
    assert!(log.contains("refused by a trigger"), "{log}");
}

#[test]
fn a_sent_row_whose_delete_is_refused_stays_queued_with_its_file() {
    let (root, db) = setup("QueueWorkers 1\n");
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    let kept = queue(&root, &db, "kept", "kept", 1);
    let good = queue(&root, &db, "good", "good", 1);
    // The delete and the commit go to the server together: the delete's error must
    // still be seen, and the commit must not run.
    db.refuse_delete(kept);

    let out = run_process_bounded(&root, &db, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(db.task(good).is_none());
    assert!(!root.path().join("var/notify/2026-01-01/good").exists());
    // Sent once, but its row could not leave the queue: it stays as it was, with its
    // file, and the sent journal names it.
    let row = db
        .task(kept)
        .expect("the row whose delete was refused stays");
    assert_eq!((row.error_count, row.err_info), (0, None));
    assert!(root.path().join("var/notify/2026-01-01/kept").exists());
    let log = root.read("var/ntsms.log");
    assert!(
        log.contains("could not be deleted")
            && log.contains("delete refused by a trigger")
            && log.contains("the sent journal keeps it from being sent again"),
        "{log}"
    );
    assert_eq!(delivered(&root).len(), 2);

    // The next run claims it again, and does not send it again.
    let out = run_process_bounded(&root, &db, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(delivered(&root).len(), 2, "{:?}", delivered(&root));
    assert!(db.task(kept).is_some());

    // Once the server lets it go, it leaves the queue unsent, with its file and the
    // journal that named it.
    db.exec("DROP TRIGGER refuse_delete");
    let out = run_process_bounded(&root, &db, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(delivered(&root).len(), 2, "{:?}", delivered(&root));
    assert!(db.task(kept).is_none());
    assert!(!root.path().join("var/notify/2026-01-01/kept").exists());
    let log = root.read("var/ntsms.log");
    assert!(log.contains("removed now, not sent again"), "{log}");
    let journals = std::fs::read_dir(root.path().join("var/mgrnotify/sent/ntsms"))
        .unwrap()
        .count();
    assert_eq!(journals, 0, "the settled journal is gone");
}

#[test]
fn a_claim_the_server_refuses_leaves_the_row_as_it_was_and_says_why() {
    let (root, db) = setup("QueueWorkers 1\n");
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    let refused = queue(&root, &db, "refused", "refused", 1);
    let good = queue(&root, &db, "good", "good", 1);
    // The queue seen through a view whose filename fails for one row: the claim's
    // SELECT, the statement after START TRANSACTION in the same round trip, fails
    // (the queue's paging reads no filename, so it lists the row).
    db.exec("RENAME TABLE notifytask TO notifytask_rows");
    db.exec(&format!(
        "CREATE FUNCTION checked_filename(row_id BIGINT, name VARCHAR(255)) \
         RETURNS VARCHAR(255) DETERMINISTIC BEGIN IF row_id = {refused} THEN \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'claim refused by the server'; \
         END IF; RETURN name; END"
    ));
    db.exec(
        "CREATE VIEW notifytask AS SELECT id, modulename, \
         checked_filename(id, filename) AS filename, priority, error_count, forcedonothing, \
         err_info, createdate FROM notifytask_rows",
    );

    let out = run_process_bounded(&root, &db, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(delivered(&root), ["+79990000001|good"]);
    assert!(db.task(good).is_none());
    let row = db.task(refused).expect("the row whose claim failed stays");
    assert_eq!((row.error_count, row.err_info), (0, None));
    let log = root.read("var/ntsms.log");
    assert!(
        log.contains(&format!("cannot claim notifytask row {refused}"))
            && log.contains("claim refused by the server"),
        "{log}"
    );
}

/// A gateway that answers and exits at once while a process it started keeps its stdout
/// open (and records its pid in var/lingering.pids).
fn lingering_gateway(reply: &str) -> String {
    format!(
        "#!/bin/sh\ncat >/dev/null\n{reply}\n(sleep 30 & echo $! >> var/lingering.pids)\nexit 0\n"
    )
}

#[test]
fn a_reply_is_read_to_its_end_and_the_gateways_children_are_killed() {
    let (root, db) = setup("QueueWorkers 3\nQueueGatewayTimeout 2s\n");
    add_program(
        &root,
        "gwrefuses",
        &lingering_gateway(
            r#"echo '<doc><error type="gateway" object="x"><msg>no such number</msg></error></doc>'"#,
        ),
    );
    add_program(&root, "gwsilent", &lingering_gateway(""));
    add_program(
        &root,
        "gwaccepts",
        &lingering_gateway("echo '<doc><id>m-1</id></doc>'"),
    );
    db.add_gateway("gwrefuses", 1, "", "on", "outgoing");
    db.add_gateway("gwsilent", 2, "", "on", "outgoing");
    db.add_gateway("gwaccepts", 3, "", "on", "outgoing");
    let refused = queue(&root, &db, "refused", "r", 1);
    let silent = queue(&root, &db, "silent", "s", 2);
    let accepted = queue(&root, &db, "accepted", "a", 3);

    let out = run_process_bounded(&root, &db, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let info = |id| {
        let row = db
            .task(id)
            .unwrap_or_else(|| panic!("row {id} was taken for sent"));
        assert_eq!(row.error_count, 1);
        row.err_info.unwrap_or_default()
    };
    let why = info(refused);
    assert!(why.contains("no such number"), "{why}");
    let why = info(silent);
    assert!(why.contains("without a reply"), "{why}");
    assert!(db.task(accepted).is_none(), "{:?}", db.tasks());
    assert!(root.read("var/ntsms.log").contains("provider id m-1"));
    // Killed on every path, success too.
    assert_eq!(root.read("var/lingering.pids").lines().count(), 3);
    assert_eq!(running_pids(&root, "var/lingering.pids"), Vec::<i32>::new());
}

/// A gateway that keeps its whole input in var/stdin.xml and accepts.
const CAPTURING_GATEWAY: &str = "#!/bin/sh\ncat > var/stdin.xml\necho '<doc/>'\n";

#[test]
fn only_allowed_user_columns_reach_the_gateway() {
    let (root, db) = setup("");
    add_program(&root, "gwcapture", CAPTURING_GATEWAY);
    db.add_gateway("gwcapture", 1, "", "on", "outgoing");
    db.exec("ALTER TABLE `user` ADD password VARCHAR(255) NULL, ADD totp VARCHAR(64) NULL");
    db.exec(
        "INSERT INTO `user` (id, account, name, realname, phone, language, password, totp) \
         VALUES (7, 42, 'client', 'Ivan', '+79990000077', 'ru', '$6$hash-of-secret', 'TOTPSEED')",
    );
    root.write("var/notify/a", &notice_file("a", None, 1));
    db.add_task("a", 0, "2026-01-01 00:00:00", false);
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    let input = root.read("var/stdin.xml");
    assert!(input.contains("<phone>+79990000077</phone>"), "{input}");
    assert!(input.contains("<realname>Ivan</realname>"), "{input}");
    assert!(input.contains("<language>ru</language>"), "{input}");
    for leak in [
        "hash-of-secret",
        "TOTPSEED",
        "<password>",
        "<totp>",
        "<account>",
    ] {
        assert!(!input.contains(leak), "{leak} reached the gateway: {input}");
    }

    // An operator adds a column of their own to the list.
    root.write(
        "etc/mgrnotify/mgrnotify.conf",
        "QueueUserFields account, nosuchcolumn\n",
    );
    root.write("var/notify/b", &notice_file("b", None, 1));
    db.add_task("b", 0, "2026-01-01 00:00:00", false);
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    let input = root.read("var/stdin.xml");
    assert!(input.contains("<account>42</account>"), "{input}");
    assert!(!input.contains("TOTPSEED"), "{input}");
    assert!(db.tasks().is_empty());
}
