//! `mgrnotify list`: the roles this binary plays and the provider scripts it has.

use super::CliError;
use std::fmt::Write;

use crate::cli::sync;
use crate::roles::{self, RoleSpec};
use crate::root::MgrRoot;

/// The listing, as text.
pub fn report(root: &MgrRoot, table: &[RoleSpec]) -> Result<String, CliError> {
    let mut out = String::new();
    macro_rules! say {
        ($($arg:tt)*) => { { let _ = writeln!(out, $($arg)*); } };
    }
    say!("mgr root: {}", root.path().display());
    let scripts = crate::script::installed(root, table)
        .map_err(|e| CliError::io("read", &root.scripts_dir(), e))?;
    // One name column for roles and providers, as wide as the longest name.
    let width = roles::linked(table)
        .map(|r| r.name.len())
        .chain(scripts.iter().map(|(r, _)| r.len()))
        .max()
        .unwrap_or(0);
    say!("\nroles:");
    for role in roles::linked(table) {
        let link = root.role_path(role.folder, role.name);
        let path = format!("{}/{}", role.folder.name(), role.name);
        say!("  {:<width$}  {path:<18} {}", role.name, link_state(&link));
    }
    say!("\nproviders (scripts in {}):", root.scripts_dir().display());
    if scripts.is_empty() {
        say!("  none");
    }
    let loaded: Vec<_> = scripts
        .iter()
        .map(|(role, path)| (role, path, crate::script::load_metadata(path)))
        .collect();
    let title_width = loaded
        .iter()
        .filter_map(|(_, _, m)| m.as_ref().ok().map(|m| m.title_en.chars().count()))
        .max()
        .unwrap_or(0);
    let mut loaded_ok = Vec::new();
    for (role, path, meta) in loaded {
        let link = root.gate_module(role);
        match meta {
            Ok(meta) => {
                say!(
                    "  {role:<width$}  {:<8} {:<title_width$}  gate/{role} {}",
                    meta.notify_module,
                    meta.title_en,
                    link_state(&link)
                );
                loaded_ok.push((role.clone(), meta));
            }
            Err(e) => say!("  {role:<width$}  ERROR    {}: {e}", path.display()),
        }
    }
    say!("\nnotification types gateways declare:");
    let (declared, _) = crate::notify::declared::collect(
        crate::notify::declared::builtin_declarers(table)
            .chain(loaded_ok.iter().map(|(r, m)| (r.as_str(), m))),
    );
    if declared.is_empty() {
        say!("  none");
    }
    for d in declared {
        let link = root.role_path(roles::Folder::Notify, &d.role);
        say!(
            "  {:<width$}  contact '{}', declared by {}  notify/{} {}",
            d.role,
            d.contact.field,
            d.declared_by,
            d.role,
            link_state(&link)
        );
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
