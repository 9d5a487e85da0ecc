//! `mgrnotify queue show ID`: a row's notification as it would be sent, without
//! sending it or changing the row.

mod common;

use common::mariadb::{add_program, notice_file, TestDb, RECORDING_GATEWAY};
use common::mgr_root::{stderr, stdout, MgrRoot};

#[test]
fn show_renders_the_row_as_it_would_be_sent_and_changes_nothing() {
    let root = MgrRoot::new();
    let db = TestDb::create();
    root.write("etc/billmgr.conf.d/db.conf", &db.db_conf());
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    let first = db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    db.add_gateway("gwrecord", 2, "", "on", "outgoing");
    let second = db.add_gateway("gwother", 1, "", "on", "outgoing");
    root.write(
        "var/notify/s",
        &notice_file("Hello {$user.realname}", None, 1),
    );
    db.exec(
        "INSERT INTO user (id, name, realname, phone) VALUES (7, 'client', 'Ann', '+15550001')",
    );
    let id = db.add_task("s", 0, "2026-01-01 00:00:00", false);

    let out = root.run("sbin/mgrnotify", &["queue", "show", &id.to_string()], "");
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    assert!(text.contains("template: plain text"), "{text}");
    assert!(text.contains("phone: +15550001"), "{text}");
    assert!(text.contains("subject: Subj"), "{text}");
    assert!(
        text.contains(&format!(
            "gateways in failover order: {first} (gwrecord), {second} (gwother)"
        )),
        "{text}"
    );
    assert!(text.contains("    Hello"), "{text}");
    // A dry run: nothing went out, the row and its file are as they were.
    assert_eq!(root.read("var/delivered.log"), "");
    let row = db.task(id).unwrap();
    assert_eq!((row.error_count, row.err_info), (0, None));
    assert!(root.path().join("var/notify/s").exists());

    let out = root.run("sbin/mgrnotify", &["queue", "show", "999999"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no notifytask row 999999"),
        "{}",
        stderr(&out)
    );
}
