//! BILLmanager's database: where its settings come from (`etc/billmgr.conf.d/db.conf`,
//! then `etc/billmgr.conf`, or env `MGRNOTIFY_DB_URL`) and a connection pool to it.
//! Every table and column name and every SQL text lives in [`schema`].

pub mod column;
pub mod schema;

use std::fmt;
use std::time::Duration;

use mysql::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use crate::error::Cause;
use crate::root::MgrRoot;

/// Environment variable that replaces the config files: `mysql://user:pass@host:port/db`.
pub const URL_ENV: &str = "MGRNOTIFY_DB_URL";

/// How long connecting may take before the run gives up with a clear error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the operator's tools (`doctor`, `queue`) wait for the database.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the database cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    pub kind: DbErrorKind,
    /// The operator's sentence: what was being done, what went wrong, the next step.
    msg: String,
    cause: Cause,
}

/// What kind of database failure a [`DbError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// The settings are missing, unreadable or wrong (`db.conf`, `MGRNOTIFY_DB_URL`).
    Settings,
    /// The server cannot be reached, or refuses us.
    Connect,
    /// The server did not answer in time.
    Timeout,
    /// The server refused a statement, or the connection broke during one.
    Statement,
    /// The tables or the values in them are not what BILLmanager's are.
    Schema,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.get()
    }
}

impl DbError {
    pub fn new(kind: DbErrorKind, msg: impl Into<String>) -> Self {
        Self {
            kind,
            msg: msg.into(),
            cause: Cause::none(),
        }
    }

    /// Wraps a driver error with what was being done.
    pub fn query(context: &str, e: mysql::Error) -> Self {
        let kind = if is_timeout(&e) {
            DbErrorKind::Timeout
        } else {
            DbErrorKind::Statement
        };
        Self {
            kind,
            msg: format!("{context}: {}", explain(&e)),
            cause: Cause::new(e),
        }
    }
}

/// A driver error as a sentence (the driver's `Display` is a debug dump like
/// `MySqlError { ERROR 1045 (28000): ... }`).
fn explain(e: &mysql::Error) -> String {
    if is_timeout(e) {
        return "the database did not answer in time (the connection timed out)".into();
    }
    match e {
        mysql::Error::MySqlError(server) => {
            format!(
                "the server answered error {}: {}",
                server.code, server.message
            )
        }
        mysql::Error::IoError(io) => format!("a network error: {io}"),
        mysql::Error::DriverError(driver) => driver.to_string(),
        mysql::Error::UrlError(url) => url_error_kind(url).to_owned(),
        other => other.to_string(),
    }
}

/// What an operator can do about a failed connection, by what went wrong.
fn next_step(e: &mysql::Error, source: &str) -> String {
    let code = match e {
        mysql::Error::MySqlError(server) => Some(server.code),
        _ => None,
    };
    match code {
        Some(1045) => format!("check DBUser and DBPassword in {source}"),
        Some(1044) => {
            format!("the user may not use this database: check DBUser and DBName in {source}")
        }
        Some(1049) => format!("check DBName in {source}"),
        Some(1040 | 1203) => "the server has too many connections: lower QueueWorkers in \
             etc/mgrnotify/mgrnotify.conf or raise the server's max_connections"
            .into(),
        Some(_) => format!("check the DB settings in {source}"),
        None => format!(
            "check that the database server runs, and DBHost, DBPort and DBSocket in {source}"
        ),
    }
}

/// A read or write on the connection ran into its timeout: the server hangs or is
/// unreachable.
fn is_timeout(e: &mysql::Error) -> bool {
    let io = match e {
        mysql::Error::IoError(io) => Some(io),
        // The packet reader wraps the socket's error.
        mysql::Error::CodecError(codec) => std::error::Error::source(codec)
            .and_then(|source| source.downcast_ref::<std::io::Error>()),
        _ => None,
    };
    io.is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    })
}

/// A statement failed. Whether its connection survived decides whether a run can go on
/// with the next row or has lost its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementError {
    pub error: DbError,
    /// The network, a timeout, or the server ended the connection; otherwise the server
    /// refused just this statement (a data error, a lock wait, a trigger) and answered.
    pub connection_lost: bool,
    /// The server rolled the whole transaction back (a deadlock, a lock wait that
    /// ends the transaction), not just the statement.
    pub transaction_lost: bool,
}

impl StatementError {
    pub fn new(context: &str, e: mysql::Error) -> Self {
        /// Server errors that end the session: killed, shutting down.
        const ENDS_SESSION: &[u16] = &[1053, 1077, 1078, 1079, 1080, 1152, 1184, 1927];
        let connection_lost = match &e {
            mysql::Error::MySqlError(server) => ENDS_SESSION.contains(&server.code),
            mysql::Error::FromValueError(_) | mysql::Error::FromRowError(_) => false,
            _ => true,
        };
        /// Server errors that roll back the whole transaction.
        const ENDS_TRANSACTION: &[u16] = &[1205, 1213];
        let transaction_lost = matches!(&e, mysql::Error::MySqlError(server) if ENDS_TRANSACTION.contains(&server.code));
        Self {
            error: DbError::query(context, e),
            connection_lost,
            transaction_lost,
        }
    }

    /// A row the server sent that cannot be read: the connection is fine.
    pub fn unreadable(error: DbError) -> Self {
        Self {
            error,
            connection_lost: false,
            transaction_lost: false,
        }
    }
}

impl fmt::Display for StatementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl From<StatementError> for DbError {
    fn from(e: StatementError) -> Self {
        e.error
    }
}

/// Where the database is and who we are there.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DbSettings {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub socket: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub name: Option<String>,
    /// Where the settings were read from, for error messages.
    pub source: String,
}

impl fmt::Debug for DbSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password never reaches a log, not even through Debug.
        write!(f, "DbSettings({})", self.describe())
    }
}

impl DbSettings {
    /// `MGRNOTIFY_DB_URL` when set, else `db.conf` with `billmgr.conf` filling the keys
    /// it lacks. The password is registered as a secret either way.
    pub fn load(root: &MgrRoot) -> Result<Self, DbError> {
        let settings = match std::env::var(URL_ENV).ok().filter(|v| !v.trim().is_empty()) {
            Some(url) => Self::from_url(&url)?,
            None => Self::from_files(root)?,
        };
        if let Some(pass) = &settings.password {
            crate::log::add_secret(pass);
        }
        Ok(settings)
    }

    /// Parses `mysql://user:pass@host:port/db` (the mysql crate's URL syntax, so
    /// `?socket=/path` works too).
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        let opts = Opts::from_url(url).map_err(|e| {
            // The URL holds the password: say what is wrong without repeating it.
            DbError::new(
                DbErrorKind::Settings,
                format!(
                    "{URL_ENV} is not a valid mysql://user:password@host:port/database URL ({})",
                    url_error_kind(&e)
                ),
            )
        })?;
        Ok(Self {
            host: Some(opts.get_ip_or_hostname().into_owned()),
            port: Some(opts.get_tcp_port()),
            socket: opts.get_socket().map(str::to_owned),
            user: opts.get_user().map(str::to_owned),
            password: opts.get_pass().map(str::to_owned),
            name: opts.get_db_name().map(str::to_owned),
            source: format!("env {URL_ENV}"),
        })
    }

    /// Reads `db.conf` then `billmgr.conf`: the first file that sets a key wins.
    pub fn from_files(root: &MgrRoot) -> Result<Self, DbError> {
        let mut settings = Self::default();
        let mut sources = Vec::new();
        for path in [root.db_conf(), root.billmgr_conf()] {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(DbError::new(
                        DbErrorKind::Settings,
                        format!("cannot read {}: {e}", path.display()),
                    ))
                }
            };
            sources.push(path.display().to_string());
            settings.fill_from_conf(&text, &path.display().to_string())?;
        }
        if sources.is_empty() {
            return Err(DbError::new(
                DbErrorKind::Settings,
                format!(
                    "no database settings: neither {} nor {} exists, and {URL_ENV} is not set",
                    root.db_conf().display(),
                    root.billmgr_conf().display()
                ),
            ));
        }
        settings.source = sources.join(", ");
        if settings.name.is_none() {
            return Err(DbError::new(
                DbErrorKind::Settings,
                format!(
                    "no DBName in {}: which database is BILLmanager's?",
                    settings.source
                ),
            ));
        }
        Ok(settings)
    }

    /// Takes the `DB*` keys of a `Key Value` file for the fields not set yet.
    fn fill_from_conf(&mut self, text: &str, file: &str) -> Result<(), DbError> {
        for crate::conf::Entry { line, key, value } in crate::conf::entries(text) {
            let slot = match key {
                "DBHost" => &mut self.host,
                "DBUser" => &mut self.user,
                "DBPassword" => &mut self.password,
                "DBName" => &mut self.name,
                "DBSocket" => &mut self.socket,
                "DBPort" => {
                    if self.port.is_none() && !value.is_empty() {
                        self.port = Some(value.parse().map_err(|_| {
                            DbError::new(
                                DbErrorKind::Settings,
                                format!(
                                    "{file} line {line}: DBPort '{value}' is not a port number"
                                ),
                            )
                        })?);
                    }
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value.to_owned());
            }
        }
        Ok(())
    }

    /// The Unix socket to connect through: `DBSocket`, else, when the host is
    /// `localhost` (or not set), the server's usual socket, as every MySQL client does
    /// (`localhost` means the socket, `127.0.0.1` means TCP).
    fn socket_path(&self) -> Option<String> {
        if self.socket.is_some() {
            return self.socket.clone();
        }
        let local = self.host.as_deref().is_none_or(|h| h == "localhost");
        local.then(|| default_socket(DEFAULT_SOCKETS)).flatten()
    }

    /// `user@host:port/db` or `user@socket/db`, never the password.
    pub fn describe(&self) -> String {
        let user = self.user.as_deref().unwrap_or("(no user)");
        let place = match (self.socket_path(), &self.host) {
            (Some(s), _) => s,
            (None, host) => format!(
                "{}:{}",
                host.as_deref().unwrap_or("localhost"),
                self.port.unwrap_or(3306)
            ),
        };
        let db = self.name.as_deref().unwrap_or("(no database)");
        format!("{user}@{place}/{db}")
    }

    /// `io_timeout` bounds every read and write on a connection (and the login): a
    /// server that hangs gives an error instead of holding the run. Row-lock waits give
    /// up after half of it, so a lock held elsewhere is a statement error, not a lost
    /// connection.
    fn opts(&self, pool_size: usize, io_timeout: Duration) -> OptsBuilder {
        let constraints = PoolConstraints::new(1, pool_size.max(1)).unwrap_or_default();
        let lock_wait = (io_timeout.as_secs() / 2).max(1);
        OptsBuilder::new()
            .ip_or_hostname(Some(
                self.host.clone().unwrap_or_else(|| "localhost".to_owned()),
            ))
            .tcp_port(self.port.unwrap_or(3306))
            .socket(self.socket_path())
            .user(self.user.clone())
            .pass(self.password.clone())
            .db_name(self.name.clone())
            .tcp_connect_timeout(Some(CONNECT_TIMEOUT.min(io_timeout)))
            .read_timeout(Some(io_timeout))
            .write_timeout(Some(io_timeout))
            // BILLmanager's tables hold UTF-8 text; timestamps compare in UTC.
            .init(vec![
                "SET NAMES utf8mb4".to_owned(),
                "SET time_zone = '+00:00'".to_owned(),
                format!("SET SESSION innodb_lock_wait_timeout = {lock_wait}"),
            ])
            .pool_opts(
                PoolOpts::new()
                    .with_constraints(constraints)
                    .with_reset_connection(false),
            )
    }

    /// Opens a pool of up to `size` connections, each read and write bounded by
    /// `io_timeout`; fails now, with a clear message, when the server is down, hangs or
    /// refuses us.
    pub fn connect(&self, size: usize, io_timeout: Duration) -> Result<Pool, DbError> {
        Pool::new(self.opts(size, io_timeout)).map_err(|e| DbError {
            kind: if is_timeout(&e) {
                DbErrorKind::Timeout
            } else {
                DbErrorKind::Connect
            },
            msg: format!(
                "cannot connect to the database {}: {}; {}",
                self.describe(),
                explain(&e),
                next_step(&e, &self.source)
            ),
            cause: Cause::new(e),
        })
    }
}

/// Where MySQL and MariaDB servers put their socket (Debian, Red Hat, the upstream
/// default), in the order clients look.
const DEFAULT_SOCKETS: &[&str] = &[
    "/run/mysqld/mysqld.sock",
    "/var/run/mysqld/mysqld.sock",
    "/var/lib/mysql/mysql.sock",
    "/tmp/mysql.sock",
];

/// The first of `candidates` that is a socket.
fn default_socket(candidates: &[&str]) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    candidates
        .iter()
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket()))
        .map(|p| (*p).to_owned())
}

/// What is wrong with a URL, without the URL itself (it holds the password).
fn url_error_kind(e: &mysql::UrlError) -> &'static str {
    match e {
        mysql::UrlError::ParseError(_) => "it does not parse as a URL",
        mysql::UrlError::UnsupportedScheme(_) => "the scheme must be mysql://",
        mysql::UrlError::FeatureRequired(..) => "it needs a feature this build lacks",
        mysql::UrlError::InvalidValue(..) => "a query parameter has an invalid value",
        mysql::UrlError::UnknownParameter(..) => "it has an unknown query parameter",
        mysql::UrlError::InvalidPoolConstraints { .. } => "its pool limits are invalid",
        mysql::UrlError::BadUrl => "it is malformed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_means_the_socket_and_an_address_means_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("mysqld.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let plain = dir.path().join("not-a-socket");
        std::fs::write(&plain, "").unwrap();
        let candidates = [plain.to_str().unwrap(), sock.to_str().unwrap()];
        assert_eq!(default_socket(&candidates).as_deref(), sock.to_str());
        assert_eq!(default_socket(&candidates[..1]), None);

        let tcp = DbSettings {
            host: Some("127.0.0.1".into()),
            ..DbSettings::default()
        };
        assert_eq!(tcp.socket_path(), None);
        let own = DbSettings {
            host: Some("localhost".into()),
            socket: Some("/srv/db.sock".into()),
            ..DbSettings::default()
        };
        assert_eq!(own.socket_path().as_deref(), Some("/srv/db.sock"));
    }

    #[test]
    fn connection_errors_are_sentences_with_the_next_step() {
        let refused = mysql::Error::MySqlError(mysql::MySqlError {
            state: "28000".into(),
            code: 1045,
            message: "Access denied for user 'billmgr'@'localhost'".into(),
        });
        let text = format!(
            "{}; {}",
            explain(&refused),
            next_step(&refused, "etc/x.conf")
        );
        assert_eq!(
            text,
            "the server answered error 1045: Access denied for user 'billmgr'@'localhost'; \
             check DBUser and DBPassword in etc/x.conf"
        );
        assert!(!text.contains("MySqlError"));
    }

    /// A hanging server and a refused statement are told apart, and the driver's error
    /// stays reachable as the cause.
    #[test]
    fn query_errors_carry_their_kind_and_cause() {
        let hung = mysql::Error::IoError(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            "Resource temporarily unavailable",
        ));
        let e = DbError::query("cannot claim row 7", hung);
        assert_eq!(e.kind, DbErrorKind::Timeout);
        assert!(e.to_string().starts_with("cannot claim row 7: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
        let refused = mysql::Error::MySqlError(mysql::MySqlError {
            state: "42S02".into(),
            code: 1146,
            message: "Table 'billmgr.notifytask' doesn't exist".into(),
        });
        let e = StatementError::new("cannot claim row 7", refused);
        assert_eq!(e.error.kind, DbErrorKind::Statement);
        assert!(!e.connection_lost);
    }

    #[test]
    fn db_conf_wins_and_billmgr_conf_fills_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        std::fs::create_dir_all(dir.path().join("etc/billmgr.conf.d")).unwrap();
        std::fs::write(
            root.db_conf(),
            "# BILLmanager\nDBHost db.local\nDBUser billmgr\nDBPassword s3cr3t pass\n",
        )
        .unwrap();
        std::fs::write(
            root.billmgr_conf(),
            "DBHost other\nDBName billmgr\nDBPort 3307\nLicense x\n",
        )
        .unwrap();
        let s = DbSettings::from_files(&root).unwrap();
        assert_eq!(s.host.as_deref(), Some("db.local"));
        assert_eq!(s.password.as_deref(), Some("s3cr3t pass"));
        assert_eq!(s.name.as_deref(), Some("billmgr"));
        assert_eq!(s.port, Some(3307));
        assert_eq!(s.describe(), "billmgr@db.local:3307/billmgr");
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }

    #[test]
    fn missing_files_or_name_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        assert!(DbSettings::from_files(&root)
            .unwrap_err()
            .to_string()
            .contains("no database settings"));
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(root.billmgr_conf(), "DBHost x\nDBPort nope\n").unwrap();
        assert!(DbSettings::from_files(&root)
            .unwrap_err()
            .to_string()
            .contains("DBPort 'nope'"));
        std::fs::write(root.billmgr_conf(), "DBHost x\n").unwrap();
        assert!(DbSettings::from_files(&root)
            .unwrap_err()
            .to_string()
            .contains("no DBName"));
    }

    #[test]
    fn url_errors_do_not_repeat_the_password() {
        let s = DbSettings::from_url("mysql://u:pw1@h:3310/billmgr").unwrap();
        assert_eq!(s.describe(), "u@h:3310/billmgr");
        assert_eq!(s.password.as_deref(), Some("pw1"));
        let e = DbSettings::from_url("postgres://u:hunter2@h/db").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(e.kind, DbErrorKind::Settings);
    }
}
