//! `mgrnotify doctor`: what an operator needs to know before trusting a real install.
//! Whose each role is (mgrnotify's, BILLmanager's, a third party's), whether a
//! BILLmanager update put its own module back over one mgrnotify took over, whether
//! the database answers with db.conf, and whether every gateway row points at a module
//! that exists.

use super::CliError;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::cli::say;
use crate::cli::sync::is_our_link;
use crate::cli::takeover::kept_original;
use crate::db::{schema, DbSettings};
use crate::roles::{self, Build, Folder, RoleSpec};
use crate::root::MgrRoot;

/// Prints the report; false when anything needs the operator.
pub fn run(root: &MgrRoot, table: &[RoleSpec]) -> Result<bool, CliError> {
    say!("mgr root: {}", root.path().display());
    let mut ok = true;

    say!("\nroles:");
    for role in roles::linked(table).filter(|r| r.build != Build::Script) {
        ok &= report_role(root, role.folder, role.name, true);
    }
    let scripts = crate::script::installed(root, table)
        .map_err(|e| CliError::io("read", &root.scripts_dir(), e))?;
    for (name, _) in &scripts {
        ok &= report_role(root, Folder::Gate, name, true);
    }
    for folder in [Folder::Notify, Folder::Gate] {
        let mut others: Vec<String> = fs::read_dir(root.path().join(folder.name()))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !table.iter().any(|r| r.name == n) && !scripts.iter().any(|(s, _)| s == n))
            .collect();
        others.sort();
        for name in others {
            ok &= report_role(root, folder, &name, false);
        }
    }

    say!("\ndatabase:");
    let settings = match DbSettings::load(root) {
        Ok(s) => s,
        Err(e) => {
            say!("  PROBLEM {e}");
            return Ok(false);
        }
    };
    let mut conn = match settings
        .connect(1, crate::db::TOOL_TIMEOUT)
        .and_then(|pool| {
            pool.get_conn()
                .map_err(|e| crate::db::DbError::query("cannot get a connection", e))
        }) {
        Ok(c) => c,
        Err(e) => {
            say!("  PROBLEM {e}");
            return Ok(false);
        }
    };
    let version = schema::server_version(&mut conn)?;
    say!("  reachable: {} (server {version})", settings.describe());
    if let Err(e) = schema::check_tables(&mut conn) {
        say!("  PROBLEM {e}");
        return Ok(false);
    }
    say!("  tables notifytask and gateway: as expected");

    say!("\ngateway rows:");
    let rows = schema::all_gateways(&mut conn)?;
    if rows.is_empty() {
        say!("  none");
    }
    for row in rows {
        let get = |n: &str| row.columns.get(n).unwrap_or("").to_owned();
        let (module, notify) = (row.module.clone(), get("notify_module"));
        let mut problems = Vec::new();
        if !is_program(&root.gate_module(&module)) || !roles::is_module_name(&module) {
            problems.push(format!("gate/{module} does not exist or is not executable"));
        }
        if !is_program(&root.path().join("notify").join(&notify)) || !roles::is_module_name(&notify)
        {
            problems.push(format!(
                "notify/{notify} does not exist or is not executable"
            ));
        }
        let state = format!(
            "active {}, {}",
            get("active"),
            if row.is_active_outgoing() {
                "outgoing"
            } else if row.is_active_ingoing() {
                "ingoing"
            } else {
                "not used"
            }
        );
        if problems.is_empty() {
            say!(
                "  ok      #{} {:<20} {module} for {notify}, {state}",
                row.id,
                get("name")
            );
        } else {
            ok = false;
            say!(
                "  PROBLEM #{} {:<20} {module} for {notify}, {state}: {}",
                row.id,
                get("name"),
                problems.join("; ")
            );
        }
    }
    Ok(ok)
}

/// One line about the module at `folder/name`; false when it needs the operator.
fn report_role(root: &MgrRoot, folder: Folder, name: &str, ours_by_name: bool) -> bool {
    let path = root.role_path(folder, name);
    let rel = format!("{}/{name}", folder.name());
    let kept = kept_original(root, folder, name);
    let present = path.symlink_metadata().is_ok();
    let (fine, whose) = if is_our_link(&path) {
        let taken = match &kept {
            Some(k) => format!(" (took over; the original is kept in {})", k.display()),
            None => String::new(),
        };
        (true, format!("mgrnotify's{taken}"))
    } else if present && kept.is_some() {
        (
            false,
            format!(
                "BILLmanager's again: an update put its own back over mgrnotify's; \
                 `mgrnotify take-over {name}` to use mgrnotify's"
            ),
        )
    } else if present && ours_by_name {
        (
            true,
            format!("BILLmanager's (`mgrnotify take-over {name}` to use mgrnotify's)"),
        )
    } else if present {
        (true, "a third party's".to_owned())
    } else {
        (false, "missing: run `mgrnotify sync`".to_owned())
    };
    let mark = if fine { "ok     " } else { "PROBLEM" };
    say!("  {mark} {name:<12} {rel:<18} {whose}");
    fine
}

fn is_program(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
