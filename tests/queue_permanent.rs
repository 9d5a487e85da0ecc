//! Permanent failures (retrying cannot help) are recorded once and wait for an
//! operator; transient ones back off. A script says which with `fail` or
//! `fail_permanent`. Each run's counts reach `mgrnotify stats`.

mod common;

use common::mariadb::{notice_file, run_process, TestDb};
use common::mgr_root::{stderr, stdout, MgrRoot};

/// A provider script that refuses a number ending in 0 for good and fails any other
/// for now.
const SCRIPT: &str = r#"fn metadata() { #{title: "T", notify_module: "ntsms"} }
fn outgoing(req) {
    if req.user.phone.ends_with("0") { fail_permanent("invalid number"); }
    fail("provider busy");
}"#;

#[test]
fn a_permanent_failure_is_recorded_once_and_waits_for_the_operator() {
    let root = MgrRoot::new();
    let db = TestDb::create();
    root.write("etc/billmgr.conf.d/db.conf", &db.db_conf());
    root.add_script("gwtest", SCRIPT);
    db.add_gateway("gwtest", 1, "", "on", "outgoing");
    let add = |name: &str, phone: Option<&str>| {
        root.write(&format!("var/notify/{name}"), &notice_file(name, phone, 1));
        db.add_task(name, 0, "2026-01-01 00:00:00", false)
    };
    let invalid = add("invalid", Some("+79990000000"));
    let busy = add("busy", Some("+79990000001"));
    let nophone = add("nophone", None);

    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    for (id, why) in [
        (invalid, "invalid number"),
        (nophone, "has no phone number"),
    ] {
        let row = db.task(id).unwrap();
        let info = row.err_info.unwrap();
        assert_eq!(row.error_count, 1, "{info}");
        assert!(info.contains(why), "{info}");
        assert!(
            info.contains("[attempt 1/10, permanent: not retried"),
            "{info}"
        );
    }
    let info = db.task(busy).unwrap().err_info.unwrap();
    assert!(info.contains("provider busy"), "{info}");
    assert!(
        info.contains("[attempt 1/10, transient, retry after 20"),
        "{info}"
    );

    // Time passes: the transient row is tried again, the permanent ones are not.
    db.exec(
        "UPDATE notifytask SET err_info = REPLACE(err_info, 'retry after 20', 'retry after 19')",
    );
    assert!(run_process(&root, &db).status.success());
    assert_eq!(db.task(busy).unwrap().error_count, 2);
    assert_eq!(db.task(invalid).unwrap().error_count, 1);
    assert_eq!(db.task(nophone).unwrap().error_count, 1);

    let out = root.run("sbin/mgrnotify", &["queue", "--json"], "");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kind_of = |id: u64| {
        value["failing"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["kind"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(kind_of(invalid), "permanent");
    assert_eq!(kind_of(busy), "transient");
    assert!(stdout(&root.run("sbin/mgrnotify", &["queue"], "")).contains("waits for an operator"));

    // The operator fixes the number and retries the row: it is sent.
    root.write(
        "var/notify/invalid",
        &notice_file("fixed", Some("+79990000002"), 1),
    );
    root.add_script("gwtest", &SCRIPT.replace("fail(\"provider busy\");", ""));
    let out = root.run(
        "sbin/mgrnotify",
        &["queue", "retry", &invalid.to_string()],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(run_process(&root, &db).status.success());
    assert!(db.task(invalid).is_none());

    // Every run counted for `mgrnotify stats`: two rows failed for good (the one
    // without a phone reached no gateway), two attempts will be retried, one sent.
    let out = root.run("sbin/mgrnotify", &["stats"], "");
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    for line in [
        r#"mgrnotify_sent_total{kind="ntsms",gateway="gwtest"} 1"#,
        r#"mgrnotify_failed_total{kind="ntsms",gateway="gwtest"} 1"#,
        r#"mgrnotify_failed_total{kind="ntsms",gateway=""} 1"#,
        r#"mgrnotify_retried_total{kind="ntsms",gateway="gwtest"} 2"#,
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}
