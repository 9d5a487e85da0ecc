//! The `<messages>` document of the seed's `--command ingoing`: each received mail's
//! raw source, byte for byte. Text XML can carry goes in as it is (a CR as `&#13;`, so
//! CRLF line ends survive a parser); any other source (not UTF-8, or holding characters
//! XML 1.0 cannot carry) goes in as `<message encoding="base64">`.

use base64::Engine;

use crate::gateway::GatewayError;
use crate::xml;

/// Most messages one ingoing reply may hold.
pub const MAX_MESSAGES: usize = 10_000;

/// The reply document for `messages`.
pub fn messages_xml(messages: &[Vec<u8>]) -> String {
    let mut w = xml::Writer::new();
    w.start("doc");
    w.start("messages");
    for source in messages {
        w.start("message");
        match std::str::from_utf8(source) {
            Ok(text) if xml::can_carry(text) => w.text(text),
            _ => {
                w.attr("encoding", "base64");
                w.text(&base64::engine::general_purpose::STANDARD.encode(source));
            }
        }
        w.end();
    }
    w.finish()
}

/// The sources in a module's `<messages>` reply (through the bounded parser).
pub fn parse_messages(module: &str, text: &str) -> Result<Vec<Vec<u8>>, GatewayError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let doc = xml::parse(text)
        .map_err(|e| GatewayError::provider(module, format!("ingoing reply is not XML: {e}")))?;
    let root = doc.root_element();
    if root.descendants().any(|n| n.has_tag_name("error")) {
        return Err(crate::gateway::parse_reply(module, text, false)
            .err()
            .unwrap_or_else(|| GatewayError::provider(module, "ingoing failed")));
    }
    let mut sources = Vec::new();
    for m in root.descendants().filter(|n| {
        n.has_tag_name("message") && n.parent().is_some_and(|p| p.has_tag_name("messages"))
    }) {
        if sources.len() == MAX_MESSAGES {
            return Err(GatewayError::provider(
                module,
                format!("ingoing reply holds more than {MAX_MESSAGES} messages"),
            ));
        }
        let text = xml::text_of(m);
        let source = match m.attribute("encoding") {
            None => text.into_bytes(),
            Some(e) if e.eq_ignore_ascii_case("base64") => {
                let compact: String = text.split_ascii_whitespace().collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|e| {
                        GatewayError::provider(
                            module,
                            format!("message {} is not valid base64: {e}", sources.len() + 1),
                        )
                    })?
            }
            Some(other) => {
                return Err(GatewayError::provider(
                    module,
                    format!("message encoding '{other}' is not base64"),
                ))
            }
        };
        sources.push(source);
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_survives_byte_for_byte() {
        let mail = b"Subject: Hi & <bye>\r\nFrom: a@b.c\r\n\r\nline 1\r\nline 2\r\n".to_vec();
        let text = messages_xml(std::slice::from_ref(&mail));
        assert!(
            text.contains("Subject: Hi &amp; &lt;bye&gt;&#13;\nFrom"),
            "{text}"
        );
        assert!(!text.contains("base64"));
        assert_eq!(parse_messages("gwx", &text).unwrap(), [mail]);
    }

    #[test]
    fn non_utf8_and_control_characters_go_as_base64() {
        let koi8 = b"Subject: test\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n".to_vec();
        let control = b"Subject: x\r\n\r\nbell \x07 here\r\n".to_vec();
        let text = messages_xml(&[koi8.clone(), control.clone()]);
        assert_eq!(text.matches("encoding=\"base64\"").count(), 2, "{text}");
        assert_eq!(parse_messages("gwx", &text).unwrap(), [koi8, control]);
    }

    #[test]
    fn bad_replies_are_clear_errors() {
        assert!(parse_messages("gwx", "").unwrap().is_empty());
        let e = parse_messages(
            "gwx",
            "<doc><messages><message encoding=\"base64\">!!</message></messages></doc>",
        )
        .unwrap_err();
        assert!(e.msg.contains("base64"), "{e}");
        let e = parse_messages(
            "gwx",
            "<doc><error type=\"auth\"><msg>no login</msg></error></doc>",
        )
        .unwrap_err();
        assert_eq!(e.msg, "no login");
        assert!(parse_messages("gwx", "not xml").is_err());
    }
}
