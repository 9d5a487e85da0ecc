//! EJS templates: errors with lines, include refused, the limits, and render() end to end.

use std::time::{Duration, Instant};

use mgrnotify::notice::Notice;
use mgrnotify::template::{self, ejs};

fn refused(template: &str) -> String {
    let err = ejs::render(template, "{}").unwrap_err().to_string();
    assert!(err.starts_with("EJS: "), "{err}");
    err
}

#[test]
fn include_is_refused_clearly() {
    let err = refused("a\n<%- include('header') %>");
    assert!(
        err.contains("include(\"header\") is not supported"),
        "{err}"
    );
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn runtime_errors_name_the_line() {
    let err = refused("ok\nstill ok\n<%= nosuch.field %>");
    assert!(
        err.contains("line 3") && err.contains("ReferenceError"),
        "{err}"
    );
    let err = refused("<% throw 'boom' %>");
    assert!(err.contains("boom"), "{err}");
}

#[test]
fn syntax_errors_name_the_line() {
    let err = refused("line 1\nline 2\n<% if (x { %>\n<% } %>");
    assert!(err.contains("SyntaxError"), "{err}");
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn endless_loop_is_stopped() {
    let started = Instant::now();
    let err = refused("<% while (true) {} %>");
    assert!(err.contains("longer than"), "{err}");
    assert!(started.elapsed() < ejs::TIME_LIMIT + Duration::from_secs(3));
    // A catch block cannot swallow the interrupt.
    let err = refused("<% for (;;) { try { while (true) {} } catch (e) {} } %>");
    assert!(err.contains("longer than"), "{err}");
}

#[test]
fn endless_recursion_is_stopped() {
    let err = refused("<% function f(n) { return f(n + 1) + 1; } %><%= f(0) %>");
    assert!(err.contains("recursed too deep"), "{err}");
}

#[test]
fn endless_allocation_is_stopped() {
    let err = refused("<% var a = []; while (true) { a.push('x'.repeat(1 << 20) + a.length); } %>");
    assert!(err.contains("MiB") || err.contains("longer than"), "{err}");
    let err = refused("<% var s = 'xy'; while (true) { s = s + s; } %>");
    assert!(err.contains("MiB") || err.contains("longer than"), "{err}");
}

#[test]
fn the_engine_works_after_hostile_templates() {
    let _ = ejs::render("<% while (true) {} %>", "{}");
    let _ = ejs::render(
        "<% var a = []; while (true) a.push(new Array(1e5)); %>",
        "{}",
    );
    assert_eq!(ejs::render("<%= a %>", r#"{"a":"fine"}"#).unwrap(), "fine");
}

#[test]
fn a_global_set_by_one_render_is_not_seen_by_the_next() {
    let first = "<% previousCustomer = client; globalThis.alsoKept = client.name %>";
    ejs::render(first, r#"{"client":{"name":"Anna"}}"#).unwrap();
    assert_eq!(
        ejs::render(
            "<%= typeof previousCustomer %>|<%= typeof alsoKept %>",
            r#"{"client":{"name":"Boris"}}"#
        )
        .unwrap(),
        "undefined|undefined"
    );
}

#[test]
fn built_ins_changed_by_one_render_do_not_change_the_escaping_of_the_next() {
    let hostile = [
        "<% String.prototype.replace = function () { return String(this); } %>",
        "<% String = function (s) { return { replace: function () { return s; } }; } %>",
        "<% escapeFn = function (s) { return s; }; Function.prototype.call = null %>",
        "<% Object.defineProperty(Object.prototype, '<', { get: function () { return '<'; } }) %>",
    ];
    for template in hostile {
        ejs::render(template, "{}").unwrap();
        assert_eq!(
            ejs::render("<%= name %>", r#"{"name":"<b>x</b>"}"#).unwrap(),
            "&lt;b&gt;x&lt;/b&gt;",
            "after {template}"
        );
    }
}

#[test]
fn half_an_emoji_becomes_a_replacement_character() {
    let data = r#"{"text":"Оплата 😀 получена"}"#;
    assert_eq!(
        ejs::render("<%= text.slice(0, 8) %>|<%- text.slice(8, 9) %>", data).unwrap(),
        "Оплата \u{FFFD}|\u{FFFD}"
    );
    let err = ejs::render("<% throw new Error('cut ' + text.slice(0, 8)) %>", data).unwrap_err();
    assert!(
        err.to_string().ends_with("Error: cut Оплата \u{FFFD}"),
        "{err}"
    );
}

#[test]
fn numbers_and_dates_are_formatted_for_the_locale() {
    let template = "<%= Number(x).toLocaleString('ru-RU', {minimumFractionDigits: 2}) %>\
        |<%= (1234567.891).toLocaleString('en-US') %>\
        |<%= new Intl.NumberFormat('ru', {style: 'currency', currency: 'RUB'}).format(x) %>\
        |<%= new Intl.NumberFormat('en-US', {style: 'currency', currency: 'USD'}).format(-x) %>\
        |<%= new Date(Date.UTC(2024, 4, 6, 13, 5)).toLocaleDateString('ru-RU', {day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC'}) %>\
        |<%= new Intl.DateTimeFormat('en-US', {dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC'}).format(Date.UTC(2024, 4, 6, 13, 5)) %>\
        |<%= (5).toLocaleString('de-DE', {minimumFractionDigits: 1}) %>";
    assert_eq!(
        ejs::render(template, r#"{"x":"1234.5"}"#).unwrap(),
        "1\u{a0}234,50|1,234,567.891|1\u{a0}234,50\u{a0}₽|-$1,234.50|6 мая 2024 г.\
         |May 6, 2024 at 1:05 PM|5.0"
    );
}

#[test]
fn locale_formatting_loads_however_it_is_reached_first() {
    for (template, want) in [
        ("<%= typeof Intl %>", "object"),
        (
            "<% var f = Number.prototype.toLocaleString %><%= f.call(1234.5, 'ru') %>",
            "1\u{a0}234,5",
        ),
        (
            "<%= new Date(0).toLocaleDateString('ru', {timeZone: 'UTC'}) %>",
            "01.01.1970",
        ),
        ("<%= (12345n).toLocaleString('en-US') %>", "12,345"),
        ("<% Intl = 'replaced' %><%= Intl %>", "replaced"),
    ] {
        assert_eq!(ejs::render(template, "{}").unwrap(), want, "{template}");
    }
}

#[test]
fn locale_options_that_are_not_implemented_are_refused() {
    for (call, option) in [
        ("new Date(0).toLocaleString('ru', {timeZone: 'Asia/Tokyo'})", "time zone Asia/Tokyo"),
        ("(5).toLocaleString('ru', {notation: 'compact'})", "option notation"),
        ("(5).toLocaleString('en', {style: 'currency', currency: 'USD', currencyDisplay: 'name'})", "option currencyDisplay"),
    ] {
        let err = ejs::render(&format!("<%= {call} %>"), "{}").unwrap_err().to_string();
        assert!(
            err.contains("RangeError") && err.contains(option) && err.contains("not supported"),
            "{call}: {err}"
        );
    }
}

#[test]
fn renders_on_many_threads() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                (0..50)
                    .map(|_| ejs::render("<%= n * 2 %>", &format!(r#"{{"n":{i}}}"#)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert!(h.join().unwrap().iter().all(|s| *s == (i * 2).to_string()));
    }
}

#[test]
fn render_converts_the_notice_and_applies_macros() {
    let mut notice = Notice {
        tmpl: "<%= client.name %>, {user.name}: <% invoice.item.forEach(function (i) { %><%= i.name %>;<% }) %>".into(),
        notice_xml: "<doc><client><name>Анна &amp; Ко</name></client><invoice><item><name>a</name></item><item><name>b</name></item></invoice><noticeparams><subject>Заказ {user.id}</subject></noticeparams></doc>".into(),
        template_subject: "unused".into(),
        ..Notice::default()
    };
    notice.user.set("name", "Anna");
    notice.user.set("id", "7");
    let rendered = template::render(&notice).unwrap();
    assert_eq!(rendered.text, "Анна &amp; Ко, Anna: a;b;");
    assert_eq!(rendered.subject, "Заказ 7");
}

#[test]
fn render_reports_a_bad_notice() {
    let notice = Notice {
        tmpl: "<%= a %>".into(),
        notice_xml: "<doc><a></doc>".into(),
        ..Notice::default()
    };
    let err = template::render(&notice).unwrap_err();
    assert!(err.to_string().starts_with("EJS: the notice XML"), "{err}");
}
