//! Small XML helpers shared by every layer: reading an element's children as
//! parameters, escaping, and the error document BILLmanager expects.

use xmlwriter::{Options, XmlWriter};

/// An element's child elements as ordered name → text pairs (BILLmanager's parameter
/// blocks: `<gateway>`, `<user>`, `<project>`, form documents).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

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

/// Parses a document, allowing a DTD-free BILLmanager document of any size.
pub fn parse(text: &str) -> Result<roxmltree::Document<'_>, roxmltree::Error> {
    roxmltree::Document::parse_with_options(
        text,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: u32::MAX,
        },
    )
}

/// Escapes text for an XML text node or attribute value.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Whether `name` can be an element name (parameter names come from operators' input).
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The one way documents are written here: xmlwriter without indentation (whitespace
/// around text would change parameter values), with every text and attribute value
/// escaped here, since xmlwriter 0.1 escapes only `<` in text and the quote in
/// attributes, never `&`.
pub struct Writer(XmlWriter);

impl Writer {
    pub fn new() -> Self {
        Self(XmlWriter::new(Options {
            use_single_quote: false,
            indent: xmlwriter::Indent::None,
            attributes_indent: xmlwriter::Indent::None,
        }))
    }
    pub fn start(&mut self, name: &str) {
        self.0.start_element(name);
    }
    pub fn attr(&mut self, name: &str, value: &str) {
        // Escaped output has no `<` or `"` left for xmlwriter to touch.
        self.0.write_attribute(name, &escape_text(value));
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
    fn params_first_value_wins_and_blank_is_absent() {
        let doc = parse("<g><a>1</a><a>2</a><b> </b><c><![CDATA[x<y]]></c></g>").unwrap();
        let p = Params::from_children(doc.root_element());
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x<y"));
    }
}
