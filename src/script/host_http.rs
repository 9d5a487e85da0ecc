//! `http(...)` for scripts: the only way out of the sandbox. Each command runs with a
//! [`CallSettings`] on its thread (api_url, timeouts, dry-run), so one engine serves
//! concurrent commands of different gateways' settings.

use std::cell::RefCell;
use std::sync::Arc;

use rhai::{Dynamic, Engine, Map};

use super::helpers::{host_error, HostResult};
use super::sandbox;
use crate::http::{ApiUrl, HttpClient, HttpError, HttpReply, HttpRequest, Timeouts};

/// Requests one command may make: a mapping needs one or two; a loop needs stopping.
pub const MAX_REQUESTS_PER_COMMAND: usize = 16;

/// How the requests of one command are made.
#[derive(Debug, Clone, Default)]
pub struct CallSettings {
    pub api_url: Option<ApiUrl>,
    pub timeouts: Timeouts,
    /// Record requests and answer them with a synthetic reply instead of sending.
    pub dry_run: bool,
}

struct CallState {
    settings: CallSettings,
    made: usize,
    recorded: Vec<HttpRequest>,
}

thread_local! {
    static CALL: RefCell<Option<CallState>> = const { RefCell::new(None) };
}

/// Runs `run` (one command) with `settings` for its HTTP requests; returns its result
/// and the requests recorded in dry-run.
pub fn with_settings<T>(settings: CallSettings, run: impl FnOnce() -> T) -> (T, Vec<HttpRequest>) {
    let previous = CALL.with(|c| {
        c.replace(Some(CallState {
            settings,
            made: 0,
            recorded: Vec::new(),
        }))
    });
    let result = run();
    let state = CALL.with(|c| c.replace(previous));
    (result, state.map(|s| s.recorded).unwrap_or_default())
}

/// `url` as the running command sends it: with its `api_url` applied (unchanged
/// outside a command). Signatures that cover the host must sign this one.
pub fn effective_url(url: &str) -> Result<String, HttpError> {
    let api_url = CALL.with(|c| {
        c.borrow()
            .as_ref()
            .and_then(|state| state.settings.api_url.clone())
    });
    match api_url {
        Some(api) => api.rewrite(url),
        None => Ok(url.to_owned()),
    }
}

/// Registers `http`, `http_get` and `http_post` (each short form also with a map of
/// extra headers), sending through `client`.
pub fn register(engine: &mut Engine, client: Arc<HttpClient>) {
    let c = client.clone();
    engine.register_fn("http", move |req: Map| -> HostResult<Map> {
        send(&c, request_from_map(req)?)
    });
    let c = client.clone();
    engine.register_fn("http_get", move |url: &str| -> HostResult<Map> {
        send(&c, request("GET", url, Vec::new(), ""))
    });
    let c = client.clone();
    engine.register_fn(
        "http_get",
        move |url: &str, headers: Map| -> HostResult<Map> {
            send(&c, request("GET", url, header_list(&headers), ""))
        },
    );
    let c = client.clone();
    engine.register_fn(
        "http_post",
        move |url: &str, content_type: &str, body: &str| -> HostResult<Map> {
            send(
                &c,
                request("POST", url, post_headers(content_type, None), body),
            )
        },
    );
    engine.register_fn(
        "http_post",
        move |url: &str, content_type: &str, body: &str, headers: Map| -> HostResult<Map> {
            let headers = post_headers(content_type, Some(&headers));
            send(&client, request("POST", url, headers, body))
        },
    );
}

/// `Content-Type`, then the script's headers (a `Content-Type` among them wins).
fn post_headers(content_type: &str, extra: Option<&Map>) -> Vec<(String, String)> {
    let extra = extra.map(header_list).unwrap_or_default();
    let mut headers = Vec::with_capacity(extra.len() + 1);
    if !extra
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".to_owned(), content_type.to_owned()));
    }
    headers.extend(extra);
    headers
}

/// A script's `#{name: value}` headers; `()` values are left out.
fn header_list(headers: &Map) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(_, value)| !value.is_unit())
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// Shortest credential-header value registered as a secret: shorter values of such
/// headers are flags (`X-Auth-Mode: on`), and redacting `on` everywhere would ruin
/// the log. The request's own description hides these headers by name anyway.
const MIN_HEADER_SECRET_LEN: usize = 8;

fn request(method: &str, url: &str, headers: Vec<(String, String)>, body: &str) -> HttpRequest {
    HttpRequest {
        method: method.to_owned(),
        url: url.to_owned(),
        headers,
        body: body.to_owned(),
    }
}

/// `#{method, url, headers, body}` → a request; unknown keys are typos.
fn request_from_map(map: Map) -> HostResult<HttpRequest> {
    if let Some(key) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "method" | "url" | "headers" | "body"))
    {
        return Err(host_error(format!(
            "http: unknown key '{key}' (known: method, url, headers, body)"
        )));
    }
    let text = |key: &str| -> HostResult<Option<String>> {
        match map.get(key) {
            None => Ok(None),
            Some(v) if v.is_unit() => Ok(None),
            Some(v) => v
                .clone()
                .into_string()
                .map(Some)
                .map_err(|t| host_error(format!("http: {key} must be a string, not {t}"))),
        }
    };
    let url = text("url")?.ok_or_else(|| host_error("http: the request has no url"))?;
    let method = text("method")?
        .unwrap_or_else(|| "GET".to_owned())
        .to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(host_error(format!(
            "http: '{method}' is not an HTTP method"
        )));
    }
    let body = text("body")?.unwrap_or_default();
    let mut headers = Vec::new();
    if let Some(h) = map.get("headers").filter(|h| !h.is_unit()) {
        let h = h
            .read_lock::<Map>()
            .ok_or_else(|| host_error("http: headers must be a map of name: value"))?;
        headers = header_list(&h);
    }
    Ok(HttpRequest {
        method,
        url,
        headers,
        body,
    })
}

/// Credentials a script puts into a header (`Authorization: Bearer <token>`, an
/// `X-Api-Key`) are secrets even when the script computed them (a token from a login
/// request): the whole value and the part after the scheme word are registered for
/// the command.
fn register_header_secrets(headers: &[(String, String)]) -> HostResult<()> {
    for (name, value) in headers {
        let credential_header =
            crate::log::is_secret_name(name) || name.eq_ignore_ascii_case("cookie");
        let value = value.trim();
        if !credential_header || value.chars().count() < MIN_HEADER_SECRET_LEN {
            continue;
        }
        let credentials = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.chars().all(|c| c.is_ascii_alphabetic()))
            .map(|(_, c)| c.trim())
            .filter(|c| c.chars().count() >= MIN_HEADER_SECRET_LEN);
        for secret in std::iter::once(value).chain(credentials) {
            if !crate::log::add_command_secret(secret) {
                return Err(host_error(format!(
                    "http: more than {} secrets in one command",
                    crate::log::MAX_COMMAND_SECRETS
                )));
            }
        }
    }
    Ok(())
}

fn send(client: &HttpClient, mut req: HttpRequest) -> HostResult<Map> {
    register_header_secrets(&req.headers)?;
    if !(req.url.starts_with("http://") || req.url.starts_with("https://")) {
        return Err(host_error(format!(
            "http: '{}' is not an http:// or https:// URL",
            req.url
        )));
    }
    let settings = CALL.with(|c| -> HostResult<CallSettings> {
        let mut call = c.borrow_mut();
        let state = call
            .as_mut()
            .ok_or_else(|| host_error("http: requests are only allowed inside a command"))?;
        state.made += 1;
        if state.made > MAX_REQUESTS_PER_COMMAND {
            return Err(host_error(format!(
                "http: more than {MAX_REQUESTS_PER_COMMAND} requests in one command"
            )));
        }
        Ok(state.settings.clone())
    })?;
    if let Some(api) = &settings.api_url {
        req.url = api
            .rewrite(&req.url)
            .map_err(|e| host_error(format!("http: {e}")))?;
    }
    if settings.dry_run {
        crate::debug!("http dry run, not sent:\n{}", req.describe());
        CALL.with(|c| {
            if let Some(state) = c.borrow_mut().as_mut() {
                state.recorded.push(req);
            }
        });
        return Ok(reply_map(
            HttpReply {
                status: 200,
                headers: Vec::new(),
                body: String::new(),
            },
            true,
        ));
    }
    let reply = sandbox::off_the_clock(|| client.send(&req, settings.timeouts))
        .map_err(|e| host_error(e.to_string()))?;
    Ok(reply_map(reply, false))
}

/// `#{status, headers, body, dry_run}` as the script sees a reply.
fn reply_map(reply: HttpReply, dry_run: bool) -> Map {
    let mut headers = Map::new();
    for (name, value) in reply.headers {
        headers.insert(name.into(), Dynamic::from(value));
    }
    let mut map = Map::new();
    map.insert("status".into(), Dynamic::from_int(i64::from(reply.status)));
    map.insert("headers".into(), Dynamic::from_map(headers));
    map.insert("body".into(), Dynamic::from(reply.body));
    map.insert("dry_run".into(), Dynamic::from_bool(dry_run));
    map
}
