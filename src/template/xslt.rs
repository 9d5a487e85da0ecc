//! XSLT 1.0 (with EXSLT) through the system libxslt, by a small FFI of our own.
//!
//! libxml2, libxslt and libexslt are opened with `dlopen` on the first transform (see
//! [`Api`]), not linked, so roles that never render a template do not pay for loading
//! them; without them a transform fails with an error naming the Debian package to install.
//!
//! Safety rules kept here, so that an operator's stylesheet can neither reach out nor take the
//! process down:
//! - documents are parsed with `XML_PARSE_NONET` and without DTD loading; internal
//!   entities are substituted, and every external entity or DTD goes to a loader that
//!   refuses it;
//! - libxslt's security preferences forbid file read/write, directory creation and network
//!   read/write, for the stylesheet's own imports as well as for `document()` at run time;
//! - template recursion is bounded by `xsltMaxDepth`, variables by `xsltMaxVars`;
//! - libxml2 allocates through counting hooks: a transform that uses more than
//!   [`MEMORY_LIMIT`] or runs longer than [`TIME_LIMIT`] is stopped (libxslt's own
//!   `XSLT_STATE_STOPPED`) and reported as an error; XPath work is bounded by libxml2's
//!   operation limit, and [`transform`] runs in a render process that is killed at the
//!   deadline whatever libxslt is doing (see `process.rs`);
//! - every libxml/libxslt object is freed on every path (RAII guards below);
//! - the structures copied by hand below are only used with library versions whose layout
//!   they match (checked at load), and no callback from C unwinds or panics.
//!
//! Parsed stylesheets are cached per thread (of a render process), so a queue that sends one
//! template to many users parses it once.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ops::RangeInclusive;
use std::ptr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::process::Job;
use super::{TemplateError, TemplateErrorKind};

/// How deep templates may call each other; small enough for a 2 MiB thread stack.
const MAX_TEMPLATE_DEPTH: c_int = 400;
/// How many variables may be live at once.
const MAX_VARIABLES: c_int = 20_000;
/// XPath steps one transform may take in all (libxml2 counts each operation and each node
/// an axis visits), about a second of work: nested `count()` allocates nothing, so the
/// deadline below, checked on allocation, would not see it.
const XPATH_OP_LIMIT: std::ffi::c_ulong = 20_000_000;
/// What libxml2 reports when a transform reaches [`XPATH_OP_LIMIT`].
const XPATH_OP_LIMIT_MESSAGE: &str = "Operation limit exceeded";
/// The first libxml2 with XPath operation limits (2.9.11).
const XPATH_OP_LIMIT_SINCE: c_int = 20911;
/// Memory one transform may allocate (net) before it is stopped.
pub const MEMORY_LIMIT: usize = 128 * 1024 * 1024;
/// Past this the allocation hooks refuse memory outright (a stopped transform unwinds
/// without allocating much, so this is only reached by a single huge allocation).
const HARD_MEMORY_LIMIT: usize = 4 * MEMORY_LIMIT;
/// Wall time one transform may take.
pub const TIME_LIMIT: Duration = Duration::from_secs(2);
/// How many parsed stylesheets a thread keeps.
const CACHE_SIZE: usize = 16;

const XML_PARSE_NOENT: c_int = 1 << 1;
const XML_PARSE_NONET: c_int = 1 << 11;
const XML_PARSE_NOCDATA: c_int = 1 << 14;
/// Internal DTD entities (`&nbsp;` in stylesheets) are substituted; external ones go to the
/// refusing loader.
const PARSE_OPTIONS: c_int = XML_PARSE_NOENT | XML_PARSE_NONET | XML_PARSE_NOCDATA;

const XSLT_SECPREF_READ_FILE: c_int = 1;
const XSLT_SECPREF_WRITE_FILE: c_int = 2;
const XSLT_SECPREF_CREATE_DIRECTORY: c_int = 3;
const XSLT_SECPREF_READ_NETWORK: c_int = 4;
const XSLT_SECPREF_WRITE_NETWORK: c_int = 5;
const XSLT_STATE_STOPPED: c_int = 2;

#[repr(C)]
struct XmlDoc {
    _opaque: [u8; 0],
}
#[repr(C)]
struct XsltStylesheet {
    _opaque: [u8; 0],
}
#[repr(C)]
struct XsltSecurityPrefs {
    _opaque: [u8; 0],
}

/// The leading fields of libxslt's public `struct _xsltTransformContext`, up to `state`
/// (the library only appends fields, so this prefix is stable across 1.1.x).
#[repr(C)]
struct TransformContext {
    style: *mut c_void,
    output_type: c_int,
    templ: *mut c_void,
    templ_nr: c_int,
    templ_max: c_int,
    templ_tab: *mut c_void,
    vars: *mut c_void,
    vars_nr: c_int,
    vars_max: c_int,
    vars_tab: *mut c_void,
    vars_base: c_int,
    ext_functions: *mut c_void,
    ext_elements: *mut c_void,
    ext_infos: *mut c_void,
    mode: *const c_void,
    mode_uri: *const c_void,
    doc_list: *mut c_void,
    document: *mut c_void,
    node: *mut c_void,
    node_list: *mut c_void,
    output: *mut c_void,
    insert: *mut c_void,
    xpath_ctxt: *mut c_void,
    state: c_int,
}

/// libxml2's public `struct _xmlError`.
#[repr(C)]
struct XmlError {
    domain: c_int,
    code: c_int,
    message: *const c_char,
    level: c_int,
    file: *const c_char,
    line: c_int,
    str1: *const c_char,
    str2: *const c_char,
    str3: *const c_char,
    int1: c_int,
    int2: c_int,
    ctxt: *mut c_void,
    node: *mut c_void,
}

/// libxml2's public `struct _xmlXPathContext` up to the resource limits (libxml2 2.9.11
/// appended `opLimit`, `opCount` and `depth`; older versions end before them).
#[repr(C)]
struct XPathContext {
    doc: *mut c_void,
    node: *mut c_void,
    nb_variables_unused: c_int,
    max_variables_unused: c_int,
    var_hash: *mut c_void,
    nb_types: c_int,
    max_types: c_int,
    types: *mut c_void,
    nb_funcs_unused: c_int,
    max_funcs_unused: c_int,
    func_hash: *mut c_void,
    nb_axis: c_int,
    max_axis: c_int,
    axis: *mut c_void,
    namespaces: *mut c_void,
    ns_nr: c_int,
    user: *mut c_void,
    context_size: c_int,
    proximity_position: c_int,
    xptr: c_int,
    here: *mut c_void,
    origin: *mut c_void,
    ns_hash: *mut c_void,
    var_lookup_func: *mut c_void,
    var_lookup_data: *mut c_void,
    extra: *mut c_void,
    function: *const c_char,
    function_uri: *const c_char,
    func_lookup_func: *mut c_void,
    func_lookup_data: *mut c_void,
    tmp_ns_list: *mut c_void,
    tmp_ns_nr: c_int,
    user_data: *mut c_void,
    error: *mut c_void,
    last_error: XmlError,
    debug_node: *mut c_void,
    dict: *mut c_void,
    flags: c_int,
    cache: *mut c_void,
    op_limit: std::ffi::c_ulong,
    op_count: std::ffi::c_ulong,
    depth: c_int,
}

/// libxml2/libxslt's generic error callback (`xmlGenericErrorFunc`), printf-style and
/// variadic: the handler installed is the C shim in xml_error.c, which formats the
/// message and passes the text to [`receive_generic_message`].
type GenericErrorFunc = unsafe extern "C" fn(*mut c_void, *const c_char, ...);
/// libxml2's `xmlMemSetup`: 0 when the allocation functions were installed.
type MemSetup = unsafe extern "C" fn(
    free: unsafe extern "C" fn(*mut c_void),
    malloc: unsafe extern "C" fn(usize) -> *mut c_void,
    realloc: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void,
    strdup: unsafe extern "C" fn(*const c_char) -> *mut c_char,
) -> c_int;
type StructuredErrorFunc = unsafe extern "C" fn(*mut c_void, *mut XmlError);
type SecurityCheck =
    unsafe extern "C" fn(*mut XsltSecurityPrefs, *mut TransformContext, *const c_char) -> c_int;
type EntityLoader = unsafe extern "C" fn(*const c_char, *const c_char, *mut c_void) -> *mut c_void;

// The C shim of xml_error.c, built by build.rs.
extern "C" {
    /// Sets the function the shim passes each formatted message to.
    fn mgrnotify_xml_set_message_sink(sink: unsafe extern "C" fn(*const c_char));
    /// The variadic handler given to libxml2 and libxslt.
    fn mgrnotify_xml_generic_error(ctx: *mut c_void, format: *const c_char, ...);
}

/// libxml2, libxslt and libexslt as this module uses them: the entry points and the two
/// limit variables, resolved once at run time, plus the security preferences made at set-up.
///
/// The libraries are opened on first XSLT use instead of being linked: libxml2 brings ICU,
/// libstdc++, liblzma and libgcrypt with it, and loading those would cost every role (most
/// never render a template) over a millisecond of start-up.
///
/// Fields carry the C names, so each is resolved by exactly the name it is declared with.
#[allow(non_snake_case)]
struct Api {
    xmlInitParser: unsafe extern "C" fn(),
    xmlReadMemory: unsafe extern "C" fn(
        buffer: *const c_char,
        size: c_int,
        url: *const c_char,
        encoding: *const c_char,
        options: c_int,
    ) -> *mut XmlDoc,
    xmlFreeDoc: unsafe extern "C" fn(doc: *mut XmlDoc),
    xmlSetStructuredErrorFunc:
        unsafe extern "C" fn(ctx: *mut c_void, handler: Option<StructuredErrorFunc>),
    xmlSetGenericErrorFunc:
        unsafe extern "C" fn(ctx: *mut c_void, handler: Option<GenericErrorFunc>),
    xmlSetExternalEntityLoader: unsafe extern "C" fn(loader: EntityLoader),
    xmlMemSetup: MemSetup,

    /// libxml2's version as text, e.g. "20914" for 2.9.14.
    xmlParserVersion: *const *const c_char,
    xsltLibxsltVersion: *const c_int,
    xsltMaxDepth: *mut c_int,
    xsltMaxVars: *mut c_int,
    xsltParseStylesheetDoc: unsafe extern "C" fn(doc: *mut XmlDoc) -> *mut XsltStylesheet,
    xsltFreeStylesheet: unsafe extern "C" fn(style: *mut XsltStylesheet),
    xsltNewTransformContext:
        unsafe extern "C" fn(style: *mut XsltStylesheet, doc: *mut XmlDoc) -> *mut TransformContext,
    xsltFreeTransformContext: unsafe extern "C" fn(ctxt: *mut TransformContext),
    xsltApplyStylesheetUser: unsafe extern "C" fn(
        style: *mut XsltStylesheet,
        doc: *mut XmlDoc,
        params: *const *const c_char,
        output: *const c_char,
        profile: *mut c_void,
        ctxt: *mut TransformContext,
    ) -> *mut XmlDoc,
    xsltSaveResultToString: unsafe extern "C" fn(
        out: *mut *mut u8,
        len: *mut c_int,
        result: *mut XmlDoc,
        style: *mut XsltStylesheet,
    ) -> c_int,
    xsltNewSecurityPrefs: unsafe extern "C" fn() -> *mut XsltSecurityPrefs,
    xsltSetSecurityPrefs: unsafe extern "C" fn(
        sec: *mut XsltSecurityPrefs,
        option: c_int,
        check: SecurityCheck,
    ) -> c_int,
    xsltSetDefaultSecurityPrefs: unsafe extern "C" fn(sec: *mut XsltSecurityPrefs),
    xsltSetCtxtSecurityPrefs:
        unsafe extern "C" fn(sec: *mut XsltSecurityPrefs, ctxt: *mut TransformContext) -> c_int,
    xsltSecurityForbid: SecurityCheck,
    xsltSetGenericErrorFunc:
        unsafe extern "C" fn(ctx: *mut c_void, handler: Option<GenericErrorFunc>),

    exsltRegisterAll: unsafe extern "C" fn(),

    /// The process-wide security preferences: everything forbidden; null if libxslt could
    /// not allocate them (every transform is then refused). Never freed: libxslt keeps a
    /// pointer to them as the default.
    security_prefs: *mut XsltSecurityPrefs,
    /// Whether libxml2 has XPath operation limits (2.9.11 and later).
    xpath_op_limit: bool,
}

// SAFETY: the raw pointers are process-global library data (two ints and the security
// preferences) that are written only while `Api::load` runs inside the `OnceLock`, before
// any other thread can see the value, and only read afterwards; libxml2/libxslt themselves
// are thread-safe for separate documents and contexts.
unsafe impl Send for Api {}
// SAFETY: as for `Send`.
unsafe impl Sync for Api {}

/// The loaded libraries, or why they could not be loaded (kept, so every render says it).
static API: OnceLock<Result<Api, String>> = OnceLock::new();

/// The libraries, loaded and set up on the first call.
fn api() -> Result<&'static Api, TemplateError> {
    API.get_or_init(Api::load)
        .as_ref()
        .map_err(|why| TemplateError::new(TemplateErrorKind::Engine, why.clone()))
}

impl Api {
    /// Opens the three libraries, resolves every entry point and sets them up: memory hooks
    /// first (before libxml2 allocates anything), then the parser, the entity loader, EXSLT,
    /// the limits, the error handler and the security preferences.
    fn load() -> Result<Self, String> {
        let xml2 = Library::open(c"libxml2.so.2", "libxml2")?;
        let xslt = Library::open(c"libxslt.so.1", "libxslt1.1")?;
        let exslt = Library::open(c"libexslt.so.0", "libxslt1.1")?;
        // SAFETY: each field's type is the C declaration of the symbol of the same name in
        // libxml2 2.9+/libxslt 1.1 headers (functions as `extern "C" fn`, variables as
        // pointers to them).
        let mut api = unsafe {
            Self {
                xmlInitParser: xml2.symbol(c"xmlInitParser")?,
                xmlReadMemory: xml2.symbol(c"xmlReadMemory")?,
                xmlFreeDoc: xml2.symbol(c"xmlFreeDoc")?,
                xmlSetStructuredErrorFunc: xml2.symbol(c"xmlSetStructuredErrorFunc")?,
                xmlSetGenericErrorFunc: xml2.symbol(c"xmlSetGenericErrorFunc")?,
                xmlSetExternalEntityLoader: xml2.symbol(c"xmlSetExternalEntityLoader")?,
                xmlMemSetup: xml2.symbol(c"xmlMemSetup")?,
                xmlParserVersion: xml2.symbol(c"xmlParserVersion")?,
                xsltLibxsltVersion: xslt.symbol(c"xsltLibxsltVersion")?,
                xsltMaxDepth: xslt.symbol(c"xsltMaxDepth")?,
                xsltMaxVars: xslt.symbol(c"xsltMaxVars")?,
                xsltParseStylesheetDoc: xslt.symbol(c"xsltParseStylesheetDoc")?,
                xsltFreeStylesheet: xslt.symbol(c"xsltFreeStylesheet")?,
                xsltNewTransformContext: xslt.symbol(c"xsltNewTransformContext")?,
                xsltFreeTransformContext: xslt.symbol(c"xsltFreeTransformContext")?,
                xsltApplyStylesheetUser: xslt.symbol(c"xsltApplyStylesheetUser")?,
                xsltSaveResultToString: xslt.symbol(c"xsltSaveResultToString")?,
                xsltNewSecurityPrefs: xslt.symbol(c"xsltNewSecurityPrefs")?,
                xsltSetSecurityPrefs: xslt.symbol(c"xsltSetSecurityPrefs")?,
                xsltSetDefaultSecurityPrefs: xslt.symbol(c"xsltSetDefaultSecurityPrefs")?,
                xsltSetCtxtSecurityPrefs: xslt.symbol(c"xsltSetCtxtSecurityPrefs")?,
                xsltSecurityForbid: xslt.symbol(c"xsltSecurityForbid")?,
                xsltSetGenericErrorFunc: xslt.symbol(c"xsltSetGenericErrorFunc")?,
                exsltRegisterAll: exslt.symbol(c"exsltRegisterAll")?,
                security_prefs: ptr::null_mut(),
                xpath_op_limit: false,
            }
        };
        // SAFETY: the version variables are constants the libraries initialise statically.
        let (xml2_version, xslt_version) = unsafe {
            let text = *api.xmlParserVersion;
            let xml2_version = if text.is_null() {
                0
            } else {
                CStr::from_ptr(text)
                    .to_str()
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0)
            };
            (xml2_version, *api.xsltLibxsltVersion)
        };
        check_versions(xml2_version, xslt_version)?;
        api.xpath_op_limit = xml2_version >= XPATH_OP_LIMIT_SINCE;
        // SAFETY: runs once (inside `API`'s initialiser) before any other call into the
        // libraries; the hooks and handlers are functions of this module (or of the C shim)
        // that live forever, and the variable pointers were resolved from libxslt above.
        unsafe {
            install_memory_hooks(api.xmlMemSetup)?;
            mgrnotify_xml_set_message_sink(receive_generic_message);
            (api.xmlInitParser)();
            (api.xmlSetExternalEntityLoader)(refuse_external_entity);
            (api.exsltRegisterAll)();
            *api.xsltMaxDepth = MAX_TEMPLATE_DEPTH;
            *api.xsltMaxVars = MAX_VARIABLES;
            (api.xsltSetGenericErrorFunc)(ptr::null_mut(), Some(mgrnotify_xml_generic_error));
            let sec = (api.xsltNewSecurityPrefs)();
            if !sec.is_null() {
                for option in [
                    XSLT_SECPREF_READ_FILE,
                    XSLT_SECPREF_WRITE_FILE,
                    XSLT_SECPREF_CREATE_DIRECTORY,
                    XSLT_SECPREF_READ_NETWORK,
                    XSLT_SECPREF_WRITE_NETWORK,
                ] {
                    (api.xsltSetSecurityPrefs)(sec, option, api.xsltSecurityForbid);
                }
                (api.xsltSetDefaultSecurityPrefs)(sec);
                api.security_prefs = sec;
            }
        }
        Ok(api)
    }
}

/// Makes libxml2 allocate through the counting hooks. Without them no transform has a
/// memory limit, so a refusal is an error, not something to go on without.
///
/// # Safety
/// `mem_setup` is libxml2's `xmlMemSetup`, called before libxml2 allocates anything.
unsafe fn install_memory_hooks(mem_setup: MemSetup) -> Result<(), String> {
    if mem_setup(hook_free, hook_malloc, hook_realloc, hook_strdup) != 0 {
        return Err(
            "XSLT: libxml2 refused the memory hooks (xmlMemSetup), so a transform's memory \
             limit could not be kept; XSLT templates are refused"
                .into(),
        );
    }
    Ok(())
}

/// The libxml2 versions (`major * 10000 + minor * 100 + patch`) whose public structures
/// match the copies in this module: from 2.9.0 to the last with the soname libxml2.so.2.
const SUPPORTED_LIBXML2: RangeInclusive<c_int> = 20900..=21399;
/// The libxslt versions whose `xsltTransformContext` starts as [`TransformContext`] does.
const SUPPORTED_LIBXSLT: RangeInclusive<c_int> = 10126..=10199;

/// Refuses library versions whose structures may not match the copies in this module:
/// reading a field at the wrong offset would be undefined behaviour, not an error.
fn check_versions(libxml2: c_int, libxslt: c_int) -> Result<(), String> {
    let dotted = |v: c_int| format!("{}.{}.{}", v / 10000, v / 100 % 100, v % 100);
    let range =
        |r: &RangeInclusive<c_int>| format!("{} to {}", dotted(*r.start()), dotted(*r.end()));
    if !SUPPORTED_LIBXML2.contains(&libxml2) {
        return Err(format!(
            "XSLT: libxml2 {} is not supported (XSLT templates need libxml2 {})",
            dotted(libxml2),
            range(&SUPPORTED_LIBXML2)
        ));
    }
    if !SUPPORTED_LIBXSLT.contains(&libxslt) {
        return Err(format!(
            "XSLT: libxslt {} is not supported (XSLT templates need libxslt {})",
            dotted(libxslt),
            range(&SUPPORTED_LIBXSLT)
        ));
    }
    Ok(())
}

/// A shared library opened for the rest of the process; it is never closed, as the resolved
/// pointers and libxml2's global state must stay valid.
struct Library {
    handle: *mut c_void,
    soname: &'static CStr,
}

impl Library {
    /// `package` is the Debian package that ships `soname`, named in the error.
    fn open(soname: &'static CStr, package: &str) -> Result<Self, String> {
        // SAFETY: `soname` is a NUL-terminated string; running the library's initialisers
        // is what linking it did before.
        let handle = unsafe { libc::dlopen(soname.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!(
                "XSLT templates need {}, which could not be loaded ({}); install the Debian \
                 package {package}",
                soname.to_string_lossy(),
                last_dl_error()
            ));
        }
        Ok(Self { handle, soname })
    }

    /// The address of `name` as a `T`.
    ///
    /// # Safety
    /// `T` must be the symbol's C type: an `extern "C" fn` pointer with the function's exact
    /// signature, or a raw pointer to a variable of the variable's type.
    unsafe fn symbol<T: Copy>(&self, name: &CStr) -> Result<T, String> {
        const { assert!(std::mem::size_of::<T>() == std::mem::size_of::<*mut c_void>()) };
        let address = libc::dlsym(self.handle, name.as_ptr());
        if address.is_null() {
            return Err(format!(
                "XSLT: {} has no {} ({}); the installed libxml2/libxslt is too old or broken",
                self.soname.to_string_lossy(),
                name.to_string_lossy(),
                last_dl_error()
            ));
        }
        Ok(std::mem::transmute_copy::<*mut c_void, T>(&address))
    }
}

/// The dynamic loader's description of its last failure.
fn last_dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until the next dl* call
    // on this thread; it is copied at once.
    unsafe {
        let text = libc::dlerror();
        if text.is_null() {
            String::from("no reason given")
        } else {
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    }
}

thread_local! {
    /// libxml2 keeps its error handlers per thread.
    static THREAD_READY: Cell<bool> = const { Cell::new(false) };
    /// Messages libxml2/libxslt reported during the current operation on this thread.
    static MESSAGES: RefCell<String> = const { RefCell::new(String::new()) };
    static CACHE: RefCell<StylesheetCache> = const { RefCell::new(StylesheetCache(VecDeque::new())) };
    /// The running transform's budget, read by the allocation hooks.
    static BUDGET: Budget = const { Budget::idle() };
}

/// Points this thread's libxml2 error handlers at [`MESSAGES`], once per thread.
fn init_thread(api: &Api) {
    THREAD_READY.with(|ready| {
        if !ready.get() {
            // SAFETY: the handlers are functions of this module that live forever.
            unsafe {
                (api.xmlSetStructuredErrorFunc)(ptr::null_mut(), Some(collect_structured_error));
                (api.xmlSetGenericErrorFunc)(ptr::null_mut(), Some(mgrnotify_xml_generic_error));
            }
            ready.set(true);
        }
    });
}

unsafe extern "C" fn refuse_external_entity(
    url: *const c_char,
    _id: *const c_char,
    _ctxt: *mut c_void,
) -> *mut c_void {
    without_unwinding(|| {
        let what = if url.is_null() {
            String::from("an external entity")
        } else {
            // SAFETY: libxml2 passes the URL as a NUL-terminated string.
            format!("\"{}\"", unsafe { CStr::from_ptr(url) }.to_string_lossy())
        };
        push_message(&format!("loading {what} is not allowed"));
    });
    ptr::null_mut()
}

/// Runs the body of a callback that C calls: a panic must not unwind into libxml2 (it
/// would abort the process), so it is caught here and the message it was about dropped.
fn without_unwinding(body: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
}

fn push_message(text: &str) {
    // The first line says what happened; libxslt's recursion report adds advice and a
    // dump of the template and variable stacks, which only bury it.
    let text = text.lines().next().unwrap_or_default().trim_end();
    let stack_dump = text.starts_with('#')
        || text.starts_with("name ")
        || matches!(text, "Templates:" | "Variables:");
    if text.is_empty() || stack_dump {
        return;
    }
    // `try_with`: libxml2 may report while the thread exits, after MESSAGES is gone.
    let _ = MESSAGES.try_with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            // A runaway stylesheet can report thousands of errors: keep the first few.
            if m.len() < 2000 {
                if !m.is_empty() {
                    m.push_str("; ");
                }
                m.push_str(text);
            }
        }
    });
}

fn take_messages() -> String {
    MESSAGES
        .try_with(|m| {
            m.try_borrow_mut()
                .map(|mut m| std::mem::take(&mut *m))
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

unsafe extern "C" fn collect_structured_error(_ctx: *mut c_void, error: *mut XmlError) {
    without_unwinding(|| {
        // SAFETY: libxml2 passes null or a valid error whose message is null or a
        // NUL-terminated string, all alive for this call.
        let Some(error) = (unsafe { error.as_ref() }) else {
            return;
        };
        if error.message.is_null() {
            return;
        }
        let message = unsafe { CStr::from_ptr(error.message) }.to_string_lossy();
        if error.line > 0 {
            push_message(&format!("line {}: {}", error.line, message.trim_end()));
        } else {
            push_message(&message);
        }
    });
}

/// The shim's sink: one generic error message, already formatted.
unsafe extern "C" fn receive_generic_message(message: *const c_char) {
    if message.is_null() {
        return;
    }
    without_unwinding(|| {
        // SAFETY: the shim passes a NUL-terminated buffer that lives for this call.
        push_message(&unsafe { CStr::from_ptr(message) }.to_string_lossy());
    });
}

/// What the allocation hooks account against while a transform runs on this thread.
struct Budget {
    context: Cell<*mut TransformContext>,
    net_bytes: Cell<i64>,
    deadline: Cell<Option<Instant>>,
    calls: Cell<u32>,
    exceeded: Cell<Option<Limit>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    Memory,
    Time,
}

impl Budget {
    const fn idle() -> Self {
        Self {
            context: Cell::new(ptr::null_mut()),
            net_bytes: Cell::new(0),
            deadline: Cell::new(None),
            calls: Cell::new(0),
            exceeded: Cell::new(None),
        }
    }

    /// Accounts `delta` bytes; false when the allocation must be refused.
    fn account(&self, delta: i64) -> bool {
        let ctxt = self.context.get();
        if ctxt.is_null() {
            return true;
        }
        let net = self.net_bytes.get() + delta;
        self.net_bytes.set(net);
        if delta <= 0 {
            return true;
        }
        if net > MEMORY_LIMIT as i64 {
            self.stop(ctxt, Limit::Memory);
        }
        let calls = self.calls.get().wrapping_add(1);
        self.calls.set(calls);
        if calls % 64 == 0 {
            if let Some(deadline) = self.deadline.get() {
                if Instant::now() > deadline {
                    self.stop(ctxt, Limit::Time);
                }
            }
        }
        net <= HARD_MEMORY_LIMIT as i64
    }

    fn stop(&self, ctxt: *mut TransformContext, why: Limit) {
        if self.exceeded.get().is_none() {
            self.exceeded.set(Some(why));
        }
        // SAFETY: `ctxt` is the live transform context registered by `Transform::run`
        // for the duration of xsltApplyStylesheetUser on this thread.
        unsafe { (*ctxt).state = XSLT_STATE_STOPPED };
    }
}

fn usable_size(p: *mut c_void) -> i64 {
    if p.is_null() {
        0
    } else {
        // SAFETY: `p` came from libc malloc/realloc (all libxml2 memory goes through the hooks).
        unsafe { libc::malloc_usable_size(p) as i64 }
    }
}

fn account(delta: i64) -> bool {
    BUDGET.try_with(|b| b.account(delta)).unwrap_or(true)
}

unsafe extern "C" fn hook_malloc(size: usize) -> *mut c_void {
    if !account(size as i64) {
        return ptr::null_mut();
    }
    let p = libc::malloc(size);
    account(usable_size(p) - size as i64);
    p
}

unsafe extern "C" fn hook_realloc(old: *mut c_void, size: usize) -> *mut c_void {
    let old_size = usable_size(old);
    if !account(size as i64 - old_size) {
        return ptr::null_mut();
    }
    let p = libc::realloc(old, size);
    if p.is_null() {
        account(old_size - size as i64);
    } else {
        account(usable_size(p) - size as i64);
    }
    p
}

unsafe extern "C" fn hook_free(p: *mut c_void) {
    if !p.is_null() {
        account(-usable_size(p));
        libc::free(p);
    }
}

unsafe extern "C" fn hook_strdup(s: *const c_char) -> *mut c_char {
    if s.is_null() {
        return ptr::null_mut();
    }
    let len = libc::strlen(s) + 1;
    let p = hook_malloc(len) as *mut c_char;
    if !p.is_null() {
        ptr::copy_nonoverlapping(s, p, len);
    }
    p
}

/// An owned libxml2 document (null once given away).
struct Doc {
    api: &'static Api,
    raw: *mut XmlDoc,
}

impl Drop for Doc {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: `raw` is a document libxml2 returned to us and nothing else owns it.
            unsafe { (self.api.xmlFreeDoc)(self.raw) };
        }
    }
}

/// An owned compiled stylesheet (it owns its own document).
struct Stylesheet {
    api: &'static Api,
    raw: *mut XsltStylesheet,
}

impl Drop for Stylesheet {
    fn drop(&mut self) {
        // SAFETY: `raw` is a non-null stylesheet libxslt compiled for us, freed only here.
        unsafe { (self.api.xsltFreeStylesheet)(self.raw) };
    }
}

/// An owned transformation context.
struct TransformGuard {
    api: &'static Api,
    raw: *mut TransformContext,
}

impl Drop for TransformGuard {
    fn drop(&mut self) {
        // SAFETY: `raw` is a non-null context libxslt created for us, freed only here.
        unsafe { (self.api.xsltFreeTransformContext)(self.raw) };
    }
}

/// A string libxml2 allocated.
struct XmlBuffer(*mut u8);

impl Drop for XmlBuffer {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: libxml2 allocated the buffer through the hooks, so `hook_free` owns it.
            unsafe { hook_free(self.0.cast()) };
        }
    }
}

/// Registers a transform with the allocation hooks for its lifetime.
struct BudgetGuard;

impl BudgetGuard {
    fn start(ctxt: *mut TransformContext) -> Self {
        BUDGET.with(|b| {
            b.net_bytes.set(0);
            b.calls.set(0);
            b.exceeded.set(None);
            b.deadline.set(Some(Instant::now() + TIME_LIMIT));
            b.context.set(ctxt);
        });
        BudgetGuard
    }

    fn exceeded(&self) -> Option<Limit> {
        BUDGET.with(|b| b.exceeded.get())
    }
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        BUDGET.with(|b| {
            b.context.set(ptr::null_mut());
            b.deadline.set(None);
        });
    }
}

struct StylesheetCache(VecDeque<(String, std::rc::Rc<Stylesheet>)>);

/// `what` names the document in messages and is its base URL (relative references in
/// it resolve to nothing loadable).
fn parse_document(
    api: &'static Api,
    text: &str,
    what: &CStr,
    kind: TemplateErrorKind,
) -> Result<Doc, TemplateError> {
    let what_text = what.to_string_lossy();
    let size = c_int::try_from(text.len()).map_err(|_| {
        TemplateError::new(
            TemplateErrorKind::Limit,
            format!("XSLT: the {what_text} is too large"),
        )
    })?;
    take_messages();
    // SAFETY: the buffer is `size` valid bytes and the strings are NUL-terminated; libxml2
    // copies what it needs before returning.
    let raw = unsafe {
        (api.xmlReadMemory)(
            text.as_ptr().cast(),
            size,
            what.as_ptr(),
            c"UTF-8".as_ptr(),
            PARSE_OPTIONS,
        )
    };
    let messages = take_messages();
    if raw.is_null() {
        return Err(TemplateError::new(
            kind,
            format!(
                "XSLT: the {what_text} is not well-formed XML: {}",
                or_unknown(&messages)
            ),
        ));
    }
    Ok(Doc { api, raw })
}

fn or_unknown(messages: &str) -> &str {
    if messages.is_empty() {
        "libxml2 gave no reason"
    } else {
        messages
    }
}

fn compile(api: &'static Api, template: &str) -> Result<std::rc::Rc<Stylesheet>, TemplateError> {
    if let Some(found) = CACHE.with(|c| {
        c.borrow()
            .0
            .iter()
            .find(|(text, _)| text == template)
            .map(|(_, s)| s.clone())
    }) {
        return Ok(found);
    }
    let mut doc = parse_document(api, template, c"stylesheet", TemplateErrorKind::Invalid)?;
    take_messages();
    // SAFETY: `doc.raw` is a live document we own.
    let raw = unsafe { (api.xsltParseStylesheetDoc)(doc.raw) };
    let messages = take_messages();
    if raw.is_null() {
        // On failure libxslt leaves the document to the caller (`doc` frees it).
        return Err(TemplateError::new(
            TemplateErrorKind::Invalid,
            format!(
                "XSLT: the stylesheet is not valid: {}",
                or_unknown(&messages)
            ),
        ));
    }
    // The stylesheet owns the document from here on.
    doc.raw = ptr::null_mut();
    let style = std::rc::Rc::new(Stylesheet { api, raw });
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0.len() >= CACHE_SIZE {
            c.0.pop_front();
        }
        c.0.push_back((template.to_owned(), style.clone()));
    });
    Ok(style)
}

/// Applies `stylesheet` to `document`; the output is serialised as the stylesheet's
/// `xsl:output` says (method xml, html or text). Runs in this thread's render process, so
/// that the time limit holds even where libxslt does not check it.
pub fn transform(stylesheet: &str, document: &str) -> Result<String, TemplateError> {
    super::process::render(Job::Xslt {
        stylesheet,
        document,
    })
}

/// Loads and sets up the libraries, once per process.
pub(crate) fn load() -> Result<(), TemplateError> {
    api().map(|_| ())
}

/// Transforms in the calling thread, with only libxslt's own limits: [`transform`] is what
/// the notification modules use (the render process runs this). The first call loads
/// the libraries.
pub fn transform_here(stylesheet: &str, document: &str) -> Result<String, TemplateError> {
    let api = api()?;
    init_thread(api);
    let style = compile(api, stylesheet)?;
    let input = parse_document(api, document, c"notice XML", TemplateErrorKind::Data)?;
    // SAFETY: both are live objects we own, and they outlive the context (declared after).
    let raw = unsafe { (api.xsltNewTransformContext)(style.raw, input.raw) };
    if raw.is_null() {
        return Err(TemplateError::new(
            TemplateErrorKind::Engine,
            "XSLT: libxslt could not create a transformation context",
        ));
    }
    let ctxt = TransformGuard { api, raw };
    let sec = api.security_prefs;
    // SAFETY: `sec` is the preferences made at set-up and never freed; `ctxt` is live.
    if sec.is_null() || unsafe { (api.xsltSetCtxtSecurityPrefs)(sec, ctxt.raw) } != 0 {
        return Err(TemplateError::new(
            TemplateErrorKind::Engine,
            "XSLT: the security preferences could not be applied; refusing to transform",
        ));
    }
    if api.xpath_op_limit {
        // SAFETY: `ctxt` is live and xsltNewTransformContext gave it an XPath context, whose
        // layout up to the limits is `XPathContext` in this libxml2 (checked at load).
        unsafe {
            let xpath = (*ctxt.raw).xpath_ctxt.cast::<XPathContext>();
            if let Some(xpath) = xpath.as_mut() {
                xpath.op_limit = XPATH_OP_LIMIT;
            }
        }
    }
    take_messages();
    let (result, exceeded) = {
        let budget = BudgetGuard::start(ctxt.raw);
        // SAFETY: stylesheet, input and context are live and belong together; no
        // parameters, output file or profiling.
        let raw = unsafe {
            (api.xsltApplyStylesheetUser)(
                style.raw,
                input.raw,
                ptr::null(),
                ptr::null(),
                ptr::null_mut(),
                ctxt.raw,
            )
        };
        (Doc { api, raw }, budget.exceeded())
    };
    let messages = take_messages();
    match exceeded {
        Some(Limit::Memory) => {
            return Err(TemplateError::new(
                TemplateErrorKind::Limit,
                format!(
                    "XSLT: the stylesheet used more than {} MiB and was stopped",
                    MEMORY_LIMIT / (1024 * 1024)
                ),
            ))
        }
        Some(Limit::Time) => {
            return Err(TemplateError::new(
                TemplateErrorKind::Limit,
                format!(
                    "XSLT: the stylesheet ran longer than {} s and was stopped",
                    TIME_LIMIT.as_secs()
                ),
            ))
        }
        None => {}
    }
    if messages.contains(XPATH_OP_LIMIT_MESSAGE) {
        return Err(TemplateError::new(
            TemplateErrorKind::Limit,
            format!(
                "XSLT: the stylesheet took more than {XPATH_OP_LIMIT} XPath steps and was stopped"
            ),
        ));
    }
    if result.raw.is_null() {
        return Err(TemplateError::new(
            TemplateErrorKind::Invalid,
            format!("XSLT: the transformation failed: {}", or_unknown(&messages)),
        ));
    }
    let mut out: *mut u8 = ptr::null_mut();
    let mut len: c_int = 0;
    // SAFETY: `result` and `style` are live; libxslt stores a buffer it allocated (through
    // the hooks) and its length in `out`/`len`.
    let rc = unsafe { (api.xsltSaveResultToString)(&mut out, &mut len, result.raw, style.raw) };
    let buffer = XmlBuffer(out);
    if rc != 0 {
        return Err(TemplateError::new(
            TemplateErrorKind::Engine,
            "XSLT: the result could not be serialised",
        ));
    }
    if buffer.0.is_null() || len <= 0 {
        return Ok(String::new());
    }
    // SAFETY: libxslt wrote `len` bytes at `buffer.0`, which lives until the copy is made.
    let bytes = unsafe { std::slice::from_raw_parts(buffer.0, len as usize) };
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        TemplateError::new(
            TemplateErrorKind::Invalid,
            "XSLT: the output is not UTF-8; use encoding=\"UTF-8\" in xsl:output",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_names_the_debian_package() {
        let Err(why) = Library::open(c"libmgrnotify-absent.so.7", "libabsent7") else {
            panic!("a library that does not exist was opened");
        };
        assert!(why.contains("libmgrnotify-absent.so.7"), "{why}");
        assert!(
            why.contains("install the Debian package libabsent7"),
            "{why}"
        );
    }

    #[test]
    fn a_missing_symbol_is_an_error_not_a_crash() {
        let libc = Library::open(c"libc.so.6", "libc6").unwrap();
        // SAFETY: the symbol does not exist, so no pointer of the wrong type is made.
        let found = unsafe { libc.symbol::<unsafe extern "C" fn()>(c"xsltNoSuchFunction") };
        let Err(why) = found else {
            panic!("libc has no xsltNoSuchFunction");
        };
        assert!(why.contains("libc.so.6 has no xsltNoSuchFunction"), "{why}");
    }

    #[test]
    fn the_libraries_load_and_are_set_up() {
        let api = api().unwrap();
        // SAFETY: the variables were resolved from libxslt and set once at load.
        let (depth, vars) = unsafe { (*api.xsltMaxDepth, *api.xsltMaxVars) };
        assert_eq!((depth, vars), (MAX_TEMPLATE_DEPTH, MAX_VARIABLES));
        assert!(!api.security_prefs.is_null());
    }

    /// The generic error handlers as libxml2 and libxslt call them: C-variadic.
    fn installed_generic_handlers() -> [GenericErrorFunc; 2] {
        let api = api().unwrap();
        init_thread(api);
        let xml2 = Library::open(c"libxml2.so.2", "libxml2").unwrap();
        let xslt = Library::open(c"libxslt.so.1", "libxslt1.1").unwrap();
        // SAFETY: `xsltGenericError` is a variable holding the handler; `__xmlGenericError`
        // returns a pointer to this thread's handler variable.
        unsafe {
            let of_xslt: *const Option<GenericErrorFunc> =
                xslt.symbol(c"xsltGenericError").unwrap();
            let of_xml2: unsafe extern "C" fn() -> *const Option<GenericErrorFunc> =
                xml2.symbol(c"__xmlGenericError").unwrap();
            [(*of_xml2()).unwrap(), (*of_xslt).unwrap()]
        }
    }

    #[test]
    fn generic_errors_are_formatted_like_printf() {
        for handler in installed_generic_handlers() {
            take_messages();
            // SAFETY: a printf format and arguments of the types it names.
            unsafe {
                handler(
                    ptr::null_mut(),
                    c"%s line %d: %lu nodes, %.1f%% of %c%c, %s".as_ptr(),
                    c"element".as_ptr(),
                    7 as c_int,
                    123_456_789_012 as std::ffi::c_ulong,
                    99.5 as std::ffi::c_double,
                    b'o' as c_int,
                    b'k' as c_int,
                    c"end".as_ptr(),
                )
            };
            assert_eq!(
                take_messages(),
                "element line 7: 123456789012 nodes, 99.5% of ok, end"
            );
        }
    }

    /// Reports an error through a handler when dropped: at thread exit, after the
    /// thread's message buffer may already be gone.
    struct ReportsWhenDropped(GenericErrorFunc);

    impl Drop for ReportsWhenDropped {
        fn drop(&mut self) {
            // SAFETY: a printf format and an argument of the type it names.
            unsafe { (self.0)(ptr::null_mut(), c"late %s".as_ptr(), c"report".as_ptr()) };
        }
    }

    thread_local! {
        static LATE_REPORTER: RefCell<Option<ReportsWhenDropped>> = const { RefCell::new(None) };
    }

    #[test]
    fn an_error_reported_while_a_thread_exits_is_dropped_not_an_abort() {
        let [_, of_xslt] = installed_generic_handlers();
        std::thread::spawn(move || {
            // Thread-locals are destroyed in the reverse order of first use: the
            // message buffer (used second) goes before the reporter (used first).
            LATE_REPORTER.with(|r| *r.borrow_mut() = Some(ReportsWhenDropped(of_xslt)));
            take_messages();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_refused_memory_setup_is_an_error() {
        unsafe extern "C" fn refusing_setup(
            _: unsafe extern "C" fn(*mut c_void),
            _: unsafe extern "C" fn(usize) -> *mut c_void,
            _: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void,
            _: unsafe extern "C" fn(*const c_char) -> *mut c_char,
        ) -> c_int {
            -1
        }
        // SAFETY: the stand-in installs nothing.
        let why = unsafe { install_memory_hooks(refusing_setup) }.unwrap_err();
        assert!(
            why.contains("xmlMemSetup") && why.contains("refused"),
            "{why}"
        );
    }

    #[test]
    fn library_versions_outside_the_known_layouts_are_refused() {
        assert!(check_versions(20914, 10135).is_ok());
        let why = check_versions(20812, 10135).unwrap_err();
        assert!(why.contains("libxml2 2.8.12 is not supported"), "{why}");
        let why = check_versions(21400, 10135).unwrap_err();
        assert!(why.contains("libxml2 2.14.0 is not supported"), "{why}");
        let why = check_versions(20914, 10200).unwrap_err();
        assert!(why.contains("libxslt 1.2.0 is not supported"), "{why}");
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn copied_structures_match_the_library_headers() {
        // Offsets printed by a C program built against libxml2 2.9.14's and libxslt
        // 1.1.35's headers (LP64).
        assert_eq!(std::mem::offset_of!(TransformContext, xpath_ctxt), 160);
        assert_eq!(std::mem::offset_of!(TransformContext, state), 168);
        assert_eq!(std::mem::offset_of!(XPathContext, last_error), 232);
        assert_eq!(std::mem::offset_of!(XPathContext, op_limit), 352);
        assert_eq!(std::mem::size_of::<XPathContext>(), 376);
    }
}
