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
//!
//! The run itself is `common::providers::exercise`; this file describes the APIs.

mod common;

use serde_json::json;

use common::fake_http::Response;
use common::providers::{
    auth_is, basic, echo, exercise, fields_are, form_is, json_is, method_path, xml_escape,
    Provider, Refusal, JUST_SECRET, NUMBER, SECRET, TEXT,
};

// ---- the providers ----

const SMSRU: Provider = Provider {
    role: "gwsmsru",
    params: &[("api_id", SECRET), ("sender", "Shop")],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/sms/send")?;
        form_is(
            req,
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
    id: Some("000000-10000001"),
    refusals: &[Refusal {
        answer: |req| {
            Response::json(
                &json!({"status": "ERROR", "status_code": 200,
                    "status_text": format!("Неправильный api_id: {}", echo(req))})
                .to_string(),
            )
        },
        words: &["SMS.ru error 200", "Неправильный api_id"],
        echoes: true,
    }],
    balance: Some((
        |req| {
            method_path(req, "POST", "/my/balance")?;
            form_is(req, &[("api_id", SECRET), ("json", "1")])
        },
        || Response::json(r#"{"status": "OK", "status_code": 100, "balance": 12.5}"#),
    )),
    dry_run_words: &["POST https://sms.ru/sms/send", "api_id=***", NUMBER],
};

const SMSC: Provider = Provider {
    role: "gwsmsc",
    params: &[("login", "demo"), ("password", SECRET), ("sender", "Shop")],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/sys/send.php")?;
        form_is(
            req,
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
    id: Some("4711"),
    refusals: &[Refusal {
        answer: |req| {
            Response::json(
                &json!({"error": format!("authorise error: {}", echo(req)), "error_code": 2})
                    .to_string(),
            )
        },
        words: &[
            "SMSC.ru error 2",
            "wrong login or password",
            "authorise error",
        ],
        echoes: true,
    }],
    balance: Some((
        |req| {
            method_path(req, "POST", "/sys/balance.php")?;
            fields_are(
                &req.form(),
                &[("login", "demo"), ("psw", SECRET), ("fmt", "3")],
            )
        },
        || Response::json(r#"{"balance": "10.50"}"#),
    )),
    dry_run_words: &["POST https://smsc.ru/sys/send.php", "psw=***", NUMBER],
};

const SMSAERO: Provider = Provider {
    role: "gwsmsaero",
    params: &[
        ("email", "shop@example.com"),
        ("api_key", SECRET),
        ("sign", "Shop"),
    ],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/v2/sms/send")?;
        auth_is(req, &basic("shop@example.com", SECRET))?;
        json_is(req, json!({"number": NUMBER, "text": TEXT, "sign": "Shop"}))
    },
    sent: || {
        Response::json(
            r#"{"success": true, "data": {"id": 12345, "from": "Shop", "number": "79990000000",
                "status": 0, "extendStatus": "queue", "channel": "FREE SIGN", "cost": 4.49}, "message": null}"#,
        )
    },
    id: Some("12345"),
    refusals: &[Refusal {
        answer: |req| {
            Response::new(
                401,
                "application/json",
                json!({"success": false, "data": null,
                    "message": format!("Unauthorized: {}", echo(req))})
                .to_string(),
            )
        },
        words: &["SMS Aero refused (HTTP 401)", "Unauthorized"],
        echoes: true,
    }],
    balance: Some((
        |req| {
            method_path(req, "POST", "/v2/balance")?;
            auth_is(req, &basic("shop@example.com", SECRET))
        },
        || Response::json(r#"{"success": true, "data": {"balance": 337.03}, "message": null}"#),
    )),
    dry_run_words: &[
        "POST https://gate.smsaero.ru/v2/sms/send",
        "Authorization: ***",
        NUMBER,
    ],
};

const EXOLVE: Provider = Provider {
    role: "gwexolve",
    params: &[("api_key", SECRET), ("sender", "MyShop")],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/messaging/v1/SendSMS")?;
        auth_is(req, &format!("Bearer {SECRET}"))?;
        json_is(
            req,
            json!({"number": "MyShop", "destination": NUMBER, "text": TEXT}),
        )
    },
    sent: || Response::json(r#"{"message_id": "539127061928372"}"#),
    id: Some("539127061928372"),
    refusals: &[Refusal {
        answer: |req| {
            Response::new(
                401,
                "application/json",
                json!({"error": {"message": format!("invalid token {}", echo(req)), "details": null}})
                    .to_string(),
            )
        },
        words: &["Exolve refused (HTTP 401)", "invalid token"],
        echoes: true,
    }],
    balance: None,
    dry_run_words: &[
        "POST https://api.exolve.ru/messaging/v1/SendSMS",
        "Authorization: ***",
        NUMBER,
    ],
};

const DEVINO: Provider = Provider {
    role: "gwdevino",
    params: &[("api_key", SECRET), ("sender", "MyShop")],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/sms/messages")?;
        auth_is(req, &format!("Key {SECRET}"))?;
        json_is(
            req,
            json!({"messages": [{"from": "MyShop", "to": NUMBER, "text": TEXT}]}),
        )
    },
    sent: || Response::json(r#"{"result": [{"code": "OK", "messageId": "3a5e0c1f-0001"}]}"#),
    id: Some("3a5e0c1f-0001"),
    refusals: &[Refusal {
        answer: |req| {
            Response::new(
                401,
                "application/json",
                json!({"code": "UNAUTHORIZED", "description": format!("invalid API key {}", echo(req))})
                    .to_string(),
            )
        },
        words: &["Devino refused the API key (HTTP 401)", "invalid API key"],
        echoes: true,
    }],
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
        NUMBER,
    ],
};

const SMSTRAFFIC: Provider = Provider {
    role: "gwsmstraffic",
    params: &[
        ("login", "demo"),
        ("password", SECRET),
        ("originator", "Shop"),
    ],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/multi.php")?;
        form_is(
            req,
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
    id: Some("1000001"),
    refusals: &[Refusal {
        answer: |req| {
            Response::xml(&format!(
                "<reply><result>ERROR</result><code>401</code>\
                 <description>Login or password incorrect: {}</description></reply>",
                xml_escape(&echo(req))
            ))
        },
        words: &["SMS Traffic error 401", "Login or password incorrect"],
        echoes: true,
    }],
    balance: Some((
        |req| {
            method_path(req, "POST", "/multi.php")?;
            fields_are(
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
    dry_run_words: &[
        "POST https://api.smstraffic.ru/multi.php",
        "password=***",
        NUMBER,
    ],
};

const P1SMS: Provider = Provider {
    role: "gwp1sms",
    params: &[("api_key", SECRET), ("sender", "Shop")],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/apiSms/create")?;
        json_is(
            req,
            json!({"apiKey": SECRET,
                "sms": [{"channel": "char", "sender": "Shop", "phone": NUMBER, "text": TEXT}]}),
        )
    },
    sent: || {
        Response::json(
            r#"{"status": "success", "data": [{"id": 510506708, "status": "sent", "phone": "79990000000"}]}"#,
        )
    },
    id: Some("510506708"),
    refusals: &[Refusal {
        answer: |req| {
            Response::json(
                // The key as the provider read it (echoing the whole JSON body inside a
                // JSON string would escape it twice, a spelling no provider uses).
                &json!({"status": "error", "message": format!("Неверный apiKey: {}",
                    req.json().and_then(|b| b["apiKey"].as_str().map(str::to_owned)).unwrap_or_default())})
                .to_string(),
            )
        },
        words: &["P1SMS refused", "Неверный apiKey"],
        echoes: true,
    }],
    balance: Some((
        |req| {
            method_path(req, "GET", "/apiUsers/getUserBalanceInfo")?;
            fields_are(&req.query_fields(), &[("apiKey", SECRET)])
        },
        || Response::json(r#"{"status": "success", "data": "15.0000"}"#),
    )),
    dry_run_words: &[
        "POST https://admin.p1sms.ru/apiSms/create",
        r#""apiKey":"***""#,
        NUMBER,
    ],
};

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
