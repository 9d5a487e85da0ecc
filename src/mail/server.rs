//! Where a mail server is and how the connection to it is protected: the parameters
//! every mail gateway shares (`host`, `port`, `security`, `ca_file`, `timeout`), read
//! and checked in one place. Each protocol brings its own default ports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::gateway::GatewayError;
use crate::xml::Params;

/// How the connection is protected: the gateway parameter `security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text (a local server).
    None,
    /// Plain, then STARTTLS (STLS) before anything else.
    StartTls,
    /// TLS from the first byte.
    Tls,
}

impl Security {
    pub const CHOICES: [&'static str; 3] = ["starttls", "tls", "none"];

    pub fn parse(text: &str) -> Result<Self, GatewayError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "starttls" => Ok(Security::StartTls),
            "tls" => Ok(Security::Tls),
            "none" => Ok(Security::None),
            other => Err(GatewayError::value(
                "security",
                format!(
                    "security '{other}' is not one of {}",
                    Self::CHOICES.join(", ")
                ),
            )),
        }
    }
}

/// Where to connect and how long to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// A PEM file of CAs trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    /// The longest wait for any one answer.
    pub timeout: Duration,
}

impl Endpoint {
    /// Reads `host`, `security`, `port` (empty: `default_port` for the security),
    /// `ca_file` (relative to `base`, the mgr root) and `timeout`.
    pub fn from_params(
        params: &Params,
        base: &Path,
        default_port: fn(Security) -> u16,
    ) -> Result<(Self, Security), GatewayError> {
        let host = params
            .get("host")
            .map(str::trim)
            .ok_or_else(|| GatewayError::missed("host"))?;
        if host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(GatewayError::value(
                "host",
                format!("host '{host}' is not a host name or address"),
            ));
        }
        let security = Security::parse(params.get("security").unwrap_or_default())?;
        let port = match params.get("port").map(str::trim) {
            None => default_port(security),
            Some(text) => text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                GatewayError::value("port", format!("port '{text}' is not a port number"))
            })?,
        };
        let timeout = crate::http::Timeouts::from_param(params.get("timeout"))
            .map_err(|e| GatewayError::value("timeout", e.to_string()))?
            .total;
        let endpoint = Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            ca_file: params.get("ca_file").map(|f| base.join(f.trim())),
            timeout,
        };
        Ok((endpoint, security))
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}
