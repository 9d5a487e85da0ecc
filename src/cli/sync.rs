//! `mgrnotify sync`: makes BILLmanager see every provider script — a `gate/gw<name>`
//! symlink and `etc/xml/billmgr_mod_gw<name>.xml` each — and removes those of
//! scripts that are gone. Only files it made itself are ever removed.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::plugin;
use crate::root::MgrRoot;

/// Where role symlinks point, relative to `notify/` and `gate/`.
pub const LINK_TARGET: &str = "../sbin/mgrnotify";

/// Gateway roles built into the binary: their symlinks are install.sh's, not sync's.
pub const BUILTIN_GATEWAYS: [&str; 3] = ["gwsmtp", "gwimap", "gwpop3"];

/// The provider scripts in `etc/mgrnotify/scripts/`, as (role, path), sorted.
pub fn scripts(root: &MgrRoot) -> io::Result<Vec<(String, PathBuf)>> {
    let dir = root.scripts_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(role) = name.strip_suffix(".rhai").filter(|r| is_script_role(r)) {
            found.push((role.to_owned(), entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// `gw` and then lower-case letters, digits or `_`: a name BILLmanager accepts as a
/// module and that cannot escape `gate/`.
pub fn is_script_role(role: &str) -> bool {
    role.strip_prefix("gw").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }) && !BUILTIN_GATEWAYS.contains(&role)
}

/// Whether `path` is a role symlink this project made (it points to the binary).
pub fn is_our_link(path: &Path) -> bool {
    fs::read_link(path).is_ok_and(|t| t == Path::new(LINK_TARGET))
}

/// Whether `path` is a plugin XML that `sync` wrote.
pub fn is_our_plugin_xml(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|t| t.lines().take(3).any(|l| l.starts_with(plugin::MARKER)))
}

/// Runs the sync, printing one line per change; false when a script had errors.
pub fn run(root: &MgrRoot) -> Result<bool, String> {
    let scripts =
        scripts(root).map_err(|e| format!("cannot read {}: {e}", root.scripts_dir().display()))?;
    let mut ok = true;
    for dir in [root.gate_dir(), root.xml_dir()] {
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    for (role, path) in &scripts {
        let meta = match crate::script::load_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                // Its earlier XML and symlink stay: a typo must not unplug a gateway.
                eprintln!("{role}: skipped: {e}");
                ok = false;
                continue;
            }
        };
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let xml = plugin::plugin_xml(role, &format!("etc/mgrnotify/scripts/{file}"), &meta);
        let xml_path = root.plugin_xml(role);
        if fs::read_to_string(&xml_path).ok().as_deref() != Some(xml.as_str()) {
            if xml_path.exists() && !is_our_plugin_xml(&xml_path) {
                eprintln!(
                    "{role}: {} exists and was not written by mgrnotify: left alone",
                    xml_path.display()
                );
                ok = false;
            } else {
                write_atomic(&xml_path, &xml)
                    .map_err(|e| format!("cannot write {}: {e}", xml_path.display()))?;
                println!("wrote {}", xml_path.display());
            }
        }
        let link = root.gate_module(role);
        match link.symlink_metadata() {
            Err(_) => {
                symlink(LINK_TARGET, &link)
                    .map_err(|e| format!("cannot create {}: {e}", link.display()))?;
                println!("linked {} -> {LINK_TARGET}", link.display());
            }
            Ok(_) if !is_our_link(&link) => {
                eprintln!(
                    "{role}: {} exists and is not mgrnotify's: left alone",
                    link.display()
                );
                ok = false;
            }
            Ok(_) => {}
        }
    }
    let has_script = |role: &str| scripts.iter().any(|(r, _)| r == role);
    for entry in fs::read_dir(root.gate_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let role = entry.file_name().to_string_lossy().into_owned();
        if is_script_role(&role) && !has_script(&role) && is_our_link(&entry.path()) {
            fs::remove_file(entry.path())
                .map_err(|e| format!("cannot remove {}: {e}", entry.path().display()))?;
            println!("removed {}", entry.path().display());
        }
    }
    for entry in fs::read_dir(root.xml_dir()).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(role) = name
            .strip_prefix("billmgr_mod_")
            .and_then(|n| n.strip_suffix(".xml"))
        else {
            continue;
        };
        if is_script_role(role) && !has_script(role) && is_our_plugin_xml(&entry.path()) {
            fs::remove_file(entry.path())
                .map_err(|e| format!("cannot remove {}: {e}", entry.path().display()))?;
            println!("removed {}", entry.path().display());
        }
    }
    Ok(ok)
}

/// BILLmanager may read the XML at any moment: never show it a half-written file.
fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("xml.tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}
