//! Rendering a notice into message text and subject (XSLT, EJS, plain text, macros).
//! README.md's Templates part describes the rules for operators.

use std::fmt;

use crate::notice::Notice;
use crate::xml;

pub mod ejs;
pub mod html_text;
pub mod json;
pub mod macros;
mod process;
pub mod xslt;

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub subject: String,
    /// `text` is an HTML document: the stylesheet's `xsl:output` method is html, or
    /// the text's first tag is one a document starts with (see
    /// [`html_text::looks_like_html`]).
    pub html: bool,
}

/// A message body as email and the client area carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The text/plain version: the text itself, or made from the HTML.
    pub text: String,
    pub html: Option<String>,
}

impl Rendered {
    pub fn body(&self) -> Body {
        if self.html {
            Body {
                text: html_text::to_text(&self.text),
                html: Some(self.text.clone()),
            }
        } else {
            Body {
                text: self.text.clone(),
                html: None,
            }
        }
    }
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub kind: TemplateErrorKind,
    msg: String,
}

/// What kind of render failure a [`TemplateError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateErrorKind {
    /// The template is wrong: it does not compile, or it throws.
    Invalid,
    /// The template ran into a limit (time, memory, depth, size) and was stopped.
    Limit,
    /// The notice it renders is not well-formed.
    Data,
    /// The engine cannot run here (a library missing, the render process broken).
    Engine,
}

impl TemplateErrorKind {
    const ALL: [Self; 4] = [Self::Invalid, Self::Limit, Self::Data, Self::Engine];

    /// Its number on the render process's socket (0 is success).
    fn code(self) -> u8 {
        match self {
            Self::Invalid => 1,
            Self::Limit => 2,
            Self::Data => 3,
            Self::Engine => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl TemplateError {
    pub fn new(kind: TemplateErrorKind, msg: impl Into<String>) -> Self {
        Self {
            kind,
            msg: msg.into(),
        }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for TemplateError {}

/// What kind of template a text is, judged from its structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An XSLT stylesheet (`xsl:stylesheet`/`xsl:transform`, or a literal result element
    /// carrying `xsl:version`).
    Xslt,
    /// EJS text: it has `<%` tags.
    Ejs,
    /// Anything else is sent as it is (after macros).
    Plain,
}

const XSLT_NAMESPACE: &str = "http://www.w3.org/1999/XSL/Transform";

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Xslt => "XSLT",
            Kind::Ejs => "EJS",
            Kind::Plain => "plain text",
        }
    }
}

/// Tells the template kind. A text that is a well-formed XSLT stylesheet is XSLT even if
/// it contains `<%`; a text that names the XSLT namespace but is not well-formed (and has
/// no EJS tags) is XSLT too, and rendering it fails with the parser's reason.
pub fn detect(template: &str) -> Kind {
    kind_of(template).unwrap_or(Kind::Xslt)
}

/// The template kind, or why a text meant as a stylesheet is refused. Every template it
/// calls XSLT has passed the bounded parser ([`xml::parse_template`]), so libxml2 never
/// reads a stylesheet beyond its limits (depth, size, entity expansion).
fn kind_of(template: &str) -> Result<Kind, TemplateError> {
    let has_ejs_tags = template.contains("<%");
    if template.contains(XSLT_NAMESPACE) {
        match xml::parse_template(template.trim_start_matches('\u{feff}')) {
            Ok(doc) if is_stylesheet(&doc) || !has_ejs_tags => return Ok(Kind::Xslt),
            Ok(_) => {}
            Err(e) if !has_ejs_tags => {
                return Err(TemplateError::new(
                    TemplateErrorKind::Invalid,
                    format!("XSLT: the stylesheet is refused: {e}"),
                ))
            }
            Err(_) => {}
        }
    }
    Ok(if has_ejs_tags { Kind::Ejs } else { Kind::Plain })
}

fn is_stylesheet(doc: &roxmltree::Document<'_>) -> bool {
    let root = doc.root_element();
    let tag = root.tag_name();
    (tag.namespace() == Some(XSLT_NAMESPACE) && matches!(tag.name(), "stylesheet" | "transform"))
        || root.attribute((XSLT_NAMESPACE, "version")).is_some()
}

/// The one rendering function every notification module uses: the template applied to
/// the notice (XSLT to notice_xml, EJS to notice_xml as JSON, plain text as it is), then
/// the user macros in the text and in the subject.
pub fn render(notice: &Notice) -> Result<Rendered, TemplateError> {
    let mut html_output = false;
    let text = match kind_of(&notice.tmpl)? {
        Kind::Xslt => {
            // libxml2 reads the notice only after the bounded parser accepted it.
            xml::parse(&notice.notice_xml).map_err(|e| {
                TemplateError::new(
                    TemplateErrorKind::Data,
                    format!("XSLT: the notice XML is refused: {e}"),
                )
            })?;
            html_output = output_method(&notice.tmpl).as_deref() == Some("html");
            xslt::transform(&notice.tmpl, &notice.notice_xml)?
        }
        Kind::Ejs => ejs::render(&notice.tmpl, &json::notice_to_json(&notice.notice_xml)?)?,
        Kind::Plain => notice.tmpl.clone(),
    };
    let text = macros::apply(&text, &notice.user);
    Ok(Rendered {
        html: html_output || html_text::looks_like_html(&text),
        text,
        subject: macros::apply(&notice.raw_subject(), &notice.user),
    })
}

/// The `method` of a stylesheet's top-level `xsl:output` (lower case), when it has one.
fn output_method(stylesheet: &str) -> Option<String> {
    let doc = xml::parse_template(stylesheet.trim_start_matches('\u{feff}')).ok()?;
    let output = doc
        .root_element()
        .children()
        .find(|c| c.has_tag_name((XSLT_NAMESPACE, "output")))?;
    Some(output.attribute("method")?.trim().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        let xsl = r#"<?xml version="1.0"?>
<!DOCTYPE xsl:stylesheet [<!ENTITY nbsp "&#160;">]>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/">a&nbsp;b</xsl:template></xsl:stylesheet>"#;
        assert_eq!(detect(xsl), Kind::Xslt);
        let simplified = r#"<html xsl:version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:value-of select="/doc/a"/></html>"#;
        assert_eq!(detect(simplified), Kind::Xslt);
        assert_eq!(detect("<p><%= a %></p>"), Kind::Ejs);
        assert_eq!(detect("Hello {user.name}"), Kind::Plain);
        assert_eq!(detect("<html><body>static</body></html>"), Kind::Plain);
        let broken = r#"<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform">"#;
        assert_eq!(detect(broken), Kind::Xslt);
    }

    #[test]
    fn plain_text_with_macros_and_subject() {
        let mut notice = Notice {
            tmpl: "Dear {user.name}, {user.unknown}".into(),
            notice_xml: "<doc><subject>For {user.name}</subject></doc>".into(),
            ..Notice::default()
        };
        notice.user.set("name", "Anna");
        let r = render(&notice).unwrap();
        assert_eq!(r.text, "Dear Anna, {user.unknown}");
        assert_eq!(r.subject, "For Anna");
        assert!(!r.html);
        assert_eq!(r.body().html, None);
    }

    #[test]
    fn html_by_output_method_or_first_tag() {
        let xslt = |method: &str, out: &str| Notice {
            tmpl: format!(
                "<xsl:stylesheet version=\"1.0\" xmlns:xsl=\"{XSLT_NAMESPACE}\">\
                 <xsl:output method=\"{method}\"/><xsl:template match=\"/\">{out}</xsl:template>\
                 </xsl:stylesheet>"
            ),
            notice_xml: "<doc/>".into(),
            ..Notice::default()
        };
        let r = render(&xslt(
            "html",
            "<span>Hi &amp; <a href=\"https://x.test/\">pay</a></span>",
        ))
        .unwrap();
        assert!(r.html, "{r:?}");
        let body = r.body();
        assert_eq!(body.text, "Hi & pay (https://x.test/)");
        assert_eq!(body.html.as_deref(), Some(r.text.as_str()));
        assert!(!render(&xslt("text", "<span>x</span>")).unwrap().html);
        let plain = Notice {
            tmpl: "<p>Dear {user.name}</p>".into(),
            ..Notice::default()
        };
        assert!(render(&plain).unwrap().html);
    }
}
