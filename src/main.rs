//! mgrnotify: one executable, many BILLmanager modules. The role is the name it was
//! started as (argv[0]), busybox-style; `mgrnotify <role> ...` does the same by hand.
//! The roles are the table in [`mgrnotify::roles`].

use std::ffi::OsString;
use std::process::ExitCode;

use mgrnotify::roles;

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = if args.is_empty() {
        OsString::from("mgrnotify")
    } else {
        args.remove(0)
    };
    let name = mgrnotify::role_name(&argv0);
    match roles::lookup(&name) {
        Some(role) => mgrnotify::run(&argv0, &name, role, args),
        None => {
            eprintln!(
                "mgrnotify: unknown role '{name}': start me as {}",
                roles::known_names(roles::ROLES)
            );
            ExitCode::from(2)
        }
    }
}
