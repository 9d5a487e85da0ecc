//! nttelegram and gwtelegram against a fake Telegram Bot API on loopback that checks
//! every request against the public Bot API (core.telegram.org/bots/api: methods,
//! parameters, JSON shapes, the token in the path) and replays getUpdates like
//! Telegram (updates below the offset are forgotten); a real MariaDB; a stand-in
//! `sbin/mgrctl` that records its calls.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::fake_http::{FakeHttp, Request, Response};
use common::mariadb::TestDb;
use common::mgr_root::{stderr, stdout, MgrRoot};
use common::mgrctl::{Answer, Mgrctl};

const BOT_ID: &str = "7012345678";
const TOKEN: &str = "7012345678:AAHk3Zq_secret-Token-Part-9xYw";
const TOKEN_SECRET: &str = "AAHk3Zq_secret-Token-Part-9xYw";
const BOT_NAME: &str = "shop_notify_bot";
const ALICE_CHAT: i64 = 1001;
const STRANGER_CHAT: i64 = 2002;
const BOB_CHAT: i64 = 3003;

/// What the fake Telegram holds and saw.
#[derive(Default)]
struct World {
    /// Updates not yet confirmed.
    updates: Vec<Value>,
    /// (chat_id, text) of every sendMessage.
    sent: Vec<(i64, String)>,
    /// The parse_mode of every sendMessage.
    parse_modes: Vec<Option<String>>,
    /// Offsets getUpdates was called with.
    offsets: Vec<i64>,
    /// Requests that break the Bot API's rules.
    violations: Vec<String>,
    /// sendMessage answers after this long (a hanging API).
    send_delay: Option<Duration>,
    /// What a method answers instead of the API's normal reply (an API in trouble).
    forced: Vec<(&'static str, Response)>,
}

struct FakeTelegram {
    http: FakeHttp,
    world: Arc<Mutex<World>>,
}

impl FakeTelegram {
    fn start() -> Self {
        let world = Arc::new(Mutex::new(World::default()));
        let w = world.clone();
        let http = FakeHttp::start(move |req| answer(&mut w.lock().unwrap(), req));
        Self { http, world }
    }
    fn push(&self, update: Value) {
        self.world.lock().unwrap().updates.push(update);
    }
    fn sent(&self) -> Vec<(i64, String)> {
        self.world.lock().unwrap().sent.clone()
    }
    fn sent_to(&self, chat: i64) -> Vec<String> {
        self.sent()
            .into_iter()
            .filter(|(c, _)| *c == chat)
            .map(|(_, t)| t)
            .collect()
    }
    fn force(&self, method: &'static str, response: Response) {
        let mut w = self.world.lock().unwrap();
        w.forced.retain(|(m, _)| *m != method);
        w.forced.push((method, response));
    }
    fn offsets(&self) -> Vec<i64> {
        self.world.lock().unwrap().offsets.clone()
    }
    fn assert_no_violations(&self) {
        let v = self.world.lock().unwrap().violations.clone();
        assert!(v.is_empty(), "requests against the Bot API's rules: {v:#?}");
    }
}

fn ok(result: Value) -> Response {
    Response::json(&json!({"ok": true, "result": result}).to_string())
}

fn refuse(code: u16, description: &str) -> Response {
    Response::new(
        code,
        "application/json",
        json!({"ok": false, "error_code": code, "description": description}).to_string(),
    )
}

/// The Bot API as far as mgrnotify uses it: POST (or GET) `/bot<token>/<method>`,
/// parameters as a JSON object of the documented names and types.
fn answer(world: &mut World, req: &Request) -> Response {
    let mut bad = |why: String| {
        world
            .violations
            .push(format!("{} {}: {why}", req.method, req.path()));
        refuse(400, &format!("Bad Request: {why}"))
    };
    let Some((token, method)) = req
        .path()
        .strip_prefix("/bot")
        .and_then(|rest| rest.split_once('/'))
    else {
        return bad("not /bot<token>/<method>".into());
    };
    if token != TOKEN {
        return refuse(401, "Unauthorized");
    }
    if let Some((_, forced)) = world.forced.iter().find(|(m, _)| *m == method) {
        return forced.clone();
    }
    if req.method != "POST" && req.method != "GET" {
        return bad(format!("method {}", req.method));
    }
    let params: serde_json::Map<String, Value> = if req.body.is_empty() {
        serde_json::Map::new()
    } else {
        if !req
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return bad("a body that is not declared application/json".into());
        }
        match req.json() {
            Some(Value::Object(m)) => m,
            _ => return bad("the body is not a JSON object".into()),
        }
    };
    let allowed: &[&str] = match method {
        "getMe" => &[],
        "getUpdates" => &["offset", "limit", "timeout", "allowed_updates"],
        "sendMessage" => &[
            "chat_id",
            "text",
            "parse_mode",
            "disable_notification",
            "link_preview_options",
        ],
        _ => return refuse(404, "Not Found"),
    };
    for name in params.keys() {
        if !allowed.contains(&name.as_str()) {
            return bad(format!("{method} has no parameter '{name}'"));
        }
    }
    match method {
        "getMe" => ok(json!({"id": BOT_ID.parse::<i64>().unwrap(), "is_bot": true,
            "first_name": "Shop", "username": BOT_NAME})),
        "getUpdates" => {
            let int = |name: &str| params.get(name).map(|v| v.as_i64());
            let offset = match int("offset") {
                None => 0,
                Some(Some(o)) => o,
                Some(None) => return bad("offset is not an integer".into()),
            };
            match int("limit") {
                None | Some(Some(1..=100)) => {}
                _ => return bad("limit must be 1-100".into()),
            }
            if !matches!(int("timeout"), None | Some(Some(0..))) {
                return bad("timeout must be a non-negative integer".into());
            }
            if let Some(a) = params.get("allowed_updates") {
                if !a.as_array().is_some_and(|l| l.iter().all(Value::is_string)) {
                    return bad("allowed_updates must be an array of strings".into());
                }
            }
            world.offsets.push(offset);
            // Telegram forgets the updates below the offset: they were confirmed.
            world
                .updates
                .retain(|u| u["update_id"].as_i64().unwrap() >= offset);
            let limit = int("limit").flatten().unwrap_or(100) as usize;
            ok(Value::Array(
                world.updates.iter().take(limit).cloned().collect(),
            ))
        }
        "sendMessage" => {
            let Some(chat) = params.get("chat_id").and_then(Value::as_i64) else {
                return bad("chat_id must be an integer (or @channel)".into());
            };
            let Some(text) = params.get("text").and_then(Value::as_str) else {
                return bad("text is required and a string".into());
            };
            let chars = text.chars().count();
            if chars == 0 || chars > 4096 {
                return bad(format!("text must be 1-4096 characters, not {chars}"));
            }
            let mode = params
                .get("parse_mode")
                .map(|m| m.as_str().unwrap_or("?").to_owned());
            match mode.as_deref() {
                None | Some("MarkdownV2" | "Markdown") => {}
                Some("HTML") => {
                    if let Err(why) = telegram_html_ok(text) {
                        return refuse(400, &format!("Bad Request: can't parse entities: {why}"));
                    }
                }
                Some(other) => return bad(format!("parse_mode {other}")),
            }
            if ![ALICE_CHAT, STRANGER_CHAT, BOB_CHAT].contains(&chat) {
                return refuse(400, "Bad Request: chat not found");
            }
            world.sent.push((chat, text.to_owned()));
            world.parse_modes.push(mode);
            let reply = ok(
                json!({"message_id": 500 + world.sent.len(), "date": 1_700_000_000,
                "chat": {"id": chat, "type": "private"}, "text": text}),
            );
            match world.send_delay {
                Some(d) => reply.after(d),
                None => reply,
            }
        }
        _ => unreachable!(),
    }
}

/// The Bot API's HTML style: only its tags (b, strong, i, em, u, ins, s, strike, del,
/// a href, code, pre, blockquote, tg-spoiler), properly nested, and only the entities
/// &lt; &gt; &amp; &quot; and numeric ones.
fn telegram_html_ok(text: &str) -> Result<(), String> {
    const TAGS: &[&str] = &[
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-spoiler",
    ];
    let mut open: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['<', '&']) {
        rest = &rest[i..];
        if rest.starts_with('&') {
            let end = rest.find(';').ok_or("an & that starts no entity")?;
            let name = &rest[1..end];
            let known = matches!(name, "lt" | "gt" | "amp" | "quot")
                || name.strip_prefix('#').is_some_and(|n| {
                    n.parse::<u32>().is_ok()
                        || n.strip_prefix('x')
                            .is_some_and(|h| u32::from_str_radix(h, 16).is_ok())
                });
            if !known {
                return Err(format!("unsupported entity &{name};"));
            }
            rest = &rest[end + 1..];
            continue;
        }
        let end = rest.find('>').ok_or("a < that starts no tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if open.pop().as_deref() != Some(name) {
                return Err(format!("</{name}> closes nothing open"));
            }
            continue;
        }
        let name = tag.split_whitespace().next().unwrap_or("");
        if !TAGS.contains(&name) {
            return Err(format!("unsupported start tag \"{name}\""));
        }
        if name == "a" && !tag.starts_with("a href=\"") {
            return Err("a link without href".into());
        }
        open.push(name.to_owned());
    }
    match open.last() {
        Some(name) => Err(format!("<{name}> is not closed")),
        None => Ok(()),
    }
}

/// An update with a private text message, as Telegram sends it.
fn message(update_id: i64, chat: i64, username: Option<&str>, lang: &str, text: &str) -> Value {
    let mut from = json!({"id": chat, "is_bot": false, "first_name": "Customer",
        "language_code": lang});
    let mut chat_json = json!({"id": chat, "type": "private", "first_name": "Customer"});
    if let Some(u) = username {
        from["username"] = json!(u);
        chat_json["username"] = json!(u);
    }
    json!({"update_id": update_id, "message": {"message_id": update_id * 10,
        "date": 1_700_000_000, "from": from, "chat": chat_json, "text": text}})
}

struct Setup {
    db: TestDb,
    root: MgrRoot,
    mgrctl: Mgrctl,
    api: FakeTelegram,
    alice: u64,
    bob: u64,
}

impl Setup {
    fn new() -> Self {
        let db = TestDb::create();
        let root = MgrRoot::new();
        let mgrctl = Mgrctl::install(root.path());
        let api = FakeTelegram::start();
        // What etc/sql/billmgr.user.addon/telegram makes BILLmanager add.
        db.exec("ALTER TABLE user ADD telegram VARCHAR(64) NULL");
        let mut c = db.conn();
        use mysql::prelude::Queryable;
        let mut user = |name: &str, account: u32, tg: &str, lang: &str| {
            c.exec_drop(
                "INSERT INTO user (account, name, email, language, telegram) VALUES (?, ?, ?, ?, ?)",
                (account, name, format!("{name}@example.com"), lang, tg),
            )
            .unwrap();
            c.last_insert_id()
        };
        // Customers type the @ the form asks them to leave out.
        let alice = user("alice", 10, "@Alice_TG", "ru");
        let bob = user("bob", 11, "bob_tg", "en");
        db.exec("INSERT INTO ticket (id, account_client, name) VALUES (123, 10, 'VPS'), (456, 11, 'DNS')");
        let params = format!(
            "<doc><token>{TOKEN}</token><api_url>{}</api_url><timeout>5</timeout></doc>",
            api.http.url()
        );
        for kind in ["outgoing", "ingoing"] {
            c.exec_drop(
                "INSERT INTO gateway (name, gateway_module, notify_module, gateway_type, active, \
                 project, xmlparams) VALUES (?, 'gwtelegram', 'nttelegram', ?, 'on', 1, ?)",
                (format!("Telegram {kind}"), kind, &params),
            )
            .unwrap();
        }
        // Every request and its URL in the log: the token must not be in it.
        root.write("etc/debug.conf", "nttelegram 9\ngwtelegram 9\n");
        // gwtelegram declares nttelegram: sync makes its role, plugin XML and addon file.
        let out = root.run("sbin/mgrnotify", &["sync"], "");
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        Self {
            db,
            root,
            mgrctl,
            api,
            alice,
            bob,
        }
    }

    fn run(&self, rel: &str, args: &[&str]) -> std::process::Output {
        self.root
            .run_env(rel, args, "", &[("MGRNOTIFY_DB_URL", &self.db.url())])
    }

    fn getmessage(&self) -> std::process::Output {
        self.run(
            "notify/nttelegram",
            &["--command", "getmessage", "--gate", "all"],
        )
    }

    fn offset(&self) -> String {
        self.root
            .read(&format!("var/mgrnotify/telegram/{BOT_ID}/offset"))
            .trim()
            .to_owned()
    }

    /// Alice sends /start and is linked.
    fn link_alice(&self, update_id: i64) {
        self.api.push(message(
            update_id,
            ALICE_CHAT,
            Some("alice_tg"),
            "en",
            "/start",
        ));
        let out = self.getmessage();
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }

    /// No file under the root, and none of `texts`, holds the token or its secret part.
    fn assert_token_nowhere(&self, texts: &[&str]) {
        for text in texts {
            assert!(!text.contains(TOKEN_SECRET), "the token leaked: {text}");
        }
        let mut dirs = vec![self.root.path().join("var")];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    let bytes = std::fs::read(&p).unwrap_or_default();
                    let text = String::from_utf8_lossy(&bytes);
                    assert!(
                        !text.contains(TOKEN_SECRET),
                        "the token is in {}",
                        p.display()
                    );
                }
            }
        }
    }
}

fn add_task(db: &TestDb, root: &MgrRoot, name: &str, user_id: u64, text: &str) -> u64 {
    root.write(
        &format!("var/notify/{name}"),
        &format!(
            "<doc><notify><tmpl>{text}</tmpl>\
             <notice_xml>&lt;doc&gt;&lt;project&gt;&lt;id&gt;1&lt;/id&gt;&lt;/project&gt;\
             &lt;subject&gt;Invoice&lt;/subject&gt;&lt;/doc&gt;</notice_xml>\
             <user><id>{user_id}</id></user></notify></doc>"
        ),
    );
    use mysql::prelude::Queryable;
    let mut c = db.conn();
    c.exec_drop(
        "INSERT INTO notifytask (modulename, filename) VALUES ('nttelegram', ?)",
        (name,),
    )
    .unwrap();
    c.last_insert_id()
}

#[test]
fn start_links_and_linked_messages_reach_support() {
    let s = Setup::new();
    s.api
        .push(message(40, ALICE_CHAT, Some("Alice_TG"), "en", "/start"));
    s.api
        .push(message(41, STRANGER_CHAT, Some("stranger"), "ru", "/start"));
    s.api
        .push(message(42, STRANGER_CHAT, Some("stranger"), "en", "hello?"));
    s.api.push(message(
        43,
        ALICE_CHAT,
        Some("Alice_TG"),
        "en",
        "#123 thanks, it works",
    ));
    s.api.push(message(
        44,
        ALICE_CHAT,
        Some("Alice_TG"),
        "en",
        "My server is down\nplease help",
    ));
    s.api.push(message(
        45,
        ALICE_CHAT,
        Some("Alice_TG"),
        "en",
        "#456 let me in",
    ));
    // Bob has the username in his profile but never sent /start: not linked.
    s.api
        .push(message(46, BOB_CHAT, Some("bob_tg"), "en", "#456 please"));
    // Someone else using Alice's username from another chat is not Alice's chat.
    s.api.push(message(
        47,
        STRANGER_CHAT,
        Some("alice_tg"),
        "en",
        "#123 fake",
    ));

    let out = s.getmessage();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    s.api.assert_no_violations();

    // Linked, answered in Alice's profile language (ru), not her client's.
    let alice = s.api.sent_to(ALICE_CHAT);
    assert!(
        alice[0].starts_with("Готово") && alice[0].contains("alice"),
        "{alice:?}"
    );
    assert_eq!(
        s.root.read(&format!(
            "var/mgrnotify/telegram/{BOT_ID}/links/{}",
            s.alice
        )),
        format!("{ALICE_CHAT} alice_tg\n")
    );
    // Support: a reply into her own ticket, a new ticket, and someone else's ticket
    // number becomes a new ticket, never a post into it.
    let calls = s.mgrctl.calls();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert_eq!(Mgrctl::arg(&calls[0], "elid"), Some("123"));
    assert_eq!(Mgrctl::arg(&calls[0], "su"), Some("alice"));
    assert_eq!(Mgrctl::arg(&calls[0], "message"), Some("thanks, it works"));
    assert_eq!(Mgrctl::arg(&calls[1], "elid"), None);
    assert_eq!(Mgrctl::arg(&calls[1], "subject"), Some("My server is down"));
    assert_eq!(
        Mgrctl::arg(&calls[1], "message"),
        Some("My server is down\nplease help")
    );
    assert_eq!(Mgrctl::arg(&calls[2], "elid"), None);
    assert_eq!(Mgrctl::arg(&calls[2], "message"), Some("let me in"));
    assert!(calls
        .iter()
        .all(|c| c.contains(&"clientticket.edit".to_owned())));
    assert_eq!(alice[1], "Добавлено в тикет #123.");
    assert!(alice[2].starts_with("Отправлено в поддержку"), "{alice:?}");
    assert!(
        alice[3].contains("#456") && alice[3].contains("не ваш"),
        "{alice:?}"
    );
    // The stranger: not registered (in his client's language), then help, and the
    // one using Alice's name from his own chat gets help too.
    let stranger = s.api.sent_to(STRANGER_CHAT);
    assert_eq!(stranger.len(), 3, "{stranger:?}");
    assert!(stranger[0].starts_with("Не привязано") && stranger[0].contains("@stranger"));
    assert!(stranger[1].contains("/start"), "{stranger:?}");
    assert!(stranger[2].contains("/start"), "{stranger:?}");
    assert_eq!(s.api.sent_to(BOB_CHAT).len(), 1);
    assert!(s.api.sent_to(BOB_CHAT)[0].contains("/start"));

    // Confirmed: the next run asks from 48 on and handles nothing again.
    assert_eq!(s.offset(), "48");
    let out = s.getmessage();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.api.offsets().last(), Some(&48));
    assert_eq!(s.mgrctl.calls().len(), 3);
    assert_eq!(s.api.sent().len(), 8);
    let log = s.root.read("var/nttelegram.log");
    assert!(
        log.contains("getUpdates"),
        "the debug log shows the requests: {log}"
    );
    assert!(
        log.contains("/bot***/getUpdates"),
        "URLs are logged redacted: {log}"
    );
    s.assert_token_nowhere(&[&stdout(&out), &stderr(&out)]);
}

#[test]
fn queued_notifications_go_to_linked_chats_and_unlinked_users_fail_once() {
    let s = Setup::new();
    s.link_alice(1);
    let sent_before = s.api.sent().len();
    let to_alice = add_task(&s.db, &s.root, "a1", s.alice, "Payment received, thank you");
    let to_bob = add_task(&s.db, &s.root, "b1", s.bob, "Invoice 6 is due");

    let out = s.run("notify/nttelegram", &["--command", "process"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    s.api.assert_no_violations();
    let sent = &s.api.sent()[sent_before..];
    assert_eq!(
        sent,
        [(
            ALICE_CHAT,
            "Invoice\n\nPayment received, thank you".to_owned()
        )],
        "only Alice's chat gets a message"
    );
    assert_eq!(s.db.task(to_alice), None, "sent rows leave the queue");
    let bob = s.db.task(to_bob).expect("Bob's row stays for an operator");
    let info = bob.err_info.unwrap_or_default();
    assert!(
        info.contains(&format!("send /start to @{BOT_NAME}")) && info.contains("permanent"),
        "{info}"
    );
    // Permanent: a second run does not try it again.
    let requests = s.api.http.count();
    let out = s.run("notify/nttelegram", &["--command", "process"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.api.http.count(), requests, "nothing retried");
    assert_eq!(s.db.task(to_bob).unwrap().error_count, bob.error_count);
    s.assert_token_nowhere(&[&info, &stdout(&out), &stderr(&out)]);
}

#[test]
fn an_update_is_confirmed_only_once_it_was_handed_on() {
    let s = Setup::new();
    s.link_alice(1);
    // Support is down: the message stays unconfirmed, nobody is told it was posted.
    s.mgrctl.answer(Answer::Fails);
    s.api
        .push(message(2, ALICE_CHAT, Some("alice_tg"), "en", "#123 first"));
    let sent_before = s.api.sent().len();
    let out = s.getmessage();
    assert!(!out.status.success(), "a failed hand-off is an error");
    assert!(stdout(&out).contains("<error"), "{}", stdout(&out));
    assert_eq!(s.offset(), "2");
    assert_eq!(s.api.sent().len(), sent_before);
    // Back up: posted once.
    s.mgrctl.answer(Answer::Ok);
    s.api
        .push(message(3, ALICE_CHAT, Some("alice_tg"), "en", "second"));
    s.api
        .push(message(4, ALICE_CHAT, Some("alice_tg"), "en", "third"));
    // The run dies while answering "second": it was posted and confirmed already.
    s.api.world.lock().unwrap().send_delay = Some(Duration::from_secs(30));
    let mut child = std::process::Command::new(s.root.path().join("notify/nttelegram"))
        .args(["--command", "getmessage", "--gate", "all"])
        .current_dir(s.root.path())
        .env("MGRNOTIFY_DB_URL", s.db.url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while s.api.sent().len() < sent_before + 1 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no answer was sent"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let posted: Vec<String> = s
        .mgrctl
        .calls()
        .iter()
        .filter_map(|c| Mgrctl::arg(c, "message").map(str::to_owned))
        .collect();
    // The failed attempt was recorded by the stand-in too.
    assert_eq!(posted, ["first", "first"]);
    assert_eq!(s.offset(), "3");
    s.api.world.lock().unwrap().send_delay = None;
    let out = s.getmessage();
    assert!(out.status.success(), "{}", stderr(&out));
    let posted: Vec<String> = s
        .mgrctl
        .calls()
        .iter()
        .filter_map(|c| Mgrctl::arg(c, "message").map(str::to_owned))
        .collect();
    assert_eq!(
        posted,
        ["first", "first", "second", "third"],
        "each handed on once"
    );
    assert_eq!(s.offset(), "5");
}

#[test]
fn the_gateway_answers_features_and_checks_the_token() {
    let s = Setup::new();
    let out = s.run("gate/gwtelegram", &["--command", "features"]);
    let features = stdout(&out);
    assert!(
        features.contains("<notify_module>nttelegram</notify_module>"),
        "{features}"
    );
    for f in ["outgoing", "ingoing", "check_connection"] {
        assert!(features.contains(&format!("name=\"{f}\"")), "{features}");
    }
    let out = s.run("notify/nttelegram", &["--command", "features"]);
    assert!(stdout(&out).contains("<contact_type>telegram</contact_type>"));
    let addon = s.root.read("etc/sql/billmgr.user.addon/telegram");
    assert!(
        addon.contains("type=string") && addon.contains("size=64"),
        "{addon}"
    );
    let plugin = s.root.read("etc/xml/billmgr_mod_nttelegram.xml");
    assert!(plugin.contains("name=\"telegram\""), "{plugin}");

    let form = |token: &str| {
        format!(
            "<doc><token>{token}</token><api_url>{}</api_url></doc>",
            s.api.http.url()
        )
    };
    let out = s.root.run(
        "gate/gwtelegram",
        &["--command", "check_connection"],
        &form(TOKEN),
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let wrong = "7012345678:AAHwrongWrongWrong_token-1";
    let out = s.root.run(
        "gate/gwtelegram",
        &["--command", "check_connection"],
        &form(wrong),
    );
    assert!(!out.status.success());
    let reply = stdout(&out);
    assert!(reply.contains("Unauthorized"), "{reply}");
    assert!(!reply.contains("AAHwrongWrongWrong"), "{reply}");
    let out = s.root.run(
        "gate/gwtelegram",
        &["--command", "check_connection"],
        &form("nonsense"),
    );
    assert!(
        stdout(&out).contains("object=\"token\""),
        "{}",
        stdout(&out)
    );
    let seen: BTreeSet<String> = s
        .api
        .http
        .requests()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert!(seen.iter().all(|p| p.ends_with("/getMe")), "{seen:?}");
    s.api.assert_no_violations();
    s.assert_token_nowhere(&[]);
}

#[test]
fn refusals_and_odd_answers_of_the_api_are_clear_errors() {
    let s = Setup::new();
    s.link_alice(1);
    let task = add_task(&s.db, &s.root, "a1", s.alice, "Payment received");
    let process = || {
        let out = s.run("notify/nttelegram", &["--command", "process"]);
        assert!(out.status.success(), "{}", stderr(&out));
        s.db.task(task)
            .expect("the row stays")
            .err_info
            .unwrap_or_default()
    };
    // Flood control: tried again later.
    s.api.force(
        "sendMessage",
        refuse(429, "Too Many Requests: retry after 5"),
    );
    let info = process();
    assert!(
        info.contains("(429)") && info.contains("transient"),
        "{info}"
    );
    // Blocked by the customer: retrying cannot help.
    s.db.exec("UPDATE notifytask SET error_count = 0, err_info = NULL");
    s.api.force(
        "sendMessage",
        refuse(403, "Forbidden: bot was blocked by the user"),
    );
    let info = process();
    assert!(
        info.contains("blocked") && info.contains("permanent"),
        "{info}"
    );

    // A proxy's error page instead of the API: an error, and nothing confirmed.
    s.api
        .push(message(2, ALICE_CHAT, Some("alice_tg"), "en", "hello"));
    s.api.force(
        "getUpdates",
        Response::text(502, "<html>Bad Gateway</html>"),
    );
    let out = s.getmessage();
    assert!(!out.status.success());
    assert!(stdout(&out).contains("not JSON"), "{}", stdout(&out));
    assert_eq!(s.offset(), "2");
    // More updates than asked for: refused whole.
    let flood: Vec<Value> = (2..=102)
        .map(|i| message(i, ALICE_CHAT, Some("alice_tg"), "en", "spam"))
        .collect();
    s.api.force(
        "getUpdates",
        Response::json(&json!({"ok": true, "result": flood}).to_string()),
    );
    let out = s.getmessage();
    assert!(
        stdout(&out).contains("more than the 100"),
        "{}",
        stdout(&out)
    );
    assert_eq!(s.mgrctl.calls().len(), 0);
    assert_eq!(s.offset(), "2");
    s.assert_token_nowhere(&[&stdout(&out), &stderr(&out)]);
}

#[test]
fn html_templates_reach_telegram_in_its_html_subset() {
    let s = Setup::new();
    s.link_alice(1);
    let before = s.api.sent().len();
    // The notice's template makes HTML (escaped once more inside the notification file).
    let html = "&lt;div class=\"mail\"&gt;&lt;p&gt;Payment of &lt;strong&gt;5 &amp;euro;\
                &lt;/strong&gt; received &amp;amp; &lt;span style=\"x\"&gt;booked&lt;/span&gt;.\
                &lt;br&gt;&lt;a href=\"https://my.example.com/billing?a=1&amp;amp;b=2\"&gt;\
                Invoices&lt;/a&gt;&lt;/p&gt;&lt;/div&gt;";
    let short = add_task(&s.db, &s.root, "h1", s.alice, html);
    let long_html = format!("&lt;p&gt;{}&lt;/p&gt;", "Long line. ".repeat(500));
    let long = add_task(&s.db, &s.root, "h2", s.alice, &long_html);
    let out = s.run("notify/nttelegram", &["--command", "process"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    s.api.assert_no_violations();
    assert_eq!(s.db.task(short), None);
    assert_eq!(s.db.task(long), None);
    let world = s.api.world.lock().unwrap();
    let sent: Vec<_> = world.sent[before..]
        .iter()
        .zip(&world.parse_modes[before..])
        .map(|((_, text), mode)| (text.clone(), mode.clone()))
        .collect();
    // The workers may send the two rows in either order; a row's parts go in order.
    let (html, rest): (Vec<_>, Vec<_>) = sent.iter().partition(|(_, mode)| mode.is_some());
    assert_eq!(html.len(), 1, "{sent:?}");
    let (html_sent, mode) = html[0];
    assert_eq!(mode.as_deref(), Some("HTML"));
    assert_eq!(
        html_sent,
        "<b>Invoice</b>\n\nPayment of <b>5 €</b> received &amp; booked.\n\
         <a href=\"https://my.example.com/billing?a=1&amp;b=2\">Invoices</a>"
    );
    // Too long for one HTML message: its text version, split, without markup.
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert!(rest
        .iter()
        .all(|(t, m)| m.is_none() && t.chars().count() <= 4096 && !t.contains('<')));
    assert_eq!(
        rest.iter()
            .map(|(t, _)| t.as_str())
            .collect::<String>()
            .matches("Long line.")
            .count(),
        500
    );
}

#[test]
fn a_message_support_keeps_refusing_is_given_up_after_three_runs() {
    let s = Setup::new();
    s.link_alice(1);
    s.mgrctl.answer(Answer::ErrorXml);
    s.api
        .push(message(2, ALICE_CHAT, Some("alice_tg"), "en", "#123 stuck"));
    s.api
        .push(message(3, ALICE_CHAT, Some("alice_tg"), "en", "next one"));
    let sent_before = s.api.sent().len();
    for run in 1..=2 {
        let out = s.getmessage();
        assert!(!out.status.success(), "run {run}");
        assert_eq!(s.offset(), "2", "run {run}: not confirmed");
        assert_eq!(
            s.api.sent().len(),
            sent_before,
            "run {run}: nothing answered"
        );
    }
    // The third run gives it up and tells Alice (in her profile's language); the next
    // message is tried (and fails the same way for now).
    let out = s.getmessage();
    assert!(!out.status.success());
    assert_eq!(s.offset(), "3");
    let answers = s.api.sent_to(ALICE_CHAT);
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(answers[1].starts_with("Поддержка не смогла"), "{answers:?}");
    let log = s.root.read("var/nttelegram.log");
    assert!(
        log.contains("given up") && log.contains("#123 stuck"),
        "{log}"
    );
    // Support is back: the next message goes through, the given-up one is not retried.
    s.mgrctl.answer(Answer::Ok);
    let out = s.getmessage();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.offset(), "4");
    let posted: Vec<String> = s
        .mgrctl
        .calls()
        .iter()
        .filter_map(|c| Mgrctl::arg(c, "message").map(str::to_owned))
        .collect();
    assert_eq!(posted, ["stuck", "stuck", "stuck", "next one", "next one"]);
}
