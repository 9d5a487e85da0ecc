//! Our EJS against the real `ejs` npm package (tests/ejs, installed by `npm ci` in the
//! test command): every template here must render byte for byte the same, from the same
//! JSON (our XML-to-JSON conversion of the notice). MGRNOTIFY_SKIP_NODE=1 skips the
//! comparison on a machine without node.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use mgrnotify::template::{ejs, json};

const INVOICE: &str = r#"<doc>
  <project><id>1</id><name>Хостинг «Ромашка»</name><url>https://my.example.com/</url></project>
  <subject>Счёт № 42</subject>
  <client><realname>Иван Петров</realname><email>ivan@example.com</email><balance>-15.40</balance></client>
  <invoice id="42" status="new">
    <number>INV-2024-42</number>
    <cdate>2024-05-06</cdate>
    <item><name>VPS «Старт»</name><cost currency="RUB">199.00</cost><period>1</period></item>
    <item><name>Домен example.рф &amp; SSL</name><cost currency="RUB">590.50</cost><period>12</period></item>
    <item><name>&lt;script&gt;alert("x")&lt;/script&gt; O'Brien</name><cost currency="RUB">0.10</cost><period>1</period></item>
    <amount>789.60</amount>
  </invoice>
  <expense id="7"><info>Продление услуги</info><note/></expense>
</doc>"#;

const SERVICES: &str = r#"<doc>
  <project><id>2</id><name>Cloud &amp; Co</name></project>
  <service><id>101</id><name>web1.example.com</name><status>active</status><expiredate>2024-06-01</expiredate>
    <param><name>ip</name><value>192.0.2.10</value></param>
    <param><name>os</name><value>Debian 12</value></param>
  </service>
  <service><id>102</id><name>mail.example.com</name><status>suspended</status><expiredate>2024-05-10</expiredate>
    <param><name>ip</name><value>192.0.2.11</value></param>
  </service>
  <ticket><id>9</id><subject>Не работает почта</subject><message>Строка 1
Строка 2 &lt;b&gt;жирно&lt;/b&gt;</message></ticket>
</doc>"#;

const EMPTY: &str = "<doc/>";

/// (name, template, notice XML).
fn cases() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("escaped value", "Счёт <%= invoice.number %>", INVOICE),
        ("raw value", "<b><%- project.name %></b>", INVOICE),
        ("escaping of all five", "<%= invoice.item[2].name %>|<%= '&<>\"\\'' %>", INVOICE),
        ("raw keeps markup", "<%- invoice.item[2].name %>", INVOICE),
        (
            "invoice list with forEach",
            "<ul>\n<% invoice.item.forEach(function (item) { %>  <li><%= item.name %>: <%= item.cost.$ %> <%= item.cost.currency %></li>\n<% }); %></ul>\n",
            INVOICE,
        ),
        (
            "for loop with index and trim",
            "<% for (var i = 0; i < invoice.item.length; i++) { -%>\n<%= i + 1 %>. <%= invoice.item[i].name %>\n<% } -%>\nИтого: <%= invoice.amount %> руб.",
            INVOICE,
        ),
        (
            "conditionals",
            "<% if (Number(client.balance) < 0) { %>Долг: <%= -Number(client.balance) %><% } else if (client.balance == 0) { %>Ноль<% } else { %>Плюс<% } %>",
            INVOICE,
        ),
        ("ternary", "Статус: <%= invoice.status === 'new' ? 'новый' : 'оплачен' %>", INVOICE),
        ("comment tag", "a<%# это комментарий: not run(); %>b", INVOICE),
        ("unclosed tag fails in both", "a <%= project.id <%= 1 %>", INVOICE),
        ("literal open and close", "<%% if (x) { %%> and <%%= y %> 100%>", INVOICE),
        ("literal then tag", "<%%- raw -%>\nnext <%= project.id %>", INVOICE),
        ("dash trims one newline", "<% var a = 1 -%>\n\nline<%= a -%>\nend", EMPTY),
        ("dash trims CRLF", "<% var a = 2 -%>\r\nline <%= a %>\r\nend -%>\r\n", EMPTY),
        ("underscore slurps spaces", "  \t<%_ var x = 'v' _%>  \t|<%= x %>|\n    <%_ if (true) { _%>\n  yes\n    <%_ } _%>\n", EMPTY),
        ("line comment inside tag", "<% var n = 3 // three %>n=<%= n // the value %>", EMPTY),
        ("trailing semicolon", "<%= project.name; %>|<%- project.id;  %>", INVOICE),
        ("undefined and null", "[<%= locals.missing %>][<%- null %>][<%= null %>][<%- undefined %>]", EMPTY),
        (
            "sum with toFixed",
            "<% var sum = 0; invoice.item.forEach(function (i) { sum += parseFloat(i.cost.$); }); %>Сумма: <%= sum.toFixed(2) %>",
            INVOICE,
        ),
        ("array and object to string", "<%= [1, 'два', 3] %>|<%- {a: 1} %>|<%= true %>|<%= 0 %>", EMPTY),
        ("locals access", "<%= locals.project.name %>/<%= typeof locals.invoice %>", INVOICE),
        ("concat normalises one or many", "<% [].concat(service).forEach(function (s) { %><%= s.id %>,<% }) %>|<% [].concat(expense).forEach(function (e) { %><%= e.id %>:<%= e.info %><% }) %>", SERVICES),
        ("attributes and text", "<%= invoice.id %>/<%= invoice.status %>/<%= expense.id %>/[<%= expense.note %>]", INVOICE),
        (
            "nested loops over services and params",
            "<% service.forEach(function (s) { -%>\n<%= s.name %> (<%= s.status %>)\n<%   [].concat(s.param).forEach(function (p) { -%>\n  - <%= p.name %> = <%= p.value %>\n<%   }) -%>\n<% }) -%>\n",
            SERVICES,
        ),
        (
            "function defined in the template",
            "<% function money(v) { return Number(v).toFixed(2).replace('.', ',') + ' ₽'; } -%>\n<%= money(invoice.amount) %> / <%= money(invoice.item[0].cost.$) %>",
            INVOICE,
        ),
        (
            "multi-line code block",
            "<%\n  var lines = [];\n  for (var k in project) {\n    lines.push(k + '=' + project[k]);\n  }\n%><%= lines.join('; ') %>\n",
            INVOICE,
        ),
        ("backslashes and quotes in text", "C:\\path\\n \"quoted\" 'single' \\<%= '\\\\' %>\\", EMPTY),
        (
            "html email invoice table",
            r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>td { padding: 4px; } .sum { font-weight: bold; }</style></head>
<body>
<p>Здравствуйте, <%= client.realname %>!</p>
<p>Выставлен счёт <a href="<%= project.url %>invoice/<%= invoice.id %>"><%= invoice.number %></a> от <%= invoice.cdate %>.</p>
<table>
<%_ invoice.item.forEach(function (item, n) { _%>
  <tr class="<%= n % 2 ? 'odd' : 'even' %>"><td><%= item.name %></td><td><%= item.period %> мес.</td><td><%= item.cost.$ %></td></tr>
<%_ }) _%>
  <tr class="sum"><td colspan="2">Итого</td><td><%= invoice.amount %></td></tr>
</table>
<p>С уважением, <%- project.name %></p>
</body></html>
"#,
            INVOICE,
        ),
        ("string methods with Cyrillic", "<%= project.name.toUpperCase() %>|<%= 'ё'.padStart(3, '*') %>|<%= ticket.subject.replace(/почта/, 'ПОЧТА') %>|<%= ticket.subject.length %>", SERVICES),
        ("while loop", "<% var i = 3; while (i--) { %><%= i %><% } %>", EMPTY),
        ("json stringify keeps order", "<%- JSON.stringify(invoice.item[0]) %>|<%- JSON.stringify(expense) %>", INVOICE),
        ("switch statement", "<% service.forEach(function (s) { switch (s.status) { case 'active': %>+<% break; case 'suspended': %>-<% break; default: %>?<% } }) %>", SERVICES),
        ("percent signs in text", "Скидка 10%, 20%> и %%> <%% %>", EMPTY),
        ("empty template", "", EMPTY),
        ("text only with unicode", "Привет 👋 — «кавычки» \u{2028}после\u{2029}конец\ttab", EMPTY),
        ("multi-line message escaped", "<p><%= ticket.message %></p>\n<pre><%- ticket.message %></pre>", SERVICES),
        ("dash close at the very end", "<%= project.id -%>", SERVICES),
        ("underscore close before tabs and newline", "a <%_ %>\t b _%>\t\t\nc", EMPTY),
        ("object keys order", "<%= Object.keys(invoice).join(',') %>|<%= Object.keys(service[0]).join(',') %>", INVOICE),
        ("numbers and math", "<%= 0.1 + 0.2 %>|<%= (1234.5).toFixed(1) %>|<%= Math.round(2.5) %>|<%= parseInt('08', 10) %>|<%= 1e21 %>|<%= -0 %>", EMPTY),
        ("escapeFn and var leak", "<% var project = 'shadowed' %><%= project %>|<%- escapeFn('<i>') %>", INVOICE),
        ("return early", "a<% if (true) { %>b<% } %><%= [1,2].map(function (x) { return x * 2 }).join('') %>", EMPTY),
        ("regex and split", "<%= invoice.cdate.split('-').reverse().join('.') %>|<%= /^INV-(\\d+)/.exec(invoice.number)[1] %>", INVOICE),
        ("try catch in template", "<% try { nope(); } catch (e) { %>caught <%= e.name %><% } %>", EMPTY),
        ("tags back to back", "<%=1%><%-2%><%3%><%#4%><%_ _%><%= '' %>|", EMPTY),
        ("newlines counted across tags", "a\n<%\n\n%>\nb\n<%= 'c'\n%>\nd", EMPTY),
        ("emoji cut in half", "<% var s = 'Оплата 😀 получена' %><%= s.slice(0, 8) %>|<%- s.slice(8, 9) %>|<%= s.slice(0, 9) %>", EMPTY),
    ]
}

fn ejs_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ejs"))
}

/// Renders every case with node and the real ejs.
fn render_with_node(inputs: &[(String, String)]) -> Vec<Result<String, String>> {
    let request: Vec<serde_json::Value> = inputs
        .iter()
        .map(|(template, data)| serde_json::json!({ "template": template, "data": data }))
        .collect();
    let mut child = Command::new("node")
        .arg("render.js")
        .current_dir(ejs_dir())
        // Node's default locale follows the environment; ours is en-US.
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is needed for the differential test (apt-get install nodejs npm)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::Value::from(request).to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    results
        .into_iter()
        .map(|r| {
            if r["ok"] == true {
                Ok(r["text"].as_str().unwrap().to_owned())
            } else {
                Err(r["error"].as_str().unwrap_or_default().to_owned())
            }
        })
        .collect()
}

/// Calls every formatter with each combination, one result a line (`ERR name` for an
/// exception): templates written so that one render covers a grid of cases.
const LOCALE_GRID_HELPERS: &str = r#"<%
function each(lists, body) {
  (function walk(i, picked) {
    if (i === lists.length) return body.apply(null, picked);
    lists[i].forEach(function (x) { walk(i + 1, picked.concat([x])); });
  })(0, []);
}
function line(label, f) {
  var out;
  try { out = f(); } catch (e) { out = 'ERR ' + e.name; }
  __append(label + ' = ' + out + '\n');
}
var locales = ['ru-RU', 'ru', 'en-US', 'en', undefined, 'xx', ['xx', 'ru'], 'RU'];
%>"#;

fn locale_cases() -> Vec<(&'static str, String)> {
    let numbers = r#"<%
var numbers = [0, -0, 7, -1, 999, 1000, 1234, 12345, 1234.5, -1234.5, 1234567.891, 0.5, 2.5, -2.5,
  1.005, 0.125, 0.1 + 0.2, 999.9995, 1e21, 1e-7, -1e-7, 0.000123456, NaN, Infinity, -Infinity, 99.995];
var options = [undefined, {minimumFractionDigits: 2}, {maximumFractionDigits: 2},
  {maximumFractionDigits: 0}, {minimumFractionDigits: 1, maximumFractionDigits: 3},
  {useGrouping: false}, {minimumIntegerDigits: 3}, {maximumSignificantDigits: 3},
  {minimumSignificantDigits: 5}, {signDisplay: 'always'}, {signDisplay: 'exceptZero'},
  {style: 'percent'}, {style: 'percent', minimumFractionDigits: 1},
  {maximumFractionDigits: 1, minimumFractionDigits: 3}, {maximumFractionDigits: 101}];
each([locales, numbers, options], function (l, n, o) {
  line(JSON.stringify([l, n, o]) + (Object.is(n, -0) ? ' -0' : ''), function () { return n.toLocaleString(l, o); });
});
%>"#;
    let money = r#"<%
var amounts = [0, -0, 1234.5, -1234.5, 0.005, 1e21, 199, NaN, Infinity];
var options = [{style: 'currency', currency: 'RUB'}, {style: 'currency', currency: 'USD'},
  {style: 'currency', currency: 'EUR'}, {style: 'currency', currency: 'rub'},
  {style: 'currency', currency: 'XYZ'}, {style: 'currency', currency: 'USD', currencyDisplay: 'code'},
  {style: 'currency', currency: 'RUB', currencyDisplay: 'narrowSymbol'},
  {style: 'currency', currency: 'USD', minimumFractionDigits: 0},
  {style: 'currency', currency: 'RUB', maximumFractionDigits: 0},
  {style: 'currency', currency: 'RUB', signDisplay: 'always'}, {style: 'currency'}];
each([locales, amounts, options], function (l, n, o) {
  line(JSON.stringify([l, n, o]) + (Object.is(n, -0) ? ' -0' : ''), function () { return new Intl.NumberFormat(l, o).format(n); });
});
var rub = Intl.NumberFormat('ru-RU', {style: 'currency', currency: 'RUB'});
line('format as a function', function () { return [1, 22.5, 333].map(rub.format).join(' | '); });
line('bigint', function () { return (12345678901234567890n).toLocaleString('ru') + ' ' + (-5n).toLocaleString('en-US'); });
line('string argument', function () { return new Intl.NumberFormat('ru').format('1234.5'); });
%>"#;
    let dates = |locale: &str| format!("{LOCALE_GRID_HELPERS}<% var locale = {locale}; %>{DATES}");
    const DATES: &str = r#"<%
var stamps = [Date.UTC(2024, 4, 6, 13, 5, 9), Date.UTC(2024, 0, 1, 0, 7, 3),
  Date.UTC(2023, 11, 31, 23, 59, 59), Date.UTC(1999, 8, 9, 9, 9, 9)];
var options = [undefined, {timeZone: 'UTC'}, {dateStyle: 'short'}, {dateStyle: 'medium'},
  {dateStyle: 'long'}, {dateStyle: 'full'}, {timeStyle: 'short'}, {timeStyle: 'medium'},
  {dateStyle: 'long', timeStyle: 'short'}, {dateStyle: 'short', timeStyle: 'medium', hour12: true}];
each([[undefined, 'numeric', '2-digit'], [undefined, 'numeric', '2-digit', 'long', 'short'],
  [undefined, 'numeric', '2-digit']], function (y, m, d) {
  if (y && d && !m) return;
  options.push({year: y, month: m, day: d});
  if (d && m) options.push({weekday: 'long', year: y, month: m, day: d});
});
each([['numeric', '2-digit'], [undefined, 'numeric', '2-digit'], [undefined, 'numeric', '2-digit'],
  [undefined, true, false]], function (h, mi, s, h12) {
  if (s && !mi) return;
  options.push({hour: h, minute: mi, second: s, hour12: h12});
  options.push({hour: h, minute: mi, second: s, hour12: h12, year: 'numeric', month: 'long', day: 'numeric'});
});
options.push({hour: 'numeric', minute: 'numeric', hourCycle: 'h23'});
each([[locale], stamps, options], function (l, t, o) {
  var label = JSON.stringify([l, t, o]);
  line(label + ' toLocaleString', function () { return new Date(t).toLocaleString(l, o); });
  line(label + ' toLocaleDateString', function () { return new Date(t).toLocaleDateString(l, o); });
  line(label + ' toLocaleTimeString', function () { return new Date(t).toLocaleTimeString(l, o); });
  line(label + ' format', function () { return new Intl.DateTimeFormat(l, o).format(t); });
});
line('invalid date', function () { return new Date(NaN).toLocaleString('ru'); });
line('invalid date formatted', function () { return Intl.DateTimeFormat('ru').format(NaN); });
%>"#;
    let invoice = "<%# What a Russian invoice template does with the notice's strings -%>\n\
        Сумма: <%= Number(invoice.amount).toLocaleString('ru-RU', {minimumFractionDigits: 2}) %> руб.\n\
        <% [].concat(invoice.item).forEach(function (i) { -%>\n\
        <%= i.name %>: <%= new Intl.NumberFormat('ru-RU', {style: 'currency', currency: i.cost.currency}).format(i.cost.$) %>\n\
        <% }) -%>\n\
        от <%= new Date(invoice.cdate).toLocaleDateString('ru-RU', {day: 'numeric', month: 'long', year: 'numeric'}) %>\n\
        (<%= (1234567.891).toLocaleString('en-US') %>)";
    vec![
        ("locale numbers", format!("{LOCALE_GRID_HELPERS}{numbers}")),
        ("locale money", format!("{LOCALE_GRID_HELPERS}{money}")),
        ("locale dates ru", dates("'ru'")),
        ("locale dates en-US", dates("'en-US'")),
        ("locale dates en", dates("'en'")),
        ("locale dates by default", dates("undefined")),
        ("invoice amounts and dates", invoice.to_owned()),
    ]
}

#[test]
fn locale_formatting_identical_to_node() {
    if std::env::var("MGRNOTIFY_SKIP_NODE").as_deref() == Ok("1") {
        eprintln!("MGRNOTIFY_SKIP_NODE=1: the comparison with Node's Intl is skipped");
        return;
    }
    let data = json::notice_to_json(INVOICE).unwrap();
    let cases = locale_cases();
    let inputs: Vec<(String, String)> = cases
        .iter()
        .map(|(_, template)| (template.clone(), data.clone()))
        .collect();
    let expected = render_with_node(&inputs);
    let mut mismatches = Vec::new();
    for ((name, template), want) in cases.iter().zip(&expected) {
        let want = want.as_ref().expect("node renders every locale case");
        match ejs::render(template, &data) {
            Ok(got) => {
                assert!(want.lines().count() > 0, "{name}: node gave nothing");
                let differing: Vec<String> = want
                    .lines()
                    .zip(got.lines())
                    .filter(|(w, g)| w != g)
                    .take(20)
                    .map(|(w, g)| format!("  node: {w}\n  ours: {g}"))
                    .collect();
                if !differing.is_empty() || want.lines().count() != got.lines().count() {
                    mismatches.push(format!("{name}:\n{}", differing.join("\n")));
                }
            }
            Err(e) => mismatches.push(format!("{name}: ours failed: {e}")),
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn byte_identical_to_the_real_ejs() {
    if std::env::var("MGRNOTIFY_SKIP_NODE").as_deref() == Ok("1") {
        eprintln!("MGRNOTIFY_SKIP_NODE=1: the comparison with the real ejs is skipped");
        return;
    }
    assert!(
        ejs_dir().join("node_modules/ejs").is_dir(),
        "tests/ejs/node_modules is missing: run the project's test command (it runs `npm ci` in tests/ejs), \
         or set MGRNOTIFY_SKIP_NODE=1 to skip this comparison"
    );
    let cases = cases();
    assert!(cases.len() >= 30);
    let inputs: Vec<(String, String)> = cases
        .iter()
        .map(|(_, template, xml)| (template.to_string(), json::notice_to_json(xml).unwrap()))
        .collect();
    let expected = render_with_node(&inputs);
    let mut mismatches = Vec::new();
    for (((name, _, _), (template, data)), want) in cases.iter().zip(&inputs).zip(&expected) {
        let want = match want {
            Ok(text) => text,
            // A template the real ejs refuses must be refused here too.
            Err(e) => {
                if let Ok(got) = ejs::render(template, data) {
                    mismatches.push(format!("{name}: ejs failed ({e}) but ours gave {got:?}"));
                }
                continue;
            }
        };
        match ejs::render(template, data) {
            Ok(got) if &got == want => {}
            Ok(got) => mismatches.push(format!("{name}:\n  ejs:  {want:?}\n  ours: {got:?}")),
            Err(e) => mismatches.push(format!("{name}: ours failed: {e}\n  ejs: {want:?}")),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}
