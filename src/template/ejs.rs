//! EJS templates: our own compiler (template text → JavaScript function source, with the
//! real `ejs` 3.x package's tokenising, whitespace control and output rules, checked
//! byte for byte against it in tests/template_ejs_differential.rs) and an embedded
//! QuickJS engine to run it.
//!
//! Every render gets a QuickJS runtime and context of its own, so that nothing one
//! template changes is seen by the next; the runtime has memory and stack limits and a
//! wall-time deadline (interrupt handler).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{c_int, CStr};
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rquickjs::{qjs, Context, Ctx, Function, Object, Runtime, Value};

use super::process::Job;
use super::{TemplateError, TemplateErrorKind};

/// Memory the JavaScript heap of one thread may use.
pub const MEMORY_LIMIT: usize = 64 * 1024 * 1024;
/// Wall time one render may take.
pub const TIME_LIMIT: Duration = Duration::from_secs(2);
/// Native stack the engine may use (fits well inside a 2 MiB thread stack).
const STACK_LIMIT: usize = 512 * 1024;

/// Set up in every render's context: the helpers every compiled template gets as
/// arguments (`escapeFn` is ejs's escapeXML, `include` refuses, `rethrow` tags an
/// exception with the template line), and stand-ins for the locale formatting of
/// [`LOCALE_FORMATTING`] that load it on first use (most templates never format, and
/// loading it costs a few hundred microseconds).
const SETUP: &str = r#"(function (loadLocaleFormatting) {
  var loaded = false;
  function ensureLoaded() {
    if (!loaded) {
      loadLocaleFormatting();
      loaded = true;
    }
  }
  function standIn(target, name) {
    Object.defineProperty(target, name, { configurable: true, writable: true, value: function () {
      ensureLoaded();
      return target[name].apply(this, arguments);
    } });
  }
  standIn(Number.prototype, 'toLocaleString');
  standIn(BigInt.prototype, 'toLocaleString');
  standIn(Date.prototype, 'toLocaleString');
  standIn(Date.prototype, 'toLocaleDateString');
  standIn(Date.prototype, 'toLocaleTimeString');
  Object.defineProperty(globalThis, 'Intl', { configurable: true, get: function () {
    ensureLoaded();
    return globalThis.Intl;
  }, set: function (value) {
    Object.defineProperty(globalThis, 'Intl', { value: value, writable: true, configurable: true });
  } });

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
})"#;

/// Locale formatting (`toLocaleString`, `Intl.NumberFormat`, `Intl.DateTimeFormat`) for
/// ru and en-US as Node gives it; QuickJS has no `Intl`.
const LOCALE_FORMATTING: &str = include_str!("intl.js");

static SETUP_CODE: Precompiled = Precompiled::new(c"setup.js", SETUP);
static LOCALE_FORMATTING_CODE: Precompiled = Precompiled::new(c"intl.js", LOCALE_FORMATTING);

/// A script compiled to QuickJS bytecode once per process, without its source text and
/// debug information: every render runs it in a new context, and loading bytecode costs
/// a small part of parsing the source (milliseconds for the locale formatting).
struct Precompiled {
    name: &'static CStr,
    source: &'static str,
    bytecode: OnceLock<Vec<u8>>,
}

impl Precompiled {
    const fn new(name: &'static CStr, source: &'static str) -> Self {
        Self {
            name,
            source,
            bytecode: OnceLock::new(),
        }
    }

    /// Runs the script in `ctx` and returns its value.
    fn run<'js>(&'static self, ctx: &Ctx<'js>) -> rquickjs::Result<Value<'js>> {
        let bytecode = match self.bytecode.get() {
            Some(bytecode) => bytecode,
            None => {
                let compiled = bytecode_of(ctx, self.source, self.name, Debug::Strip)?;
                self.bytecode.get_or_init(|| compiled)
            }
        };
        // SAFETY: bytecode this process's QuickJS wrote, kept for the rest of the process.
        unsafe { run_bytecode(ctx, bytecode, Lifetime::Process) }
    }
}

/// Whether compiled code keeps its line numbers (for the messages of template errors).
#[derive(Clone, Copy, PartialEq)]
enum Debug {
    Keep,
    Strip,
}

/// Compiles a (non-strict) script to bytecode; `name` is its file name in messages.
fn bytecode_of(
    ctx: &Ctx<'_>,
    source: &str,
    name: &CStr,
    debug: Debug,
) -> rquickjs::Result<Vec<u8>> {
    // NUL-terminated, as QuickJS wants (a NUL inside the template's text is kept).
    let mut text = Vec::with_capacity(source.len() + 1);
    text.extend_from_slice(source.as_bytes());
    text.push(0);
    let mut flags = qjs::JS_WRITE_OBJ_BYTECODE | qjs::JS_WRITE_OBJ_STRIP_SOURCE;
    if debug == Debug::Strip {
        flags |= qjs::JS_WRITE_OBJ_STRIP_DEBUG;
    }
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: QuickJS reads the NUL-terminated source and returns a function value (or an
    // exception), which is freed here; the written buffer is copied, then freed.
    unsafe {
        let function = qjs::JS_Eval(
            raw,
            text.as_ptr().cast(),
            source.len() as _,
            name.as_ptr(),
            (qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_COMPILE_ONLY) as c_int,
        );
        if qjs::JS_IsException(function) {
            return Err(rquickjs::Error::Exception);
        }
        let mut len = 0;
        let bytes = qjs::JS_WriteObject(raw, &mut len, function, flags as c_int);
        qjs::JS_FreeValue(raw, function);
        if bytes.is_null() {
            return Err(rquickjs::Error::Exception);
        }
        let copy = std::slice::from_raw_parts(bytes, len as usize).to_vec();
        qjs::js_free(raw, bytes.cast());
        Ok(copy)
    }
}

/// How long bytecode given to [`run_bytecode`] lives.
#[derive(Clone, Copy, PartialEq)]
enum Lifetime {
    /// Until the process ends: QuickJS may point into it instead of copying.
    Process,
    /// Only for the call: QuickJS copies what it keeps.
    Call,
}

/// Runs bytecode made by [`bytecode_of`] in `ctx` and returns the script's value.
///
/// # Safety
/// `bytecode` must come from [`bytecode_of`] in this process, and live as `lifetime` says.
unsafe fn run_bytecode<'js>(
    ctx: &Ctx<'js>,
    bytecode: &[u8],
    lifetime: Lifetime,
) -> rquickjs::Result<Value<'js>> {
    let mut flags = qjs::JS_READ_OBJ_BYTECODE;
    if lifetime == Lifetime::Process {
        flags |= qjs::JS_READ_OBJ_ROM_DATA;
    }
    let raw = ctx.as_raw().as_ptr();
    let function = qjs::JS_ReadObject(raw, bytecode.as_ptr(), bytecode.len() as _, flags as c_int);
    if qjs::JS_IsException(function) {
        return Err(rquickjs::Error::Exception);
    }
    // JS_EvalFunction takes over the function value.
    let value = qjs::JS_EvalFunction(raw, function);
    if qjs::JS_IsException(value) {
        return Err(rquickjs::Error::Exception);
    }
    Ok(Value::from_raw(ctx.clone(), value))
}

/// How many compiled templates a render process keeps: a queue sends one template to many
/// users, and compiling it is a good part of a render.
const TEMPLATE_CACHE_SIZE: usize = 16;

thread_local! {
    /// Bytecode of recently rendered templates, by their compiled source.
    static TEMPLATE_BYTECODE: RefCell<VecDeque<(String, Rc<Vec<u8>>)>> =
        const { RefCell::new(VecDeque::new()) };
}

/// The template's function in `ctx`, from cached bytecode when there is some.
fn template_function<'js>(ctx: &Ctx<'js>, compiled: &Compiled) -> rquickjs::Result<Function<'js>> {
    let cached = TEMPLATE_BYTECODE.with(|cache| {
        cache
            .borrow()
            .iter()
            .find(|(source, _)| *source == compiled.source)
            .map(|(_, bytecode)| bytecode.clone())
    });
    let bytecode = match cached {
        Some(bytecode) => bytecode,
        None => {
            // Named as rquickjs names evaluated code, which `describe` looks for.
            let bytecode = Rc::new(bytecode_of(
                ctx,
                &compiled.source,
                c"eval_script",
                Debug::Keep,
            )?);
            TEMPLATE_BYTECODE.with(|cache| {
                let mut cache = cache.borrow_mut();
                if cache.len() >= TEMPLATE_CACHE_SIZE {
                    cache.pop_front();
                }
                cache.push_back((compiled.source.clone(), bytecode.clone()));
            });
            bytecode
        }
    };
    // SAFETY: bytecode from `bytecode_of` in this process, copied by QuickJS.
    unsafe { run_bytecode(ctx, &bytecode, Lifetime::Call) }?.get()
}

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
                return Err(TemplateError::new(
                    TemplateErrorKind::Invalid,
                    format!("EJS: line {line}: \"{part}\" has no matching \"%>\""),
                ));
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

/// A JavaScript engine for one render: a runtime of its own with the limits, and a context
/// with the helpers. Nothing one template does (globals, changed built-ins such as
/// `String.prototype.replace`) can reach the next one. Field order is drop order: the
/// context before the runtime.
struct Engine {
    context: Context,
    _runtime: Runtime,
}

impl Engine {
    fn new(deadline: Instant) -> Result<Self, TemplateError> {
        let fail = |e: rquickjs::Error| {
            TemplateError::new(
                TemplateErrorKind::Engine,
                format!("EJS: the JavaScript engine could not start: {e}"),
            )
        };
        let runtime = Runtime::new().map_err(fail)?;
        runtime.set_memory_limit(MEMORY_LIMIT);
        runtime.set_max_stack_size(STACK_LIMIT);
        runtime.set_interrupt_handler(Some(Box::new(move || Instant::now() > deadline)));
        let context = Context::full(&runtime).map_err(fail)?;
        Ok(Self {
            context,
            _runtime: runtime,
        })
    }
}

/// Renders `template` with the notice data (JSON text, see [`super::json`]), in this
/// thread's render process, so that the time limit holds even inside native built-ins.
pub fn render(template: &str, data_json: &str) -> Result<String, TemplateError> {
    super::process::render(Job::Ejs {
        template,
        data_json,
    })
}

/// Renders in the calling thread, with only the engine's own limits: [`render`] is what
/// the notification modules use (the render process runs this).
pub fn render_here(template: &str, data_json: &str) -> Result<String, TemplateError> {
    let compiled = compile(template)?;
    let deadline = Instant::now() + TIME_LIMIT;
    let engine = Engine::new(deadline)?;
    run(&engine, &compiled, data_json).map_err(|message| classify(message, deadline))
}

fn run(engine: &Engine, compiled: &Compiled, data_json: &str) -> Result<String, String> {
    engine.context.with(|ctx| {
        let load_locale_formatting = Function::new(ctx.clone(), |ctx: Ctx<'_>| {
            LOCALE_FORMATTING_CODE.run(&ctx).map(|_| ())
        })
        .map_err(|e| describe(&ctx, e, None))?;
        let setup: Function = SETUP_CODE
            .run(&ctx)
            .and_then(|v| v.get())
            .map_err(|e| describe(&ctx, e, None))?;
        let helpers: Object = setup
            .call((load_locale_formatting,))
            .map_err(|e| describe(&ctx, e, None))?;
        let function =
            template_function(&ctx, compiled).map_err(|e| describe(&ctx, e, Some(compiled)))?;
        let data = ctx
            .json_parse(data_json)
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
            Some(s) => text_of(s).map_err(|e| describe(&ctx, e, None)),
            None => Err("the template returned something that is not text".to_owned()),
        }
    })
}

/// Turns an engine message into the render's error, naming the limit that was hit.
fn classify(message: String, deadline: Instant) -> TemplateError {
    if Instant::now() > deadline || message.contains("interrupted") {
        return TemplateError::new(
            TemplateErrorKind::Limit,
            format!(
                "EJS: the template ran longer than {} s and was stopped",
                TIME_LIMIT.as_secs()
            ),
        );
    }
    if message.contains("out of memory") {
        return TemplateError::new(
            TemplateErrorKind::Limit,
            format!(
                "EJS: the template used more than {} MiB and was stopped",
                MEMORY_LIMIT / (1024 * 1024)
            ),
        );
    }
    if message.contains("Maximum call stack size exceeded") || message.contains("stack overflow") {
        return TemplateError::new(
            TemplateErrorKind::Limit,
            format!("EJS: the template recursed too deep and was stopped ({message})"),
        );
    }
    TemplateError::new(TemplateErrorKind::Invalid, format!("EJS: {message}"))
}

/// A JavaScript string as UTF-8 text. A string may hold a lone surrogate (half an emoji
/// after `text.slice(0, 20)`), which UTF-8 cannot carry: like Node writing a string out,
/// each becomes U+FFFD.
fn text_of(text: &rquickjs::String<'_>) -> Result<String, rquickjs::Error> {
    let ctx = text.ctx().as_raw().as_ptr();
    let mut len = 0usize;
    // SAFETY: `ctx` and the value are alive for this call; QuickJS returns null (with an
    // exception pending) or `len` bytes that stay valid until JS_FreeCString.
    let bytes = unsafe { qjs::JS_ToCStringLen(ctx, &mut len, text.as_raw()) };
    if bytes.is_null() {
        return Err(rquickjs::Error::Exception);
    }
    // SAFETY: as above; the bytes are copied before they are freed.
    let utf8 = well_formed(unsafe { std::slice::from_raw_parts(bytes.cast::<u8>(), len) });
    // SAFETY: `bytes` came from JS_ToCStringLen on this context and is freed once.
    unsafe { qjs::JS_FreeCString(ctx, bytes) };
    Ok(utf8)
}

/// QuickJS's UTF-8 of a string encodes a lone surrogate in three bytes (`ED A0..BF ..`),
/// which is not UTF-8: each such sequence becomes one U+FFFD.
fn well_formed(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(rest) => {
                out.push_str(rest);
                return out;
            }
            Err(e) => {
                let (valid, invalid) = bytes.split_at(e.valid_up_to());
                out.push_str(&String::from_utf8_lossy(valid));
                out.push('\u{FFFD}');
                let skip = match invalid {
                    [0xED, 0xA0..=0xBF, 0x80..=0xBF, ..] => 3,
                    _ => e.error_len().unwrap_or(invalid.len()),
                };
                bytes = &invalid[skip..];
            }
        }
    }
}

/// The message of a JavaScript exception (and the template line of a syntax error).
fn describe(ctx: &Ctx<'_>, error: rquickjs::Error, compiled: Option<&Compiled>) -> String {
    if !error.is_exception() {
        return error.to_string();
    }
    let exception = ctx.catch();
    let Some(object) = exception.as_object() else {
        return match exception.as_string().and_then(|s| text_of(s).ok()) {
            Some(s) => format!("uncaught exception: {s}"),
            None => "uncaught exception".to_owned(),
        };
    };
    let name = property_text(object, "name");
    let message = property_text(object, "message");
    let text = if name.is_empty() || message.starts_with("line ") {
        message
    } else {
        format!("{name}: {message}")
    };
    // QuickJS reports where a syntax error is only in the stack: "at eval_script:LINE:COL".
    let stack = property_text(object, "stack");
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

/// A string property of an exception object, or "" when it is missing or not a string.
fn property_text(object: &Object<'_>, name: &str) -> String {
    object
        .get::<_, Value>(name)
        .ok()
        .and_then(|v| v.as_string().and_then(|s| text_of(s).ok()))
        .unwrap_or_default()
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
        assert!(e.to_string().contains("line 2"), "{e}");
        assert_eq!(e.kind, TemplateErrorKind::Invalid);
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        // QuickJS's bytes for "a", a lone high surrogate, "😀", a lone low surrogate.
        let bytes = b"a\xED\xA0\xBD\xF0\x9F\x98\x80\xED\xB8\x80";
        assert_eq!(well_formed(bytes), "a\u{FFFD}😀\u{FFFD}");
        assert_eq!(well_formed("плоский текст".as_bytes()), "плоский текст");
    }

    #[test]
    fn a_nul_in_the_text_is_kept() {
        assert_eq!(render_here("a\0b<%= 1 %>", "{}").unwrap(), "a\0b1");
    }

    #[test]
    fn renders_with_escaping() {
        let out = render("<%= a %>|<%- a %>", r#"{"a":"<&'\">"}"#).unwrap();
        assert_eq!(out, "&lt;&amp;&#39;&#34;&gt;|<&'\">");
    }
}
