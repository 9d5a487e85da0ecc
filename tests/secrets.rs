//! Secrets in every spelling, through the real paths: a third-party gateway's
//! password-type parameters through `ntsms --command process`, the form `formtune`
//! reads, HTTP Basic credentials a provider echoes back, a webhook URL whose key is in
//! its path, `base64(login:password)` in a script's print, headers and failure, and a
//! secret a script derives. After each run the whole `var/` folder, stdout and stderr
//! are searched for every spelling of each secret.

mod common;

use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use common::fake_http::{FakeHttp, Response};
use common::mariadb::{add_program, notice_file, run_process, TestDb};
use common::mgr_root::{error_of, stderr, stdout, MgrRoot};

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn base64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The spellings a secret can leak in: as is, XML-escaped once and twice,
/// URL-encoded, JSON-escaped, base64.
fn spellings(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    vec![
        secret.to_owned(),
        xml_escape(secret),
        xml_escape(&xml_escape(secret)),
        url_encode(secret),
        json[1..json.len() - 1].to_owned(),
        base64(secret),
    ]
}

/// Every file below `dir`, as text.
fn files_below(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_below(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            found.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    found
}

/// None of `secrets`, in none of their spellings, in `var/`, the outputs or `extra`.
fn assert_nowhere(root: &MgrRoot, outputs: &[&Output], extra: &[&str], secrets: &[&str]) {
    let mut places = files_below(&root.path().join("var"));
    for (i, out) in outputs.iter().enumerate() {
        places.push((format!("stdout {i}"), stdout(out)));
        places.push((format!("stderr {i}"), stderr(out)));
    }
    for (i, text) in extra.iter().enumerate() {
        places.push((format!("text {i}"), (*text).to_owned()));
    }
    for secret in secrets {
        for spelling in spellings(secret) {
            for (place, text) in &places {
                assert!(
                    !text.contains(&spelling),
                    "'{spelling}' (a spelling of '{secret}') in {place}:\n{text}"
                );
            }
        }
    }
}

/// A script gateway's outgoing document with `xmlparams` (a document) and a phone.
fn outgoing_doc(module: &str, xmlparams: &str) -> String {
    format!(
        "<doc><gateway><id>3</id><gateway_module>{module}</gateway_module>\
         <xmlparams>{}</xmlparams></gateway><message>Hi</message>\
         <user><id>7</id><phone>+79990000000</phone></user><project><id>1</id></project></doc>",
        xml_escape(xmlparams)
    )
}

/// A third-party module as carelessly written as they come: its error and its stderr
/// repeat the gateway parameters it was given.
const CARELESS_GATEWAY: &str = r#"#!/bin/sh
input=$(cat)
params=$(printf '%s' "$input" | sed -n 's:.*<xmlparams>\(.*\)</xmlparams>.*:\1:p')
printf 'login failed with %s\n' "$params" >&2
printf '<doc><error type="auth" object="provider"><msg>bad credentials in %s</msg></error></doc>\n' "$params"
exit 1
"#;

/// Its plugin XML, in the seed's format: three password-type fields whose names say
/// nothing of secrets.
const CARELESS_PLUGIN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<mgrdata>
  <plugin name="gwcareless"><group>gateway</group><author>Someone</author></plugin>
  <metadata name="gateway.gwcareless">
    <form>
      <field name="login"><input type="text" name="login" required="yes"/></field>
      <field name="psw"><input type="password" name="psw" required="yes"/></field>
      <field name="pwd"><input type="password" name="pwd"/></field>
      <field name="api_id"><input type="password" name="api_id"/></field>
    </form>
  </metadata>
</mgrdata>
"#;

#[test]
fn third_party_password_fields_never_reach_err_info_or_the_log() {
    let root = MgrRoot::new();
    let db = TestDb::create();
    root.write("etc/debug.conf", "ntsms 9\n");
    add_program(&root, "gwcareless", CARELESS_GATEWAY);
    root.write("etc/xml/billmgr_mod_gwcareless.xml", CARELESS_PLUGIN);
    let (psw, pwd, api_id) = ("PswValue-7731", "Pwd&<Val>9x", "ApiId0C0FFEE42");
    db.add_gateway(
        "gwcareless",
        1,
        &format!(
            "<doc><psw>{psw}</psw><pwd>{}</pwd><api_id>{api_id}</api_id><login>shop</login></doc>",
            xml_escape(pwd)
        ),
        "on",
        "outgoing",
    );
    root.write(
        "var/notify/n1",
        &notice_file("hello", Some("+79990000001"), 1),
    );
    let id = db.add_task("n1", 0, "2026-01-01 00:00:00", false);

    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    let info = db.task(id).and_then(|t| t.err_info).unwrap_or_default();
    // The module's answer is there, its secrets are not.
    assert!(info.contains("bad credentials in"), "{info}");
    assert!(info.contains("shop"), "{info}");
    assert!(root.read("var/ntsms.log").contains("(gwcareless) failed"));
    assert_nowhere(&root, &[&out], &[&info], &[psw, pwd, api_id]);
}

#[test]
fn the_formtune_form_is_redacted_before_anything_is_logged_or_echoed() {
    let root = MgrRoot::new();
    root.write("etc/debug.conf", "gwform 9\n");
    root.add_script(
        "gwform",
        r#"fn metadata() {
               #{title: "Form", notify_module: "ntsms",
                 fields: [#{name: "login"}, #{name: "account_sid", type: "password"}]}
           }
           fn outgoing(req) {}
           fn formtune(form_xml) {
               print(form_xml);
               fail("cannot tune this form: " + form_xml);
           }"#,
    );
    // A secret by name (password), by the type the form declares (access_code) and
    // by the type the script's metadata declares (account_sid).
    let (password, access_code, sid) = ("FormPass-1234", "Code&<5678>", "SidVal-9911");
    let form = format!(
        "<doc><metadata name=\"gateway.gwform\"><form>\
         <field name=\"access_code\"><input type=\"password\" name=\"access_code\"/></field>\
         </form></metadata><login>demo</login><password>{password}</password>\
         <access_code>{}</access_code><account_sid>{sid}</account_sid></doc>",
        xml_escape(access_code)
    );
    let out = root.run("gate/gwform", &["--command", "formtune"], &form);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let (kind, _, msg) = error_of(&out);
    assert_eq!(kind, "gateway");
    assert!(msg.contains("cannot tune this form: <doc>"), "{msg}");
    assert!(msg.contains("<login>demo</login>"), "{msg}");
    assert!(root.read("var/gwform.log").contains("script print"));
    assert_nowhere(&root, &[&out], &[], &[password, access_code, sid]);
}

/// A script that authenticates with HTTP Basic and fails with the provider's answer.
const BASIC_SCRIPT: &str = r#"
fn metadata() {
    #{title: "Basic", notify_module: "ntsms",
      fields: [#{name: "login", required: true}, #{name: "password", type: "password", required: true}]}
}
fn outgoing(req) {
    let p = req.params;
    let reply = http(#{method: "POST", url: "https://api.example.com/v1/send",
                       headers: #{"Authorization": "Basic " + base64_encode(p.login + ":" + p.password)},
                       body: form_encode(#{to: req.user.phone, text: req.message})});
    if reply.status != 200 { fail(`HTTP ${reply.status}: ${reply.body}`); }
}
"#;

#[test]
fn basic_credentials_echoed_by_the_provider_are_redacted() {
    let root = MgrRoot::new();
    root.write("etc/debug.conf", "gwbasic 9\n");
    root.add_script("gwbasic", BASIC_SCRIPT);
    let (login, password) = ("demo", "S3cr3t???>>");
    let credentials = base64(&format!("{login}:{password}"));
    // The provider repeats the header it got, PHP-style (`\/`), and what it decoded.
    let fake = FakeHttp::start(|req| {
        let header = req.header("authorization").unwrap_or("").to_owned();
        let decoded = header
            .strip_prefix("Basic ")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Response::new(
            401,
            "application/json",
            format!(
                "{{\"error\":\"invalid credentials\",\"authorization\":\"{}\",\"user\":{}}}",
                header.replace('/', "\\/"),
                serde_json::to_string(&decoded).unwrap()
            ),
        )
    });
    let params = format!(
        "<doc><login>{login}</login><password>{}</password><api_url>{}</api_url></doc>",
        xml_escape(password),
        fake.url()
    );
    let out = root.run(
        "gate/gwbasic",
        &["--command", "outgoing"],
        &outgoing_doc("gwbasic", &params),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let (_, _, msg) = error_of(&out);
    assert!(
        msg.contains("HTTP 401") && msg.contains("invalid credentials"),
        "{msg}"
    );
    let sent = fake.requests()[0]
        .header("authorization")
        .map(str::to_owned);
    assert_eq!(sent, Some(format!("Basic {credentials}")));
    assert_nowhere(
        &root,
        &[&out],
        &[],
        &[password, &credentials, &credentials.replace('/', "\\/")],
    );
}

#[test]
fn a_webhook_key_in_the_url_path_is_redacted_after_api_url_rewrites_it() {
    let root = MgrRoot::new();
    root.write("etc/debug.conf", "gwhook 9\n");
    root.add_script(
        "gwhook",
        r#"fn metadata() {
               #{title: "Hook", notify_module: "ntsms",
                 fields: [#{name: "webhook", type: "password", required: true}]}
           }
           fn outgoing(req) {
               let reply = http(#{method: "POST", url: req.params.webhook,
                                  body: json_build(#{text: req.message})});
               if reply.status != 200 { fail(`webhook answered ${reply.status}: ${reply.body}`); }
           }"#,
    );
    let (team, channel, key) = ("T0A1B2C3D", "B0E4F5G6H", "Zk9Xq2Lm8Np4Rs6Tv1Wy3Za5");
    let webhook = format!("https://hooks.example.com/services/{team}/{channel}/{key}");
    // The provider names the hook it does not know; then no provider at all.
    let fake = FakeHttp::start(|req| Response::text(404, &format!("no_such_hook {}", req.path())));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut outputs = Vec::new();
    for api_url in [fake.url(), closed_url] {
        let params = format!("<doc><webhook>{webhook}</webhook><api_url>{api_url}</api_url></doc>");
        let out = root.run(
            "gate/gwhook",
            &["--command", "outgoing"],
            &outgoing_doc("gwhook", &params),
        );
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        outputs.push(out);
    }
    let (_, _, answered) = error_of(&outputs[0]);
    assert!(
        answered.contains("webhook answered 404: no_such_hook ***"),
        "{answered}"
    );
    let (_, _, refused) = error_of(&outputs[1]);
    assert!(refused.contains("connection refused"), "{refused}");
    assert_eq!(
        fake.requests()[0].path(),
        format!("/services/{team}/{channel}/{key}")
    );
    let outputs: Vec<&Output> = outputs.iter().collect();
    assert_nowhere(&root, &outputs, &[], &[&webhook, team, channel, key]);
}

#[test]
fn base64_of_login_and_password_is_redacted_in_print_headers_and_failures() {
    let root = MgrRoot::new();
    root.write("etc/debug.conf", "gwcreds 9\n");
    let script = root.write(
        "attack/gwcreds.rhai",
        r#"fn metadata() {
               #{title: "Creds", notify_module: "ntsms",
                 fields: [#{name: "login"}, #{name: "password", type: "password"}]}
           }
           fn outgoing(req) {
               let creds = base64_encode(req.params.login + ":" + req.params.password);
               print("credentials " + creds);
               http(#{method: "POST", url: "https://api.example.com/x",
                      headers: #{"X-Creds": creds}, body: ""});
               fail("refused credentials " + creds);
           }"#,
    );
    let (login, password) = ("admin", "Adm1n-Pa55");
    let params = root.write(
        "attack/params.conf",
        &format!("login={login}\npassword={password}\n"),
    );
    let out = root.run_env(
        "sbin/mgrnotify",
        &[
            "send",
            &script.display().to_string(),
            "--to",
            "+79990000000",
            "--text",
            "hi",
            "--params",
            &params.display().to_string(),
            "--dry-run",
        ],
        "",
        &[("MGR_ROOT", &root.path().display().to_string())],
    );
    let printed = stdout(&out);
    assert!(printed.contains("X-Creds: ***"), "{printed}");
    assert!(printed.contains("refused credentials ***"), "{printed}");
    assert!(root
        .read("var/gwcreds.log")
        .contains("script print: credentials ***"));
    let credentials = base64(&format!("{login}:{password}"));
    assert_nowhere(&root, &[&out], &[], &[password, &credentials]);
}

#[test]
fn a_secret_the_script_derives_is_redacted_once_registered() {
    let root = MgrRoot::new();
    root.write("etc/debug.conf", "gwsig 9\n");
    root.add_script(
        "gwsig",
        r#"fn metadata() {
               #{title: "Sig", notify_module: "ntsms",
                 fields: [#{name: "key", type: "password", required: true}]}
           }
           fn outgoing(req) {
               let signature = secret(sha256(req.params.key + req.message));
               print("signed " + signature);
               fail("the provider refused signature " + signature);
           }"#,
    );
    let out = root.run(
        "gate/gwsig",
        &["--command", "outgoing"],
        &outgoing_doc("gwsig", "<doc><key>SigKey-4242</key></doc>"),
    );
    let (kind, _, msg) = error_of(&out);
    assert_eq!(
        (kind.as_str(), msg.as_str()),
        ("gateway", "the provider refused signature ***")
    );
    assert!(root
        .read("var/gwsig.log")
        .contains("script print: signed ***"));
    let signature = {
        use sha2::Digest;
        sha2::Sha256::digest("SigKey-4242Hi")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_nowhere(&root, &[&out], &[], &["SigKey-4242", &signature]);
}
