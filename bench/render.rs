//! Render time per message for an XSLT and an EJS invoice notice through
//! `template::render` (detection, XML-to-JSON for EJS, the exchange with the thread's
//! render process and the render there, macros, subject), then the engines alone in the
//! calling thread. A warm-up render (which forks the render process) precedes the timing.
//!
//! `cargo bench --bench render`; RENDER_BENCH_ITERATIONS sets the count (default 2000),
//! e.g. 20 for a run under valgrind.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mgrnotify::notice::Notice;
use mgrnotify::template::{self, ejs, json, xslt};

const NOTICE_XML: &str = r#"<doc>
  <project><id>1</id><name>Хостинг «Ромашка»</name><url>https://my.example.com/</url></project>
  <subject>Счёт № {user.id}</subject>
  <invoice id="42"><number>INV-2024-42</number><cdate>2024-05-06</cdate>
    <item><name>VPS «Старт»</name><cost currency="RUB">199.00</cost><period>1</period></item>
    <item><name>Домен example.рф &amp; SSL</name><cost currency="RUB">590.50</cost><period>12</period></item>
    <item><name>Резервное копирование</name><cost currency="RUB">99.00</cost><period>1</period></item>
    <item><name>Лицензия ISPmanager</name><cost currency="RUB">350.00</cost><period>1</period></item>
    <amount>1238.50</amount>
  </invoice>
</doc>"#;

const XSLT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="html" encoding="UTF-8"/>
<xsl:template match="/doc">
<html><body>
<p>Здравствуйте, {user.realname}!</p>
<p>Счёт <xsl:value-of select="invoice/number"/> от <xsl:value-of select="invoice/cdate"/></p>
<table>
<xsl:for-each select="invoice/item">
<tr><td><xsl:value-of select="name"/></td><td><xsl:value-of select="period"/> мес.</td><td><xsl:value-of select="cost"/>&#160;<xsl:value-of select="cost/@currency"/></td></tr>
</xsl:for-each>
<tr><td colspan="2">Итого</td><td><xsl:value-of select="format-number(sum(invoice/item/cost), '0.00')"/></td></tr>
</table>
<p><xsl:value-of select="project/name"/></p>
</body></html>
</xsl:template>
</xsl:stylesheet>"#;

const EJS: &str = r#"<html><body>
<p>Здравствуйте, {user.realname}!</p>
<p>Счёт <%= invoice.number %> от <%= invoice.cdate %></p>
<table>
<%_ var sum = 0; [].concat(invoice.item).forEach(function (item) { sum += parseFloat(item.cost.$); _%>
<tr><td><%= item.name %></td><td><%= item.period %> мес.</td><td><%= item.cost.$ %>&nbsp;<%= item.cost.currency %></td></tr>
<%_ }) _%>
<tr><td colspan="2">Итого</td><td><%= sum.toFixed(2) %></td></tr>
</table>
<p><%= project.name %></p>
</body></html>"#;

/// The EJS invoice with Russian money formatting (loads the locale formatting).
const EJS_LOCALE: &str = r#"<html><body>
<p>Здравствуйте, {user.realname}!</p>
<table>
<%_ var sum = 0; [].concat(invoice.item).forEach(function (item) { sum += parseFloat(item.cost.$); _%>
<tr><td><%= item.name %></td><td><%= Number(item.cost.$).toLocaleString('ru-RU', {style: 'currency', currency: item.cost.currency}) %></td></tr>
<%_ }) _%>
<tr><td>Итого</td><td><%= sum.toLocaleString('ru-RU', {minimumFractionDigits: 2}) %></td></tr>
</table>
</body></html>"#;

fn notice(tmpl: &str) -> Notice {
    let mut n = Notice {
        tmpl: tmpl.into(),
        notice_xml: NOTICE_XML.into(),
        template_subject: "Счёт".into(),
        ..Notice::default()
    };
    n.user.set("id", "7");
    n.user.set("realname", "Иван Петров");
    n
}

fn measure(name: &str, iterations: usize, render: impl Fn() -> String) {
    let first = render();
    assert!(first.contains("1238.50") || first.contains("1\u{a0}238,50"));
    let mut times: Vec<Duration> = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        black_box(render());
        times.push(started.elapsed());
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "{name}: {iterations} renders, median {:.1} µs, p90 {:.1} µs, p99 {:.1} µs",
        at(0.5).as_secs_f64() * 1e6,
        at(0.9).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
    );
}

fn measure_notice(name: &str, notice: &Notice, iterations: usize) {
    let first = template::render(notice).expect("the bench template renders");
    assert!(first.text.contains("Иван Петров"));
    assert_eq!(first.subject, "Счёт № 7");
    measure(name, iterations, || {
        template::render(black_box(notice)).expect("renders").text
    });
}

fn main() {
    let iterations = std::env::var("RENDER_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
        .max(1);
    measure_notice("xslt (html output)", &notice(XSLT), iterations);
    measure_notice("ejs (html output)", &notice(EJS), iterations);
    measure_notice(
        "ejs with ru money formatting",
        &notice(EJS_LOCALE),
        iterations,
    );
    // The engines alone, in this thread: what the render process does per message.
    measure("xslt engine in this thread", iterations, || {
        xslt::transform_here(XSLT, NOTICE_XML).expect("renders")
    });
    let data = json::notice_to_json(NOTICE_XML).expect("converts");
    measure("ejs engine in this thread", iterations, || {
        ejs::render_here(EJS, &data).expect("renders")
    });
}
