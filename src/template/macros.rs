//! Macros: `{user.FIELD}` in the rendered text and the subject becomes the recipient's
//! field (any child of the notification file's `<user>`: id, name, realname, email,
//! phone, addon fields). A field that is present but empty gives empty text; a macro
//! whose field is absent stays as written, so braces in CSS, JSON or prose are safe.

use crate::xml::Params;

const OPEN: &str = "{user.";

/// Replaces every `{user.FIELD}` whose field the user has.
pub fn apply(text: &str, user: &Params) -> String {
    if !text.contains(OPEN) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let name_len = after
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let closed = after[name_len..].starts_with('}');
        match user.iter().find(|(k, _)| *k == name) {
            Some((_, value)) if closed && !name.is_empty() => {
                out.push_str(value);
                rest = &after[name_len + 1..];
            }
            _ => {
                out.push_str(OPEN);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Params {
        let mut p = Params::new();
        p.set("name", "Иван");
        p.set("email", "ivan@example.com");
        p.set("realname", "");
        p.set("addon_5", "VIP");
        p
    }

    #[test]
    fn known_fields_are_replaced() {
        assert_eq!(
            apply(
                "Hi {user.name} <{user.email}> {user.addon_5}{user.realname}.",
                &user()
            ),
            "Hi Иван <ivan@example.com> VIP."
        );
    }

    #[test]
    fn unknown_or_malformed_macros_stay() {
        let text = "{user.phone} {user.name {user.} {user} a{b:c} {user.name}";
        assert_eq!(
            apply(text, &user()),
            "{user.phone} {user.name {user.} {user} a{b:c} Иван"
        );
    }

    #[test]
    fn values_are_not_scanned_again() {
        let mut p = Params::new();
        p.set("name", "{user.email}");
        p.set("email", "x");
        assert_eq!(apply("{user.name}", &p), "{user.email}");
    }
}
