//! `mgrnotify send`: one message through a provider script, as BILLmanager would send
//! it, or with `--dry-run` the HTTP requests it would make, without network.

use super::CliError;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use argh::FromArgs;

use crate::cli::say;
use crate::gateway::script::ScriptGateway;
use crate::gateway::{GatewayModule, GatewaySettings, OutgoingInput};
use crate::root::MgrRoot;
use crate::script::{Field, Metadata};
use crate::xml::Params;

#[derive(FromArgs)]
/// Send one message through a provider script (gw<name>, or a path to a .rhai file).
/// Passwords given with --param are visible to every user of the machine (argv): put
/// them in a --params file instead.
struct SendArgs {
    /// the gateway: gw<name> (its script in etc/mgrnotify/scripts/) or a script file
    #[argh(positional)]
    gateway: String,
    /// recipient: a phone number (SMS gateways) or an e-mail address
    #[argh(option)]
    to: String,
    /// the message text
    #[argh(option)]
    text: String,
    /// the subject, for gateways that use one
    #[argh(option)]
    subject: Option<String>,
    /// a gateway parameter as name=value; repeat for more; overrides --params
    #[argh(option)]
    param: Vec<String>,
    /// a file of gateway parameters: an xmlparams XML document
    /// (<doc><login>..</login>..</doc>) or name=value lines (# comments)
    #[argh(option)]
    params: Option<String>,
    /// print the HTTP requests instead of sending them (secrets redacted, no
    /// network); missing required parameters get placeholders
    #[argh(switch)]
    dry_run: bool,
}

/// Runs `mgrnotify send ...` (args after `send`).
pub fn run(argv0: &OsStr, args: Vec<OsString>) -> ExitCode {
    let args: SendArgs = match crate::parse_args("mgrnotify send", &args) {
        Ok(a) => a,
        Err((code, _)) => return code,
    };
    match send(argv0, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::error!("mgrnotify send: {e}");
            crate::error::to_stderr("mgrnotify send", &e);
            ExitCode::FAILURE
        }
    }
}

fn send(argv0: &OsStr, args: &SendArgs) -> Result<(), CliError> {
    let root = MgrRoot::discover(argv0);
    let (role, path) = script_location(&root, &args.gateway)?;
    crate::log::init(&root, &role);
    let gateway = ScriptGateway::from_path(&role, &path)?.with_dry_run(args.dry_run);
    let metadata = gateway.metadata();

    let mut params = match &args.params {
        Some(file) => read_params_file(Path::new(file))?,
        None => Params::new(),
    };
    for pair in &args.param {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--param '{pair}' is not name=value")))?;
        params.set(name.trim(), value);
    }
    params.insert_if_absent("gateway_module", &role);
    if args.dry_run {
        fill_placeholders(metadata, &mut params);
    }

    let mut user = Params::new();
    user.set("id", "0");
    match metadata.notify_module.as_str() {
        "ntsms" => user.set("phone", &args.to),
        "ntemail" => user.set("email", &args.to),
        _ => {
            user.set("phone", &args.to);
            user.set("email", &args.to);
        }
    }
    let input = OutgoingInput {
        settings: GatewaySettings::new(params, "")?,
        message: args.text.clone(),
        subject: args.subject.clone().unwrap_or_default(),
        html: None,
        attachments: Vec::new(),
        user,
        project: Params::new(),
    };
    let result = gateway.outgoing(&input);

    if !args.dry_run {
        let delivery = result?;
        match delivery.id {
            Some(id) => say!("sent through {role}: provider id {id}"),
            None => say!("sent through {role}"),
        }
        return Ok(());
    }
    let requests = gateway.take_recorded_requests();
    for (i, req) in requests.iter().enumerate() {
        say!("--- request {} (dry run, not sent) ---", i + 1);
        say!("{}", req.describe().trim_end());
    }
    match (requests.is_empty(), result) {
        (true, Err(e)) => Err(e.into()),
        (true, Ok(_)) => {
            say!("the script made no HTTP request");
            Ok(())
        }
        (false, Err(e)) => {
            // Every request got the synthetic empty reply; a script that reads it
            // may well fail: that is not a failure of the dry run.
            say!("--- note: with the empty dry-run reply the script ended with: {e}");
            Ok(())
        }
        (false, Ok(_)) => Ok(()),
    }
}

/// A dry run needs no credentials: every required parameter without a value or a
/// default gets a placeholder `{name}` (a select its first choice), and so does the
/// first field of each `required_one_of` group that has none. Warns about each.
fn fill_placeholders(metadata: &Metadata, params: &mut Params) {
    let mut missing: Vec<&Field> = metadata
        .fields
        .iter()
        .filter(|f| f.required && f.default.is_none() && params.get(&f.name).is_none())
        .collect();
    for group in &metadata.required_one_of {
        if group.iter().all(|name| params.get(name).is_none()) {
            missing.extend(metadata.field(&group[0]));
        }
    }
    if missing.is_empty() {
        return;
    }
    let placeholders: Vec<(&str, String)> = missing
        .iter()
        .map(|f| {
            let value = match f.options.first() {
                Some(option) => option.value.clone(),
                None => format!("{{{}}}", f.name),
            };
            (f.name.as_str(), value)
        })
        .collect();
    eprintln!(
        "warning: dry run without {}: using placeholders {}",
        placeholders
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", "),
        placeholders
            .iter()
            .map(|(_, value)| value.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, value) in placeholders {
        params.set(name, &value);
    }
}

/// `gw<name>` → its installed script; an existing file path → that file, named by
/// its file stem.
fn script_location(root: &MgrRoot, gateway: &str) -> Result<(String, PathBuf), CliError> {
    let as_path = Path::new(gateway);
    if gateway.ends_with(".rhai") || gateway.contains('/') {
        if !as_path.is_file() {
            return Err(CliError::Refused(format!("no script file {gateway}")));
        }
        let role = as_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "gwscript".to_owned());
        return Ok((role, as_path.to_path_buf()));
    }
    if !gateway.starts_with("gw") || gateway.len() <= 2 {
        return Err(CliError::Usage(format!(
            "'{gateway}' is not a gateway name like gwepochta, nor a .rhai file"
        )));
    }
    Ok((gateway.to_owned(), root.script(gateway)))
}

/// An xmlparams document, or `name=value` lines.
fn read_params_file(path: &Path) -> Result<Params, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io("read", path, e))?;
    if text.trim_start().starts_with('<') {
        let doc = crate::xml::parse(&text).map_err(|e| {
            CliError::Refused(format!("{} is not an XML document: {e}", path.display()))
        })?;
        return Ok(Params::from_children(doc.root_element()));
    }
    let mut params = Params::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once('=').ok_or_else(|| {
            CliError::Refused(format!(
                "{} line {}: expected name=value",
                path.display(),
                n + 1
            ))
        })?;
        params.set(name.trim(), value.trim());
    }
    Ok(params)
}
