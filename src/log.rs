//! One log a role, `var/<role>.log`, with levels from `etc/debug.conf` and every
//! registered secret redacted from every line.
//!
//! Levels (a `debug.conf` line is `<role> <0-9>`, or `* <0-9>` for all roles):
//! 0 nothing, 1 errors, 2 warnings, 3-5 info (default 4), 6-8 debug (requests and
//! replies, redacted), 9 trace.

use std::cell::RefCell;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::alphabet;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD, URL_SAFE_NO_PAD,
};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

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
    /// This process's id, read once: getpid is a system call.
    pid: u32,
    level: u8,
    sink: Mutex<Sink>,
    offset: time::UtcOffset,
}

enum Sink {
    File(File),
    Stderr,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

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
        pid: std::process::id(),
        level,
        sink: Mutex::new(sink),
        offset,
    });
    // A panic's message reaches stderr and the log redacted, like every other text.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let text = redact(&format!(
            "thread '{}' {info}",
            thread.name().unwrap_or("main")
        ));
        let _ = writeln!(std::io::stderr(), "{text}");
        write(ERROR, format_args!("{text}"));
    }));
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
        logger.pid, logger.role
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

/// The shortest piece of a URL-shaped secret (a path segment, a query value) that is
/// registered on its own.
const MIN_PIECE: usize = 6;

/// Most secrets one script command may register: a loop calling `secret(..)` is a bug.
pub const MAX_COMMAND_SECRETS: usize = 64;

/// Secrets and one matcher for every spelling of each.
#[derive(Default)]
struct Secrets {
    /// Secrets as registered.
    raw: Vec<String>,
    /// Matches every spelling of every secret, longest first; `None` when empty.
    matcher: Option<Arc<AhoCorasick>>,
}

impl Secrets {
    /// These secrets and `secret`, with a matcher for all of them.
    fn with(&self, secret: &str) -> Self {
        let mut raw = self.raw.clone();
        raw.push(secret.to_owned());
        let mut patterns: Vec<String> = raw.iter().flat_map(|s| spellings(s)).collect();
        patterns.sort();
        patterns.dedup();
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok()
            .map(Arc::new);
        Self { raw, matcher }
    }

    fn knows(&self, secret: &str) -> bool {
        self.raw.iter().any(|known| known == secret)
    }
}

/// The secrets of the configuration (gateway parameters, the database password): the
/// same few are registered again and again, so they are kept for the whole process.
static SECRETS: RwLock<Secrets> = RwLock::new(Secrets {
    raw: Vec::new(),
    matcher: None,
});

thread_local! {
    /// The secrets a script command running on this thread registered (what it
    /// derived, its request credentials): they can be new on every message, so they
    /// last as long as the command; see [`with_command_secrets`].
    static COMMAND_SECRETS: RefCell<Option<Secrets>> = const { RefCell::new(None) };
}

/// Registers a secret (a password, a token) for the rest of the process: from now on
/// it is replaced by `***` in every log line and every text passed through [`redact`],
/// in every spelling it can reach a log or an answer in (see [`spellings`]), inside
/// base64 too (a provider echoing `Authorization: Basic base64(login:password)`), and,
/// when it is a URL (a webhook with its key in the path), its pieces: path, key-like
/// path segments and query values, the password of its userinfo.
pub fn add_secret(secret: &str) {
    if secret.chars().count() < 2 || SECRETS.read().is_ok_and(|s| s.knows(secret)) {
        // Gateways register their passwords on every message: the common case is a read.
        return;
    }
    // One registration at a time builds the new matcher; logging goes on with the old
    // one meanwhile, and the new one is in place before this returns.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _building = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let updated = match SECRETS.read() {
        Ok(secrets) if !secrets.knows(secret) => secrets.with(secret),
        _ => return,
    };
    if let Ok(mut secrets) = SECRETS.write() {
        *secrets = updated;
    }
}

/// Runs a script command with its own secrets: what it registers with
/// [`add_command_secret`] is redacted on this thread until the command returns, so
/// whatever text leaves the command must be redacted before it does.
pub fn with_command_secrets<T>(command: impl FnOnce() -> T) -> T {
    struct Restore(Option<Secrets>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            let _ = COMMAND_SECRETS.try_with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = COMMAND_SECRETS.with(|c| c.replace(Some(Secrets::default())));
    let _restore = Restore(previous);
    command()
}

/// Registers a secret for the running script command (for the process when no
/// command runs on this thread). False when the command has registered
/// [`MAX_COMMAND_SECRETS`] already.
pub fn add_command_secret(secret: &str) -> bool {
    if secret.chars().count() < 2 || SECRETS.read().is_ok_and(|s| s.knows(secret)) {
        return true;
    }
    let added = COMMAND_SECRETS.with(|c| {
        let mut command = c.borrow_mut();
        let secrets = command.as_mut()?;
        if !secrets.knows(secret) {
            if secrets.raw.len() >= MAX_COMMAND_SECRETS {
                return Some(false);
            }
            *secrets = secrets.with(secret);
        }
        Some(true)
    });
    added.unwrap_or_else(|| {
        add_secret(secret);
        true
    })
}

/// Every spelling of `secret` that is replaced: as is; XML-escaped once or twice (an
/// escaped request inside an XML answer), also with `'` escaped; JSON-escaped, also
/// the ASCII-only way with `\/` (PHP's); URL-encoded (space as `%20` or `+`, upper or
/// lower case hex); base64 (standard and URL-safe, without padding); and, for a URL,
/// its secret pieces in all these spellings.
fn spellings(secret: &str) -> Vec<String> {
    let mut forms = encodings(secret);
    let trimmed = secret.trim();
    if trimmed != secret {
        forms.extend(encodings(trimmed));
    }
    for piece in url_pieces(trimmed) {
        forms.extend(encodings(&piece));
    }
    forms.retain(|f| f.len() >= 2);
    forms
}

fn encodings(secret: &str) -> Vec<String> {
    let escaped = crate::xml::escape_text(secret);
    let encoded = url_encode(secret);
    let mut forms = vec![
        secret.to_owned(),
        crate::xml::escape_text(&escaped),
        escaped.replace('\'', "&apos;"),
        escaped.replace('\'', "&#39;"),
        escaped.replace('\'', "&#039;"),
        encoded.replace("%20", "+"),
        encoded.to_ascii_lowercase().replace("%20", "+"),
        encoded.to_ascii_lowercase(),
        encoded,
        escaped,
    ];
    if let Ok(json) = serde_json::to_string(secret) {
        // Without its quotes; the string always starts and ends with one.
        forms.push(json[1..json.len() - 1].to_owned());
    }
    forms.push(json_ascii(secret));
    if secret.len() >= 6 {
        // Shorter ones are a few letters that would be replaced in unrelated text;
        // a base64 of a longer text containing them is found by `redact` itself.
        forms.push(STANDARD_NO_PAD.encode(secret));
        forms.push(URL_SAFE_NO_PAD.encode(secret));
    }
    forms
}

/// JSON string content the way PHP's json_encode writes it: `/` as `\/`, every
/// non-ASCII character as `\uXXXX`.
fn json_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out
}

/// The secret pieces of a URL-shaped secret (`https://user:pass@host/path?query`):
/// the userinfo and its password, the path with its query (what stays when `api_url`
/// replaces the host), each path segment and query value that looks like a key, and
/// each value of a query parameter whose name says it is a secret.
fn url_pieces(secret: &str) -> Vec<String> {
    let Some((_, rest)) = secret.split_once("://") else {
        return Vec::new();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut pieces = Vec::new();
    let tail = tail.split('#').next().unwrap_or_default();
    if tail.len() >= MIN_PIECE {
        pieces.push(tail.to_owned());
    }
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    pieces.extend(
        path.split('/')
            .filter(|segment| looks_like_a_key(segment))
            .map(str::to_owned),
    );
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or(("", pair));
        if value.len() >= MIN_PIECE && (is_secret_name(name) || looks_like_a_key(value)) {
            pieces.push(value.to_owned());
        }
    }
    // The userinfo's password is a password, however short.
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        pieces.push(userinfo.to_owned());
        if let Some((_, password)) = userinfo.split_once(':') {
            pieces.push(password.to_owned());
        }
    }
    pieces
}

/// A URL piece that reads like a key, not a word: long, and with digits or very long
/// (`T0123ABCD`, `XXXXXXXXXXXXXXXXXXXXXXXX`, `bot123:AAE...`, not `services` or
/// `sendMessage`).
fn looks_like_a_key(piece: &str) -> bool {
    piece.len() >= 8
        && (piece.bytes().any(|b| b.is_ascii_digit()) || piece.len() >= 20)
        && piece
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~:+=%".contains(&b))
}

/// The text with every registered secret replaced by `***`: each spelling of it, and
/// every base64 run whose decoded bytes hold one.
pub fn redact(text: &str) -> String {
    let process = match SECRETS.read() {
        Ok(secrets) => secrets.matcher.clone(),
        Err(_) => None,
    };
    let mut out = match process {
        Some(matcher) => redact_with(text, &matcher),
        None => text.to_owned(),
    };
    let _ = COMMAND_SECRETS.try_with(|c| {
        if let Some(matcher) = c.borrow().as_ref().and_then(|s| s.matcher.clone()) {
            out = redact_with(&out, &matcher);
        }
    });
    out
}

fn redact_with(text: &str, matcher: &AhoCorasick) -> String {
    // Base64 runs first: a secret's own base64 can sit inside that of `login:secret`.
    let text = redact_base64(text, matcher);
    let mut out = String::with_capacity(text.len());
    matcher.replace_all_with(&text, &mut out, |_, _, dst| {
        dst.push_str(REDACTED);
        true
    });
    out
}

/// Shortest base64 run looked into: six bytes or more, such as `user:pw`.
const MIN_BASE64_RUN: usize = 8;

/// `text` with each base64 run that decodes to something holding a secret replaced.
/// A run may be URL-encoded (`%2B`, `%2F`, `%3D`) or JSON-escaped (`\/`), and may
/// start with other letters (`tokendXNlcjpw...`): each of the four alignments is tried.
fn redact_base64(text: &str, matcher: &AhoCorasick) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (run, end) = base64_run(bytes, i);
        if run.len() >= MIN_BASE64_RUN && decodes_to_a_secret(&run, matcher) {
            out.push_str(&text[copied..i]);
            out.push_str(REDACTED);
            copied = end;
        }
        i = if end > i { end } else { i + 1 };
    }
    out.push_str(&text[copied..]);
    out
}

/// The base64 characters of the run starting at `start` (escapes decoded), and where
/// the run ends in `bytes`. An empty run when `start` is not in one.
fn base64_run(bytes: &[u8], start: usize) -> (Vec<u8>, usize) {
    let mut run = Vec::new();
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_') {
            run.push(b);
            i += 1;
            continue;
        }
        let escape = match bytes.get(i..i + 3) {
            Some([b'%', b'2', b'B' | b'b']) => Some((b'+', 3)),
            Some([b'%', b'2', b'F' | b'f']) => Some((b'/', 3)),
            _ if bytes.get(i..i + 2) == Some(b"\\/") => Some((b'/', 2)),
            _ => None,
        };
        match escape {
            Some((c, len)) if !run.is_empty() => {
                run.push(c);
                i += len;
            }
            _ => break,
        }
    }
    // Padding ends the run: `=` or `%3D`, up to two.
    for _ in 0..2 {
        if bytes.get(i) == Some(&b'=') {
            i += 1;
        } else if matches!(bytes.get(i..i + 3), Some([b'%', b'3', b'D' | b'd'])) {
            i += 3;
        }
    }
    (run, i)
}

fn decodes_to_a_secret(run: &[u8], matcher: &AhoCorasick) -> bool {
    let standard: Vec<u8> = run
        .iter()
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            b => b,
        })
        .collect();
    (0..4).any(|skip| {
        let Some(tail) = standard.get(skip..) else {
            return false;
        };
        // One character past a whole group encodes no byte and makes base64 invalid.
        let usable = tail.len() - usize::from(tail.len() % 4 == 1);
        LENIENT
            .decode(&tail[..usable])
            .is_ok_and(|decoded| matcher.is_match(&decoded))
    })
}

/// Standard base64 that takes any padding and ignores the bits after the last byte.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Whether a parameter's name says it holds a secret, for parameters whose form type
/// is not known (the generic outgoing XML, header names).
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "pass",
        "pwd",
        "psw",
        "secret",
        "token",
        "apikey",
        "api_key",
        "auth",
        "key",
        "credential",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// At most `max_chars` characters of `text` for a log line or an error, with `marker`
/// after a cut; redacted before it is cut, so that no secret is cut into a piece that
/// no longer matches.
pub fn excerpt(text: &str, max_chars: usize, marker: &str) -> String {
    let text = redact(text);
    if text.chars().count() <= max_chars {
        return text;
    }
    let mut s: String = text.chars().take(max_chars).collect();
    s.push_str(marker);
    s
}

/// Percent-encodes everything but RFC 3986's unreserved characters (how URLs and HTML
/// forms carry a value).
pub fn url_encode(s: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Logs at a level. The arguments are evaluated only when the level is enabled: a
/// line's text (a redacted reply excerpt, say) costs nothing when it is not written.
#[macro_export]
macro_rules! log_at {
    ($level:expr, $($t:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::write($level, format_args!($($t)*))
        }
    };
}
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log_at!($crate::log::ERROR, $($t)*) } }
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log_at!($crate::log::WARN, $($t)*) } }
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log_at!($crate::log::INFO, $($t)*) } }
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log_at!($crate::log::DEBUG, $($t)*) } }
#[macro_export]
macro_rules! trace { ($($t:tt)*) => { $crate::log_at!($crate::log::TRACE, $($t)*) } }

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn a_disabled_level_does_not_evaluate_its_arguments() {
        // No logger in unit tests: every level is disabled.
        assert!(!enabled(DEBUG));
        let mut evaluated = 0;
        let mut expensive = || {
            evaluated += 1;
            "text"
        };
        crate::debug!("reply: {}", expensive());
        crate::info!("reply: {}", expensive());
        assert_eq!(evaluated, 0);
    }

    #[test]
    fn secrets_are_redacted_in_all_spellings() {
        add_secret("p@ss w<rd\"");
        let text = "a=p@ss w<rd\" b=p%40ss+w%3Crd%22 c=p@ss w&lt;rd&quot; \
                    d=p@ss w&amp;lt;rd&amp;quot; e=p@ss w<rd\\\"";
        assert_eq!(redact(text), "a=*** b=*** c=*** d=*** e=***");
    }

    #[test]
    fn every_encoding_of_a_secret_is_redacted() {
        let secret = "Tok/en+é\"x'1";
        add_secret(secret);
        let escaped = crate::xml::escape_text(secret);
        let json = serde_json::to_string(secret).unwrap();
        for form in [
            secret.to_owned(),
            escaped.clone(),
            crate::xml::escape_text(&escaped),
            escaped.replace('\'', "&#039;"),
            json[1..json.len() - 1].to_owned(),
            json_ascii(secret),
            url_encode(secret),
            url_encode(secret).to_ascii_lowercase(),
            STANDARD_NO_PAD.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
        ] {
            let text = format!("before {form} after");
            assert_eq!(redact(&text), "before *** after", "{form}");
        }
    }

    #[test]
    fn base64_holding_a_secret_is_redacted_however_it_is_cut_or_escaped() {
        add_secret("b64-pw-Q9");
        for login in ["u", "us", "use", "user"] {
            let basic = STANDARD.encode(format!("{login}:b64-pw-Q9"));
            let text = format!("Authorization: Basic {basic}\n");
            assert_eq!(redact(&text), "Authorization: Basic ***\n", "{login}");
            let glued = format!("auth=tok{basic}&x=1");
            assert_eq!(redact(&glued), "auth=***&x=1", "{login}");
            let url_encoded = basic
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D");
            assert_eq!(redact(&format!("a={url_encoded}")), "a=***", "{login}");
            let json = basic.replace('/', "\\/");
            assert_eq!(redact(&format!("\"{json}\"")), "\"***\"", "{login}");
        }
        let unrelated = STANDARD.encode("user:another-password");
        assert_eq!(redact(&unrelated), unrelated);
    }

    #[test]
    fn the_pieces_of_a_url_secret_are_redacted() {
        add_secret(
            "https://hook:Us3rPa55@hooks.example.com/services/T0123ABCD/B0456EFGH/XyZxYzXyZxYzXyZxYzXyZxYz?sig=q1w2e3r4&mode=plain",
        );
        for (text, expected) in [
            (
                "POST http://127.0.0.1:8080/services/T0123ABCD/B0456EFGH/XyZxYzXyZxYzXyZxYzXyZxYz?sig=q1w2e3r4&mode=plain",
                "POST http://127.0.0.1:8080***",
            ),
            (
                "no hook at /services/T0123ABCD/B0456EFGH/XyZxYzXyZxYzXyZxYzXyZxYz",
                "no hook at /services/***/***/***",
            ),
            ("unknown key XyZxYzXyZxYzXyZxYzXyZxYz", "unknown key ***"),
            ("bad signature q1w2e3r4", "bad signature ***"),
            ("proxy login Us3rPa55 refused", "proxy login *** refused"),
            ("mode=plain, services", "mode=plain, services"),
        ] {
            assert_eq!(redact(text), expected);
        }
    }

    #[test]
    fn command_secrets_last_as_long_as_their_command() {
        let inside = with_command_secrets(|| {
            assert!(add_command_secret("derived-Sig-0451"));
            let text = redact("signature derived-Sig-0451");
            for n in 0..MAX_COMMAND_SECRETS {
                add_command_secret(&format!("derived-filler-{n}"));
            }
            assert!(!add_command_secret("derived-one-too-many"));
            text
        });
        assert_eq!(inside, "signature ***");
        assert_eq!(
            redact("signature derived-Sig-0451"),
            "signature derived-Sig-0451"
        );
        // Outside a command a secret is the process's.
        assert!(add_command_secret("derived-Global-0452"));
        assert_eq!(redact("derived-Global-0452"), "***");
    }

    #[test]
    fn secret_names() {
        assert!(is_secret_name("password"));
        assert!(is_secret_name("api_token"));
        assert!(is_secret_name("psw"));
        assert!(is_secret_name("user_pwd"));
        assert!(!is_secret_name("login"));
        assert!(!is_secret_name("sender"));
    }
}
