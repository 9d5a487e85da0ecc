//! The ticket hand-off that incoming mail and chat share: the sender found by a
//! contact column (case-insensitively) in a real MariaDB, a reply only into the
//! sender's own ticket, a new ticket otherwise, and mgrctl (a stand-in that records its
//! argv) failing by exit status or by an `<error` in its output.

mod common;

use std::time::Duration;

use common::mariadb::TestDb;
use common::mgrctl::{Answer, Mgrctl};
use mgrnotify::tickets::{Posted, Sender, TicketError, Tickets};

fn setup() -> (TestDb, tempfile::TempDir, Mgrctl, Tickets) {
    let db = TestDb::create();
    db.exec(
        "INSERT INTO user (id, account, name, email, phone) VALUES \
         (1, 10, 'ivan', 'Ivan@Example.COM', '+7999'), (2, 20, 'olga', 'olga@example.com', NULL), \
         (3, 30, 'twin1', 'same@example.com', NULL), (4, 31, 'twin2', 'SAME@example.com', NULL)",
    );
    db.exec("INSERT INTO ticket (id, account_client, name) VALUES (55, 10, 'ivan''s'), (66, 20, 'olga''s')");
    let dir = tempfile::tempdir().unwrap();
    let mgrctl = Mgrctl::install(dir.path());
    let tickets = Tickets::new(dir.path().join("sbin/mgrctl"), Duration::from_secs(10));
    (db, dir, mgrctl, tickets)
}

fn known(s: Sender) -> mgrnotify::tickets::Customer {
    match s {
        Sender::Known(c) => c,
        other => panic!("not a known sender: {other:?}"),
    }
}

#[test]
fn senders_are_found_case_insensitively_and_never_guessed() {
    let (db, _dir, _mgrctl, tickets) = setup();
    let mut conn = db.conn();
    let ivan = known(
        tickets
            .sender(&mut conn, "email", " ivan@example.com")
            .unwrap(),
    );
    assert_eq!((ivan.name.as_str(), ivan.account.as_str()), ("ivan", "10"));
    assert_eq!(
        tickets
            .sender(&mut conn, "email", "nobody@example.com")
            .unwrap(),
        Sender::Unknown
    );
    assert_eq!(
        tickets.sender(&mut conn, "email", "").unwrap(),
        Sender::Unknown
    );
    assert_eq!(
        tickets
            .sender(&mut conn, "email", "same@example.com")
            .unwrap(),
        Sender::Ambiguous
    );
    assert_eq!(
        known(tickets.sender(&mut conn, "phone", "+7999").unwrap()).id,
        "1"
    );
    assert!(tickets
        .sender(&mut conn, "email`; DROP TABLE user; --", "x")
        .is_err());
}

#[test]
fn replies_go_only_into_own_tickets() {
    let (db, _dir, mgrctl, tickets) = setup();
    let mut conn = db.conn();
    let ivan = known(
        tickets
            .sender(&mut conn, "email", "ivan@example.com")
            .unwrap(),
    );
    let text = "Спасибо!\r\nСервер снова работает.";
    assert_eq!(
        tickets
            .post(&mut conn, &ivan, Some("55"), "Re: [#55] down", text)
            .unwrap(),
        Posted::Reply("55".into())
    );
    // Olga's ticket and a missing one: a new ticket, never a reply into them.
    for other in ["66", "999"] {
        assert_eq!(
            tickets
                .post(&mut conn, &ivan, Some(other), "Re: [#x]", "hi")
                .unwrap(),
            Posted::NewTicket
        );
    }
    assert_eq!(
        tickets.post(&mut conn, &ivan, None, "  ", "new").unwrap(),
        Posted::NewTicket
    );
    let calls = mgrctl.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(
        calls[0],
        [
            "-m",
            "billmgr",
            "-o",
            "xml",
            "clientticket.edit",
            "elid=55",
            "su=ivan",
            &format!("message={text}"),
            "sok=ok"
        ]
    );
    for call in &calls[1..] {
        assert_eq!(Mgrctl::arg(call, "elid"), None, "{call:?}");
        assert_eq!(Mgrctl::arg(call, "su"), Some("ivan"));
    }
    assert_eq!(Mgrctl::arg(&calls[1], "subject"), Some("Re: [#x]"));
    assert_eq!(Mgrctl::arg(&calls[3], "subject"), Some("(no subject)"));
}

#[test]
fn mgrctl_failures_are_errors_with_its_answer() {
    let (db, dir, mgrctl, tickets) = setup();
    let mut conn = db.conn();
    let olga = known(
        tickets
            .sender(&mut conn, "email", "olga@example.com")
            .unwrap(),
    );
    mgrctl.answer(Answer::ErrorXml);
    let e = tickets.post(&mut conn, &olga, None, "s", "t").unwrap_err();
    assert!(
        matches!(&e, TicketError::Mgrctl(m) if m.contains("Access denied")),
        "{e}"
    );
    mgrctl.answer(Answer::Fails);
    let e = tickets
        .post(&mut conn, &olga, Some("66"), "s", "t")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("exit status: 3") && e.contains("cannot connect to core"),
        "{e}"
    );
    mgrctl.answer(Answer::Ok);
    assert!(tickets.post(&mut conn, &olga, Some("66"), "s", "t").is_ok());
    let missing = Tickets::new(dir.path().join("sbin/nothing"), Duration::from_secs(5));
    let e = missing
        .post(&mut conn, &olga, None, "s", "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot run"), "{e}");
    // A hanging mgrctl is killed at its time limit.
    std::fs::write(dir.path().join("sbin/slow"), "#!/bin/sh\nsleep 30\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.path().join("sbin/slow"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let slow = Tickets::new(dir.path().join("sbin/slow"), Duration::from_secs(1));
    let started = std::time::Instant::now();
    let e = slow
        .post(&mut conn, &olga, None, "s", "t")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("within 1 s") && started.elapsed() < Duration::from_secs(10),
        "{e}"
    );
}
