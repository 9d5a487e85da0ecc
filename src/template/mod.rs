//! Rendering a notice into message text and subject (XSLT, EJS, plain text, macros).
//! README.md's Templates part describes the rules for operators.

use std::fmt;

use crate::notice::Notice;
use crate::xml;

pub mod ejs;
pub mod json;
pub mod macros;
mod process;
pub mod xslt;

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub subject: String,
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
    let text = match kind_of(&notice.tmpl)? {
        Kind::Xslt => {
            // libxml2 reads the notice only after the bounded parser accepted it.
            xml::parse(&notice.notice_xml).map_err(|e| {
                TemplateError::new(
                    TemplateErrorKind::Data,
                    format!("XSLT: the notice XML is refused: {e}"),
                )
            })?;
            xslt::transform(&notice.tmpl, &notice.notice_xml)?
        }
        Kind::Ejs => ejs::render(&notice.tmpl, &json::notice_to_json(&notice.notice_xml)?)?,
        Kind::Plain => notice.tmpl.clone(),
    };
    Ok(Rendered {
        text: macros::apply(&text, &notice.user),
        subject: macros::apply(&notice.raw_subject(), &notice.user),
    })
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
    }
}
