//! Host helpers for provider scripts: XML and JSON, URL/form encoding, base64, hashes
//! and HMAC, phone numbers, time, `fail`, and `secret` (a value to redact). The
//! README's "Writing a provider script" documents each.
//!
//! A helper's failure is a script runtime error (catchable with try/catch); uncaught,
//! it ends the command as a `gateway` error with the helper's message.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, Position, INT};
use sha1::Digest;

use super::sandbox;

/// Nesting accepted by xml_build, xml_parse and json_build: trees deeper than this
/// are not provider documents, and deeper recursion would risk the host's stack.
const MAX_TREE_DEPTH: usize = 128;

pub type HostResult<T> = Result<T, Box<EvalAltResult>>;

/// A helper's failure, as a script runtime error.
pub fn host_error(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        Position::NONE,
    ))
}

/// Registers every helper except HTTP (see `super::host_http`).
pub fn register(engine: &mut Engine) {
    engine.register_fn("fail", |msg: &str| -> HostResult<()> {
        Err(host_error(msg))
    });
    engine.register_fn("secret", |value: &str| -> HostResult<String> {
        if crate::log::add_command_secret(value) {
            Ok(value.to_owned())
        } else {
            Err(host_error(format!(
                "secret: more than {} secrets in one command",
                crate::log::MAX_COMMAND_SECRETS
            )))
        }
    });

    engine.register_fn("xml_parse", xml_parse);
    engine.register_fn("xml_find", xml_find);
    engine.register_fn("xml_text", xml_text);
    engine.register_fn("xml_text", |node: Map| xml_text(node, ""));
    engine.register_fn("xml_element", |name: &str, attrs: Map, children: Array| {
        xml_element(name, attrs, children)
    });
    engine.register_fn("xml_element", |name: &str, text: &str| {
        xml_element(name, Map::new(), vec![Dynamic::from(text.to_owned())])
    });
    engine.register_fn("xml_element", |name: &str, children: Array| {
        xml_element(name, Map::new(), children)
    });
    engine.register_fn("xml_build", xml_build);
    engine.register_fn("xml_escape", |s: &str| crate::xml::escape_text(s));

    engine.register_fn("json_parse", json_parse);
    engine.register_fn("json_build", json_build);

    engine.register_fn("url_encode", |s: &str| url_encode(s));
    engine.register_fn("form_encode", form_encode);
    engine.register_fn("base64_encode", |s: &str| {
        base64::engine::general_purpose::STANDARD.encode(s)
    });
    engine.register_fn("base64_decode", base64_decode);

    engine.register_fn("md5", |s: &str| hex(&md5::Md5::digest(s)));
    engine.register_fn("sha1", |s: &str| hex(&sha1::Sha1::digest(s)));
    engine.register_fn("sha256", |s: &str| hex(&sha2::Sha256::digest(s)));
    engine.register_fn("hmac_sha1", |key: &str, msg: &str| {
        hmac_hex::<Hmac<sha1::Sha1>>(key, msg)
    });
    engine.register_fn("hmac_sha256", |key: &str, msg: &str| {
        hmac_hex::<Hmac<sha2::Sha256>>(key, msg)
    });

    engine.register_fn("phone_normalize", |s: &str| -> HostResult<String> {
        phone_normalize(s).map_err(host_error)
    });

    engine.register_fn("now_unix", || -> INT {
        time::OffsetDateTime::now_utc().unix_timestamp()
    });
    engine.register_fn("now_iso", now_iso);
    engine.register_fn("time_format", |unix: INT, format: &str| {
        time_format(unix, format, 0)
    });
    engine.register_fn("time_format", time_format);
}

// ---- XML ----

/// Parses XML into the node tree: `#{name, attrs, text, children}` (see the guide).
fn xml_parse(text: &str) -> HostResult<Map> {
    let doc = crate::xml::parse(text).map_err(|e| {
        host_error(format!(
            "xml_parse: not an XML document ({e}): {}",
            crate::gateway::excerpt(text)
        ))
    })?;
    // Each element becomes a map of four entries, each attribute one more: a tree
    // beyond the map limit is refused before it is built, not after.
    let entries: usize = doc
        .descendants()
        .filter(|n| n.is_element())
        .map(|n| 4 + n.attributes().len())
        .sum();
    if entries > sandbox::MAX_MAP_SIZE {
        return Err(host_error(format!(
            "xml_parse: the document has more elements and attributes than a script may hold \
             ({} map entries at most)",
            sandbox::MAX_MAP_SIZE
        )));
    }
    node_to_map(doc.root_element(), 0)
}

fn node_to_map(node: roxmltree::Node<'_, '_>, depth: usize) -> HostResult<Map> {
    if depth > MAX_TREE_DEPTH {
        return Err(host_error(format!(
            "xml_parse: elements nested deeper than {MAX_TREE_DEPTH} levels"
        )));
    }
    sandbox::check_budget()?;
    let mut attrs = Map::new();
    for a in node.attributes() {
        attrs.insert(a.name().into(), Dynamic::from(a.value().to_owned()));
    }
    let mut children = Array::new();
    for child in node.children().filter(|c| c.is_element()) {
        children.push(Dynamic::from_map(node_to_map(child, depth + 1)?));
    }
    let mut map = Map::new();
    map.insert(
        "name".into(),
        Dynamic::from(node.tag_name().name().to_owned()),
    );
    map.insert("attrs".into(), Dynamic::from_map(attrs));
    map.insert("text".into(), Dynamic::from(crate::xml::text_of(node)));
    map.insert("children".into(), Dynamic::from_array(children));
    Ok(map)
}

/// The first descendant along `path` (child names separated by `/`), or `()`.
fn xml_find(node: Map, path: &str) -> Dynamic {
    let mut current = node;
    for step in path.split('/').filter(|s| !s.is_empty()) {
        let next = current
            .get("children")
            .and_then(|c| c.read_lock::<Array>().map(|a| a.clone()))
            .and_then(|children| {
                children.into_iter().find_map(|c| {
                    let child = c.try_cast::<Map>()?;
                    let matches = child
                        .get("name")
                        .is_some_and(|n| n.clone().into_string().ok().as_deref() == Some(step));
                    matches.then_some(child)
                })
            });
        match next {
            Some(child) => current = child,
            None => return Dynamic::UNIT,
        }
    }
    Dynamic::from_map(current)
}

/// The text of the element at `path` below `node`, trimmed, or "" when there is none.
/// (Trimmed here because rhai's `trim()` works in place and returns nothing.)
fn xml_text(node: Map, path: &str) -> String {
    xml_find(node, path)
        .try_cast::<Map>()
        .and_then(|m| m.get("text").cloned())
        .and_then(|t| t.into_string().ok())
        .map(|t| t.trim().to_owned())
        .unwrap_or_default()
}

/// A node for xml_build: children are nodes or strings (text).
fn xml_element(name: &str, attrs: Map, children: Array) -> Map {
    let mut map = Map::new();
    map.insert("name".into(), Dynamic::from(name.to_owned()));
    map.insert("attrs".into(), Dynamic::from_map(attrs));
    map.insert("children".into(), Dynamic::from_array(children));
    map
}

/// Serialises a node tree (from xml_element or xml_parse) without an XML declaration.
fn xml_build(node: Map) -> HostResult<String> {
    let mut w = crate::xml::Writer::new();
    write_node(&mut w, &node, 0)?;
    Ok(w.finish())
}

fn write_node(w: &mut crate::xml::Writer, node: &Map, depth: usize) -> HostResult<()> {
    if depth > MAX_TREE_DEPTH {
        return Err(host_error(format!(
            "xml_build: elements nested deeper than {MAX_TREE_DEPTH} levels"
        )));
    }
    let name = node
        .get("name")
        .and_then(|n| n.clone().into_string().ok())
        .ok_or_else(|| host_error("xml_build: a node has no name (expected #{name: .., ..})"))?;
    if !crate::xml::is_xml_name(&name) {
        return Err(host_error(format!(
            "xml_build: '{name}' is not an XML element name"
        )));
    }
    w.start(&name);
    if let Some(attrs) = node.get("attrs").filter(|a| !a.is_unit()) {
        let attrs = attrs
            .read_lock::<Map>()
            .ok_or_else(|| host_error(format!("xml_build: attrs of <{name}> must be a map")))?;
        for (key, value) in attrs.iter() {
            if !crate::xml::is_xml_name(key) {
                return Err(host_error(format!(
                    "xml_build: '{key}' is not an XML attribute name"
                )));
            }
            w.attr(key.as_str(), &value.to_string());
        }
    }
    if let Some(text) = node.get("text").filter(|t| !t.is_unit()) {
        w.text(&text.to_string());
    }
    if let Some(children) = node.get("children").filter(|c| !c.is_unit()) {
        let children = children.read_lock::<Array>().ok_or_else(|| {
            host_error(format!("xml_build: children of <{name}> must be an array"))
        })?;
        for child in children.iter() {
            if let Some(map) = child.read_lock::<Map>() {
                write_node(w, &map, depth + 1)?;
            } else if !child.is_unit() {
                w.text(&child.to_string());
            }
        }
    }
    w.end();
    Ok(())
}

// ---- JSON ----

fn json_parse(text: &str) -> HostResult<Dynamic> {
    // serde builds the whole value before rhai can measure it: count first.
    let limit = sandbox::MAX_ARRAY_SIZE + sandbox::MAX_MAP_SIZE;
    if json_value_count(text) > limit {
        return Err(host_error(format!(
            "json_parse: the document has more than {limit} values, more than a script may hold"
        )));
    }
    serde_json::from_str::<Dynamic>(text).map_err(|e| {
        host_error(format!(
            "json_parse: not JSON ({e}): {}",
            crate::gateway::excerpt(text)
        ))
    })
}

/// How many values a JSON text holds, counting an empty array or object twice: one,
/// plus one for each `,` `[` `{` outside strings.
fn json_value_count(text: &str) -> usize {
    let mut count = 1;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' | b'[' | b'{' => count += 1,
                _ => {}
            }
        }
    }
    count
}

fn json_build(value: Dynamic) -> HostResult<String> {
    if nesting_exceeds(&value, MAX_TREE_DEPTH) {
        return Err(host_error(format!(
            "json_build: values nested deeper than {MAX_TREE_DEPTH} levels"
        )));
    }
    serde_json::to_string(&value).map_err(|e| host_error(format!("json_build: {e}")))
}

fn nesting_exceeds(value: &Dynamic, budget: usize) -> bool {
    if let Some(array) = value.read_lock::<Array>() {
        return budget == 0 || array.iter().any(|v| nesting_exceeds(v, budget - 1));
    }
    if let Some(map) = value.read_lock::<Map>() {
        return budget == 0 || map.values().any(|v| nesting_exceeds(v, budget - 1));
    }
    false
}

// ---- encodings and hashes ----

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `key=value&...` in key order, each side url_encoded; `()` values are left out.
fn form_encode(map: Map) -> String {
    map.iter()
        .filter(|(_, v)| !v.is_unit())
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(&v.to_string())))
        .collect::<Vec<_>>()
        .join("&")
}

fn base64_decode(s: &str) -> HostResult<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| host_error(format!("base64_decode: not base64 ({e})")))?;
    String::from_utf8(bytes).map_err(|_| host_error("base64_decode: the decoded data is not text"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(key: &str, msg: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    match <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(msg.as_bytes());
            hex(&mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

// ---- phone numbers ----

/// A phone number as E.164 digits without `+` (see the guide for the rules).
pub fn phone_normalize(input: &str) -> Result<String, String> {
    let text = input.trim();
    let bad = |why: &str| {
        format!(
            "phone_normalize: '{}' is not a phone number ({why})",
            crate::gateway::excerpt(input)
        )
    };
    let (international, rest) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' | '.' | '/' | '\u{a0}' => {}
            _ => {
                return Err(bad(
                    "only digits, spaces, - ( ) . / and a leading + are allowed",
                ))
            }
        }
    }
    let normalized = if international {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if digits.len() > 11 && digits.starts_with("810") {
        digits[3..].to_owned()
    } else if digits.len() == 11 && digits.starts_with('8') {
        format!("7{}", &digits[1..])
    } else if digits.len() == 10 && digits.starts_with('9') {
        format!("7{digits}")
    } else {
        digits
    };
    if normalized.starts_with('0') {
        return Err(bad("a country code does not start with 0"));
    }
    if !(7..=15).contains(&normalized.len()) {
        return Err(bad("E.164 numbers have 7 to 15 digits"));
    }
    Ok(normalized)
}

// ---- time ----

fn now_iso() -> String {
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0);
    now.ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Formats a Unix time with a `time` format description (`[year]-[month]-[day]`) at
/// a UTC offset in minutes.
fn time_format(unix: INT, format: &str, offset_minutes: INT) -> HostResult<String> {
    let at = time::OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|e| host_error(format!("time_format: {unix} is not a Unix time ({e})")))?;
    let offset = i32::try_from(offset_minutes.saturating_mul(60))
        .ok()
        .and_then(|secs| time::UtcOffset::from_whole_seconds(secs).ok())
        .ok_or_else(|| {
            host_error(format!(
                "time_format: {offset_minutes} minutes is not a UTC offset"
            ))
        })?;
    let description = time::format_description::parse_borrowed::<2>(format)
        .map_err(|e| host_error(format!("time_format: bad format '{format}' ({e})")))?;
    at.to_offset(offset)
        .format(&description)
        .map_err(|e| host_error(format!("time_format: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut e = crate::script::sandbox::full_engine();
        register(&mut e);
        e
    }

    fn eval_str(script: &str) -> String {
        engine()
            .eval::<Dynamic>(script)
            .unwrap_or_else(|e| panic!("{script}: {e}"))
            .to_string()
    }

    #[test]
    fn phone_rules() {
        let ok = [
            ("+7 (999) 000-00-00", "79990000000"),
            ("8 999 000 00 00", "79990000000"),
            ("8(999)000-00-00", "79990000000"),
            ("9990000000", "79990000000"),
            ("79990000000", "79990000000"),
            ("+44 20 7946 0958", "442079460958"),
            ("0044 20 7946 0958", "442079460958"),
            ("8 10 44 20 7946 0958", "442079460958"),
            ("+1-202-555-0143", "12025550143"),
            ("+8 800 555 35 35", "88005553535"),
        ];
        for (input, expected) in ok {
            assert_eq!(phone_normalize(input).as_deref(), Ok(expected), "{input}");
        }
        for bad in [
            "",
            "+",
            "12345",
            "call me",
            "+7 999 abc",
            "0123456789",
            "+1234567890123456",
        ] {
            assert!(phone_normalize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hmac_vectors() {
        // RFC 4231 test case 2 and RFC 2202 test case 2.
        assert_eq!(
            hmac_hex::<Hmac<sha2::Sha256>>("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac_hex::<Hmac<sha1::Sha1>>("Jefe", "what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            eval_str(r#"hmac_sha256("key", "The quick brown fox jumps over the lazy dog")"#),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn hashes_and_encodings() {
        assert_eq!(eval_str(r#"md5("")"#), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            eval_str(r#"sha1("abc")"#),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            eval_str(r#"sha256("abc")"#),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(eval_str(r#"base64_encode("Привет")"#), "0J/RgNC40LLQtdGC");
        assert_eq!(eval_str(r#"base64_decode("0J/RgNC40LLQtdGC")"#), "Привет");
        assert_eq!(eval_str(r#"url_encode("a b&c=д")"#), "a%20b%26c%3D%D0%B4");
        assert_eq!(
            eval_str(r#"form_encode(#{to: "+7 999", text: "a&b", skip: ()})"#),
            "text=a%26b&to=%2B7%20999"
        );
        assert!(engine().eval::<Dynamic>(r#"base64_decode("%%%")"#).is_err());
    }

    #[test]
    fn xml_round_trip() {
        let built = eval_str(
            r#"xml_build(xml_element("SMS", #{v: 1}, [
                   xml_element("text", "a < b & c"),
                   xml_element("numbers", [xml_element("number", "7999")]),
               ]))"#,
        );
        assert_eq!(
            built,
            r#"<SMS v="1"><text>a &lt; b &amp; c</text><numbers><number>7999</number></numbers></SMS>"#
        );
        let text = eval_str(
            r#"let doc = xml_parse("<RESPONSE><status> 0 </status><a x='1'><b>deep</b></a></RESPONSE>");
                xml_text(doc, "status") + "|" + doc.children[0].text + "|" + xml_text(doc, "a/b") + "|" +
               xml_find(doc, "a").attrs.x + "|" + xml_text(doc, "missing") + "|" +
               type_of(xml_find(doc, "nope")) + "|" + doc.name"#,
        );
        assert_eq!(text, "0| 0 |deep|1||()|RESPONSE");
        let err = engine()
            .eval::<Dynamic>(r#"xml_parse("not xml")"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("xml_parse: not an XML document"), "{err}");
        let err = engine()
            .eval::<Dynamic>(r#"xml_build(xml_element("bad name", "x"))"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an XML element name"), "{err}");
    }

    #[test]
    fn json_round_trip() {
        assert_eq!(
            eval_str(
                r#"let v = json_parse("{\"a\": [1, 2.5, \"x\"], \"b\": null}"); json_build(v)"#
            ),
            r#"{"a":[1,2.5,"x"],"b":null}"#
        );
        assert!(engine().eval::<Dynamic>(r#"json_parse("{")"#).is_err());
        let deep =
            engine().eval::<Dynamic>(r#"let v = []; for i in 0..200 { v = [v]; } json_build(v)"#);
        assert!(deep.unwrap_err().to_string().contains("nested deeper"));
    }

    #[test]
    fn time_helpers() {
        assert_eq!(
            eval_str(r#"time_format(0, "[year]-[month]-[day] [hour]:[minute]")"#),
            "1970-01-01 00:00"
        );
        assert_eq!(
            eval_str(r#"time_format(0, "[hour]:[minute]", 180)"#),
            "03:00"
        );
        let now = eval_str("now_iso()");
        assert!(now.ends_with('Z') && now.len() == 20, "{now}");
        assert!(engine().eval::<INT>("now_unix()").unwrap() > 1_700_000_000);
        assert!(engine()
            .eval::<Dynamic>(r#"time_format(0, "[bogus]")"#)
            .is_err());
    }

    #[test]
    fn fail_is_a_runtime_error_with_the_text() {
        let err = engine()
            .eval::<Dynamic>(r#"fail("provider said no")"#)
            .unwrap_err();
        match *err {
            EvalAltResult::ErrorRuntime(v, _) => assert_eq!(v.to_string(), "provider said no"),
            other => panic!("{other:?}"),
        }
    }
}
