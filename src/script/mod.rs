//! The rhai provider-script engine: loads a `gw<name>.rhai`, reads its metadata and
//! runs its command functions in a sandbox, with host helpers and HTTP through the host.

pub mod metadata;

pub use metadata::{Field, FieldKind, Metadata};
