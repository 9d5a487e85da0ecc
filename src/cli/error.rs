//! Why a tool could not do its work: said on stderr (redacted there), exit 1.

use std::fmt;
use std::io;
use std::path::Path;

use crate::db::DbError;
use crate::gateway::GatewayError;
use crate::queue::config::ConfigError;

#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong; the text says what is expected.
    Usage(String),
    /// A file or folder could not be read, written, moved or linked.
    Io {
        /// What was being done, with the path: `read /usr/local/mgr5/etc/...`.
        doing: String,
        error: io::Error,
    },
    /// Something the command names is not there or not usable (a root, a row, a
    /// script, a parameter file).
    Refused(String),
    Db(DbError),
    Config(ConfigError),
    Gateway(GatewayError),
}

impl CliError {
    /// `cannot {what} {path}: {error}`.
    pub fn io(what: &str, path: &Path, error: io::Error) -> Self {
        Self::doing(format!("{what} {}", path.display()), error)
    }

    /// `cannot {doing}: {error}`.
    pub fn doing(doing: String, error: io::Error) -> Self {
        Self::Io { doing, error }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(text) | CliError::Refused(text) => f.write_str(text),
            CliError::Io { doing, error } => write!(f, "cannot {doing}: {error}"),
            CliError::Db(e) => e.fmt(f),
            CliError::Config(e) => e.fmt(f),
            CliError::Gateway(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Usage(_) | CliError::Refused(_) => None,
            CliError::Io { error, .. } => Some(error),
            CliError::Db(e) => Some(e),
            CliError::Config(e) => Some(e),
            CliError::Gateway(e) => Some(e),
        }
    }
}

impl From<DbError> for CliError {
    fn from(e: DbError) -> Self {
        Self::Db(e)
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl From<GatewayError> for CliError {
    fn from(e: GatewayError) -> Self {
        Self::Gateway(e)
    }
}
