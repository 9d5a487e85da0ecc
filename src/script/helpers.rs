//! Host helpers for provider scripts: XML and JSON (throwing and `_try` parsers),
//! numbers, regular expressions, URL/form encoding, base64 and Basic auth, hashes and
//! HMAC, AWS Signature Version 4, phone numbers, time, `fail`, and `secret` (a value to
//! redact). README.md's script guide documents each.
//!
//! A helper's failure is a script runtime error (catchable with try/catch); uncaught,
//! it ends the command as a `gateway` error with the helper's message. `fail` and a
//! broken regular expression are [`Abort`]s instead, which no catch intercepts.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use regex::{Regex, RegexBuilder};
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Position, FLOAT, INT};
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

/// An end of the command that the script's own `try`/`catch` cannot intercept.
///
/// It travels as rhai's `ErrorTerminated`, which `catch` passes on and script
/// functions do not wrap: a `fail` inside `try` still fails the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abort {
    /// `fail(text)`: the provider refused; the text is for the operator. Trying again
    /// later may succeed.
    Fail(String),
    /// `fail_permanent(text)`: the provider refused for good (an invalid number, a
    /// blocked recipient): the queue does not try the message again by itself.
    FailPermanent(String),
    /// A bug in the script that only shows when it runs (a bad regular expression),
    /// with where it struck: script functions pass an abort on without a position.
    Bug(String, Position),
}

pub fn abort(reason: Abort) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(
        Dynamic::from(reason),
        Position::NONE,
    ))
}

/// Registers every helper except HTTP (see `super::host_http`).
pub fn register(engine: &mut Engine) {
    engine.register_fn("fail", |msg: &str| -> HostResult<()> {
        Err(abort(Abort::Fail(msg.to_owned())))
    });
    engine.register_fn("fail_permanent", |msg: &str| -> HostResult<()> {
        Err(abort(Abort::FailPermanent(msg.to_owned())))
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
    engine.register_fn("xml_try", |text: &str| {
        xml_parse(text).map_or(Dynamic::UNIT, Dynamic::from_map)
    });
    engine.register_fn("xml_build", xml_build);
    engine.register_fn("xml_escape", |s: &str| crate::xml::escape_text(s));

    engine.register_fn("json_parse", json_parse);
    engine.register_fn("json_try", |text: &str| {
        json_parse(text).unwrap_or(Dynamic::UNIT)
    });
    engine.register_fn("json_build", json_build);
    engine.register_fn("int_try", int_try);
    engine.register_fn("float_try", float_try);

    engine.register_fn(
        "regex_match",
        |ctx: NativeCallContext, re: &str, text: &str| -> HostResult<bool> {
            with_regex(&ctx, re, |re| re.is_match(text))
        },
    );
    engine.register_fn("regex_captures", regex_captures);

    engine.register_fn("url_encode", |s: &str| crate::log::url_encode(s));
    engine.register_fn("form_encode", form_encode);
    engine.register_fn("base64_encode", |s: &str| {
        base64::engine::general_purpose::STANDARD.encode(s)
    });
    engine.register_fn("base64_decode", base64_decode);
    engine.register_fn("basic_auth", basic_auth);

    engine.register_fn("md5", |s: &str| hex(&md5::Md5::digest(s)));
    engine.register_fn("sha1", |s: &str| hex(&sha1::Sha1::digest(s)));
    engine.register_fn("sha256", |s: &str| hex(&sha2::Sha256::digest(s)));
    engine.register_fn("hmac_sha1", |key: &str, msg: &str| {
        hmac_hex::<Hmac<sha1::Sha1>>(key, msg)
    });
    engine.register_fn("hmac_sha256", |key: &str, msg: &str| {
        hmac_hex::<Hmac<sha2::Sha256>>(key, msg)
    });
    engine.register_fn("aws_sigv4", aws_sigv4);

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

/// A whole number from a text (surrounding spaces allowed) or a number that is one;
/// `()` for anything else.
fn int_try(value: Dynamic) -> Dynamic {
    if value.is_int() {
        return value;
    }
    value
        .into_string()
        .ok()
        .and_then(|text| text.trim().parse::<INT>().ok())
        .map_or(Dynamic::UNIT, Dynamic::from_int)
}

/// A finite number from a text or a number; `()` for anything else.
fn float_try(value: Dynamic) -> Dynamic {
    let number = if let Ok(i) = value.as_int() {
        Some(i as FLOAT)
    } else if let Ok(f) = value.as_float() {
        Some(f)
    } else {
        value
            .into_string()
            .ok()
            .and_then(|text| text.trim().parse::<FLOAT>().ok())
    };
    number
        .filter(|f| f.is_finite())
        .map_or(Dynamic::UNIT, Dynamic::from_float)
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

/// `key=value&...` in key order, each side url_encoded; `()` values are left out.
fn form_encode(map: Map) -> String {
    map.iter()
        .filter(|(_, v)| !v.is_unit())
        .map(|(k, v)| {
            format!(
                "{}={}",
                crate::log::url_encode(k),
                crate::log::url_encode(&v.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn base64_decode(s: &str) -> HostResult<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| host_error(format!("base64_decode: not base64 ({e})")))?;
    String::from_utf8(bytes).map_err(|_| host_error("base64_decode: the decoded data is not text"))
}

/// `Basic base64(user:password)`, the HTTP Basic Authorization value. The value and
/// its base64 part are registered secrets, whatever fields they came from.
fn basic_auth(user: &str, password: &str) -> HostResult<String> {
    if user.contains(':') {
        return Err(host_error(
            "basic_auth: the user name cannot contain ':' (RFC 7617)",
        ));
    }
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let value = format!("Basic {credentials}");
    crate::log::add_secret(&credentials);
    crate::log::add_secret(&value);
    Ok(value)
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

// ---- AWS Signature Version 4 ----

/// The signer of an AWS request: an access key pair and the credential scope.
#[derive(Debug, Clone, Copy)]
pub struct AwsCredentials<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The headers that sign a request with AWS Signature Version 4 at `amz_date`
/// (`20150830T123600Z`, UTC): `X-Amz-Date` and `Authorization`. The signature covers
/// the method, the URL's host, path and query, every header of the request and the
/// SHA-256 of the body.
pub fn aws_sigv4_headers(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &str,
    creds: &AwsCredentials<'_>,
    amz_date: &str,
) -> Result<Vec<(String, String)>, String> {
    let date = amz_date
        .get(..8)
        .filter(|_| amz_date.len() == 16 && amz_date.as_bytes()[8] == b'T')
        .ok_or_else(|| format!("'{amz_date}' is not an X-Amz-Date (YYYYMMDDTHHMMSSZ)"))?;
    for (what, value) in [
        ("access_key", creds.access_key),
        ("region", creds.region),
        ("service", creds.service),
    ] {
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'/' && b != b',')
        {
            return Err(format!(
                "{what} must be a non-empty word without spaces, '/' or ','"
            ));
        }
    }
    if creds.secret_key.is_empty() {
        return Err("secret_key is empty".to_owned());
    }
    let target = SignedUrl::parse(url)?;
    let mut canonical_headers: Vec<(String, String)> = vec![
        ("host".to_owned(), target.host),
        ("x-amz-date".to_owned(), amz_date.to_owned()),
    ];
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if matches!(name.as_str(), "host" | "x-amz-date" | "authorization") {
            return Err(format!(
                "the request already has a {name} header: the signature sets it"
            ));
        }
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match canonical_headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => canonical_headers.push((name, value)),
        }
    }
    canonical_headers.sort();
    let signed_headers = canonical_headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut canonical_request = format!(
        "{}\n{}\n{}\n",
        method.to_ascii_uppercase(),
        target.path,
        target.query
    );
    for (name, value) in &canonical_headers {
        canonical_request.push_str(&format!("{name}:{value}\n"));
    }
    canonical_request.push_str(&format!(
        "\n{signed_headers}\n{}",
        hex(&sha2::Sha256::digest(body))
    ));
    let scope = format!("{date}/{}/{}/aws4_request", creds.region, creds.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&sha2::Sha256::digest(&canonical_request))
    );
    let mut key = format!("AWS4{}", creds.secret_key).into_bytes();
    for part in [
        date,
        creds.region,
        creds.service,
        "aws4_request",
        &string_to_sign,
    ] {
        key = hmac_sha256_bytes(&key, part.as_bytes())?;
    }
    Ok(vec![
        ("X-Amz-Date".to_owned(), amz_date.to_owned()),
        (
            "Authorization".to_owned(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={}",
                creds.access_key,
                hex(&key)
            ),
        ),
    ])
}

fn hmac_sha256_bytes(key: &[u8], msg: &[u8]) -> Result<Vec<u8>, String> {
    let mut mac = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(key)
        .map_err(|e| format!("HMAC key: {e}"))?;
    mac.update(msg);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// The parts of a URL a signature covers, in their canonical forms.
struct SignedUrl {
    /// Lower-case host, with the port unless it is the scheme's default.
    host: String,
    /// Each segment percent-encoded (again, for one that already is: AWS's rule for
    /// every service but S3).
    path: String,
    /// Name-sorted `name=value` pairs, both sides percent-encoded.
    query: String,
}

impl SignedUrl {
    fn parse(url: &str) -> Result<Self, String> {
        let bad = || format!("'{url}' is not an http:// or https:// URL");
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "https" => ":443",
            "http" => ":80",
            _ => return Err(bad()),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let host = authority
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let host = host.strip_suffix(default_port).unwrap_or(&host).to_owned();
        if host.is_empty() {
            return Err(bad());
        }
        let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path.split('/')
                .map(crate::log::url_encode)
                .collect::<Vec<_>>()
                .join("/")
        };
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (
                    crate::log::url_encode(&percent_decode(name)),
                    crate::log::url_encode(&percent_decode(value)),
                )
            })
            .collect();
        pairs.sort();
        let query = pairs
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&");
        Ok(Self { host, path, query })
    }
}

/// `%XX` sequences decoded (anything else kept as it is).
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// `aws_sigv4(request, credentials)`: the request map with `X-Amz-Date` and
/// `Authorization` added to its headers, signed now for the URL as the command sends
/// it (after `api_url`), so the signature covers the host the request really reaches.
fn aws_sigv4(request: Map, credentials: Map) -> HostResult<Map> {
    let fail = |msg: String| host_error(format!("aws_sigv4: {msg}"));
    let text = |map: &Map, key: &str| -> HostResult<Option<String>> {
        match map.get(key).filter(|v| !v.is_unit()) {
            None => Ok(None),
            Some(v) => v
                .clone()
                .into_string()
                .map(Some)
                .map_err(|t| fail(format!("{key} must be a string, not {t}"))),
        }
    };
    const CREDENTIAL_KEYS: [&str; 4] = ["access_key", "secret_key", "region", "service"];
    if let Some(key) = credentials
        .keys()
        .find(|k| !CREDENTIAL_KEYS.contains(&k.as_str()))
    {
        return Err(fail(format!(
            "unknown credentials key '{key}' (known: {})",
            CREDENTIAL_KEYS.join(", ")
        )));
    }
    let mut values = Vec::with_capacity(CREDENTIAL_KEYS.len());
    for key in CREDENTIAL_KEYS {
        values.push(
            text(&credentials, key)?.ok_or_else(|| fail(format!("credentials have no {key}")))?,
        );
    }
    crate::log::add_secret(&values[1]);
    let creds = AwsCredentials {
        access_key: &values[0],
        secret_key: &values[1],
        region: &values[2],
        service: &values[3],
    };
    let url = text(&request, "url")?.ok_or_else(|| fail("the request has no url".to_owned()))?;
    let method = text(&request, "method")?.unwrap_or_else(|| "GET".to_owned());
    let body = text(&request, "body")?.unwrap_or_default();
    let mut headers = match request.get("headers").filter(|h| !h.is_unit()) {
        None => Map::new(),
        Some(h) => h
            .read_lock::<Map>()
            .map(|m| m.clone())
            .ok_or_else(|| fail("headers must be a map of name: value".to_owned()))?,
    };
    let header_list: Vec<(String, String)> = headers
        .iter()
        .filter(|(_, v)| !v.is_unit())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sent_url = super::host_http::effective_url(&url).map_err(|e| fail(e.to_string()))?;
    let amz_date = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(|e| fail(e.to_string()))?;
    let signed = aws_sigv4_headers(&method, &sent_url, &header_list, &body, &creds, &amz_date)
        .map_err(fail)?;
    for (name, value) in signed {
        headers.insert(name.into(), Dynamic::from(value));
    }
    let mut out = request;
    out.insert("headers".into(), Dynamic::from_map(headers));
    Ok(out)
}

// ---- regular expressions ----

/// Longest pattern accepted: provider ids and formats need a few dozen characters.
const MAX_REGEX_LEN: usize = 4096;
/// Compiled-size limits: a pattern that needs more is refused, not run.
const REGEX_SIZE_LIMIT: usize = 1024 * 1024;
const REGEX_DFA_SIZE_LIMIT: usize = 2 * 1024 * 1024;
/// Compiled patterns kept for one command; more are compiled on each use.
const MAX_CACHED_REGEXES: usize = 64;

thread_local! {
    /// Patterns compiled during the running command (see [`RegexCacheScope`]).
    static REGEXES: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// The compiled-regex cache lives for one command: it is emptied when the scope
/// starts and when it ends.
pub struct RegexCacheScope(());

pub fn regex_cache_scope() -> RegexCacheScope {
    REGEXES.with(|c| c.borrow_mut().clear());
    RegexCacheScope(())
}

impl Drop for RegexCacheScope {
    fn drop(&mut self) {
        REGEXES.with(|c| c.borrow_mut().clear());
    }
}

/// Runs `use_it` with `pattern` compiled (from the cache when it was compiled before
/// in this command). A pattern that does not compile is a bug in the script.
fn with_regex<T>(
    ctx: &NativeCallContext,
    pattern: &str,
    use_it: impl FnOnce(&Regex) -> T,
) -> HostResult<T> {
    // Cloning a Regex shares its compiled program.
    let cached = REGEXES.with(|c| c.borrow().get(pattern).cloned());
    let re = match cached {
        Some(re) => re,
        None => {
            let re = compile_regex(pattern).map_err(|why| {
                abort(Abort::Bug(
                    format!(
                        "{}: bad regular expression '{pattern}': {why}",
                        ctx.fn_name()
                    ),
                    ctx.call_position(),
                ))
            })?;
            REGEXES.with(|c| {
                let mut cache = c.borrow_mut();
                if cache.len() < MAX_CACHED_REGEXES {
                    cache.insert(pattern.to_owned(), re.clone());
                }
            });
            re
        }
    };
    Ok(use_it(&re))
}

/// Compiles a pattern within the limits; the error says why not.
fn compile_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_REGEX_LEN {
        return Err(format!("longer than {MAX_REGEX_LEN} bytes"));
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                format!("it compiles to more than the size limit of {limit} bytes")
            }
            // The parser's text shows the pattern, a caret and "error: why": the why.
            other => {
                let text = other.to_string();
                let why = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                why.trim().trim_start_matches("error: ").to_owned()
            }
        })
}

/// The first match's groups: `[whole match, group 1, ..]`, a group that took no part
/// as `()`; `()` when the text does not match.
fn regex_captures(ctx: NativeCallContext, pattern: &str, text: &str) -> HostResult<Dynamic> {
    with_regex(&ctx, pattern, |re| {
        re.captures(text).map_or(Dynamic::UNIT, |caps| {
            let groups: Array = caps
                .iter()
                .map(|g| g.map_or(Dynamic::UNIT, |m| Dynamic::from(m.as_str().to_owned())))
                .collect();
            Dynamic::from_array(groups)
        })
    })
}

// ---- phone numbers ----

/// A phone number as E.164 digits without `+` (see the guide for the rules).
fn phone_normalize(input: &str) -> Result<String, String> {
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

    const AWS_SUITE: AwsCredentials<'static> = AwsCredentials {
        access_key: "AKIDEXAMPLE",
        secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region: "us-east-1",
        service: "service",
    };
    const AWS_SUITE_DATE: &str = "20150830T123600Z";

    fn aws_authorization(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> String {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let signed =
            aws_sigv4_headers(method, url, &headers, body, &AWS_SUITE, AWS_SUITE_DATE).unwrap();
        assert_eq!(signed[0], ("X-Amz-Date".into(), AWS_SUITE_DATE.into()));
        assert_eq!(signed[1].0, "Authorization");
        signed[1].1.clone()
    }

    /// Cases of AWS's Signature Version 4 test suite (aws-sig-v4-test-suite): its
    /// example key pair, time and scope, and the signatures it publishes.
    #[test]
    fn aws_sigv4_matches_the_aws_test_suite() {
        let scope =
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
        // get-vanilla
        assert_eq!(
            aws_authorization("GET", "https://example.amazonaws.com/", &[], ""),
            format!("{scope}, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
        // get-vanilla-query-order-key-case: the query is sorted
        assert_eq!(
            aws_authorization(
                "GET",
                "https://example.amazonaws.com/?Param2=value2&Param1=value1",
                &[],
                ""
            ),
            format!("{scope}, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        );
        // post-x-www-form-urlencoded: a signed content type and body
        assert_eq!(
            aws_authorization(
                "POST",
                "https://example.amazonaws.com/",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                "Param1=value1"
            ),
            format!("{scope}, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a")
        );
        // The default port is not part of the host; the path's case is.
        assert_eq!(
            aws_authorization("GET", "https://EXAMPLE.amazonaws.com:443", &[], ""),
            aws_authorization("GET", "https://example.amazonaws.com/", &[], "")
        );
    }

    #[test]
    fn aws_sigv4_refuses_what_it_cannot_sign() {
        let sign = |url: &str, headers: &[(String, String)], creds: &AwsCredentials<'_>| {
            aws_sigv4_headers("GET", url, headers, "", creds, AWS_SUITE_DATE)
        };
        assert!(sign("ftp://example.com/", &[], &AWS_SUITE).is_err());
        assert!(sign("https:///path", &[], &AWS_SUITE).is_err());
        let own = [("Authorization".to_owned(), "Bearer x".to_owned())];
        assert!(sign("https://example.com/", &own, &AWS_SUITE)
            .unwrap_err()
            .contains("authorization"));
        let bad_region = AwsCredentials {
            region: "us-east-1/evil",
            ..AWS_SUITE
        };
        assert!(sign("https://example.com/", &[], &bad_region).is_err());
        assert!(aws_sigv4_headers(
            "GET",
            "https://example.com/",
            &[],
            "",
            &AWS_SUITE,
            "2015-08-30"
        )
        .is_err());
    }

    /// The script function signs now, and signs the host the command really sends to.
    #[test]
    fn aws_sigv4_signs_the_request_as_sent() {
        let script = r#"
            let req = aws_sigv4(
                #{method: "POST", url: "https://sns.us-east-1.amazonaws.com/",
                  headers: #{"Content-Type": "application/x-www-form-urlencoded"}, body: "Action=Publish"},
                #{access_key: "AKIDEXAMPLE", secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                  region: "us-east-1", service: "sns"});
            [req.url, req.method, req.body, req.headers["Content-Type"], req.headers["X-Amz-Date"], req.headers.Authorization]
        "#;
        let settings = crate::script::host_http::CallSettings {
            api_url: Some(crate::http::ApiUrl::parse("http://127.0.0.1:8080").unwrap()),
            ..Default::default()
        };
        let (result, _) =
            crate::script::host_http::with_settings(settings, || engine().eval::<Array>(script));
        let got: Vec<String> = result.unwrap().iter().map(|v| v.to_string()).collect();
        assert_eq!(
            got[..4],
            [
                "https://sns.us-east-1.amazonaws.com/",
                "POST",
                "Action=Publish",
                "application/x-www-form-urlencoded"
            ]
        );
        let creds = AwsCredentials {
            service: "sns",
            ..AWS_SUITE
        };
        let content_type = [(
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )];
        let expected = |url: &str| {
            aws_sigv4_headers(
                "POST",
                url,
                &content_type,
                "Action=Publish",
                &creds,
                &got[4],
            )
            .unwrap()[1]
                .1
                .clone()
        };
        assert_eq!(got[5], expected("http://127.0.0.1:8080/"));
        assert_ne!(got[5], expected("https://sns.us-east-1.amazonaws.com/"));

        for (bad, why) in [
            (
                r#"aws_sigv4(#{url: "https://a.b/"}, #{access_key: "A", secret_key: "S", region: "r"})"#,
                "no service",
            ),
            (
                r#"aws_sigv4(#{url: "https://a.b/"}, #{access_key: "A", secret_key: "S", region: "r", service: "s", token: "t"})"#,
                "unknown credentials key 'token'",
            ),
            (
                r#"aws_sigv4(#{}, #{access_key: "A", secret_key: "S", region: "r", service: "s"})"#,
                "no url",
            ),
        ] {
            let err = engine().eval::<Dynamic>(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
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
    fn try_parsers_return_unit_on_bad_input() {
        assert_eq!(
            eval_str(r#"let v = json_try("{\"a\": [1, 2]}"); v.a[1]"#),
            "2"
        );
        assert_eq!(
            eval_str(r#"xml_text(xml_try("<r><status>0</status></r>"), "status")"#),
            "0"
        );
        for bad in [
            r#"json_try("{")"#,
            r#"json_try("<html>")"#,
            r#"xml_try("not xml")"#,
            r#"xml_try("<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>")"#,
            r#"int_try("12a")"#,
            r#"int_try("1.5")"#,
            r#"int_try(())"#,
            r#"int_try("99999999999999999999")"#,
            r#"float_try("abc")"#,
            r#"float_try("inf")"#,
            r#"float_try("NaN")"#,
        ] {
            assert_eq!(eval_str(&format!("type_of({bad})")), "()", "{bad}");
        }
        // As deep as json_parse allows, and no deeper.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(eval_str(&format!("type_of(json_try(\"{deep}\"))")), "()");
        assert_eq!(eval_str(r#"int_try(" -42 ") + int_try(8)"#), "-34");
        assert_eq!(eval_str(r#"float_try("2.5") + float_try(1)"#), "3.5");
    }

    #[test]
    fn regexes_are_compiled_once_per_command() {
        let count = || REGEXES.with(|c| c.borrow().len());
        {
            let _scope = regex_cache_scope();
            assert_eq!(
                eval_str(
                    r#"regex_match("^a+$", "aaa") && !regex_match("^a+$", "b") && regex_match("b", "b")"#
                ),
                "true"
            );
            assert_eq!(count(), 2);
        }
        assert_eq!(count(), 0, "the cache ends with the command");
    }

    #[test]
    fn fail_is_an_abort_with_the_text() {
        let err = engine()
            .eval::<Dynamic>(r#"fail("provider said no")"#)
            .unwrap_err();
        match *err {
            EvalAltResult::ErrorTerminated(v, _) => assert_eq!(
                v.clone_cast::<Abort>(),
                Abort::Fail("provider said no".into())
            ),
            other => panic!("{other:?}"),
        }
    }
}
