//! `mgrnotify list`: the roles this binary plays and the provider scripts it has.

use crate::cli::sync::{self, BUILTIN_GATEWAYS};
use crate::root::MgrRoot;

/// The roles that are not provider scripts, with their folder.
const BUILTIN_ROLES: [(&str, &str); 6] = [
    ("notify", "ntsms"),
    ("notify", "ntemail"),
    ("notify", "ntinternal"),
    ("gate", BUILTIN_GATEWAYS[0]),
    ("gate", BUILTIN_GATEWAYS[1]),
    ("gate", BUILTIN_GATEWAYS[2]),
];

pub fn run(root: &MgrRoot) -> Result<(), String> {
    println!("mgr root: {}", root.path().display());
    println!("\nroles:");
    for (dir, role) in BUILTIN_ROLES {
        let link = root.path().join(dir).join(role);
        let path = format!("{dir}/{role}");
        println!("  {role:<12} {path:<18} {}", link_state(&link));
    }
    println!("\nproviders (scripts in {}):", root.scripts_dir().display());
    let scripts = sync::scripts(root).map_err(|e| format!("cannot read scripts: {e}"))?;
    if scripts.is_empty() {
        println!("  none");
    }
    for (role, path) in scripts {
        let link = root.gate_module(&role);
        match crate::script::load_metadata(&path) {
            Ok(meta) => println!(
                "  {:<12} {:<7} {:<24} {}  gate/{role} {}",
                role,
                meta.notify_module,
                meta.title_en,
                path.display(),
                link_state(&link)
            ),
            Err(e) => println!("  {:<12} ERROR   {}: {e}", role, path.display()),
        }
    }
    Ok(())
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
