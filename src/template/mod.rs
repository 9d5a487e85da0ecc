//! Rendering a notice into message text and subject (XSLT, EJS, plain text, macros).

use std::fmt;

use crate::notice::Notice;

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub subject: String,
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

/// The one rendering function every notification module uses.
pub fn render(notice: &Notice) -> Result<Rendered, TemplateError> {
    Ok(Rendered {
        text: notice.tmpl.clone(),
        subject: notice.raw_subject(),
    })
}
