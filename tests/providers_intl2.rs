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
//!
//! The run itself is `common::providers::exercise`; this file describes the APIs.

mod common;

use serde_json::{json, Value};

use common::fake_http::{Request, Response};
use common::mgr_root::{stderr, stdout, MgrRoot};
use common::providers::{
    basic, dry_run, exercise, form_is, header_is, json_is, method_path, Provider, Refusal,
    JUST_SECRET, NUMBER, SECRET, TEXT,
};

const PLUS_NUMBER: &str = "+79990000000";

/// What a careless provider echoes back: the request's body and every header value.
fn echo(req: &Request) -> String {
    let headers: Vec<&str> = req.headers.iter().map(|(_, v)| v.as_str()).collect();
    format!("{} {}", req.body_text(), headers.join(" "))
}

// ---- the providers ----

const CLICKSEND: Provider = Provider {
    role: "gwclicksend",
    params: &[
        ("username", "shop"),
        ("api_key", SECRET),
        ("sender", "Shop"),
    ],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/v3/sms/send")?;
        header_is(req, "authorization", &basic("shop", SECRET))?;
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
    id: Some("BF7AD270-0DE2-418B-B606-71D527D9C1AE"),
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
            echoes: true,
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
            echoes: false,
        },
    ],
    balance: Some((
        |req| {
            method_path(req, "GET", "/v3/account")?;
            header_is(req, "authorization", &basic("shop", SECRET))
        },
        || {
            Response::json(
                r#"{"http_code": 200, "response_code": "SUCCESS", "response_msg": "Here's your account.",
                    "data": {"user_id": 116, "username": "shop", "balance": "4.998000",
                    "_currency": {"currency_name_short": "AUD"}}}"#,
            )
        },
    )),
    dry_run_words: &[
        "POST https://rest.clicksend.com/v3/sms/send",
        "Authorization: ***",
        NUMBER,
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
    secrets: JUST_SECRET,
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
    id: Some("40385f64-5717-4562-b3fc-2c963f66afa6"),
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
            echoes: true,
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
            echoes: false,
        },
    ],
    balance: Some((
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
    )),
    dry_run_words: &[
        "POST https://api.telnyx.com/v2/messages",
        "Authorization: ***",
        NUMBER,
    ],
};

const BULKSMS: Provider = Provider {
    role: "gwbulksms",
    params: &[
        ("username", "shop"),
        ("password", SECRET),
        ("sender", "Shop"),
    ],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/v1/messages")?;
        header_is(req, "authorization", &basic("shop", SECRET))?;
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
    id: Some("4023457654"),
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
            echoes: true,
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
            echoes: false,
        },
    ],
    balance: Some((
        |req| {
            method_path(req, "GET", "/v1/profile")?;
            header_is(req, "authorization", &basic("shop", SECRET))
        },
        || {
            Response::json(
                r#"{"id": "1", "username": "shop", "created": "2026-01-01T10:00:00+00:00",
                    "credits": {"balance": 23.5, "isTransferAllowed": false, "limit": 0},
                    "quota": {"size": 1000, "remaining": 900}}"#,
            )
        },
    )),
    dry_run_words: &[
        "POST https://api.bulksms.com/v1/messages",
        "Authorization: ***",
        NUMBER,
    ],
};

const CLICKATELL: Provider = Provider {
    role: "gwclickatell",
    params: &[("api_key", SECRET)],
    secrets: JUST_SECRET,
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
    id: Some("77fb29998253415fa5d66971d519d362"),
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
            echoes: true,
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
            echoes: false,
        },
    ],
    balance: Some((
        |req| {
            method_path(req, "GET", "/v1/balance")?;
            header_is(req, "authorization", SECRET)
        },
        || Response::json(r#"{"currency": "USD", "balance": 12.5}"#),
    )),
    dry_run_words: &[
        "POST https://platform.clickatell.com/v1/message",
        "Authorization: ***",
        NUMBER,
    ],
};

const TEXTMAGIC: Provider = Provider {
    role: "gwtextmagic",
    params: &[
        ("username", "shop"),
        ("api_key", SECRET),
        ("sender", "Shop"),
    ],
    secrets: JUST_SECRET,
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
    id: Some("49576009"),
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
            echoes: true,
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
            echoes: false,
        },
    ],
    balance: Some((
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
    )),
    dry_run_words: &[
        "POST https://rest.textmagic.com/api/v2/messages",
        "X-TM-Username: shop",
        "X-TM-Key: ***",
        NUMBER,
    ],
};

const ELKS: Provider = Provider {
    role: "gw46elks",
    params: &[
        ("username", "u5a9566c072160b31"),
        ("password", SECRET),
        ("sender", "Shop"),
    ],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/a1/sms")?;
        header_is(req, "authorization", &basic("u5a9566c072160b31", SECRET))?;
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
    id: Some("s70df59406a1b4643b96f3f91e0bfb7b0"),
    refusals: &[
        Refusal {
            answer: |req| Response::text(401, &format!("Invalid credentials: {}", echo(req))),
            words: &[
                "46elks error 401",
                "wrong API username or API password",
                "Invalid credentials",
            ],
            echoes: true,
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
            echoes: false,
        },
    ],
    balance: Some((
        |req| {
            method_path(req, "GET", "/a1/me")?;
            header_is(req, "authorization", &basic("u5a9566c072160b31", SECRET))
        },
        || {
            Response::json(
                r#"{"displayname": "Shop", "currency": "SEK", "id": "u5a9566c072160b31",
                    "balance": 9670500, "email": "help@example.com", "creditalert": 200000}"#,
            )
        },
    )),
    dry_run_words: &[
        "POST https://api.46elks.com/a1/sms",
        "Authorization: ***",
        NUMBER,
    ],
};

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
    let params = [("username", "shop"), ("password", "pw")];
    for (text, encoding) in [
        ("Invoice 42 is paid, thank you!", "TEXT"),
        ("Rechnung bezahlt: 10 € {ok} [x] ~ | ^ \\ ÄÖÜß éà", "TEXT"),
        ("Счёт оплачен", "UNICODE"),
        ("Invoice `42`", "UNICODE"),
        ("Paid ✓", "UNICODE"),
    ] {
        let out = dry_run(&root, "gwbulksms", &params, text);
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
