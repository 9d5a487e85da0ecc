//! `mgrnotify`, the operator's command: run any role by name, list roles and
//! providers, sync symlinks and plugin XML, test-send, lint a script.

use std::ffi::{OsStr, OsString};
use std::process::ExitCode;

use crate::root::MgrRoot;
use crate::Role;

mod check;
mod list;
mod send;
pub mod sync;

const USAGE: &str = "\
Usage: mgrnotify <command> [args]

Commands:
  <role> --command CMD [...]   run a role as if started as it (ntsms, gwepochta, ...)
  list                         roles, providers and their script paths
  sync                         create gate/gw<name> symlinks and plugin XML for every
                               provider script, remove those of deleted scripts
  send gw<name> --to PHONE --text TEXT [--subject TEXT] [--params FILE]
       [--param k=v ...] [--dry-run]
                               send one message through a provider script
                               (gw<name> or a .rhai file); passwords belong in
                               the --params file, not in argv
  check FILE.rhai              compile a provider script and validate its metadata
  --help, --version

The mgr root is $MGR_ROOT, else the parent of sbin/, else /usr/local/mgr5.
";

/// Runs the CLI. `role_of` is main's role table, for `mgrnotify <role> ...`.
pub fn run(argv0: &OsStr, args: Vec<OsString>, role_of: fn(&str) -> Option<Role>) -> ExitCode {
    let Some(first) = args.first().map(|a| a.to_string_lossy().into_owned()) else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = args[1..].to_vec();
    match first.as_str() {
        "--help" | "-h" | "help" => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        "--version" | "-V" => {
            println!("mgrnotify {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        "list" | "sync" if !rest.is_empty() => {
            let help = rest.iter().any(|a| a == "--help" || a == "-h");
            if help {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("mgrnotify {first}: takes no arguments\n\n{USAGE}");
            ExitCode::from(2)
        }
        "list" => report(list::run(&MgrRoot::discover(argv0)).map(|()| true)),
        "sync" => report(sync::run(&MgrRoot::discover(argv0))),
        "send" => send::run(argv0, rest),
        "check" => check::run(rest),
        name => match role_of(name) {
            Some(Role::Cli) | None => {
                eprintln!("mgrnotify: unknown command or role '{name}'\n\n{USAGE}");
                ExitCode::from(2)
            }
            Some(role) => crate::run_role(argv0, name, role, rest),
        },
    }
}

/// Exit status of a tool: 0 when it fully worked, 1 when it partly did (it said what),
/// 2 when it could not run (the message goes to stderr).
fn report(result: Result<bool, String>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("mgrnotify: {e}");
            ExitCode::from(2)
        }
    }
}
