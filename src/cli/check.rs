//! `mgrnotify check FILE.rhai...`: compile provider scripts and validate their
//! metadata and functions, as the gateway would at start-up, without running a command.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use crate::script::{Command, Script};

/// Runs `mgrnotify check ...` (args after `check`). Exit 0 when every script is fine,
/// 1 when one is not, 2 on bad usage.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let files: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if files.is_empty() || files.iter().any(|f| f == "--help" || f == "-h") {
        let usage = "Usage: mgrnotify check FILE.rhai...\n\n\
                     Compiles each provider script, validates its metadata() and command \
                     functions,\nand prints a summary or the errors with line numbers.\n";
        return if files.is_empty() {
            eprint!("{usage}");
            ExitCode::from(2)
        } else {
            print!("{usage}");
            ExitCode::SUCCESS
        };
    }
    let mut all_ok = true;
    for file in &files {
        match Script::load(Path::new(file)) {
            Ok(script) => print_summary(file, &script),
            Err(e) => {
                eprintln!("{file}: error: {}", e.located_msg());
                all_ok = false;
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_summary(file: &str, script: &Script) {
    let m = script.metadata();
    println!("{file}: OK");
    let name = Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !(name.starts_with("gw") && name.len() > "gw.rhai".len()) {
        println!("  warning: install it as gw<name>.rhai: the gateway role is the file name");
    }
    println!("  title:         {} / {}", m.title_en, m.title_ru);
    if m.description_en != m.title_en || m.description_ru != m.title_ru {
        println!(
            "  description:   {} / {}",
            m.description_en, m.description_ru
        );
    }
    println!("  notify_module: {}", m.notify_module);
    let commands: Vec<&str> = script.commands().iter().map(|c| c.name()).collect();
    println!("  commands:      {}", commands.join(", "));
    if !script.defines(Command::CheckConnection) {
        println!("  note: no check_connection: BILLmanager cannot test the settings form");
    }
    if m.fields.is_empty() {
        println!("  fields:        none");
        return;
    }
    println!("  fields:");
    for f in &m.fields {
        let mut flags = Vec::new();
        if f.required {
            flags.push("required");
        }
        if f.identifier {
            flags.push("identifier");
        }
        println!(
            "    {:<16} {:<9} {:<20} {} / {}",
            f.name,
            f.kind.name(),
            flags.join(" "),
            f.label_en,
            f.label_ru
        );
    }
}
