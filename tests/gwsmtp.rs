//! `gate/gwsmtp` against a real SMTP server on loopback (tests/smtp_server.py):
//! the mail as received (headers, Cyrillic subject, HTML alternative, attachment
//! bytes, several recipients), STARTTLS and implicit TLS with AUTH and the test CA as
//! ca_file, connection reuse with RSET and a reopened connection, the plugin XML, and
//! the failures: login refused, server down, recipient refused, missing attachment,
//! untrusted certificate — each a clear error naming the server, nothing sent, and
//! the password nowhere.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::mgr_root::{error_of, stderr, stdout, MgrRoot};
use common::smtp::{Encryption, Options, SmtpServer, LOGIN, PASSWORD};
use mail_parser::{MessageParser, MimeHeaders};
use mgrnotify::gateway::smtp::SmtpGateway;
use mgrnotify::gateway::{Attachment, GatewayModule, OutgoingInput};

const SUBJECT: &str = "Счёт №42 оплачен — спасибо!";
const TEXT: &str = "Здравствуйте, Иван!\nСчёт №42 оплачен.\n\nС уважением, «Ромашка»";
const HTML: &str =
    "<html><body><p>Здравствуйте, <b>Иван</b>!</p><p>Счёт №42 оплачен.</p></body></html>";
const FROM_NAME: &str = "Хостинг «Ромашка»";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The gateway parameters for `server`: plain, or TLS with the test CA and AUTH.
fn params(server: &SmtpServer, security: &str, auth: bool) -> Vec<(String, String)> {
    let mut p = vec![
        ("host", "127.0.0.1".to_owned()),
        ("port", server.port.to_string()),
        ("security", security.to_owned()),
        ("from_email", "billing@shop.test".to_owned()),
        ("from_name", FROM_NAME.to_owned()),
        ("timeout", "10".to_owned()),
    ];
    if security != "none" {
        p.push(("ca_file", server.ca_file.display().to_string()));
    }
    if auth {
        p.push(("login", LOGIN.to_owned()));
        p.push(("password", PASSWORD.to_owned()));
    }
    p.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn set(params: &mut Vec<(String, String)>, name: &str, value: &str) {
    params.retain(|(k, _)| k != name);
    params.push((name.to_owned(), value.to_owned()));
}

/// The seed's outgoing XML, xmlparams as escaped text as BILLmanager sends it;
/// `extra` goes into `<doc>` as it is (html, attachments).
fn outgoing_xml(params: &[(String, String)], email: &str, extra: &str) -> String {
    let fields: String = params
        .iter()
        .map(|(k, v)| format!("<{k}>{}</{k}>", escape(v)))
        .collect();
    format!(
        "<doc><gateway><id>3</id><name>mail</name><gateway_module>gwsmtp</gateway_module>\
         <xmlparams>{}</xmlparams></gateway>\
         <message>{}</message><subject>{}</subject>{extra}\
         <user><id>7</id><name>ivan</name><email>{}</email></user>\
         <project><id>1</id><name>Hosting</name></project></doc>",
        escape(&format!("<doc>{fields}</doc>")),
        escape(TEXT),
        escape(SUBJECT),
        escape(email)
    )
}

/// The form check_connection gets: the fields at the root.
fn form_xml(params: &[(String, String)]) -> String {
    let fields: String = params
        .iter()
        .map(|(k, v)| format!("<{k}>{}</{k}>", escape(v)))
        .collect();
    format!("<doc>{fields}</doc>")
}

fn send(root: &MgrRoot, xml: &str) -> std::process::Output {
    root.run("gate/gwsmtp", &["--command", "outgoing"], xml)
}

/// Every file under the root's var/, as text: logs must not hold the password.
fn everything_under_var(root: &MgrRoot) -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push_str(&String::from_utf8_lossy(
                    &std::fs::read(&path).unwrap_or_default(),
                ));
            }
        }
    }
    let mut out = String::new();
    walk(&root.path().join("var"), &mut out);
    out
}

/// The error of a failed command, checked to be clear and to leak no password.
fn failure(root: &MgrRoot, out: &std::process::Output) -> (String, String, String) {
    assert!(!out.status.success(), "{}", stdout(out));
    for (what, text) in [
        ("stdout", stdout(out)),
        ("stderr", stderr(out)),
        ("var/", everything_under_var(root)),
    ] {
        assert!(!text.contains(PASSWORD), "password in {what}: {text}");
    }
    error_of(out)
}

#[test]
fn features_and_formtune() {
    let root = MgrRoot::new();
    let out = root.run("gate/gwsmtp", &["--command", "features"], "");
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(
        stdout(&out).trim(),
        "<doc><features><feature name=\"outgoing\"/><feature name=\"formtune\"/>\
         <feature name=\"check_connection\"/></features><notify_module>ntemail</notify_module></doc>"
    );
    let form = "<doc><host>smtp.test</host></doc>";
    let out = root.run("gate/gwsmtp", &["--command", "formtune"], form);
    assert!(out.status.success());
    assert_eq!(stdout(&out), form);
}

#[test]
fn a_whole_mail_as_the_server_receives_it() {
    let server = SmtpServer::start(Options::default());
    let root = MgrRoot::new();
    let invoice: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let invoice_path = root.path().join("var/invoice-42.pdf");
    std::fs::write(&invoice_path, &invoice).unwrap();
    let text_file = root.write("var/act.txt", "line one\nline two\n");
    let mut p = params(&server, "none", false);
    set(&mut p, "reply_to", "support@shop.test");
    let extra = format!(
        "<html>{}</html><attachments>\
         <attachment name=\"Счёт №42.pdf\" type=\"application/pdf\">{}</attachment>\
         <attachment>{}</attachment></attachments>",
        escape(HTML),
        invoice_path.display(),
        text_file.display()
    );
    let out = send(
        &root,
        &outgoing_xml(
            &p,
            "ivan@client.test, boss@client.test  acc@client.test",
            &extra,
        ),
    );
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));

    let got = server.messages();
    assert_eq!(got.len(), 1, "one mail for all recipients");
    let mail = &got[0];
    assert_eq!(mail.from, "billing@shop.test");
    assert_eq!(
        mail.to,
        ["ivan@client.test", "boss@client.test", "acc@client.test"]
    );
    // The reply carries the Message-ID, made under the sender's domain.
    let reply = stdout(&out);
    let id = reply
        .trim()
        .strip_prefix("<doc><id>")
        .and_then(|r| r.strip_suffix("</id></doc>"))
        .unwrap_or_else(|| panic!("{reply}"));
    assert!(id.ends_with("@shop.test"), "{id}");
    assert_eq!(mail.header("Message-ID"), Some(format!("<{id}>")));

    // Headers as they travel: RFC 2047 for the Cyrillic ones, ASCII throughout, and
    // CRLF line ends only (servers refuse bare LF; a text attachment has them).
    assert!(mail.raw.is_ascii());
    let bare_lf = mail
        .raw
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || mail.raw[i - 1] != b'\r'));
    assert!(!bare_lf, "a bare LF in the mail");
    let subject = mail.header("Subject").unwrap();
    assert!(subject.starts_with("=?utf-8?"), "{subject}");
    let from = mail.header("From").unwrap();
    assert!(
        from.starts_with("=?utf-8?") && from.ends_with("<billing@shop.test>"),
        "{from}"
    );
    assert_eq!(mail.header("MIME-Version").as_deref(), Some("1.0"));
    assert!(mail.header("Date").is_some());
    assert_eq!(
        mail.header("Reply-To").as_deref(),
        Some("support@shop.test")
    );

    // What a mail reader makes of it.
    let parsed = MessageParser::default().parse(&mail.raw).expect("a mail");
    assert_eq!(parsed.subject(), Some(SUBJECT));
    let sender = parsed.from().and_then(|f| f.first()).unwrap();
    assert_eq!(sender.name(), Some(FROM_NAME));
    assert_eq!(sender.address(), Some("billing@shop.test"));
    let to: Vec<_> = parsed
        .to()
        .and_then(|t| t.as_list())
        .unwrap()
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(
        to,
        ["ivan@client.test", "boss@client.test", "acc@client.test"]
    );
    assert_eq!(
        parsed.content_type().map(|c| (c.ctype(), c.subtype())),
        Some(("multipart", Some("mixed")))
    );
    let text = mail.text();
    assert!(
        text.contains("Content-Type: multipart/alternative"),
        "{text}"
    );
    assert_eq!(parsed.body_text(0).unwrap().replace("\r\n", "\n"), TEXT);
    assert_eq!(parsed.body_html(0).unwrap(), HTML);
    let attachments: Vec<_> = parsed.attachments().collect();
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0].attachment_name(), Some("Счёт №42.pdf"));
    assert_eq!(
        attachments[0]
            .content_type()
            .map(|c| (c.ctype(), c.subtype())),
        Some(("application", Some("pdf")))
    );
    assert_eq!(attachments[0].contents(), invoice.as_slice());
    assert_eq!(attachments[1].attachment_name(), Some("act.txt"));
    assert_eq!(
        attachments[1]
            .content_type()
            .map(|c| (c.ctype(), c.subtype())),
        Some(("text", Some("plain"))),
        "guessed from the name"
    );
    assert_eq!(
        attachments[1].contents(),
        b"line one\nline two\n",
        "bytes kept"
    );
}

#[test]
fn a_text_mail_is_text_plain() {
    let server = SmtpServer::start(Options::default());
    let root = MgrRoot::new();
    let out = send(
        &root,
        &outgoing_xml(&params(&server, "none", false), "a@client.test", ""),
    );
    assert!(out.status.success(), "{}", stdout(&out));
    let mail = &server.messages()[0];
    let parsed = MessageParser::default().parse(&mail.raw).unwrap();
    assert_eq!(
        parsed.content_type().map(|c| (c.ctype(), c.subtype())),
        Some(("text", Some("plain")))
    );
    assert_eq!(parsed.body_text(0).unwrap().replace("\r\n", "\n"), TEXT);
    assert!(mail.header("Reply-To").is_none());
}

#[test]
fn an_html_document_in_message_alone_goes_as_html_with_its_text() {
    // A caller that knows no <html> element (the seed's XML only) puts the HTML of an
    // HTML template into <message>.
    let server = SmtpServer::start(Options::default());
    let root = MgrRoot::new();
    let xml = outgoing_xml(&params(&server, "none", false), "a@client.test", "").replace(
        &format!("<message>{}</message>", escape(TEXT)),
        "<message>&lt;p&gt;Hi &amp;amp; bye&lt;/p&gt;</message>",
    );
    let out = send(&root, &xml);
    assert!(out.status.success(), "{}", stdout(&out));
    let mails = server.messages();
    let parsed = MessageParser::default().parse(&mails[0].raw).unwrap();
    assert_eq!(
        parsed.content_type().map(|c| (c.ctype(), c.subtype())),
        Some(("multipart", Some("alternative")))
    );
    assert_eq!(parsed.body_text(0).unwrap().trim(), "Hi & bye");
    assert_eq!(parsed.body_html(0).unwrap().trim(), "<p>Hi &amp; bye</p>");
}

#[test]
fn starttls_and_implicit_tls_with_login() {
    for (tls, security) in [
        (Encryption::StartTls, "starttls"),
        (Encryption::Implicit, "tls"),
    ] {
        let server = SmtpServer::start(Options {
            tls,
            auth: true,
            ..Options::default()
        });
        let root = MgrRoot::new();
        let p = params(&server, security, true);
        let out = send(&root, &outgoing_xml(&p, "a@client.test", ""));
        assert!(out.status.success(), "{security}: {}", stdout(&out));
        let got = server.messages();
        assert_eq!(got.len(), 1, "{security}");
        assert!(got[0].tls, "{security}: sent encrypted");
        assert_eq!(got[0].login.as_deref(), Some(LOGIN), "{security}");

        // check_connection: connects, EHLO, TLS, AUTH; answers the form.
        let form = form_xml(&p);
        let out = root.run("gate/gwsmtp", &["--command", "check_connection"], &form);
        assert!(out.status.success(), "{security}: {}", stdout(&out));
        assert_eq!(stdout(&out), form);
        assert!(!everything_under_var(&root).contains(PASSWORD));
    }
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let server = SmtpServer::start(Options {
        tls: Encryption::StartTls,
        auth: true,
        ..Options::default()
    });
    let root = MgrRoot::new();
    let mut p = params(&server, "starttls", true);
    p.retain(|(k, _)| k != "ca_file");
    let out = send(&root, &outgoing_xml(&p, "a@client.test", ""));
    let (_, _, msg) = failure(&root, &out);
    assert!(msg.contains(&format!("127.0.0.1:{}", server.port)), "{msg}");
    assert!(
        msg.contains("certificate") && msg.contains("ca_file"),
        "{msg}"
    );
    assert!(server.messages().is_empty());
}

#[test]
fn a_refused_login_names_the_server_and_its_reply() {
    let server = SmtpServer::start(Options {
        tls: Encryption::StartTls,
        auth: true,
        ..Options::default()
    });
    let root = MgrRoot::new();
    let mut p = params(&server, "starttls", true);
    set(&mut p, "login", "intruder@shop.test");
    let out = send(&root, &outgoing_xml(&p, "a@client.test", ""));
    let (kind, _, msg) = failure(&root, &out);
    assert_eq!(kind, "gateway");
    assert!(
        msg.contains(&format!(
            "127.0.0.1:{} refused the login of intruder@shop.test",
            server.port
        )),
        "{msg}"
    );
    assert!(msg.contains("535"), "the SMTP reply: {msg}");
    assert!(server.messages().is_empty());

    let out = root.run(
        "gate/gwsmtp",
        &["--command", "check_connection"],
        &form_xml(&p),
    );
    let (_, _, msg) = failure(&root, &out);
    assert!(
        msg.contains("refused the login") && msg.contains("535"),
        "{msg}"
    );
}

#[test]
fn a_server_that_is_down_is_a_clear_error_at_once() {
    let root = MgrRoot::new();
    let server = SmtpServer::start(Options::default());
    let mut p = params(&server, "none", false);
    let port = SmtpServer::closed_port();
    set(&mut p, "port", &port.to_string());
    set(&mut p, "login", LOGIN);
    set(&mut p, "password", PASSWORD);
    let started = Instant::now();
    let out = send(&root, &outgoing_xml(&p, "a@client.test", ""));
    assert!(started.elapsed() < Duration::from_secs(10), "did not hang");
    let (_, _, msg) = failure(&root, &out);
    assert!(
        msg.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
}

#[test]
fn a_refused_recipient_sends_nothing() {
    let server = SmtpServer::start(Options::default());
    let root = MgrRoot::new();
    let out = send(
        &root,
        &outgoing_xml(
            &params(&server, "none", false),
            "ok@client.test, refused@client.test",
            "",
        ),
    );
    let (_, _, msg) = failure(&root, &out);
    assert!(
        msg.contains(&format!(
            "127.0.0.1:{} refused the recipient refused@client.test",
            server.port
        )),
        "{msg}"
    );
    assert!(msg.contains("550") && msg.contains("User unknown"), "{msg}");
    assert!(server.messages().is_empty());
}

#[test]
fn a_missing_attachment_stops_the_mail_before_any_connection() {
    let server = SmtpServer::start(Options::default());
    let root = MgrRoot::new();
    let missing = root.path().join("var/no-such-invoice.pdf");
    let extra = format!(
        "<attachments><attachment name=\"invoice.pdf\">{}</attachment></attachments>",
        missing.display()
    );
    let out = send(
        &root,
        &outgoing_xml(&params(&server, "none", false), "a@client.test", &extra),
    );
    let (_, object, msg) = failure(&root, &out);
    assert_eq!(object, "attachment");
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(server.messages().is_empty());
    assert!(server.events().is_empty(), "{:?}", server.events());
}

#[test]
fn bad_parameters_and_recipients_are_clear_errors() {
    let server = SmtpServer::start(Options::default());
    let root = MgrRoot::new();
    let mut p = params(&server, "none", false);
    p.retain(|(k, _)| k != "from_email");
    let out = send(&root, &outgoing_xml(&p, "a@client.test", ""));
    assert_eq!(error_of(&out).1, "from_email");
    let mut p = params(&server, "none", false);
    set(&mut p, "security", "ssl");
    let out = send(&root, &outgoing_xml(&p, "a@client.test", ""));
    let (kind, object, msg) = error_of(&out);
    assert_eq!(
        (kind.as_str(), object.as_str()),
        ("value", "security"),
        "{msg}"
    );
    let out = send(
        &root,
        &outgoing_xml(&params(&server, "none", false), "", ""),
    );
    assert_eq!(error_of(&out).1, "email");
    let out = send(
        &root,
        &outgoing_xml(
            &params(&server, "none", false),
            "a@client.test, broken@",
            "",
        ),
    );
    assert!(error_of(&out).2.contains("broken@"));
    assert!(server.messages().is_empty());
}

/// An outgoing input for the in-process gateway.
fn input(params: &[(String, String)], email: &str) -> OutgoingInput {
    OutgoingInput::parse(&outgoing_xml(params, email, "")).unwrap()
}

#[test]
fn one_gateway_reuses_its_connection_with_rset_between_messages() {
    let server = SmtpServer::start(Options {
        tls: Encryption::StartTls,
        auth: true,
        ..Options::default()
    });
    let root = MgrRoot::new();
    let gateway = SmtpGateway::new(&mgrnotify::root::MgrRoot::new(root.path()));
    let p = params(&server, "starttls", true);
    for n in 0..3 {
        gateway
            .outgoing(&input(&p, &format!("client{n}@client.test")))
            .unwrap();
    }
    // A refused recipient leaves the connection usable for the next message.
    let refused = gateway
        .outgoing(&input(&p, "refused@client.test"))
        .unwrap_err();
    assert!(refused.msg.contains("550"), "{}", refused.msg);
    gateway.outgoing(&input(&p, "last@client.test")).unwrap();

    let got = server.messages();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|m| m.peer == got[0].peer), "one connection");
    let events = server.events();
    assert_eq!(
        events.iter().filter(|e| *e == "CONNECT").count(),
        1,
        "{events:?}"
    );
    let rsets = events.iter().filter(|e| e.starts_with("RSET")).count();
    // Before messages 2, 3, the refused one and the last; and after the refusal.
    assert_eq!(rsets, 5, "{events:?}");
    assert_eq!(gateway.idle_connections(), 1);

    // Other settings: a connection of their own.
    let mut other = p.clone();
    set(&mut other, "timeout", "20");
    gateway.outgoing(&input(&other, "x@client.test")).unwrap();
    assert_eq!(gateway.idle_connections(), 2);
}

#[test]
fn a_connection_the_server_closed_is_reopened_for_the_next_message() {
    let server = SmtpServer::start(Options {
        close_after_message: true,
        ..Options::default()
    });
    let root = MgrRoot::new();
    let gateway = SmtpGateway::new(&mgrnotify::root::MgrRoot::new(root.path()));
    let p = params(&server, "none", false);
    gateway.outgoing(&input(&p, "first@client.test")).unwrap();
    // Let the server close its side, as an idle timeout does.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.events().iter().any(|e| e == "MESSAGE") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    gateway.outgoing(&input(&p, "second@client.test")).unwrap();
    let got = server.messages();
    assert_eq!(got.len(), 2);
    assert_ne!(got[0].peer, got[1].peer, "a new connection for the second");
    assert_eq!(got[1].to, ["second@client.test"]);
}

#[test]
fn the_outgoing_xml_of_a_notification_module_reaches_the_mail() {
    // What ntemail hands a gateway (OutgoingInput::to_xml) is what gwsmtp reads.
    let server = SmtpServer::start(Options::default());
    let root = MgrRoot::new();
    let file = root.write("var/a.bin", "\u{1}\u{2}bytes");
    let mut i = input(&params(&server, "none", false), "a@client.test");
    i.html = Some(HTML.to_owned());
    i.attachments = vec![Attachment {
        name: "a.bin".into(),
        content_type: "application/octet-stream".into(),
        path: file.display().to_string(),
    }];
    let out = send(&root, &i.to_xml());
    assert!(out.status.success(), "{}", stdout(&out));
    let mail = &server.messages()[0];
    let parsed = MessageParser::default().parse(&mail.raw).unwrap();
    assert_eq!(parsed.body_html(0).unwrap(), HTML);
    assert_eq!(
        parsed.attachments().next().unwrap().contents(),
        "\u{1}\u{2}bytes".as_bytes()
    );
}

#[test]
fn sync_writes_the_plugin_xml_while_gwsmtp_is_ours() {
    let root = MgrRoot::new();
    let out = root.run("sbin/mgrnotify", &["sync"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let xml = root.read("etc/xml/billmgr_mod_gwsmtp.xml");
    let doc = roxmltree::Document::parse(&xml).expect("XML");
    let input_type = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("input") && n.attribute("name") == Some(name))
            .map(|n| n.attribute("type").unwrap_or("").to_owned())
    };
    for name in [
        "host",
        "port",
        "login",
        "from_email",
        "from_name",
        "reply_to",
        "ca_file",
        "timeout",
    ] {
        assert_eq!(input_type(name).as_deref(), Some("text"), "{name}");
    }
    assert_eq!(input_type("password").as_deref(), Some("password"));
    assert_eq!(input_type("api_url"), None, "no script host fields");
    let select = doc
        .descendants()
        .find(|n| n.has_tag_name("select") && n.attribute("name") == Some("security"))
        .expect("security select");
    let choices: Vec<_> = select
        .children()
        .filter(|c| c.has_tag_name("msg"))
        .filter_map(|c| c.text())
        .collect();
    assert_eq!(choices, ["starttls", "tls", "none"]);
    let required = |name: &str| {
        doc.descendants()
            .any(|n| n.attribute("name") == Some(name) && n.attribute("required") == Some("yes"))
    };
    assert!(required("host") && required("from_email") && !required("login"));
    let msg = |lang: &str, name: &str| common::plugin::msg(&doc, lang, name);
    assert_eq!(msg("en", "from_email").as_deref(), Some("Sender address"));
    assert_eq!(
        msg("ru", "from_email").as_deref(),
        Some("Адрес отправителя")
    );
    assert_eq!(
        msg("ru", "starttls").as_deref(),
        Some("STARTTLS (порт 587)")
    );
    assert!(msg("en", "hint_port").unwrap().contains("465"));

    // BILLmanager's own gwsmtp in place: the form of ours goes with it.
    std::fs::remove_file(root.path().join("gate/gwsmtp")).unwrap();
    root.write("gate/gwsmtp", "#!/bin/sh\n");
    let out = root.run("sbin/mgrnotify", &["sync"], "");
    assert!(stderr(&out).contains("left alone"), "{}", stderr(&out));
    assert!(!root.path().join("etc/xml/billmgr_mod_gwsmtp.xml").exists());
}

#[test]
fn take_over_and_give_back_bring_and_take_the_plugin_xml() {
    let root = MgrRoot::new();
    let xml = root.path().join("etc/xml/billmgr_mod_gwsmtp.xml");
    std::fs::remove_file(root.path().join("gate/gwsmtp")).unwrap();
    root.write("gate/gwsmtp", "#!/bin/sh\necho billmanager\n");
    let out = root.run("sbin/mgrnotify", &["take-over", "gwsmtp"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&xml)
        .unwrap()
        .contains("<plugin name=\"gwsmtp\">"));
    let out = root.run("sbin/mgrnotify", &["give-back", "gwsmtp"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(root.read("gate/gwsmtp"), "#!/bin/sh\necho billmanager\n");
    assert!(!xml.exists(), "the form of ours left with our module");
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Accepts the connection and says nothing, as a wedged server does.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _holder = std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(20));
        drop(held);
    });
    let server = SmtpServer::start(Options::default());
    let root = MgrRoot::new();
    let mut p = params(&server, "none", false);
    set(&mut p, "port", &port.to_string());
    set(&mut p, "timeout", "1");
    let started = Instant::now();
    let out = send(&root, &outgoing_xml(&p, "a@client.test", ""));
    assert!(started.elapsed() < Duration::from_secs(10), "did not hang");
    let (_, _, msg) = failure(&root, &out);
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("no answer within 1 s"),
        "{msg}"
    );
}
