//! `mgrnotify check FILE.rhai...`: compile provider scripts and validate their
//! metadata and functions, as the gateway would at start-up, without running a command.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use crate::cli::say;

use crate::script::{Command, Field, FieldKind, Script};

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
            say!("{}", usage.trim_end());
            ExitCode::SUCCESS
        };
    }
    let mut all_ok = true;
    for file in &files {
        match Script::load(Path::new(file)) {
            Ok(script) => print_summary(file, &script),
            Err(e) => {
                crate::error::to_stderr(&format!("{file}: error"), &e.located_msg());
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
    say!("{file}: OK");
    let name = Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !(name.starts_with("gw") && name.len() > "gw.rhai".len()) {
        say!("  warning: install it as gw<name>.rhai: the gateway role is the file name");
    }
    say!("  title:         {} / {}", m.title_en, m.title_ru);
    if m.description_en != m.title_en || m.description_ru != m.title_ru {
        say!(
            "  description:   {} / {}",
            m.description_en,
            m.description_ru
        );
    }
    say!("  notify_module: {}", m.notify_module);
    let commands: Vec<&str> = script.commands().iter().map(|c| c.name()).collect();
    say!("  commands:      {}", commands.join(", "));
    if !script.defines(Command::CheckConnection) {
        say!("  note: no check_connection: BILLmanager cannot test the settings form");
    }
    if m.fields.is_empty() {
        say!("  fields:        none");
        return;
    }
    say!("  fields:");
    let rows: Vec<[String; 4]> = m
        .fields
        .iter()
        .map(|f| {
            let mut flags = Vec::new();
            if f.required {
                flags.push("required".to_owned());
            }
            if f.identifier {
                flags.push("identifier".to_owned());
            }
            if let Some(default) = &f.default {
                flags.push(format!("default={default}"));
            }
            [
                f.name.clone(),
                f.kind.name().to_owned(),
                flags.join(" "),
                format!("{} / {}", f.label_en, f.label_ru),
            ]
        })
        .collect();
    // Columns as wide as their widest cell (at least the old fixed widths).
    let width = |col: usize, min: usize| {
        rows.iter()
            .map(|r| r[col].chars().count())
            .max()
            .unwrap_or(0)
            .max(min)
    };
    let (name_w, kind_w, flags_w) = (width(0, 16), width(1, 9), width(2, 20));
    for [name, kind, flags, label] in &rows {
        say!("    {name:<name_w$} {kind:<kind_w$} {flags:<flags_w$} {label}");
    }
    for f in m.fields.iter().filter(|f| !f.options.is_empty()) {
        let choices: Vec<&str> = f.options.iter().map(|o| o.value.as_str()).collect();
        say!("  {}: choices {}", f.name, choices.join(", "));
    }
    for group in &m.required_one_of {
        say!("  required: one of {}", group.join(", "));
    }
    for f in m.fields.iter().filter(|f| looks_secret(f)) {
        say!(
            "  warning: field '{}' looks like a secret but is type {}: declare it type: \"password\" so the form hides it and logs redact it",
            f.name,
            f.kind.name()
        );
    }
}

/// Parts of a field's name that say it holds a credential (a webhook URL is one).
const SECRET_NAME_PARTS: [&str; 9] = [
    "token", "secret", "pass", "pwd", "auth", "apikey", "api_id", "apiid", "webhook",
];
/// Name words that are credentials only as whole words (`key`, not `keyboard`;
/// `sid`, not `side`).
const SECRET_NAME_WORDS: [&str; 2] = ["key", "sid"];
/// Words in a hint that say the field holds a credential ("a URL with your key").
const SECRET_HINT_WORDS: [&str; 8] = [
    "key", "keys", "apikey", "token", "tokens", "secret", "password", "sid",
];
/// Russian stems of the same (ключ, ключом; пароль, пароля...): a hint word starting
/// with one. A whole word, so "включить" is not "ключ".
const SECRET_HINT_STEMS_RU: [&str; 4] = ["ключ", "парол", "токен", "секрет"];

/// A text-like field whose name or hint says it holds a credential: an API token, key,
/// secret, SID, password, or a URL with a key in it (a webhook).
fn looks_secret(f: &Field) -> bool {
    if matches!(
        f.kind,
        FieldKind::Password | FieldKind::Checkbox | FieldKind::Select
    ) {
        return false;
    }
    let name = f.name.to_lowercase();
    let words: Vec<&str> = name.split(['_', '-', '.']).collect();
    let hint = format!("{} {}", f.hint_en, f.hint_ru).to_lowercase();
    let mut hint_words = hint.split(|c: char| !c.is_alphanumeric());
    SECRET_NAME_PARTS.iter().any(|p| name.contains(p))
        || words.iter().any(|w| {
            SECRET_NAME_WORDS
                .iter()
                .any(|s| w == s || (w.len() > s.len() && w.ends_with(s)))
        })
        || hint_words.any(|w| {
            SECRET_HINT_WORDS.contains(&w) || SECRET_HINT_STEMS_RU.iter().any(|s| w.starts_with(s))
        })
}
