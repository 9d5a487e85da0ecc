//! The bundled international provider scripts of the second group (ClickSend, Telnyx,
//! BulkSMS, Clickatell, TextMagic, 46elks), each against a fake of its public HTTP API on
//! loopback, run as BILLmanager runs them (`gate/gw<name> --command ...`):
//! - the send request's method, path, auth, content type and body fields are the
//!   documented ones, the number normalised, the Cyrillic text intact (with the Unicode
//!   flag where the API needs one);
//! - the provider's message id comes back; `check_connection` makes the documented
//!   balance or account call;
//! - each documented error answer becomes error XML carrying the provider's code and text;
//! - with the log at level 9 the secret never reaches `var/`, stdout or stderr in any
//!   spelling, even though the fake echoes every request header and the body back in its
//!   refusals;
//! - `mgrnotify send --dry-run` prints the exact request with the secret masked.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
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
const PLUS_NUMBER: &str = "+79990000000";

type Check = fn(&Request) -> Result<(), String>;

/// A documented error answer and what the operator must read in the error.
struct Refusal {
    answer: fn(&Request) -> Response,
    words: &'static [&'static str],
}

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
    /// Documented refusals of a valid send request.
    refusals: &'static [Refusal],
    /// The balance (or account) call of check_connection, and its answer.
    balance: (Check, fn() -> Response),
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
fn form_is(req: &Request, want: &[(&str, &str)]) -> Result<(), String> {
    content_type(req, "application/x-www-form-urlencoded")?;
    let fields = req.form();
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

fn json_is(req: &Request, want: Value) -> Result<(), String> {
    content_type(req, "application/json")?;
    let got = req
        .json()
        .ok_or_else(|| format!("body is not JSON: {}", req.body_text()))?;
    if got == want {
        Ok(())
    } else {
        Err(format!("JSON body {got}, want {want}"))
    }
}

fn header_is(req: &Request, name: &str, want: &str) -> Result<(), String> {
    expect(name, req.header(name).unwrap_or(""), want)
}

fn basic(user: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{SECRET}"))
    )
}

/// What a careless provider echoes back: the request's body and every header value.
fn echo(req: &Request) -> String {
    let headers: Vec<&str> = req.headers.iter().map(|(_, v)| v.as_str()).collect();
    format!("{} {}", req.body_text(), headers.join(" "))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---- the providers ----

const CLICKSEND: Provider = Provider {
    role: "gwclicksend",
    params: &[
        ("username", "shop"),
        ("api_key", SECRET),
        ("sender", "Shop"),
    ],
    send: |req| {
        method_path(req, "POST", "/v3/sms/send")?;
        header_is(req, "authorization", &basic("shop"))?;
        json_is(
            req,
            json!({"messages": [{"source": "mgrnotify", "from": "Shop", "body": TEXT, "to": PLUS_NUMBER}]}),
        )
    },
    sent: || {
        Response::json(
            &json!({"http_code": 200, "response_code": "SUCCESS",
                "response_msg": "Messages queued for delivery.",
                "data": {"total_price": 0.07, "total_count": 1, "queued_count": 1,
                    "messages": [{"direction": "out", "date": 1436871253, "to": PLUS_NUMBER,
                        "body": TEXT, "from": "Shop", "schedule": 0,
                        "message_id": "BF7AD270-0DE2-418B-B606-71D527D9C1AE",
                        "message_parts": 1, "message_price": "0.0700", "status": "SUCCESS"}],
                    "_currency": {"currency_name_short": "AUD"}}})
            .to_string(),
        )
    },
    id: "BF7AD270-0DE2-418B-B606-71D527D9C1AE",
    refusals: &[
        Refusal {
            answer: |req| {
                Response::new(
                    401,
                    "application/json",
                    json!({"http_code": 401, "response_code": "UNAUTHORIZED",
                        "response_msg": format!("Invalid credentials: {}", echo(req)), "data": null})
                    .to_string(),
                )
            },
            words: &[
                "ClickSend error UNAUTHORIZED",
                "wrong username or API key",
                "Invalid credentials",
            ],
        },
        Refusal {
            answer: |_| {
                Response::json(
                    &json!({"http_code": 200, "response_code": "SUCCESS",
                        "response_msg": "Messages queued for delivery.",
                        "data": {"messages": [{"to": PLUS_NUMBER, "message_id": "D0C273EE-816D",
                            "status": "INSUFFICIENT_CREDIT"}]}})
                    .to_string(),
                )
            },
            words: &["ClickSend error INSUFFICIENT_CREDIT", "not enough credit"],
        },
    ],
    balance: (
        |req| {
            method_path(req, "GET", "/v3/account")?;
            header_is(req, "authorization", &basic("shop"))
        },
        || {
            Response::json(
                r#"{"http_code": 200, "response_code": "SUCCESS", "response_msg": "Here's your account.",
                    "data": {"user_id": 116, "username": "shop", "balance": "4.998000",
                    "_currency": {"currency_name_short": "AUD"}}}"#,
            )
        },
    ),
    dry_run_words: &[
        "POST https://rest.clicksend.com/v3/sms/send",
        "Authorization: ***",
    ],
};

const TELNYX: Provider = Provider {
    role: "gwtelnyx",
    params: &[
        ("api_key", SECRET),
        ("sender", "MyShop"),
        (
            "messaging_profile_id",
            "4000eba1-a0c0-4563-9925-b25e842a7cb6",
        ),
    ],
    send: |req| {
        method_path(req, "POST", "/v2/messages")?;
        header_is(req, "authorization", &format!("Bearer {SECRET}"))?;
        json_is(
            req,
            json!({"from": "MyShop", "to": PLUS_NUMBER, "text": TEXT,
                "messaging_profile_id": "4000eba1-a0c0-4563-9925-b25e842a7cb6"}),
        )
    },
    sent: || {
        Response::json(
            &json!({"data": {"record_type": "message", "direction": "outbound",
                "id": "40385f64-5717-4562-b3fc-2c963f66afa6", "type": "SMS",
                "from": {"phone_number": "MyShop"},
                "to": [{"phone_number": PLUS_NUMBER, "status": "queued"}],
                "text": TEXT, "encoding": "UCS-2", "parts": 1, "errors": []}})
            .to_string(),
        )
    },
    id: "40385f64-5717-4562-b3fc-2c963f66afa6",
    refusals: &[
        Refusal {
            answer: |req| {
                Response::new(
                    401,
                    "application/json",
                    json!({"errors": [{"code": "10009", "title": "Authentication failed",
                        "detail": format!("The required authentication headers were either invalid or not included in the request: {}", echo(req))}]})
                    .to_string(),
                )
            },
            words: &["Telnyx error 10009 (HTTP 401)", "Authentication failed"],
        },
        Refusal {
            answer: |_| {
                Response::new(
                    400,
                    "application/json",
                    r#"{"errors": [{"code": "40310", "title": "Invalid 'to' address",
                        "detail": "The 'to' address should be a single valid number.",
                        "source": {"pointer": "/to"}}]}"#,
                )
            },
            words: &[
                "Telnyx error 40310 (HTTP 400)",
                "Invalid 'to' address: The 'to' address should be a single valid number.",
            ],
        },
    ],
    balance: (
        |req| {
            method_path(req, "GET", "/v2/balance")?;
            header_is(req, "authorization", &format!("Bearer {SECRET}"))
        },
        || {
            Response::json(
                r#"{"data": {"record_type": "balance", "pending": "10.00", "balance": "300.00",
                    "credit_limit": "100.00", "available_credit": "400.00", "currency": "USD"}}"#,
            )
        },
    ),
    dry_run_words: &[
        "POST https://api.telnyx.com/v2/messages",
        "Authorization: ***",
    ],
};

const BULKSMS: Provider = Provider {
    role: "gwbulksms",
    params: &[
        ("username", "shop"),
        ("password", SECRET),
        ("sender", "Shop"),
    ],
    send: |req| {
        method_path(req, "POST", "/v1/messages")?;
        header_is(req, "authorization", &basic("shop"))?;
        json_is(
            req,
            json!({"to": PLUS_NUMBER, "body": TEXT, "encoding": "UNICODE", "from": "Shop"}),
        )
    },
    sent: || {
        Response::new(
            201,
            "application/json",
            json!([{"id": "4023457654", "type": "SENT", "from": "Shop", "to": PLUS_NUMBER,
                "body": TEXT, "encoding": "UNICODE", "protocolId": 0, "messageClass": 2,
                "submission": {"id": "1-00000000000522347562", "date": "2026-11-27T10:00:00+00:00"},
                "status": {"id": "ACCEPTED.null", "type": "ACCEPTED", "subtype": null},
                "numberOfParts": null, "creditCost": null}])
            .to_string(),
        )
    },
    id: "4023457654",
    refusals: &[
        Refusal {
            answer: |req| {
                Response::new(
                    403,
                    "application/json",
                    json!({"type": "https://developer.bulksms.com/json/v1/errors#insufficient-credits",
                        "title": "Insufficient Credits", "status": 403,
                        "detail": format!("no credits for {}", echo(req))})
                    .to_string(),
                )
            },
            words: &[
                "BulkSMS error insufficient-credits (HTTP 403)",
                "not enough credits",
                "Insufficient Credits",
            ],
        },
        Refusal {
            answer: |_| {
                Response::new(
                    401,
                    "application/json",
                    r#"{"type": "https://developer.bulksms.com/json/v1/errors#authentication-failed",
                        "title": "Authentication Failed", "status": 401}"#,
                )
            },
            words: &[
                "BulkSMS error authentication-failed (HTTP 401)",
                "wrong username or password",
            ],
        },
    ],
    balance: (
        |req| {
            method_path(req, "GET", "/v1/profile")?;
            header_is(req, "authorization", &basic("shop"))
        },
        || {
            Response::json(
                r#"{"id": "1", "username": "shop", "created": "2026-01-01T10:00:00+00:00",
                    "credits": {"balance": 23.5, "isTransferAllowed": false, "limit": 0},
                    "quota": {"size": 1000, "remaining": 900}}"#,
            )
        },
    ),
    dry_run_words: &[
        "POST https://api.bulksms.com/v1/messages",
        "Authorization: ***",
    ],
};

const CLICKATELL: Provider = Provider {
    role: "gwclickatell",
    params: &[("api_key", SECRET)],
    send: |req| {
        method_path(req, "POST", "/v1/message")?;
        header_is(req, "authorization", SECRET)?;
        json_is(
            req,
            json!({"messages": [{"channel": "sms", "to": NUMBER, "content": TEXT}]}),
        )
    },
    sent: || {
        Response::new(
            202,
            "application/json",
            r#"{"messages": [{"apiMessageId": "77fb29998253415fa5d66971d519d362", "accepted": true,
                "to": "79990000000", "error": null}], "error": null}"#,
        )
    },
    id: "77fb29998253415fa5d66971d519d362",
    refusals: &[
        Refusal {
            answer: |req| {
                Response::new(
                    401,
                    "application/json",
                    json!({"messages": [], "error": {"code": 1,
                        "description": format!("Invalid or missing integration API Key: {}", echo(req)),
                        "documentation": "https://docs.clickatell.com/"}})
                    .to_string(),
                )
            },
            words: &[
                "Clickatell error 1 (HTTP 401)",
                "Invalid or missing integration API Key",
            ],
        },
        Refusal {
            answer: |_| {
                Response::new(
                    400,
                    "application/json",
                    r#"{"messages": [{"apiMessageId": null, "accepted": false, "to": "79990000000",
                        "error": {"code": 25, "description": "Invalid recipient address."}}], "error": null}"#,
                )
            },
            words: &[
                "Clickatell error 25 (HTTP 400)",
                "Invalid recipient address.",
            ],
        },
    ],
    balance: (
        |req| {
            method_path(req, "GET", "/v1/balance")?;
            header_is(req, "authorization", SECRET)
        },
        || Response::json(r#"{"currency": "USD", "balance": 12.5}"#),
    ),
    dry_run_words: &[
        "POST https://platform.clickatell.com/v1/message",
        "Authorization: ***",
    ],
};

const TEXTMAGIC: Provider = Provider {
    role: "gwtextmagic",
    params: &[
        ("username", "shop"),
        ("api_key", SECRET),
        ("sender", "Shop"),
    ],
    send: |req| {
        method_path(req, "POST", "/api/v2/messages")?;
        header_is(req, "x-tm-username", "shop")?;
        header_is(req, "x-tm-key", SECRET)?;
        form_is(req, &[("phones", NUMBER), ("text", TEXT), ("from", "Shop")])
    },
    sent: || {
        Response::new(
            201,
            "application/json",
            r#"{"id": 49576009, "href": "/api/v2/messages/49576009", "type": "message",
                "sessionId": 34436600, "bulkId": null, "messageId": 49576009, "scheduleId": null}"#,
        )
    },
    id: "49576009",
    refusals: &[
        Refusal {
            answer: |req| {
                Response::new(
                    401,
                    "application/json",
                    json!({"code": 401, "message": format!("Unauthorized: {}", echo(req)), "errors": null})
                        .to_string(),
                )
            },
            words: &[
                "TextMagic error 401",
                "wrong username or API key",
                "Unauthorized",
            ],
        },
        Refusal {
            answer: |_| {
                Response::new(
                    400,
                    "application/json",
                    r#"{"code": 400, "message": "Validation Failed",
                        "errors": {"common": [], "fields": {"phones": ["Phone number is invalid"]}}}"#,
                )
            },
            words: &[
                "TextMagic error 400",
                "Validation Failed; phones: Phone number is invalid",
            ],
        },
    ],
    balance: (
        |req| {
            method_path(req, "GET", "/api/v2/user")?;
            header_is(req, "x-tm-username", "shop")?;
            header_is(req, "x-tm-key", SECRET)
        },
        || {
            Response::json(
                r#"{"id": 305, "username": "shop", "status": "A", "balance": 208.64,
                    "currency": {"id": "GBP", "htmlSymbol": "&pound;"}}"#,
            )
        },
    ),
    dry_run_words: &[
        "POST https://rest.textmagic.com/api/v2/messages",
        "X-TM-Username: shop",
        "X-TM-Key: ***",
    ],
};

const ELKS: Provider = Provider {
    role: "gw46elks",
    params: &[
        ("username", "u5a9566c072160b31"),
        ("password", SECRET),
        ("sender", "Shop"),
    ],
    send: |req| {
        method_path(req, "POST", "/a1/sms")?;
        header_is(req, "authorization", &basic("u5a9566c072160b31"))?;
        form_is(
            req,
            &[("from", "Shop"), ("to", PLUS_NUMBER), ("message", TEXT)],
        )
    },
    sent: || {
        Response::json(
            &json!({"status": "created", "direction": "outgoing", "from": "Shop",
                "created": "2026-11-27T10:00:00.000000", "parts": 1, "to": PLUS_NUMBER,
                "cost": 3500, "message": TEXT, "id": "s70df59406a1b4643b96f3f91e0bfb7b0"})
            .to_string(),
        )
    },
    id: "s70df59406a1b4643b96f3f91e0bfb7b0",
    refusals: &[
        Refusal {
            answer: |req| Response::text(401, &format!("Invalid credentials: {}", echo(req))),
            words: &[
                "46elks error 401",
                "wrong API username or API password",
                "Invalid credentials",
            ],
        },
        Refusal {
            answer: |_| {
                Response::new(
                    403,
                    "application/json",
                    r#"{"error": "Not enough credits"}"#,
                )
            },
            words: &["46elks error 403", "Not enough credits"],
        },
    ],
    balance: (
        |req| {
            method_path(req, "GET", "/a1/me")?;
            header_is(req, "authorization", &basic("u5a9566c072160b31"))
        },
        || {
            Response::json(
                r#"{"displayname": "Shop", "currency": "SEK", "id": "u5a9566c072160b31",
                    "balance": 9670500, "email": "help@example.com", "creditalert": 200000}"#,
            )
        },
    ),
    dry_run_words: &["POST https://api.46elks.com/a1/sms", "Authorization: ***"],
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

/// What the fake answers: 0 the success, n the n-th refusal.
const SUCCESS: usize = 0;

/// Runs one provider through send, check_connection, its refusals and a dry run.
fn exercise(p: &'static Provider) {
    let root = MgrRoot::new();
    root.write("etc/debug.conf", &format!("{} 9\n", p.role));
    let answer = Arc::new(AtomicUsize::new(SUCCESS));
    let fake = {
        let answer = answer.clone();
        FakeHttp::start(move |req| {
            let (is_balance, balance) = p.balance;
            if is_balance(req).is_ok() {
                return balance();
            }
            match (p.send)(req) {
                Err(why) => Response::text(400, &format!("fake provider: bad request: {why}")),
                Ok(()) => match answer.load(Ordering::SeqCst) {
                    SUCCESS => (p.sent)(),
                    n => (p.refusals[n - 1].answer)(req),
                },
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
    assert_eq!((p.balance.0)(&last), Ok(()), "{}", p.role);

    let first_refusal = outputs.len();
    for (n, refusal) in p.refusals.iter().enumerate() {
        answer.store(n + 1, Ordering::SeqCst);
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
        for word in refusal.words {
            assert!(msg.contains(word), "{}: '{word}' not in: {msg}", p.role);
        }
        outputs.push(out);
    }
    // The first refusal echoes the request: the credential in it is redacted.
    let echoed = error_of(&outputs[first_refusal]).2;
    assert!(
        echoed.contains("***"),
        "{}: the echo is redacted: {echoed}",
        p.role
    );

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
fn clicksend() {
    exercise(&CLICKSEND);
}

#[test]
fn telnyx() {
    exercise(&TELNYX);
}

#[test]
fn bulksms() {
    exercise(&BULKSMS);
}

#[test]
fn clickatell() {
    exercise(&CLICKATELL);
}

#[test]
fn textmagic() {
    exercise(&TEXTMAGIC);
}

#[test]
fn elks46() {
    exercise(&ELKS);
}

/// BulkSMS turns characters outside GSM 03.38 into "?" unless the message says UNICODE;
/// text within it goes as TEXT (160 characters a part, not 70).
#[test]
fn bulksms_encoding_follows_the_gsm_alphabet() {
    let root = MgrRoot::new();
    let file = root.write("gateway.conf", "username=shop\npassword=pw\n");
    for (text, encoding) in [
        ("Invoice 42 is paid, thank you!", "TEXT"),
        ("Rechnung bezahlt: 10 € {ok} [x] ~ | ^ \\ ÄÖÜß éà", "TEXT"),
        ("Счёт оплачен", "UNICODE"),
        ("Invoice `42`", "UNICODE"),
        ("Paid ✓", "UNICODE"),
    ] {
        let out = root.run(
            "sbin/mgrnotify",
            &[
                "send",
                "gwbulksms",
                "--to",
                "+79990000000",
                "--text",
                text,
                "--params",
                file.to_str().unwrap(),
                "--dry-run",
            ],
            "",
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let body = stdout(&out);
        let body = body.lines().last().unwrap_or("");
        let sent: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(sent["encoding"], encoding, "{text:?}");
        assert_eq!(sent["body"], text);
    }
}

const ALL: [&Provider; 6] = [
    &CLICKSEND,
    &TELNYX,
    &BULKSMS,
    &CLICKATELL,
    &TEXTMAGIC,
    &ELKS,
];

/// `check` passes every script without a warning, `sync` writes each one's plugin XML with
/// every credential as a password input, and `list` shows each provider installed.
#[test]
fn check_sync_and_list_show_every_provider() {
    let root = MgrRoot::new();
    for p in ALL {
        let script = format!("etc/mgrnotify/scripts/{}.rhai", p.role);
        let out = root.run("sbin/mgrnotify", &["check", &script], "");
        let report = format!("{}{}", stdout(&out), stderr(&out));
        assert!(out.status.success(), "{}: {report}", p.role);
        assert!(!report.contains("warning"), "{}: {report}", p.role);
    }
    let out = root.run("sbin/mgrnotify", &["sync"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let list = stdout(&root.run("sbin/mgrnotify", &["list"], ""));
    for p in ALL {
        assert!(
            list.lines()
                .any(|l| l.trim_start().starts_with(p.role) && l.ends_with("installed")),
            "{}:\n{list}",
            p.role
        );
        let xml = root.read(&format!("etc/xml/billmgr_mod_{}.xml", p.role));
        for (name, value) in p.params {
            let kind = if *value == SECRET { "password" } else { "text" };
            assert!(
                xml.contains(&format!("<input type=\"{kind}\" name=\"{name}\"")),
                "{}: {name} is not a {kind} input:\n{xml}",
                p.role
            );
        }
    }
}
