//! The rhai provider-script engine: loads a `gw<name>.rhai`, reads its metadata and
//! runs its command functions in a sandbox, with host helpers and HTTP through the host.

pub mod metadata;

pub use metadata::{Field, FieldKind, Metadata};

/// Reads a script's metadata without running any of its commands.
pub fn load_metadata(path: &std::path::Path) -> Result<Metadata, String> {
    Err(format!(
        "{}: the script engine is not built yet",
        path.display()
    ))
}
