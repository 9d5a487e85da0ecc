//! Where errors leave the process. Each layer has its own error type that carries its
//! kind ([`crate::db::DbError`], [`crate::queue::QueueError`], ...); their `Display`
//! is the operator's sentence as it is, secrets included. The functions here, the log
//! (`crate::log`) and err_info (`crate::queue::backoff`) are the only ways out, and
//! each redacts every registered secret, so no error type has to.

use std::error::Error;
use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;

use crate::xml;

/// The lower-level error an error wraps, for [`Error::source`]. Two errors are equal
/// when their kinds and sentences are: causes are not compared.
#[derive(Clone, Default)]
pub struct Cause(Option<Arc<dyn Error + Send + Sync + 'static>>);

impl Cause {
    pub fn new(e: impl Error + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(e)))
    }

    pub fn none() -> Self {
        Self(None)
    }

    pub fn get(&self) -> Option<&(dyn Error + 'static)> {
        self.0.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl PartialEq for Cause {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Cause {}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(e) => write!(f, "Cause({e:?})"),
            None => f.write_str("Cause(none)"),
        }
    }
}

/// An error as BILLmanager shows it: `<error type=".." object=".."><msg>..`.
pub trait BillmgrError: fmt::Display {
    /// BILLmanager's error type: `xml`, `missed`, `value`, `unknown`, `gateway`, ...
    fn error_type(&self) -> &str;
    /// What the error is about (a parameter, a role, a provider); may be empty.
    fn object(&self) -> &str;
    /// The sentence in `<msg>`.
    fn message(&self) -> String {
        self.to_string()
    }
}

/// The error XML of `e`, redacted.
pub fn to_xml(e: &dyn BillmgrError) -> String {
    xml::error_doc(e.error_type(), e.object(), &e.message())
}

/// Says `prefix: error` on stderr, redacted.
pub fn to_stderr(prefix: &str, e: &(impl fmt::Display + ?Sized)) {
    eprintln!("{prefix}: {}", crate::log::redact(&e.to_string()));
}

/// A module's failure, the same for every role: logged after `context`, said on
/// stderr, and as error XML on stdout for BILLmanager (about the role when the error
/// names nothing else); exits with `code`.
pub fn fail(role: &str, context: &str, e: &dyn BillmgrError, code: ExitCode) -> ExitCode {
    crate::error!("{context}{e}");
    to_stderr(role, &e.message());
    let object = match e.object() {
        "" => role,
        object => object,
    };
    print!("{}", xml::error_doc(e.error_type(), object, &e.message()));
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::GatewayError;

    /// An error keeps its secret in `Display`; the exits mask it.
    #[test]
    fn redaction_happens_where_errors_leave() {
        crate::log::add_secret("Err0rTestS3cret");
        let e = GatewayError::value("login", "bad login Err0rTestS3cret");
        assert!(e.to_string().contains("Err0rTestS3cret"));
        let doc = to_xml(&e);
        assert!(!doc.contains("Err0rTestS3cret"), "{doc}");
        assert!(doc.contains(r#"type="value""#), "{doc}");
        assert!(doc.contains(r#"object="login""#), "{doc}");
    }
}
