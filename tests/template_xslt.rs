//! XSLT templates through the system libxslt: output methods, EXSLT, Cyrillic, the
//! sandbox (no files, no network) and the limits.

use std::time::{Duration, Instant};

use mgrnotify::notice::Notice;
use mgrnotify::template::{self, xslt};

const NOTICE: &str = r#"<doc>
  <project><id>1</id><name>Хостинг «Ромашка»</name></project>
  <subject>Счёт № 42</subject>
  <invoice id="42">
    <item><name>VPS «Старт»</name><cost>199.00</cost></item>
    <item><name>Домен example.рф</name><cost>590.50</cost></item>
    <total currency="RUB">789.50</total>
  </invoice>
  <comment>a &amp; b &lt; c</comment>
</doc>"#;

fn stylesheet(output: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
  xmlns:exsl="http://exslt.org/common" xmlns:str="http://exslt.org/strings"
  xmlns:math="http://exslt.org/math" xmlns:date="http://exslt.org/dates-and-times"
  extension-element-prefixes="exsl str math date">
  {output}
  {body}
</xsl:stylesheet>"#
    )
}

fn text_output(body: &str) -> String {
    stylesheet(r#"<xsl:output method="text" encoding="UTF-8"/>"#, body)
}

#[test]
fn text_output_with_cyrillic_is_exact() {
    let xsl = text_output(
        r#"<xsl:template match="/doc">Счёт <xsl:value-of select="invoice/@id"/> от «<xsl:value-of select="project/name"/>»:
<xsl:for-each select="invoice/item">- <xsl:value-of select="name"/>: <xsl:value-of select="cost"/> ₽
</xsl:for-each>Итого: <xsl:value-of select="invoice/total"/><xsl:text> </xsl:text><xsl:value-of select="invoice/total/@currency"/>; <xsl:value-of select="comment"/></xsl:template>"#,
    );
    let out = xslt::transform(&xsl, NOTICE).unwrap();
    assert_eq!(
        out,
        "Счёт 42 от «Хостинг «Ромашка»»:\n- VPS «Старт»: 199.00 ₽\n- Домен example.рф: 590.50 ₽\nИтого: 789.50 RUB; a & b < c"
    );
}

#[test]
fn html_output_escapes_and_keeps_cyrillic() {
    let xsl = stylesheet(
        r#"<xsl:output method="html" encoding="UTF-8"/>"#,
        r#"<xsl:template match="/doc"><html><body><p class="t">Клиент: <xsl:value-of select="project/name"/></p><p><xsl:value-of select="comment"/></p><br/></body></html></xsl:template>"#,
    );
    let out = xslt::transform(&xsl, NOTICE).unwrap();
    assert!(
        out.contains("<p class=\"t\">Клиент: Хостинг «Ромашка»</p>"),
        "{out}"
    );
    assert!(out.contains("<p>a &amp; b &lt; c</p>"), "{out}");
    assert!(
        out.contains("<br>"),
        "html method writes void elements as HTML: {out}"
    );
}

#[test]
fn html_output_without_declared_encoding_keeps_cyrillic() {
    let xsl = stylesheet(
        r#"<xsl:output method="html"/>"#,
        r#"<xsl:template match="/doc"><p><xsl:value-of select="subject"/></p></xsl:template>"#,
    );
    let out = xslt::transform(&xsl, NOTICE).unwrap();
    assert!(out.contains("Счёт № 42"), "{out}");
}

#[test]
fn xml_output_honours_the_declaration_settings() {
    let xsl = stylesheet(
        r#"<xsl:output method="xml" omit-xml-declaration="yes" encoding="UTF-8"/>"#,
        r#"<xsl:template match="/doc"><msg to="{project/id}"><xsl:value-of select="subject"/></msg></xsl:template>"#,
    );
    assert_eq!(
        xslt::transform(&xsl, NOTICE).unwrap().trim_end(),
        r#"<msg to="1">Счёт № 42</msg>"#
    );
    let with_decl = stylesheet(
        r#"<xsl:output method="xml" encoding="UTF-8"/>"#,
        r#"<xsl:template match="/doc"><m/></xsl:template>"#,
    );
    assert!(xslt::transform(&with_decl, NOTICE)
        .unwrap()
        .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
}

#[test]
fn exslt_functions_work() {
    let xsl = text_output(
        r#"<xsl:template match="/doc">
<xsl:variable name="parts"><p>b</p><p>a</p></xsl:variable>
<xsl:for-each select="exsl:node-set($parts)/p"><xsl:sort/><xsl:value-of select="."/></xsl:for-each>|<xsl:value-of select="math:max(invoice/item/cost)"/>|<xsl:for-each select="str:tokenize('x,y,z', ',')"><xsl:value-of select="."/>;</xsl:for-each>|<xsl:value-of select="str:padding(3, '-')"/>|<xsl:value-of select="date:year('2024-05-06')"/></xsl:template>"#,
    );
    assert_eq!(
        xslt::transform(&xsl, NOTICE).unwrap().trim(),
        "ab|590.5|x;y;z;|---|2024"
    );
}

#[test]
fn doctype_entities_in_a_stylesheet_work() {
    let xsl = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xsl:stylesheet [<!ENTITY nbsp "&#160;">]>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="text" encoding="UTF-8"/>
<xsl:template match="/">a&nbsp;b</xsl:template>
</xsl:stylesheet>"#;
    assert_eq!(xslt::transform(xsl, "<doc/>").unwrap(), "a\u{a0}b");
}

#[test]
fn render_detects_xslt_and_applies_macros() {
    let mut notice = Notice {
        tmpl: text_output(
            r#"<xsl:template match="/doc">Здравствуйте, {user.realname}! <xsl:value-of select="subject"/></xsl:template>"#,
        ),
        notice_xml: NOTICE.into(),
        template_subject: "unused".into(),
        ..Notice::default()
    };
    notice.user.set("realname", "Иван Петров");
    let rendered = template::render(&notice).unwrap();
    assert_eq!(rendered.text, "Здравствуйте, Иван Петров! Счёт № 42");
    assert_eq!(rendered.subject, "Счёт № 42");
}

fn assert_refused(xsl: &str, doc: &str) -> String {
    let err = xslt::transform(xsl, doc).unwrap_err().to_string();
    assert!(err.starts_with("XSLT: "), "{err}");
    err
}

#[test]
fn reading_files_is_refused() {
    let doc = text_output(
        r#"<xsl:template match="/">[<xsl:value-of select="document('/etc/passwd')"/>]</xsl:template>"#,
    );
    let err = assert_refused(&doc, NOTICE);
    assert!(!err.contains("root:"), "{err}");
    let import = r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:import href="/etc/passwd"/></xsl:stylesheet>"#;
    assert_refused(import, NOTICE);
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE doc [<!ENTITY x SYSTEM "file:///etc/passwd">]><doc><a>&x;</a></doc>"#;
    let show =
        text_output(r#"<xsl:template match="/">[<xsl:value-of select="doc/a"/>]</xsl:template>"#);
    match xslt::transform(&show, xxe) {
        Ok(out) => assert_eq!(out, "[]", "the external entity must not be loaded"),
        Err(e) => assert!(e.to_string().starts_with("XSLT: "), "{e}"),
    }
}

#[test]
fn writing_files_and_network_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("written.txt");
    let write = stylesheet(
        r#"<xsl:output method="text"/>"#,
        &format!(
            r#"<xsl:template match="/"><exsl:document href="{}" method="text">pwned</exsl:document>done</xsl:template>"#,
            target.display()
        ),
    );
    let _ = xslt::transform(&write, NOTICE);
    assert!(!target.exists(), "a stylesheet wrote a file");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let fetch = text_output(&format!(
        r#"<xsl:template match="/">[<xsl:value-of select="document('http://127.0.0.1:{port}/x.xml')"/>]</xsl:template>"#
    ));
    let _ = xslt::transform(&fetch, NOTICE);
    assert!(
        listener.accept().is_err(),
        "a stylesheet connected to the network"
    );
}

#[test]
fn bad_stylesheets_get_clear_errors_with_lines() {
    let broken = "<xsl:stylesheet version=\"1.0\" xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\">\n<xsl:template match=\"/\">\n<b></xsl:template>\n</xsl:stylesheet>";
    let err = assert_refused(broken, NOTICE);
    assert!(
        err.contains("not well-formed") && err.contains("line 3"),
        "{err}"
    );
    let bad_xpath =
        text_output(r#"<xsl:template match="/"><xsl:value-of select="count(("/></xsl:template>"#);
    let err = assert_refused(&bad_xpath, NOTICE);
    assert!(err.contains("not valid"), "{err}");
    let bad_notice = text_output(r#"<xsl:template match="/">x</xsl:template>"#);
    let err = assert_refused(&bad_notice, "<doc><a></doc>");
    assert!(err.contains("notice XML"), "{err}");
}

#[test]
fn endless_recursion_is_stopped() {
    let xsl = text_output(
        r#"<xsl:template match="/"><xsl:call-template name="loop"/></xsl:template>
<xsl:template name="loop"><xsl:call-template name="loop"/></xsl:template>"#,
    );
    let err = assert_refused(&xsl, NOTICE);
    assert!(err.contains("recursion") || err.contains("depth"), "{err}");
}

#[test]
fn endless_allocation_is_stopped() {
    let xsl = text_output(
        r#"<xsl:template match="/"><xsl:call-template name="grow"><xsl:with-param name="s" select="'0123456789abcdef'"/></xsl:call-template></xsl:template>
<xsl:template name="grow"><xsl:param name="s"/><xsl:call-template name="grow"><xsl:with-param name="s" select="concat($s, $s)"/></xsl:call-template></xsl:template>"#,
    );
    let started = Instant::now();
    let err = assert_refused(&xsl, NOTICE);
    assert!(
        err.contains("MiB") || err.contains("recursion") || err.contains("memory"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn endless_work_is_stopped_by_the_deadline_or_the_step_limit() {
    // Binary recursion, 2^40 calls, well inside the depth limit.
    let xsl = text_output(
        r#"<xsl:template match="/"><xsl:call-template name="t"><xsl:with-param name="n" select="40"/></xsl:call-template></xsl:template>
<xsl:template name="t"><xsl:param name="n"/><xsl:if test="$n &gt; 0"><xsl:call-template name="t"><xsl:with-param name="n" select="$n - 1"/></xsl:call-template><xsl:call-template name="t"><xsl:with-param name="n" select="$n - 1"/></xsl:call-template></xsl:if></xsl:template>"#,
    );
    let started = Instant::now();
    let err = assert_refused(&xsl, NOTICE);
    // The deadline and the XPath step limit (about a second of work) are near each
    // other: which one stops it depends on how fast this machine runs just now.
    assert!(
        err.contains("longer than") || err.contains("XPath steps"),
        "{err}"
    );
    assert!(started.elapsed() < xslt::TIME_LIMIT + Duration::from_secs(3));
}

#[test]
fn the_engine_works_after_a_hostile_stylesheet() {
    let loop_xsl = text_output(
        r#"<xsl:template match="/"><xsl:call-template name="loop"/></xsl:template><xsl:template name="loop"><xsl:call-template name="loop"/></xsl:template>"#,
    );
    assert!(xslt::transform(&loop_xsl, NOTICE).is_err());
    let ok = text_output(
        r#"<xsl:template match="/doc"><xsl:value-of select="project/id"/></xsl:template>"#,
    );
    assert_eq!(xslt::transform(&ok, NOTICE).unwrap(), "1");
}
