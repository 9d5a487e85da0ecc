//! The provider-script API as a script writer meets it: `fail` inside `try`, Basic
//! auth, extra headers on the short HTTP helpers, field defaults, selects and
//! one-of groups, regular expressions, and what `mgrnotify check` and `--help` say.

mod common;

use std::path::PathBuf;

use common::fake_http::{FakeHttp, Response};
use common::mgr_root::{error_of, stderr, stdout, MgrRoot};
use mgrnotify::gateway::script::ScriptGateway;
use mgrnotify::gateway::{GatewayError, GatewayModule, OutgoingInput};
use mgrnotify::http::HttpRequest;

const METADATA: &str = r#"fn metadata() { #{title: "Test", notify_module: "ntsms"} }"#;

/// A gateway for `source`, from its own file in a fresh temp dir.
fn gateway(source: &str) -> (tempfile::TempDir, ScriptGateway) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("gwtest.rhai");
    std::fs::write(&path, source).unwrap();
    let gateway = ScriptGateway::from_path("gwtest", &path).unwrap();
    (dir, gateway)
}

/// An outgoing input with the given xmlparams fields (`<name>value</name>...`).
fn input(fields: &str) -> OutgoingInput {
    OutgoingInput::parse(&format!(
        "<doc><gateway><xmlparams>{fields}</xmlparams></gateway>\
         <message>Hi</message><user><phone>+79990000000</phone></user></doc>"
    ))
    .unwrap()
}

/// Runs `outgoing` of `body` (after a plain metadata) and returns the id or the error.
fn outgoing(body: &str) -> Result<Option<String>, GatewayError> {
    let (_dir, gw) = gateway(&format!("{METADATA}\n{body}"));
    gw.outgoing(&input("")).map(|d| d.id)
}

/// The requests `body` makes in a dry run, with the run's result.
fn dry_run(body: &str) -> (Vec<HttpRequest>, Result<Option<String>, GatewayError>) {
    let (_dir, gw) = gateway(&format!("{METADATA}\n{body}"));
    let gw = gw.with_dry_run(true);
    let result = gw.outgoing(&input("")).map(|d| d.id);
    (gw.take_recorded_requests(), result)
}

#[test]
fn fail_inside_try_is_not_swallowed_by_the_scripts_catch() {
    let err = outgoing(
        r#"fn outgoing(req) {
            try { fail("provider said no"); } catch (e) { return #{id: "swallowed"}; }
            #{id: "after"}
        }"#,
    )
    .unwrap_err();
    assert_eq!(
        (err.kind.as_str(), err.object.as_str()),
        ("gateway", "gwtest")
    );
    assert_eq!(err.msg, "provider said no");

    // Also from a function called inside the try, and with a catch without a variable.
    let err = outgoing(
        r#"fn check(answer) { if answer != "OK" { fail(`refused: ${answer}`); } }
        fn outgoing(req) {
            try { check("ERROR 7"); } catch { }
            #{id: "after"}
        }"#,
    )
    .unwrap_err();
    assert_eq!(err.msg, "refused: ERROR 7");

    // throw stays catchable: it is the script's own control flow.
    let id = outgoing(r#"fn outgoing(req) { try { throw "x"; } catch (e) { return #{id: e}; } }"#);
    assert_eq!(id, Ok(Some("x".into())));
}

#[test]
fn rhai_errors_arrive_in_catch_as_a_map_and_helper_errors_as_strings() {
    let id = outgoing(
        r#"fn outgoing(req) {
            let a = [1];
            let rhai_error = ();
            try { a[5] } catch (e) { rhai_error = e; }
            let helper_error = ();
            try { json_parse("{") } catch (e) { helper_error = e; }
            let e = rhai_error;
            #{id: `${type_of(e)} ${e.error} line ${e.line} ${type_of(e.position)} ${type_of(e.message)} ${e.source} | ${type_of(helper_error)}`}
        }"#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        id, "map ErrorArrayBounds line 5 i64 string gwtest.rhai | string",
        "{id}"
    );
}

#[test]
fn basic_auth_builds_the_header_and_registers_it_as_a_secret() {
    let (requests, result) = dry_run(
        r#"fn outgoing(req) {
            let auth = basic_auth("AC0123", "s3cr3t-t0ken");
            let r = http(#{method: "POST", url: "https://api.example/x",
                           headers: #{"Authorization": auth}, body: "echo=" + auth});
            #{id: auth}
        }"#,
    );
    let id = result.unwrap().unwrap();
    // base64("AC0123:s3cr3t-t0ken")
    assert_eq!(id, "Basic QUMwMTIzOnMzY3IzdC10MGtlbg==");
    // The recorded request leaves the command redacted.
    assert_eq!(
        requests[0].headers,
        [("Authorization".into(), "***".into())]
    );
    let shown = requests[0].describe();
    assert!(shown.contains("echo=***"), "{shown}");
    assert!(!shown.contains("QUMwMTIz"), "{shown}");
    assert_eq!(
        mgrnotify::log::redact("a QUMwMTIzOnMzY3IzdC10MGtlbg== b"),
        "a *** b"
    );

    let err = outgoing(r#"fn outgoing(req) { basic_auth("a:b", "c") }"#).unwrap_err();
    assert!(err.msg.contains("cannot contain ':'"), "{}", err.msg);
}

#[test]
fn short_http_helpers_take_extra_headers() {
    let (requests, result) = dry_run(
        r#"fn outgoing(req) {
            http_get("https://api.example/balance", #{"X-Api-Key": "k-123456789", "Accept": "application/json", "Skip": ()});
            http_post("https://api.example/send", "application/json", "{}", #{"Authorization": "Bearer t-0123456789"});
            http_post("https://api.example/form", "text/plain", "a=1", #{"Content-Type": "application/x-www-form-urlencoded"});
        }"#,
    );
    result.unwrap();
    let headers: Vec<_> = requests.iter().map(|r| r.headers.clone()).collect();
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        headers[0],
        pairs(&[("Accept", "application/json"), ("X-Api-Key", "***")])
    );
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        headers[1],
        pairs(&[
            ("Content-Type", "application/json"),
            ("Authorization", "***")
        ])
    );
    assert_eq!(
        headers[2],
        pairs(&[("Content-Type", "application/x-www-form-urlencoded")]),
        "the script's Content-Type wins"
    );
    let shown = requests[1].describe();
    assert!(shown.contains("Authorization: ***"), "{shown}");
}

#[test]
fn credential_headers_echoed_by_the_provider_never_reach_the_log() {
    let root = MgrRoot::new();
    root.write("etc/debug.conf", "gwecho 9\n");
    root.add_script(
        "gwecho",
        &format!(
            "{METADATA}\nfn outgoing(req) {{\n\
             let r = http_post(req.params.api_url + \"/send\", \"application/json\", \"{{}}\",\n\
                 #{{\"X-Api-Key\": \"Key-0f9e8d7c\", \"Authorization\": \"Bearer Tok-1a2b3c4d\"}});\n\
             fail(r.body);\n}}"
        ),
    );
    // The provider echoes both header values in its refusal.
    let fake = FakeHttp::start(|req| {
        Response::text(
            401,
            &format!(
                "bad key {} for {}",
                req.header("x-api-key").unwrap_or(""),
                req.header("authorization").unwrap_or("")
            ),
        )
    });
    let out = root.run(
        "gate/gwecho",
        &["--command", "outgoing"],
        &format!(
            "<doc><gateway><xmlparams>&lt;doc&gt;&lt;api_url&gt;{}&lt;/api_url&gt;&lt;/doc&gt;</xmlparams></gateway>\
             <message>Hi</message><user><phone>+79990000000</phone></user></doc>",
            fake.url()
        ),
    );
    let (kind, _, msg) = error_of(&out);
    assert_eq!(kind, "gateway");
    assert!(msg.contains("bad key *** for ***"), "{msg}");
    let log = root.read("var/gwecho.log");
    assert!(log.contains("http reply 401"), "{log}");
    for secret in ["Key-0f9e8d7c", "Tok-1a2b3c4d"] {
        assert!(!log.contains(secret), "{secret} in log:\n{log}");
        assert!(!stdout(&out).contains(secret));
    }
}

const FIELDS: &str = r#"fn metadata() {
    #{title: "T", notify_module: "ntsms", required_one_of: [["token", "login"]],
      fields: [
        #{name: "token", type: "password"},
        #{name: "login"},
        #{name: "route", type: "select", default_value: "sms",
          options: [#{value: "sms", label: #{en: "SMS", ru: "SMS"}}, "viber"]},
        #{name: "sender", required: true, default_value: "Shop"},
        #{name: "flash", type: "checkbox", default_value: "off"},
      ]}
}
fn outgoing(req) { #{id: `${req.params.route} ${req.params.sender} ${req.params.flash}`} }
fn check_connection(params) { if params.route != "viber" { fail(params.route); } }
"#;

#[test]
fn defaults_fill_absent_parameters_and_selects_are_checked() {
    let (_dir, gw) = gateway(FIELDS);
    let id = gw.outgoing(&input("<token>t0k</token>")).unwrap().id;
    assert_eq!(id.as_deref(), Some("sms Shop off"));
    let id = gw
        .outgoing(&input(
            "<login>me</login><route>viber</route><sender> </sender><flash>on</flash>",
        ))
        .unwrap()
        .id;
    assert_eq!(id.as_deref(), Some("viber Shop on"), "blank is absent");

    let err = gw
        .outgoing(&input("<token>t0k</token><route>telegram</route>"))
        .unwrap_err();
    assert_eq!((err.kind.as_str(), err.object.as_str()), ("value", "route"));
    assert!(err.msg.contains("use one of sms, viber"), "{}", err.msg);

    let err = gw.outgoing(&input("<route>sms</route>")).unwrap_err();
    assert_eq!(
        (err.kind.as_str(), err.object.as_str()),
        ("missed", "token")
    );
    assert!(
        err.msg.contains("one of the parameters token, login"),
        "{}",
        err.msg
    );

    // check_connection gets the defaults too.
    let settings = input("<login>me</login><route>viber</route>").settings;
    gw.check_connection(&settings).unwrap();
    let settings = input("<login>me</login>").settings;
    assert_eq!(gw.check_connection(&settings).unwrap_err().msg, "sms");
}

#[test]
fn dry_run_placeholders_respect_defaults_selects_and_one_of_groups() {
    let root = MgrRoot::new();
    let script = root.write("gwfields.rhai", FIELDS);
    let out = root.run(
        "sbin/mgrnotify",
        &[
            "send",
            script.to_str().unwrap(),
            "--to",
            "+79990000000",
            "--text",
            "Hi",
            "--dry-run",
        ],
        "",
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("warning: dry run without token: using placeholders {token}"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("the script made no HTTP request"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn regular_expressions() {
    let id = outgoing(
        r#"fn outgoing(req) {
            let sid = "AC" + "0123456789abcdef0123456789abcdef";
            let ok = regex_match("^AC[0-9a-f]{32}$", sid) && !regex_match("^AC[0-9a-f]{32}$", "AC12");
            let c = regex_captures("id=(\\d+)(;x)?", "status=OK;id=4711");
            let none = regex_captures("id=(\\d+)", "nothing here");
            #{id: `${ok} ${c[0]} ${c[1]} ${type_of(c[2])} ${type_of(none)}`}
        }"#,
    );
    assert_eq!(id, Ok(Some("true id=4711 4711 () ()".into())));

    // A bad pattern is a bug in the script: a script error with the line, which the
    // script's catch cannot turn into something else.
    let err = outgoing(
        "fn outgoing(req) {\n  try {\n    regex_match(\"(unclosed\", \"x\")\n  } catch { }\n}",
    )
    .unwrap_err();
    assert_eq!(
        (err.kind.as_str(), err.object.as_str()),
        ("script", "gwtest.rhai")
    );
    assert!(
        err.msg.starts_with("line 4,") // the metadata line comes first
            && err.msg.contains("regex_match: bad regular expression '(unclosed': unclosed group"),
        "{}",
        err.msg
    );
    // Patterns that compile to more than the size limit are refused, not run.
    let err =
        outgoing(r#"fn outgoing(req) { regex_match("\\w{1000}\\w{1000}", "x") }"#).unwrap_err();
    assert_eq!(err.kind, "script");
    assert!(err.msg.contains("size limit"), "{}", err.msg);
}

#[test]
fn check_warns_about_secret_text_fields_and_aligns_long_names() {
    let root = MgrRoot::new();
    let script = root.write(
        "gwsecrets.rhai",
        r#"fn metadata() {
    #{title: "T", notify_module: "ntsms", fields: [
        #{name: "account_sid"},
        #{name: "api_token", type: "textarea"},
        #{name: "webhook", hint: #{en: "The URL with your key", ru: "Адрес с ключом"}},
        #{name: "sender_signature_text", label: "Sender"},
        #{name: "password", type: "password"},
        #{name: "sender", hint: "Shown beside the message; включить подпись"},
    ]}
}
fn outgoing(req) {}
"#,
    );
    let out = root.run("sbin/mgrnotify", &["check", script.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for name in ["account_sid", "api_token", "webhook"] {
        assert!(
            text.contains(&format!("warning: field '{name}' looks like a secret")),
            "{name}: {text}"
        );
    }
    for name in ["sender_signature_text", "password", "'sender'"] {
        assert!(
            !text.contains(&format!("warning: field '{name}")),
            "{name}: {text}"
        );
        assert!(
            !text.contains(&format!("warning: field {name}")),
            "{name}: {text}"
        );
    }
    // Every row's type column starts at the same place, long name or not.
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("    ") && !l.trim().is_empty())
        .collect();
    assert_eq!(rows.len(), 6, "{text}");
    let type_column = |row: &str| {
        let name_end = 4 + row[4..].find(' ').unwrap();
        name_end + row[name_end..].find(|c| c != ' ').unwrap()
    };
    let columns: Vec<usize> = rows.iter().map(|r| type_column(r)).collect();
    assert!(
        columns.iter().all(|c| *c == columns[0]),
        "{columns:?}\n{text}"
    );
}

#[test]
fn help_shows_every_send_option() {
    let root = MgrRoot::new();
    let out = root.run("sbin/mgrnotify", &["--help"], "");
    assert!(out.status.success());
    let text = stdout(&out);
    for option in [
        "--to",
        "--text",
        "--subject",
        "--params",
        "--param",
        "--dry-run",
    ] {
        assert!(text.contains(option), "{option}: {text}");
    }
}
