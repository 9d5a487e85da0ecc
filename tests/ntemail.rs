//! `notify/ntemail --command process`: queued email notifications through gwsmtp to a
//! real SMTP server (tests/smtp_server.py) and through a third-party email gateway,
//! from a real MariaDB queue: the mail as received (headers, Cyrillic subject, the HTML
//! with its text version, attachment bytes, names and types, several recipients), a
//! missing or refused attachment, three runs at once, the server down, and a refused
//! login — each with the row's err_info and nothing sent twice or lost.

mod common;

use std::collections::HashMap;
use std::process::Child;
use std::time::Duration;

use common::mariadb::{add_program, spawn_role_process, wait_bounded, TestDb};
use common::mgr_root::{stderr, stdout, MgrRoot};
use common::smtp::{Encryption, Options, SmtpServer, LOGIN, PASSWORD};
use mail_parser::{MessageParser, MimeHeaders};

const SUBJECT: &str = "Счёт №42 оплачен — спасибо!";
const HTML: &str = "<html><head><style>p{margin:0}</style></head><body>\
    <p>Здравствуйте, <b>{user.realname}</b>!</p>\
    <p>Счёт №42 оплачен.<br>Акт: <a href=\"https://my.shop.test/act?id=42&amp;x=1\">в личном кабинете</a></p>\
    </body></html>";
const TEXT_VERSION: &str = "Здравствуйте, Иван!\n\nСчёт №42 оплачен.\n\
    Акт: в личном кабинете (https://my.shop.test/act?id=42&x=1)";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A notification file: template `tmpl`, the notice's subject, `attachments` (the
/// inside of notice_xml's `<attachments>`), a user with `email`.
fn notice(tmpl: &str, subject: &str, attachments: &str, email: &str) -> String {
    let notice_xml = format!(
        "<doc><project><id>1</id><name>Hosting</name></project><subject>{}</subject>\
         <attachments>{attachments}</attachments></doc>",
        escape(subject)
    );
    format!(
        "<doc><notify><tmpl>{}</tmpl><notice_xml>{}</notice_xml>\
         <user><id>7</id><name>ivan</name><realname>Иван</realname><email>{}</email></user>\
         <templatesubject>Fallback</templatesubject></notify></doc>",
        escape(tmpl),
        escape(&notice_xml),
        escape(email)
    )
}

/// A body as its text: LF line ends (mail has CRLF), no trailing line ends.
fn lf(body: Option<std::borrow::Cow<'_, str>>) -> String {
    body.unwrap_or_default()
        .replace("\r\n", "\n")
        .trim_end()
        .to_owned()
}

fn smtp_params(server: &SmtpServer, extra: &str) -> String {
    format!(
        "<doc><host>127.0.0.1</host><port>{}</port><security>none</security>\
         <from_email>billing@shop.test</from_email><from_name>Хостинг «Ромашка»</from_name>\
         <timeout>10</timeout>{extra}</doc>",
        server.port
    )
}

fn setup(conf: &str) -> (MgrRoot, TestDb) {
    let root = MgrRoot::new();
    root.write("etc/mgrnotify/mgrnotify.conf", conf);
    (root, TestDb::create())
}

fn queue(root: &MgrRoot, db: &TestDb, name: &str, text: &str) -> u64 {
    root.write(&format!("var/notify/{name}"), text);
    db.add_task_for("ntemail", name, 0, "2026-01-01 00:00:00", false)
}

fn process(root: &MgrRoot, db: &TestDb) -> std::process::Output {
    wait_bounded(
        spawn_role_process(root, &db.url(), "ntemail"),
        Duration::from_secs(60),
    )
}

#[test]
fn features_say_html_and_email() {
    let root = MgrRoot::new();
    let out = root.run("notify/ntemail", &["--command", "features"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "<doc><features><feature name=\"html\"/></features><contact_type>email</contact_type></doc>"
    );
}

#[test]
fn a_queued_html_mail_with_attachments_reaches_every_recipient() {
    let server = SmtpServer::start(Options::default());
    let (root, db) = setup("QueueWorkers 2\n");
    db.add_gateway_for(
        "ntemail",
        "gwsmtp",
        1,
        &smtp_params(&server, ""),
        "on",
        "outgoing",
    );
    let invoice: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    std::fs::create_dir_all(root.path().join("var/docs")).unwrap();
    std::fs::write(root.path().join("var/docs/invoice-42.pdf"), &invoice).unwrap();
    root.write("var/docs/act.txt", "Акт №42\nline 2\n");
    // An absolute path in the temporary folder, outside the mgr root (the default
    // AttachmentDirs).
    let elsewhere = tempfile::tempdir().unwrap();
    let report = elsewhere.path().join("report.csv");
    std::fs::write(&report, "id;sum\n42;100\n").unwrap();
    let attachments = format!(
        "<attachment name=\"Счёт №42.pdf\" type=\"application/pdf\">\
         var/docs/invoice-42.pdf</attachment><attachment>var/docs/act.txt</attachment>\
         <attachment>{}</attachment>",
        report.display()
    );
    let id = queue(
        &root,
        &db,
        "m1",
        &notice(
            HTML,
            SUBJECT,
            &attachments,
            "a@client.test, b@client.test c@client.test",
        ),
    );
    let out = process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(db.task(id), None, "the sent row leaves the queue");
    assert!(!root.path().join("var/notify/m1").exists());

    let got = server.messages();
    assert_eq!(got.len(), 1, "one mail for all recipients");
    let mail = &got[0];
    assert_eq!(mail.to, ["a@client.test", "b@client.test", "c@client.test"]);
    assert_eq!(mail.from, "billing@shop.test");
    let subject = mail.header("Subject").unwrap();
    assert!(subject.starts_with("=?utf-8?"), "RFC 2047: {subject}");
    assert_eq!(mail.header("MIME-Version").as_deref(), Some("1.0"));
    assert!(mail.header("Message-ID").unwrap().ends_with("@shop.test>"));

    let parsed = MessageParser::default().parse(&mail.raw).unwrap();
    assert_eq!(parsed.subject(), Some(SUBJECT));
    assert!(parsed
        .content_type()
        .is_some_and(|c| c.subtype() == Some("mixed")));
    assert_eq!(lf(parsed.body_text(0)), TEXT_VERSION);
    let html = parsed.body_html(0).unwrap();
    assert_eq!(html, HTML.replace("{user.realname}", "Иван"));
    let text = mail.text();
    assert!(
        text.contains("multipart/alternative"),
        "HTML and text as alternatives"
    );
    let files: Vec<_> = parsed.attachments().collect();
    assert_eq!(files.len(), 3);
    assert_eq!(files[0].attachment_name(), Some("Счёт №42.pdf"));
    assert_eq!(files[0].content_type().unwrap().ctype(), "application");
    assert_eq!(files[0].content_type().unwrap().subtype(), Some("pdf"));
    assert_eq!(files[0].contents(), invoice.as_slice());
    assert_eq!(files[1].attachment_name(), Some("act.txt"));
    assert_eq!(files[1].content_type().unwrap().subtype(), Some("plain"));
    assert_eq!(files[1].contents(), "Акт №42\nline 2\n".as_bytes());
    assert_eq!(files[2].attachment_name(), Some("report.csv"));
    assert_eq!(files[2].contents(), "id;sum\n42;100\n".as_bytes());
}

#[test]
fn a_plain_text_template_makes_a_plain_mail() {
    let server = SmtpServer::start(Options::default());
    let (root, db) = setup("");
    db.add_gateway_for(
        "ntemail",
        "gwsmtp",
        1,
        &smtp_params(&server, ""),
        "on",
        "outgoing",
    );
    queue(
        &root,
        &db,
        "p",
        &notice(
            "Dear {user.realname}, <b>paid</b>\n.\n..two dots\n.",
            "Paid",
            "",
            "a@client.test",
        ),
    );
    let out = process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert!(got[0]
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    let parsed = MessageParser::default().parse(&got[0].raw).unwrap();
    assert_eq!(
        lf(parsed.body_text(0)),
        "Dear Иван, <b>paid</b>\n.\n..two dots\n."
    );
}

#[test]
fn a_missing_or_refused_attachment_fails_the_row_and_sends_nothing() {
    let server = SmtpServer::start(Options::default());
    let (root, db) = setup("");
    db.add_gateway_for(
        "ntemail",
        "gwsmtp",
        1,
        &smtp_params(&server, ""),
        "on",
        "outgoing",
    );
    // Outside the root and the temporary folder (the default AttachmentDirs).
    std::os::unix::fs::symlink("/etc/passwd", root.path().join("var/looks-inside.txt")).unwrap();
    let cases = [
        ("var/docs/none.pdf", "does not exist"),
        ("/etc/passwd", "outside the mgr root"),
        ("var/looks-inside.txt", "outside the mgr root"),
        ("var/notify", "not a regular file but a folder"),
    ];
    let ids: Vec<u64> = cases
        .iter()
        .enumerate()
        .map(|(n, (path, _))| {
            let a = format!("<attachment>{path}</attachment>");
            queue(
                &root,
                &db,
                &format!("a{n}"),
                &notice("Hi", "S", &a, "a@client.test"),
            )
        })
        .collect();
    let out = process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    for (id, (path, why)) in ids.iter().zip(cases) {
        let row = db.task(*id).expect("the row stays queued");
        assert_eq!(row.error_count, 1);
        let info = row.err_info.unwrap_or_default();
        assert!(
            info.contains(why) && info.contains("permanent"),
            "{path}: {info}"
        );
    }
    assert!(server.messages().is_empty());
    assert!(
        server.events().is_empty(),
        "no connection: {:?}",
        server.events()
    );
}

/// A third-party email gateway in shell: keeps its input in var/mailer.xml.
const KEEPING_GATEWAY: &str = "#!/bin/sh\ncat > var/mailer.xml\necho '<doc><id>ext-1</id></doc>'\n";

#[test]
fn a_third_party_email_gateway_gets_html_and_attachments() {
    let (root, db) = setup("");
    add_program(&root, "gwmailer", KEEPING_GATEWAY);
    db.add_gateway_for(
        "ntemail",
        "gwmailer",
        1,
        "<doc><key>k</key></doc>",
        "on",
        "outgoing",
    );
    root.write("var/docs/act.txt", "act");
    let attachments = "<attachment name=\"Акт.txt\">var/docs/act.txt</attachment>\
        <attachment type=\"application/x-custom\">var/docs/act.txt</attachment>";
    queue(
        &root,
        &db,
        "t",
        &notice(HTML, SUBJECT, attachments, "a@client.test"),
    );
    let out = process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(db.tasks().is_empty());

    let input = root.read("var/mailer.xml");
    let doc = roxmltree::Document::parse(&input).unwrap_or_else(|e| panic!("{e}: {input}"));
    let top = |name: &str| {
        doc.root_element()
            .children()
            .find(|c| c.has_tag_name(name))
            .map(|c| c.text().unwrap_or_default().to_owned())
    };
    assert_eq!(top("subject").as_deref(), Some(SUBJECT));
    assert_eq!(top("message").as_deref(), Some(TEXT_VERSION));
    assert_eq!(top("html"), Some(HTML.replace("{user.realname}", "Иван")));
    let real = root
        .path()
        .canonicalize()
        .unwrap()
        .join("var/docs/act.txt")
        .display()
        .to_string();
    let got: Vec<(String, String, String)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("attachment"))
        .map(|a| {
            (
                a.attribute("name").unwrap_or_default().to_owned(),
                a.attribute("type").unwrap_or_default().to_owned(),
                a.text().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Акт.txt".to_owned(), "text/plain".to_owned(), real.clone()),
            (
                "act.txt".to_owned(),
                "application/x-custom".to_owned(),
                real
            ),
        ]
    );
    assert!(root.read("var/ntemail.log").contains("provider id ext-1"));
}

#[test]
fn three_runs_at_once_send_each_row_exactly_once() {
    let server = SmtpServer::start(Options::default());
    let (root, db) = setup("QueueWorkers 4\nQueueBatchSize 7\n");
    db.add_gateway_for(
        "ntemail",
        "gwsmtp",
        1,
        &smtp_params(&server, ""),
        "on",
        "outgoing",
    );
    let rows = 90;
    for n in 0..rows {
        queue(
            &root,
            &db,
            &format!("c{n}"),
            &notice("Hi", "S", "", &format!("c{n}@client.test")),
        );
    }
    let runs: Vec<Child> = (0..3)
        .map(|_| spawn_role_process(&root, &db.url(), "ntemail"))
        .collect();
    for run in runs {
        let out = wait_bounded(run, Duration::from_secs(60));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(db.tasks().is_empty());
    let mut counts: HashMap<String, usize> = HashMap::new();
    for m in server.messages() {
        for to in m.to {
            *counts.entry(to).or_default() += 1;
        }
    }
    assert_eq!(counts.len(), rows, "every row sent");
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(
        root.read("var/ntemail.log")
            .matches("process: done")
            .count(),
        3
    );
}

#[test]
fn a_server_that_is_down_is_transient_and_the_row_is_retried() {
    // Long enough that the first run does not try again in a second pass.
    let (root, db) = setup("QueueRetryBase 3s\n");
    let down = format!(
        "<doc><host>127.0.0.1</host><port>{}</port><security>none</security>\
         <from_email>billing@shop.test</from_email><timeout>5</timeout></doc>",
        SmtpServer::closed_port()
    );
    let gateway = db.add_gateway_for("ntemail", "gwsmtp", 1, &down, "on", "outgoing");
    let id = queue(&root, &db, "d", &notice("Hi", "S", "", "a@client.test"));
    let out = process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    let row = db.task(id).expect("queued for a retry");
    let info = row.err_info.unwrap_or_default();
    assert_eq!(row.error_count, 1);
    assert!(
        info.contains("cannot connect to 127.0.0.1") && info.contains("transient, retry after"),
        "{info}"
    );
    // The server is back (on another port, as the operator fixed it).
    let server = SmtpServer::start(Options::default());
    db.exec(&format!(
        "UPDATE gateway SET xmlparams = '{}' WHERE id = {gateway}",
        smtp_params(&server, "")
    ));
    std::thread::sleep(Duration::from_millis(3100));
    let out = process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(db.tasks().is_empty());
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn a_refused_login_is_a_clear_error_without_the_password() {
    let server = SmtpServer::start(Options {
        tls: Encryption::StartTls,
        auth: true,
        ..Options::default()
    });
    let (root, db) = setup("");
    let wrong = "Wrong-Secret-8xQ2";
    let params = format!(
        "<doc><host>127.0.0.1</host><port>{}</port><security>starttls</security>\
         <ca_file>{}</ca_file><login>{LOGIN}</login><password>{wrong}</password>\
         <from_email>billing@shop.test</from_email><timeout>10</timeout></doc>",
        server.port,
        server.ca_file.display()
    );
    db.add_gateway_for("ntemail", "gwsmtp", 1, &params, "on", "outgoing");
    let id = queue(&root, &db, "l", &notice("Hi", "S", "", "a@client.test"));
    let out = process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    let info = db.task(id).unwrap().err_info.unwrap_or_default();
    assert!(
        info.contains("refused the login of") && info.contains("127.0.0.1"),
        "{info}"
    );
    for text in [
        info,
        root.read("var/ntemail.log"),
        stderr(&out),
        stdout(&out),
    ] {
        assert!(!text.contains(wrong) && !text.contains(PASSWORD), "{text}");
    }
    assert!(server.messages().is_empty());
}

#[test]
fn queue_show_lists_the_text_version_the_html_and_the_attachments() {
    let (root, db) = setup("");
    root.write("etc/billmgr.conf.d/db.conf", &db.db_conf());
    db.add_gateway_for("ntemail", "gwmailer", 1, "", "on", "outgoing");
    root.write("var/docs/act.txt", "act");
    let attachments = "<attachment name=\"Счёт №42.txt\">var/docs/act.txt</attachment>";
    let id = queue(
        &root,
        &db,
        "s",
        &notice(HTML, SUBJECT, attachments, "a@client.test"),
    );
    let out = root.run("sbin/mgrnotify", &["queue", "show", &id.to_string()], "");
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    assert!(text.contains("email: a@client.test"), "{text}");
    assert!(
        text.contains("    Акт: в личном кабинете (https://my.shop.test/act?id=42&x=1)"),
        "{text}"
    );
    assert!(text.contains("  html: "), "{text}");
    assert!(
        text.contains("  attachment: Счёт №42.txt (text/plain) /"),
        "{text}"
    );
    assert!(db.task(id).is_some(), "nothing sent");
}

#[test]
fn an_xslt_template_with_html_output_makes_an_html_mail() {
    let (root, db) = setup("");
    add_program(&root, "gwmailer", KEEPING_GATEWAY);
    db.add_gateway_for("ntemail", "gwmailer", 1, "", "on", "outgoing");
    // Its output starts with <span>, no document tag: only the output method says HTML.
    let xslt = "<xsl:stylesheet version=\"1.0\" xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\">\
        <xsl:output method=\"html\"/><xsl:template match=\"/\">\
        <span>Проект <xsl:value-of select=\"/doc/project/name\"/> &amp; <a href=\"https://my.shop.test/\">кабинет</a></span>\
        </xsl:template></xsl:stylesheet>";
    queue(&root, &db, "x", &notice(xslt, "S", "", "a@client.test"));
    let out = process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    let input = root.read("var/mailer.xml");
    let doc = roxmltree::Document::parse(&input).unwrap_or_else(|e| panic!("{e}: {input}"));
    let top = |name: &str| {
        doc.root_element()
            .children()
            .find(|c| c.has_tag_name(name))
            .and_then(|c| c.text())
            .map(str::to_owned)
    };
    assert_eq!(
        top("message").as_deref(),
        Some("Проект Hosting & кабинет (https://my.shop.test/)")
    );
    let html = top("html").unwrap_or_default();
    assert!(
        html.starts_with("<span>Проект Hosting &amp; <a href"),
        "{html}"
    );
}
