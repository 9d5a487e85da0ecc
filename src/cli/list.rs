//! `mgrnotify list`: the roles this binary plays and the provider scripts it has.

use std::fmt::Write;

use crate::cli::sync;
use crate::roles::{self, RoleSpec};
use crate::root::MgrRoot;

/// The listing, as text.
pub fn report(root: &MgrRoot, table: &[RoleSpec]) -> Result<String, String> {
    let mut out = String::new();
    macro_rules! say {
        ($($arg:tt)*) => { { let _ = writeln!(out, $($arg)*); } };
    }
    say!("mgr root: {}", root.path().display());
    say!("\nroles:");
    for role in roles::linked(table) {
        let link = root.role_path(role.folder, role.name);
        let path = format!("{}/{}", role.folder.name(), role.name);
        say!("  {:<12} {path:<18} {}", role.name, link_state(&link));
    }
    say!("\nproviders (scripts in {}):", root.scripts_dir().display());
    let scripts = sync::scripts(root, table).map_err(|e| format!("cannot read scripts: {e}"))?;
    if scripts.is_empty() {
        say!("  none");
    }
    for (role, path) in scripts {
        let link = root.gate_module(&role);
        match crate::script::load_metadata(&path) {
            Ok(meta) => say!(
                "  {:<12} {:<7} {:<24} {}  gate/{role} {}",
                role,
                meta.notify_module,
                meta.title_en,
                path.display(),
                link_state(&link)
            ),
            Err(e) => say!("  {:<12} ERROR   {}: {e}", role, path.display()),
        }
    }
    Ok(out)
}

fn link_state(link: &std::path::Path) -> &'static str {
    if sync::is_our_link(link) {
        "installed"
    } else if link.symlink_metadata().is_ok() {
        "present, not a link to mgrnotify"
    } else {
        "missing (run `mgrnotify sync` or install.sh)"
    }
}
