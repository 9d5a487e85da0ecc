//! Hostile XML in the queue: a gateway reply or a notification file nested 20 000 deep used
//! to abort `ntsms --command process` (a stack overflow in roxmltree), so every run died on
//! the same row and resent the in-flight rows of other notices. Now such a row fails with a
//! clear reason and the run goes on.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::mariadb::{
    add_program, delivered, notice_file, run_process, TestDb, RECORDING_GATEWAY,
};
use common::mgr_root::{stderr, MgrRoot};

/// A third-party gateway whose reply is nested 20 000 elements deep.
const DEEP_REPLY_GATEWAY: &str = r#"#!/bin/sh
cat >/dev/null
awk 'BEGIN { printf "<doc>"; for (i = 0; i < 20000; i++) printf "<a>"; for (i = 0; i < 20000; i++) printf "</a>"; print "</doc>" }'
"#;

#[test]
fn rows_with_deep_xml_fail_and_the_run_goes_on() {
    let root = MgrRoot::new();
    root.write("etc/mgrnotify/mgrnotify.conf", "QueueWorkers 2\n");
    let db = TestDb::create();
    add_program(&root, "gwdeep", DEEP_REPLY_GATEWAY);
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    db.add_gateway("gwdeep", 1, "", "on", "outgoing");
    db.add_gateway("gwrecord", 2, "", "on", "outgoing");

    root.write("var/notify/d/reply", &notice_file("to-deep", Some("+1"), 1));
    let deep_reply = db.add_task("d/reply", 9, "2026-01-01 00:00:00", false);
    let deep = "<a>".repeat(20_000) + "</a>".repeat(20_000).as_str();
    root.write(
        "var/notify/d/file",
        &format!("<doc><notify><tmpl>x</tmpl><user>{deep}</user></notify></doc>"),
    );
    let deep_file = db.add_task("d/file", 9, "2026-01-01 00:00:00", false);
    root.write("var/notify/d/good", &notice_file("fine", Some("+2"), 2));
    db.add_task("d/good", 0, "2026-01-01 00:00:00", false);

    let out = run_process(&root, &db);
    assert_eq!(out.status.signal(), None, "{}", stderr(&out));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(delivered(&root), ["+2|fine"]);
    for id in [deep_reply, deep_file] {
        let row = db.task(id).expect("the failed row stays");
        assert_eq!(row.error_count, 1);
        let info = row.err_info.unwrap_or_default();
        assert!(info.contains("limit of 256 levels"), "{info}");
    }
    assert_eq!(db.tasks().len(), 2);
}
