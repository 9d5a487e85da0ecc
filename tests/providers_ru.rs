//! The bundled Russian-market provider scripts (SMS.ru, SMSC.ru, SMS Aero, MTS Exolve,
//! Devino Telecom, SMS Traffic, P1SMS), each against a fake of its public HTTP API on
//! loopback, run as BILLmanager runs them (`gate/gw<name> --command ...`):
//! - the send request's method, path, auth, content type and body fields are the
//!   documented ones, the number normalised, the Cyrillic text intact;
//! - the provider's message id comes back; `check_connection` makes the documented
//!   balance call;
//! - a documented error answer becomes error XML carrying the provider's code and text;
//! - with the log at level 9 the secret never reaches `var/`, stdout or stderr in any
//!   spelling, even though the fake echoes it back in its refusal;
//! - `mgrnotify send --dry-run` prints the exact request with the secret masked.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value};

use common::fake_http::{FakeHttp, Request, Response};
use common::mgr_root::{error_of, stderr, stdout, MgrRoot};

/// Every provider's key, token or password: characters that each encoding spells
/// differently (space, + / = & " < >). ASCII: HTTP header values are.
const SECRET: &str = "Zx9 +/=&\"Qk#1<>";
/// The message, with the Cyrillic a notice has and characters forms and XML escape.
const TEXT: &str = "Счёт #42 оплачен & спасибо";
/// What the user's phone normalises to for every provider here.
const NUMBER: &str = "79990000000";

type Check = fn(&Request) -> Result<(), String>;

/// One provider script and the public API it must speak.
struct Provider {
    role: &'static str,
    /// Its gateway parameters; the value `SECRET` stands for the secret.
    params: &'static [(&'static str, &'static str)],
    /// Checks a send request against the API description.
    send: Check,
    /// The provider's answer to a valid send request, and the id it carries.
    sent: fn() -> Response,
    id: &'static str,
    /// A documented refusal (echoing the credentials, as careless APIs do) and what
    /// the operator must read in the error.
    refuse: fn(&Request) -> Response,
    refusal_words: &'static [&'static str],
    /// The balance (or account) call of check_connection, and its answer.
    balance: Option<(Check, fn() -> Response)>,
    /// What the dry run must print: method and URL, and the masked credential.
    dry_run_words: &'static [&'static str],
}

// ---- request checks ----

fn expect(what: &str, got: impl AsRef<str>, want: &str) -> Result<(), String> {
    if got.as_ref() == want {
        Ok(())
    } else {
        Err(format!("{what}: {:?}, want {want:?}", got.as_ref()))
    }
}

fn method_path(req: &Request, method: &str, path: &str) -> Result<(), String> {
    expect("method", &req.method, method)?;
    expect("path", req.path(), path)
}

fn content_type(req: &Request, want: &str) -> Result<(), String> {
    let got = req.header("content-type").unwrap_or("");
    if got.starts_with(want) {
        Ok(())
    } else {
        Err(format!("content-type {got:?}, want {want}"))
    }
}

/// The form fields must be exactly `want` (in any order).
fn form_is(fields: &[(String, String)], want: &[(&str, &str)]) -> Result<(), String> {
    let mut got: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut want = want.to_vec();
    got.sort();
    want.sort();
    if got == want {
        Ok(())
    } else {
        Err(format!("form fields {got:?}, want {want:?}"))
    }
}

fn json_body(req: &Request) -> Result<Value, String> {
    content_type(req, "application/json")?;
    req.json()
        .ok_or_else(|| format!("body is not JSON: {}", req.body_text()))
}

fn json_is(got: &Value, want: Value) -> Result<(), String> {
    if *got == want {
        Ok(())
    } else {
        Err(format!("JSON body {got}, want {want}"))
    }
}

fn auth_is(req: &Request, want: &str) -> Result<(), String> {
    expect(
        "authorization",
        req.header("authorization").unwrap_or(""),
        want,
    )
}

/// What a careless provider echoes back: the request's body and its Authorization
/// header.
fn echo(req: &Request) -> String {
    format!(
        "{} {}",
        req.body_text(),
        req.header("authorization").unwrap_or("")
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---- the providers ----

const SMSRU: Provider = Provider {
    role: "gwsmsru",
    params: &[("api_id", SECRET), ("sender", "Shop")],
    send: |req| {
        method_path(req, "POST", "/sms/send")?;
        content_type(req, "application/x-www-form-urlencoded")?;
        form_is(
            &req.form(),
            &[
                ("api_id", SECRET),
                ("to", NUMBER),
                ("msg", TEXT),
                ("from", "Shop"),
                ("json", "1"),
            ],
        )
    },
    sent: || {
        Response::json(
            &json!({"status": "OK", "status_code": 100, "balance": 4122.56,
                "sms": {NUMBER: {"status": "OK", "status_code": 100, "sms_id": "000000-10000001"}}})
            .to_string(),
        )
    },
    id: "000000-10000001",
    refuse: |req| {
        Response::json(
            &json!({"status": "ERROR", "status_code": 200,
                "status_text": format!("Неправильный api_id: {}", echo(req))})
            .to_string(),
        )
    },
    refusal_words: &["SMS.ru error 200", "Неправильный api_id"],
    balance: Some((
        |req| {
            method_path(req, "POST", "/my/balance")?;
            content_type(req, "application/x-www-form-urlencoded")?;
            form_is(&req.form(), &[("api_id", SECRET), ("json", "1")])
        },
        || Response::json(r#"{"status": "OK", "status_code": 100, "balance": 12.5}"#),
    )),
    dry_run_words: &["POST https://sms.ru/sms/send", "api_id=***"],
};

const SMSC: Provider = Provider {
    role: "gwsmsc",
    params: &[("login", "demo"), ("password", SECRET), ("sender", "Shop")],
    send: |req| {
        method_path(req, "POST", "/sys/send.php")?;
        content_type(req, "application/x-www-form-urlencoded")?;
        form_is(
            &req.form(),
            &[
                ("login", "demo"),
                ("psw", SECRET),
                ("phones", NUMBER),
                ("mes", TEXT),
                ("sender", "Shop"),
                ("charset", "utf-8"),
                ("fmt", "3"),
            ],
        )
    },
    sent: || Response::json(r#"{"id": 4711, "cnt": 1}"#),
    id: "4711",
    refuse: |req| {
        Response::json(
            &json!({"error": format!("authorise error: {}", echo(req)), "error_code": 2})
                .to_string(),
        )
    },
    refusal_words: &[
        "SMSC.ru error 2",
        "wrong login or password",
        "authorise error",
    ],
    balance: Some((
        |req| {
            method_path(req, "POST", "/sys/balance.php")?;
            form_is(
                &req.form(),
                &[("login", "demo"), ("psw", SECRET), ("fmt", "3")],
            )
        },
        || Response::json(r#"{"balance": "10.50"}"#),
    )),
    dry_run_words: &["POST https://smsc.ru/sys/send.php", "psw=***"],
};

fn smsaero_auth() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("shop@example.com:{SECRET}"))
    )
}

const SMSAERO: Provider = Provider {
    role: "gwsmsaero",
    params: &[
        ("email", "shop@example.com"),
        ("api_key", SECRET),
        ("sign", "Shop"),
    ],
    send: |req| {
        method_path(req, "POST", "/v2/sms/send")?;
        auth_is(req, &smsaero_auth())?;
        json_is(
            &json_body(req)?,
            json!({"number": NUMBER, "text": TEXT, "sign": "Shop"}),
        )
    },
    sent: || {
        Response::json(
            r#"{"success": true, "data": {"id": 12345, "from": "Shop", "number": "79990000000",
                "status": 0, "extendStatus": "queue", "channel": "FREE SIGN", "cost": 4.49}, "message": null}"#,
        )
    },
    id: "12345",
    refuse: |req| {
        Response::new(
            401,
            "application/json",
            json!({"success": false, "data": null,
                "message": format!("Unauthorized: {}", echo(req))})
            .to_string(),
        )
    },
    refusal_words: &["SMS Aero refused (HTTP 401)", "Unauthorized"],
    balance: Some((
        |req| {
            method_path(req, "POST", "/v2/balance")?;
            auth_is(req, &smsaero_auth())
        },
        || Response::json(r#"{"success": true, "data": {"balance": 337.03}, "message": null}"#),
    )),
    dry_run_words: &[
        "POST https://gate.smsaero.ru/v2/sms/send",
        "Authorization: ***",
    ],
};

const EXOLVE: Provider = Provider {
    role: "gwexolve",
    params: &[("api_key", SECRET), ("sender", "MyShop")],
    send: |req| {
        method_path(req, "POST", "/messaging/v1/SendSMS")?;
        auth_is(req, &format!("Bearer {SECRET}"))?;
        json_is(
            &json_body(req)?,
            json!({"number": "MyShop", "destination": NUMBER, "text": TEXT}),
        )
    },
    sent: || Response::json(r#"{"message_id": "539127061928372"}"#),
    id: "539127061928372",
    refuse: |req| {
        Response::new(
            401,
            "application/json",
            json!({"error": {"message": format!("invalid token {}", echo(req)), "details": null}})
                .to_string(),
        )
    },
    refusal_words: &["Exolve refused (HTTP 401)", "invalid token"],
    balance: None,
    dry_run_words: &[
        "POST https://api.exolve.ru/messaging/v1/SendSMS",
        "Authorization: ***",
    ],
};

const DEVINO: Provider = Provider {
    role: "gwdevino",
    params: &[("api_key", SECRET), ("sender", "MyShop")],
    send: |req| {
        method_path(req, "POST", "/sms/messages")?;
        auth_is(req, &format!("Key {SECRET}"))?;
        json_is(
            &json_body(req)?,
            json!({"messages": [{"from": "MyShop", "to": NUMBER, "text": TEXT}]}),
        )
    },
    sent: || Response::json(r#"{"result": [{"code": "OK", "messageId": "3a5e0c1f-0001"}]}"#),
    id: "3a5e0c1f-0001",
    refuse: |req| {
        Response::new(
            401,
            "application/json",
            json!({"code": "UNAUTHORIZED", "description": format!("invalid API key {}", echo(req))})
                .to_string(),
        )
    },
    refusal_words: &["Devino refused the API key (HTTP 401)", "invalid API key"],
    balance: Some((
        |req| {
            method_path(req, "GET", "/billing-api/companies/current/account")?;
            auth_is(req, &format!("Key {SECRET}"))
        },
        || Response::json(r#"{"result": {"account": {"companyId": 1, "balance": 100.5}}}"#),
    )),
    dry_run_words: &[
        "POST https://api.devino.online/sms/messages",
        "Authorization: ***",
    ],
};

const SMSTRAFFIC: Provider = Provider {
    role: "gwsmstraffic",
    params: &[
        ("login", "demo"),
        ("password", SECRET),
        ("originator", "Shop"),
    ],
    send: |req| {
        method_path(req, "POST", "/multi.php")?;
        content_type(req, "application/x-www-form-urlencoded")?;
        form_is(
            &req.form(),
            &[
                ("login", "demo"),
                ("password", SECRET),
                ("phones", NUMBER),
                ("message", TEXT),
                ("rus", "5"),
                ("originator", "Shop"),
                ("want_sms_ids", "1"),
            ],
        )
    },
    sent: || {
        Response::xml(
            "<?xml version=\"1.0\"?><reply><result>OK</result><code>0</code>\
             <description>queued 1 messages</description><message_infos><message_info>\
             <phone>79990000000</phone><sms_id>1000001</sms_id></message_info></message_infos></reply>",
        )
    },
    id: "1000001",
    refuse: |req| {
        Response::xml(&format!(
            "<reply><result>ERROR</result><code>401</code>\
             <description>Login or password incorrect: {}</description></reply>",
            xml_escape(&echo(req))
        ))
    },
    refusal_words: &["SMS Traffic error 401", "Login or password incorrect"],
    balance: Some((
        |req| {
            method_path(req, "POST", "/multi.php")?;
            form_is(
                &req.form(),
                &[
                    ("login", "demo"),
                    ("password", SECRET),
                    ("operation", "account"),
                ],
            )
        },
        || Response::xml("<reply><account>120</account></reply>"),
    )),
    dry_run_words: &["POST https://api.smstraffic.ru/multi.php", "password=***"],
};

const P1SMS: Provider = Provider {
    role: "gwp1sms",
    params: &[("api_key", SECRET), ("sender", "Shop")],
    send: |req| {
        method_path(req, "POST", "/apiSms/create")?;
        json_is(
            &json_body(req)?,
            json!({"apiKey": SECRET,
                "sms": [{"channel": "char", "sender": "Shop", "phone": NUMBER, "text": TEXT}]}),
        )
    },
    sent: || {
        Response::json(
            r#"{"status": "success", "data": [{"id": 510506708, "status": "sent", "phone": "79990000000"}]}"#,
        )
    },
    id: "510506708",
    refuse: |req| {
        Response::json(
            // The key as the provider read it (echoing the whole JSON body inside a
            // JSON string would escape it twice, a spelling no provider uses).
            &json!({"status": "error", "message": format!("Неверный apiKey: {}",
                req.json().and_then(|b| b["apiKey"].as_str().map(str::to_owned)).unwrap_or_default())})
            .to_string(),
        )
    },
    refusal_words: &["P1SMS refused", "Неверный apiKey"],
    balance: Some((
        |req| {
            method_path(req, "GET", "/apiUsers/getUserBalanceInfo")?;
            form_is(&req.query_fields(), &[("apiKey", SECRET)])
        },
        || Response::json(r#"{"status": "success", "data": "15.0000"}"#),
    )),
    dry_run_words: &[
        "POST https://admin.p1sms.ru/apiSms/create",
        r#""apiKey":"***""#,
    ],
};

// ---- the run ----

/// The xmlparams document of the provider's gateway, pointed at `api_url`.
fn xmlparams(p: &Provider, api_url: &str) -> String {
    let mut doc = String::from("<doc>");
    for (name, value) in p.params {
        doc.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
    }
    doc.push_str(&format!("<api_url>{api_url}</api_url></doc>"));
    doc
}

fn outgoing_doc(p: &Provider, api_url: &str) -> String {
    format!(
        "<doc><gateway><id>3</id><gateway_module>{}</gateway_module><xmlparams>{}</xmlparams></gateway>\
         <message>{}</message><subject>S</subject><user><id>7</id><phone>+7 (999) 000-00-00</phone></user>\
         <project><id>1</id></project></doc>",
        p.role,
        xml_escape(&xmlparams(p, api_url)),
        xml_escape(TEXT)
    )
}

/// Every spelling a secret could leak in.
fn spellings(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    vec![
        secret.to_owned(),
        mgrnotify::script::helpers::url_encode(secret),
        mgrnotify::script::helpers::url_encode(secret).replace("%20", "+"),
        base64::engine::general_purpose::STANDARD.encode(secret),
        json[1..json.len() - 1].to_owned(),
        xml_escape(secret),
        // Fragments: a partly redacted secret is a leak too.
        "Zx9".to_owned(),
        "Qk#1".to_owned(),
    ]
}

fn assert_no_secret(p: &Provider, place: &str, text: &str) {
    for spelling in spellings(SECRET) {
        assert!(
            !text.contains(&spelling),
            "{}: the secret as {spelling:?} in {place}:\n{text}",
            p.role
        );
    }
}

/// Runs one provider through send, check_connection, a refusal and a dry run.
fn exercise(p: &Provider) {
    let root = MgrRoot::new();
    root.write("etc/debug.conf", &format!("{} 9\n", p.role));
    let refuse = Arc::new(AtomicBool::new(false));
    let fake = {
        let refuse = refuse.clone();
        let (send, sent, refuse_with, balance) = (p.send, p.sent, p.refuse, p.balance);
        FakeHttp::start(move |req| {
            let is_balance = balance.is_some_and(|(check, _)| check(req).is_ok());
            if is_balance {
                return (balance.unwrap().1)();
            }
            match send(req) {
                Err(why) => Response::text(400, &format!("fake provider: bad request: {why}")),
                Ok(()) if refuse.load(Ordering::SeqCst) => refuse_with(req),
                Ok(()) => sent(),
            }
        })
    };
    let gate = format!("gate/{}", p.role);
    let mut outputs = Vec::new();

    let out = root.run(
        &gate,
        &["--command", "outgoing"],
        &outgoing_doc(p, &fake.url()),
    );
    assert!(
        out.status.success(),
        "{}: {}{}",
        p.role,
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        stdout(&out).trim(),
        format!("<doc><id>{}</id></doc>", p.id),
        "{}",
        p.role
    );
    assert_eq!(fake.count(), 1, "{}", p.role);
    outputs.push(out);

    if let Some((check, _)) = p.balance {
        let form = format!(
            "<doc><xmlparams>{}</xmlparams></doc>",
            xml_escape(&xmlparams(p, &fake.url()))
        );
        let out = root.run(&gate, &["--command", "check_connection"], &form);
        assert!(out.status.success(), "{}: {}", p.role, stdout(&out));
        // The protocol: the form comes back as it was sent, credentials and all.
        assert_eq!(stdout(&out), form, "{}", p.role);
        assert_no_secret(p, "stderr", &stderr(&out));
        let last = fake.requests().pop().unwrap();
        assert_eq!(check(&last), Ok(()), "{}", p.role);
    } else {
        let out = root.run(&gate, &["--command", "features"], "");
        assert!(
            !stdout(&out).contains("check_connection"),
            "{}: {}",
            p.role,
            stdout(&out)
        );
    }

    refuse.store(true, Ordering::SeqCst);
    let out = root.run(
        &gate,
        &["--command", "outgoing"],
        &outgoing_doc(p, &fake.url()),
    );
    assert_eq!(out.status.code(), Some(1), "{}: {}", p.role, stdout(&out));
    let (kind, object, msg) = error_of(&out);
    assert_eq!(
        (kind.as_str(), object.as_str()),
        ("gateway", p.role),
        "{msg}"
    );
    for word in p.refusal_words {
        assert!(msg.contains(word), "{}: '{word}' not in: {msg}", p.role);
    }
    assert!(
        msg.contains("***"),
        "{}: the echo is redacted: {msg}",
        p.role
    );
    outputs.push(out);

    // The dry run: the real endpoint, the secret masked.
    let params: String = p
        .params
        .iter()
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect();
    let file = root.write("gateway.conf", &params);
    let out = root.run(
        "sbin/mgrnotify",
        &[
            "send",
            p.role,
            "--to",
            "+7 (999) 000-00-00",
            "--text",
            TEXT,
            "--params",
            file.to_str().unwrap(),
            "--dry-run",
        ],
        "",
    );
    assert!(out.status.success(), "{}: {}", p.role, stderr(&out));
    let text = stdout(&out);
    for word in p.dry_run_words {
        assert!(text.contains(word), "{}: '{word}' not in:\n{text}", p.role);
    }
    assert!(text.contains(NUMBER), "{}: {text}", p.role);
    outputs.push(out);

    let log = root.read(&format!("var/{}.log", p.role));
    assert!(
        log.contains("http request") && log.contains("http reply"),
        "{}: the log at level 9 shows the exchanges:\n{log}",
        p.role
    );
    for entry in std::fs::read_dir(root.path().join("var"))
        .unwrap()
        .flatten()
    {
        if entry.path().is_file() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert_no_secret(p, &entry.path().display().to_string(), &text);
        }
    }
    for out in &outputs {
        assert_no_secret(p, "stdout", &stdout(out));
        assert_no_secret(p, "stderr", &stderr(out));
    }
}

#[test]
fn smsru() {
    exercise(&SMSRU);
}

#[test]
fn smsc() {
    exercise(&SMSC);
}

#[test]
fn smsaero() {
    exercise(&SMSAERO);
}

#[test]
fn exolve() {
    exercise(&EXOLVE);
}

#[test]
fn devino() {
    exercise(&DEVINO);
}

#[test]
fn smstraffic() {
    exercise(&SMSTRAFFIC);
}

#[test]
fn p1sms() {
    exercise(&P1SMS);
}
