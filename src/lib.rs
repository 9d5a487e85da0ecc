//! mgrnotify: BILLmanager 5 notification and gateway modules in one executable.
//!
//! Layers, each behind a narrow interface:
//! - [`gateway`]: the gateway module protocol, the script-backed gateways and the
//!   built-in ones; [`mail`]: building mails and sending them over SMTP;
//! - [`notify`]: the notification module protocol and the notification roles;
//! - [`script`]: the rhai provider-script engine; [`http`]: HTTP for scripts;
//! - [`template`]: rendering notices; [`notice`]: BILLmanager's notification file;
//! - [`telegram`]: the Telegram channel (Bot API, chat links, polling);
//! - [`queue`]: the notifytask queue; [`db`]: BILLmanager's database; [`stats`]: what
//!   the queue did;
//! - [`inbox`]: incoming mail into tickets; [`tickets`]: incoming messages into
//!   support tickets (mgrctl);
//! - [`xmpp`]: the XMPP channel (sessions, the receiver of a bot account); [`tls`]:
//!   what the TLS clients share;
//! - [`roles`]: the one table of roles; [`root`], [`log`], [`xml`], [`files`]: the install
//!   layout, logging with redaction, the bounded XML parser and the writer, bounded
//!   reads of files named by input, files written whole, and locks;
//! - [`error`](mod@error): where every layer's typed error leaves the process (log, stderr,
//!   BILLmanager's error XML), redacted there and nowhere else;
//! - [`cli`]: the operator's `mgrnotify` command.

pub mod cli;
pub mod conf;
pub mod db;
pub mod error;
pub mod files;
pub mod gateway;
pub mod http;
pub mod inbox;
pub mod log;
pub mod mail;
pub mod notice;
pub mod notify;
pub mod plugin;
pub mod queue;
pub mod roles;
pub mod root;
pub mod script;
pub mod stats;
pub mod telegram;
pub mod template;
pub mod tickets;
pub mod tls;
pub mod xml;
pub mod xmpp;

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::ExitCode;

use argh::FromArgs;

use crate::roles::{Build, RoleSpec};
use crate::root::MgrRoot;

/// Every allocation is counted per thread, for the script sandbox's memory limit.
#[global_allocator]
static ALLOCATOR: script::memory::CountingAllocator = script::memory::CountingAllocator;

/// The role name in argv[0]: its file name.
pub fn role_name(argv0: &OsStr) -> String {
    Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs a notification module: BILLmanager starts it with one `--command`.
#[derive(FromArgs)]
struct NotifyArgs {
    /// the command to run: one of the commands below
    #[argh(option)]
    command: Option<String>,
    /// for getmessage: the id of the gateway to fetch from, or `all`
    #[argh(option)]
    gate: Option<String>,
    /// print the version and exit
    #[argh(switch)]
    version: bool,
}

/// Runs a gateway module: BILLmanager starts it with one `--command` and XML on stdin.
#[derive(FromArgs)]
struct GatewayArgs {
    /// the command to run: one of the commands below
    #[argh(option)]
    command: Option<String>,
    /// print the version and exit
    #[argh(switch)]
    version: bool,
}

/// Parses `args` with argh. `--help` has been answered (exit 0) and a usage error
/// reported on stderr (exit 2) when it returns `Err`, with the usage text.
pub fn parse_args<T: FromArgs>(command: &str, args: &[OsString]) -> Result<T, (ExitCode, String)> {
    let strings: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
    T::from_args(&[command], &refs).map_err(|early| {
        if early.status.is_ok() {
            print!("{}", early.output);
            (ExitCode::SUCCESS, early.output)
        } else {
            eprint!("{}", early.output);
            (ExitCode::from(2), early.output)
        }
    })
}

/// Runs the role `role` started as `name`, with its arguments (after argv[0]).
pub fn run(argv0: &OsStr, name: &str, role: RoleSpec, args: Vec<OsString>) -> ExitCode {
    match role.build {
        Build::Cli => cli::run(argv0, args),
        Build::Notify(kind) => match start::<NotifyArgs>(
            argv0,
            name,
            role.about,
            &args,
            |a| a.version,
            |_| kind.commands().to_vec(),
        ) {
            Ok((a, root)) => notify::serve(
                &root,
                kind,
                a.command.as_deref().unwrap_or_default(),
                a.gate.as_deref(),
            ),
            Err(code) => code,
        },
        Build::Declared => {
            // Known only once the installed gateways are read; an unknown one writes no log.
            let Some(declaration) =
                notify::declared::find(&MgrRoot::discover(argv0), roles::ROLES, name)
            else {
                return notify::unknown_type(&MgrRoot::discover(argv0), name);
            };
            let about = format!(
                "{}, the notification type {} declares (its contact is the user field '{}')",
                declaration.contact.title_en, declaration.declared_by, declaration.contact.field
            );
            match start::<NotifyArgs>(
                argv0,
                name,
                &about,
                &args,
                |a| a.version,
                |_| notify::declared::COMMANDS.to_vec(),
            ) {
                Ok((a, root)) => notify::serve_declared(
                    &root,
                    declaration,
                    a.command.as_deref().unwrap_or_default(),
                    a.gate.as_deref(),
                ),
                Err(code) => code,
            }
        }
        Build::Builtin(_) | Build::Script => {
            let commands = |root: &MgrRoot| gateway::commands(root, name, role.build);
            let (parsed, root) =
                match start::<GatewayArgs>(argv0, name, role.about, &args, |a| a.version, commands)
                {
                    Ok(started) => started,
                    Err(code) => return code,
                };
            let command = parsed.command.unwrap_or_default();
            if let Build::Builtin(builtin) = role.build {
                return builtin
                    .serve_own(&root, &command)
                    .unwrap_or_else(|| gateway::serve(&*builtin.open(&root), &command));
            }
            match gateway::script::ScriptGateway::open(&root, name) {
                Ok(module) => gateway::serve(&module, &command),
                Err(e) => crate::error::fail(name, "", &e, ExitCode::from(2)),
            }
        }
    }
}

/// Parses a module's arguments, answers `--help` (with the commands this role serves
/// and what it is) and `--version`, and opens the role's log in its root; `Err` is the
/// exit status when there is nothing more to do.
fn start<T: FromArgs>(
    argv0: &OsStr,
    name: &str,
    about: &str,
    args: &[OsString],
    wants_version: fn(&T) -> bool,
    commands: impl FnOnce(&MgrRoot) -> Vec<&'static str>,
) -> Result<(T, MgrRoot), ExitCode> {
    let parsed: T = parse_args(name, args).map_err(|(code, usage)| {
        if code == ExitCode::SUCCESS {
            println!("\nCommands:");
            for command in commands(&MgrRoot::discover(argv0)) {
                println!("  {command:<18}{}", roles::command_help(command));
            }
            println!("\n{name}: {about}.");
        }
        usage_error(code, &usage)
    })?;
    if wants_version(&parsed) {
        println!("{name} (mgrnotify) {}", env!("CARGO_PKG_VERSION"));
        return Err(ExitCode::SUCCESS);
    }
    let root = MgrRoot::discover(argv0);
    log::init(&root, name);
    Ok((parsed, root))
}

/// BILLmanager reads a module's stdout: a usage error goes there as error XML too.
fn usage_error(code: ExitCode, usage: &str) -> ExitCode {
    if code != ExitCode::SUCCESS {
        print!("{}", xml::error_doc("value", "arguments", usage.trim()));
    }
    code
}
