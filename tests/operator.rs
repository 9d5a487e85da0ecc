//! The operator's side of a real install: taking over BILLmanager's own modules and
//! giving them back byte for byte, `doctor`, finding the root from PATH, and commands
//! that must not make up a root or a log, or die on a closed pipe.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use common::mariadb::TestDb;
use common::mgr_root::{stderr, stdout, MgrRoot, BIN};

/// Every file and link under `dir` (but `skip`): relative path -> (kind, mode, bytes or
/// link target).
fn snapshot(dir: &Path, skip: &[&str]) -> BTreeMap<String, (String, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            if skip.iter().any(|s| rel.starts_with(s)) {
                continue;
            }
            let meta = e.path().symlink_metadata().unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(e.path()).unwrap();
                out.insert(
                    rel,
                    ("link".into(), 0, target.display().to_string().into_bytes()),
                );
            } else if meta.is_dir() {
                out.insert(rel, ("dir".into(), meta.permissions().mode(), Vec::new()));
                stack.push(e.path());
            } else {
                let bytes = std::fs::read(e.path()).unwrap();
                out.insert(rel, ("file".into(), meta.permissions().mode(), bytes));
            }
        }
    }
    out
}

fn install(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh"))
        .args(["--root", root.to_str().unwrap(), "--binary", BIN])
        .args(args)
        .env_remove("MGR_ROOT")
        .output()
        .expect("run install.sh")
}

/// A root as a real BILLmanager leaves it: its own ntsms, gwsmtp (a binary) and
/// gwpop3 (a link elsewhere), and a third party's gwicq.
fn billmanager_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for d in ["notify", "gate", "etc/xml", "var"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    std::fs::write(
        p.join("notify/ntsms"),
        "#!/bin/sh\necho billmanager ntsms\n",
    )
    .unwrap();
    std::fs::set_permissions(
        p.join("notify/ntsms"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(p.join("gate/gwsmtp"), binary).unwrap();
    std::fs::set_permissions(
        p.join("gate/gwsmtp"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    symlink("/usr/local/mgr5/libexec/gwpop3", p.join("gate/gwpop3")).unwrap();
    std::fs::write(p.join("gate/gwicq"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(p.join("gate/gwicq"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(p.join("etc/billmgr.conf"), "DBHost localhost\n").unwrap();
    dir
}

#[test]
fn take_over_and_uninstall_restore_billmanagers_modules_byte_for_byte() {
    let dir = billmanager_root();
    let root = dir.path();
    let before = snapshot(root, &[]);

    // A plain install leaves BILLmanager's modules alone and says so.
    let out = install(root, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ntsms: ") && stderr(&out).contains("take-over"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::read_link(root.join("notify/ntsms")).is_err());

    let out = install(root, &["--take-over", "ntsms,gwsmtp,gwpop3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for rel in [
        "notify/ntsms",
        "gate/gwsmtp",
        "gate/gwpop3",
        "notify/ntemail",
    ] {
        assert_eq!(
            std::fs::read_link(root.join(rel)).unwrap(),
            Path::new("../sbin/mgrnotify"),
            "{rel}"
        );
    }
    let out = Command::new(root.join("notify/ntsms"))
        .args(["--command", "features"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("<contact_type>phone</contact_type>"));

    let out = install(root, &["--uninstall"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The addon files of declared types stay (see install.sh); nothing else.
    let after = snapshot(root, &["var/", "etc/sql"]);
    let before: BTreeMap<_, _> = before
        .into_iter()
        .filter(|(k, _)| !k.starts_with("var/"))
        .collect();
    assert_eq!(before, after, "the root after --uninstall differs");
}

#[test]
fn uninstall_removes_the_folders_install_made() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("mgr5");
    let out = install(&root, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(root.join("gate/gwepochta").symlink_metadata().is_ok());
    let out = install(&root, &["--uninstall"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Only the user-table addon files of the built-in gateways' types stay, so
    // BILLmanager keeps the customers' addresses.
    let left: Vec<String> = snapshot(&root, &[]).into_keys().collect();
    assert_eq!(
        left,
        [
            "etc",
            "etc/sql",
            "etc/sql/billmgr.user.addon",
            "etc/sql/billmgr.user.addon/jabber",
            "etc/sql/billmgr.user.addon/telegram"
        ],
        "left after --uninstall"
    );
}

#[test]
fn take_over_refuses_unknown_names_and_give_back_restores() {
    let root = MgrRoot::new();
    std::fs::remove_file(root.path().join("notify/ntsms")).unwrap();
    std::fs::write(root.path().join("notify/ntsms"), "original").unwrap();
    let out = root.run("sbin/mgrnotify", &["take-over", "ntsms,../etc"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a role"), "{}", stderr(&out));
    assert_eq!(root.read("notify/ntsms"), "original", "nothing moved");

    let out = root.run("sbin/mgrnotify", &["take-over", "ntsms"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        root.read("etc/mgrnotify/taken-over/notify/ntsms"),
        "original"
    );
    let out = root.run("sbin/mgrnotify", &["give-back", "ntsms"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(root.read("notify/ntsms"), "original");
    assert!(!root.path().join("etc/mgrnotify/taken-over").exists());
}

#[test]
fn doctor_tells_whose_each_module_is_and_checks_the_database_and_gateway_rows() {
    let dir = billmanager_root();
    let root = dir.path();
    let out = install(root, &["--take-over", "ntsms"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A BILLmanager update puts its own ntsms back.
    std::fs::remove_file(root.join("notify/ntsms")).unwrap();
    std::fs::write(root.join("notify/ntsms"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        root.join("notify/ntsms"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();

    let db = TestDb::create();
    std::fs::create_dir_all(root.join("etc/billmgr.conf.d")).unwrap();
    std::fs::write(root.join("etc/billmgr.conf.d/db.conf"), db.db_conf()).unwrap();
    db.add_gateway("gwepochta", 1, "<doc/>", "on", "outgoing");
    db.add_gateway("gwmissing", 1, "<doc/>", "on", "outgoing");
    db.add_gateway("../../bin/sh", 1, "<doc/>", "on", "outgoing");
    db.add_gateway_for("ntemail", "gwimap", 1, "<doc/>", "On", "2");
    db.add_gateway_for("ntemail", "gwpop3", 1, "<doc/>", "off", "ingoing");

    let out = Command::new(root.join("sbin/mgrnotify"))
        .arg("doctor")
        .env_remove("MGR_ROOT")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle} in:\n{text}"))
            .to_owned()
    };
    assert!(line("notify/ntsms").contains("update put its own back"));
    assert!(line("gate/gwsmtp").contains("BILLmanager's"));
    assert!(line("gate/gwicq").contains("third party"));
    assert!(line("notify/ntemail").contains("mgrnotify's"));
    assert!(line("reachable").contains(&db.name));
    assert!(line(" gwepochta for").starts_with("  ok"), "{text}");
    assert!(
        line(" gwimap for").ends_with("active On, ingoing"),
        "{text}"
    );
    assert!(
        line(" gwpop3 for").contains("active off, not used"),
        "{text}"
    );
    assert!(line("gwmissing").contains("PROBLEM"));
    assert!(line("../../bin/sh").contains("PROBLEM"));
    assert!(!text.contains(&db.server.password));
}

#[test]
fn a_bare_mgrnotify_on_path_finds_its_root() {
    let root = MgrRoot::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        root.path().join("sbin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("mgrnotify")
        .arg("list")
        .env("PATH", &path)
        .env_remove("MGR_ROOT")
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("mgr root: {}\n", root.path().display())),
        "{}",
        stdout(&out)
    );
}

#[test]
fn no_command_makes_up_a_root_or_a_log() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("no-such-root");
    for args in [&["sync"][..], &["doctor"], &["take-over", "ntsms"]] {
        let out = Command::new(BIN)
            .args(args)
            .env("MGR_ROOT", &missing)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    }
    let out = Command::new(BIN)
        .args(["ntsms", "--command", "features"])
        .env("MGR_ROOT", &missing)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!missing.exists(), "a root was made");

    // An unknown role writes no log.
    let root = MgrRoot::new();
    symlink("../sbin/mgrnotify", root.path().join("notify/ntnope")).unwrap();
    let out = root.run("notify/ntnope", &["--command", "features"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(!root.path().join("var/ntnope.log").exists());
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    let root = MgrRoot::new();
    for args in [&["list"][..], &["--help"]] {
        let mut child = Command::new(root.path().join("sbin/mgrnotify"))
            .args(args)
            .env_remove("MGR_ROOT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    }
}

#[test]
fn each_kind_of_role_has_its_own_help() {
    let root = MgrRoot::new();
    let notify = stdout(&root.run("notify/ntsms", &["--help"], ""));
    assert!(
        notify.contains("process") && notify.contains("--gate"),
        "{notify}"
    );
    assert!(!notify.contains("formtune"), "{notify}");
    let gate = stdout(&root.run("gate/gwepochta", &["--help"], ""));
    assert!(
        gate.contains("formtune") && gate.contains("outgoing"),
        "{gate}"
    );
    assert!(
        !gate.contains("--gate") && !gate.contains("getmessage"),
        "{gate}"
    );
    let top = stdout(&root.run("sbin/mgrnotify", &["--help"], ""));
    for word in [
        "--params",
        "--subject",
        "take-over",
        "doctor",
        "notify/ntinternal",
    ] {
        assert!(top.contains(word), "{word} not in:\n{top}");
    }
}

#[test]
fn notification_roles_answer_every_failure_alike() {
    let root = MgrRoot::new();
    for (role, args) in [
        ("notify/ntsms", &["--command", "nonsense"][..]),
        ("notify/ntsms", &[]),
        ("notify/ntemail", &["--command", "getmessage"]),
    ] {
        let out = root.run(role, args, "");
        assert_eq!(out.status.code(), Some(1), "{role} {args:?}");
        assert!(stdout(&out).starts_with("<doc><error"), "{}", stdout(&out));
        assert!(!stderr(&out).is_empty());
    }
}

#[test]
fn queue_shows_what_waits_and_retry_clears_the_backoff() {
    let root = MgrRoot::new();
    let db = TestDb::create();
    root.write("etc/billmgr.conf.d/db.conf", &db.db_conf());
    db.add_gateway(
        "gwepochta",
        1,
        "<doc><login>shop</login><password>Qu3ue-Secret</password></doc>",
        "on",
        "outgoing",
    );
    let fresh = db.add_task("2026-11-30/1", 0, "2026-11-30 10:00:00", false);
    let later = db.add_task("2026-11-30/2", 0, "2026-11-30 09:00:00", false);
    let stuck = db.add_task("2026-11-30/3", 0, "2026-11-30 08:00:00", false);
    db.exec(&format!(
        "UPDATE notifytask SET error_count = 3, err_info = 'gateway gwepochta: 503 \
         [attempt 3/10, retry after 2999-01-01 00:00:00 UTC]' WHERE id = {later}"
    ));
    db.exec(&format!(
        "UPDATE notifytask SET error_count = 10, err_info = 'refused Qu3ue-Secret \
         [attempt 10/10, no more retries: set error_count to 0 to retry]' WHERE id = {stuck}"
    ));

    let out = root.run("sbin/mgrnotify", &["queue"], "");
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let ntsms = text.lines().find(|l| l.starts_with("ntsms")).unwrap();
    let numbers: Vec<&str> = ntsms.split_whitespace().collect();
    assert_eq!(
        &numbers[1..4],
        ["3", "1", "2"],
        "rows, ready, failing: {ntsms}"
    );
    assert!(ntsms.ends_with("2026-11-30 08:00:00"), "{ntsms}");
    assert!(text.contains("2999-01-01 00:00:00 UTC"), "{text}");
    assert!(text.contains("no more retries"), "{text}");
    assert!(!text.contains("Qu3ue-Secret"), "{text}");

    let out = root.run("sbin/mgrnotify", &["queue", "--json"], "");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["modules"][0]["ready"], 1);
    let failing = value["failing"].as_array().unwrap();
    assert_eq!(failing.len(), 2);
    assert_eq!(failing[0]["id"], stuck);
    assert_eq!(failing[1]["kind"], "transient");
    assert!(failing[0]["err_info"].as_str().unwrap().contains("***"));

    let out = root.run(
        "sbin/mgrnotify",
        &["queue", "retry", &later.to_string()],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(db.task(later).unwrap().error_count, 0);
    assert_eq!(db.task(stuck).unwrap().error_count, 10);
    let out = root.run("sbin/mgrnotify", &["queue", "retry", "--failed"], "");
    assert!(out.status.success());
    assert_eq!(db.task(stuck).unwrap().error_count, 0);
    assert_eq!(db.task(fresh).unwrap().error_count, 0);
    let out = root.run("sbin/mgrnotify", &["queue", "retry", "x1"], "");
    assert_eq!(out.status.code(), Some(1));
}
