//! The sandbox every provider script runs in: a raw rhai engine (no files, environment,
//! processes, modules, `eval`, `sleep`) with limits on operations, sizes, call depth
//! and script time.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicBlobPackage, BasicFnPackage, BasicIteratorPackage,
    BasicMapPackage, BasicMathPackage, BasicStringPackage, BitFieldPackage, LogicPackage,
    MoreStringPackage, Package,
};
use rhai::{Dynamic, Engine};

/// Operations one command may run: far above what a provider mapping needs.
pub const MAX_OPERATIONS: u64 = 20_000_000;
/// Script time one command may use, not counting time spent waiting for HTTP.
pub const MAX_SCRIPT_TIME: Duration = Duration::from_millis(500);
/// Longest string, in bytes (a reply is at most 2 MiB).
pub const MAX_STRING_SIZE: usize = 8 * 1024 * 1024;
/// Most items in one array or map.
pub const MAX_ARRAY_SIZE: usize = 100_000;
pub const MAX_MAP_SIZE: usize = 100_000;
/// Deepest chain of script function calls.
pub const MAX_CALL_LEVELS: usize = 24;
/// Deepest expression nesting, at top level and inside functions.
pub const MAX_EXPR_DEPTH: usize = 64;
pub const MAX_FN_EXPR_DEPTH: usize = 32;
/// Largest script file accepted.
pub const MAX_SCRIPT_BYTES: u64 = 1024 * 1024;

/// Keywords a provider script may not use: no code from strings, no modules.
const DISABLED_SYMBOLS: [&str; 3] = ["eval", "import", "export"];

/// What `on_progress` answers when the script-time budget is spent; turned into a
/// clear message by the caller.
pub const TIME_LIMIT_TOKEN: &str = "script time limit";

thread_local! {
    /// When the running command's script time ends; `None` outside a command.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The bare sandboxed engine: limits and disabled keywords, no functions. It compiles
/// scripts and reads their metadata, which keeps `--command features` cheap.
pub fn bare_engine() -> Engine {
    let mut engine = Engine::new_raw();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FN_EXPR_DEPTH)
        .set_strict_variables(true);
    for symbol in DISABLED_SYMBOLS {
        engine.disable_symbol(symbol);
    }
    engine.on_progress(|operations| {
        if operations % 1024 != 0 {
            return None;
        }
        let expired = DEADLINE.with(|d| d.get().is_some_and(|end| Instant::now() >= end));
        expired.then(|| Dynamic::from(TIME_LIMIT_TOKEN))
    });
    engine.on_print(|text| crate::debug!("script print: {text}"));
    engine.on_debug(|text, source, pos| {
        crate::debug!("script debug {}:{pos}: {text}", source.unwrap_or("?"))
    });
    engine
}

/// The bare engine plus rhai's standard functions, except the ones that touch the
/// host (`sleep`, `exit`, `timestamp`, `parse_json`: see [`super::helpers`] for the
/// host's own).
pub fn full_engine() -> Engine {
    let mut engine = bare_engine();
    for module in [
        ArithmeticPackage::new().as_shared_module(),
        LogicPackage::new().as_shared_module(),
        BitFieldPackage::new().as_shared_module(),
        BasicMathPackage::new().as_shared_module(),
        BasicStringPackage::new().as_shared_module(),
        MoreStringPackage::new().as_shared_module(),
        BasicIteratorPackage::new().as_shared_module(),
        BasicArrayPackage::new().as_shared_module(),
        BasicBlobPackage::new().as_shared_module(),
        BasicMapPackage::new().as_shared_module(),
        BasicFnPackage::new().as_shared_module(),
    ] {
        engine.register_global_module(module);
    }
    engine
}

/// Starts the script-time budget of one command on this thread; it ends when the
/// guard is dropped.
pub fn start_budget() -> BudgetGuard {
    let previous = DEADLINE.with(|d| d.replace(Some(Instant::now() + MAX_SCRIPT_TIME)));
    BudgetGuard { previous }
}

pub struct BudgetGuard {
    previous: Option<Instant>,
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(self.previous));
    }
}

/// Runs `wait` (an HTTP exchange) without counting its time against the budget.
pub fn off_the_clock<T>(wait: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = wait();
    let waited = started.elapsed();
    DEADLINE.with(|d| d.set(d.get().map(|end| end + waited)));
    result
}
