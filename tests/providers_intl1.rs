//! The bundled international provider scripts, group 1 (Twilio, Vonage, Plivo, Infobip,
//! Sinch, MessageBird), each against a fake of its public HTTP API on loopback, run as
//! BILLmanager runs them (`gate/gw<name> --command ...`):
//! - the send request's method, path, auth, content type and body fields are the
//!   documented ones, the number normalised the way the provider wants it, the Cyrillic
//!   text intact and flagged where the API needs a flag;
//! - the provider's message id comes back; `check_connection` makes the documented
//!   balance or account call;
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

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";

const TWILIO: Provider = Provider {
    role: "gwtwilio",
    params: &[
        ("account_sid", TWILIO_SID),
        ("auth_token", SECRET),
        ("from", "+15017122661"),
    ],
    send: |req| {
        method_path(
            req,
            "POST",
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
        )?;
        auth_is(req, &basic(TWILIO_SID, SECRET))?;
        content_type(req, "application/x-www-form-urlencoded")?;
        form_is(
            &req.form(),
            &[
                ("To", "+79990000000"),
                ("From", "+15017122661"),
                ("Body", TEXT),
            ],
        )
    },
    sent: || {
        Response::new(
            201,
            "application/json",
            json!({"sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "status": "queued",
                "to": "+79990000000", "from": "+15017122661", "body": TEXT, "num_segments": "1",
                "error_code": null, "error_message": null, "account_sid": TWILIO_SID})
            .to_string(),
        )
    },
    id: "SM1f0e8ae6ade43cb3c0ce4525424e404f",
    refuse: |req| {
        Response::new(
            401,
            "application/json",
            json!({"code": 20003, "message": format!("Authenticate {}", echo(req)),
                "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
            .to_string(),
        )
    },
    refusal_words: &[
        "Twilio error 20003 (HTTP 401)",
        "wrong Account SID or Auth Token",
        "Authenticate",
    ],
    balance: Some((
        |req| {
            method_path(
                req,
                "GET",
                "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef.json",
            )?;
            auth_is(req, &basic(TWILIO_SID, SECRET))
        },
        || {
            Response::json(
                &json!({"sid": TWILIO_SID, "friendly_name": "Shop", "status": "active", "type": "Full"})
                    .to_string(),
            )
        },
    )),
    dry_run_words: &[
        "POST https://api.twilio.com/2010-04-01/Accounts/***/Messages.json",
        "Authorization: ***",
        "To=%2B79990000000",
    ],
};

const VONAGE: Provider = Provider {
    role: "gwvonage",
    params: &[
        ("api_key", "a1b2c3d4"),
        ("api_secret", SECRET),
        ("from", "Shop"),
    ],
    send: |req| {
        method_path(req, "POST", "/sms/json")?;
        content_type(req, "application/x-www-form-urlencoded")?;
        form_is(
            &req.form(),
            &[
                ("api_key", "a1b2c3d4"),
                ("api_secret", SECRET),
                ("from", "Shop"),
                ("to", NUMBER),
                ("text", TEXT),
                // Cyrillic is outside GSM 03.38: without the flag Vonage mangles it.
                ("type", "unicode"),
            ],
        )
    },
    sent: || {
        Response::json(
            r#"{"message-count": "1", "messages": [{"to": "79990000000",
                "message-id": "0A0000000123ABCD1", "status": "0", "remaining-balance": "3.14159265",
                "message-price": "0.03330000", "network": "25001"}]}"#,
        )
    },
    id: "0A0000000123ABCD1",
    refuse: |req| {
        // Vonage refuses with HTTP 200 and the status in the message report.
        Response::json(
            &json!({"message-count": "1", "messages": [{"status": "4",
                "error-text": format!("Bad Credentials {}", echo(req))}]})
            .to_string(),
        )
    },
    refusal_words: &["Vonage error 4", "invalid credentials", "Bad Credentials"],
    balance: Some((
        |req| {
            method_path(req, "GET", "/account/get-balance")?;
            auth_is(req, &basic("a1b2c3d4", SECRET))
        },
        || Response::json(r#"{"value": 10.28, "autoReload": false}"#),
    )),
    dry_run_words: &[
        "POST https://rest.nexmo.com/sms/json",
        "api_secret=***",
        "type=unicode",
    ],
};

const PLIVO_ID: &str = "MA2025RK4E639VJFZAGV";

const PLIVO: Provider = Provider {
    role: "gwplivo",
    params: &[
        ("auth_id", PLIVO_ID),
        ("auth_token", SECRET),
        ("src", "14155551234"),
    ],
    send: |req| {
        method_path(req, "POST", "/v1/Account/MA2025RK4E639VJFZAGV/Message/")?;
        auth_is(req, &basic(PLIVO_ID, SECRET))?;
        json_is(
            &json_body(req)?,
            json!({"src": "14155551234", "dst": NUMBER, "text": TEXT}),
        )
    },
    sent: || {
        Response::new(
            202,
            "application/json",
            r#"{"api_id": "db342550-7f1d-11e1-8ea7-1231380bc196", "message": "message(s) queued",
                "message_uuid": ["db3ce55a-7f1d-11e1-8ea7-1231380bc196"]}"#,
        )
    },
    id: "db3ce55a-7f1d-11e1-8ea7-1231380bc196",
    refuse: |req| {
        Response::new(
            401,
            "application/json",
            json!({"api_id": "4f0c4d12-0000-11e1-8ea7-1231380bc196",
                "error": format!("Could not verify your access level {}", echo(req))})
            .to_string(),
        )
    },
    refusal_words: &[
        "Plivo refused (HTTP 401: authentication failed",
        "Could not verify your access level",
    ],
    balance: Some((
        |req| {
            method_path(req, "GET", "/v1/Account/MA2025RK4E639VJFZAGV/")?;
            auth_is(req, &basic(PLIVO_ID, SECRET))
        },
        || {
            Response::json(
                r#"{"account_type": "standard", "api_id": "150892a0-922a-11e7-b6f4-061564b78b75",
                    "auth_id": "MA2025RK4E639VJFZAGV", "billing_mode": "prepaid", "cash_credits": "1.80900"}"#,
            )
        },
    )),
    dry_run_words: &[
        "POST https://api.plivo.com/v1/Account/***/Message/",
        "Authorization: ***",
    ],
};

const INFOBIP: Provider = Provider {
    role: "gwinfobip",
    params: &[
        ("base_url", "https://abc123.api.infobip.com/"),
        ("api_key", SECRET),
        ("sender", "Shop"),
    ],
    send: |req| {
        method_path(req, "POST", "/sms/3/messages")?;
        auth_is(req, &format!("App {SECRET}"))?;
        json_is(
            &json_body(req)?,
            json!({"messages": [{"sender": "Shop", "destinations": [{"to": NUMBER}],
                "content": {"text": TEXT}}]}),
        )
    },
    sent: || {
        Response::json(
            r#"{"bulkId": "2034072219640523072", "messages": [{"messageId": "2250be2d4219-3af1-78856-aabe-1362af1edfd2",
                "status": {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
                "description": "Message sent to next instance"}, "destination": "79990000000",
                "details": {"messageCount": 1}}]}"#,
        )
    },
    id: "2250be2d4219-3af1-78856-aabe-1362af1edfd2",
    refuse: |req| {
        Response::new(
            401,
            "application/json",
            json!({"requestError": {"serviceException": {"messageId": "UNAUTHORIZED",
                "text": format!("Invalid login details {}", echo(req))}}})
            .to_string(),
        )
    },
    refusal_words: &[
        "Infobip refused (HTTP 401)",
        "UNAUTHORIZED",
        "Invalid login details",
    ],
    balance: Some((
        |req| {
            method_path(req, "GET", "/account/1/balance")?;
            auth_is(req, &format!("App {SECRET}"))
        },
        || Response::json(r#"{"balance": 47.79134, "currency": "EUR"}"#),
    )),
    dry_run_words: &[
        // The base URL as pasted, with scheme and slash, becomes the host.
        "POST https://abc123.api.infobip.com/sms/3/messages",
        "Authorization: ***",
    ],
};

const SINCH: Provider = Provider {
    role: "gwsinch",
    params: &[
        ("region", "eu"),
        ("service_plan_id", "jd63jf88477ll123ab4567cd89012ef3"),
        ("api_token", SECRET),
        ("sender", "Shop"),
    ],
    send: |req| {
        method_path(
            req,
            "POST",
            "/xms/v1/jd63jf88477ll123ab4567cd89012ef3/batches",
        )?;
        auth_is(req, &format!("Bearer {SECRET}"))?;
        json_is(
            &json_body(req)?,
            json!({"from": "Shop", "to": ["+79990000000"], "body": TEXT}),
        )
    },
    sent: || {
        Response::new(
            201,
            "application/json",
            json!({"id": "01FC66621XXXXX119Z8PMV1QPQ", "to": ["+79990000000"], "from": "Shop",
                "canceled": false, "body": TEXT, "type": "mt_text",
                "created_at": "2026-11-27T10:00:00.000Z", "modified_at": "2026-11-27T10:00:00.000Z",
                "delivery_report": "none"})
            .to_string(),
        )
    },
    id: "01FC66621XXXXX119Z8PMV1QPQ",
    refuse: |req| {
        Response::new(
            400,
            "application/json",
            json!({"code": "syntax_invalid_parameter_format",
                "text": format!("Invalid MSISDN in to {}", echo(req))})
            .to_string(),
        )
    },
    refusal_words: &[
        "Sinch error syntax_invalid_parameter_format (HTTP 400)",
        "wrong format",
        "Invalid MSISDN",
    ],
    balance: Some((
        |req| {
            method_path(
                req,
                "GET",
                "/xms/v1/jd63jf88477ll123ab4567cd89012ef3/batches",
            )?;
            form_is(&req.query_fields(), &[("page_size", "1")])?;
            auth_is(req, &format!("Bearer {SECRET}"))
        },
        || Response::json(r#"{"count": 0, "page": 0, "page_size": 1, "batches": []}"#),
    )),
    dry_run_words: &[
        "POST https://eu.sms.api.sinch.com/xms/v1/jd63jf88477ll123ab4567cd89012ef3/batches",
        "Authorization: ***",
    ],
};

const MESSAGEBIRD: Provider = Provider {
    role: "gwmessagebird",
    params: &[("access_key", SECRET), ("originator", "Shop")],
    send: |req| {
        method_path(req, "POST", "/messages")?;
        auth_is(req, &format!("AccessKey {SECRET}"))?;
        json_is(
            &json_body(req)?,
            // "plain", the default, is GSM 03.38 only: Cyrillic needs "auto" (or "unicode").
            json!({"originator": "Shop", "recipients": [NUMBER], "body": TEXT, "datacoding": "auto"}),
        )
    },
    sent: || {
        Response::new(
            201,
            "application/json",
            json!({"id": "e8077d803532c0b5937c639b60216938",
                "href": "https://rest.messagebird.com/messages/e8077d803532c0b5937c639b60216938",
                "direction": "mt", "type": "sms", "originator": "Shop", "body": TEXT,
                "datacoding": "unicode", "recipients": {"totalCount": 1, "totalSentCount": 1,
                "items": [{"recipient": 79990000000_u64, "status": "sent"}]}})
            .to_string(),
        )
    },
    id: "e8077d803532c0b5937c639b60216938",
    refuse: |req| {
        Response::new(
            401,
            "application/json",
            json!({"errors": [{"code": 2, "parameter": "access_key",
                "description": format!("Request not allowed (incorrect access_key) {}", echo(req))}]})
            .to_string(),
        )
    },
    refusal_words: &[
        "MessageBird error 2 (HTTP 401)",
        "wrong access key",
        "Request not allowed",
    ],
    balance: Some((
        |req| {
            method_path(req, "GET", "/balance")?;
            auth_is(req, &format!("AccessKey {SECRET}"))
        },
        || Response::json(r#"{"payment": "prepaid", "type": "euros", "amount": 103}"#),
    )),
    dry_run_words: &[
        "POST https://rest.messagebird.com/messages",
        "Authorization: ***",
        r#""datacoding":"auto""#,
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
fn twilio() {
    exercise(&TWILIO);
}

#[test]
fn vonage() {
    exercise(&VONAGE);
}

#[test]
fn plivo() {
    exercise(&PLIVO);
}

#[test]
fn infobip() {
    exercise(&INFOBIP);
}

#[test]
fn sinch() {
    exercise(&SINCH);
}

#[test]
fn messagebird() {
    exercise(&MESSAGEBIRD);
}

// ---- provider-specific rules ----

/// `mgrnotify send <role> --dry-run` with `params` and `text`: its stdout.
fn dry_run(root: &MgrRoot, role: &str, params: &[(&str, &str)], text: &str) -> String {
    let lines: String = params
        .iter()
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect();
    let file = root.write("gateway.conf", &lines);
    let out = root.run(
        "sbin/mgrnotify",
        &[
            "send",
            role,
            "--to",
            "+7 (999) 000-00-00",
            "--text",
            text,
            "--params",
            file.to_str().unwrap(),
            "--dry-run",
        ],
        "",
    );
    assert!(out.status.success(), "{role}: {}", stderr(&out));
    stdout(&out)
}

/// Vonage sends `text` as GSM-7 unless told `type=unicode`: the flag goes exactly with a
/// character outside GSM 03.38 (its extension table included), so Latin messages keep
/// 160 characters a part.
#[test]
fn vonage_flags_unicode_only_outside_gsm7() {
    let root = MgrRoot::new();
    let params = [
        ("api_key", "a1b2c3d4"),
        ("api_secret", SECRET),
        ("from", "Shop"),
    ];
    for (text, unicode) in [
        (
            "Invoice #42 paid: 10 € [thanks] {ok} ~^|\\ ÄÖÜ ñ é @ £ ¥",
            false,
        ),
        ("Счёт оплачен", true),
        ("Invoice paid ✓", true),
        ("naïve", true),
    ] {
        let out = dry_run(&root, "gwvonage", &params, text);
        assert_eq!(out.contains("type=unicode"), unicode, "{text:?}:\n{out}");
    }
}

/// With a Messaging Service SID the service picks the sender: the request carries
/// MessagingServiceSid (masked, it is an SID) and not the form's From as well.
#[test]
fn twilio_messaging_service_instead_of_from() {
    let root = MgrRoot::new();
    let out = dry_run(
        &root,
        "gwtwilio",
        &[
            ("account_sid", TWILIO_SID),
            ("auth_token", SECRET),
            ("from", "+15017122661"),
            (
                "messaging_service_sid",
                "MG0123456789abcdef0123456789abcdef",
            ),
        ],
        "Hello",
    );
    assert!(out.contains("MessagingServiceSid=***"), "{out}");
    assert!(!out.contains("From="), "{out}");
}

/// check_connection refuses a malformed account id with a clear error before any
/// request, instead of a provider's puzzling 404.
#[test]
fn malformed_account_ids_fail_the_check_without_a_request() {
    let root = MgrRoot::new();
    let fake = FakeHttp::start(|_| Response::json("{}"));
    for (role, params, words) in [
        (
            "gwtwilio",
            vec![
                ("account_sid", "SK0123456789abcdef0123456789abcdef"),
                ("auth_token", SECRET),
                ("from", "+15017122661"),
            ],
            "Account SID must be AC",
        ),
        (
            "gwplivo",
            vec![("auth_id", "ma2025"), ("auth_token", SECRET), ("src", "1")],
            "Auth ID must be MA or SA",
        ),
        (
            "gwsinch",
            vec![("service_plan_id", "../../other"), ("api_token", SECRET)],
            "service plan ID has only letters and digits",
        ),
    ] {
        let mut doc = String::from("<doc>");
        for (name, value) in &params {
            doc.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
        }
        doc.push_str(&format!("<api_url>{}</api_url></doc>", fake.url()));
        let out = root.run(
            &format!("gate/{role}"),
            &["--command", "check_connection"],
            &doc,
        );
        assert_eq!(out.status.code(), Some(1), "{role}: {}", stdout(&out));
        let (kind, _, msg) = error_of(&out);
        assert_eq!(kind, "gateway", "{role}: {msg}");
        assert!(msg.contains(words), "{role}: {msg}");
    }
    assert_eq!(fake.count(), 0);
}

/// A message Infobip refuses at once comes back with HTTP 200 and status group
/// REJECTED: that is a failure, with the status's id, name and description.
#[test]
fn infobip_rejected_status_fails() {
    let root = MgrRoot::new();
    let fake = FakeHttp::start(|_| {
        Response::json(
            r#"{"bulkId": "1", "messages": [{"messageId": "2250be2d", "destination": "79990000000",
                "status": {"groupId": 5, "groupName": "REJECTED", "id": 12,
                "name": "REJECTED_NOT_ENOUGH_CREDITS", "description": "Not enough credits"}}]}"#,
        )
    });
    let out = root.run(
        "gate/gwinfobip",
        &["--command", "outgoing"],
        &outgoing_doc(&INFOBIP, &fake.url()),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let (_, _, msg) = error_of(&out);
    assert!(
        msg.contains("status 12 REJECTED_NOT_ENOUGH_CREDITS: Not enough credits"),
        "{msg}"
    );
}
