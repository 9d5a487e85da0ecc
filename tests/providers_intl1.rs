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
//!
//! The run itself is `common::providers::exercise`; this file describes the APIs.

mod common;

use serde_json::json;

use common::fake_http::{FakeHttp, Response};
use common::mgr_root::{error_of, stdout, MgrRoot};
use common::providers::{
    auth_is, basic, dry_run, echo, exercise, fields_are, form_is, json_is, method_path,
    outgoing_doc, run_gateway, xmlparams, Provider, Refusal, JUST_SECRET, NUMBER, SECRET, TEXT,
};

// ---- the providers ----

const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";

const TWILIO: Provider = Provider {
    role: "gwtwilio",
    params: &[
        ("account_sid", TWILIO_SID),
        ("auth_token", SECRET),
        ("from", "+15017122661"),
    ],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(
            req,
            "POST",
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
        )?;
        auth_is(req, &basic(TWILIO_SID, SECRET))?;
        form_is(
            req,
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
    id: Some("SM1f0e8ae6ade43cb3c0ce4525424e404f"),
    refusals: &[Refusal {
        answer: |req| {
            Response::new(
                401,
                "application/json",
                json!({"code": 20003, "message": format!("Authenticate {}", echo(req)),
                    "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
                .to_string(),
            )
        },
        words: &[
            "Twilio error 20003 (HTTP 401)",
            "wrong Account SID or Auth Token",
            "Authenticate",
        ],
        echoes: true,
    }],
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
        NUMBER,
    ],
};

const VONAGE: Provider = Provider {
    role: "gwvonage",
    params: &[
        ("api_key", "a1b2c3d4"),
        ("api_secret", SECRET),
        ("from", "Shop"),
    ],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/sms/json")?;
        form_is(
            req,
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
    id: Some("0A0000000123ABCD1"),
    refusals: &[Refusal {
        answer: |req| {
            // Vonage refuses with HTTP 200 and the status in the message report.
            Response::json(
                &json!({"message-count": "1", "messages": [{"status": "4",
                    "error-text": format!("Bad Credentials {}", echo(req))}]})
                .to_string(),
            )
        },
        words: &["Vonage error 4", "invalid credentials", "Bad Credentials"],
        echoes: true,
    }],
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
        NUMBER,
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
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/v1/Account/MA2025RK4E639VJFZAGV/Message/")?;
        auth_is(req, &basic(PLIVO_ID, SECRET))?;
        json_is(
            req,
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
    id: Some("db3ce55a-7f1d-11e1-8ea7-1231380bc196"),
    refusals: &[Refusal {
        answer: |req| {
            Response::new(
                401,
                "application/json",
                json!({"api_id": "4f0c4d12-0000-11e1-8ea7-1231380bc196",
                    "error": format!("Could not verify your access level {}", echo(req))})
                .to_string(),
            )
        },
        words: &[
            "Plivo refused (HTTP 401: authentication failed",
            "Could not verify your access level",
        ],
        echoes: true,
    }],
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
        NUMBER,
    ],
};

const INFOBIP: Provider = Provider {
    role: "gwinfobip",
    params: &[
        ("base_url", "https://abc123.api.infobip.com/"),
        ("api_key", SECRET),
        ("sender", "Shop"),
    ],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/sms/3/messages")?;
        auth_is(req, &format!("App {SECRET}"))?;
        json_is(
            req,
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
    id: Some("2250be2d4219-3af1-78856-aabe-1362af1edfd2"),
    refusals: &[Refusal {
        answer: |req| {
            Response::new(
                401,
                "application/json",
                json!({"requestError": {"serviceException": {"messageId": "UNAUTHORIZED",
                    "text": format!("Invalid login details {}", echo(req))}}})
                .to_string(),
            )
        },
        words: &[
            "Infobip refused (HTTP 401)",
            "UNAUTHORIZED",
            "Invalid login details",
        ],
        echoes: true,
    }],
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
        NUMBER,
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
    secrets: JUST_SECRET,
    send: |req| {
        method_path(
            req,
            "POST",
            "/xms/v1/jd63jf88477ll123ab4567cd89012ef3/batches",
        )?;
        auth_is(req, &format!("Bearer {SECRET}"))?;
        json_is(
            req,
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
    id: Some("01FC66621XXXXX119Z8PMV1QPQ"),
    refusals: &[Refusal {
        answer: |req| {
            Response::new(
                400,
                "application/json",
                json!({"code": "syntax_invalid_parameter_format",
                    "text": format!("Invalid MSISDN in to {}", echo(req))})
                .to_string(),
            )
        },
        words: &[
            "Sinch error syntax_invalid_parameter_format (HTTP 400)",
            "wrong format",
            "Invalid MSISDN",
        ],
        echoes: true,
    }],
    balance: Some((
        |req| {
            method_path(
                req,
                "GET",
                "/xms/v1/jd63jf88477ll123ab4567cd89012ef3/batches",
            )?;
            fields_are(&req.query_fields(), &[("page_size", "1")])?;
            auth_is(req, &format!("Bearer {SECRET}"))
        },
        || Response::json(r#"{"count": 0, "page": 0, "page_size": 1, "batches": []}"#),
    )),
    dry_run_words: &[
        "POST https://eu.sms.api.sinch.com/xms/v1/jd63jf88477ll123ab4567cd89012ef3/batches",
        "Authorization: ***",
        NUMBER,
    ],
};

const MESSAGEBIRD: Provider = Provider {
    role: "gwmessagebird",
    params: &[("access_key", SECRET), ("originator", "Shop")],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/messages")?;
        auth_is(req, &format!("AccessKey {SECRET}"))?;
        json_is(
            req,
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
    id: Some("e8077d803532c0b5937c639b60216938"),
    refusals: &[Refusal {
        answer: |req| {
            Response::new(
                401,
                "application/json",
                json!({"errors": [{"code": 2, "parameter": "access_key",
                    "description": format!("Request not allowed (incorrect access_key) {}", echo(req))}]})
                .to_string(),
            )
        },
        words: &[
            "MessageBird error 2 (HTTP 401)",
            "wrong access key",
            "Request not allowed",
        ],
        echoes: true,
    }],
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
        NUMBER,
    ],
};

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
        let out = stdout(&dry_run(&root, "gwvonage", &params, text));
        assert_eq!(out.contains("type=unicode"), unicode, "{text:?}:\n{out}");
    }
}

/// With a Messaging Service SID the service picks the sender: the request carries
/// MessagingServiceSid (masked, it is an SID) and not the form's From as well.
#[test]
fn twilio_messaging_service_instead_of_from() {
    let root = MgrRoot::new();
    let out = stdout(&dry_run(
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
    ));
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
        let doc = xmlparams(&params, &fake.url());
        let out = run_gateway(&root, role, "check_connection", &doc);
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
    let out = run_gateway(
        &root,
        "gwinfobip",
        "outgoing",
        &outgoing_doc(&INFOBIP, &fake.url()),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let (_, _, msg) = error_of(&out);
    assert!(
        msg.contains("status 12 REJECTED_NOT_ENOUGH_CREDITS: Not enough credits"),
        "{msg}"
    );
}
