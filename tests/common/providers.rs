//! The harness of the table-driven provider tests: a provider script described by the
//! public API it must speak, a fake of that API on loopback, and one run through
//! `outgoing`, `check_connection`, the documented refusals and `send --dry-run`, as
//! BILLmanager runs a gateway (`gate/gw<name> --command ...`), with the log at level 9.
//! After the run no credential may be seen in any spelling in `var/`, stdout or stderr.

#![allow(dead_code)]

use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value;

use super::fake_http::{FakeHttp, Request, Response};
use super::mgr_root::{error_of, stderr, stdout, MgrRoot};
use mgrnotify::log::url_encode;

/// A key, token or password: characters that each encoding spells differently
/// (space, + / = & " < >). ASCII: HTTP header values are.
pub const SECRET: &str = "Zx9 +/=&\"Qk#1<>";
/// The message, with the Cyrillic a notice has and characters forms, XML and Slack
/// escape.
pub const TEXT: &str = "Счёт #42 оплачен & спасибо";
pub const SUBJECT: &str = "Оплата <счёта>";
/// The user's phone as BILLmanager has it, and in E.164 digits.
pub const PHONE: &str = "+7 (999) 000-00-00";
pub const NUMBER: &str = "79990000000";

pub type Check = fn(&Request) -> Result<(), String>;

/// One provider script and the public API it must speak.
pub struct Provider {
    pub role: &'static str,
    /// Its gateway parameters.
    pub params: &'static [(&'static str, &'static str)],
    /// The credentials among them.
    pub secrets: Secrets,
    /// Checks a send request against the API description.
    pub send: Check,
    /// The provider's answer to a valid send request, and the id it carries (none for
    /// chat webhooks, which give no id).
    pub sent: fn() -> Response,
    pub id: Option<&'static str>,
    /// Documented refusals of a valid send request.
    pub refusals: &'static [Refusal],
    /// The balance (or account) call of check_connection, and its answer; without one
    /// the gateway must not offer check_connection.
    pub balance: Option<(Check, fn() -> Response)>,
    /// What the dry run must print: method and URL, the masked credentials, the number
    /// as the provider wants it.
    pub dry_run_words: &'static [&'static str],
}

/// Every credential of a provider and distinctive pieces of them: none may be seen,
/// in any spelling, not even in part.
pub struct Secrets {
    pub whole: &'static [&'static str],
    pub pieces: &'static [&'static str],
}

/// The credentials of a provider whose only secret is `SECRET`.
pub const JUST_SECRET: Secrets = Secrets {
    whole: &[SECRET],
    pieces: SECRET_PIECES,
};
pub const SECRET_PIECES: &[&str] = &["Zx9", "Qk#1"];

/// A documented error answer and what the operator must read in the error; whether
/// the answer echoes the request's credentials back, as careless APIs do (then the
/// error shows them redacted).
pub struct Refusal {
    pub answer: fn(&Request) -> Response,
    pub words: &'static [&'static str],
    pub echoes: bool,
}

// ---- request checks ----

pub fn expect(what: &str, got: impl AsRef<str>, want: &str) -> Result<(), String> {
    if got.as_ref() == want {
        Ok(())
    } else {
        Err(format!("{what}: {:?}, want {want:?}", got.as_ref()))
    }
}

pub fn method_path(req: &Request, method: &str, path: &str) -> Result<(), String> {
    expect("method", &req.method, method)?;
    expect("path", req.path(), path)
}

pub fn content_type(req: &Request, want: &str) -> Result<(), String> {
    let got = req.header("content-type").unwrap_or("");
    if got.starts_with(want) {
        Ok(())
    } else {
        Err(format!("content-type {got:?}, want {want}"))
    }
}

pub fn header_is(req: &Request, name: &str, want: &str) -> Result<(), String> {
    expect(name, req.header(name).unwrap_or(""), want)
}

pub fn auth_is(req: &Request, want: &str) -> Result<(), String> {
    header_is(req, "authorization", want)
}

/// The fields must be exactly `want` (in any order).
pub fn fields_are(fields: &[(String, String)], want: &[(&str, &str)]) -> Result<(), String> {
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

/// A form body whose fields are exactly `want` (in any order).
pub fn form_is(req: &Request, want: &[(&str, &str)]) -> Result<(), String> {
    content_type(req, "application/x-www-form-urlencoded")?;
    fields_are(&req.form(), want)
}

pub fn json_is(req: &Request, want: Value) -> Result<(), String> {
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

/// The value of an HTTP Basic Authorization header.
pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// What a careless provider echoes back: the request's body and its Authorization
/// header.
pub fn echo(req: &Request) -> String {
    format!(
        "{} {}",
        req.body_text(),
        req.header("authorization").unwrap_or("")
    )
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---- running a gateway ----

/// The xmlparams document of a gateway with `params`, pointed at `api_url`.
pub fn xmlparams(params: &[(&str, &str)], api_url: &str) -> String {
    let mut doc = String::from("<doc>");
    for (name, value) in params {
        doc.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
    }
    doc.push_str(&format!("<api_url>{api_url}</api_url></doc>"));
    doc
}

/// The `outgoing` input: the provider's gateway pointed at `api_url`, and a notice of
/// `TEXT` and `SUBJECT` to a user with `PHONE`.
pub fn outgoing_doc(p: &Provider, api_url: &str) -> String {
    format!(
        "<doc><gateway><id>3</id><gateway_module>{}</gateway_module><xmlparams>{}</xmlparams></gateway>\
         <message>{}</message><subject>{}</subject><user><id>7</id><phone>{PHONE}</phone></user>\
         <project><id>1</id></project></doc>",
        p.role,
        xml_escape(&xmlparams(p.params, api_url)),
        xml_escape(TEXT),
        xml_escape(SUBJECT),
    )
}

/// Runs `gate/<role> --command <command>` with `stdin`, as BILLmanager does.
pub fn run_gateway(root: &MgrRoot, role: &str, command: &str, stdin: &str) -> Output {
    root.run(&format!("gate/{role}"), &["--command", command], stdin)
}

/// `mgrnotify send <role> --dry-run` with `params` to `PHONE`, `text` under `SUBJECT`;
/// it must succeed.
pub fn dry_run(root: &MgrRoot, role: &str, params: &[(&str, &str)], text: &str) -> Output {
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
            PHONE,
            "--text",
            text,
            "--subject",
            SUBJECT,
            "--params",
            &file.to_string_lossy(),
            "--dry-run",
        ],
        "",
    );
    assert!(out.status.success(), "{role}: {}", stderr(&out));
    out
}

// ---- secrets ----

/// Every spelling a secret could leak in.
pub fn spellings(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).expect("a string is JSON");
    vec![
        secret.to_owned(),
        url_encode(secret),
        url_encode(secret).replace("%20", "+"),
        base64::engine::general_purpose::STANDARD.encode(secret),
        json[1..json.len() - 1].to_owned(),
        xml_escape(secret),
    ]
}

/// None of the provider's secrets, in any spelling, and none of their pieces in `text`.
pub fn assert_no_secret(p: &Provider, place: &str, text: &str) {
    let whole = p.secrets.whole.iter().flat_map(|s| spellings(s));
    let pieces = p.secrets.pieces.iter().map(|s| s.to_string());
    for leak in whole.chain(pieces) {
        assert!(
            !text.contains(&leak),
            "{}: the secret as {leak:?} in {place}:\n{text}",
            p.role
        );
    }
}

/// The log at level 9 shows the HTTP exchanges, yet no file in `var/` and no stdout or
/// stderr of `outputs` shows a secret.
fn assert_nothing_leaked(p: &Provider, root: &MgrRoot, outputs: &[Output]) {
    let log = root.read(&format!("var/{}.log", p.role));
    assert!(
        log.contains("http request") && log.contains("http reply"),
        "{}: the log at level 9 shows the exchanges:\n{log}",
        p.role
    );
    let var = std::fs::read_dir(root.path().join("var")).expect("read var/");
    for entry in var.flatten() {
        if entry.path().is_file() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert_no_secret(p, &entry.path().display().to_string(), &text);
        }
    }
    for out in outputs {
        assert_no_secret(p, "stdout", &stdout(out));
        assert_no_secret(p, "stderr", &stderr(out));
    }
}

// ---- the run ----

/// What the fake answers a valid send request: 0 the success, n the n-th refusal.
const SUCCESS: usize = 0;

/// A fake of the provider's API: the balance call gets its answer, a send request the
/// success or the chosen refusal, anything else a 400 saying what is wrong.
fn fake_provider(p: &'static Provider, answer: Arc<AtomicUsize>) -> FakeHttp {
    FakeHttp::start(move |req| {
        if let Some((is_balance, balance)) = p.balance {
            if is_balance(req).is_ok() {
                return balance();
            }
        }
        match (p.send)(req) {
            Err(why) => Response::text(400, &format!("fake provider: bad request: {why}")),
            Ok(()) => match answer.load(Ordering::SeqCst) {
                SUCCESS => (p.sent)(),
                n => (p.refusals[n - 1].answer)(req),
            },
        }
    })
}

/// Runs one provider through send, check_connection, its refusals and a dry run.
pub fn exercise(p: &'static Provider) {
    let root = MgrRoot::new();
    root.write("etc/debug.conf", &format!("{} 9\n", p.role));
    let answer = Arc::new(AtomicUsize::new(SUCCESS));
    let fake = fake_provider(p, answer.clone());
    let mut outputs = Vec::new();

    let out = run_gateway(&root, p.role, "outgoing", &outgoing_doc(p, &fake.url()));
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
            xml_escape(&xmlparams(p.params, &fake.url()))
        );
        let out = run_gateway(&root, p.role, "check_connection", &form);
        assert!(out.status.success(), "{}: {}", p.role, stdout(&out));
        // The protocol: the form comes back as it was sent, credentials and all.
        assert_eq!(stdout(&out), form, "{}", p.role);
        assert_no_secret(p, "stderr", &stderr(&out));
        let last = fake.requests().pop().expect("the balance request");
        assert_eq!(check(&last), Ok(()), "{}", p.role);
    } else {
        let out = run_gateway(&root, p.role, "features", "");
        assert!(
            !stdout(&out).contains("check_connection"),
            "{}: {}",
            p.role,
            stdout(&out)
        );
    }

    for (n, refusal) in p.refusals.iter().enumerate() {
        answer.store(n + 1, Ordering::SeqCst);
        let out = run_gateway(&root, p.role, "outgoing", &outgoing_doc(p, &fake.url()));
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
        if refusal.echoes {
            assert!(
                msg.contains("***"),
                "{}: the echo is redacted: {msg}",
                p.role
            );
        }
        outputs.push(out);
    }

    // The dry run: the real endpoint, the secrets masked.
    let out = dry_run(&root, p.role, p.params, TEXT);
    let text = stdout(&out);
    for word in p.dry_run_words {
        assert!(text.contains(word), "{}: '{word}' not in:\n{text}", p.role);
    }
    outputs.push(out);

    assert_nothing_leaked(p, &root, &outputs);
}
