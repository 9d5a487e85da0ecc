//! The rhai provider-script engine: loads a `gw<name>.rhai`, reads its metadata and
//! runs its command functions in a sandbox, with host helpers and HTTP through the host.
//!
//! A script is compiled once, by a bare engine that only knows the sandbox limits;
//! `metadata()` runs on that engine too, so `--command features` never builds the
//! full engine. Commands run on [`runtime_engine`]: the sandbox plus rhai's standard
//! functions, the host helpers and `http`.

pub mod helpers;
pub mod host_http;
pub mod memory;
pub mod metadata;
pub mod sandbox;

use std::fmt;
use std::fs;
use std::io;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{
    CallFnOptions, Dynamic, Engine, EvalAltResult, FuncArgs, ParseError, Position, Scope, AST,
};

pub use helpers::Abort;
pub use metadata::{
    Contact, Field, FieldKind, Metadata, SelectOption, BUILTIN_TYPES, CHECKBOX_VALUES, HOST_PARAMS,
};

use crate::http::HttpClient;
use crate::roles::{self, RoleSpec};
use crate::root::MgrRoot;

/// A command function a script may define, with its one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Outgoing,
    CheckConnection,
    Formtune,
    Ingoing,
}

impl Command {
    pub const ALL: [Command; 4] = [
        Command::Outgoing,
        Command::CheckConnection,
        Command::Formtune,
        Command::Ingoing,
    ];

    /// The script function (and gateway feature) name.
    pub fn name(self) -> &'static str {
        match self {
            Command::Outgoing => "outgoing",
            Command::CheckConnection => "check_connection",
            Command::Formtune => "formtune",
            Command::Ingoing => "ingoing",
        }
    }

    fn parameter(self) -> &'static str {
        match self {
            Command::Outgoing => "req",
            Command::CheckConnection | Command::Ingoing => "params",
            Command::Formtune => "form_xml",
        }
    }
}

/// Why a script cannot be used: unreadable, does not compile, or bad metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// The script's file name (`gwepochta.rhai`).
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub msg: String,
}

impl ScriptError {
    fn new(file: &str, msg: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            column: None,
            msg: msg.into(),
        }
    }

    fn at(file: &str, pos: Position, msg: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: pos.line(),
            column: pos.position(),
            msg: msg.into(),
        }
    }

    /// `line 3, column 5: msg` (or just the message when there is no position).
    pub fn located_msg(&self) -> String {
        format!("{}{}", location(self.line, self.column), self.msg)
    }
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.located_msg())
    }
}

impl std::error::Error for ScriptError {}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

/// A compiled provider script with its checked metadata.
#[derive(Debug)]
pub struct Script {
    file: String,
    ast: AST,
    metadata: Metadata,
    commands: Vec<Command>,
}

impl Script {
    /// Reads, compiles and checks the script at `path`.
    pub fn load(path: &Path) -> Result<Self, ScriptError> {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let mut source = String::new();
        std::fs::File::open(path)
            .and_then(|f| {
                f.take(sandbox::MAX_SCRIPT_BYTES + 1)
                    .read_to_string(&mut source)
            })
            .map_err(|e| ScriptError::new(&file, format!("cannot read {}: {e}", path.display())))?;
        if source.len() as u64 > sandbox::MAX_SCRIPT_BYTES {
            return Err(ScriptError::new(&file, "the script is larger than 1 MiB"));
        }
        Self::compile(&file, &source)
    }

    /// Compiles `source` (named `file` in errors) and checks its functions and metadata.
    pub fn compile(file: &str, source: &str) -> Result<Self, ScriptError> {
        let engine = sandbox::bare_engine();
        let mut ast = engine.compile(source).map_err(|e| parse_error(file, &e))?;
        ast.set_source(file);
        let commands = check_functions(file, &ast)?;
        let value =
            call(&engine, &ast, "metadata", ()).map_err(|e| runtime_script_error(file, &e))?;
        let metadata = Metadata::from_value(value).map_err(|msg| ScriptError::new(file, msg))?;
        Ok(Self {
            file: file.to_owned(),
            ast,
            metadata,
            commands,
        })
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The command functions the script defines (outgoing always among them).
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    pub fn defines(&self, command: Command) -> bool {
        self.commands.contains(&command)
    }

    /// Runs a command function on `engine` (a [`runtime_engine`]) within the sandbox's
    /// script-time budget.
    pub fn run(
        &self,
        engine: &Engine,
        command: Command,
        arg: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        call(engine, &self.ast, command.name(), (arg,))
    }
}

/// Reads a script's metadata (for the plugin XML and `mgrnotify list`).
pub fn load_metadata(path: &Path) -> Result<Metadata, ScriptError> {
    Script::load(path).map(|s| s.metadata)
}

/// The provider scripts in `etc/mgrnotify/scripts/`, as (role, path), sorted.
pub fn installed(root: &MgrRoot, table: &[RoleSpec]) -> io::Result<Vec<(String, PathBuf)>> {
    let dir = root.scripts_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(role) = name
            .strip_suffix(".rhai")
            .filter(|r| is_script_role(r, table))
        {
            found.push((role.to_owned(), entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// A script gateway's name that no built-in role takes.
pub fn is_script_role(role: &str, table: &[RoleSpec]) -> bool {
    roles::is_script_name(role) && !table.iter().any(|r| r.name == role)
}

/// The engine commands run on: sandbox, standard functions, host helpers and `http`
/// through `client`.
pub fn runtime_engine(client: Arc<HttpClient>) -> Engine {
    let mut engine = sandbox::full_engine();
    helpers::register(&mut engine);
    host_http::register(&mut engine, client);
    engine
}

fn call(
    engine: &Engine,
    ast: &AST,
    name: &str,
    args: impl FuncArgs,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let _budget = sandbox::start_budget();
    let _regexes = helpers::regex_cache_scope();
    let mut scope = Scope::new();
    engine.call_fn_with_options::<Dynamic>(CallFnOptions::new(), &mut scope, ast, name, args)
}

/// `metadata()` and `outgoing(req)` must be there; every command function must take
/// exactly one parameter.
fn check_functions(file: &str, ast: &AST) -> Result<Vec<Command>, ScriptError> {
    let arities = |name: &str| -> Vec<usize> {
        ast.iter_functions()
            .filter(|f| f.name == name)
            .map(|f| f.params.len())
            .collect()
    };
    let metadata = arities("metadata");
    if metadata.is_empty() {
        return Err(ScriptError::new(
            file,
            "the script has no fn metadata(): it must return the title, notify_module and fields",
        ));
    }
    if !metadata.contains(&0) {
        return Err(ScriptError::new(
            file,
            "fn metadata() must take no parameters",
        ));
    }
    let mut commands = Vec::new();
    for command in Command::ALL {
        let found = arities(command.name());
        if found.is_empty() {
            if command == Command::Outgoing {
                return Err(ScriptError::new(
                    file,
                    "the script has no fn outgoing(req): every provider script sends messages",
                ));
            }
            continue;
        }
        if !found.contains(&1) {
            return Err(ScriptError::new(
                file,
                format!(
                    "fn {}() must take exactly one parameter: fn {}({})",
                    command.name(),
                    command.name(),
                    command.parameter()
                ),
            ));
        }
        commands.push(command);
    }
    Ok(commands)
}

fn parse_error(file: &str, e: &ParseError) -> ScriptError {
    ScriptError::at(
        file,
        e.position(),
        format!("syntax error: {}", e.err_type()),
    )
}

/// A runtime failure while reading metadata is a script error, whatever its kind.
fn runtime_script_error(file: &str, e: &EvalAltResult) -> ScriptError {
    let failure = Failure::from_eval(e);
    let msg = if failure.line.is_none() {
        format!("while reading metadata(): {}", failure.msg)
    } else {
        failure.msg
    };
    ScriptError {
        file: file.to_owned(),
        line: failure.line,
        column: failure.column,
        msg,
    }
}

/// A script's runtime failure, sorted into what the operator should hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `fail(..)`, `throw` or a host helper's error: the provider's (or helper's)
    /// answer. Otherwise a script bug or a sandbox limit.
    pub raised: bool,
    /// Raised by `fail_permanent(..)`: retrying cannot help.
    pub permanent: bool,
    pub msg: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Failure {
    pub fn from_eval(e: &EvalAltResult) -> Self {
        let inner = e.unwrap_inner();
        let mut pos = inner.position();
        let mut permanent = false;
        let (raised, msg) = match inner {
            EvalAltResult::ErrorRuntime(value, _) => (true, thrown_text(value)),
            EvalAltResult::ErrorTerminated(token, _) if token.is::<Abort>() => {
                match token.clone_cast::<Abort>() {
                    Abort::Fail(msg) => (true, fail_text(msg)),
                    Abort::FailPermanent(msg) => {
                        permanent = true;
                        (true, fail_text(msg))
                    }
                    Abort::Bug(msg, at) => {
                        pos = at;
                        (false, msg)
                    }
                }
            }
            EvalAltResult::ErrorTerminated(token, _)
                if token.clone().into_string().ok().as_deref()
                    == Some(sandbox::MEMORY_LIMIT_TOKEN) =>
            {
                (
                    false,
                    format!(
                        "the script held more than its memory limit of {} MiB",
                        sandbox::MAX_SCRIPT_MEMORY / (1024 * 1024)
                    ),
                )
            }
            EvalAltResult::ErrorTerminated(..) => (
                false,
                format!(
                    "the script ran longer than its time limit of {} ms (an endless loop?)",
                    sandbox::MAX_SCRIPT_TIME.as_millis()
                ),
            ),
            EvalAltResult::ErrorTooManyOperations(_) => (
                false,
                format!(
                    "the script exceeded {} operations (an endless loop?)",
                    sandbox::MAX_OPERATIONS
                ),
            ),
            EvalAltResult::ErrorStackOverflow(_) => (
                false,
                format!(
                    "functions call each other more than {} levels deep (endless recursion?)",
                    sandbox::MAX_CALL_LEVELS
                ),
            ),
            EvalAltResult::ErrorDataTooLarge(what, _) => (
                false,
                format!(
                    "{what} exceeds the sandbox limit (strings {} MiB, arrays and maps {} items)",
                    sandbox::MAX_STRING_SIZE / (1024 * 1024),
                    sandbox::MAX_ARRAY_SIZE
                ),
            ),
            other => {
                // rhai's text ends with " (line L, position C)": the position is
                // reported on its own.
                let text = other.to_string();
                let suffix = format!(" ({pos})");
                let text = text
                    .strip_suffix(&suffix)
                    .map(str::to_owned)
                    .unwrap_or(text);
                (false, text)
            }
        };
        Self {
            raised,
            permanent,
            msg,
            line: pos.line(),
            column: pos.position(),
        }
    }

    /// The message with its position, for script errors and logs.
    pub fn located_msg(&self) -> String {
        format!("{}{}", location(self.line, self.column), self.msg)
    }
}

/// The text of a thrown value: a string as is, a map's `msg`/`message`, else its display.
fn thrown_text(value: &Dynamic) -> String {
    if let Some(map) = value.read_lock::<rhai::Map>() {
        if let Some(msg) = map.get("msg").or_else(|| map.get("message")) {
            return msg.to_string();
        }
    }
    fail_text(value.to_string())
}

fn fail_text(text: String) -> String {
    if text.trim().is_empty() {
        "the script failed without a message".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        fn metadata() { #{title: "T", notify_module: "ntsms"} }
        fn outgoing(req) { }
    "#;

    #[test]
    fn compiles_and_lists_commands() {
        let s = Script::compile("gwt.rhai", MINIMAL).unwrap();
        assert_eq!(s.commands(), &[Command::Outgoing]);
        let s = Script::compile(
            "gwt.rhai",
            &format!("{MINIMAL} fn formtune(f) {{ f }} fn check_connection(p) {{}}"),
        )
        .unwrap();
        assert_eq!(
            s.commands(),
            &[
                Command::Outgoing,
                Command::CheckConnection,
                Command::Formtune
            ]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = Script::compile("gwt.rhai", "fn metadata() {\n  #{title: \n}").unwrap_err();
        assert_eq!(e.file, "gwt.rhai");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.to_string().starts_with("gwt.rhai: line 3"), "{e}");

        let e = Script::compile("gwt.rhai", "fn outgoing(req) {}").unwrap_err();
        assert!(e.msg.contains("no fn metadata()"), "{e}");
        let e = Script::compile(
            "gwt.rhai",
            "fn metadata() { #{title: \"T\", notify_module: \"ntsms\"} }",
        )
        .unwrap_err();
        assert!(e.msg.contains("no fn outgoing(req)"), "{e}");
        let e = Script::compile("gwt.rhai", &format!("{MINIMAL} fn ingoing() {{}}")).unwrap_err();
        assert!(e.msg.contains("fn ingoing(params)"), "{e}");
        let e = Script::compile(
            "gwt.rhai",
            "fn metadata() {\n  let x = 1;\n  x.to_upper_case()\n}\nfn outgoing(r) {}",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let e = Script::compile(
            "gwt.rhai",
            "fn metadata() { undefined_var }\nfn outgoing(r) {}",
        )
        .unwrap_err();
        assert!(e.msg.contains("undefined_var"), "{e}");
    }

    #[test]
    fn eval_and_import_are_rejected_at_compile_time() {
        for body in ["eval(\"1\")", "import \"x\" as y;"] {
            let e = Script::compile("gwt.rhai", &format!("{MINIMAL}\nfn f() {{ {body} }}"))
                .unwrap_err();
            // MINIMAL starts with a newline: the body is on line 5.
            assert_eq!(e.line, Some(5), "{body}: {e}");
            assert!(
                e.msg.contains("disabled") || e.msg.contains("reserved"),
                "{e}"
            );
        }
    }
}
