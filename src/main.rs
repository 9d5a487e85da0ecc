//! mgrnotify: one executable, many BILLmanager modules. The role is the name it was
//! started as (argv[0]), busybox-style; `mgrnotify <role> ...` does the same by hand.

use std::ffi::OsString;
use std::process::ExitCode;

use mgrnotify::{cli, notify, Role};

/// The roles this binary answers to. Script-backed gateways (`gw<name>`) are every
/// other `gw` name that has a provider script.
fn role_of(name: &str) -> Option<Role> {
    Some(match name {
        "mgrnotify" => Role::Cli,
        "ntsms" => Role::Notify(notify::Kind::Sms),
        "ntemail" => Role::Notify(notify::Kind::Email),
        "ntinternal" => Role::Notify(notify::Kind::Internal),
        "gwsmtp" | "gwimap" | "gwpop3" => Role::BuiltinGateway(name.to_owned()),
        _ if name.starts_with("gw") && name.len() > 2 => Role::ScriptGateway(name.to_owned()),
        _ => return None,
    })
}

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = if args.is_empty() {
        OsString::from("mgrnotify")
    } else {
        args.remove(0)
    };
    let name = mgrnotify::role_name(&argv0);
    let Some(role) = role_of(&name) else {
        eprintln!(
            "mgrnotify: unknown role '{name}': start me as mgrnotify, ntsms, ntemail, \
             ntinternal, gwsmtp, gwimap, gwpop3 or gw<provider>"
        );
        return ExitCode::from(2);
    };
    match role {
        Role::Cli => cli::run(&argv0, args, role_of),
        other => mgrnotify::run_role(&argv0, &name, other, args),
    }
}
