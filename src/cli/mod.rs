//! `mgrnotify`, the operator's command: run any role by name, list roles and
//! providers, sync symlinks and plugin XML, test-send, lint a script.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::process::ExitCode;

use crate::roles::{self, Build, RoleSpec};
use crate::root::MgrRoot;

mod check;
mod doctor;
mod error;
pub use error::CliError;
mod list;
mod queue;
mod send;
pub mod sync;
mod takeover;

/// Prints a line on stdout, redacted (the tools show err_info, rendered notices and
/// errors). A reader that went away (`mgrnotify list | head -1`) ends the command
/// quietly; any other write error ends it with a message.
macro_rules! say {
    ($($arg:tt)*) => { $crate::cli::emit(&format!($($arg)*)) };
}
pub(crate) use say;

pub fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let line = crate::log::redact(line);
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("mgrnotify: cannot write to stdout: {e}");
            std::process::exit(1);
        }
        std::process::exit(0);
    }
}

/// The top-level usage, with the roles of `table`.
fn usage(table: &[RoleSpec]) -> String {
    let mut roles = String::new();
    for r in roles::linked(table) {
        let path = format!("{}/{}", r.folder.name(), r.name);
        roles.push_str(&format!("  {path:<28} {}\n", r.about));
    }
    roles.push_str(&format!(
        "  {:<28} {}\n",
        "gate/gw<name>", "a provider script"
    ));
    roles.push_str(&format!(
        "  {:<28} {}\n",
        "notify/nt<type>", "a notification type a gateway declares (contact: #{..})"
    ));
    format!(
        "\
Usage: mgrnotify <command> [args]

Commands:
  <role> --command CMD [...]   run a role as if started as it (see Roles below)
  list                         roles, providers and their script paths
  sync                         create the role symlinks, and gate/gw<name> symlinks and
                               plugin XML for every provider script; for each
                               notification type a gateway declares, its notify/
                               symlink, plugin XML and user-table addon file; remove
                               those of deleted scripts
  send gw<name> --to TO --text TEXT [--subject S] [--param k=v ...] [--params FILE]
       [--dry-run]             send one message through a provider script (gw<name>
                               or a .rhai file); --params names a file of parameters
                               (passwords belong there, not in argv)
  check FILE.rhai...           compile provider scripts and validate their metadata
  take-over ROLE[,ROLE...]     put mgrnotify in place of BILLmanager's own modules
                               (ntsms, gwsmtp, ...); the originals are kept
  give-back ROLE...|--all      put the kept originals back, byte for byte
  queue [--json]               what waits in the notifytask queue, per module, and
                               the failing rows: attempts, next try, permanent or
                               transient, err_info
  queue retry ID...|--failed   make failed rows ready at once
  stats [--reset]              what the queue did since counting began (sent, retried,
                               failed per kind and gateway; send time), in Prometheus
                               text format; --reset starts counting afresh
  doctor                       whose each module is, whether an update put one back,
                               whether the database answers, whether every gateway
                               row points at a module that exists
  --help, --version

Roles (folder/name under the mgr root):
{roles}
The mgr root is $MGR_ROOT, else the parent of the folder the command was started from
when that is sbin/, notify/ or gate/ (also when found on PATH), else /usr/local/mgr5.
Exit status: 0 done, 1 failed (the reason on stderr), 2 bad usage.
"
    )
}

/// Runs the CLI with its arguments (after argv[0]).
pub fn run(argv0: &OsStr, args: Vec<OsString>) -> ExitCode {
    let Some(first) = args.first().map(|a| a.to_string_lossy().into_owned()) else {
        eprint!("{}", usage(roles::ROLES));
        return ExitCode::from(2);
    };
    let rest = args[1..].to_vec();
    match first.as_str() {
        "--help" | "-h" | "help" => {
            emit(usage(roles::ROLES).trim_end());
            ExitCode::SUCCESS
        }
        "--version" | "-V" => {
            say!("mgrnotify {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        "list" | "sync" | "doctor" if !rest.is_empty() => {
            let help = rest.iter().any(|a| a == "--help" || a == "-h");
            if help {
                emit(usage(roles::ROLES).trim_end());
                return ExitCode::SUCCESS;
            }
            eprintln!(
                "mgrnotify {first}: takes no arguments\n\n{}",
                usage(roles::ROLES)
            );
            ExitCode::from(2)
        }
        "list" => report(
            list::report(&MgrRoot::discover(argv0), roles::ROLES).map(|text| {
                emit(text.trim_end());
                true
            }),
        ),
        "sync" => report(existing_root(argv0).and_then(|r| sync::run(&r, roles::ROLES))),
        "doctor" => report(existing_root(argv0).and_then(|r| doctor::run(&r, roles::ROLES))),
        "take-over" | "give-back" => {
            let words: Vec<String> = rest
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            report(existing_root(argv0).and_then(|root| {
                if first == "take-over" {
                    takeover::take_over(&root, roles::ROLES, &words)
                } else {
                    takeover::give_back(&root, roles::ROLES, &words)
                }
            }))
        }
        "queue" => report(existing_root(argv0).and_then(|r| queue::run(&r, &rest))),
        "stats" => report(existing_root(argv0).and_then(|r| stats(&r, &rest))),
        "send" => send::run(argv0, rest),
        "check" => check::run(rest),
        name => match roles::lookup(name) {
            Some(role) if role.build != Build::Cli => crate::run(argv0, name, role, rest),
            _ => {
                eprintln!(
                    "mgrnotify: unknown command or role '{name}'\n\n{}",
                    usage(roles::ROLES)
                );
                ExitCode::from(2)
            }
        },
    }
}

/// `mgrnotify stats [--reset]`.
fn stats(root: &MgrRoot, args: &[OsString]) -> Result<bool, CliError> {
    let file = crate::stats::state_file(root);
    let fail = |what: &'static str| {
        let file = &file;
        move |e: std::io::Error| CliError::io(what, file, e)
    };
    match args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>()[..] {
        [] => {
            emit(
                crate::stats::load(root)
                    .map_err(fail("read"))?
                    .to_prometheus()
                    .trim_end(),
            );
            Ok(true)
        }
        [ref a] if a == "--reset" => {
            crate::stats::reset(root).map_err(fail("reset"))?;
            say!("counting afresh from now");
            Ok(true)
        }
        _ => Err(CliError::Usage("usage: mgrnotify stats [--reset]".into())),
    }
}

/// The root the tools work on; they never make one up.
fn existing_root(argv0: &OsStr) -> Result<MgrRoot, CliError> {
    let root = MgrRoot::discover(argv0);
    if root.path().is_dir() {
        Ok(root)
    } else {
        Err(CliError::Refused(format!(
            "the mgr root {} does not exist: set MGR_ROOT, or run the mgrnotify in its sbin/",
            root.path().display()
        )))
    }
}

/// Exit status of a tool: 0 when it fully worked, 1 when it did not (it said why, on
/// stderr, or per item as it went).
fn report(result: Result<bool, CliError>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            crate::error::to_stderr("mgrnotify", &e);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Kind;
    use crate::roles::{Folder, ROLES};

    /// A role added to the table alone is dispatched, listed, linked by sync (and so by
    /// install.sh, which runs it) and named in --help.
    #[test]
    fn a_new_role_is_one_table_entry() {
        let mut table = ROLES.to_vec();
        table.push(RoleSpec {
            name: "ntprobe",
            folder: Folder::Notify,
            build: Build::Notify(Kind::Sms),
            about: "a role only this test has",
        });
        assert_eq!(
            roles::lookup_in(&table, "ntprobe").map(|r| r.name),
            Some("ntprobe")
        );
        assert_ne!(roles::lookup("ntprobe").map(|r| r.name), Some("ntprobe"));
        assert!(usage(&table).contains("notify/ntprobe"));
        assert!(!usage(ROLES).contains("ntprobe"));

        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        assert!(sync::run(&root, &table).unwrap());
        assert!(sync::is_our_link(
            &root.role_path(Folder::Notify, "ntprobe")
        ));
        let listing = list::report(&root, &table).unwrap();
        assert!(listing.contains("notify/ntprobe"), "{listing}");
        assert!(listing
            .lines()
            .any(|l| l.contains("ntprobe") && l.contains("installed")));
    }
}
