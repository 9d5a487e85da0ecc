//! The notification-file fixtures under tests/fixtures/notify (for the ntsms end-to-end
//! test) render to the text stated here, so a queue test can rely on them.

use mgrnotify::notice;
use mgrnotify::template;

/// What both the XSLT and the EJS fixture render to.
const EXPECTED_TEXT: &str = "Иван Петров, счёт INV-42: VPS «Старт» 199.00; Домен example.рф 590.50; итого 789.50 руб. Хостинг «Ромашка»";

fn render_fixture(name: &str) -> Result<template::Rendered, template::TemplateError> {
    let path = format!(
        "{}/tests/fixtures/notify/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let notices = notice::parse_file(&text).unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].provider_id().as_deref(), Some("1"));
    template::render(&notices[0])
}

#[test]
fn xslt_fixture() {
    let rendered = render_fixture("sms_xslt.xml").unwrap();
    assert_eq!(rendered.text, EXPECTED_TEXT);
    assert_eq!(rendered.subject, "Счёт № 42");
}

#[test]
fn ejs_fixture() {
    let rendered = render_fixture("sms_ejs.xml").unwrap();
    assert_eq!(rendered.text, EXPECTED_TEXT);
    assert_eq!(rendered.subject, "Счёт № 42");
}

#[test]
fn endless_loop_fixture_fails_with_a_clear_error() {
    let err = render_fixture("sms_ejs_endless_loop.xml").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("EJS: the template ran longer than"),
        "{err}"
    );
    // The kind crosses the render process's socket.
    assert_eq!(err.kind, mgrnotify::template::TemplateErrorKind::Limit);
}
