//! `notify/ntinternal --command process` against a real MariaDB: each queued
//! notification lands in mgrnotify's own table once (created on first use, named in
//! mgrnotify.conf), together with its row's removal from the queue — a block that
//! cannot be rendered or a failed insert stores nothing of the row and keeps it for
//! its retry, a row whose delete is refused stores nothing, three runs at once store
//! each row once.

mod common;

use std::process::Child;
use std::time::Duration;

use common::mariadb::{spawn_role_process, wait_bounded, TestDb};
use common::mgr_root::{error_of, stderr, stdout, MgrRoot};
use mysql::prelude::Queryable;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A notify block; its notice names an attachment that does not exist, which the client
/// area does not carry and so does not stop it.
fn block(tmpl: &str, subject: &str, user: u32, project: &str) -> String {
    let notice_xml = format!(
        "<doc><project><id>{project}</id></project><subject>{}</subject>\
         <attachments><attachment>var/docs/not-for-the-client-area.pdf</attachment></attachments>\
         </doc>",
        escape(subject)
    );
    format!(
        "<notify><tmpl>{}</tmpl><notice_xml>{}</notice_xml>\
         <user><id>{user}</id><name>u{user}</name><realname>Иван</realname></user></notify>",
        escape(tmpl),
        escape(&notice_xml)
    )
}

fn queue(root: &MgrRoot, db: &TestDb, name: &str, blocks: &[String]) -> u64 {
    root.write(
        &format!("var/notify/{name}"),
        &format!("<doc>{}</doc>", blocks.concat()),
    );
    db.add_task_for("ntinternal", name, 0, "2026-01-01 00:00:00", false)
}

fn process(root: &MgrRoot, db: &TestDb) -> std::process::Output {
    let out = wait_bounded(
        spawn_role_process(root, &db.url(), "ntinternal"),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

type Stored = (u64, Option<u64>, String, String, Option<String>);

fn stored(db: &TestDb, table: &str) -> Vec<Stored> {
    db.conn()
        .query(format!(
            "SELECT user_id, project_id, subject, text, html FROM `{table}` ORDER BY user_id, id"
        ))
        .expect("read the internal table")
}

#[test]
fn features_need_no_contact_and_a_bad_table_name_is_a_clear_error() {
    let root = MgrRoot::new();
    let out = root.run("notify/ntinternal", &["--command", "features"], "");
    assert_eq!(
        stdout(&out).trim(),
        "<doc><features><feature name=\"html\"/></features></doc>"
    );
    root.write(
        "etc/mgrnotify/mgrnotify.conf",
        "InternalTable x`; DROP TABLE user\n",
    );
    let out = root.run("notify/ntinternal", &["--command", "process"], "");
    assert!(!out.status.success());
    let (_, _, msg) = error_of(&out);
    assert!(
        msg.contains("InternalTable") && msg.contains("not a table name"),
        "{msg}"
    );
}

#[test]
fn each_row_is_stored_once_with_its_text_and_html() {
    let root = MgrRoot::new();
    let db = TestDb::create();
    let html = "<p>Счёт <b>оплачен</b>, {user.realname}.</p><p><a href=\"https://my.test/\">Кабинет</a></p>";
    let plain = queue(
        &root,
        &db,
        "a",
        &[block("Hello {user.realname}", "Привет", 7, "1")],
    );
    let rich = queue(
        &root,
        &db,
        "b",
        &[
            block(html, "Оплата", 8, "2"),
            block("second block", "Two", 8, ""),
        ],
    );
    // Its second block cannot be rendered: its first is not stored either.
    let broken = queue(
        &root,
        &db,
        "c",
        &[
            block("first", "S", 9, "1"),
            block("<%= nope( %>", "S", 9, "1"),
        ],
    );
    process(&root, &db);
    let left = db.tasks();
    assert_eq!(
        left.len(),
        1,
        "{left:?} {}",
        root.read("var/ntinternal.log")
    );
    assert_eq!(left[0].id, broken);
    let info = left[0].err_info.clone().unwrap_or_default();
    assert!(
        info.contains("notify block 2 of 2") && info.contains("permanent"),
        "{info}"
    );
    assert!(!root.path().join("var/notify/a").exists());
    let rows = stored(&db, "mgrnotify_internal");
    assert_eq!(
        rows,
        [
            (7, Some(1), "Привет".into(), "Hello Иван".into(), None),
            (
                8,
                Some(2),
                "Оплата".into(),
                "Счёт оплачен, Иван.\n\nКабинет (https://my.test/)".into(),
                Some(html.replace("{user.realname}", "Иван")),
            ),
            (8, None, "Two".into(), "second block".into(), None),
        ],
        "rows {plain} and {rich}"
    );
    let dated: u64 = db
        .conn()
        .query_first(
            "SELECT COUNT(*) FROM mgrnotify_internal \
             WHERE createdate > NOW() - INTERVAL 1 HOUR",
        )
        .unwrap()
        .unwrap();
    assert_eq!(dated, 3);
    // A second run finds nothing to do and stores nothing again.
    process(&root, &db);
    assert_eq!(stored(&db, "mgrnotify_internal").len(), 3);
}

#[test]
fn a_failure_stores_nothing_and_the_row_waits_for_its_retry() {
    let root = MgrRoot::new();
    root.write(
        "etc/mgrnotify/mgrnotify.conf",
        "InternalTable client_notes\nQueueRetryBase 3s\n",
    );
    let db = TestDb::create();
    // The operator's table lacks a column: every insert fails until it is fixed.
    db.exec(
        "CREATE TABLE client_notes (id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id BIGINT, \
         project_id BIGINT, subject TEXT, text TEXT, createdate DATETIME)",
    );
    let good = queue(&root, &db, "g", &[block("fine", "S", 7, "1")]);
    process(&root, &db);
    let row = db.task(good).expect("the row stays queued");
    let info = row.err_info.unwrap_or_default();
    assert!(
        info.contains("cannot store the message in client_notes") && info.contains("transient"),
        "{info}"
    );
    let count: u64 = db
        .conn()
        .query_first("SELECT COUNT(*) FROM client_notes")
        .unwrap()
        .unwrap();
    assert_eq!(count, 0);

    db.exec("ALTER TABLE client_notes ADD COLUMN html TEXT NULL");
    std::thread::sleep(Duration::from_millis(3100));
    process(&root, &db);
    assert!(db.tasks().is_empty());
    assert_eq!(
        stored(&db, "client_notes"),
        [(7, Some(1), "S".into(), "fine".into(), None)]
    );
}

#[test]
fn a_row_whose_delete_is_refused_stores_nothing_and_holds_up_no_other() {
    let root = MgrRoot::new();
    let db = TestDb::create();
    let kept = queue(&root, &db, "k", &[block("kept", "S", 7, "1")]);
    queue(&root, &db, "g", &[block("good", "S", 8, "1")]);
    db.refuse_delete(kept);
    process(&root, &db);
    // The message of the row that stays queued is not kept: it would be stored twice.
    assert_eq!(
        stored(&db, "mgrnotify_internal"),
        [(8, Some(1), "S".into(), "good".into(), None)]
    );
    let row = db.task(kept).expect("the row stays queued");
    assert_eq!((row.error_count, row.err_info), (0, None));
    assert!(root
        .read("var/ntinternal.log")
        .contains("delete refused by a trigger"));
}

#[test]
fn three_runs_at_once_store_each_row_exactly_once() {
    let root = MgrRoot::new();
    root.write(
        "etc/mgrnotify/mgrnotify.conf",
        "QueueWorkers 4\nQueueBatchSize 7\n",
    );
    let db = TestDb::create();
    let rows = 120;
    for n in 0..rows {
        queue(
            &root,
            &db,
            &format!("r{n}"),
            &[block(&format!("row {n}"), "S", 7, "1")],
        );
    }
    let runs: Vec<Child> = (0..3)
        .map(|_| spawn_role_process(&root, &db.url(), "ntinternal"))
        .collect();
    for run in runs {
        let out = wait_bounded(run, Duration::from_secs(60));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(db.tasks().is_empty());
    let mut texts: Vec<String> = stored(&db, "mgrnotify_internal")
        .into_iter()
        .map(|r| r.3)
        .collect();
    assert_eq!(texts.len(), rows, "one stored message a row");
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), rows, "none stored twice");
}

#[test]
fn sigkill_mid_run_stores_nothing_twice_and_loses_nothing() {
    let root = MgrRoot::new();
    root.write("etc/mgrnotify/mgrnotify.conf", "QueueWorkers 2\n");
    let db = TestDb::create();
    let rows = 600;
    let mut values = Vec::with_capacity(rows);
    for n in 0..rows {
        root.write(
            &format!("var/notify/k{n}"),
            &format!("<doc>{}</doc>", block(&format!("row {n}"), "S", 7, "1")),
        );
        values.push(format!("('ntinternal', 'k{n}', 0, '2026-01-01 00:00:00')"));
    }
    db.exec(&format!(
        "INSERT INTO notifytask (modulename, filename, priority, createdate) VALUES {}",
        values.join(",")
    ));
    let count = || -> usize {
        db.conn()
            .query_first("SELECT COUNT(*) FROM mgrnotify_internal")
            .ok()
            .flatten()
            .unwrap_or(0)
    };
    let mut run = spawn_role_process(&root, &db.url(), "ntinternal");
    let started = std::time::Instant::now();
    while count() < 30 {
        assert!(started.elapsed() < Duration::from_secs(30), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    run.kill().unwrap(); // SIGKILL
    run.wait().unwrap();
    let left = db.tasks().len();
    assert!(left > 0, "the kill came too late to test anything");
    // Stored and still queued add up exactly: no row is in both, none in neither.
    assert_eq!(count() + left, rows);

    process(&root, &db);
    assert!(db.tasks().is_empty());
    let mut texts: Vec<String> = stored(&db, "mgrnotify_internal")
        .into_iter()
        .map(|r| r.3)
        .collect();
    texts.sort();
    let mut expected: Vec<String> = (0..rows).map(|n| format!("row {n}")).collect();
    expected.sort();
    assert_eq!(texts, expected, "each row stored exactly once");
}
