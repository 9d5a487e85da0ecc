//! The bundled provider scripts of group 3 (Textbelt, Amazon SNS, Esendex, Brevo, a
//! generic JSON webhook, Slack and Mattermost incoming webhooks), each against a fake
//! of its public HTTP API on loopback, run as BILLmanager runs them
//! (`gate/gw<name> --command ...`):
//! - the send request's method, path, auth (HTTP Basic, key headers, an AWS Signature
//!   Version 4 valid for the request as received, the webhook's HMAC), content type
//!   and body fields are the documented ones, the number normalised as the provider
//!   wants it, the Cyrillic text intact and flagged for Unicode where the API needs it;
//! - the provider's message id comes back; `check_connection` makes the documented
//!   account call;
//! - a documented error answer becomes error XML carrying the provider's code;
//! - with the log at level 9 the secrets never reach `var/`, stdout or stderr in any
//!   spelling, even when the fake echoes them back in its refusal;
//! - `mgrnotify send --dry-run` prints the exact request with the secrets masked.
//!
//! The run itself is `common::providers::exercise`; this file describes the APIs.

mod common;

use hmac::Mac;
use serde_json::json;

use common::fake_http::{Request, Response};
use common::mgr_root::{stderr, stdout, MgrRoot};
use common::providers::{
    basic, content_type, exercise, expect, fields_are, form_is, header_is, json_is, method_path,
    xml_escape, Provider, Refusal, Secrets, JUST_SECRET, NUMBER, PHONE, SECRET, SECRET_PIECES,
    SUBJECT, TEXT,
};
use mgrnotify::log::url_encode;
use mgrnotify::script::helpers::{aws_sigv4_headers, AwsCredentials};

const AWS_ACCESS_KEY: &str = "AKIDEXAMPLE";
const WEBHOOK_URL: &str = "https://notify.example.com/billing/Zx9QkWebhookTok3n?team=ops";
const SLACK_URL: &str = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/Zx9QkSlackTok3nXXXX";
const MATTERMOST_URL: &str = "https://chat.example.com/hooks/zx9qkmattermosthookid";

fn hmac_sha256_hex(key: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a careless provider echoes back: the request's target, body and
/// Authorization header.
fn echo(req: &Request) -> String {
    format!("{} {}", req.target, common::providers::echo(req))
}

// ---- the providers ----

const TEXTBELT: Provider = Provider {
    role: "gwtextbelt",
    params: &[("key", SECRET), ("sender", "Shop")],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/text")?;
        form_is(
            req,
            &[
                ("phone", "+79990000000"),
                ("message", TEXT),
                ("key", SECRET),
                ("sender", "Shop"),
            ],
        )
    },
    sent: || Response::json(r#"{"success": true, "quotaRemaining": 40, "textId": 12345}"#),
    id: Some("12345"),
    refusals: &[Refusal {
        answer: |req| {
            Response::json(
                &json!({"success": false, "quotaRemaining": 0,
                    "error": format!("Out of quota: {}", echo(req))})
                .to_string(),
            )
        },
        words: &[
            "Textbelt refused (HTTP 200)",
            "Out of quota",
            "quota remaining 0",
        ],
        echoes: true,
    }],
    balance: Some((
        |req| {
            expect("method", &req.method, "GET")?;
            expect(
                "path",
                req.path(),
                &format!("/quota/{}", url_encode(SECRET)),
            )
        },
        || Response::json(r#"{"success": true, "quotaRemaining": 98}"#),
    )),
    dry_run_words: &[
        "POST https://textbelt.com/text",
        "key=***",
        "phone=%2B79990000000",
    ],
};

/// The request must carry an AWS Signature Version 4 that is valid for it as the fake
/// received it: its Host, content type, body, and the date it names.
fn aws_signed(req: &Request) -> Result<(), String> {
    let host = req.header("host").ok_or("no Host header")?;
    let date = req.header("x-amz-date").ok_or("no X-Amz-Date header")?;
    let content_type = req.header("content-type").unwrap_or("").to_owned();
    let creds = AwsCredentials {
        access_key: AWS_ACCESS_KEY,
        secret_key: SECRET,
        region: "eu-west-1",
        service: "sns",
    };
    let want = aws_sigv4_headers(
        &req.method,
        &format!("http://{host}{}", req.target),
        &[("Content-Type".to_owned(), content_type)],
        &req.body_text(),
        &creds,
        date,
    )?;
    let got = req.header("authorization").unwrap_or("");
    if !got.starts_with(&format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/eu-west-1/sns/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=",
        &date[..8]
    )) {
        return Err(format!("authorization {got:?}"));
    }
    expect("authorization", got, &want[1].1)
}

const SNS: Provider = Provider {
    role: "gwsns",
    params: &[
        ("access_key_id", AWS_ACCESS_KEY),
        ("secret_access_key", SECRET),
        ("region", "eu-west-1"),
        ("sender_id", "Shop"),
    ],
    secrets: Secrets {
        whole: &[SECRET, AWS_ACCESS_KEY],
        pieces: SECRET_PIECES,
    },
    send: |req| {
        method_path(req, "POST", "/")?;
        form_is(
            req,
            &[
                ("Action", "Publish"),
                ("Version", "2010-03-31"),
                ("PhoneNumber", "+79990000000"),
                ("Message", TEXT),
                ("MessageAttributes.entry.1.Name", "AWS.SNS.SMS.SMSType"),
                ("MessageAttributes.entry.1.Value.DataType", "String"),
                (
                    "MessageAttributes.entry.1.Value.StringValue",
                    "Transactional",
                ),
                ("MessageAttributes.entry.2.Name", "AWS.SNS.SMS.SenderID"),
                ("MessageAttributes.entry.2.Value.DataType", "String"),
                ("MessageAttributes.entry.2.Value.StringValue", "Shop"),
            ],
        )?;
        aws_signed(req)
    },
    sent: || {
        Response::xml(
            "<PublishResponse xmlns=\"https://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult>\
             <MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId></PublishResult>\
             <ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId>\
             </ResponseMetadata></PublishResponse>",
        )
    },
    id: Some("94f20ce6-13c5-43a0-9a9e-ca52d816e90b"),
    refusals: &[Refusal {
        answer: |req| {
            Response::new(
                403,
                "text/xml",
                format!(
                    "<ErrorResponse xmlns=\"https://sns.amazonaws.com/doc/2010-03-31/\"><Error>\
                     <Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token \
                     included in the request is invalid: {}</Message></Error>\
                     <RequestId>8a8c3a4c-1cf4-5d39-b1d5-4a4b2d8a6b3e</RequestId></ErrorResponse>",
                    xml_escape(&echo(req))
                ),
            )
        },
        words: &[
            "Amazon SNS error InvalidClientTokenId (HTTP 403)",
            "the access key ID does not exist",
            "The security token included in the request is invalid",
        ],
        echoes: true,
    }],
    balance: Some((
        |req| {
            method_path(req, "POST", "/")?;
            fields_are(
                &req.form(),
                &[
                    ("Action", "GetSMSSandboxAccountStatus"),
                    ("Version", "2010-03-31"),
                ],
            )?;
            aws_signed(req)
        },
        || {
            Response::xml(
                "<GetSMSSandboxAccountStatusResponse xmlns=\"https://sns.amazonaws.com/doc/2010-03-31/\">\
                 <GetSMSSandboxAccountStatusResult><IsInSandbox>true</IsInSandbox>\
                 </GetSMSSandboxAccountStatusResult></GetSMSSandboxAccountStatusResponse>",
            )
        },
    )),
    dry_run_words: &[
        "POST https://sns.eu-west-1.amazonaws.com/",
        "Authorization: ***",
        "X-Amz-Date: ",
        "PhoneNumber=%2B79990000000",
    ],
};

fn esendex_auth(req: &Request) -> Result<(), String> {
    header_is(req, "authorization", &basic("shop@example.com", SECRET))
}

const ESENDEX: Provider = Provider {
    role: "gwesendex",
    params: &[
        ("username", "shop@example.com"),
        ("password", SECRET),
        ("account_reference", "EX0000000"),
        ("sender", "Shop"),
    ],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/v1.0/messagedispatcher")?;
        esendex_auth(req)?;
        content_type(req, "application/xml")?;
        let body = req.body_text();
        let doc = roxmltree::Document::parse(&body).map_err(|e| format!("not XML: {e}"))?;
        let root = doc.root_element();
        expect("root", root.tag_name().name(), "messages")?;
        expect(
            "namespace",
            root.tag_name().namespace().unwrap_or(""),
            "http://api.esendex.com/ns/",
        )?;
        let text = |path: &[&str]| -> String {
            let mut node = Some(root);
            for step in path {
                node = node.and_then(|n| n.children().find(|c| c.has_tag_name(*step)));
            }
            node.and_then(|n| n.text()).unwrap_or("").to_owned()
        };
        expect("accountreference", text(&["accountreference"]), "EX0000000")?;
        expect("characterset", text(&["characterset"]), "Auto")?;
        expect("from", text(&["message", "from"]), "Shop")?;
        expect("to", text(&["message", "to"]), NUMBER)?;
        expect("body", text(&["message", "body"]), TEXT)
    },
    sent: || {
        Response::xml(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><messageheaders batchid=\"F8BF9867-FF81-49E4-ACC5-774DE793B776\" \
             xmlns=\"http://api.esendex.com/ns/\"><messageheader \
             uri=\"https://api.esendex.com/v1.0/MessageHeaders/1183C73D-2E62-4F60-B610-30F160BDFBD5\" \
             id=\"1183C73D-2E62-4F60-B610-30F160BDFBD5\" /></messageheaders>",
        )
    },
    id: Some("1183C73D-2E62-4F60-B610-30F160BDFBD5"),
    refusals: &[Refusal {
        answer: |req| {
            Response::text(
                402,
                &format!("Insufficient message credits for {}", echo(req)),
            )
        },
        words: &[
            "Esendex refused (HTTP 402, not enough message credits)",
            "Insufficient message credits",
        ],
        echoes: true,
    }],
    balance: Some((
        |req| {
            method_path(req, "GET", "/v1.0/accounts")?;
            esendex_auth(req)
        },
        || {
            Response::xml(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><accounts xmlns=\"http://api.esendex.com/ns/\">\
                 <account id=\"A00F0218-510D-423D-A74E-5A65342FE070\" uri=\"https://api.esendex.com/v1.0/accounts/A00F0218-510D-423D-A74E-5A65342FE070\">\
                 <reference>EX0000001</reference><messagesremaining>5</messagesremaining></account>\
                 <account id=\"B00F0218-510D-423D-A74E-5A65342FE071\" uri=\"https://api.esendex.com/v1.0/accounts/B00F0218-510D-423D-A74E-5A65342FE071\">\
                 <reference>EX0000000</reference><label>EX0000000</label><address>447700900654</address>\
                 <type>Professional</type><messagesremaining>2000</messagesremaining>\
                 <expireson>2999-02-25T00:00:00</expireson><role>PowerUser</role></account></accounts>",
            )
        },
    )),
    dry_run_words: &[
        "POST https://api.esendex.com/v1.0/messagedispatcher",
        "Authorization: ***",
        "<characterset>Auto</characterset>",
        "<to>79990000000</to>",
    ],
};

const BREVO: Provider = Provider {
    role: "gwbrevo",
    params: &[("api_key", SECRET), ("sender", "Shop")],
    secrets: JUST_SECRET,
    send: |req| {
        method_path(req, "POST", "/v3/transactionalSMS/send")?;
        header_is(req, "api-key", SECRET)?;
        header_is(req, "accept", "application/json")?;
        json_is(
            req,
            json!({"sender": "Shop", "recipient": NUMBER, "content": TEXT,
                "type": "transactional", "unicodeEnabled": true}),
        )
    },
    sent: || {
        Response::new(
            201,
            "application/json",
            r#"{"messageId": 1511882900176220}"#,
        )
    },
    id: Some("1511882900176220"),
    refusals: &[Refusal {
        answer: |req| {
            Response::new(
                401,
                "application/json",
                json!({"code": "unauthorized",
                    "message": format!("Key not found: {}", req.header("api-key").unwrap_or(""))})
                .to_string(),
            )
        },
        words: &[
            "Brevo error unauthorized (HTTP 401, the API key is missing or wrong)",
            "Key not found",
        ],
        echoes: true,
    }],
    balance: Some((
        |req| {
            method_path(req, "GET", "/v3/account")?;
            header_is(req, "api-key", SECRET)
        },
        || {
            Response::json(
                r#"{"email": "shop@example.com", "companyName": "Shop",
                    "plan": [{"type": "payAsYouGo", "creditsType": "sendLimit", "credits": 300},
                             {"type": "sms", "creditsType": "sendLimit", "credits": 42.5}]}"#,
            )
        },
    )),
    dry_run_words: &[
        "POST https://api.brevo.com/v3/transactionalSMS/send",
        "api-key: ***",
        r#""recipient":"79990000000""#,
        r#""unicodeEnabled":true"#,
    ],
};

const WEBHOOK: Provider = Provider {
    role: "gwwebhook",
    params: &[("url", WEBHOOK_URL), ("secret", SECRET)],
    secrets: Secrets {
        whole: &[SECRET, WEBHOOK_URL],
        pieces: &["Zx9", "Qk#1", "Zx9QkWebhookTok3n"],
    },
    send: |req| {
        method_path(req, "POST", "/billing/Zx9QkWebhookTok3n")?;
        expect("query", req.query(), "team=ops")?;
        json_is(
            req,
            json!({"message": TEXT, "subject": SUBJECT,
                "user": {"id": "7", "phone": PHONE}, "project": {"id": "1"}}),
        )?;
        header_is(
            req,
            "x-mgrnotify-signature",
            &format!("sha256={}", hmac_sha256_hex(SECRET, &req.body)),
        )
    },
    sent: || Response::new(202, "application/json", r#"{"id": "evt_1042"}"#),
    id: Some("evt_1042"),
    refusals: &[Refusal {
        answer: |req| {
            Response::new(
                500,
                "application/json",
                json!({"error": format!("handler crashed on {}", echo(req))}).to_string(),
            )
        },
        words: &["the webhook refused (HTTP 500)", "handler crashed"],
        echoes: true,
    }],
    balance: None,
    dry_run_words: &["POST ***", "X-Mgrnotify-Signature: sha256="],
};

/// What a chat webhook must post: the subject in bold, the text below it.
fn chat_is(req: &Request, path: &str, text: &str) -> Result<(), String> {
    method_path(req, "POST", path)?;
    json_is(req, json!({ "text": text }))
}

const SLACK: Provider = Provider {
    role: "gwslack",
    params: &[("url", SLACK_URL)],
    secrets: Secrets {
        whole: &[SLACK_URL],
        pieces: &["Zx9QkSlackTok3n"],
    },
    send: |req| {
        chat_is(
            req,
            "/services/T0AAAAAAA/B0BBBBBBB/Zx9QkSlackTok3nXXXX",
            "*Оплата &lt;счёта&gt;*\nСчёт #42 оплачен &amp; спасибо",
        )
    },
    sent: || Response::text(200, "ok"),
    id: None,
    refusals: &[Refusal {
        answer: |_| Response::text(410, "channel_is_archived"),
        words: &[
            "Slack refused (HTTP 410) channel_is_archived",
            "the webhook's channel is archived",
        ],
        echoes: false,
    }],
    balance: None,
    dry_run_words: &["POST ***", r#""text":"*Оплата &lt;счёта&gt;*\n"#],
};

const MATTERMOST: Provider = Provider {
    role: "gwslack",
    params: &[("url", MATTERMOST_URL)],
    secrets: Secrets {
        whole: &[MATTERMOST_URL],
        pieces: &["zx9qkmattermosthookid"],
    },
    send: |req| {
        chat_is(
            req,
            "/hooks/zx9qkmattermosthookid",
            "**Оплата <счёта>**\nСчёт #42 оплачен & спасибо",
        )
    },
    sent: || Response::text(200, "ok"),
    id: None,
    refusals: &[Refusal {
        answer: |req| {
            Response::new(
                400,
                "application/json",
                json!({"id": "web.incoming_webhook.invalid.app_error",
                    "message": format!("Invalid webhook {}", req.target),
                    "detailed_error": "", "status_code": 400})
                .to_string(),
            )
        },
        words: &[
            "Mattermost refused (HTTP 400)",
            "Invalid webhook",
            "web.incoming_webhook.invalid.app_error",
        ],
        echoes: true,
    }],
    balance: None,
    dry_run_words: &["POST ***", r#""text":"**Оплата <счёта>**\n"#],
};

#[test]
fn textbelt() {
    exercise(&TEXTBELT);
}

#[test]
fn sns() {
    exercise(&SNS);
}

#[test]
fn esendex() {
    exercise(&ESENDEX);
}

#[test]
fn brevo() {
    exercise(&BREVO);
}

#[test]
fn webhook() {
    exercise(&WEBHOOK);
}

#[test]
fn slack() {
    exercise(&SLACK);
}

#[test]
fn mattermost() {
    exercise(&MATTERMOST);
}

/// `mgrnotify list` shows every provider of this group with its title.
#[test]
fn list_shows_the_providers() {
    let root = MgrRoot::new();
    let out = root.run("sbin/mgrnotify", &["list"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for (role, title) in [
        ("gwtextbelt", "Textbelt"),
        ("gwsns", "Amazon SNS"),
        ("gwesendex", "Esendex"),
        ("gwbrevo", "Brevo SMS"),
        ("gwwebhook", "JSON webhook"),
        ("gwslack", "Slack / Mattermost"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(role) && l.contains(title) && !l.contains("ERROR")),
            "{role}: {text}"
        );
    }
}
