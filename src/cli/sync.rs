//! `mgrnotify sync`: lays a symlink for every role of the table (with the plugin XML
//! of the built-in gateways), and makes BILLmanager see every provider script — a
//! `gate/gw<name>` symlink and `etc/xml/billmgr_mod_gw<name>.xml` each — and removes
//! those of scripts that are gone. Only files it made itself are ever removed; a file of someone else's where a
//! link belongs is left alone (see `mgrnotify take-over`).

use super::CliError;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::cli::say;
use crate::gateway::Builtin;
use crate::notify::declared;
use crate::plugin;
use crate::roles::{self, Build, Folder, RoleSpec};
use crate::root::MgrRoot;
use crate::script::Contact;

/// Where role symlinks point, relative to `notify/` and `gate/`.
pub const LINK_TARGET: &str = "../sbin/mgrnotify";

use crate::script::installed as scripts;
use crate::script::is_script_role;

/// Whether `path` is a role symlink this project made (it points to the binary).
pub fn is_our_link(path: &Path) -> bool {
    fs::read_link(path).is_ok_and(|t| t == Path::new(LINK_TARGET))
}

/// Whether `path` is a plugin XML that `sync` wrote.
pub fn is_our_plugin_xml(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|t| t.lines().take(3).any(|l| l.starts_with(plugin::MARKER)))
}

/// Runs the sync, printing one line per change; false when a script had errors or a
/// role's place is taken by a file that is not ours.
pub fn run(root: &MgrRoot, table: &[RoleSpec]) -> Result<bool, CliError> {
    let scripts = scripts(root, table).map_err(|e| CliError::io("read", &root.scripts_dir(), e))?;
    let mut ok = true;
    for dir in [root.notify_dir(), root.gate_dir(), root.xml_dir()] {
        fs::create_dir_all(&dir).map_err(|e| CliError::io("create", &dir, e))?;
    }
    for role in roles::linked(table).filter(|r| r.build != Build::Script) {
        ok &= ensure_link(role.name, &root.role_path(role.folder, role.name))?;
        if let Build::Builtin(builtin) = role.build {
            ok &= sync_builtin_xml(root, role.name, builtin)?;
        }
    }
    let mut loaded: Vec<(String, crate::script::Metadata)> = Vec::new();
    for (role, path) in &scripts {
        let meta = match crate::script::load_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                // Its earlier XML and symlink stay: a typo must not unplug a gateway.
                crate::error::to_stderr(&format!("{role}: skipped"), &e);
                ok = false;
                continue;
            }
        };
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let xml = plugin::plugin_xml(role, &format!("etc/mgrnotify/scripts/{file}"), &meta);
        ok &= write_plugin_xml(root, role, &xml)?;
        ok &= ensure_link(role, &root.gate_module(role))?;
        loaded.push((role.clone(), meta));
    }
    let all_loaded = loaded.len() == scripts.len();
    ok &= sync_declared_types(root, table, &loaded, all_loaded)?;
    let has_script = |role: &str| scripts.iter().any(|(r, _)| r == role);
    for entry in fs::read_dir(root.gate_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let role = entry.file_name().to_string_lossy().into_owned();
        if is_script_role(&role, table) && !has_script(&role) && is_our_link(&entry.path()) {
            fs::remove_file(entry.path()).map_err(|e| CliError::io("remove", &entry.path(), e))?;
            say!("removed {}", entry.path().display());
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
        if is_script_role(role, table) && !has_script(role) && is_our_plugin_xml(&entry.path()) {
            fs::remove_file(entry.path()).map_err(|e| CliError::io("remove", &entry.path(), e))?;
            say!("removed {}", entry.path().display());
        }
    }
    Ok(ok)
}

/// Makes each notification type the gateways declare: its `notify/` link, its plugin
/// XML (the contact field on the user form) and its user-table addon file. Removes
/// the link and XML of types no longer declared, unless a script could not be read
/// (`all_loaded` false: its type stays). The addon file always stays: BILLmanager
/// would drop the column, and the customers' addresses with it.
fn sync_declared_types(
    root: &MgrRoot,
    table: &[RoleSpec],
    scripts: &[(String, crate::script::Metadata)],
    all_loaded: bool,
) -> Result<bool, CliError> {
    let (declared, problems) = declared::collect(
        declared::builtin_declarers(table).chain(scripts.iter().map(|(r, m)| (r.as_str(), m))),
    );
    let mut ok = problems.is_empty();
    for p in problems {
        eprintln!("{p}");
    }
    for d in &declared {
        ok &= ensure_link(&d.role, &root.role_path(Folder::Notify, &d.role))?;
        let xml = plugin::type_plugin_xml(&d.role, &d.declared_by, &d.contact);
        ok &= write_plugin_xml(root, &d.role, &xml)?;
        ok &= write_user_addon(root, &d.role, &d.contact)?;
    }
    if !all_loaded {
        return Ok(ok);
    }
    let is_stale = |role: &str| {
        roles::is_declared_name(role)
            && !table.iter().any(|r| r.name == role)
            && !declared.iter().any(|d| d.role == role)
    };
    for entry in fs::read_dir(root.notify_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let role = entry.file_name().to_string_lossy().into_owned();
        if is_stale(&role) && is_our_link(&entry.path()) {
            remove(&entry.path())?;
        }
    }
    for role in declared_xml_roles(root) {
        let path = root.plugin_xml(&role);
        if is_stale(&role) && is_our_plugin_xml(&path) {
            remove(&path)?;
        }
    }
    Ok(ok)
}

/// The `nt<name>` of every `billmgr_mod_nt<name>.xml`.
fn declared_xml_roles(root: &MgrRoot) -> Vec<String> {
    fs::read_dir(root.xml_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let role = name.strip_prefix("billmgr_mod_")?.strip_suffix(".xml")?;
            roles::is_declared_name(role).then(|| role.to_owned())
        })
        .collect()
}

fn remove(path: &Path) -> Result<(), CliError> {
    fs::remove_file(path).map_err(|e| CliError::io("remove", path, e))?;
    say!("removed {}", path.display());
    Ok(())
}

/// Writes the contact's addon file when missing or one of ours with another size;
/// false when a file of someone else's is there.
fn write_user_addon(root: &MgrRoot, role: &str, contact: &Contact) -> Result<bool, CliError> {
    let path = root.user_addon(&contact.field);
    let text = plugin::user_addon(contact);
    match fs::read_to_string(&path) {
        Ok(old) if old == text => return Ok(true),
        Ok(old) if !plugin::is_user_addon(&old) => {
            eprintln!(
                "{role}: {} exists and is not a string column mgrnotify would write: left alone",
                path.display()
            );
            return Ok(false);
        }
        _ => {}
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| CliError::io("create", dir, e))?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(|e| CliError::io("write", &path, e))?;
    say!("wrote {}", path.display());
    Ok(true)
}

/// Writes `role`'s plugin XML when it differs; false when the file is someone else's.
fn write_plugin_xml(root: &MgrRoot, role: &str, xml: &str) -> Result<bool, CliError> {
    let xml_path = root.plugin_xml(role);
    if fs::read_to_string(&xml_path).ok().as_deref() == Some(xml) {
        return Ok(true);
    }
    if xml_path.exists() && !is_our_plugin_xml(&xml_path) {
        eprintln!(
            "{role}: {} exists and was not written by mgrnotify: left alone",
            xml_path.display()
        );
        return Ok(false);
    }
    write_atomic(&xml_path, xml).map_err(|e| CliError::io("write", &xml_path, e))?;
    say!("wrote {}", xml_path.display());
    Ok(true)
}

/// A built-in gateway's plugin XML belongs with its `gate/` link: written while the
/// link is mgrnotify's, removed (when it is ours) while BILLmanager's own module of
/// that name is in place, whose form it would misdescribe.
pub fn sync_builtin_xml(root: &MgrRoot, role: &str, builtin: Builtin) -> Result<bool, CliError> {
    if is_our_link(&root.gate_module(role)) {
        return write_plugin_xml(
            root,
            role,
            &plugin::builtin_plugin_xml(role, builtin.metadata()),
        );
    }
    let xml_path = root.plugin_xml(role);
    if is_our_plugin_xml(&xml_path) {
        fs::remove_file(&xml_path).map_err(|e| CliError::io("remove", &xml_path, e))?;
        say!("removed {}", xml_path.display());
    }
    Ok(true)
}

/// Links `link` to the binary unless something is there; false when that something is
/// not ours.
fn ensure_link(role: &str, link: &Path) -> Result<bool, CliError> {
    match link.symlink_metadata() {
        Err(_) => {
            symlink(LINK_TARGET, link).map_err(|e| CliError::io("create", link, e))?;
            say!("linked {} -> {LINK_TARGET}", link.display());
            Ok(true)
        }
        Ok(_) if !is_our_link(link) => {
            eprintln!(
                "{role}: {} exists and is not mgrnotify's: left alone \
                 (`mgrnotify take-over {role}` puts mgrnotify's in its place)",
                link.display()
            );
            Ok(false)
        }
        Ok(_) => Ok(true),
    }
}

/// BILLmanager may read the XML at any moment: never show it a half-written file.
fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    crate::files::write_atomically(path, text.as_bytes(), crate::files::Access::Shared)
}
