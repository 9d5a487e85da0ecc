//! HTTP for provider scripts: one keep-alive agent a gateway, timeouts, a reply size
//! cap, `api_url` rewriting, and request/reply descriptions with secrets redacted.
//!
//! HTTP error statuses are replies like any other (the script decides what a 500
//! means); only transport failures (refused, timeout, TLS, too large) are errors.

use std::fmt;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use ureq::Agent;

mod resolver;

/// Whole-request timeout when the gateway has no `timeout` parameter.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Connection setup (DNS, TCP, TLS) never waits longer than this, nor than the timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `timeout` an operator may set, in seconds.
pub const MAX_TIMEOUT_SECS: f64 = 300.0;
/// Largest reply body read; providers answer a few hundred bytes.
pub const MAX_REPLY_BYTES: u64 = 2 * 1024 * 1024;
/// How much of a body the debug log shows.
const LOG_BODY_CHARS: usize = 4000;
/// Idle keep-alive connections the agent keeps, per host and in all: one for each
/// queue worker (`QueueWorkers` is at most 256) that calls the same provider at once.
/// With fewer, the workers beyond them connect anew for every message (a TCP
/// handshake, a resolver thread and fresh buffers each).
const MAX_IDLE_CONNECTIONS: usize = 256;

/// One request as a script asks for it (and as dry-run records it, after `api_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpRequest {
    /// The request with every registered secret redacted from its URL, header values
    /// and body, for keeping after the command whose secrets they are.
    pub fn redacted(&self) -> Self {
        Self {
            method: self.method.clone(),
            url: crate::log::redact(&self.url),
            headers: self
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), crate::log::redact(value)))
                .collect(),
            body: crate::log::redact(&self.body),
        }
    }

    /// The request as text (method, URL, headers, body) with Authorization-like
    /// headers and every registered secret redacted: for logs and `--dry-run`.
    pub fn describe(&self) -> String {
        let mut text = format!("{} {}\n", self.method, self.url);
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {}\n", redact_header(name, value)));
        }
        if !self.body.is_empty() {
            text.push('\n');
            text.push_str(&self.body);
            text.push('\n');
        }
        crate::log::redact(&text)
    }
}

/// A provider's answer, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    /// Header names lower-cased; a repeated header's values joined with ", ".
    pub headers: Vec<(String, String)>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
}

/// A request that could not be made or answered, or a setting it cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub kind: HttpErrorKind,
    msg: String,
}

/// What kind of HTTP failure an [`HttpError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// A gateway parameter (`timeout`, `api_url`) or a URL that cannot be used.
    Setting,
    /// The request cannot be built (a bad header name or value).
    Request,
    /// The provider cannot be reached: refused, host not found, no connection in time.
    Connect,
    /// The provider did not answer in time.
    Timeout,
    /// The reply broke off, was too large, or the connection failed otherwise.
    Reply,
}

impl HttpError {
    fn new(kind: HttpErrorKind, msg: String) -> Self {
        Self { kind, msg }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for HttpError {}

/// Time limits of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    pub total: Duration,
    pub connect: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::from_total(DEFAULT_TIMEOUT)
    }
}

impl Timeouts {
    pub fn from_total(total: Duration) -> Self {
        Self {
            total,
            connect: total.min(CONNECT_TIMEOUT),
        }
    }

    /// The gateway parameter `timeout`: seconds, fractions allowed, up to 300.
    pub fn from_param(value: Option<&str>) -> Result<Self, HttpError> {
        let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Self::default());
        };
        match text.parse::<f64>() {
            Ok(secs) if secs > 0.0 && secs <= MAX_TIMEOUT_SECS => {
                Ok(Self::from_total(Duration::from_secs_f64(secs)))
            }
            _ => Err(HttpError::new(
                HttpErrorKind::Setting,
                format!(
                    "timeout must be a number of seconds between 0 and {MAX_TIMEOUT_SECS}, \
                     not '{text}'"
                ),
            )),
        }
    }
}

/// The gateway parameter `api_url`: the scheme, host and port every request of the
/// script goes to instead of its own; path and query stay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUrl {
    scheme: String,
    authority: String,
}

impl ApiUrl {
    /// Accepts `scheme://host[:port]` with an optional trailing `/`.
    pub fn parse(text: &str) -> Result<Self, HttpError> {
        let text = text.trim();
        let bad = || {
            HttpError::new(
                HttpErrorKind::Setting,
                format!(
                    "api_url must look like https://host[:port] (no path or query), not '{text}'"
                ),
            )
        };
        let (scheme, rest) = split_scheme(text).ok_or_else(bad)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
            return Err(bad());
        }
        Ok(Self {
            scheme: scheme.to_ascii_lowercase(),
            authority: rest.to_owned(),
        })
    }

    /// `url` with its scheme, host and port replaced.
    pub fn rewrite(&self, url: &str) -> Result<String, HttpError> {
        let (_, rest) = split_scheme(url).ok_or_else(|| {
            HttpError::new(
                HttpErrorKind::Setting,
                format!("'{url}' is not an http:// or https:// URL"),
            )
        })?;
        let path_start = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        Ok(format!(
            "{}://{}{}",
            self.scheme,
            self.authority,
            &rest[path_start..]
        ))
    }
}

/// Splits `http(s)://rest` into the scheme and the rest.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        Some((scheme, rest))
    } else {
        None
    }
}

/// Header values that carry credentials are never shown.
fn redact_header<'a>(name: &str, value: &'a str) -> &'a str {
    if crate::log::is_secret_name(name) || name.eq_ignore_ascii_case("cookie") {
        crate::log::REDACTED
    } else {
        value
    }
}

/// One keep-alive connection pool, shared by every call of one gateway (and every
/// thread that sends through it).
pub struct HttpClient {
    agent: Agent,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    pub fn new() -> Self {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            // Redirects are not followed: `api_url` must cover every request, and a
            // redirected POST is rarely what a provider means. The script sees the 3xx.
            .max_redirects(0)
            .user_agent(concat!("mgrnotify/", env!("CARGO_PKG_VERSION")))
            .timeout_global(Some(DEFAULT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .max_idle_connections(MAX_IDLE_CONNECTIONS)
            .max_idle_connections_per_host(MAX_IDLE_CONNECTIONS)
            .build();
        Self {
            agent: Agent::with_parts(
                config,
                ureq::unversioned::transport::DefaultConnector::default(),
                resolver::CachingResolver::default(),
            ),
        }
    }

    /// Sends one request and reads the whole reply (up to [`MAX_REPLY_BYTES`]).
    pub fn send(&self, req: &HttpRequest, timeouts: Timeouts) -> Result<HttpReply, HttpError> {
        let started = Instant::now();
        if crate::log::enabled(crate::log::DEBUG) {
            crate::debug!("http request:\n{}", excerpt(&req.describe()));
        }
        let fail = |(kind, what): (HttpErrorKind, String)| {
            HttpError::new(kind, format!("{} {}: {what}", req.method, req.url))
        };
        let bad_request =
            |e: ureq::http::Error| (HttpErrorKind::Request, format!("bad request: {e}"));
        let mut builder = ureq::http::Request::builder()
            .method(req.method.as_str())
            .uri(req.url.as_str());
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let result = if req.body.is_empty() && matches!(req.method.as_str(), "GET" | "HEAD") {
            let request = builder.body(()).map_err(|e| fail(bad_request(e)))?;
            self.run(request, timeouts)
        } else {
            let request = builder
                .body(req.body.as_bytes().to_vec())
                .map_err(|e| fail(bad_request(e)))?;
            self.run(request, timeouts)
        };
        let mut response = result.map_err(|e| fail(describe_error(&e, timeouts)))?;
        let status = response.status().as_u16();
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.iter_mut().find(|(k, _)| k == name.as_str()) {
                Some(entry) => {
                    entry.1.push_str(", ");
                    entry.1.push_str(&value);
                }
                None => headers.push((name.as_str().to_owned(), value)),
            }
        }
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| fail(describe_error(&e, timeouts)))?;
        let body = String::from_utf8_lossy(&bytes).into_owned();
        crate::debug!(
            "http reply {status} in {} ms:\n{}",
            started.elapsed().as_millis(),
            excerpt(&body)
        );
        Ok(HttpReply {
            status,
            headers,
            body,
        })
    }

    fn run(
        &self,
        request: ureq::http::Request<impl ureq::AsSendBody>,
        timeouts: Timeouts,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(timeouts.total))
            .timeout_connect(Some(timeouts.connect))
            .build();
        self.agent.run(request)
    }
}

/// The kind of a transport failure and an operator-readable reason.
fn describe_error(e: &ureq::Error, timeouts: Timeouts) -> (HttpErrorKind, String) {
    use HttpErrorKind::*;
    match e {
        ureq::Error::Timeout(ureq::Timeout::Connect) => (
            Connect,
            format!(
                "could not connect within {} s",
                timeouts.connect.as_secs_f64()
            ),
        ),
        ureq::Error::Timeout(_) => (
            Timeout,
            format!(
                "no complete reply within {} s (timeout)",
                timeouts.total.as_secs_f64()
            ),
        ),
        ureq::Error::Io(io) if io.kind() == ErrorKind::ConnectionRefused => {
            (Connect, "connection refused".to_owned())
        }
        ureq::Error::Io(io) if io.kind() == ErrorKind::TimedOut => {
            (Timeout, "timed out".to_owned())
        }
        ureq::Error::HostNotFound => (Connect, "host not found".to_owned()),
        ureq::Error::BodyExceedsLimit(limit) => {
            (Reply, format!("the reply is larger than {limit} bytes"))
        }
        other => (Reply, other.to_string()),
    }
}

/// The first [`LOG_BODY_CHARS`] characters, for the log (redacted).
fn excerpt(text: &str) -> String {
    crate::log::excerpt(text, LOG_BODY_CHARS, "…(truncated)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A setting that cannot work and a provider that cannot be reached are different
    /// kinds; the sentence names the request.
    #[test]
    fn error_kinds() {
        let e = Timeouts::from_param(Some("forever")).unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::Setting);
        assert_eq!(ApiUrl::parse("x").unwrap_err().kind, HttpErrorKind::Setting);
        // Port 1 on loopback: nothing listens there.
        let req = HttpRequest {
            method: "GET".into(),
            url: "http://127.0.0.1:1/x".into(),
            headers: Vec::new(),
            body: String::new(),
        };
        let e = HttpClient::new()
            .send(&req, Timeouts::from_total(Duration::from_secs(5)))
            .unwrap_err();
        assert_eq!(e.kind, HttpErrorKind::Connect, "{e}");
        assert!(
            e.to_string().starts_with("GET http://127.0.0.1:1/x: "),
            "{e}"
        );
    }

    #[test]
    fn api_url_replaces_scheme_host_and_port_only() {
        let api = ApiUrl::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            api.rewrite("https://api.example.com/members/sms/xml.php?a=1&b=2")
                .unwrap(),
            "http://127.0.0.1:8080/members/sms/xml.php?a=1&b=2"
        );
        assert_eq!(
            api.rewrite("http://user@host:99?x=1").unwrap(),
            "http://127.0.0.1:8080?x=1"
        );
        assert_eq!(
            api.rewrite("https://host").unwrap(),
            "http://127.0.0.1:8080"
        );
        let https = ApiUrl::parse("HTTPS://proxy.local").unwrap();
        assert_eq!(
            https.rewrite("http://a.b:81/p#f").unwrap(),
            "https://proxy.local/p#f"
        );
        assert!(api.rewrite("ftp://host/x").is_err());
    }

    #[test]
    fn api_url_must_be_an_origin() {
        for bad in [
            "",
            "127.0.0.1:80",
            "ftp://host",
            "http://",
            "http://host/path",
            "http://host?q",
        ] {
            assert!(ApiUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timeout_param() {
        assert_eq!(Timeouts::from_param(None).unwrap(), Timeouts::default());
        let t = Timeouts::from_param(Some("0.5")).unwrap();
        assert_eq!(t.total, Duration::from_millis(500));
        assert_eq!(t.connect, Duration::from_millis(500));
        let t = Timeouts::from_param(Some(" 60 ")).unwrap();
        assert_eq!(t.connect, CONNECT_TIMEOUT);
        for bad in ["0", "-1", "abc", "301", "NaN"] {
            assert!(Timeouts::from_param(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn describe_redacts_credentials() {
        crate::log::add_secret("s3cr3t-pw");
        let req = HttpRequest {
            method: "POST".into(),
            url: "http://h/x?key=s3cr3t-pw".into(),
            headers: vec![
                ("Authorization".into(), "Bearer abc".into()),
                ("Content-Type".into(), "text/xml".into()),
            ],
            body: "<password>s3cr3t-pw</password>".into(),
        };
        let text = req.describe();
        assert!(!text.contains("s3cr3t-pw"), "{text}");
        assert!(!text.contains("Bearer abc"), "{text}");
        assert!(text.contains("Authorization: ***"), "{text}");
        assert!(text.contains("Content-Type: text/xml"), "{text}");
    }
}
