//! ntsms end to end with real templates: notification files whose `tmpl` is an XSLT
//! stylesheet or EJS text, rendered and sent through gwepochta in-process to a fake
//! ePochta; a template that never ends gets its error in err_info and is not sent.

mod common;

use std::sync::{Arc, Mutex};

use common::fake_http::{FakeHttp, Request, Response};
use common::mariadb::{run_process, TestDb};
use common::mgr_root::{stderr, MgrRoot};

/// What both fixtures render to, user macro and Cyrillic included.
const EXPECTED: &str = "Иван Петров, счёт INV-42: VPS «Старт» 199.00; Домен example.рф 590.50; \
                        итого 789.50 руб. Хостинг «Ромашка»";

/// A fake ePochta that keeps the `<text>` of every SEND it accepts.
fn epochta() -> (FakeHttp, Arc<Mutex<Vec<String>>>) {
    let texts = Arc::new(Mutex::new(Vec::new()));
    let seen = texts.clone();
    let fake = FakeHttp::start(move |req: &Request| {
        let body = req.body_text();
        let Ok(doc) = roxmltree::Document::parse(&body) else {
            return Response::text(400, "not XML");
        };
        let text_of = |name: &str| {
            doc.descendants()
                .find(|n| n.has_tag_name(name))
                .and_then(|n| n.text())
                .unwrap_or_default()
                .to_owned()
        };
        if req.path() != "/members/sms/xml.php"
            || doc.root_element().tag_name().name() != "SMS"
            || text_of("operation") != "SEND"
            || text_of("number") != "79990000000"
        {
            return Response::text(400, "unexpected request");
        }
        seen.lock().unwrap().push(text_of("text"));
        Response::xml("<RESPONSE><status>0</status><credits>1.0</credits></RESPONSE>")
    });
    (fake, texts)
}

fn queue_fixture(fixture: &str) -> (MgrRoot, TestDb, u64, FakeHttp, Arc<Mutex<Vec<String>>>) {
    let (fake, texts) = epochta();
    let root = MgrRoot::new();
    let db = TestDb::create();
    db.add_epochta_gateway(1, "shop", "pw", &fake.url());
    let path = format!(
        "{}/tests/fixtures/notify/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    root.write(&format!("var/notify/{fixture}"), &text);
    let id = db.add_task(fixture, 0, "2026-01-01 00:00:00", false);
    (root, db, id, fake, texts)
}

#[test]
fn xslt_template_is_rendered_and_sent() {
    let (root, db, _, _fake, texts) = queue_fixture("sms_xslt.xml");
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(*texts.lock().unwrap(), vec![EXPECTED.to_owned()]);
    assert!(db.tasks().is_empty(), "{:?}", db.tasks());
}

#[test]
fn ejs_template_is_rendered_and_sent() {
    let (root, db, _, _fake, texts) = queue_fixture("sms_ejs.xml");
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(*texts.lock().unwrap(), vec![EXPECTED.to_owned()]);
    assert!(db.tasks().is_empty(), "{:?}", db.tasks());
}

#[test]
fn endless_template_is_stopped_and_recorded() {
    let (root, db, id, fake, _) = queue_fixture("sms_ejs_endless_loop.xml");
    let out = run_process(&root, &db);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fake.count(), 0, "nothing was sent");
    let row = db.task(id).expect("the row stays queued");
    assert_eq!(row.error_count, 1);
    let info = row.err_info.unwrap_or_default();
    assert!(info.contains("EJS") && info.contains("stopped"), "{info}");
    assert!(root
        .path()
        .join("var/notify/sms_ejs_endless_loop.xml")
        .exists());
}
