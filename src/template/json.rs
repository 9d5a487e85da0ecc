//! The notice XML as JSON, the data an EJS template sees (README.md's Templates part has the rules):
//! the root element is dropped and its children become properties; an element with only
//! text is a string; an element with attributes or child elements is an object (attributes
//! first, then children); repeated sibling elements become an array; the text of an
//! element that also has attributes (or non-blank text mixed with children) is under `"$"`.
//! Every value is a string: nothing is guessed to be a number.

use roxmltree::Node;

use super::{TemplateError, TemplateErrorKind};

/// A JSON value that keeps document order (serde_json's map would sort the keys).
enum Json {
    Text(String),
    Object(Vec<(String, Json)>),
    Array(Vec<Json>),
}

/// The property that holds an element's text next to its attributes or children.
pub const TEXT_KEY: &str = "$";

/// Converts the notice document to JSON text.
pub fn notice_to_json(notice_xml: &str) -> Result<String, TemplateError> {
    if notice_xml.trim().is_empty() {
        return Ok("{}".into());
    }
    let doc = crate::xml::parse(notice_xml).map_err(|e| {
        TemplateError::new(
            TemplateErrorKind::Data,
            format!("EJS: the notice XML is not well-formed: {e}"),
        )
    })?;
    let mut out = String::with_capacity(notice_xml.len() + notice_xml.len() / 4);
    write(&mut out, &object_of(doc.root_element()));
    Ok(out)
}

fn convert(node: Node<'_, '_>) -> Json {
    let has_children = node.children().any(|c| c.is_element());
    if !has_children && node.attributes().len() == 0 {
        Json::Text(crate::xml::text_of(node))
    } else {
        object_of(node)
    }
}

fn object_of(node: Node<'_, '_>) -> Json {
    // (name, value, still the attribute's) in document order.
    let mut props: Vec<(String, Json, bool)> = node
        .attributes()
        .map(|a| (a.name().to_owned(), Json::Text(a.value().to_owned()), true))
        .collect();
    let mut has_children = false;
    for child in node.children().filter(|c| c.is_element()) {
        has_children = true;
        let name = child.tag_name().name();
        let value = convert(child);
        match props.iter_mut().find(|(k, _, _)| k == name) {
            // A child element wins over an attribute of the same name.
            Some(entry) if entry.2 => {
                entry.1 = value;
                entry.2 = false;
            }
            Some(entry) => match &mut entry.1 {
                Json::Array(items) => items.push(value),
                other => {
                    let first = std::mem::replace(other, Json::Array(Vec::new()));
                    *other = Json::Array(vec![first, value]);
                }
            },
            None => props.push((name.to_owned(), value, false)),
        }
    }
    let text = crate::xml::text_of(node);
    if (!has_children && !text.is_empty()) || !text.trim().is_empty() {
        props.push((TEXT_KEY.to_owned(), Json::Text(text), false));
    }
    Json::Object(props.into_iter().map(|(k, v, _)| (k, v)).collect())
}

fn write(out: &mut String, value: &Json) {
    match value {
        Json::Text(s) => write_string(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, item);
            }
            out.push(']');
        }
        Json::Object(props) => {
            out.push('{');
            for (i, (k, v)) in props.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write(out, v);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    // serde_json's string escaping is exact JSON; a String cannot fail to serialise.
    out.push_str(&serde_json::Value::from(s).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(xml: &str) -> serde_json::Value {
        serde_json::from_str(&notice_to_json(xml).unwrap()).unwrap()
    }

    #[test]
    fn root_dropped_children_as_properties() {
        let v = json(
            "<doc><project><id>1</id><name>Хостинг</name></project><subject>S</subject></doc>",
        );
        assert_eq!(v["project"]["name"], "Хостинг");
        assert_eq!(v["subject"], "S");
    }

    #[test]
    fn repeated_elements_become_arrays_in_order() {
        let text =
            notice_to_json("<doc><item>a</item><x/><item>b</item><item>c</item></doc>").unwrap();
        assert_eq!(text, r#"{"item":["a","b","c"],"x":""}"#);
    }

    #[test]
    fn attributes_and_text() {
        let v = json(
            r#"<doc><cost currency="RUB">100.00</cost><flag on="yes"/><mixed a="1"><b>2</b></mixed></doc>"#,
        );
        assert_eq!(v["cost"]["currency"], "RUB");
        assert_eq!(v["cost"]["$"], "100.00");
        assert_eq!(v["flag"], serde_json::json!({"on": "yes"}));
        assert_eq!(v["mixed"], serde_json::json!({"a": "1", "b": "2"}));
    }

    #[test]
    fn child_wins_over_attribute_and_cdata_is_text() {
        let v = json(r#"<doc><a id="attr"><id>elem</id></a><c><![CDATA[<b>&amp;]]></c></doc>"#);
        assert_eq!(v["a"]["id"], "elem");
        assert_eq!(v["c"], "<b>&amp;");
    }

    #[test]
    fn bad_and_empty_input() {
        assert_eq!(notice_to_json("  ").unwrap(), "{}");
        let e = notice_to_json("<doc>").unwrap_err();
        assert!(e.to_string().contains("not well-formed"), "{e}");
        assert_eq!(e.kind, TemplateErrorKind::Data);
    }
}
