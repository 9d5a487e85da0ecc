//! Where ntsms finds BILLmanager's database, and what happens when it cannot use it.

mod common;

use std::time::{Duration, Instant};

use common::mariadb::{
    add_program, add_slow_gateway, delivered, notice_file, spawn_process, wait_bounded, TestDb,
    RECORDING_GATEWAY, TEST_PASSWORD,
};
use common::mgr_root::{stderr, MgrRoot};
use common::tcp_proxy::TcpProxy;

fn process(root: &MgrRoot, env: &[(&str, &str)]) -> std::process::Output {
    root.run_env("notify/ntsms", &["--command", "process"], "", env)
}

fn one_row(root: &MgrRoot, db: &TestDb) -> u64 {
    add_program(root, "gwrecord", RECORDING_GATEWAY);
    db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    root.write("var/notify/n", &notice_file("hi", Some("+1"), 1));
    db.add_task("n", 0, "2026-01-01 00:00:00", false)
}

#[test]
fn settings_from_db_conf_with_billmgr_conf_filling_gaps() {
    let root = MgrRoot::new();
    let db = TestDb::create();
    one_row(&root, &db);
    let conf = db.db_conf();
    let (name_line, rest): (Vec<&str>, Vec<&str>) =
        conf.lines().partition(|l| l.starts_with("DBName"));
    root.write("etc/billmgr.conf.d/db.conf", &(rest.join("\n") + "\n"));
    root.write(
        "etc/billmgr.conf",
        &format!("DBHost 10.255.255.1\n{}\n", name_line[0]),
    );
    let out = process(&root, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(delivered(&root), ["+1|hi"]);
    assert!(db.tasks().is_empty());
}

#[test]
fn env_url_overrides_the_files() {
    let root = MgrRoot::new();
    let db = TestDb::create();
    one_row(&root, &db);
    root.write(
        "etc/billmgr.conf.d/db.conf",
        "DBHost 127.0.0.1\nDBPort 1\nDBName nope\n",
    );
    let out = process(&root, &[("MGRNOTIFY_DB_URL", &db.url())]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(delivered(&root), ["+1|hi"]);
}

#[test]
fn database_down_is_a_clear_error_and_nothing_changes() {
    let root = MgrRoot::new();
    let db = TestDb::create();
    let id = one_row(&root, &db);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!(
        "mysql://{}:{TEST_PASSWORD}@127.0.0.1:{port}/{}",
        db.server.user, db.name
    );
    let out = process(&root, &[("MGRNOTIFY_DB_URL", &url)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("ntsms: cannot connect to the database"),
        "{err}"
    );
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(
        !err.contains(TEST_PASSWORD) && !err.contains("panicked"),
        "{err}"
    );
    assert!(root
        .read("var/ntsms.log")
        .contains("cannot connect to the database"));
    assert_eq!(db.task(id).unwrap().error_count, 0);
    assert!(delivered(&root).is_empty());
}

#[test]
fn wrong_password_is_a_clear_error_without_the_password() {
    let root = MgrRoot::new();
    let db = TestDb::create();
    let id = one_row(&root, &db);
    let wrong = "Wr0ng-Secret-xyz";
    root.write(
        "etc/billmgr.conf.d/db.conf",
        &db.db_conf().replace(TEST_PASSWORD, wrong),
    );
    let out = process(&root, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("cannot connect to the database"), "{err}");
    assert!(err.contains("Access denied"), "{err}");
    let log = root.read("var/ntsms.log");
    assert!(!err.contains(wrong) && !log.contains(wrong), "{err}\n{log}");
    assert_eq!(db.task(id).unwrap().error_count, 0);
}

#[test]
fn missing_settings_and_foreign_schema_are_clear_errors() {
    let root = MgrRoot::new();
    let out = process(&root, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no database settings"),
        "{}",
        stderr(&out)
    );

    let db = TestDb::create();
    db.exec("ALTER TABLE notifytask DROP COLUMN forcedonothing");
    let out = process(&root, &[("MGRNOTIFY_DB_URL", &db.url())]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("table notifytask lacks the column(s) forcedonothing"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_hung_database_ends_the_run_within_its_timeouts_and_loses_nothing() {
    let root = MgrRoot::new();
    root.write(
        "etc/mgrnotify/mgrnotify.conf",
        "QueueWorkers 2\nQueueDbTimeout 2s\nQueueTimeBudget 3s\n",
    );
    let db = TestDb::create();
    // Slow enough that the database hangs while messages are in flight.
    add_slow_gateway(
        &root,
        &db,
        "echo >> var/started
sleep 1",
    );
    for n in 0..4 {
        root.write(
            &format!("var/notify/h{n}"),
            &notice_file("h", Some("+1"), 1),
        );
        db.add_task(&format!("h{n}"), 0, "2026-01-01 00:00:00", false);
    }
    let proxy = TcpProxy::start(&db.server.host, db.server.port);
    let url = format!(
        "mysql://{}:{TEST_PASSWORD}@127.0.0.1:{}/{}",
        db.server.user, proxy.port, db.name
    );
    let run = spawn_process(&root, &url);
    let started = Instant::now();
    while root.read("var/started").is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    proxy.freeze();
    // Budget 3 s, a message 1 s, then every statement gives up after 2 s.
    let out = wait_bounded(run, Duration::from_secs(20));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("the database did not answer in time"), "{err}");
    assert!(
        !err.contains(TEST_PASSWORD) && !err.contains("panicked"),
        "{err}"
    );
    // The server sees the run's connections go and rolls its transactions back.
    proxy.cut();
    let rows = db.tasks();
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|t| t.error_count == 0), "{rows:?}");
}
