//! EJS templates: our own compiler (template text → JavaScript function source, with the
//! real `ejs` 3.x package's tokenising, whitespace control and output rules, checked
//! byte for byte against it in tests/template_ejs_differential.rs) and an embedded
//! QuickJS engine to run it.
//!
//! One QuickJS runtime and context per thread, created on first use; each render gets a
//! wall-time deadline (interrupt handler), and the runtime has memory and stack limits.
//! After a template hits a limit the thread's engine is dropped and made anew, so one
//! hostile template cannot leave a half-broken engine for the next notice.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::{Context, Ctx, Function, Object, Persistent, Runtime, Value};

use super::TemplateError;

/// Memory the JavaScript heap of one thread may use.
pub const MEMORY_LIMIT: usize = 64 * 1024 * 1024;
/// Wall time one render may take.
pub const TIME_LIMIT: Duration = Duration::from_secs(2);
/// Native stack the engine may use (fits well inside a 2 MiB thread stack).
const STACK_LIMIT: usize = 512 * 1024;

/// The helpers every compiled template gets as arguments: `escapeFn` is ejs's escapeXML,
/// `include` refuses, `rethrow` tags an exception with the template line.
const HELPERS: &str = r#"(function () {
  var rules = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' };
  function encodeChar(c) { return rules[c] || c; }
  return {
    escape: function (markup) {
      return markup == undefined ? '' : String(markup).replace(/[&<>'"]/g, encodeChar);
    },
    include: function (path) {
      throw new Error('include("' + path + '") is not supported: a notification template must be self-contained');
    },
    rethrow: function (e, line) {
      var what;
      try {
        what = (e instanceof Error) ? e.name + ': ' + e.message : 'uncaught exception: ' + String(e);
      } catch (inner) {
        what = 'uncaught exception';
      }
      throw new Error('line ' + line + ': ' + what);
    }
  };
})()"#;

/// A template compiled to the source of `function (locals, escapeFn, include, rethrow)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub source: String,
    /// The template line of each generated source line (for syntax errors).
    pub lines: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Eval,
    Escaped,
    Raw,
    Comment,
    Literal,
}

/// ejs's tokens, in the order its regular expression tries them at each position.
const TOKENS: [&str; 10] = [
    "<%%", "%%>", "<%=", "<%-", "<%_", "<%#", "<%", "%>", "-%>", "_%>",
];

struct Compiler {
    source: String,
    lines: Vec<usize>,
    line: usize,
    mode: Option<Mode>,
    truncate: bool,
}

impl Compiler {
    fn emit(&mut self, text: &str) {
        self.lines
            .extend(std::iter::repeat_n(self.line, text.matches('\n').count()));
        self.source.push_str(text);
    }

    fn add_output(&mut self, text: &str) {
        let mut text = text;
        if self.truncate {
            text = text
                .strip_prefix("\r\n")
                .or_else(|| text.strip_prefix('\r'))
                .or_else(|| text.strip_prefix('\n'))
                .unwrap_or(text);
            self.truncate = false;
        }
        if text.is_empty() {
            return;
        }
        let mut escaped = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            match c {
                '\\' => escaped.push_str("\\\\"),
                '\n' => escaped.push_str("\\n"),
                '\r' => escaped.push_str("\\r"),
                '"' => escaped.push_str("\\\""),
                _ => escaped.push(c),
            }
        }
        self.emit(&format!("    ; __append(\"{escaped}\")\n"));
    }

    fn scan(&mut self, token: &str) {
        match token {
            "<%" | "<%_" => self.mode = Some(Mode::Eval),
            "<%=" => self.mode = Some(Mode::Escaped),
            "<%-" => self.mode = Some(Mode::Raw),
            "<%#" => self.mode = Some(Mode::Comment),
            "<%%" => {
                self.mode = Some(Mode::Literal);
                self.emit("    ; __append(\"<%\")\n");
            }
            "%%>" => {
                self.mode = Some(Mode::Literal);
                self.emit("    ; __append(\"%>\")\n");
            }
            "%>" | "-%>" | "_%>" => {
                if self.mode == Some(Mode::Literal) {
                    self.add_output(token);
                }
                self.mode = None;
                self.truncate = token.starts_with(['-', '_']);
            }
            _ => self.scan_text(token),
        }
        let newlines = token.matches('\n').count();
        if newlines > 0 {
            self.line += newlines;
            let line = self.line;
            self.emit(&format!("    ; __line = {line}\n"));
        }
    }

    fn scan_text(&mut self, text: &str) {
        let Some(mode) = self.mode else {
            self.add_output(text);
            return;
        };
        let mut code = text.to_owned();
        if matches!(mode, Mode::Eval | Mode::Escaped | Mode::Raw) {
            // A `//` comment on the last line would swallow what ejs appends after it.
            let comment = code.rfind("//").map(|i| i as isize).unwrap_or(-1);
            let newline = code.rfind('\n').map(|i| i as isize).unwrap_or(-1);
            if comment > newline {
                code.push('\n');
            }
        }
        match mode {
            Mode::Eval => self.emit(&format!("    ; {code}\n")),
            Mode::Escaped => self.emit(&format!(
                "    ; __append(escapeFn({}))\n",
                strip_semicolon(&code)
            )),
            Mode::Raw => self.emit(&format!("    ; __append({})\n", strip_semicolon(&code))),
            Mode::Comment => {}
            Mode::Literal => self.add_output(&code),
        }
    }
}

/// ejs's stripSemi: drops the first `;` that only whitespace follows.
fn strip_semicolon(code: &str) -> String {
    match code
        .char_indices()
        .find(|&(i, c)| c == ';' && code[i + 1..].trim_start().is_empty())
    {
        Some((i, _)) => format!("{}{}", &code[..i], &code[i + 1..]),
        None => code.to_owned(),
    }
}

/// `<%_` slurps the spaces and tabs before it, `_%>` those after it.
fn slurp_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("<%_") {
        out.push_str(&rest[..i]);
        let kept = out.trim_end_matches([' ', '\t']).len();
        out.truncate(kept);
        out.push_str("<%_");
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("_%>") {
        result.push_str(&rest[..i + 3]);
        rest = rest[i + 3..].trim_start_matches([' ', '\t']);
    }
    result.push_str(rest);
    result
}

/// Splits the template into text and tokens the way ejs's parseTemplateText does.
fn split_tokens(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if let Some(token) = TOKENS.iter().find(|t| bytes[i..].starts_with(t.as_bytes())) {
            if i > start {
                parts.push(&text[start..i]);
            }
            parts.push(&text[i..i + token.len()]);
            i += token.len();
            start = i;
        } else {
            i += 1;
        }
    }
    if start < text.len() {
        parts.push(&text[start..]);
    }
    parts
}

/// Compiles an EJS template to the source of a JavaScript function expression.
pub fn compile(template: &str) -> Result<Compiled, TemplateError> {
    let text = slurp_whitespace(template);
    let parts = split_tokens(&text);
    let mut compiler = Compiler {
        source: String::new(),
        lines: Vec::new(),
        line: 1,
        mode: None,
        truncate: false,
    };
    compiler.emit(concat!(
        "(function (locals, escapeFn, include, rethrow) {\n",
        "var __line = 1;\n",
        "try {\n",
        "  var __output = \"\";\n",
        "  function __append(s) { if (s !== undefined && s !== null) __output += s }\n",
        "  with (locals || {}) {\n",
    ));
    for (index, part) in parts.iter().enumerate() {
        if part.starts_with("<%") && !part.starts_with("<%%") {
            let closing = parts.get(index + 2).copied();
            if !matches!(closing, Some("%>" | "-%>" | "_%>")) {
                let line = 1 + parts[..index]
                    .iter()
                    .map(|p| p.matches('\n').count())
                    .sum::<usize>();
                return Err(TemplateError(format!(
                    "EJS: line {line}: \"{part}\" has no matching \"%>\""
                )));
            }
        }
        compiler.scan(part);
    }
    compiler.emit(concat!(
        "  }\n",
        "  return __output;\n",
        "} catch (e) {\n",
        "  rethrow(e, __line);\n",
        "}\n",
        "})",
    ));
    Ok(Compiled {
        source: compiler.source,
        lines: compiler.lines,
    })
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
    /// The running render's deadline, read by the interrupt handler.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A thread's JavaScript engine. Field order is drop order: values before the context,
/// the context before the runtime.
struct Engine {
    helpers: Persistent<Object<'static>>,
    context: Context,
    runtime: Runtime,
}

impl Engine {
    fn new() -> Result<Self, TemplateError> {
        let fail = |e: rquickjs::Error| {
            TemplateError(format!("EJS: the JavaScript engine could not start: {e}"))
        };
        let runtime = Runtime::new().map_err(fail)?;
        runtime.set_memory_limit(MEMORY_LIMIT);
        runtime.set_max_stack_size(STACK_LIMIT);
        runtime.set_interrupt_handler(Some(Box::new(|| {
            DEADLINE.with(|d| d.get().is_some_and(|deadline| Instant::now() > deadline))
        })));
        let context = Context::full(&runtime).map_err(fail)?;
        let helpers = context.with(|ctx| {
            let helpers: Object = ctx.eval(HELPERS)?;
            Ok::<_, rquickjs::Error>(Persistent::save(&ctx, helpers))
        });
        let helpers = helpers.map_err(fail)?;
        Ok(Self {
            helpers,
            context,
            runtime,
        })
    }
}

/// Why a render failed, before it becomes a message.
enum Failure {
    /// A limit was hit: the engine must be made anew.
    Limit(String),
    Template(String),
}

/// Renders `template` with the notice data (JSON text, see [`super::json`]).
pub fn render(template: &str, data_json: &str) -> Result<String, TemplateError> {
    let compiled = compile(template)?;
    ENGINE.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| TemplateError("EJS: a template rendered another template".into()))?;
        if slot.is_none() {
            *slot = Some(Engine::new()?);
        }
        let Some(engine) = slot.as_ref() else {
            return Err(TemplateError(
                "EJS: the JavaScript engine is missing".into(),
            ));
        };
        DEADLINE.with(|d| d.set(Some(Instant::now() + TIME_LIMIT)));
        let outcome = run(engine, &compiled, data_json);
        DEADLINE.with(|d| d.set(None));
        match outcome {
            Ok(text) => Ok(text),
            Err(Failure::Template(message)) => Err(TemplateError(message)),
            Err(Failure::Limit(message)) => {
                *slot = None;
                Err(TemplateError(message))
            }
        }
    })
}

fn run(engine: &Engine, compiled: &Compiled, data_json: &str) -> Result<String, Failure> {
    let outcome = engine.context.with(|ctx| {
        let mut options = EvalOptions::default();
        options.strict = false;
        let function: Function = ctx
            .eval_with_options(compiled.source.as_str(), options)
            .map_err(|e| describe(&ctx, e, Some(compiled)))?;
        let data = ctx
            .json_parse(data_json)
            .map_err(|e| describe(&ctx, e, None))?;
        let helpers = engine
            .helpers
            .clone()
            .restore(&ctx)
            .map_err(|e| describe(&ctx, e, None))?;
        let escape: Value = helpers.get("escape").map_err(|e| describe(&ctx, e, None))?;
        let include: Value = helpers
            .get("include")
            .map_err(|e| describe(&ctx, e, None))?;
        let rethrow: Value = helpers
            .get("rethrow")
            .map_err(|e| describe(&ctx, e, None))?;
        let result: Value = function
            .call((data, escape, include, rethrow))
            .map_err(|e| describe(&ctx, e, None))?;
        if result.is_undefined() || result.is_null() {
            return Ok(String::new());
        }
        match result.as_string() {
            Some(s) => s.to_string().map_err(|e| describe(&ctx, e, None)),
            None => Err("the template returned something that is not text".to_owned()),
        }
    });
    outcome.map_err(|message| classify(engine, message))
}

/// Turns an engine message into a failure, recognising the limits.
fn classify(engine: &Engine, message: String) -> Failure {
    let timed_out = DEADLINE.with(|d| d.get().is_some_and(|deadline| Instant::now() > deadline));
    if timed_out || message.contains("interrupted") {
        return Failure::Limit(format!(
            "EJS: the template ran longer than {} s and was stopped",
            TIME_LIMIT.as_secs()
        ));
    }
    if message.contains("out of memory") {
        return Failure::Limit(format!(
            "EJS: the template used more than {} MiB and was stopped",
            MEMORY_LIMIT / (1024 * 1024)
        ));
    }
    if message.contains("Maximum call stack size exceeded") || message.contains("stack overflow") {
        return Failure::Limit(format!(
            "EJS: the template recursed too deep and was stopped ({message})"
        ));
    }
    // Memory freed by the failed render is reclaimed now rather than at the next one.
    engine.runtime.run_gc();
    Failure::Template(format!("EJS: {message}"))
}

/// The message of a JavaScript exception (and the template line of a syntax error).
fn describe(ctx: &Ctx<'_>, error: rquickjs::Error, compiled: Option<&Compiled>) -> String {
    if !error.is_exception() {
        return error.to_string();
    }
    let exception = ctx.catch();
    let Some(object) = exception.as_object() else {
        return match exception.as_string().and_then(|s| s.to_string().ok()) {
            Some(s) => format!("uncaught exception: {s}"),
            None => "uncaught exception".to_owned(),
        };
    };
    let name: String = object.get("name").unwrap_or_default();
    let message: String = object.get("message").unwrap_or_default();
    let text = if name.is_empty() || message.starts_with("line ") {
        message
    } else {
        format!("{name}: {message}")
    };
    // QuickJS reports where a syntax error is only in the stack: "at eval_script:LINE:COL".
    let stack: String = object.get("stack").unwrap_or_default();
    let source_line = stack
        .split("eval_script:")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|digits| digits.parse::<usize>().ok())
        .filter(|&l| l > 0);
    match (compiled, source_line) {
        (Some(compiled), Some(line)) => {
            let template_line = compiled.lines.get(line - 1).copied().unwrap_or(1);
            format!("line {template_line}: {text}")
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_like_ejs() {
        assert_eq!(
            split_tokens("a<%= b %>c<%% d -%>"),
            vec!["a", "<%=", " b ", "%>", "c", "<%%", " d ", "-%>"]
        );
        assert_eq!(split_tokens("x%%>y"), vec!["x", "%%>", "y"]);
    }

    #[test]
    fn strip_semicolon_like_ejs() {
        assert_eq!(strip_semicolon(" a; "), " a ");
        assert_eq!(strip_semicolon(" a;b "), " a;b ");
        assert_eq!(strip_semicolon(" a;; "), " a; ");
    }

    #[test]
    fn whitespace_slurping() {
        assert_eq!(slurp_whitespace("a \t<%_ x _%> \tb"), "a<%_ x _%>b");
    }

    #[test]
    fn unclosed_tag_is_an_error_with_its_line() {
        let e = compile("a\n<%= b").unwrap_err();
        assert!(e.0.contains("line 2"), "{e}");
    }

    #[test]
    fn renders_with_escaping() {
        let out = render("<%= a %>|<%- a %>", r#"{"a":"<&'\">"}"#).unwrap();
        assert_eq!(out, "&lt;&amp;&#39;&#34;&gt;|<&'\">");
    }
}
