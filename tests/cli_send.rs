//! `mgrnotify send` and `mgrnotify check`, as an operator runs them.

mod common;

use common::fake_http::{FakeHttp, Response};
use common::mgr_root::{stderr, stdout, MgrRoot};

#[test]
fn dry_run_without_credentials_prints_the_request() {
    let root = MgrRoot::new();
    let out = root.run(
        "sbin/mgrnotify",
        &[
            "send",
            "gwepochta",
            "--to",
            "+79990000000",
            "--text",
            "Hello",
            "--dry-run",
        ],
        "",
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("POST https://api.myatompark.com/members/sms/xml.php"),
        "{text}"
    );
    assert!(text.contains("Content-Type: text/xml"), "{text}");
    assert!(text.contains("<operation>SEND</operation>"), "{text}");
    assert!(text.contains("<number>79990000000</number>"), "{text}");
    assert!(text.contains("<text>Hello</text>"), "{text}");
    assert!(stderr(&out).contains("warning: dry run without login, password, sender"));
}

#[test]
fn dry_run_uses_api_url_and_redacts_the_password_from_a_params_file() {
    let root = MgrRoot::new();
    let params = root.write(
        "gw.conf",
        "# ePochta test account\nlogin = demo\npassword = Sup3r&Secret\nsender=Shop\napi_url=https://proxy.example:8443\n",
    );
    let out = root.run(
        "sbin/mgrnotify",
        &[
            "send",
            "gwepochta",
            "--to",
            "8 999 000 00 00",
            "--text",
            "Hi",
            "--params",
            params.to_str().unwrap(),
            "--dry-run",
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("POST https://proxy.example:8443/members/sms/xml.php"),
        "{text}"
    );
    assert!(text.contains("<username>demo</username>"), "{text}");
    assert!(text.contains("<password>***</password>"), "{text}");
    assert!(!text.contains("Sup3r"), "{text}");
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn send_through_a_fake_provider_with_an_xml_params_file() {
    let root = MgrRoot::new();
    let fake = FakeHttp::start(|req| {
        if req.body_text().contains("<username>demo</username>") {
            Response::xml("<RESPONSE><status>0</status><id>77</id></RESPONSE>")
        } else {
            Response::xml("<RESPONSE><status>-1</status></RESPONSE>")
        }
    });
    let params = root.write(
        "gw.xml",
        &format!(
            "<doc><login>demo</login><password>pw</password><sender>Shop</sender>\
             <api_url>{}</api_url></doc>",
            fake.url()
        ),
    );
    let args = [
        "send",
        "gwepochta",
        "--to",
        "+79990000000",
        "--text",
        "Hi",
        "--params",
        params.to_str().unwrap(),
    ];
    let out = root.run("sbin/mgrnotify", &args, "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "sent through gwepochta: provider id 77"
    );
    assert_eq!(fake.count(), 1);

    // --param overrides the file: a wrong login is refused, exit 1, provider's text.
    let mut args = args.to_vec();
    args.extend(["--param", "login=other"]);
    let out = root.run("sbin/mgrnotify", &args, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("status -1"), "{}", stderr(&out));
}

#[test]
fn send_reports_missing_parameters_and_bad_usage() {
    let root = MgrRoot::new();
    let out = root.run(
        "sbin/mgrnotify",
        &["send", "gwepochta", "--to", "+79990000000", "--text", "Hi"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("'login' is missing"),
        "{}",
        stderr(&out)
    );

    let out = root.run("sbin/mgrnotify", &["send", "gwepochta"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--to"), "{}", stderr(&out));

    let out = root.run(
        "sbin/mgrnotify",
        &["send", "gwnothere", "--to", "1", "--text", "x", "--dry-run"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no provider script"),
        "{}",
        stderr(&out)
    );

    let out = root.run("sbin/mgrnotify", &["send", "--help"], "");
    assert!(out.status.success());
    assert!(stdout(&out).contains("--params"), "{}", stdout(&out));
    assert!(stdout(&out).contains("argv"), "{}", stdout(&out));
}

#[test]
fn check_prints_a_summary_or_errors_with_lines() {
    let root = MgrRoot::new();
    let good = root.path().join("etc/mgrnotify/scripts/gwepochta.rhai");
    let out = root.run("sbin/mgrnotify", &["check", good.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("OK"), "{text}");
    assert!(text.contains("notify_module: ntsms"), "{text}");
    assert!(
        text.contains("commands:      outgoing, check_connection, formtune"),
        "{text}"
    );
    assert!(text.contains("password         password"), "{text}");

    let bad = root.write(
        "gwbad.rhai",
        "fn metadata() {\n  #{title: \"T\", notify_module: \"ntsms\"}\n}\nfn outgoing(req) {\n  let = 1;\n}\n",
    );
    let out = root.run(
        "sbin/mgrnotify",
        &["check", good.to_str().unwrap(), bad.to_str().unwrap()],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("gwepochta.rhai: OK"));
    assert!(
        stderr(&out).contains("gwbad.rhai: error: line 5, column"),
        "{}",
        stderr(&out)
    );

    let out = root.run("sbin/mgrnotify", &["check"], "");
    assert_eq!(out.status.code(), Some(2));
    let out = root.run("sbin/mgrnotify", &["check", "/nonexistent/gwx.rhai"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
}
