//! Incoming mail into tickets against a private dovecot (IMAP and POP3 with STARTTLS,
//! IMAP also with TLS from the start; the test CA), a real MariaDB and a stand-in
//! `sbin/mgrctl` that records its argv:
//! replies and new tickets from mail in KOI8-R, CP1251, quoted-printable, base64, RFC
//! 2047 and HTML only; unknown senders and malformed mail kept for an operator; mgrctl
//! failing (unread, then kept after three runs); nothing posted twice, also with two
//! runs at once; `--command ingoing`'s XML byte for byte; clear errors for a wrong
//! password and a server that is down, with the password nowhere.

mod common;

use std::path::Path;
use std::process::Output;

use common::dovecot::{Dovecot, PASSWORD};
use common::mariadb::TestDb;
use common::mgr_root::{error_of, stderr, stdout, MgrRoot};
use common::mgrctl::{Answer, Mgrctl};

const MAILBOX: &str = "support@shop.test";

struct Setup {
    dovecot: Dovecot,
    db: TestDb,
    root: MgrRoot,
    mgrctl: Mgrctl,
}

/// A dovecot, a database with users ivan (ticket 55) and olga, a root with mgrctl.
fn setup() -> Setup {
    let dovecot = Dovecot::start(&[MAILBOX]);
    let db = TestDb::create();
    db.exec(
        "INSERT INTO user (id, account, name, email) VALUES \
         (1, 10, 'ivan', 'Ivan.Petrov@Example.com'), (2, 20, 'olga', 'olga@example.com')",
    );
    db.exec("INSERT INTO ticket (id, account_client) VALUES (55, 10), (66, 20)");
    let root = MgrRoot::new();
    let mgrctl = Mgrctl::install(root.path());
    Setup {
        dovecot,
        db,
        root,
        mgrctl,
    }
}

impl Setup {
    /// An ingoing ntemail gateway row for `module`; returns its id.
    fn gateway(&self, module: &str, extra: &str) -> u64 {
        let port = match module {
            "gwpop3" => self.dovecot.pop3_port,
            _ => self.dovecot.imap_port,
        };
        let xmlparams = format!(
            "<doc><host>127.0.0.1</host><port>{port}</port><security>starttls</security>\
             <login>{MAILBOX}</login><password>{PASSWORD}</password>\
             <ca_file>{}</ca_file><timeout>10</timeout>{extra}</doc>",
            self.dovecot.ca_file.display()
        );
        let mut conn = self.db.conn();
        use mysql::prelude::Queryable;
        conn.exec_drop(
            "INSERT INTO gateway (name, gateway_module, notify_module, gateway_type, active, \
             project, xmlparams) VALUES ('mail', ?, 'ntemail', 'ingoing', 'on', 1, ?)",
            (module, xmlparams),
        )
        .expect("insert gateway");
        conn.last_insert_id()
    }

    fn getmessage(&self, gate: &str) -> Output {
        self.root.run_env(
            "notify/ntemail",
            &["--command", "getmessage", "--gate", gate],
            "",
            &[("MGRNOTIFY_DB_URL", &self.db.url())],
        )
    }

    fn seen(&self) -> Vec<bool> {
        self.dovecot
            .mailbox(MAILBOX)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    fn kept(&self, folder: &str, gateway: u64) -> Vec<String> {
        let dir = self
            .root
            .path()
            .join(format!("var/mgrnotify/{folder}/{gateway}"));
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
}

/// The value of `name=` in a recorded mgrctl call.
fn arg<'c>(call: &'c [String], name: &str) -> &'c str {
    Mgrctl::arg(call, name).unwrap_or_else(|| panic!("no {name}= in {call:?}"))
}

/// A reply to ticket 55 in KOI8-R, quoted-printable, with quoted history below.
const KOI8_QP_REPLY: &[u8] = b"From: =?koi8-r?B?6dfBzg==?= <ivan.petrov@example.COM>\r\n\
To: support@shop.test\r\n\
Subject: Re: [#55] =?koi8-r?Q?=F3=C5=D2=D7=C5=D2_=CE=C5_=D2=C1=C2=CF=D4=C1=C5=D4?=\r\n\
Message-ID: <r1@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=koi8-r\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
=F3=D0=C1=D3=C9=C2=CF, =D4=C5=D0=C5=D2=D8 =D2=C1=C2=CF=D4=C1=C5=D4!\r\n\
\r\n\
30.11.2026, 10:00, Support <support@shop.test> =CE=C1=D0=C9=D3=C1=CC:\r\n\
> =F3=C5=D2=D7=C5=D2 =D0=C5=D2=C5=DA=C1=D0=D5=DD=C5=CE\r\n";

/// A new ticket in CP1251, base64, its subject RFC 2047 base64 in CP1251.
fn cp1251_new_ticket() -> Vec<u8> {
    // "Не работает почта" and "Добрый день! Почта не приходит." in CP1251.
    let subject = b"\xcd\xe5 \xf0\xe0\xe1\xee\xf2\xe0\xe5\xf2 \xef\xee\xf7\xf2\xe0";
    let body = b"\xc4\xee\xe1\xf0\xfb\xe9 \xe4\xe5\xed\xfc! \xcf\xee\xf7\xf2\xe0 \xed\xe5 \
\xef\xf0\xe8\xf5\xee\xe4\xe8\xf2.\r\n";
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "From: olga@example.com\r\nTo: support@shop.test\r\n\
         Subject: =?windows-1251?B?{}?=\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=windows-1251\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        b64.encode(subject),
        b64.encode(body)
    )
    .into_bytes()
}

const HTML_ONLY: &[u8] = b"From: Olga <OLGA@example.com>\r\nSubject: Re: [#55] not mine\r\n\
MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<html><body><p>\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 &amp; <b>hello</b></p></body></html>\r\n";

const UNKNOWN_SENDER: &[u8] =
    b"From: stranger@elsewhere.test\r\nSubject: Buy now\r\n\r\nSpam text\r\n";

const MALFORMED: &[u8] = b"this is not a mail at all\r\n\r\n";

/// An out-of-office reply of a known customer to a ticket notification.
const AUTO_REPLY: &[u8] = b"From: ivan.petrov@example.com\r\nSubject: Auto: [#55] Server down\r\n\
Auto-Submitted: auto-replied\r\n\r\nI am on vacation.\r\n";

#[test]
fn imap_mail_becomes_replies_and_tickets_once() {
    let s = setup();
    for mail in [
        KOI8_QP_REPLY,
        &cp1251_new_ticket(),
        HTML_ONLY,
        UNKNOWN_SENDER,
        MALFORMED,
        AUTO_REPLY,
    ] {
        s.dovecot.deliver(MAILBOX, mail);
    }
    let gw = s.gateway("gwimap", "");
    let out = s.getmessage("all");
    assert_ok(&out);
    let calls = s.mgrctl.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    // KOI8-R quoted-printable reply into ivan's ticket 55, the history cut off.
    let reply = calls
        .iter()
        .find(|c| Mgrctl::arg(c, "elid").is_some())
        .expect("a reply");
    assert_eq!(
        &reply[..5],
        ["-m", "billmgr", "-o", "xml", "clientticket.edit"]
    );
    assert_eq!(arg(reply, "elid"), "55");
    assert_eq!(arg(reply, "su"), "ivan");
    assert_eq!(arg(reply, "message"), "Спасибо, теперь работает!");
    assert_eq!(reply.last().map(String::as_str), Some("sok=ok"));
    let new_ticket = |subject: &str| {
        calls
            .iter()
            .find(|c| Mgrctl::arg(c, "subject") == Some(subject))
            .unwrap_or_else(|| panic!("no new ticket '{subject}' in {calls:?}"))
    };
    // CP1251 base64 new ticket with its RFC 2047 subject.
    let cp1251 = new_ticket("Не работает почта");
    assert_eq!(Mgrctl::arg(cp1251, "elid"), None);
    assert_eq!(arg(cp1251, "su"), "olga");
    assert_eq!(arg(cp1251, "message"), "Добрый день! Почта не приходит.");
    // HTML only, naming ivan's ticket: olga gets a new ticket with the text of the HTML.
    let html = new_ticket("Re: [#55] not mine");
    assert_eq!(Mgrctl::arg(html, "elid"), None);
    assert_eq!(arg(html, "su"), "olga");
    assert_eq!(arg(html, "message").trim(), "Привет & hello");
    // The unknown sender, the automatic reply and the malformed mail are kept, byte for
    // byte; everything is seen.
    let unmatched: Vec<Vec<u8>> = s
        .kept("unmatched", gw)
        .iter()
        .filter(|n| n.ends_with(".eml"))
        .map(|n| {
            std::fs::read(
                s.root
                    .path()
                    .join(format!("var/mgrnotify/unmatched/{gw}/{n}")),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(unmatched.len(), 2);
    assert!(unmatched.iter().any(|m| m == UNKNOWN_SENDER));
    assert!(unmatched.iter().any(|m| m == AUTO_REPLY));
    let failed = s.kept("failed", gw);
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(s.seen(), [true; 6]);
    // Each post was noted until its mail was marked, and forgotten then.
    assert_eq!(s.root.read(&format!("var/mgrnotify/posted/{gw}.txt")), "");
    // A second run finds nothing new and posts nothing twice.
    assert_ok(&s.getmessage(&gw.to_string()));
    assert_eq!(s.mgrctl.calls().len(), 3);
    // No password in argv or anywhere under var/.
    for call in s.mgrctl.calls() {
        assert!(!call.iter().any(|a| a.contains(PASSWORD)));
    }
    for f in files_under(&s.root.path().join("var")) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PASSWORD),
            "{}",
            f.display()
        );
    }
}

#[test]
fn mgrctl_failing_leaves_mail_unread_then_keeps_it_after_three_runs() {
    let s = setup();
    s.dovecot.deliver(MAILBOX, KOI8_QP_REPLY);
    let gw = s.gateway("gwimap", "");
    s.mgrctl.answer(Answer::Fails);
    for run in 1..=2 {
        assert_ok(&s.getmessage("all"));
        assert_eq!(s.seen(), [false], "run {run}");
        assert_eq!(s.mgrctl.calls().len(), run);
        assert!(s.kept("failed", gw).is_empty());
    }
    assert_ok(&s.getmessage("all"));
    assert_eq!(s.seen(), [true]);
    let failed = s.kept("failed", gw);
    assert_eq!(failed.len(), 2, "{failed:?}");
    let note = failed.iter().find(|n| n.ends_with(".txt")).unwrap();
    let reason = s.root.read(&format!("var/mgrnotify/failed/{gw}/{note}"));
    assert!(
        reason.contains("3 attempt") && reason.contains("cannot connect to core"),
        "{reason}"
    );
    s.mgrctl.answer(Answer::Ok);
    assert_ok(&s.getmessage("all"));
    assert_eq!(s.mgrctl.calls().len(), 3);
}

#[test]
fn an_error_answer_of_mgrctl_counts_as_a_failure() {
    let s = setup();
    s.dovecot.deliver(MAILBOX, &cp1251_new_ticket());
    s.gateway("gwimap", "<ticket_pattern>Ticket (\\d+)</ticket_pattern>");
    s.mgrctl.answer(Answer::ErrorXml);
    assert_ok(&s.getmessage("all"));
    assert_eq!(s.seen(), [false]);
    s.mgrctl.answer(Answer::Ok);
    assert_ok(&s.getmessage("all"));
    assert_eq!(s.seen(), [true]);
    assert_eq!(s.mgrctl.calls().len(), 2);
}

#[test]
fn pop3_remembers_what_it_handed_on_and_deletes_only_when_asked() {
    let s = setup();
    s.dovecot.deliver(MAILBOX, KOI8_QP_REPLY);
    s.dovecot.deliver(MAILBOX, UNKNOWN_SENDER);
    let keep = s.gateway("gwpop3", "");
    assert_ok(&s.getmessage(&keep.to_string()));
    assert_eq!(s.mgrctl.calls().len(), 1);
    assert_eq!(
        s.dovecot.mailbox(MAILBOX).len(),
        2,
        "delete=off keeps the mail"
    );
    let uidls = s.root.read(&format!("var/mgrnotify/pop3/{keep}.uidl"));
    assert_eq!(uidls.lines().count(), 2, "{uidls}");
    assert_ok(&s.getmessage(&keep.to_string()));
    assert_eq!(s.mgrctl.calls().len(), 1, "nothing posted twice");
    // A new mail, and a gateway that deletes: only what it handed on goes.
    s.db.exec("UPDATE gateway SET active = 'off'");
    let delete = s.gateway("gwpop3", "<delete>on</delete>");
    // BILLmanager may write the type as a number and `active` in any case.
    s.db.exec(&format!(
        "UPDATE gateway SET gateway_type = '2', active = 'On' WHERE id = {delete}"
    ));
    let out = s.getmessage(&keep.to_string());
    assert!(!out.status.success());
    let (_, _, msg) = error_of(&out);
    assert!(
        msg.contains(&format!(
            "no active ingoing gateway of ntemail with id '{keep}'"
        )),
        "{msg}"
    );
    s.mgrctl.answer(Answer::Fails);
    assert_ok(&s.getmessage(&delete.to_string()));
    // This gateway has handed nothing on yet: both mails are new to it. The unknown
    // sender's is kept and deleted, the unposted one stays.
    assert_eq!(
        s.dovecot.mailbox(MAILBOX).len(),
        1,
        "the unposted mail stays"
    );
    s.mgrctl.answer(Answer::Ok);
    assert_ok(&s.getmessage(&delete.to_string()));
    assert!(s.dovecot.mailbox(MAILBOX).is_empty());
    assert_eq!(s.mgrctl.calls().len(), 3);
}

#[test]
fn two_runs_at_once_post_each_mail_once() {
    let s = setup();
    for i in 0..6 {
        let mail = format!("From: olga@example.com\r\nSubject: question {i}\r\n\r\nText {i}\r\n");
        s.dovecot.deliver(MAILBOX, mail.as_bytes());
    }
    s.gateway("gwimap", "");
    // Each post takes a while, so the runs overlap.
    s.mgrctl.answer(Answer::Slow);
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let root = s.root.path().to_owned();
            let url = s.db.url();
            std::thread::spawn(move || {
                common::mgr_root::run_in(
                    &root,
                    "notify/ntemail",
                    &["--command", "getmessage", "--gate", "all"],
                    "",
                    &[("MGRNOTIFY_DB_URL", &url)],
                )
            })
        })
        .collect();
    for r in runs {
        assert_ok(&r.join().unwrap());
    }
    let mut subjects: Vec<String> = s
        .mgrctl
        .calls()
        .iter()
        .map(|c| arg(c, "subject").to_owned())
        .collect();
    subjects.sort();
    let expected: Vec<String> = (0..6).map(|i| format!("question {i}")).collect();
    assert_eq!(subjects, expected);
    assert_eq!(s.seen(), [true; 6]);
}

#[test]
fn ingoing_prints_the_sources_byte_for_byte_and_marks_them_seen() {
    let s = setup();
    let koi8_8bit: &[u8] = b"From: ivan.petrov@example.com\r\nSubject: 8bit\r\n\
Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
\xf0\xd2\xc9\xd7\xc5\xd4\r\n";
    s.dovecot.deliver(MAILBOX, KOI8_QP_REPLY);
    s.dovecot.deliver(MAILBOX, koi8_8bit);
    let input = format!(
        "<doc><gateway><id>9</id><xmlparams>&lt;doc&gt;&lt;host&gt;127.0.0.1&lt;/host&gt;\
         &lt;port&gt;{}&lt;/port&gt;&lt;login&gt;{MAILBOX}&lt;/login&gt;\
         &lt;password&gt;{PASSWORD}&lt;/password&gt;&lt;ca_file&gt;{}&lt;/ca_file&gt;\
         &lt;/doc&gt;</xmlparams></gateway></doc>",
        s.dovecot.imap_port,
        s.dovecot.ca_file.display()
    );
    let out = s.root.run("gate/gwimap", &["--command", "ingoing"], &input);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("&#13;\n"), "{text}");
    let doc = roxmltree::Document::parse(&text).unwrap();
    let messages: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("message"))
        .collect();
    assert_eq!(messages.len(), 2);
    // Parsed back, the first is the source byte for byte, CRLF and all.
    assert_eq!(messages[0].attribute("encoding"), None);
    assert_eq!(messages[0].text().unwrap().as_bytes(), KOI8_QP_REPLY);
    assert_eq!(messages[1].attribute("encoding"), Some("base64"));
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(messages[1].text().unwrap())
        .unwrap();
    assert_eq!(decoded, koi8_8bit);
    assert_eq!(s.seen(), [true, true]);
    let again = s.root.run("gate/gwimap", &["--command", "ingoing"], &input);
    assert_ok(&again);
    assert_eq!(stdout(&again).trim(), "<doc><messages/></doc>");
    assert!(!text.contains(PASSWORD) && !stderr(&out).contains(PASSWORD));
    // POP3 has no \Seen: gwpop3 remembers the UIDLs it printed, per gateway id, and
    // leaves the mail on the server (delete off).
    let pop3 = input.replace(
        &format!("&lt;port&gt;{}", s.dovecot.imap_port),
        &format!("&lt;port&gt;{}", s.dovecot.pop3_port),
    );
    let out = s.root.run("gate/gwpop3", &["--command", "ingoing"], &pop3);
    assert_ok(&out);
    assert_eq!(
        stdout(&out).matches("</message>").count(),
        2,
        "{}",
        stdout(&out)
    );
    assert_eq!(s.root.read("var/mgrnotify/pop3/9.uidl").lines().count(), 2);
    let again = s.root.run("gate/gwpop3", &["--command", "ingoing"], &pop3);
    assert_eq!(stdout(&again).trim(), "<doc><messages/></doc>");
    assert_eq!(s.dovecot.mailbox(MAILBOX).len(), 2);
}

#[test]
fn wrong_password_and_server_down_are_clear_errors_without_the_password() {
    let s = setup();
    s.dovecot.deliver(MAILBOX, KOI8_QP_REPLY);
    let gw = s.gateway("gwimap", "");
    s.db.exec(&format!(
        "UPDATE gateway SET xmlparams = REPLACE(xmlparams, '{PASSWORD}', 'Wrong-Pass-31337') \
         WHERE id = {gw}"
    ));
    let out = s.getmessage("all");
    assert!(!out.status.success());
    let (kind, _, msg) = error_of(&out);
    assert_eq!(kind, "notify");
    assert!(
        msg.contains(&format!("login as '{MAILBOX}' refused")),
        "{msg}"
    );
    assert!(
        !stdout(&out).contains("Wrong-Pass-31337") && !stderr(&out).contains("Wrong-Pass-31337")
    );
    let log = s.root.read("var/ntemail.log");
    assert!(!log.contains("Wrong-Pass-31337"), "{log}");
    assert_eq!(s.seen(), [false]);
    assert!(s.mgrctl.calls().is_empty());
    // Server down: a closed port.
    let closed = common::smtp::SmtpServer::closed_port();
    s.db.exec(&format!(
        "UPDATE gateway SET xmlparams = REPLACE(xmlparams, '<port>{}</port>', '<port>{closed}</port>') \
         WHERE id = {gw}",
        s.dovecot.imap_port
    ));
    let out = s.getmessage(&gw.to_string());
    let (_, _, msg) = error_of(&out);
    assert!(
        msg.contains(&format!("cannot connect to 127.0.0.1:{closed}")),
        "{msg}"
    );
}

#[test]
fn check_connection_logs_in_and_names_what_is_wrong() {
    // Dovecot slows the logins after a failed one from the same address: the failure
    // comes last.
    let s = setup();
    let form = |port: u16, password: &str, ca: bool| {
        let ca_file = if ca {
            format!("<ca_file>{}</ca_file>", s.dovecot.ca_file.display())
        } else {
            String::new()
        };
        format!(
            "<doc><host>127.0.0.1</host><port>{port}</port><login>{MAILBOX}</login>\
             <password>{password}</password>{ca_file}</doc>"
        )
    };
    let check = |role: &str, form: String| {
        s.root.run(
            &format!("gate/{role}"),
            &["--command", "check_connection"],
            &form,
        )
    };
    assert_ok(&check("gwpop3", form(s.dovecot.pop3_port, PASSWORD, true)));
    assert_ok(&check("gwimap", form(s.dovecot.imap_port, PASSWORD, true)));
    let implicit = form(s.dovecot.imaps_port, PASSWORD, true)
        .replace("</doc>", "<security>tls</security></doc>");
    assert_ok(&check("gwimap", implicit));
    // Without the test CA the server's certificate is not trusted: no login is tried.
    let out = check("gwimap", form(s.dovecot.imap_port, PASSWORD, false));
    let (_, _, msg) = error_of(&out);
    assert!(
        msg.contains("TLS handshake") && msg.contains("certificate"),
        "{msg}"
    );
    let out = check(
        "gwpop3",
        form(s.dovecot.pop3_port, "Wrong-Pass-31337", true),
    );
    assert!(!out.status.success());
    let (_, _, msg) = error_of(&out);
    assert!(
        msg.contains(&format!("login as '{MAILBOX}' refused")),
        "{msg}"
    );
    assert!(
        !stdout(&out).contains("Wrong-Pass-31337") && !stderr(&out).contains("Wrong-Pass-31337")
    );
}

#[test]
fn sync_writes_the_forms_of_gwimap_and_gwpop3() {
    let root = MgrRoot::new();
    let out = root.run("sbin/mgrnotify", &["sync"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    for (role, own, port) in [("gwimap", "folder", "993"), ("gwpop3", "delete", "995")] {
        let xml = root.read(&format!("etc/xml/billmgr_mod_{role}.xml"));
        let doc = roxmltree::Document::parse(&xml).expect("XML");
        let input_type = |name: &str| {
            doc.descendants()
                .find(|n| {
                    (n.has_tag_name("input") || n.has_tag_name("select"))
                        && n.attribute("name") == Some(name)
                })
                .map(|n| {
                    n.attribute("type")
                        .unwrap_or(n.tag_name().name())
                        .to_owned()
                })
        };
        for name in [
            "host",
            "port",
            "login",
            "ticket_pattern",
            "ca_file",
            "timeout",
        ] {
            assert_eq!(input_type(name).as_deref(), Some("text"), "{role} {name}");
        }
        assert_eq!(
            input_type("password").as_deref(),
            Some("password"),
            "{role}"
        );
        assert_eq!(input_type("security").as_deref(), Some("select"), "{role}");
        assert!(input_type(own).is_some(), "{role} {own}");
        let msg =
            |lang: &str, name: &str| common::plugin::msg(&doc, lang, name).unwrap_or_default();
        assert_eq!(msg("en", "host"), "Mail server");
        assert_eq!(msg("ru", "host"), "Почтовый сервер");
        assert!(msg("en", "hint_port").contains(port), "{role}");
        assert!(
            msg("ru", "hint_ticket_pattern").contains("тикета"),
            "{role}"
        );
    }
}

#[test]
fn a_third_party_ingoing_program_is_read_through_its_xml() {
    let s = setup();
    // A gateway program in gate/ that prints the seed's <messages>: one mail as text
    // (CRLF as &#13;), one as base64, after checking that it got its settings.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(cp1251_new_ticket());
    common::mariadb::add_program(
        &s.root,
        "gwmymail",
        &format!(
            "#!/bin/sh\n[ \"$2\" = ingoing ] || exit 2\n\
             grep -q '&lt;login&gt;{MAILBOX}' || exit 3\n\
             printf '<doc><messages><message>From: olga@example.com&#13;\\nSubject: [#66] via program&#13;\\n&#13;\\nHello&#13;\\n</message>\
             <message encoding=\"base64\">{b64}</message></messages></doc>'\n"
        ),
    );
    let gw = s.gateway("gwmymail", "");
    assert_ok(&s.getmessage(&gw.to_string()));
    let calls = s.mgrctl.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let reply = calls
        .iter()
        .find(|c| Mgrctl::arg(c, "elid").is_some())
        .unwrap();
    assert_eq!((arg(reply, "elid"), arg(reply, "message")), ("66", "Hello"));
    assert!(calls
        .iter()
        .any(|c| Mgrctl::arg(c, "subject") == Some("Не работает почта")));
    // The program handed its mail on when it printed it: a mail mgrctl refuses is kept
    // at once.
    s.mgrctl.answer(Answer::Fails);
    assert_ok(&s.getmessage(&gw.to_string()));
    let failed = s.kept("failed", gw);
    assert_eq!(failed.len(), 4);
    let note = failed.iter().find(|n| n.ends_with(".txt")).unwrap();
    let reason = s.root.read(&format!("var/mgrnotify/failed/{gw}/{note}"));
    assert!(reason.contains("handed it on already"), "{reason}");
}

#[test]
fn a_mail_posted_before_the_mailbox_failed_is_not_posted_again() {
    // A run posted the mail, then lost the mailbox before marking it \Seen: it left a
    // note of the post, which the next run finds.
    let s = setup();
    s.dovecot.deliver(MAILBOX, KOI8_QP_REPLY);
    let gw = s.gateway("gwimap", "");
    use sha2::Digest;
    let key: String = sha2::Sha256::digest(KOI8_QP_REPLY)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    s.root.write(
        &format!("var/mgrnotify/posted/{gw}.txt"),
        &format!("{key} \n"),
    );
    assert_ok(&s.getmessage("all"));
    assert!(s.mgrctl.calls().is_empty());
    assert_eq!(s.seen(), [true]);
    assert_eq!(s.root.read(&format!("var/mgrnotify/posted/{gw}.txt")), "");
}

#[test]
fn imap_reads_a_folder_with_a_cyrillic_name() {
    let s = setup();
    // "Поддержка" in IMAP's modified UTF-7, as dovecot names its Maildir++ folder.
    const ON_DISK: &str = "&BB8EPgQ0BDQENQRABDYEOgQw-";
    s.dovecot.deliver_to(MAILBOX, ON_DISK, KOI8_QP_REPLY);
    s.dovecot.deliver(MAILBOX, &cp1251_new_ticket());
    s.gateway("gwimap", "<folder>Поддержка</folder>");
    assert_ok(&s.getmessage("all"));
    let calls = s.mgrctl.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(arg(&calls[0], "elid"), "55");
    let folder = s.dovecot.mailbox_folder(MAILBOX, ON_DISK);
    assert_eq!(folder.len(), 1);
    assert!(folder[0].1, "the mail in the folder is seen");
    assert_eq!(s.seen(), [false], "INBOX is not read");
}
