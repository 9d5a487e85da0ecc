//! The queue's settings: `Queue*` lines of `etc/mgrnotify/mgrnotify.conf` (`Key Value`,
//! like BILLmanager's own conf files), and `AttachmentDirs` and `InternalTable` for what
//! it sends. Other
//! keys belong to other parts and are left alone; a bad value of ours is an error
//! naming the file, line and key.

use std::fmt;
use std::time::Duration;

use crate::db::schema::ClaimMode;
use crate::root::MgrRoot;

/// How the queue runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Messages sent at once (`QueueWorkers`, default 16).
    pub workers: usize,
    /// Failures after which a row waits for an operator (`QueueMaxAttempts`, 10).
    pub max_attempts: u32,
    /// First retry delay; doubles with each failure (`QueueRetryBase`, 60s).
    pub retry_base: Duration,
    /// Longest retry delay (`QueueRetryCap`, 1h).
    pub retry_cap: Duration,
    /// A run stops taking new rows after this long; 0 means no limit
    /// (`QueueTimeBudget`, 10m).
    pub time_budget: Option<Duration>,
    /// A gateway program that has not answered by then is killed (`QueueGatewayTimeout`, 60s).
    pub gateway_timeout: Duration,
    /// Rows read from the queue per query (`QueueBatchSize`, 1000).
    pub batch_size: usize,
    /// `auto` (by server version), `skip_locked` or `named_locks` (`QueueClaim`).
    pub claim: Option<ClaimMode>,
    /// Most rows a worker claims, sends and deletes in one transaction
    /// (`QueueClaimRows`, 64; 1 claims each row alone). Fewer rows are taken at a
    /// time when a page holds too few to keep every worker busy.
    pub claim_rows: usize,
    /// Longest wait for the database on any read or write; a hung server ends the run
    /// after this (`QueueDbTimeout`, 60s).
    pub db_timeout: Duration,
    /// Largest notification file read (`QueueMaxFileSize`, 4M).
    pub max_file_size: u64,
    /// User table columns a notice may take besides the standard ones
    /// (`QueueUserFields`, comma-separated, none by default).
    pub user_fields: Vec<String>,
    /// Folders besides the mgr root that email attachments may come from
    /// (`AttachmentDirs`, absolute paths separated by spaces or commas; by default the
    /// system's temporary folder, where a program that writes a document to attach
    /// usually puts it). Setting it replaces the default.
    pub attachment_dirs: Vec<std::path::PathBuf>,
    /// mgrnotify's table of client-area messages (`InternalTable`, default
    /// `mgrnotify_internal`).
    pub internal_table: String,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            workers: 16,
            max_attempts: 10,
            retry_base: Duration::from_secs(60),
            retry_cap: Duration::from_secs(3600),
            time_budget: Some(Duration::from_secs(600)),
            gateway_timeout: Duration::from_secs(60),
            batch_size: 1000,
            claim: None,
            claim_rows: 64,
            db_timeout: Duration::from_secs(60),
            max_file_size: 4 << 20,
            user_fields: Vec::new(),
            attachment_dirs: vec![std::env::temp_dir()],
            internal_table: crate::db::schema::INTERNAL_TABLE.to_owned(),
        }
    }
}

/// Why the queue's settings cannot be used; the sentence names the file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub kind: ConfigErrorKind,
    msg: String,
}

/// What is wrong with the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The file exists but cannot be read.
    Unreadable,
    /// A key we do not know, or a value out of its range.
    BadLine,
    /// Two values that contradict each other.
    Inconsistent,
}

impl ConfigError {
    fn new(kind: ConfigErrorKind, msg: String) -> Self {
        Self { kind, msg }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for ConfigError {}

impl QueueConfig {
    /// The defaults overridden by `etc/mgrnotify/mgrnotify.conf`, when it exists.
    pub fn load(root: &MgrRoot) -> Result<Self, ConfigError> {
        let path = root.mgrnotify_conf();
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(ConfigError::new(
                ConfigErrorKind::Unreadable,
                format!("cannot read {}: {e}", path.display()),
            )),
        }
    }

    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        for crate::conf::Entry { line, key, value } in crate::conf::entries(text) {
            let bad = |what: &str| {
                ConfigError::new(
                    ConfigErrorKind::BadLine,
                    format!("{file} line {line}: {key} '{value}' is not {what}"),
                )
            };
            if key == "AttachmentDirs" {
                c.attachment_dirs.clear();
                for dir in value
                    .split(|ch: char| ch == ',' || ch.is_whitespace())
                    .filter(|d| !d.is_empty())
                {
                    if !std::path::Path::new(dir).is_absolute() {
                        return Err(bad("a list of absolute paths"));
                    }
                    c.attachment_dirs.push(dir.into());
                }
            }
            if key == "InternalTable" {
                if !crate::db::schema::is_table_name(value) {
                    return Err(bad(
                        "a table name (letters, digits and _, not starting with a digit, \
                         at most 64)",
                    ));
                }
                value.clone_into(&mut c.internal_table);
            }
            if !key.starts_with("Queue") {
                continue;
            }
            match key {
                "QueueWorkers" => {
                    c.workers =
                        number(value, 1, 256).ok_or_else(|| bad("a number from 1 to 256"))?
                }
                "QueueMaxAttempts" => {
                    c.max_attempts = number(value, 1, 1000)
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| bad("a number from 1 to 1000"))?
                }
                "QueueRetryBase" => {
                    c.retry_base = duration(value)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| bad("a positive duration like 30s, 5m or 1h"))?
                }
                "QueueRetryCap" => {
                    c.retry_cap = duration(value)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| bad("a positive duration like 30s, 5m or 1h"))?
                }
                "QueueTimeBudget" => {
                    let d = duration(value)
                        .ok_or_else(|| bad("a duration like 90s, 10m or 0 (no limit)"))?;
                    c.time_budget = Some(d).filter(|d| !d.is_zero());
                }
                "QueueGatewayTimeout" => {
                    c.gateway_timeout = duration(value)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| bad("a positive duration like 30s"))?
                }
                "QueueBatchSize" => {
                    c.batch_size =
                        number(value, 1, 10_000).ok_or_else(|| bad("a number from 1 to 10000"))?
                }
                "QueueClaim" => {
                    c.claim = match value {
                        "auto" => None,
                        "skip_locked" => Some(ClaimMode::SkipLocked),
                        "named_locks" => Some(ClaimMode::NamedLocks),
                        _ => return Err(bad("auto, skip_locked or named_locks")),
                    }
                }
                "QueueClaimRows" => {
                    c.claim_rows =
                        number(value, 1, 1_000).ok_or_else(|| bad("a number from 1 to 1000"))?
                }
                "QueueDbTimeout" => {
                    c.db_timeout = duration(value)
                        .filter(|d| *d >= Duration::from_secs(1))
                        .ok_or_else(|| bad("a duration of at least 1s, like 30s"))?
                }
                "QueueMaxFileSize" => {
                    c.max_file_size =
                        size(value).ok_or_else(|| bad("a size from 1K to 1024M, like 4M"))?
                }
                "QueueUserFields" => {
                    c.user_fields = value
                        .split(|ch: char| ch == ',' || ch.is_whitespace())
                        .filter(|f| !f.is_empty())
                        .map(|f| {
                            let plain = f.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
                            plain.then(|| f.to_owned())
                        })
                        .collect::<Option<_>>()
                        .ok_or_else(|| bad("a comma-separated list of column names"))?
                }
                _ => {
                    return Err(ConfigError::new(
                        ConfigErrorKind::BadLine,
                        format!(
                        "{file} line {line}: unknown key {key}: the queue keys are QueueWorkers, \
                         QueueMaxAttempts, QueueRetryBase, QueueRetryCap, QueueTimeBudget, \
                         QueueGatewayTimeout, QueueBatchSize, QueueClaim, QueueClaimRows, QueueDbTimeout, \
                         QueueMaxFileSize, QueueUserFields"
                    ),
                    ))
                }
            }
        }
        if c.retry_cap < c.retry_base {
            return Err(ConfigError::new(
                ConfigErrorKind::Inconsistent,
                format!(
                    "{file}: QueueRetryCap ({}s) is shorter than QueueRetryBase ({}s)",
                    c.retry_cap.as_secs(),
                    c.retry_base.as_secs()
                ),
            ));
        }
        Ok(c)
    }
}

fn number(value: &str, min: usize, max: usize) -> Option<usize> {
    value.parse().ok().filter(|n| (min..=max).contains(n))
}

/// `4194304` (bytes), `64K`, `4M`; from 1 KiB to 1 GiB.
fn size(value: &str) -> Option<u64> {
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(digits_end);
    let n: u64 = digits.parse().ok()?;
    let bytes = match unit.trim() {
        "" => n,
        "K" | "k" => n.checked_mul(1 << 10)?,
        "M" => n.checked_mul(1 << 20)?,
        _ => return None,
    };
    Some(bytes).filter(|b| (1 << 10..=1 << 30).contains(b))
}

/// `90`, `90s`, `500ms`, `5m`, `1h`; at most a day.
fn duration(value: &str) -> Option<Duration> {
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(digits_end);
    let n: u64 = digits.parse().ok()?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    };
    Some(d).filter(|d| *d <= Duration::from_secs(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = QueueConfig::parse(
            "# queue\nQueueWorkers 4\nQueueRetryBase 500ms\nQueueTimeBudget 0\n\
             QueueClaim named_locks\nQueueClaimRows 1\nTemplateCache 10\n",
            "f",
        )
        .unwrap();
        assert_eq!(c.workers, 4);
        assert_eq!(c.retry_base, Duration::from_millis(500));
        assert_eq!(c.time_budget, None);
        assert_eq!(c.claim, Some(ClaimMode::NamedLocks));
        assert_eq!((c.claim_rows, QueueConfig::default().claim_rows), (1, 64));
        assert_eq!(c.max_attempts, 10);
        assert_eq!(QueueConfig::parse("", "f").unwrap(), QueueConfig::default());
        let c = QueueConfig::parse(
            "QueueDbTimeout 5s\nQueueMaxFileSize 64K\nQueueUserFields account, tg_id telegram\n",
            "f",
        )
        .unwrap();
        assert_eq!(c.db_timeout, Duration::from_secs(5));
        assert_eq!(c.max_file_size, 64 * 1024);
        assert_eq!(c.user_fields, ["account", "tg_id", "telegram"]);
        assert_eq!(
            QueueConfig::parse("", "f").unwrap().attachment_dirs,
            [std::env::temp_dir()]
        );
        let c = QueueConfig::parse("AttachmentDirs /var/docs, /srv/invoices\n", "f").unwrap();
        let dirs = [
            std::path::PathBuf::from("/var/docs"),
            std::path::PathBuf::from("/srv/invoices"),
        ];
        assert_eq!(c.attachment_dirs, dirs);
        assert_eq!(c.internal_table, "mgrnotify_internal");
        let c = QueueConfig::parse("InternalTable client_notes\n", "f").unwrap();
        assert_eq!(c.internal_table, "client_notes");
        assert_eq!(
            QueueConfig::parse("QueueMaxFileSize 2M", "f")
                .unwrap()
                .max_file_size,
            2 << 20
        );
    }

    #[test]
    fn bad_values_name_file_line_and_key() {
        let e = QueueConfig::parse("\nQueueWorkers 0\n", "mgrnotify.conf").unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::BadLine);
        assert_eq!(
            e.to_string(),
            "mgrnotify.conf line 2: QueueWorkers '0' is not a number from 1 to 256"
        );
        assert!(QueueConfig::parse("QueueRetryBase 5 days", "f").is_err());
        assert!(QueueConfig::parse("QueueClaim maybe", "f").is_err());
        assert!(QueueConfig::parse("QueueDbTimeout 500ms", "f").is_err());
        assert!(QueueConfig::parse("QueueMaxFileSize 2G", "f").is_err());
        assert!(QueueConfig::parse("QueueMaxFileSize 10", "f").is_err());
        assert!(QueueConfig::parse("QueueUserFields a,`b`", "f").is_err());
        let e = QueueConfig::parse("AttachmentDirs /ok var/docs", "f").unwrap_err();
        assert!(
            e.to_string().contains("not a list of absolute paths"),
            "{e}"
        );
        let e = QueueConfig::parse("\nInternalTable notes;drop", "f").unwrap_err();
        assert!(e.to_string().contains("line 2: InternalTable"), "{e}");
        assert!(QueueConfig::parse("QueueWorkrs 3", "f")
            .unwrap_err()
            .to_string()
            .contains("unknown key QueueWorkrs"));
        let e = QueueConfig::parse("QueueRetryBase 2h\nQueueRetryCap 1h", "f").unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::Inconsistent);
        assert!(e.to_string().contains("shorter"));
    }
}
