//! gwepochta as BILLmanager runs it: `gate/gwepochta --command ...` with cwd = root and
//! XML on stdin, against a fake ePochta that checks every request against the seed's
//! document format.

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake_http::{FakeHttp, Request, Response};
use common::mgr_root::{error_of, stderr, stdout, MgrRoot};

const PASSWORD: &str = "Pa55&<word>";

/// `<` `>` `&` escaped, for putting text into the outgoing XML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The xmlparams document of an ePochta gateway, as text.
fn xmlparams(api_url: &str, extra: &str) -> String {
    format!(
        "<doc><login>demo</login><password>{}</password><sender>Shop</sender>\
         <api_url>{api_url}</api_url>{extra}</doc>",
        esc(PASSWORD)
    )
}

/// The outgoing document the SMS notification module sends.
fn outgoing_doc(xmlparams: &str, phone: &str, message: &str) -> String {
    format!(
        "<doc><gateway><id>3</id><name>sms</name><gateway_module>gwepochta</gateway_module>\
         <xmlparams>{}</xmlparams></gateway><message>{}</message><subject>S</subject>\
         <user><id>7</id><phone>{}</phone></user><project><id>1</id><name>Hosting</name></project></doc>",
        esc(xmlparams),
        esc(message),
        esc(phone)
    )
}

/// Checks a request against the seed's SMS document: POST to the XML API path, root
/// SMS with operations/operation, authentification/username+password,
/// message/text+sender, numbers/number, in that order.
fn check_sms(req: &Request, operation: &str, number: &str, text: &str) -> Result<(), String> {
    if req.method != "POST" {
        return Err(format!("method {}", req.method));
    }
    if req.path() != "/members/sms/xml.php" {
        return Err(format!("path {}", req.path()));
    }
    let body = req.body_text();
    let doc = roxmltree::Document::parse(&body).map_err(|e| format!("not XML ({e}): {body}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "SMS" {
        return Err(format!("root <{}>", root.tag_name().name()));
    }
    let groups: Vec<&str> = root
        .children()
        .filter(|c| c.is_element())
        .map(|c| c.tag_name().name())
        .collect();
    if groups != ["operations", "authentification", "message", "numbers"] {
        return Err(format!("SMS children {groups:?}"));
    }
    let expect = |group: &str, names: &[&str], values: &[&str]| -> Result<(), String> {
        let g = root.children().find(|c| c.has_tag_name(group)).unwrap();
        let children: Vec<_> = g.children().filter(|c| c.is_element()).collect();
        let got: Vec<&str> = children.iter().map(|c| c.tag_name().name()).collect();
        if got != names {
            return Err(format!("{group} children {got:?}"));
        }
        for (child, want) in children.iter().zip(values) {
            let text = child.text().unwrap_or("");
            if text != *want {
                return Err(format!(
                    "{group}/{}: {text:?}, want {want:?}",
                    child.tag_name().name()
                ));
            }
        }
        Ok(())
    };
    expect("operations", &["operation"], &[operation])?;
    expect(
        "authentification",
        &["username", "password"],
        &["demo", PASSWORD],
    )?;
    expect("message", &["text", "sender"], &[text, "Shop"])?;
    expect("numbers", &["number"], &[number])?;
    Ok(())
}

/// A fake ePochta: a valid SEND or BALANCE gets `answer`; anything else a 400 that
/// names what was wrong.
fn fake_epochta(answer: &'static str) -> FakeHttp {
    FakeHttp::start(move |req| {
        let body = req.body_text();
        let checked = if body.contains("BALANCE") {
            check_sms(req, "BALANCE", "", "")
        } else {
            check_sms(req, "SEND", "79990000000", "Счёт #42 оплачен & спасибо")
        };
        match checked {
            Ok(()) => Response::xml(answer),
            Err(why) => Response::text(400, &format!("fake ePochta: bad request: {why}")),
        }
    })
}

fn send(root: &MgrRoot, api_url: &str, extra: &str) -> std::process::Output {
    root.run(
        "gate/gwepochta",
        &["--command", "outgoing"],
        &outgoing_doc(
            &xmlparams(api_url, extra),
            "+7 (999) 000-00-00",
            "Счёт #42 оплачен & спасибо",
        ),
    )
}

#[test]
fn outgoing_success_sends_the_seed_document() {
    let root = MgrRoot::new();
    let fake = fake_epochta("<RESPONSE><status>0</status><credits>0.5</credits></RESPONSE>");
    let out = send(&root, &fake.url(), "");
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).trim(), "<doc/>");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    check_sms(
        &reqs[0],
        "SEND",
        "79990000000",
        "Счёт #42 оплачен & спасибо",
    )
    .unwrap();
    assert!(reqs[0]
        .header("content-type")
        .unwrap()
        .starts_with("text/xml"));
}

#[test]
fn outgoing_reports_the_provider_id() {
    let root = MgrRoot::new();
    let fake = fake_epochta("<RESPONSE><status>0</status><id>msg-981</id></RESPONSE>");
    let out = send(&root, &fake.url(), "");
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out).trim(), "<doc><id>msg-981</id></doc>");
}

#[test]
fn provider_error_carries_its_answer() {
    let root = MgrRoot::new();
    let fake =
        fake_epochta("<RESPONSE><status>-1</status><message>Invalid login</message></RESPONSE>");
    let out = send(&root, &fake.url(), "");
    assert_eq!(out.status.code(), Some(1));
    let (kind, object, msg) = error_of(&out);
    assert_eq!((kind.as_str(), object.as_str()), ("gateway", "gwepochta"));
    assert!(msg.contains("status -1"), "{msg}");
    assert!(msg.contains("Invalid login"), "{msg}");
}

#[test]
fn http_500_is_a_clear_error() {
    let root = MgrRoot::new();
    let fake = FakeHttp::start(|_| Response::text(500, "Internal failure, try later"));
    let out = send(&root, &fake.url(), "");
    assert_eq!(out.status.code(), Some(1));
    let (kind, _, msg) = error_of(&out);
    assert_eq!(kind, "gateway");
    assert!(msg.contains("HTTP 500"), "{msg}");
    assert!(msg.contains("Internal failure, try later"), "{msg}");
}

#[test]
fn not_xml_answer_is_a_clear_error() {
    let root = MgrRoot::new();
    let fake = FakeHttp::start(|_| Response::text(200, "<html>maintenance"));
    let out = send(&root, &fake.url(), "");
    let (kind, _, msg) = error_of(&out);
    assert_eq!(kind, "gateway");
    assert!(
        msg.contains("not XML") && msg.contains("maintenance"),
        "{msg}"
    );
}

#[test]
fn slow_provider_times_out_at_the_timeout_param() {
    let root = MgrRoot::new();
    let fake = FakeHttp::start(|_| {
        Response::xml("<RESPONSE><status>0</status></RESPONSE>").after(Duration::from_secs(4))
    });
    let started = Instant::now();
    let out = send(&root, &fake.url(), "<timeout>0.5</timeout>");
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let (kind, _, msg) = error_of(&out);
    assert_eq!(kind, "gateway");
    assert!(msg.contains("timeout") && msg.contains("0.5 s"), "{msg}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[test]
fn connection_refused_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = MgrRoot::new();
    let out = send(&root, &format!("http://127.0.0.1:{port}"), "");
    assert_eq!(out.status.code(), Some(1));
    let (kind, object, msg) = error_of(&out);
    assert_eq!((kind.as_str(), object.as_str()), ("gateway", "gwepochta"));
    assert!(msg.contains("connection refused"), "{msg}");
    assert!(
        msg.contains(&format!("127.0.0.1:{port}/members/sms/xml.php")),
        "{msg}"
    );
}

#[test]
fn features_formtune_and_check_connection() {
    let root = MgrRoot::new();
    let out = root.run("gate/gwepochta", &["--command", "features"], "");
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        "<doc><features><feature name=\"outgoing\"/><feature name=\"check_connection\"/>\
         <feature name=\"formtune\"/></features><notify_module>ntsms</notify_module></doc>"
    );

    let form = "<doc><metadata name=\"gateway.gwepochta\"><form/></metadata></doc>";
    let out = root.run("gate/gwepochta", &["--command", "formtune"], form);
    assert!(out.status.success());
    assert_eq!(stdout(&out), form);

    let fake = fake_epochta("<RESPONSE><status>0</status><credits>12.5</credits></RESPONSE>");
    let form = format!(
        "<doc><xmlparams>{}</xmlparams></doc>",
        esc(&xmlparams(&fake.url(), ""))
    );
    let out = root.run("gate/gwepochta", &["--command", "check_connection"], &form);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out), form, "check_connection returns the form");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    check_sms(&reqs[0], "BALANCE", "", "").unwrap();

    let refusing = fake_epochta("<RESPONSE><status>-1</status></RESPONSE>");
    let form = format!(
        "<doc><xmlparams>{}</xmlparams></doc>",
        esc(&xmlparams(&refusing.url(), ""))
    );
    let out = root.run("gate/gwepochta", &["--command", "check_connection"], &form);
    assert_eq!(out.status.code(), Some(1));
    let (kind, _, msg) = error_of(&out);
    assert_eq!(kind, "gateway");
    assert!(
        msg.contains("BALANCE") && msg.contains("status -1"),
        "{msg}"
    );
}

#[test]
fn bad_input_gets_error_xml_and_nonzero_exit() {
    let root = MgrRoot::new();
    let cases: [(&[&str], String, &str, &str); 6] = [
        (
            &["--command", "outgoing"],
            "<doc><gateway>".into(),
            "xml",
            "",
        ),
        (&["--command", "outgoing"], String::new(), "xml", ""),
        (&["--command", "check_connection"], String::new(), "xml", ""),
        (
            &["--command", "outgoing"],
            outgoing_doc(
                "<doc><login>demo</login><sender>S</sender></doc>",
                "+79990000000",
                "Hi",
            ),
            "missed",
            "password",
        ),
        (&["--command", "bogus"], String::new(), "unknown", "command"),
        (
            &["--command", "outgoing"],
            outgoing_doc(&xmlparams("ftp://nowhere", ""), "+79990000000", "Hi"),
            "value",
            "api_url",
        ),
    ];
    for (args, input, kind, object) in cases {
        let out = root.run("gate/gwepochta", args, &input);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} {input}: {}",
            stdout(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
        let (k, o, msg) = error_of(&out);
        assert_eq!(k, kind, "{args:?} {input}: {msg}");
        if !object.is_empty() {
            assert_eq!(o, object, "{msg}");
        }
        assert!(!msg.is_empty());
    }
    // A user without a phone: the script's own clear message.
    let out = root.run(
        "gate/gwepochta",
        &["--command", "outgoing"],
        &outgoing_doc(&xmlparams("http://127.0.0.1:9", ""), "", "Hi"),
    );
    let (kind, _, msg) = error_of(&out);
    assert_eq!(kind, "gateway");
    assert!(msg.contains("no phone number"), "{msg}");
}

#[test]
fn secrets_never_reach_the_log_or_stdout_even_at_level_9() {
    let root = MgrRoot::new();
    root.write("etc/debug.conf", "gwepochta 9\n");
    // The provider echoes the request in its refusal, password and all.
    let fake = FakeHttp::start(|req| {
        Response::xml(&format!(
            "<RESPONSE><status>-2</status><echo>{}</echo></RESPONSE>",
            esc(&req.body_text())
        ))
    });
    let out = send(&root, &fake.url(), "");
    assert_eq!(out.status.code(), Some(1));
    let log = root.read("var/gwepochta.log");
    assert!(log.contains("DEBUG"), "debug lines expected: {log}");
    assert!(log.contains("http request"), "{log}");
    for spelling in [
        PASSWORD.to_owned(),
        esc(PASSWORD),
        esc(&esc(PASSWORD)),
        "Pa55&amp;&lt;word".into(),
    ] {
        assert!(!log.contains(&spelling), "{spelling} in log:\n{log}");
        assert!(!stdout(&out).contains(&spelling), "{spelling} in stdout");
        assert!(!stderr(&out).contains(&spelling), "{spelling} in stderr");
    }
    assert!(fake.requests()[0].body_text().contains(&esc(PASSWORD)));
}

#[test]
fn one_gateway_serves_many_threads() {
    use mgrnotify::gateway::script::ScriptGateway;
    use mgrnotify::gateway::{GatewayModule, OutgoingInput};

    let fake = FakeHttp::start(|req| match check_sms(req, "SEND", "79990000000", "Hi") {
        Ok(()) => Response::xml("<RESPONSE><status>0</status><id>x</id></RESPONSE>"),
        Err(why) => Response::text(400, &why),
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gwepochta.rhai");
    let gateway = Arc::new(ScriptGateway::from_path("gwepochta", &path).unwrap());
    let input = Arc::new(
        OutgoingInput::parse(&outgoing_doc(
            &xmlparams(&fake.url(), ""),
            "89990000000",
            "Hi",
        ))
        .unwrap(),
    );
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let gateway = gateway.clone();
            let input = input.clone();
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| gateway.outgoing(&input).map(|d| d.id))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for result in t.join().unwrap() {
            assert_eq!(result, Ok(Some("x".to_owned())));
        }
    }
    assert_eq!(fake.count(), 40);
}
