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

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use hmac::Mac;
use serde_json::{json, Value};

use common::fake_http::{FakeHttp, Request, Response};
use common::mgr_root::{error_of, stderr, stdout, MgrRoot};
use mgrnotify::script::helpers::{aws_sigv4_headers, url_encode, AwsCredentials};

/// A key, token or password: characters that each encoding spells differently
/// (space, + / = & " < >). ASCII: HTTP header values are.
const SECRET: &str = "Zx9 +/=&\"Qk#1<>";
/// The message, with the Cyrillic a notice has and characters forms, XML and Slack
/// escape.
const TEXT: &str = "Счёт #42 оплачен & спасибо";
const SUBJECT: &str = "Оплата <счёта>";
/// The user's phone as BILLmanager has it, and in E.164 digits.
const PHONE: &str = "+7 (999) 000-00-00";
const NUMBER: &str = "79990000000";

const AWS_ACCESS_KEY: &str = "AKIDEXAMPLE";
const WEBHOOK_URL: &str = "https://notify.example.com/billing/Zx9QkWebhookTok3n?team=ops";
const SLACK_URL: &str = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/Zx9QkSlackTok3nXXXX";
const MATTERMOST_URL: &str = "https://chat.example.com/hooks/zx9qkmattermosthookid";

type Check = fn(&Request) -> Result<(), String>;

/// One provider script and the public API it must speak.
struct Provider {
    role: &'static str,
    /// Its gateway parameters.
    params: &'static [(&'static str, &'static str)],
    /// Every credential among them, and distinctive pieces of them: none may be
    /// seen, not even in part.
    secrets: &'static [&'static str],
    fragments: &'static [&'static str],
    /// Checks a send request against the API description.
    send: Check,
    /// The provider's answer to a valid send request, and the id it carries (none for
    /// chat webhooks, which give no id).
    sent: fn() -> Response,
    id: Option<&'static str>,
    /// A documented refusal and what the operator must read in the error; whether the
    /// refusal echoes the credentials back, as careless APIs do.
    refuse: fn(&Request) -> Response,
    refusal_words: &'static [&'static str],
    echoes: bool,
    /// The account call of check_connection, and its answer.
    balance: Option<(Check, fn() -> Response)>,
    /// What the dry run must print: method, URL, masked credentials, the number.
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

fn header_is(req: &Request, name: &str, want: &str) -> Result<(), String> {
    expect(name, req.header(name).unwrap_or(""), want)
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

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

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
    format!(
        "{} {} {}",
        req.target,
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

const TEXTBELT: Provider = Provider {
    role: "gwtextbelt",
    params: &[("key", SECRET), ("sender", "Shop")],
    secrets: &[SECRET],
    fragments: &["Zx9", "Qk#1"],
    send: |req| {
        method_path(req, "POST", "/text")?;
        content_type(req, "application/x-www-form-urlencoded")?;
        form_is(
            &req.form(),
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
    refuse: |req| {
        Response::json(
            &json!({"success": false, "quotaRemaining": 0,
                "error": format!("Out of quota: {}", echo(req))})
            .to_string(),
        )
    },
    refusal_words: &[
        "Textbelt refused (HTTP 200)",
        "Out of quota",
        "quota remaining 0",
    ],
    echoes: true,
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
    secrets: &[SECRET, AWS_ACCESS_KEY],
    fragments: &["Zx9", "Qk#1"],
    send: |req| {
        method_path(req, "POST", "/")?;
        content_type(req, "application/x-www-form-urlencoded")?;
        form_is(
            &req.form(),
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
    refuse: |req| {
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
    refusal_words: &[
        "Amazon SNS error InvalidClientTokenId (HTTP 403)",
        "the access key ID does not exist",
        "The security token included in the request is invalid",
    ],
    echoes: true,
    balance: Some((
        |req| {
            method_path(req, "POST", "/")?;
            form_is(
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
    secrets: &[SECRET],
    fragments: &["Zx9", "Qk#1"],
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
    refuse: |req| {
        Response::text(
            402,
            &format!("Insufficient message credits for {}", echo(req)),
        )
    },
    refusal_words: &[
        "Esendex refused (HTTP 402, not enough message credits)",
        "Insufficient message credits",
    ],
    echoes: true,
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
    secrets: &[SECRET],
    fragments: &["Zx9", "Qk#1"],
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
    refuse: |req| {
        Response::new(
            401,
            "application/json",
            json!({"code": "unauthorized",
                "message": format!("Key not found: {}", req.header("api-key").unwrap_or(""))})
            .to_string(),
        )
    },
    refusal_words: &[
        "Brevo error unauthorized (HTTP 401, the API key is missing or wrong)",
        "Key not found",
    ],
    echoes: true,
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
    secrets: &[SECRET, WEBHOOK_URL],
    fragments: &["Zx9", "Qk#1", "Zx9QkWebhookTok3n"],
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
    refuse: |req| {
        Response::new(
            500,
            "application/json",
            json!({"error": format!("handler crashed on {}", echo(req))}).to_string(),
        )
    },
    refusal_words: &["the webhook refused (HTTP 500)", "handler crashed"],
    echoes: true,
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
    secrets: &[SLACK_URL],
    fragments: &["Zx9QkSlackTok3n"],
    send: |req| {
        chat_is(
            req,
            "/services/T0AAAAAAA/B0BBBBBBB/Zx9QkSlackTok3nXXXX",
            "*Оплата &lt;счёта&gt;*\nСчёт #42 оплачен &amp; спасибо",
        )
    },
    sent: || Response::text(200, "ok"),
    id: None,
    refuse: |_| Response::text(410, "channel_is_archived"),
    refusal_words: &[
        "Slack refused (HTTP 410) channel_is_archived",
        "the webhook's channel is archived",
    ],
    echoes: false,
    balance: None,
    dry_run_words: &["POST ***", r#""text":"*Оплата &lt;счёта&gt;*\n"#],
};

const MATTERMOST: Provider = Provider {
    role: "gwslack",
    params: &[("url", MATTERMOST_URL)],
    secrets: &[MATTERMOST_URL],
    fragments: &["zx9qkmattermosthookid"],
    send: |req| {
        chat_is(
            req,
            "/hooks/zx9qkmattermosthookid",
            "**Оплата <счёта>**\nСчёт #42 оплачен & спасибо",
        )
    },
    sent: || Response::text(200, "ok"),
    id: None,
    refuse: |req| {
        Response::new(
            400,
            "application/json",
            json!({"id": "web.incoming_webhook.invalid.app_error",
                "message": format!("Invalid webhook {}", req.target),
                "detailed_error": "", "status_code": 400})
            .to_string(),
        )
    },
    refusal_words: &[
        "Mattermost refused (HTTP 400)",
        "Invalid webhook",
        "web.incoming_webhook.invalid.app_error",
    ],
    echoes: true,
    balance: None,
    dry_run_words: &["POST ***", r#""text":"**Оплата <счёта>**\n"#],
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
         <message>{}</message><subject>{}</subject><user><id>7</id><phone>{PHONE}</phone></user>\
         <project><id>1</id></project></doc>",
        p.role,
        xml_escape(&xmlparams(p, api_url)),
        xml_escape(TEXT),
        xml_escape(SUBJECT),
    )
}

/// Every spelling a secret could leak in.
fn spellings(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    vec![
        secret.to_owned(),
        url_encode(secret),
        url_encode(secret).replace("%20", "+"),
        base64::engine::general_purpose::STANDARD.encode(secret),
        json[1..json.len() - 1].to_owned(),
        xml_escape(secret),
    ]
}

fn assert_no_secret(p: &Provider, place: &str, text: &str) {
    let fragments = p.fragments.iter().map(|f| f.to_string());
    for leak in p.secrets.iter().flat_map(|s| spellings(s)).chain(fragments) {
        assert!(
            !text.contains(&leak),
            "{}: the secret as {leak:?} in {place}:\n{text}",
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
            if let Some((check, answer)) = balance {
                if check(req).is_ok() {
                    return answer();
                }
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
    let want = match p.id {
        Some(id) => format!("<doc><id>{id}</id></doc>"),
        None => "<doc/>".to_owned(),
    };
    assert_eq!(stdout(&out).trim(), want, "{}", p.role);
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
    if p.echoes {
        assert!(
            msg.contains("***"),
            "{}: the echo is redacted: {msg}",
            p.role
        );
    }
    outputs.push(out);

    // The dry run: the real endpoint, the secrets masked.
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
            PHONE,
            "--text",
            TEXT,
            "--subject",
            SUBJECT,
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
