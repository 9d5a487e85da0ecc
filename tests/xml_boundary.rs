//! Hostile XML at every boundary where untrusted XML comes in (a gateway's stdin, a
//! provider's reply, `xml_parse` in a script, a params file, notification files, notice XML,
//! templates), and output that must stay XML whatever the input held. Attack inputs are
//! generated here: 20 000 nested elements overflow roxmltree's stack (SIGABRT), 100 000
//! attributes take its quadratic duplicate check 25 s, a 5 KB entity used 2 000 times takes
//! its text joining 20-30 s.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::time::{Duration, Instant};

use common::fake_http::{FakeHttp, Response};
use common::mgr_root::{error_of, stderr, stdout, MgrRoot};
use mgrnotify::notice::{self, Notice};
use mgrnotify::template;

/// Generous: every refusal here takes milliseconds; this only catches the slow attacks.
const SLOW: Duration = Duration::from_secs(10);

fn deep(levels: usize) -> String {
    "<a>".repeat(levels) + "</a>".repeat(levels).as_str()
}

fn many_attributes(tag: &str, n: usize) -> String {
    let attrs: String = (0..n).map(|i| format!(" a{i}=\"v\"")).collect();
    format!("<{tag}{attrs}/>")
}

/// `<` `>` `&` escaped, for putting a document into another as text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The outgoing document for a gwepochta-style gateway whose requests go to `api_url`.
fn outgoing_doc(api_url: &str, message: &str) -> String {
    let params = format!(
        "<doc><login>demo</login><password>pw</password><sender>Shop</sender>\
         <api_url>{api_url}</api_url></doc>"
    );
    format!(
        "<doc><gateway><id>3</id><gateway_module>gwepochta</gateway_module>\
         <xmlparams>{}</xmlparams></gateway><message>{}</message><subject>S</subject>\
         <user><id>7</id><phone>+79990000000</phone></user><project><id>1</id></project></doc>",
        esc(&params),
        esc(message)
    )
}

/// A gateway's refusal: exit status 1 (not a signal), well-formed error XML; returns
/// (type, msg).
fn assert_refused(out: &Output, started: Instant) -> (String, String) {
    assert!(started.elapsed() < SLOW, "took {:?}", started.elapsed());
    assert_eq!(
        out.status.signal(),
        None,
        "killed by a signal: {}",
        stderr(out)
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(out));
    let (kind, _, msg) = error_of(out);
    (kind, msg)
}

#[test]
fn gateway_stdin_nested_too_deep_is_an_error_not_an_abort() {
    let root = MgrRoot::new();
    let doc = format!("<doc>{}</doc>", deep(20_000));
    for command in ["outgoing", "check_connection", "formtune"] {
        let started = Instant::now();
        let out = root.run("gate/gwepochta", &["--command", command], &doc);
        let (kind, msg) = assert_refused(&out, started);
        assert_eq!(kind, "xml", "{command}: {msg}");
        assert!(msg.contains("limit of 256 levels"), "{command}: {msg}");
    }
}

#[test]
fn gateway_stdin_with_100_000_attributes_is_refused_at_once() {
    let root = MgrRoot::new();
    let started = Instant::now();
    let out = root.run(
        "gate/gwepochta",
        &["--command", "outgoing"],
        &many_attributes("doc", 100_000),
    );
    let (kind, msg) = assert_refused(&out, started);
    assert_eq!(kind, "xml");
    assert!(msg.contains("limit of 256 attributes"), "{msg}");
}

#[test]
fn provider_reply_nested_too_deep_or_with_too_many_attributes_is_an_error() {
    for (what, reply) in [
        ("deep", format!("<RESPONSE>{}</RESPONSE>", deep(20_000))),
        ("attributes", many_attributes("RESPONSE", 100_000)),
    ] {
        let root = MgrRoot::new();
        let fake = FakeHttp::start(move |_| Response::xml(&reply));
        let started = Instant::now();
        let out = root.run(
            "gate/gwepochta",
            &["--command", "outgoing"],
            &outgoing_doc(&fake.url(), "Hello"),
        );
        let (kind, msg) = assert_refused(&out, started);
        assert_eq!(kind, "gateway", "{what}: {msg}");
        assert!(msg.contains("not XML"), "{what}: {msg}");
        assert_eq!(fake.count(), 1, "{what}");
    }
}

/// A provider script that parses the message text as XML.
const XML_PARSE_SCRIPT: &str = r#"fn metadata() { #{title: "Test", notify_module: "ntsms"} }
fn outgoing(req) {
    let doc = xml_parse(req.message);
    #{id: doc.name}
}"#;

#[test]
fn xml_parse_in_a_script_refuses_deep_and_wide_documents() {
    let root = MgrRoot::new();
    root.add_script("gwparse", XML_PARSE_SCRIPT);
    for (what, text, limit) in [
        ("deep", deep(20_000), "limit of 256 levels"),
        (
            "attributes",
            many_attributes("r", 100_000),
            "limit of 256 attributes",
        ),
    ] {
        let started = Instant::now();
        let out = root.run(
            "gate/gwparse",
            &["--command", "outgoing"],
            &outgoing_doc("http://127.0.0.1:9", &text),
        );
        let (kind, msg) = assert_refused(&out, started);
        assert_eq!(kind, "gateway", "{what}: {msg}");
        assert!(
            msg.contains("xml_parse") && msg.contains(limit),
            "{what}: {msg}"
        );
    }
}

#[test]
fn a_params_file_nested_too_deep_is_an_error() {
    let root = MgrRoot::new();
    let params = root.write("deep.xml", &format!("<doc>{}</doc>", deep(20_000)));
    let out = root.run(
        "sbin/mgrnotify",
        &[
            "send",
            "gwepochta",
            "--to",
            "+79990000000",
            "--text",
            "Hi",
            "--params",
            params.to_str().unwrap(),
            "--dry-run",
        ],
        "",
    );
    assert_eq!(out.status.signal(), None, "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("limit of 256 levels"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_notification_file_or_notice_xml_nested_too_deep_is_an_error() {
    let file = format!(
        "<doc><notify><tmpl>Hi</tmpl><notice_xml>{}</notice_xml></notify></doc>",
        deep(20_000)
    );
    let err = notice::parse_file(&file).unwrap_err().to_string();
    assert!(err.contains("limit of 256 levels"), "{err}");

    let xslt = r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:output method="text"/><xsl:template match="/">x</xsl:template></xsl:stylesheet>"#;
    for tmpl in [xslt, "<%= 1 %>"] {
        let notice = Notice {
            tmpl: tmpl.into(),
            notice_xml: format!("<doc><project><id>1</id></project>{}</doc>", deep(20_000)),
            ..Notice::default()
        };
        assert_eq!(notice.provider_id(), None);
        let err = template::render(&notice).unwrap_err().to_string();
        assert!(err.contains("limit of 256 levels"), "{tmpl}: {err}");
    }
    // libxml2 is not given notice XML with a DTD either.
    let notice = Notice {
        tmpl: xslt.into(),
        notice_xml: "<!DOCTYPE doc [<!ENTITY e \"x\">]><doc>&e;</doc>".into(),
        ..Notice::default()
    };
    let err = template::render(&notice).unwrap_err().to_string();
    assert!(err.contains("DTD"), "{err}");
}

#[test]
fn a_template_nested_too_deep_is_an_error() {
    let body = deep(20_000);
    let xslt = format!(
        r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/">{body}</xsl:template></xsl:stylesheet>"#
    );
    let notice = Notice {
        tmpl: xslt,
        notice_xml: "<doc/>".into(),
        ..Notice::default()
    };
    let err = template::render(&notice).unwrap_err().to_string();
    assert!(
        err.starts_with("XSLT: ") && err.contains("limit of 256 levels"),
        "{err}"
    );
}

#[test]
fn a_template_whose_entities_expand_quadratically_is_refused_before_any_parser_runs() {
    // 11 KB: one 5 KB entity used 2 000 times.
    let entity = "y".repeat(5000);
    let uses = "&big;".repeat(2000);
    let xslt = format!(
        r#"<?xml version="1.0"?>
<!DOCTYPE xsl:stylesheet [<!ENTITY big "{entity}">]>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:output method="text"/><xsl:template match="/">{uses}</xsl:template></xsl:stylesheet>"#
    );
    let notice = Notice {
        tmpl: xslt,
        notice_xml: "<doc/>".into(),
        ..Notice::default()
    };
    let started = Instant::now();
    let err = template::render(&notice).unwrap_err().to_string();
    assert!(started.elapsed() < SLOW, "took {:?}", started.elapsed());
    assert!(
        err.starts_with("XSLT: ") && err.contains("limit of 1048576 bytes"),
        "{err}"
    );
}

#[test]
fn error_xml_never_echoes_characters_xml_cannot_carry() {
    let root = MgrRoot::new();
    // A provider's answer is quoted in the error, and so is an unknown command.
    let fake = FakeHttp::start(|_| Response::text(200, "maintenance \u{0} until \u{4}\u{1b}[0m"));
    let out = root.run(
        "gate/gwepochta",
        &["--command", "outgoing"],
        &outgoing_doc(&fake.url(), "Hello"),
    );
    let unknown = root.run("gate/gwepochta", &["--command", "feat\u{4}ures"], "");
    for (out, words) in [(out, "maintenance"), (unknown, "unknown command")] {
        // error_of parses the reply with roxmltree, which refuses such characters.
        let (_, msg) = assert_refused(&out, Instant::now());
        assert!(msg.contains(words), "{msg}");
        assert!(!msg.contains(['\u{0}', '\u{4}', '\u{1b}']), "{msg:?}");
        assert!(msg.contains('\u{fffd}'), "{msg:?}");
    }
}

#[test]
fn a_provider_message_id_with_control_characters_gives_a_well_formed_reply() {
    let root = MgrRoot::new();
    root.add_script(
        "gwjsonid",
        r#"fn metadata() { #{title: "Test", notify_module: "ntsms"} }
fn outgoing(req) {
    let reply = http(#{method: "GET", url: "http://provider.invalid/send"});
    #{id: json_parse(reply.body).id}
}"#,
    );
    let fake = FakeHttp::start(|_| Response::json(r#"{"id": "msg\u0001-\u0000-7"}"#));
    let out = root.run(
        "gate/gwjsonid",
        &["--command", "outgoing"],
        &outgoing_doc(&fake.url(), "Hello"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let reply = stdout(&out);
    let doc = roxmltree::Document::parse(&reply)
        .unwrap_or_else(|e| panic!("not well-formed ({e}): {reply:?}"));
    let id = doc.descendants().find(|n| n.has_tag_name("id")).unwrap();
    assert_eq!(id.text(), Some("msg\u{fffd}-\u{fffd}-7"));
}

#[test]
fn formtune_refuses_input_that_is_not_xml() {
    let root = MgrRoot::new();
    for stdin in ["", "  \n", "garbage \u{4} here", "<form><unclosed></form>"] {
        let started = Instant::now();
        let out = root.run("gate/gwepochta", &["--command", "formtune"], stdin);
        let (kind, msg) = assert_refused(&out, started);
        assert_eq!(kind, "xml", "{stdin:?}: {msg}");
    }
    let form = "<doc><field name=\"login\"/></doc>";
    let out = root.run("gate/gwepochta", &["--command", "formtune"], form);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out), form);
}

#[test]
fn formtune_refuses_a_tuned_form_that_is_not_xml() {
    let root = MgrRoot::new();
    root.add_script(
        "gwtune",
        r#"fn metadata() { #{title: "Test", notify_module: "ntsms"} }
fn outgoing(req) {}
fn formtune(form) { "tuned: " + form }"#,
    );
    let started = Instant::now();
    let out = root.run("gate/gwtune", &["--command", "formtune"], "<doc/>");
    let (kind, msg) = assert_refused(&out, started);
    assert_eq!(kind, "xml", "{msg}");
    assert!(msg.contains("tuned form is not an XML document"), "{msg}");
}
