//! XML for every layer: the one bounded parser every untrusted document goes through
//! ([`parse`], [`parse_template`]; the limits are checked in `prescan`), the one writer
//! ([`Writer`]) whose output is always well-formed, reading an element's children as
//! parameters, and the error document BILLmanager expects.

use std::borrow::Cow;

use xmlwriter::{Options, XmlWriter};

mod prescan;

/// An element's child elements as ordered name → text pairs (BILLmanager's parameter
/// blocks: `<gateway>`, `<user>`, `<project>`, form documents).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl<'a> FromIterator<(&'a str, &'a str)> for Params {
    /// Pairs in order; a name that occurs twice keeps its last value.
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> Self {
        let mut p = Self::new();
        for (k, v) in pairs {
            p.set(k, v);
        }
        p
    }
}

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    /// The children of `node` that are elements, with their text (empty for an element
    /// without text). An element that occurs twice keeps its first value.
    pub fn from_children(node: roxmltree::Node<'_, '_>) -> Self {
        let mut p = Self::new();
        for child in node.children().filter(|c| c.is_element()) {
            p.insert_if_absent(child.tag_name().name(), &text_of(child));
        }
        p
    }

    /// The value of `name`, when present and not blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    /// Sets `name`, replacing an earlier value.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(entry) => entry.1 = value.to_owned(),
            None => self.0.push((name.to_owned(), value.to_owned())),
        }
    }

    pub fn insert_if_absent(&mut self, name: &str, value: &str) {
        if !self.0.iter().any(|(k, _)| k == name) {
            self.0.push((name.to_owned(), value.to_owned()));
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Writes each pair as `<name>value</name>` inside the current element.
    pub fn write_into(&self, w: &mut Writer) {
        for (k, v) in self.iter() {
            if is_xml_name(k) {
                w.start(k);
                w.text(v);
                w.end();
            }
        }
    }
}

/// The concatenated text of an element (its text and CDATA children).
pub fn text_of(node: roxmltree::Node<'_, '_>) -> String {
    node.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect()
}

/// Largest document parsed here; BILLmanager's documents are a few kilobytes.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;
/// Deepest element nesting: roxmltree recurses once per level, and a stack overflow aborts
/// the process, so deeper documents are refused before roxmltree sees them.
pub const MAX_DEPTH: usize = 256;
/// Most attributes (namespace declarations included) on one element: roxmltree's check
/// for duplicates is quadratic in them.
pub const MAX_ATTRIBUTES: usize = 256;
/// Most nodes (elements, texts, comments, processing instructions) in one document.
pub const MAX_NODES: usize = 1_000_000;
/// Most namespace bindings roxmltree stores: an element that declares a namespace gets its
/// own copy of every binding in scope.
pub const MAX_NAMESPACE_BINDINGS: usize = 1_000_000;
/// Most entities a template's DTD declares (roxmltree looks each reference up in a list).
pub const MAX_ENTITY_DECLARATIONS: usize = 1024;
/// Most entity references a template expands, nested ones included.
pub const MAX_ENTITY_REFERENCES: usize = 16 * 1024;
/// Most bytes a template's entity references expand to, in total.
pub const MAX_ENTITY_EXPANSION: usize = 1024 * 1024;
/// Most bytes roxmltree may copy to join one text from pieces (entity values, CDATA
/// sections): it copies the text so far once per piece, so the work is pieces × length.
pub const MAX_TEXT_JOIN_WORK: usize = 256 * 1024 * 1024;

/// Why a document was not parsed: a limit it exceeds (named in the text), a DTD where none
/// is accepted, or what makes it not well-formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(String);

impl ParseError {
    fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Parses an untrusted document (stdin, provider replies, notification files, notice XML,
/// parameters): every limit above is checked by a linear pre-scan before roxmltree sees the
/// text, and a DTD is refused.
pub fn parse(text: &str) -> Result<roxmltree::Document<'_>, ParseError> {
    parse_bounded(text, false)
}

/// `text` (a document) with `fragment` (well-formed markup) added as the last child
/// of its root element: what a gateway's formtune adds to the form.
pub fn append_to_root(text: &str, fragment: &str) -> Result<String, ParseError> {
    let doc = parse(text)?;
    let root = doc.root_element();
    let range = root.range();
    let element = &text[range.clone()];
    Ok(if element.ends_with("/>") {
        let open = element.trim_end_matches("/>").trim_end();
        // The name as written (with its prefix, if any): up to a space, `/` or `>`.
        let name = element[1..]
            .split(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .next()
            .unwrap_or_default();
        format!(
            "{}{open}>{fragment}</{name}>{}",
            &text[..range.start],
            &text[range.end..]
        )
    } else {
        let close = element.rfind("</").map_or(range.end, |i| range.start + i);
        format!("{}{fragment}{}", &text[..close], &text[close..])
    })
}

/// Parses a template (an XSLT stylesheet) under the same limits, also accepting an internal
/// DTD that declares text entities such as `&nbsp;`, with their expansion bounded.
/// libxml2 is given only stylesheets this accepted.
pub fn parse_template(text: &str) -> Result<roxmltree::Document<'_>, ParseError> {
    parse_bounded(text, true)
}

fn parse_bounded(text: &str, entities: bool) -> Result<roxmltree::Document<'_>, ParseError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ParseError::new(format!(
            "the document is larger than the limit of {MAX_INPUT_BYTES} bytes"
        )));
    }
    prescan::check(text, entities)?;
    roxmltree::Document::parse_with_options(
        text,
        roxmltree::ParsingOptions {
            allow_dtd: entities,
            nodes_limit: u32::MAX,
        },
    )
    .map_err(|e| ParseError::new(e.to_string()))
}

/// Whether XML 1.0 can carry `c` at all (surrogates cannot occur in a Rust string).
fn is_xml_char(c: char) -> bool {
    !matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// Whether every character of `s` can be written into XML 1.0 as it is (the writer
/// would replace the others).
pub fn can_carry(s: &str) -> bool {
    s.chars().all(is_xml_char)
}

/// Escapes text for an XML text node (or a double-quoted attribute value): markup
/// characters become references, `\r` becomes `&#13;` (a parser would turn it into `\n`),
/// and characters XML 1.0 cannot carry (C0 controls other than tab, newline and carriage
/// return; U+FFFE, U+FFFF) become U+FFFD, so the output is always well-formed.
pub fn escape_text(s: &str) -> String {
    escape(s, false)
}

/// As [`escape_text`], and also tab and newline as references, which attribute-value
/// normalisation would otherwise turn into spaces.
fn escape_attribute(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            c if !is_xml_char(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Whether `name` can be an element or attribute name: an XML 1.0 Name without a colon
/// (parameter names come from operators' input, and a prefix would need a namespace).
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{c0}'..='\u{d6}' | '\u{d8}'..='\u{f6}'
        | '\u{f8}'..='\u{2ff}' | '\u{370}'..='\u{37d}' | '\u{37f}'..='\u{1fff}'
        | '\u{200c}'..='\u{200d}' | '\u{2070}'..='\u{218f}' | '\u{2c00}'..='\u{2fef}'
        | '\u{3001}'..='\u{d7ff}' | '\u{f900}'..='\u{fdcf}' | '\u{fdf0}'..='\u{fffd}'
        | '\u{10000}'..='\u{effff}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{b7}' | '\u{300}'..='\u{36f}' | '\u{203f}'..='\u{2040}')
}

/// `name` made into an XML name: each character a name cannot hold becomes `_`, and `_`
/// goes in front of a character a name cannot start with. Callers check names with
/// [`is_xml_name`] first; this keeps the output well-formed if one does not.
fn to_xml_name(name: &str) -> Cow<'_, str> {
    if is_xml_name(name) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 1);
    if !name.chars().next().is_some_and(is_name_start_char) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| if is_name_char(c) { c } else { '_' }));
    Cow::Owned(out)
}

/// The one way documents are written here: xmlwriter without indentation (whitespace
/// around text would change parameter values), with every name, text and attribute value
/// made well-formed here, since xmlwriter 0.1 checks no names and escapes only `<` in text
/// and the quote in attributes, never `&`.
pub struct Writer(XmlWriter);

impl Writer {
    pub fn new() -> Self {
        Self(XmlWriter::new(Options {
            use_single_quote: false,
            indent: xmlwriter::Indent::None,
            attributes_indent: xmlwriter::Indent::None,
        }))
    }
    /// `<!-- text -->`; a `--` in the text (which would end the comment) is spaced out.
    pub fn comment(&mut self, text: &str) {
        let mut safe = escape_text(text);
        while safe.contains("--") {
            safe = safe.replace("--", "- -");
        }
        self.0.write_comment(&safe);
    }
    pub fn start(&mut self, name: &str) {
        self.0.start_element(&to_xml_name(name));
    }
    pub fn attr(&mut self, name: &str, value: &str) {
        // Escaped output has no `<` or `"` left for xmlwriter to touch.
        self.0
            .write_attribute(&to_xml_name(name), &escape_attribute(value));
    }
    pub fn text(&mut self, text: &str) {
        self.0.write_text(&escape_text(text));
    }
    pub fn end(&mut self) {
        self.0.end_element();
    }
    /// Closes every open element and returns the document.
    pub fn finish(self) -> String {
        self.0.end_document()
    }
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

/// `<doc><error type=".." object=".."><msg>..</msg></error></doc>`: BILLmanager's
/// error reply. The text is redacted of every registered secret.
pub fn error_doc(kind: &str, object: &str, msg: &str) -> String {
    let mut w = Writer::new();
    w.start("doc");
    w.start("error");
    w.attr("type", kind);
    if !object.is_empty() {
        w.attr("object", &crate::log::redact(object));
    }
    w.start("msg");
    w.text(&crate::log::redact(msg));
    w.finish() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_go_last_into_the_root() {
        let frag = "<slist name=\"f\"><val>#id</val></slist>";
        assert_eq!(
            append_to_root("<?xml version=\"1.0\"?>\n<doc><a/></doc>\n", frag).unwrap(),
            format!("<?xml version=\"1.0\"?>\n<doc><a/>{frag}</doc>\n")
        );
        assert_eq!(
            append_to_root("<doc x=\"1\" />", frag).unwrap(),
            format!("<doc x=\"1\">{frag}</doc>")
        );
        assert!(append_to_root("not xml", frag).is_err());
    }

    #[test]
    fn error_doc_shape() {
        let doc = error_doc("value", "phone", "bad <number> & \"quote\"");
        let parsed = parse(&doc).unwrap();
        let err = parsed.root_element().first_element_child().unwrap();
        assert_eq!(err.tag_name().name(), "error");
        assert_eq!(err.attribute("type"), Some("value"));
        assert_eq!(err.attribute("object"), Some("phone"));
        assert_eq!(
            text_of(err.first_element_child().unwrap()),
            "bad <number> & \"quote\""
        );
    }

    #[test]
    fn error_doc_with_control_characters_is_well_formed() {
        let doc = error_doc(
            "xml\u{4}",
            "in\0put",
            "bad \0 and \u{4} and \u{ffff}: \u{1b}[31m",
        );
        let parsed = parse(&doc).unwrap_or_else(|e| panic!("{e}: {doc:?}"));
        let err = parsed.root_element().first_element_child().unwrap();
        assert_eq!(err.attribute("type"), Some("xml\u{fffd}"));
        assert_eq!(err.attribute("object"), Some("in\u{fffd}put"));
        assert_eq!(
            text_of(err.first_element_child().unwrap()),
            "bad \u{fffd} and \u{fffd} and \u{fffd}: \u{fffd}[31m"
        );
    }

    #[test]
    fn writer_output_reads_back_exactly() {
        let mut w = Writer::new();
        w.start("doc");
        w.attr("a", "tab\there\nnew line\r\n & \"quoted\" <x>");
        w.text("line 1\r\nline 2 ]]> & <");
        let doc = w.finish();
        let parsed = parse(&doc).unwrap();
        let root = parsed.root_element();
        assert_eq!(
            root.attribute("a"),
            Some("tab\there\nnew line\r\n & \"quoted\" <x>")
        );
        assert_eq!(root.text(), Some("line 1\r\nline 2 ]]> & <"));
    }

    #[test]
    fn writer_names_are_always_xml_names() {
        let mut w = Writer::new();
        w.start("1 bad<name>");
        w.attr("x\0=\"", "v");
        w.start("ok-имя.1");
        let doc = w.finish();
        let parsed = parse(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        let root = parsed.root_element();
        assert_eq!(root.tag_name().name(), "_1_bad_name_");
        assert_eq!(root.attribute("x___"), Some("v"));
        assert_eq!(
            root.first_element_child().unwrap().tag_name().name(),
            "ok-имя.1"
        );
        assert!(is_xml_name("имя_1"));
        assert!(
            !is_xml_name("\u{aa}bc"),
            "U+00AA is alphabetic but not a name start"
        );
        assert!(!is_xml_name("a:b"));
        assert!(!is_xml_name("-a"));
        assert!(!is_xml_name(""));
    }

    #[test]
    fn params_first_value_wins_and_blank_is_absent() {
        let doc = parse("<g><a>1</a><a>2</a><b> </b><c><![CDATA[x<y]]></c></g>").unwrap();
        let p = Params::from_children(doc.root_element());
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x<y"));
    }
}
