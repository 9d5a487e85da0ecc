//! ntjabber and gwjabber against a real XMPP server: a private Prosody with a bot, a
//! customer and a stranger, TLS with a test CA; the customer's client (the same XMPP
//! library) receives the queued notifications and talks to the bot's receiver, whose
//! support posts go to a stand-in mgrctl that records them.

mod common;

use std::time::{Duration, Instant};

use common::mariadb::{notice_file, TestDb};
use common::mgr_root::{stderr, stdout, MgrRoot};
use common::mgrctl::Mgrctl;
use common::prosody::{Client, Prosody};

const BOT_PASSWORD: &str = "bot-Secret-4711";
const BOT: &str = "bot@localhost";

struct World {
    prosody: Prosody,
    root: MgrRoot,
    db: TestDb,
    mgrctl: Mgrctl,
}

impl Drop for World {
    /// A receiver left by a failed test is stopped, not left reconnecting forever.
    fn drop(&mut self) {
        if let Some(pid) = receiver_pid(self) {
            // SAFETY: a plain kill of the receiver this test started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

/// The bot's gateway parameters.
fn xmlparams(prosody: &Prosody, password: &str, ca_file: bool) -> String {
    let ca = if ca_file {
        format!("<ca_file>{}</ca_file>", prosody.ca_file().display())
    } else {
        String::new()
    };
    format!(
        "<doc><jabber>{BOT}</jabber><password>{password}</password><host>127.0.0.1</host>\
         <port>{}</port>{ca}<ticket_format>#id</ticket_format></doc>",
        prosody.port
    )
}

fn world() -> World {
    let prosody = Prosody::start(&[
        ("bot", BOT_PASSWORD),
        ("alice", "alice-pw"),
        ("mallory", "mallory-pw"),
    ]);
    let root = MgrRoot::new();
    let out = root.run("sbin/mgrnotify", &["sync"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(root.path().join("notify/ntjabber").exists());
    assert!(root
        .read("etc/xml/billmgr_mod_ntjabber.xml")
        .contains("check=\"email\""));
    // The bot's JID is checked on the gateway form too, as the seed's example does.
    let form = root.read("etc/xml/billmgr_mod_gwjabber.xml");
    let form = roxmltree::Document::parse(&form).expect("gwjabber's plugin XML");
    let jid = form
        .descendants()
        .find(|n| n.has_tag_name("input") && n.attribute("name") == Some("jabber"));
    assert_eq!(jid.and_then(|n| n.attribute("check")), Some("email"));
    let db = TestDb::create();
    db.exec("ALTER TABLE `user` ADD jabber VARCHAR(128) NULL");
    db.exec(
        "INSERT INTO `user` (id, account, name, jabber) VALUES (7, 70, 'alice', 'Alice@localhost')",
    );
    db.exec("INSERT INTO ticket (id, account_client, name) VALUES (123, 70, 'mine'), (999, 80, 'not mine')");
    let params = xmlparams(&prosody, BOT_PASSWORD, true);
    for kind in ["outgoing", "ingoing"] {
        db.exec(&format!(
            "INSERT INTO gateway (name, gateway_module, notify_module, gateway_type, active, project, xmlparams) \
             VALUES ('bot {kind}', 'gwjabber', 'ntjabber', '{kind}', 'on', 1, '{params}')"
        ));
    }
    // BILLmanager's own DB settings, which the receiver (a process of its own) reads too.
    root.write("etc/billmgr.conf.d/db.conf", &db.db_conf());
    let mgrctl = Mgrctl::install(root.path());
    World {
        prosody,
        root,
        db,
        mgrctl,
    }
}

fn ntjabber(w: &World, args: &[&str]) -> std::process::Output {
    w.root.run("notify/ntjabber", args, "")
}

/// Every file under `var/` that holds `secret`.
fn var_files_holding(w: &World, secret: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![w.root.path().join("var")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|b| String::from_utf8_lossy(&b).contains(secret))
            {
                found.push(path);
            }
        }
    }
    found
}

/// The pid in the bot's receiver lock while a process holds it.
fn receiver_pid(w: &World) -> Option<i32> {
    let text = w
        .root
        .read("var/mgrnotify/jabber/bot@localhost.receiver.lock");
    let pid: i32 = text.trim().parse().ok()?;
    // SAFETY: signal 0 only asks whether the process exists.
    (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn receiver_log(w: &World) -> String {
    w.root.read("var/gwjabber.log")
}

#[test]
fn queued_ntjabber_rows_reach_the_customer() {
    let w = world();
    w.root
        .write("etc/mgrnotify/mgrnotify.conf", "QueueWorkers 2\n");
    let mut alice = Client::connect(&w.prosody, "alice", "alice-pw");
    let texts: Vec<String> = (1..=6).map(|n| format!("Your server {n} is up")).collect();
    for (n, text) in texts.iter().enumerate() {
        w.root
            .write(&format!("var/notify/j{n}"), &notice_file(text, None, 1));
        w.db.exec(&format!(
            "INSERT INTO notifytask (modulename, filename, createdate) VALUES ('ntjabber', 'j{n}', '2026-01-01 00:00:00')"
        ));
    }
    let out = ntjabber(&w, &["--command", "process"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(w.db.tasks().is_empty(), "{:?}", w.db.tasks());
    // The subject heads the text (chat clients rarely show a chat's <subject>) and is
    // the message's <subject> too, as the seed's example sends it.
    let mut got = alice.receive_with_subjects(texts.len(), Duration::from_secs(10));
    got.sort();
    let mut want: Vec<_> = texts
        .iter()
        .map(|t| {
            (
                BOT.to_owned(),
                format!("Subj\n\n{t}"),
                Some("Subj".to_owned()),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    // One session a worker, reused: a login check and a login each, not one a message.
    let logins = w
        .prosody
        .log()
        .matches("Authenticated as bot@localhost")
        .count();
    assert!((2..=4).contains(&logins), "{logins} logins of the bot");
    assert!(!w.root.read("var/ntjabber.log").contains(BOT_PASSWORD));
}

#[test]
fn check_connection_logs_in_and_says_why_it_cannot() {
    let w = world();
    let check = |params: String| {
        w.root
            .run("gate/gwjabber", &["--command", "check_connection"], &params)
    };
    let out = check(xmlparams(&w.prosody, BOT_PASSWORD, true));
    assert!(out.status.success(), "{}", stdout(&out));

    let out = check(xmlparams(&w.prosody, "not-the-password-1", true));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("<error"), "{text}");
    assert!(
        text.contains("refused the login of bot@localhost"),
        "{text}"
    );
    assert!(!text.contains("not-the-password-1"), "{text}");
    assert!(!w
        .root
        .read("var/gwjabber.log")
        .contains("not-the-password-1"));

    // The ticket format is offered as a list, as (and in the order) the seed's example does.
    let out = w.root.run(
        "gate/gwjabber",
        &["--command", "formtune"],
        "<doc><jabber/><ticket_format/></doc>",
    );
    assert!(out.status.success(), "{}", stdout(&out));
    let form = stdout(&out);
    let doc = roxmltree::Document::parse(&form).expect("the tuned form");
    let values: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("slist") && n.attribute("name") == Some("ticket_format"))
        .flat_map(|n| n.children().filter_map(|v| v.text()))
        .collect();
    assert_eq!(values, ["@id", "#id"], "{form}");

    // A domain DNS knows no server of, said plainly with what to do.
    let out =
        check("<doc><jabber>bot@nonexistent.invalid</jabber><password>pw</password></doc>".into());
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("cannot find the XMPP server of nonexistent.invalid")
            && text.contains("set host"),
        "{text}"
    );

    // Without the test CA the server's certificate is not trusted, and it says so.
    let out = check(xmlparams(&w.prosody, BOT_PASSWORD, false));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("ca_file"), "{}", stdout(&out));
}

#[test]
fn the_receiver_answers_every_message_posts_once_and_stops_on_sigterm() {
    let w = world();
    let started = Instant::now();
    let out = ntjabber(&w, &["--command", "getmessage", "--gate", "all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "getmessage waited"
    );
    wait_for("the receiver online", Duration::from_secs(20), || {
        receiver_log(&w).contains("receiver of bot@localhost: online")
    });
    let pid = receiver_pid(&w).expect("a receiver holds the lock");
    // The password reaches neither the receiver's argv nor its environment.
    for part in ["cmdline", "environ"] {
        let bytes = std::fs::read(format!("/proc/{pid}/{part}")).expect("the receiver's /proc");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(BOT_PASSWORD),
            "{part}"
        );
    }

    // A second getmessage changes nothing: no second receiver, no second login.
    let out = ntjabber(&w, &["--command", "getmessage", "--gate", "all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(receiver_pid(&w), Some(pid));
    assert!(
        w.root
            .read("var/gwjabber.log")
            .matches(": starting")
            .count()
            == 1
    );

    let mut alice = Client::connect(&w.prosody, "alice", "alice-pw");
    alice.send(BOT, "#123 thanks, it works");
    let reply = alice.receive(1, Duration::from_secs(10));
    assert_eq!(
        reply,
        [(
            BOT.to_owned(),
            "Your message was added to ticket #123.".to_owned()
        )]
    );
    let calls = w.mgrctl.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(Mgrctl::arg(&calls[0], "elid"), Some("123"));
    assert_eq!(Mgrctl::arg(&calls[0], "su"), Some("alice"));
    assert_eq!(Mgrctl::arg(&calls[0], "message"), Some("thanks, it works"));
    assert_eq!(Mgrctl::arg(&calls[0], "sok"), Some("ok"));
    assert!(calls[0].iter().any(|a| a == "clientticket.edit"));

    alice.send(BOT, "#999 let me in");
    alice.send(BOT, "hello?");
    let replies = alice.receive(2, Duration::from_secs(10));
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(
        replies[0].1.contains("#999 is not one of your tickets"),
        "{replies:?}"
    );
    assert!(replies[1].1.contains("#123 Thank you"), "help: {replies:?}");

    let mut mallory = Client::connect(&w.prosody, "mallory", "mallory-pw");
    mallory.send(BOT, "#123 hi");
    let reply = mallory.receive(1, Duration::from_secs(10));
    assert!(
        reply[0].1.starts_with("You are not registered"),
        "{reply:?}"
    );
    assert_eq!(w.mgrctl.calls().len(), 1, "nothing else was posted");

    // SIGTERM stops it and frees the lock.
    // SAFETY: a plain kill of the receiver this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    wait_for("the receiver to stop", Duration::from_secs(10), || {
        receiver_pid(&w).is_none()
    });
    assert!(receiver_log(&w).contains("SIGTERM, stopping"));

    // What the customer wrote while it was down is answered when it is back, once.
    alice.send(BOT, "#123 one more thing");
    std::thread::sleep(Duration::from_millis(300));
    let out = ntjabber(&w, &["--command", "getmessage", "--gate", "all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reply = alice.receive(1, Duration::from_secs(20));
    assert_eq!(
        reply,
        [(
            BOT.to_owned(),
            "Your message was added to ticket #123.".to_owned()
        )]
    );
    let calls = w.mgrctl.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(Mgrctl::arg(&calls[1], "message"), Some("one more thing"));
    let pid = receiver_pid(&w).expect("the receiver runs again");
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_for("the receiver to stop", Duration::from_secs(10), || {
        receiver_pid(&w).is_none()
    });
    assert_eq!(
        var_files_holding(&w, BOT_PASSWORD),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn the_receiver_logs_in_again_after_the_server_went_away() {
    let mut w = world();
    let out = ntjabber(&w, &["--command", "getmessage", "--gate", "all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for("the receiver online", Duration::from_secs(20), || {
        receiver_log(&w).contains("receiver of bot@localhost: online")
    });
    let pid = receiver_pid(&w).expect("a receiver");
    w.prosody.restart();
    wait_for("the receiver online again", Duration::from_secs(30), || {
        receiver_log(&w)
            .matches("receiver of bot@localhost: online")
            .count()
            == 2
    });
    assert_eq!(receiver_pid(&w), Some(pid), "the same receiver");
    let mut alice = Client::connect(&w.prosody, "alice", "alice-pw");
    alice.send(BOT, "#123 still there?");
    let reply = alice.receive(1, Duration::from_secs(10));
    assert_eq!(
        reply,
        [(
            BOT.to_owned(),
            "Your message was added to ticket #123.".to_owned()
        )]
    );
    // SAFETY: a plain kill of the receiver this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_for("the receiver to stop", Duration::from_secs(10), || {
        receiver_pid(&w).is_none()
    });
}

#[test]
fn a_receiver_ends_when_its_gateway_is_switched_off_or_changed() {
    let w = world();
    // Starts the receiver and waits until it is the `nth` to come online.
    let start = |w: &World, nth: usize| {
        let out = ntjabber(w, &["--command", "getmessage", "--gate", "all"]);
        assert!(out.status.success(), "{}", stderr(&out));
        wait_for("the receiver online", Duration::from_secs(20), || {
            receiver_log(w)
                .matches("receiver of bot@localhost: online")
                .count()
                == nth
        });
    };
    start(&w, 1);
    w.db.exec("UPDATE gateway SET active = 'off' WHERE gateway_type = 'ingoing'");
    wait_for("the receiver to stop", Duration::from_secs(15), || {
        receiver_pid(&w).is_none()
    });
    assert!(
        receiver_log(&w).contains("no active ingoing gateway has these settings any more"),
        "{}",
        receiver_log(&w)
    );

    // Switched on again with another ticket format: the receiver with the old one ends,
    // and the next getmessage starts one that reads `@123`.
    w.db.exec("UPDATE gateway SET active = 'on' WHERE gateway_type = 'ingoing'");
    start(&w, 2);
    let changed = xmlparams(&w.prosody, BOT_PASSWORD, true).replace("#id", "@id");
    w.db.exec(&format!(
        "UPDATE gateway SET xmlparams = '{changed}' WHERE gateway_type = 'ingoing'"
    ));
    wait_for("the old receiver to stop", Duration::from_secs(15), || {
        receiver_pid(&w).is_none()
    });
    start(&w, 3);
    let mut alice = Client::connect(&w.prosody, "alice", "alice-pw");
    alice.send(BOT, "@123 the new format");
    let reply = alice.receive(1, Duration::from_secs(10));
    assert_eq!(
        reply,
        [(
            BOT.to_owned(),
            "Your message was added to ticket @123.".to_owned()
        )]
    );
    assert_eq!(w.mgrctl.calls().len(), 1);
}
