//! `mgrnotify take-over` and `give-back`: a real BILLmanager already has its own
//! `notify/ntsms`, `gate/gwsmtp`, ... and `sync` never touches them. Taking a role over
//! moves the original aside, unchanged, to `etc/mgrnotify/taken-over/<folder>/<name>`
//! and links mgrnotify in its place; giving it back moves the original home again,
//! byte for byte (a rename keeps content, mode and times).

use super::CliError;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use crate::cli::say;
use crate::cli::sync::{is_our_link, LINK_TARGET};
use crate::roles::{self, Build, RoleSpec};
use crate::root::MgrRoot;

/// A role that can be taken over, with where it lives and where its original is kept.
struct Place {
    name: String,
    path: PathBuf,
    kept: PathBuf,
}

/// The role `name` (of the table, or a script gateway with a script) as a place.
fn place(root: &MgrRoot, table: &[RoleSpec], name: &str) -> Result<Place, CliError> {
    let spec = roles::lookup_in(table, name)
        .filter(|r| r.folder != roles::Folder::Sbin)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "'{name}' is not a role of mgrnotify: use {}",
                roles::known_names(table)
            ))
        })?;
    if spec.build == Build::Script && !root.script(name).is_file() {
        return Err(CliError::Refused(format!(
            "{name}: no script {}: add it first",
            root.script(name).display()
        )));
    }
    Ok(Place {
        name: name.to_owned(),
        path: root.role_path(spec.folder, name),
        kept: root.taken_over(spec.folder, name),
    })
}

/// The names in `args`: words, each possibly a comma-separated list.
fn names(args: &[String]) -> Vec<String> {
    args.iter()
        .flat_map(|a| a.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Takes over the named roles; false when one could not be.
pub fn take_over(root: &MgrRoot, table: &[RoleSpec], args: &[String]) -> Result<bool, CliError> {
    let names = names(args);
    if names.is_empty() {
        return Err(CliError::Usage(
            "take-over needs role names, e.g. `mgrnotify take-over ntsms,gwsmtp`".into(),
        ));
    }
    let places = names
        .iter()
        .map(|n| place(root, table, n))
        .collect::<Result<Vec<_>, _>>()?;
    for p in &places {
        if is_our_link(&p.path) {
            say!("{}: already mgrnotify's", p.name);
            continue;
        }
        if p.path.symlink_metadata().is_ok() {
            let dir = p
                .kept
                .parent()
                .ok_or_else(|| CliError::Refused("no folder for the kept original".into()))?;
            fs::create_dir_all(dir).map_err(|e| CliError::io("create", dir, e))?;
            if p.kept.symlink_metadata().is_ok() {
                // A BILLmanager update put its own back: the newer one is what to restore.
                say!(
                    "{}: replacing the kept original with the one now in place (an update put it back)",
                    p.name
                );
            }
            fs::rename(&p.path, &p.kept).map_err(|e| {
                let doing = format!("move {} to {}", p.path.display(), p.kept.display());
                CliError::doing(doing, e)
            })?;
            say!("kept {} as {}", p.path.display(), p.kept.display());
        }
        if let Some(dir) = p.path.parent() {
            fs::create_dir_all(dir).map_err(|e| CliError::io("create", dir, e))?;
        }
        symlink(LINK_TARGET, &p.path).map_err(|e| CliError::io("link", &p.path, e))?;
        say!("linked {} -> {LINK_TARGET}", p.path.display());
        builtin_xml(root, table, &p.name)?;
    }
    Ok(true)
}

/// Puts the kept originals of the named roles (or of all, with `--all`) back.
pub fn give_back(root: &MgrRoot, table: &[RoleSpec], args: &[String]) -> Result<bool, CliError> {
    let places = if args.iter().any(|a| a == "--all") {
        kept(root)
    } else {
        let names = names(args);
        if names.is_empty() {
            return Err(CliError::Usage(
                "give-back needs role names or --all".into(),
            ));
        }
        names
            .iter()
            .map(|n| place(root, table, n))
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut ok = true;
    for p in places {
        if p.kept.symlink_metadata().is_err() {
            say!("{}: nothing kept, nothing to give back", p.name);
            continue;
        }
        if p.path.symlink_metadata().is_ok() && !is_our_link(&p.path) {
            eprintln!(
                "{}: {} is not mgrnotify's any more (an update put its own back): left, \
                 and the older original stays in {}",
                p.name,
                p.path.display(),
                p.kept.display()
            );
            ok = false;
            continue;
        }
        if is_our_link(&p.path) {
            fs::remove_file(&p.path).map_err(|e| CliError::io("remove", &p.path, e))?;
        }
        fs::rename(&p.kept, &p.path).map_err(|e| {
            let doing = format!("move {} back to {}", p.kept.display(), p.path.display());
            CliError::doing(doing, e)
        })?;
        say!("restored {}", p.path.display());
        builtin_xml(root, table, &p.name)?;
    }
    for folder in [roles::Folder::Notify, roles::Folder::Gate] {
        let dir = root.taken_over(folder, "");
        let _ = fs::remove_dir(&dir);
    }
    let _ = fs::remove_dir(root.taken_over_dir());
    Ok(ok)
}

/// A built-in gateway's plugin XML follows whose module is in place (see
/// [`crate::cli::sync::sync_builtin_xml`]).
fn builtin_xml(root: &MgrRoot, table: &[RoleSpec], name: &str) -> Result<(), CliError> {
    match roles::lookup_in(table, name).map(|r| r.build) {
        Some(Build::Builtin(builtin)) => {
            crate::cli::sync::sync_builtin_xml(root, name, builtin).map(|_| ())
        }
        _ => Ok(()),
    }
}

/// Every kept original, whatever its name.
fn kept(root: &MgrRoot) -> Vec<Place> {
    let mut found = Vec::new();
    for folder in [roles::Folder::Notify, roles::Folder::Gate] {
        let dir = root.taken_over(folder, "");
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            found.push(Place {
                path: root.role_path(folder, &name),
                kept: entry.path(),
                name,
            });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Where the original of `name` was kept, when it was taken over.
pub fn kept_original(root: &MgrRoot, folder: roles::Folder, name: &str) -> Option<PathBuf> {
    let path = root.taken_over(folder, name);
    path.symlink_metadata().is_ok().then_some(path)
}
