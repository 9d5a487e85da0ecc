//! What a provider script declares about itself: titles, notify module, form fields.
//! The plugin XML and input validation come from it.

use rhai::{Array, Dynamic, Map};

use crate::xml::is_xml_name;

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

impl Metadata {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Reads and checks what a script's `metadata()` returned.
    pub fn from_value(value: Dynamic) -> Result<Self, String> {
        let map = value.try_cast::<Map>().ok_or_else(|| {
            "metadata() must return a map like #{title: #{en: .., ru: ..}, notify_module: \"ntsms\", fields: [..]}"
                .to_owned()
        })?;
        check_keys(
            &map,
            "metadata()",
            &["title", "description", "notify_module", "fields"],
        )?;
        let (title_en, title_ru) = texts(map.get("title"), "title")?
            .ok_or("metadata() has no title: add title: #{en: \"..\", ru: \"..\"}")?;
        let (description_en, description_ru) = texts(map.get("description"), "description")?
            .unwrap_or_else(|| (title_en.clone(), title_ru.clone()));
        let notify_module = match map.get("notify_module") {
            None => return Err(
                "metadata() has no notify_module: add notify_module: \"ntsms\" (or ntemail, ...)"
                    .into(),
            ),
            Some(v) => string(v, "notify_module")?,
        };
        if !(notify_module.starts_with("nt")
            && notify_module.len() > 2
            && is_xml_name(&notify_module))
        {
            return Err(format!(
                "notify_module '{notify_module}' is not a notification module name like ntsms or ntemail"
            ));
        }
        let fields = match map.get("fields") {
            None => Vec::new(),
            Some(v) => {
                let items = v
                    .clone()
                    .try_cast::<Array>()
                    .ok_or("metadata() fields must be an array of maps")?;
                let mut fields: Vec<Field> = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let field = Field::from_value(item).map_err(|e| format!("fields[{i}]: {e}"))?;
                    if fields.iter().any(|f| f.name == field.name) {
                        return Err(format!(
                            "fields[{i}]: the field name '{}' is used twice",
                            field.name
                        ));
                    }
                    fields.push(field);
                }
                fields
            }
        };
        Ok(Self {
            title_en,
            title_ru,
            description_en,
            description_ru,
            notify_module,
            fields,
        })
    }
}

impl Field {
    fn from_value(value: Dynamic) -> Result<Self, String> {
        let map = value
            .try_cast::<Map>()
            .ok_or("a field must be a map like #{name: \"login\", type: \"text\", ..}")?;
        check_keys(
            &map,
            "a field",
            &["name", "type", "required", "identifier", "label", "hint"],
        )?;
        let name = string(map.get("name").ok_or("the field has no name")?, "name")?;
        if !is_xml_name(&name) {
            return Err(format!(
                "the field name '{name}' is not an XML name (letters, digits, _ - ., not starting with a digit)"
            ));
        }
        let kind = match map.get("type") {
            None => FieldKind::Text,
            Some(v) => match string(v, "type")?.as_str() {
                "text" => FieldKind::Text,
                "password" => FieldKind::Password,
                "textarea" => FieldKind::Textarea,
                "checkbox" => FieldKind::Checkbox,
                other => {
                    return Err(format!(
                        "field '{name}': type '{other}' is not one of text, password, textarea, checkbox"
                    ))
                }
            },
        };
        let flag = |key: &str| match map.get(key) {
            None => Ok(false),
            Some(v) => v
                .as_bool()
                .map_err(|_| format!("field '{name}': {key} must be true or false")),
        };
        let (label_en, label_ru) = texts(map.get("label"), "label")
            .map_err(|e| format!("field '{name}': {e}"))?
            .unwrap_or_else(|| (name.clone(), name.clone()));
        let (hint_en, hint_ru) = texts(map.get("hint"), "hint")
            .map_err(|e| format!("field '{name}': {e}"))?
            .unwrap_or_default();
        Ok(Self {
            required: flag("required")?,
            identifier: flag("identifier")?,
            name,
            kind,
            label_en,
            label_ru,
            hint_en,
            hint_ru,
        })
    }
}

/// Unknown keys are typos: say so instead of ignoring them.
fn check_keys(map: &Map, what: &str, known: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(format!(
            "{what} has an unknown key '{key}' (known: {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

fn string(value: &Dynamic, what: &str) -> Result<String, String> {
    value
        .clone()
        .into_string()
        .map_err(|_| format!("{what} must be a string"))
}

/// A text in English and Russian: `#{en: "..", ru: ".."}` (ru falls back to en), or
/// one string for both. `None` when absent.
fn texts(value: Option<&Dynamic>, what: &str) -> Result<Option<(String, String)>, String> {
    let Some(value) = value else { return Ok(None) };
    if value.is_string() {
        let text = string(value, what)?;
        return Ok(Some((text.clone(), text)));
    }
    let map = value
        .clone()
        .try_cast::<Map>()
        .ok_or_else(|| format!("{what} must be #{{en: \"..\", ru: \"..\"}} or a string"))?;
    check_keys(&map, what, &["en", "ru"])?;
    let en = match map.get("en") {
        Some(v) => string(v, &format!("{what}.en"))?,
        None => return Err(format!("{what} has no en text")),
    };
    if en.trim().is_empty() {
        return Err(format!("{what}.en is empty"));
    }
    let ru = match map.get("ru") {
        Some(v) => string(v, &format!("{what}.ru"))?,
        None => en.clone(),
    };
    Ok(Some((en, ru)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str) -> Dynamic {
        crate::script::sandbox::bare_engine()
            .eval::<Dynamic>(text)
            .unwrap()
    }

    #[test]
    fn full_metadata() {
        let m = Metadata::from_value(eval(
            r#"#{title: #{en: "Demo", ru: "Демо"}, notify_module: "ntsms",
                fields: [#{name: "login", type: "text", required: true, identifier: true,
                           label: #{en: "Login", ru: "Логин"}, hint: "Your login"},
                         #{name: "password", type: "password", required: true}]}"#,
        ))
        .unwrap();
        assert_eq!((m.title_en.as_str(), m.title_ru.as_str()), ("Demo", "Демо"));
        assert_eq!(m.description_ru, "Демо");
        assert_eq!(m.fields.len(), 2);
        assert!(m.fields[0].identifier && m.fields[0].required);
        assert_eq!(m.fields[0].hint_ru, "Your login");
        assert_eq!(m.field("password").unwrap().kind, FieldKind::Password);
        assert_eq!(m.fields[1].label_en, "password");
    }

    #[test]
    fn clear_errors() {
        let cases = [
            (r#"42"#, "must return a map"),
            (r#"#{notify_module: "ntsms"}"#, "no title"),
            (r#"#{title: "T"}"#, "no notify_module"),
            (
                r#"#{title: "T", notify_module: "sms"}"#,
                "not a notification module",
            ),
            (
                r#"#{title: "T", notify_module: "ntsms", feilds: []}"#,
                "unknown key 'feilds'",
            ),
            (
                r#"#{title: "T", notify_module: "ntsms", fields: [#{name: "a", type: "select"}]}"#,
                "type 'select'",
            ),
            (
                r#"#{title: "T", notify_module: "ntsms", fields: [#{name: "a"}, #{name: "a"}]}"#,
                "used twice",
            ),
            (
                r#"#{title: "T", notify_module: "ntsms", fields: [#{name: "1st"}]}"#,
                "not an XML name",
            ),
            (
                r#"#{title: "T", notify_module: "ntsms", fields: [#{name: "a", required: "yes"}]}"#,
                "true or false",
            ),
            (
                r#"#{title: #{ru: "Т"}, notify_module: "ntsms"}"#,
                "no en text",
            ),
        ];
        for (text, expected) in cases {
            let err = Metadata::from_value(eval(text)).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
