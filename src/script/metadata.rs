//! What a provider script declares about itself: titles, notify module, form fields.
//! The plugin XML and input validation come from it.

/// A form field's input type in BILLmanager's gateway form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    /// Hidden in the form and redacted everywhere.
    Password,
    Textarea,
    Checkbox,
}

impl FieldKind {
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Password => "password",
            FieldKind::Textarea => "textarea",
            FieldKind::Checkbox => "checkbox",
        }
    }
}

/// One field of the gateway's settings form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    pub required: bool,
    /// Part of what identifies the gateway (BILLmanager's `identifier="yes"`).
    pub identifier: bool,
    pub label_en: String,
    pub label_ru: String,
    pub hint_en: String,
    pub hint_ru: String,
}

/// A provider script's declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub title_en: String,
    pub title_ru: String,
    /// Longer description; the title when the script gives none.
    pub description_en: String,
    pub description_ru: String,
    /// The notification module the gateway serves: ntsms, ntemail, ...
    pub notify_module: String,
    pub fields: Vec<Field>,
}
