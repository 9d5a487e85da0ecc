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
    /// `on` or `off`.
    Checkbox,
    /// One of the field's `options`.
    Select,
}

impl FieldKind {
    const ALL: [FieldKind; 5] = [
        FieldKind::Text,
        FieldKind::Password,
        FieldKind::Textarea,
        FieldKind::Checkbox,
        FieldKind::Select,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Password => "password",
            FieldKind::Textarea => "textarea",
            FieldKind::Checkbox => "checkbox",
            FieldKind::Select => "select",
        }
    }
}

/// Parameters every script gateway takes without declaring them: where its requests
/// go and how long each may take (see `crate::http`). The plugin XML gives each a
/// form field unless the script declares one of that name.
pub const HOST_PARAMS: [&str; 2] = ["api_url", "timeout"];

/// The values a checkbox sends.
pub const CHECKBOX_VALUES: [&str; 2] = ["on", "off"];

/// One choice of a `select` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectOption {
    /// What the gateway's parameter holds when this choice is made.
    pub value: String,
    pub label_en: String,
    pub label_ru: String,
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
    /// The value used when the parameter is absent or blank.
    pub default: Option<String>,
    /// The choices of a `select` field, in form order; empty for other kinds.
    pub options: Vec<SelectOption>,
    /// BILLmanager's check of a text field's value (`email` for a JID); built-in
    /// gateways only.
    pub check: Option<String>,
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
    /// Groups of fields of which at least one must have a value (`token` or `login`).
    pub required_one_of: Vec<Vec<String>>,
    /// For a notification type of its own (not one of [`BUILTIN_TYPES`]): how a user
    /// is addressed on it. `mgrnotify sync` makes the type from it.
    pub contact: Option<Contact>,
}

/// The notification types BILLmanager brings, with contact fields of their own.
pub const BUILTIN_TYPES: [&str; 3] = ["ntsms", "ntemail", "ntinternal"];

/// Largest `size` of a contact field's column.
const MAX_CONTACT_SIZE: u32 = 1024;

/// A declared notification type's contact: the user-table field that holds a user's
/// address on it, shown on the user edit form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The user-table column (and form field), like `jabber`.
    pub field: String,
    /// The type's name in BILLmanager's lists ("Jabber messages").
    pub title_en: String,
    pub title_ru: String,
    pub label_en: String,
    pub label_ru: String,
    pub hint_en: String,
    pub hint_ru: String,
    /// BILLmanager's input check of the field (`email` for a JID), if any.
    pub check: Option<String>,
    /// The column's size in characters.
    pub size: u32,
}

impl Contact {
    fn from_value(value: &Dynamic) -> Result<Self, String> {
        let map = value.clone().try_cast::<Map>().ok_or(
            "contact must be a map like #{field: \"jabber\", label: #{en: \"..\", ru: \"..\"}}",
        )?;
        check_keys(
            &map,
            "contact",
            &["field", "title", "label", "hint", "check", "size"],
        )?;
        let field = string(
            map.get("field").ok_or("contact has no field")?,
            "contact.field",
        )?;
        let column_name = field.len() <= 64
            && field.starts_with(|c: char| c.is_ascii_lowercase())
            && field
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !column_name {
            return Err(format!(
                "contact.field '{field}' is not a column name (lower-case letters, digits and _, starting with a letter, at most 64)"
            ));
        }
        let (label_en, label_ru) =
            texts(map.get("label"), "contact.label")?.ok_or("contact has no label")?;
        let (title_en, title_ru) = texts(map.get("title"), "contact.title")?
            .unwrap_or_else(|| (label_en.clone(), label_ru.clone()));
        let (hint_en, hint_ru) = texts(map.get("hint"), "contact.hint")?.unwrap_or_default();
        let check = match map.get("check") {
            None => None,
            Some(v) => {
                let check = string(v, "contact.check")?;
                if !is_xml_name(&check) {
                    return Err(format!(
                        "contact.check '{check}' is not a check name like email"
                    ));
                }
                Some(check)
            }
        };
        let size = match map.get("size") {
            None => 128,
            Some(v) => v
                .as_int()
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=MAX_CONTACT_SIZE).contains(n))
                .ok_or(format!(
                    "contact.size must be a whole number from 1 to {MAX_CONTACT_SIZE}"
                ))?,
        };
        Ok(Self {
            field,
            title_en,
            title_ru,
            label_en,
            label_ru,
            hint_en,
            hint_ru,
            check,
            size,
        })
    }
}

impl Metadata {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The names of the password fields: their values are secrets.
    pub fn password_fields(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter(|f| f.kind == FieldKind::Password)
            .map(|f| f.name.clone())
            .collect()
    }

    /// The groups of [`Self::required_one_of`] that `name` belongs to.
    pub fn one_of_groups<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [String]> {
        self.required_one_of
            .iter()
            .filter(move |g| g.iter().any(|n| n == name))
            .map(Vec::as_slice)
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
            &[
                "title",
                "description",
                "notify_module",
                "fields",
                "required_one_of",
                "contact",
            ],
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
        let required_one_of = match map.get("required_one_of") {
            None => Vec::new(),
            Some(v) => one_of_groups(v, &fields)?,
        };
        check_message_names(&fields)?;
        let builtin_type = BUILTIN_TYPES.contains(&notify_module.as_str());
        let contact = match (map.get("contact"), builtin_type) {
            (None, true) => None,
            (Some(v), false) => Some(Contact::from_value(v)?),
            (Some(_), true) => {
                return Err(format!(
                    "{notify_module} has its own contact field: drop contact"
                ))
            }
            (None, false) => {
                return Err(format!(
                    "notify_module '{notify_module}' is a type of its own: declare how users are addressed on it with contact: #{{field: \"..\", label: #{{en: \"..\", ru: \"..\"}}}}"
                ))
            }
        };
        Ok(Self {
            title_en,
            title_ru,
            description_en,
            description_ru,
            notify_module,
            fields,
            required_one_of,
            contact,
        })
    }
}

/// `required_one_of: [["token", "login"], ..]`: each group names two or more
/// declared fields that are not `required` themselves.
fn one_of_groups(value: &Dynamic, fields: &[Field]) -> Result<Vec<Vec<String>>, String> {
    let shape =
        "required_one_of must be an array of arrays of field names, like [[\"token\", \"login\"]]";
    let groups = value.clone().try_cast::<Array>().ok_or(shape)?;
    let mut out = Vec::with_capacity(groups.len());
    for (i, group) in groups.into_iter().enumerate() {
        let names = group.try_cast::<Array>().ok_or(shape)?;
        let mut group: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            let name = string(&name, &format!("required_one_of[{i}]"))?;
            let field = fields
                .iter()
                .find(|f| f.name == name)
                .ok_or_else(|| format!("required_one_of[{i}]: there is no field '{name}'"))?;
            if field.required {
                return Err(format!(
                    "required_one_of[{i}]: field '{name}' is required on its own; drop required: true or the group"
                ));
            }
            if group.contains(&name) {
                return Err(format!("required_one_of[{i}]: '{name}' is named twice"));
            }
            group.push(name);
        }
        if group.len() < 2 {
            return Err(format!(
                "required_one_of[{i}]: a group names at least two fields (for one, use required: true)"
            ));
        }
        out.push(group);
    }
    Ok(out)
}

/// Field labels, hints and select choices share the form's message names: a choice
/// whose value is also a field's name would take that field's label.
fn check_message_names(fields: &[Field]) -> Result<(), String> {
    let names = fields
        .iter()
        .map(|f| f.name.as_str())
        .chain(HOST_PARAMS)
        .collect::<Vec<_>>();
    for field in fields {
        for option in &field.options {
            let value = option.value.as_str();
            if names
                .iter()
                .any(|n| *n == value || value.strip_prefix("hint_") == Some(n))
            {
                return Err(format!(
                    "field '{}': the option value '{}' is also the name of a form message (a field or its hint): choose another value",
                    field.name, option.value
                ));
            }
        }
    }
    Ok(())
}

impl Field {
    /// An optional text field with its label and hint in English and Russian (built-in
    /// gateways' forms).
    pub fn text(name: &str, label: (&str, &str), hint: (&str, &str)) -> Self {
        Self {
            name: name.into(),
            kind: FieldKind::Text,
            required: false,
            identifier: false,
            label_en: label.0.into(),
            label_ru: label.1.into(),
            hint_en: hint.0.into(),
            hint_ru: hint.1.into(),
            default: None,
            options: Vec::new(),
            check: None,
        }
    }

    fn from_value(value: Dynamic) -> Result<Self, String> {
        let map = value
            .try_cast::<Map>()
            .ok_or("a field must be a map like #{name: \"login\", type: \"text\", ..}")?;
        check_keys(
            &map,
            "a field",
            &[
                "name",
                "type",
                "required",
                "identifier",
                "label",
                "hint",
                "default_value",
                "options",
            ],
        )?;
        let name = string(map.get("name").ok_or("the field has no name")?, "name")?;
        if !is_xml_name(&name) {
            return Err(format!(
                "the field name '{name}' is not an XML name (letters, digits, _ - ., not starting with a digit)"
            ));
        }
        let kind = match map.get("type") {
            None => FieldKind::Text,
            Some(v) => {
                let text = string(v, "type")?;
                FieldKind::ALL
                    .into_iter()
                    .find(|k| k.name() == text)
                    .ok_or_else(|| {
                        format!(
                            "field '{name}': type '{text}' is not one of {}",
                            FieldKind::ALL.map(FieldKind::name).join(", ")
                        )
                    })?
            }
        };
        let options = match (kind, map.get("options")) {
            (FieldKind::Select, Some(v)) => {
                select_options(v).map_err(|e| format!("field '{name}': {e}"))?
            }
            (FieldKind::Select, None) => {
                return Err(format!(
                    "field '{name}': a select needs options: [#{{value: \"..\", label: #{{en: \"..\", ru: \"..\"}}}}, ..]"
                ))
            }
            (_, Some(_)) => {
                return Err(format!(
                    "field '{name}': only a select field has options"
                ))
            }
            (_, None) => Vec::new(),
        };
        let default = match map.get("default_value") {
            None => None,
            Some(v) => {
                Some(default_value(v, kind, &options).map_err(|e| format!("field '{name}': {e}"))?)
            }
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
            default,
            options,
            check: None,
        })
    }
}

/// A select's options: `#{value: "..", label: #{en: .., ru: ..}}` maps (label
/// defaults to the value) or plain strings.
fn select_options(value: &Dynamic) -> Result<Vec<SelectOption>, String> {
    let items = value
        .clone()
        .try_cast::<Array>()
        .ok_or("options must be an array of #{value: .., label: ..} maps or strings")?;
    if items.is_empty() {
        return Err("options is empty: a select needs at least one choice".into());
    }
    let mut options: Vec<SelectOption> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let option = if item.is_string() {
            let value = string(&item, "an option")?;
            SelectOption {
                label_en: value.clone(),
                label_ru: value.clone(),
                value,
            }
        } else {
            let map = item
                .try_cast::<Map>()
                .ok_or_else(|| format!("options[{i}] must be a map or a string"))?;
            check_keys(&map, &format!("options[{i}]"), &["value", "label"])?;
            let value = match map.get("value") {
                Some(v) => {
                    scalar(v).ok_or_else(|| format!("options[{i}].value must be a string"))?
                }
                None => return Err(format!("options[{i}] has no value")),
            };
            let (label_en, label_ru) = texts(map.get("label"), &format!("options[{i}].label"))?
                .unwrap_or_else(|| (value.clone(), value.clone()));
            SelectOption {
                value,
                label_en,
                label_ru,
            }
        };
        if option.value.trim().is_empty() {
            return Err(format!("options[{i}]: the value is empty"));
        }
        if options.iter().any(|o| o.value == option.value) {
            return Err(format!(
                "options[{i}]: the value '{}' is used twice",
                option.value
            ));
        }
        options.push(option);
    }
    Ok(options)
}

/// A field's `default_value` (`default` is a reserved word in rhai), checked against its kind: one of the options of a select,
/// `on`/`off` (or true/false) for a checkbox, none for a password.
fn default_value(
    value: &Dynamic,
    kind: FieldKind,
    options: &[SelectOption],
) -> Result<String, String> {
    let text = match (kind, value.as_bool()) {
        (FieldKind::Checkbox, Ok(on)) => CHECKBOX_VALUES[usize::from(!on)].to_owned(),
        _ => scalar(value).ok_or("default_value must be a string or a number")?,
    };
    match kind {
        FieldKind::Password => Err(
            "a password field has no default_value: a secret does not belong in a script".into(),
        ),
        FieldKind::Checkbox if !CHECKBOX_VALUES.contains(&text.as_str()) => Err(format!(
            "a checkbox's default_value is on or off, not '{text}'"
        )),
        FieldKind::Select if !options.iter().any(|o| o.value == text) => Err(format!(
            "default_value '{text}' is not one of the options ({})",
            options
                .iter()
                .map(|o| o.value.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ if text.trim().is_empty() => Err("default_value is empty (leave it out instead)".into()),
        _ => Ok(text),
    }
}

/// A string, or a number written as one.
fn scalar(value: &Dynamic) -> Option<String> {
    if value.is_string() || value.is_int() || value.is_float() {
        Some(value.to_string())
    } else {
        None
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
                r#"#{title: "T", notify_module: "ntsms", fields: [#{name: "a", type: "radio"}]}"#,
                "type 'radio' is not one of text, password, textarea, checkbox, select",
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
            (
                r#"#{title: "T", notify_module: "ntchat"}"#,
                "a type of its own: declare how users are addressed",
            ),
            (
                r#"#{title: "T", notify_module: "ntsms", contact: #{field: "x", label: "X"}}"#,
                "ntsms has its own contact field",
            ),
            (
                r#"#{title: "T", notify_module: "ntchat", contact: #{field: "Chat-ID", label: "X"}}"#,
                "not a column name",
            ),
            (
                r#"#{title: "T", notify_module: "ntchat", contact: #{field: "chat"}}"#,
                "contact has no label",
            ),
            (
                r#"#{title: "T", notify_module: "ntchat", contact: #{field: "chat", label: "C", size: 0}}"#,
                "contact.size must be a whole number from 1 to 1024",
            ),
        ];
        for (text, expected) in cases {
            let err = Metadata::from_value(eval(text)).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn a_declared_type_and_its_contact() {
        let m = Metadata::from_value(eval(
            r#"#{title: "Chat", notify_module: "ntchat",
                contact: #{field: "chat", label: #{en: "Chat", ru: "Чат"}, check: "email"}}"#,
        ))
        .unwrap();
        let c = m.contact.unwrap();
        assert_eq!((c.field.as_str(), c.size), ("chat", 128));
        assert_eq!((c.title_en.as_str(), c.title_ru.as_str()), ("Chat", "Чат"));
        assert_eq!(c.check.as_deref(), Some("email"));
        assert!(c.hint_en.is_empty());
    }

    #[test]
    fn defaults_selects_and_one_of() {
        let m = Metadata::from_value(eval(
            r#"#{title: "T", notify_module: "ntsms", required_one_of: [["token", "login"]],
                fields: [#{name: "token", type: "password"}, #{name: "login"},
                         #{name: "route", type: "select", default_value: "sms",
                           options: ["sms", #{value: 2, label: #{en: "Viber", ru: "Вайбер"}}]},
                         #{name: "flash", type: "checkbox", default_value: false},
                         #{name: "ttl", default_value: 60}]}"#,
        ))
        .unwrap();
        assert_eq!(m.required_one_of, [["token", "login"]]);
        let route = m.field("route").unwrap();
        assert_eq!(route.kind, FieldKind::Select);
        assert_eq!(route.default.as_deref(), Some("sms"));
        assert_eq!(
            route.options[1],
            SelectOption {
                value: "2".into(),
                label_en: "Viber".into(),
                label_ru: "Вайбер".into()
            }
        );
        assert_eq!(route.options[0].label_ru, "sms");
        assert_eq!(m.field("flash").unwrap().default.as_deref(), Some("off"));
        assert_eq!(m.field("ttl").unwrap().default.as_deref(), Some("60"));
        assert_eq!(m.one_of_groups("login").count(), 1);
        assert_eq!(m.one_of_groups("route").count(), 0);
    }

    #[test]
    fn bad_defaults_selects_and_one_of_are_clear_errors() {
        let field = |f: &str| format!(r#"#{{title: "T", notify_module: "ntsms", fields: [{f}]}}"#);
        let cases = [
            (field(r#"#{name: "a", type: "select"}"#), "a select needs options"),
            (field(r#"#{name: "a", type: "select", options: []}"#), "options is empty"),
            (field(r#"#{name: "a", options: ["x"]}"#), "only a select field has options"),
            (
                field(r#"#{name: "a", type: "select", options: ["x", "x"]}"#),
                "'x' is used twice",
            ),
            (
                field(r#"#{name: "a", type: "select", options: [#{label: "X"}]}"#),
                "options[0] has no value",
            ),
            (
                field(r#"#{name: "a", type: "select", options: ["x"], default_value: "y"}"#),
                "default_value 'y' is not one of the options (x)",
            ),
            (
                field(r#"#{name: "a", type: "checkbox", default_value: "yes"}"#),
                "on or off",
            ),
            (
                field(r#"#{name: "a", type: "password", default_value: "pw"}"#),
                "a password field has no default_value",
            ),
            (field(r#"#{name: "a", default_value: [1]}"#), "string or a number"),
            (
                field(r#"#{name: "a", type: "select", options: ["a"]}"#),
                "also the name of a form message",
            ),
            (
                field(r#"#{name: "a", type: "select", options: ["timeout"]}"#),
                "also the name of a form message",
            ),
            (
                r#"#{title: "T", notify_module: "ntsms", required_one_of: [["a", "b"]], fields: [#{name: "a"}]}"#.into(),
                "no field 'b'",
            ),
            (
                r#"#{title: "T", notify_module: "ntsms", required_one_of: [["a"]], fields: [#{name: "a"}]}"#.into(),
                "at least two fields",
            ),
            (
                r#"#{title: "T", notify_module: "ntsms", required_one_of: ["a", "b"], fields: [#{name: "a"}, #{name: "b"}]}"#.into(),
                "array of arrays",
            ),
            (
                r#"#{title: "T", notify_module: "ntsms", required_one_of: [["a", "b"]],
                    fields: [#{name: "a", required: true}, #{name: "b"}]}"#.into(),
                "required on its own",
            ),
        ];
        for (text, expected) in cases {
            let err = Metadata::from_value(eval(&text)).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
