//! mgrnotify: BILLmanager 5 notification and gateway modules in one executable.
//!
//! Layers, each behind a narrow interface:
//! - [`gateway`]: the gateway module protocol and the script-backed gateways;
//! - [`notify`]: the notification module protocol and the notification roles;
//! - [`script`]: the rhai provider-script engine; [`http`]: HTTP for scripts;
//! - [`template`]: rendering notices; [`notice`]: BILLmanager's notification file;
//! - [`root`], [`log`], [`xml`]: the install layout, logging, XML helpers;
//! - [`cli`]: the operator's `mgrnotify` command.

pub mod cli;
pub mod conf;
pub mod db;
pub mod gateway;
pub mod http;
pub mod log;
pub mod notice;
pub mod notify;
pub mod plugin;
pub mod queue;
pub mod root;
pub mod script;
pub mod template;
pub mod xml;

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::ExitCode;

use argh::FromArgs;

use crate::root::MgrRoot;

/// Every allocation is counted per thread, for the script sandbox's memory limit.
#[global_allocator]
static ALLOCATOR: script::memory::CountingAllocator = script::memory::CountingAllocator;

/// What a name started as means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The operator's command, `mgrnotify`.
    Cli,
    Notify(notify::Kind),
    /// gwsmtp, gwimap, gwpop3.
    BuiltinGateway(String),
    /// `gw<name>` backed by `etc/mgrnotify/scripts/gw<name>.rhai`.
    ScriptGateway(String),
}

/// The role name in argv[0]: its file name.
pub fn role_name(argv0: &OsStr) -> String {
    Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The arguments BILLmanager passes to a module.
#[derive(FromArgs)]
/// A BILLmanager module. See `mgrnotify --help` for the roles.
struct ModuleArgs {
    /// the command: features, process, getmessage (notification modules); features,
    /// formtune, check_connection, outgoing, ingoing (gateway modules)
    #[argh(option)]
    command: Option<String>,
    /// gateway id or `all`, for getmessage
    #[argh(option)]
    gate: Option<String>,
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

/// Runs a module role with its arguments (after argv[0]).
pub fn run_role(argv0: &OsStr, name: &str, role: Role, args: Vec<OsString>) -> ExitCode {
    let parsed: ModuleArgs = match parse_args(name, &args) {
        Ok(a) => a,
        Err((code, usage)) => {
            let is_gateway = matches!(role, Role::BuiltinGateway(_) | Role::ScriptGateway(_));
            if code != ExitCode::SUCCESS && is_gateway {
                // BILLmanager reads a gateway's stdout: give it the error as XML too.
                print!("{}", xml::error_doc("value", "arguments", usage.trim()));
            }
            return code;
        }
    };
    if parsed.version {
        println!("{name} (mgrnotify) {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let root = MgrRoot::discover(argv0);
    log::init(&root, name);
    let command = parsed.command.unwrap_or_default();
    match role {
        Role::Cli => ExitCode::from(2),
        Role::Notify(kind) => notify::serve(&root, kind, &command, parsed.gate.as_deref()),
        Role::BuiltinGateway(name) => gateway::serve_not_available(&name),
        Role::ScriptGateway(name) => match gateway::script::ScriptGateway::open(&root, &name) {
            Ok(module) => gateway::serve(&module, &command),
            Err(e) => {
                error!("{e}");
                eprintln!("{name}: {e}");
                print!("{}", e.to_xml());
                ExitCode::from(2)
            }
        },
    }
}
