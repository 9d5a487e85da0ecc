//! Notification files: only regular files under `var/notify` are read (after resolving
//! symlinks), without blocking and up to `QueueMaxFileSize`; a refused file is a
//! recorded failure and stays untouched.

mod common;

use std::os::unix::fs::symlink;
use std::time::Duration;

use common::mariadb::{
    add_program, delivered, notice_file, run_process_bounded, TestDb, RECORDING_GATEWAY,
};
use common::mgr_root::{stderr, MgrRoot};

#[test]
fn only_regular_files_under_var_notify_within_the_size_limit_are_read() {
    let root = MgrRoot::new();
    root.write("etc/mgrnotify/mgrnotify.conf", "QueueMaxFileSize 64K\n");
    let db = TestDb::create();
    add_program(&root, "gwrecord", RECORDING_GATEWAY);
    db.add_gateway("gwrecord", 1, "", "on", "outgoing");
    let notice = |text: &str| notice_file(text, Some("+1"), 1);
    let path = |rel: &str| root.path().join(rel).display().to_string();

    let outside = root.write("etc/x", &notice("dotdot"));
    let absolute = root.write("elsewhere/abs", &notice("absolute"));
    let target = root.write("elsewhere/target", &notice("symlinked"));
    symlink(&target, root.path().join("var/notify/link")).unwrap();
    let fifo = root.path().join("var/notify/fifo");
    let c_fifo = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    // Valid notices of exactly `len` bytes.
    let padded = |len: usize| {
        let mut text = notice("big");
        text.push_str("<!--");
        text.push_str(&"p".repeat(len - text.len() - 3));
        text.push_str("-->");
        assert_eq!(text.len(), len);
        text
    };
    let big = padded(64 * 1024 + 1);
    let big_file = root.write("var/notify/big", &big);
    let fits = root.write("var/notify/fits", &padded(64 * 1024));
    let refusals = [
        ("/dev/zero".to_owned(), "outside"),
        ("../../../../../../../../dev/zero".to_owned(), "outside"),
        ("fifo".to_owned(), "not a regular file"),
        ("../../etc/x".to_owned(), "outside"),
        (absolute.display().to_string(), "outside"),
        ("link".to_owned(), "outside"),
        ("big".to_owned(), "larger than QueueMaxFileSize"),
        (path("var/notify"), "not a regular file"),
    ];
    let mut rows = Vec::new();
    for (filename, why) in &refusals {
        rows.push((db.add_task(filename, 0, "2026-01-01 00:00:00", false), *why));
    }
    root.write("var/notify/good", &notice("good"));
    db.add_task("good", 0, "2026-01-01 00:00:00", false);
    db.add_task(&fits.display().to_string(), 0, "2026-01-01 00:00:00", false);

    let out = run_process_bounded(&root, &db, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut sent = delivered(&root);
    sent.sort();
    assert_eq!(sent, ["+1|big", "+1|good"]);
    assert!(!root.path().join("var/notify/good").exists());
    assert!(!fits.exists());
    for (id, why) in rows {
        let row = db
            .task(id)
            .unwrap_or_else(|| panic!("the row for '{why}' was lost"));
        assert_eq!(row.error_count, 1, "{why}");
        let info = row.err_info.unwrap_or_default();
        assert!(info.contains(why), "expected '{why}' in err_info: {info}");
        assert!(info.contains("refused"), "{info}");
    }
    // Nothing refused was touched.
    for (file, text) in [
        (&outside, notice("dotdot")),
        (&absolute, notice("absolute")),
        (&target, notice("symlinked")),
        (&big_file, big.clone()),
    ] {
        assert_eq!(std::fs::read_to_string(file).unwrap(), text);
    }
    assert!(root
        .path()
        .join("var/notify/link")
        .symlink_metadata()
        .is_ok());
    assert!(fifo.exists());
}
