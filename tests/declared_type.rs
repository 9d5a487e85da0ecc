//! A notification type is data: a provider script alone declares `ntdemo` with its
//! contact field, and `mgrnotify sync` makes BILLmanager's files for it, the role answers
//! `features`, and the queue sends ntdemo rows through the script. No Rust for it.

mod common;

use common::fake_http::{FakeHttp, Request, Response};
use common::mariadb::TestDb;
use common::mgr_root::{stderr, stdout, MgrRoot};
use common::mgrctl::Mgrctl;

/// A chat service's "send a direct message" API, as a script would call it.
const GWDEMO: &str = r#"
fn metadata() {
    #{
        title: #{en: "Demo chat", ru: "Демо-чат"},
        notify_module: "ntdemo",
        contact: #{
            field: "demo",
            title: #{en: "Demo chat messages", ru: "Сообщения демо-чата"},
            label: #{en: "Demo chat", ru: "Демо-чат"},
            hint: #{en: "Your demo chat name for notifications", ru: "Имя в демо-чате для уведомлений"},
            check: "email",
            size: 96,
        },
        fields: [#{name: "token", type: "password", required: true, label: "Token"}],
    }
}

fn outgoing(req) {
    let to = req.user.demo ?? "";
    if to == "" { fail_permanent("the user has no demo chat name"); }
    let body = json_build(#{to: to, text: req.subject + ": " + req.message, token: req.params.token});
    let reply = http_post(req.params.api_url + "/send", "application/json", body);
    if reply.status != 200 { fail(`demo refused: ${reply.body}`); }
}

fn ingoing(params) {
    let reply = http_post(params.api_url + "/poll", "application/json", json_build(#{token: params.token}));
    if reply.status != 200 { fail(`demo refused: ${reply.body}`); }
    let messages = [];
    for m in json_parse(reply.body).messages ?? [] {
        messages.push(#{from: m.user, text: m.message});
    }
    messages
}
"#;

fn run_sync(root: &MgrRoot) -> std::process::Output {
    root.run("sbin/mgrnotify", &["sync"], "")
}

#[test]
fn sync_makes_the_type_from_the_script() {
    let root = MgrRoot::new();
    root.add_script("gwdemo", GWDEMO);
    let out = run_sync(&root);
    assert!(out.status.success(), "{}", stderr(&out));

    let link = root.path().join("notify/ntdemo");
    assert_eq!(
        std::fs::read_link(&link).ok().as_deref(),
        Some(std::path::Path::new("../sbin/mgrnotify"))
    );
    assert_eq!(
        root.read("etc/sql/billmgr.user.addon/demo"),
        "type=string\nsize=96\naccess_read=user+\naccess_write=user+\ndefault=\n"
    );
    let text = root.read("etc/xml/billmgr_mod_ntdemo.xml");
    let doc = roxmltree::Document::parse(&text).expect("well-formed plugin XML");
    let field = doc
        .descendants()
        .find(|n| n.has_tag_name("field"))
        .expect("a form field");
    assert_eq!(field.attribute("name"), Some("demo"));
    assert_eq!(field.attribute("after"), Some("phone"));
    let input = field.first_element_child().expect("its input");
    assert_eq!(input.attribute("check"), Some("email"));
    let form_meta = field.ancestors().find(|n| n.has_tag_name("metadata"));
    assert_eq!(
        form_meta.and_then(|m| m.attribute("name")),
        Some("user_include")
    );
    let msg = |lang: &str, block: &str, name: &str| {
        doc.descendants()
            .filter(|n| n.has_tag_name("lang") && n.attribute("name") == Some(lang))
            .flat_map(|l| l.children())
            .filter(|m| m.attribute("name") == Some(block))
            .flat_map(|m| m.children())
            .find(|m| m.attribute("name") == Some(name))
            .and_then(|m| m.text())
            .map(str::to_owned)
    };
    for name in ["type_ntdemo", "modulename_ntdemo", "ntdemo"] {
        assert_eq!(
            msg("ru", "include.notify", name).as_deref(),
            Some("Сообщения демо-чата")
        );
        assert_eq!(
            msg("en", "include.notify", name).as_deref(),
            Some("Demo chat messages")
        );
    }
    assert_eq!(msg("en", "user.edit", "demo").as_deref(), Some("Demo chat"));
    assert_eq!(
        msg("ru", "user.edit", "hint_demo").as_deref(),
        Some("Имя в демо-чате для уведомлений")
    );

    let out = root.run("notify/ntdemo", &["--command", "features"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let features = stdout(&out);
    let doc = roxmltree::Document::parse(&features).unwrap();
    let contact = doc
        .descendants()
        .find(|n| n.has_tag_name("contact_type"))
        .and_then(|n| n.text());
    assert_eq!(contact, Some("demo"), "{features}");
    let listing = stdout(&root.run("sbin/mgrnotify", &["list"], ""));
    assert!(
        listing
            .lines()
            .any(|l| l.contains("ntdemo") && l.contains("gwdemo") && l.contains("installed")),
        "{listing}"
    );

    // The script gone, its type's link and XML go; the column's file stays (its data
    // is the customers').
    std::fs::remove_file(root.path().join("etc/mgrnotify/scripts/gwdemo.rhai")).unwrap();
    let out = run_sync(&root);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(link.symlink_metadata().is_err());
    assert!(!root.path().join("etc/xml/billmgr_mod_ntdemo.xml").exists());
    assert!(root.path().join("etc/sql/billmgr.user.addon/demo").exists());
}

#[test]
fn an_undeclared_type_is_an_unknown_role() {
    let root = MgrRoot::new();
    std::os::unix::fs::symlink("../sbin/mgrnotify", root.path().join("notify/ntnone")).unwrap();
    let out = root.run("notify/ntnone", &["--command", "features"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("unknown role 'ntnone'"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("<error"), "{}", stdout(&out));
}

#[test]
fn a_script_with_a_type_of_its_own_but_no_contact_is_refused_by_sync() {
    let root = MgrRoot::new();
    root.add_script(
        "gwbad",
        r#"fn metadata() { #{title: "Bad", notify_module: "ntbad"} } fn outgoing(req) {}"#,
    );
    let out = run_sync(&root);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("contact"), "{}", stderr(&out));
    assert!(!root.path().join("notify/ntbad").exists());
}

#[test]
fn the_queue_sends_a_declared_type_through_its_script() {
    let fake = FakeHttp::start(|req: &Request| {
        let body = req.json().unwrap_or_default();
        let ok = req.method == "POST"
            && req.path() == "/send"
            && body["to"] == "alice@demo.example"
            && body["token"] == "tok-secret"
            && body["text"] == "Subj: Your invoice is ready";
        if ok {
            Response::json("{}")
        } else {
            Response::text(400, "unexpected request")
        }
    });
    let root = MgrRoot::new();
    root.add_script("gwdemo", GWDEMO);
    assert!(run_sync(&root).status.success());
    let db = TestDb::create();
    // BILLmanager adds the column from the addon file on restart.
    db.exec("ALTER TABLE `user` ADD demo VARCHAR(96) NULL");
    db.exec("INSERT INTO `user` (id, name, demo) VALUES (7, 'client', 'alice@demo.example')");
    db.exec(&format!(
        "INSERT INTO gateway (name, gateway_module, notify_module, gateway_type, active, project, xmlparams) \
         VALUES ('demo', 'gwdemo', 'ntdemo', 'outgoing', 'on', 1, \
         '<doc><token>tok-secret</token><api_url>{}</api_url></doc>')",
        fake.url()
    ));
    // The notice has no contact: it comes from the user table's `demo` column.
    root.write(
        "var/notify/d1",
        &common::mariadb::notice_file("Your invoice is ready", None, 1),
    );
    db.exec(
        "INSERT INTO notifytask (modulename, filename, createdate) \
         VALUES ('ntdemo', 'd1', '2026-01-01 00:00:00')",
    );
    let out = root.run_env(
        "notify/ntdemo",
        &["--command", "process"],
        "",
        &[("MGRNOTIFY_DB_URL", &db.url())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.count(), 1, "{:?}", db.tasks());
    assert!(db.tasks().is_empty(), "{:?}", db.tasks());
    assert!(!root.read("var/ntdemo.log").contains("tok-secret"));
}

#[test]
fn getmessage_hands_the_chat_messages_on_to_support() {
    let fake = FakeHttp::start(|req: &Request| {
        let body = req.json().unwrap_or_default();
        if req.method == "POST" && req.path() == "/poll" && body["token"] == "in-secret" {
            Response::json(
                r##"{"messages": [
                    {"user": "Alice@demo.example", "message": "#55 thanks, works now"},
                    {"user": "alice@demo.example", "message": "#66 not mine\nreally"},
                    {"user": "stranger@demo.example", "message": "hello?"}
                ]}"##,
            )
        } else {
            Response::text(400, "unexpected request")
        }
    });
    let root = MgrRoot::new();
    root.add_script("gwdemo", GWDEMO);
    assert!(run_sync(&root).status.success());
    let mgrctl = Mgrctl::install(root.path());
    let db = TestDb::create();
    db.exec("ALTER TABLE `user` ADD demo VARCHAR(96) NULL");
    db.exec(
        "INSERT INTO `user` (id, account, name, demo) VALUES (7, 70, 'client', 'alice@demo.example')",
    );
    db.exec(
        "INSERT INTO ticket (id, account_client, name) VALUES (55, 70, 'mine'), (66, 80, 'theirs')",
    );
    for (kind, token) in [("outgoing", "out-secret"), ("ingoing", "in-secret")] {
        db.exec(&format!(
            "INSERT INTO gateway (name, gateway_module, notify_module, gateway_type, active, project, xmlparams) \
             VALUES ('demo', 'gwdemo', 'ntdemo', '{kind}', 'on', 1, \
             '<doc><token>{token}</token><api_url>{}</api_url></doc>')",
            fake.url()
        ));
    }
    let getmessage = |gate: &str| {
        root.run_env(
            "notify/ntdemo",
            &["--command", "getmessage", "--gate", gate],
            "",
            &[("MGRNOTIFY_DB_URL", &db.url())],
        )
    };
    // The outgoing row is not an ingoing gateway: nothing to do.
    let out = getmessage("1");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.count(), 0);

    let out = getmessage("all");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.count(), 1, "the ingoing gateway was asked once");
    let calls = mgrctl.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    // A reply to the sender's own ticket...
    assert_eq!(Mgrctl::arg(&calls[0], "elid"), Some("55"));
    assert_eq!(Mgrctl::arg(&calls[0], "su"), Some("client"));
    assert_eq!(Mgrctl::arg(&calls[0], "message"), Some("thanks, works now"));
    // ...and someone else's ticket number is never written into: a new ticket.
    assert_eq!(Mgrctl::arg(&calls[1], "elid"), None);
    assert_eq!(Mgrctl::arg(&calls[1], "subject"), Some("#66 not mine"));
    // The stranger's message is kept for the operator, not lost.
    let kept: Vec<_> = std::fs::read_dir(root.path().join("var/mgrnotify/ntdemo/unmatched"))
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].contains("stranger@demo.example"), "{kept:?}");
    assert!(!root.read("var/ntdemo.log").contains("in-secret"));
}
