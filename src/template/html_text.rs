//! A readable text/plain version of an HTML message: paragraphs and line breaks kept,
//! list items marked, tags removed, entities decoded, link targets kept after the link
//! text ("Pay (https://...)"). A single pass over the text with a small fixed state, so
//! nesting costs nothing; the input is capped ([`MAX_HTML`]). The same layout in
//! Telegram's HTML subset keeps the emphasis, code and links ([`to_telegram`]).

/// The largest HTML converted; the rest is left out of the text version (the HTML
/// part itself is sent whole).
pub const MAX_HTML: usize = 4 << 20;

/// How deep lists and links are tracked; deeper ones are taken as plain text.
const MAX_LISTS: usize = 16;

/// Tells whether a rendered text is an HTML document: its first tag (text before it,
/// a doctype and comments aside) is `<html>`, `<body>`, `<p>`, `<div>` or `<table>`, or
/// its doctype is `<!DOCTYPE html`. A `<` not followed by a letter, `/`, `!` or `?`
/// starts no tag ("price < 100").
pub fn looks_like_html(text: &str) -> bool {
    let mut rest = text;
    loop {
        let Some(at) = rest.as_bytes().windows(2).position(|w| {
            w[0] == b'<' && (w[1].is_ascii_alphabetic() || matches!(w[1], b'/' | b'!' | b'?'))
        }) else {
            return false;
        };
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("<?") {
            rest = after.split_once("?>").map_or("", |(_, r)| r);
        } else if rest
            .get(..9)
            .is_some_and(|p| p.eq_ignore_ascii_case("<!doctype"))
        {
            return rest[9..]
                .trim_start()
                .get(..4)
                .is_some_and(|w| w.eq_ignore_ascii_case("html"));
        } else {
            break;
        }
    }
    let tag = &rest[1..];
    let name: String = tag
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .take(6)
        .collect::<String>()
        .to_ascii_lowercase();
    let ends = tag[name.len()..].starts_with(['>', '/', ' ', '\t', '\r', '\n']);
    ends && matches!(name.as_str(), "html" | "body" | "p" | "div" | "table")
}

/// The text version of `html`.
pub fn to_text(html: &str) -> String {
    convert(html, Flavor::Text)
}

/// `html` in Telegram's HTML subset (the Bot API's `parse_mode=HTML`): laid out as
/// [`to_text`] does, with `b`, `i`, `u`, `s`, `code`, `pre`, `blockquote` and links to
/// http(s), tg and mailto kept (their synonyms `strong`, `em`, `ins`, `strike`, `del`
/// as these), every other tag removed with its text kept, the text escaped, and every
/// tag closed in order.
pub fn to_telegram(html: &str) -> String {
    convert(html, Flavor::Telegram)
}

/// What the converter writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Flavor {
    #[default]
    Text,
    Telegram,
}

/// The Telegram tag an HTML inline tag is written as.
fn telegram_inline(name: &str) -> Option<&'static str> {
    Some(match name {
        "b" | "strong" => "b",
        "i" | "em" => "i",
        "u" | "ins" => "u",
        "s" | "strike" | "del" => "s",
        "code" => "code",
        _ => return None,
    })
}

fn convert(html: &str, flavor: Flavor) -> String {
    let html = match html.char_indices().nth(MAX_HTML) {
        Some((end, _)) => &html[..end],
        None => html,
    };
    let mut out = Writer {
        flavor,
        ..Writer::default()
    };
    let mut rest = html;
    // Content of these elements is not text the reader sees.
    let mut hidden: Option<String> = None;
    let mut links: Vec<String> = Vec::new();
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            out.text(rest, hidden.is_some());
            break;
        };
        out.text(&rest[..lt], hidden.is_some());
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map_or("", |(_, r)| r);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            rest = rest.split_once('>').map_or("", |(_, r)| r);
            continue;
        }
        let Some(tag) = Tag::parse(rest) else {
            // A `<` that starts no tag is text.
            out.text("<", hidden.is_some());
            rest = &rest[1..];
            continue;
        };
        rest = &rest[tag.len..];
        if let Some(name) = &hidden {
            if tag.closing && tag.name == *name {
                hidden = None;
            }
            continue;
        }
        if flavor == Flavor::Telegram {
            if let Some(name) = telegram_inline(&tag.name) {
                if tag.closing {
                    out.close_tag(name);
                } else if !tag.self_closing {
                    out.open_tag(name, "");
                }
                continue;
            }
        }
        match (tag.name.as_str(), tag.closing) {
            ("script" | "style" | "head" | "title" | "template", false) if !tag.self_closing => {
                hidden = Some(tag.name.clone())
            }
            ("br", _) => out.line_break(),
            ("hr", false) => {
                out.block(1);
                out.raw("----------");
                out.block(1);
            }
            ("ul" | "ol", closing) => {
                if closing {
                    out.lists.pop();
                }
                // A list in a list item goes on that item's next line.
                out.block(if out.lists.is_empty() { 2 } else { 1 });
                if !closing && out.lists.len() < MAX_LISTS {
                    out.lists.push((tag.name == "ol").then_some(0));
                }
            }
            (
                "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table" | "blockquote" | "dl"
                | "pre",
                closing,
            ) => {
                if closing && flavor == Flavor::Telegram {
                    out.close_tag(&tag.name);
                }
                out.block(2);
                if tag.name == "pre" {
                    out.pre = !closing;
                }
                if !closing && flavor == Flavor::Telegram {
                    match tag.name.as_str() {
                        "pre" => out.open_tag("pre", ""),
                        "blockquote" => out.open_tag("blockquote", ""),
                        _ => {}
                    }
                }
            }
            ("li", false) => {
                out.block(1);
                let marker = match out.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{n}. ")
                    }
                    _ => "- ".to_owned(),
                };
                out.raw(&"  ".repeat(out.lists.len().saturating_sub(1)));
                out.raw(&marker);
            }
            (
                "div" | "tr" | "li" | "dt" | "dd" | "section" | "article" | "header" | "footer"
                | "address" | "center" | "main" | "nav" | "figure" | "form" | "tbody" | "thead"
                | "tfoot" | "caption",
                _,
            ) => out.block(1),
            ("td" | "th", false) => out.cell(),
            ("a", false) if flavor == Flavor::Telegram => {
                let href = tag.href.unwrap_or_default();
                let scheme = href.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
                if let Some("http" | "https" | "tg" | "mailto") = scheme.as_deref() {
                    out.open_tag("a", &href);
                }
            }
            ("a", true) if flavor == Flavor::Telegram => out.close_tag("a"),
            ("a", false) if links.len() < MAX_LISTS => {
                links.push(tag.href.unwrap_or_default());
                out.since_link = out.out.len();
            }
            ("a", true) => {
                if let Some(href) = links.pop() {
                    out.link_target(&href);
                }
            }
            ("img", false) => {
                if let Some(alt) = tag.alt.filter(|a| !a.trim().is_empty()) {
                    out.text(&alt, false);
                }
            }
            _ => {}
        }
    }
    out.finish()
}

/// One start or end tag, with the attributes the text needs.
struct Tag {
    name: String,
    closing: bool,
    self_closing: bool,
    href: Option<String>,
    alt: Option<String>,
    /// Bytes of the input the tag takes.
    len: usize,
}

impl Tag {
    /// The tag at the start of `text` (which starts with `<`), or `None` when the `<`
    /// starts none.
    fn parse(text: &str) -> Option<Tag> {
        let body = &text[1..];
        let (closing, body) = match body.strip_prefix('/') {
            Some(b) => (true, b),
            None => (false, body),
        };
        if !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        let name_len = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == ':'))
            .unwrap_or(body.len());
        let name = body[..name_len].to_ascii_lowercase();
        // The tag ends at the first `>` outside a quoted attribute value.
        let mut quote = None;
        let mut end = None;
        for (i, c) in body[name_len..].char_indices() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '>') => {
                    end = Some(name_len + i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.unwrap_or(body.len());
        let attributes = &body[name_len..end];
        let prefix = if closing { 2 } else { 1 };
        Some(Tag {
            self_closing: attributes.trim_end().ends_with('/'),
            href: attribute(attributes, "href"),
            alt: attribute(attributes, "alt"),
            name,
            closing,
            len: (prefix + end + 1).min(text.len()),
        })
    }
}

/// The decoded value of attribute `name` among `attributes` (`a="x" b='y' c=z`).
fn attribute(attributes: &str, name: &str) -> Option<String> {
    let mut rest = attributes;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() {
            return None;
        }
        let key_len = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let key = &rest[..key_len];
        rest = rest[key_len..].trim_start();
        let value = if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (value, remaining) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let inner = &after[1..];
                    match inner.find(q) {
                        Some(i) => (&inner[..i], &inner[i + 1..]),
                        None => (inner, ""),
                    }
                }
                _ => {
                    let i = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..i], &after[i..])
                }
            };
            rest = remaining;
            value
        } else {
            ""
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(html_escape::decode_html_entities(value).trim().to_owned());
        }
    }
}

/// The text being written, and where in it the writer is.
#[derive(Default)]
struct Writer {
    flavor: Flavor,
    /// Telegram tags open, innermost last.
    open: Vec<&'static str>,
    out: String,
    /// Newlines wanted before the next text (a block's edge), at most 2.
    pending_breaks: usize,
    /// White space was seen since the last text.
    pending_space: bool,
    /// Inside `<pre>`: white space is kept.
    pre: bool,
    /// Open lists: `Some(count)` for a numbered one.
    lists: Vec<Option<u32>>,
    /// The text written since the current link opened, to leave out a target that
    /// only repeats it.
    since_link: usize,
}

impl Writer {
    fn text(&mut self, raw: &str, hidden: bool) {
        if hidden || raw.is_empty() {
            return;
        }
        let decoded = html_escape::decode_html_entities(raw);
        if self.pre {
            self.flush_breaks();
            self.push_text(&decoded.replace("\r\n", "\n"));
            return;
        }
        for (i, word) in decoded
            .split(|c: char| c.is_whitespace() && c != '\u{a0}')
            .enumerate()
        {
            if i > 0 {
                self.pending_space = true;
            }
            if word.is_empty() {
                continue;
            }
            self.flush_breaks();
            if self.pending_space && !self.at_line_start() {
                self.out.push(' ');
            }
            self.pending_space = false;
            let word = word.replace('\u{a0}', " ");
            self.push_text(&word);
        }
    }

    /// Decoded text, escaped for Telegram's HTML.
    fn push_text(&mut self, text: &str) {
        if self.flavor == Flavor::Telegram {
            self.out.push_str(&crate::xml::escape_text(text));
        } else {
            self.out.push_str(text);
        }
    }

    /// Opens a Telegram tag (`a` with its `href`) where the next text goes. Deeper than
    /// [`MAX_LISTS`] tags are left out.
    fn open_tag(&mut self, name: &'static str, href: &str) {
        if self.open.len() >= MAX_LISTS || (name == "a" && self.open.contains(&"a")) {
            return;
        }
        self.flush_breaks();
        if self.pending_space && !self.at_line_start() {
            self.out.push(' ');
        }
        self.pending_space = false;
        if name == "a" {
            self.out.push_str("<a href=\"");
            self.out.push_str(&crate::xml::escape_text(href));
            self.out.push_str("\">");
        } else {
            self.out.push('<');
            self.out.push_str(name);
            self.out.push('>');
        }
        self.open.push(name);
    }

    /// Closes the open tag `name` and the tags opened inside it; nothing when it is
    /// not open.
    fn close_tag(&mut self, name: &str) {
        let name = telegram_inline(name).unwrap_or(name);
        let Some(at) = self.open.iter().rposition(|open| *open == name) else {
            return;
        };
        for open in self.open.split_off(at).into_iter().rev() {
            self.out.push_str("</");
            self.out.push_str(open);
            self.out.push('>');
        }
    }

    /// Text written as it is (markers, rules), after any pending line breaks.
    fn raw(&mut self, text: &str) {
        self.flush_breaks();
        self.out.push_str(text);
        self.pending_space = false;
    }

    fn line_break(&mut self) {
        self.out.push('\n');
        self.pending_space = false;
        self.pending_breaks = 0;
    }

    /// A block edge: the next text starts `lines` lines further (1: a new line, 2: after
    /// a blank line). Breaks do not pile up, and nothing comes before the first text.
    fn block(&mut self, lines: usize) {
        self.pending_breaks = self.pending_breaks.max(lines);
        self.pending_space = false;
    }

    fn cell(&mut self) {
        if !self.at_line_start() && self.pending_breaks == 0 {
            self.pending_space = true;
        }
    }

    fn link_target(&mut self, href: &str) {
        let href = href.trim();
        let shown = self.out.get(self.since_link..).unwrap_or_default();
        let useful = !href.is_empty()
            && !href.starts_with('#')
            && !href.to_ascii_lowercase().starts_with("javascript:");
        let target = href.strip_prefix("mailto:").unwrap_or(href);
        if useful && !shown.contains(target) {
            let spaced = !self.at_line_start() && self.pending_breaks == 0;
            self.flush_breaks();
            if spaced {
                self.out.push(' ');
            }
            self.out.push('(');
            self.out.push_str(target);
            self.out.push(')');
        }
    }

    fn flush_breaks(&mut self) {
        if self.out.is_empty() {
            self.pending_breaks = 0;
        }
        // Text already ends in some of the wanted newlines (a <br> before a </p>).
        let have = self.out.len() - self.out.trim_end_matches('\n').len();
        for _ in have.min(self.pending_breaks)..self.pending_breaks {
            self.out.push('\n');
        }
        if self.pending_breaks > 0 {
            self.pending_space = false;
        }
        self.pending_breaks = 0;
    }

    fn at_line_start(&self) -> bool {
        self.out.is_empty() || self.out.ends_with('\n')
    }

    fn finish(mut self) -> String {
        while let Some(open) = self.open.pop() {
            self.out.push_str("</");
            self.out.push_str(open);
            self.out.push('>');
        }
        let lines: Vec<&str> = self.out.lines().map(str::trim_end).collect();
        let mut text = String::with_capacity(self.out.len());
        let mut blank = 0;
        for line in lines {
            if line.is_empty() {
                blank += 1;
                continue;
            }
            if !text.is_empty() {
                text.push_str(if blank > 0 { "\n\n" } else { "\n" });
            }
            blank = 0;
            text.push_str(line);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_by_first_tag() {
        for html in [
            "<html><body>x</body></html>",
            "  <!DOCTYPE html>\n<html>",
            "<!-- generated -->\n<p>Hi</p>",
            "<?xml version=\"1.0\"?><div class=\"x\">",
            "<TABLE>",
            "<body/>",
            "Hello <p>",
            "Иван,\n<div>",
            "\u{feff}<p>BOM",
        ] {
            assert!(looks_like_html(html), "{html}");
        }
        for text in [
            "Dear client",
            "Price < 100 <b>now</b> <p>",
            "</p>",
            "Ваш счёт <оплачен>",
            "<b>bold</b>",
            "<pre>x</pre>",
            "<paragraph>",
            "< p>",
            "Hello Иван",
            "",
        ] {
            assert!(!looks_like_html(text), "{text}");
        }
    }

    #[test]
    fn paragraphs_breaks_entities_and_links() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
            <h1>Счёт &#8470;42</h1>\
            <p>Здравствуйте,&nbsp;<b>Иван</b>!<br>Счёт   оплачен &mdash; спасибо &amp; до свидания.</p>\
            <p>Оплатить: <a href=\"https://pay.example/i?a=1&amp;b=2\">страница оплаты</a>,\n\
            или <a href='https://x.example/'>https://x.example/</a>.</p>\
            <ul><li>one</li><li>two<ol><li>a</li><li>b</li></ol></li></ul>\
            <table><tr><td>Item</td><td>10 &euro;</td></tr><tr><td>Tax</td><td>2</td></tr></table>\
            <script>alert('x<p>')</script><!-- <p>hidden</p> -->\
            <pre>  a\n   b</pre><p>a &lt;tag&gt; and 1 < 2</p></body></html>";
        let text = to_text(html);
        assert_eq!(
            text,
            "Счёт №42\n\n\
             Здравствуйте, Иван!\nСчёт оплачен — спасибо & до свидания.\n\n\
             Оплатить: страница оплаты (https://pay.example/i?a=1&b=2), или https://x.example/.\n\n\
             - one\n- two\n  1. a\n  2. b\n\n\
             Item 10 €\nTax 2\n\n  a\n   b\n\n\
             a <tag> and 1 < 2"
        );
    }

    #[test]
    fn hostile_inputs_stay_bounded() {
        let deep = format!("{}x{}", "<div>".repeat(100_000), "</div>".repeat(100_000));
        assert_eq!(to_text(&deep), "x");
        let lists = "<ol><li>".repeat(1000) + "y";
        assert_eq!(to_text(&lists).lines().count(), 1000);
        assert_eq!(to_text("<a href=\"x"), "");
        assert_eq!(to_text("<p"), "");
        assert_eq!(to_text("<script>never closed"), "");
        let big = "a ".repeat(MAX_HTML);
        assert!(to_text(&big).len() <= MAX_HTML);
    }

    #[test]
    fn telegram_keeps_its_subset_and_the_text() {
        let html = "<html><head><style>p{}</style></head><body>\
            <h1>Invoice <span class=\"n\">#5</span></h1>\
            <p>Dear <strong>Ann</strong> &amp; <em>co</em>,<br>pay <a href=\"https://x.test/p?a=1&amp;b=2\">here</a> \
            or <a href=\"javascript:alert(1)\">not</a>.</p>\
            <table><tr><td>1 &lt; 2</td></tr></table><pre>a  b</pre></body></html>";
        assert_eq!(
            to_telegram(html),
            "Invoice #5\n\nDear <b>Ann</b> &amp; <i>co</i>,\npay \
             <a href=\"https://x.test/p?a=1&amp;b=2\">here</a> or not.\n\n1 &lt; 2\n\n\
             <pre>a  b</pre>"
        );
    }

    #[test]
    fn telegram_tags_are_closed_in_order() {
        assert_eq!(to_telegram("<b>a <i>b</b> c</i>"), "<b>a <i>b</i></b> c");
        assert_eq!(to_telegram("<p><u>open"), "<u>open</u>");
        assert_eq!(
            to_telegram("x</s> <code>1<2</code>"),
            "x <code>1&lt;2</code>"
        );
        assert_eq!(
            to_text("<b>a</b> <a href=\"https://e.test\">b</a>"),
            "a b (https://e.test)"
        );
    }
}
