//! One log a role, `var/<role>.log`, with levels from `etc/debug.conf` and every
//! registered secret redacted from every line.
//!
//! Levels (a `debug.conf` line is `<role> <0-9>`, or `* <0-9>` for all roles):
//! 0 nothing, 1 errors, 2 warnings, 3-5 info (default 4), 6-8 debug (requests and
//! replies, redacted), 9 trace.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Mutex, OnceLock, RwLock};

use crate::root::MgrRoot;

pub const ERROR: u8 = 1;
pub const WARN: u8 = 2;
pub const INFO: u8 = 4;
pub const DEBUG: u8 = 6;
pub const TRACE: u8 = 9;
const DEFAULT_LEVEL: u8 = INFO;

/// What replaces a secret in every log line and error text.
pub const REDACTED: &str = "***";

struct Logger {
    role: String,
    level: u8,
    sink: Mutex<Sink>,
    offset: time::UtcOffset,
}

enum Sink {
    File(File),
    Stderr,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Opens `var/<role>.log` (creating `var/` in an existing root). When it cannot be
/// opened the log goes to stderr, so a read-only or missing root still tells what
/// happened, and no root is ever made up by logging.
pub fn init(root: &MgrRoot, role: &str) {
    let level = level_for(root, role);
    let path = root.log_file(role);
    if let Some(dir) = path.parent().filter(|_| root.path().is_dir()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let sink = match OpenOptions::new().create(true).append(true).open(&path) {
        Ok(f) => Sink::File(f),
        Err(_) => Sink::Stderr,
    };
    // The local offset can only be read safely while the process is single-threaded.
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    let _ = LOGGER.set(Logger {
        role: role.to_owned(),
        level,
        sink: Mutex::new(sink),
        offset,
    });
}

fn level_for(root: &MgrRoot, role: &str) -> u8 {
    let Ok(text) = std::fs::read_to_string(root.debug_conf()) else {
        return DEFAULT_LEVEL;
    };
    let mut level = DEFAULT_LEVEL;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(value) = value.parse::<u8>() else {
            continue;
        };
        if name == role {
            return value.min(9);
        }
        if name == "*" {
            level = value.min(9);
        }
    }
    level
}

/// Whether a message at `level` would be written; lets callers skip building
/// expensive debug text.
pub fn enabled(level: u8) -> bool {
    LOGGER.get().is_some_and(|l| level <= l.level)
}

/// Writes one line if the level is enabled. Use the `error!`..`trace!` macros.
pub fn write(level: u8, args: fmt::Arguments<'_>) {
    let Some(logger) = LOGGER.get() else { return };
    if level > logger.level || level == 0 {
        return;
    }
    let name = match level {
        ERROR => "ERROR",
        WARN => "WARN",
        3..=5 => "INFO",
        6..=8 => "DEBUG",
        _ => "TRACE",
    };
    let now = time::OffsetDateTime::now_utc().to_offset(logger.offset);
    let stamp = now
        .format(time::macros::format_description!(
            "[month repr:short] [day] [hour]:[minute]:[second].[subsecond digits:3]"
        ))
        .unwrap_or_default();
    let thread = std::thread::current();
    let tname = thread.name().unwrap_or("main");
    let message = redact(&args.to_string());
    let line = format!(
        "{stamp} [{}:{tname}] {} {name} {message}\n",
        std::process::id(),
        logger.role
    );
    let Ok(mut sink) = logger.sink.lock() else {
        return;
    };
    match &mut *sink {
        Sink::File(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        Sink::Stderr => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Registers a secret (a password, a token): from now on it is replaced by `***` in
/// every log line and every text passed through [`redact`], also in every spelling a
/// provider may echo it back in: XML-escaped once or twice (an escaped request inside
/// an XML answer), JSON-escaped, URL-encoded. A secret URL (a webhook) also registers
/// its path and query, the part that holds its token and that `api_url` keeps.
pub fn add_secret(secret: &str) {
    if secret.chars().count() < 2 {
        return;
    }
    if let Some(path) = secret_part_of_url(secret) {
        add_secret(path);
    }
    let escaped = crate::xml::escape_text(secret);
    let encoded = form_encode(secret);
    let mut forms = vec![
        secret.to_owned(),
        crate::xml::escape_text(&escaped),
        encoded.replace("%20", "+"),
        encoded,
        escaped,
    ];
    if let Ok(json) = serde_json::to_string(secret) {
        // Without its quotes; the string always starts and ends with one.
        forms.push(json[1..json.len() - 1].to_owned());
    }
    forms.sort();
    forms.dedup();
    // Gateways register their passwords on every message: the common case is a read.
    if SECRETS
        .read()
        .is_ok_and(|all| forms.iter().all(|f| all.contains(f)))
    {
        return;
    }
    let Ok(mut all) = SECRETS.write() else { return };
    for form in forms {
        if !all.contains(&form) {
            all.push(form);
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Shortest URL path and query registered as a secret of its own: shorter ones
/// (`/`, `/hook`) hold no token, and redacting them would ruin every log line.
const MIN_URL_PATH_SECRET_LEN: usize = 8;

/// The path and query of an http(s) URL, when long enough to hold its token.
fn secret_part_of_url(secret: &str) -> Option<&str> {
    let (scheme, rest) = secret.trim().split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let tail = &rest[rest.find(['/', '?'])?..];
    (tail.chars().count() >= MIN_URL_PATH_SECRET_LEN).then_some(tail)
}

/// The text with every registered secret replaced by `***`.
pub fn redact(text: &str) -> String {
    let Ok(all) = SECRETS.read() else {
        return text.to_owned();
    };
    let mut out = text.to_owned();
    for secret in all.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
    out
}

/// Whether a parameter's name says it holds a secret, for parameters whose form type
/// is not known (third-party gateways, the generic outgoing XML).
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "pass", "secret", "token", "apikey", "api_key", "auth", "key",
    ]
    .iter()
    .any(|w| n.contains(w))
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::write($crate::log::ERROR, format_args!($($t)*)) } }
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::write($crate::log::WARN, format_args!($($t)*)) } }
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::write($crate::log::INFO, format_args!($($t)*)) } }
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::write($crate::log::DEBUG, format_args!($($t)*)) } }
#[macro_export]
macro_rules! trace { ($($t:tt)*) => { $crate::log::write($crate::log::TRACE, format_args!($($t)*)) } }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_all_spellings() {
        add_secret("p@ss w<rd\"");
        let text = "a=p@ss w<rd\" b=p%40ss+w%3Crd%22 c=p@ss w&lt;rd&quot; \
                    d=p@ss w&amp;lt;rd&amp;quot; e=p@ss w<rd\\\"";
        assert_eq!(redact(text), "a=*** b=*** c=*** d=*** e=***");
    }

    #[test]
    fn a_secret_url_hides_its_path_wherever_the_request_goes() {
        add_secret("https://hooks.example.com/services/T01/B02/u4Tok3nXyZ?k=1");
        // api_url replaced the origin; the token is still hidden, encoded too.
        assert_eq!(
            redact("POST http://127.0.0.1:8080/services/T01/B02/u4Tok3nXyZ?k=1 done"),
            "POST http://127.0.0.1:8080*** done"
        );
        assert_eq!(
            redact("echo %2Fservices%2FT01%2FB02%2Fu4Tok3nXyZ%3Fk%3D1"),
            "echo ***"
        );
        // A path too short to hold a token is no secret of its own.
        add_secret("https://h.example/hook");
        assert_eq!(redact("GET /hook"), "GET /hook");
        assert_eq!(redact("https://h.example/hook"), "***");
    }

    #[test]
    fn secret_names() {
        assert!(is_secret_name("password"));
        assert!(is_secret_name("api_token"));
        assert!(!is_secret_name("login"));
        assert!(!is_secret_name("sender"));
    }
}
