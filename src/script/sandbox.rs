//! The sandbox every provider script runs in: a raw rhai engine (no files, environment,
//! processes, modules, `eval`, `sleep`) with limits on operations, sizes, call depth,
//! script time and the memory a command holds.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicBlobPackage, BasicFnPackage, BasicIteratorPackage,
    BasicMapPackage, BasicMathPackage, BasicStringPackage, BitFieldPackage, LogicPackage,
    MoreStringPackage, Package,
};
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Position, INT};

use super::memory;

/// Operations one command may run: far above what a provider mapping needs.
pub const MAX_OPERATIONS: u64 = 20_000_000;
/// Script time one command may use, not counting time spent waiting for HTTP.
pub const MAX_SCRIPT_TIME: Duration = Duration::from_millis(500);
/// Memory one command may hold beyond what its thread held when it started: every
/// value, temporary and helper result together (a provider mapping needs well under
/// 1 MiB; a 2 MiB reply parsed into maps a few times that).
pub const MAX_SCRIPT_MEMORY: usize = 64 * 1024 * 1024;
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

/// Operations between two looks at the clock. One operation can take milliseconds
/// (copying or slicing an 8 MiB string), so the clock is read often; memory is
/// checked after every operation.
const CLOCK_EVERY: u64 = 4;

/// What `on_progress` answers when the script-time budget is spent; turned into a
/// clear message by the caller.
pub const TIME_LIMIT_TOKEN: &str = "script time limit";
/// What `on_progress` answers when the command holds more than [`MAX_SCRIPT_MEMORY`].
pub const MEMORY_LIMIT_TOKEN: &str = "script memory limit";

/// The limits of the command running on a thread.
#[derive(Clone, Copy)]
struct Budget {
    /// When the command's script time ends.
    deadline: Instant,
    /// What the thread held when the command started.
    memory_base: isize,
}

impl Budget {
    /// Which limit the command has gone past, if any; the clock only when `clock`.
    fn exceeded(self, clock: bool) -> Option<&'static str> {
        let held = memory::held_by_this_thread().saturating_sub(self.memory_base);
        if usize::try_from(held).is_ok_and(|held| held > MAX_SCRIPT_MEMORY) {
            Some(MEMORY_LIMIT_TOKEN)
        } else if clock && Instant::now() >= self.deadline {
            Some(TIME_LIMIT_TOKEN)
        } else {
            None
        }
    }
}

thread_local! {
    /// The running command's limits; `None` outside a command.
    static BUDGET: Cell<Option<Budget>> = const { Cell::new(None) };
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
        let budget = BUDGET.with(Cell::get)?;
        budget
            .exceeded(operations % CLOCK_EVERY == 0)
            .map(Dynamic::from)
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
    register_bounded_std(&mut engine);
    engine
}

/// Replaces the standard functions whose result can be far larger than their input
/// before rhai measures it: splitting 8 MiB into 8 million strings or replacing each
/// character by a long string took seconds and gigabytes. These versions stop at
/// the sandbox's size limits while building the result.
fn register_bounded_std(engine: &mut Engine) {
    engine.register_fn("to_chars", |s: &str| bounded_array(s.chars()));
    engine.register_fn("split", |s: &mut ImmutableString| {
        if s.is_empty() {
            return Ok(vec![s.clone().into()]);
        }
        bounded_array(s.split_whitespace())
    });
    engine.register_fn("split", |s: &mut ImmutableString, delimiter: &str| {
        if s.is_empty() {
            return Ok(vec![s.clone().into()]);
        }
        bounded_array(s.split(delimiter))
    });
    engine.register_fn("split", |s: &mut ImmutableString, delimiter: char| {
        if s.is_empty() {
            return Ok(vec![s.clone().into()]);
        }
        bounded_array(s.split(delimiter))
    });
    engine.register_fn("split_rev", |s: &mut ImmutableString, delimiter: &str| {
        if s.is_empty() {
            return Ok(vec![s.clone().into()]);
        }
        bounded_array(s.rsplit(delimiter))
    });
    engine.register_fn("split_rev", |s: &mut ImmutableString, delimiter: char| {
        if s.is_empty() {
            return Ok(vec![s.clone().into()]);
        }
        bounded_array(s.rsplit(delimiter))
    });
    engine.register_fn(
        "split",
        |s: &mut ImmutableString, delimiter: &str, segments: INT| match segment_count(s, segments) {
            Some(n) => bounded_array(s.splitn(n, delimiter)),
            None => Ok(vec![s.clone().into()]),
        },
    );
    engine.register_fn(
        "split",
        |s: &mut ImmutableString, delimiter: char, segments: INT| match segment_count(s, segments) {
            Some(n) => bounded_array(s.splitn(n, delimiter)),
            None => Ok(vec![s.clone().into()]),
        },
    );
    engine.register_fn(
        "split_rev",
        |s: &mut ImmutableString, delimiter: &str, segments: INT| match segment_count(s, segments) {
            Some(n) => bounded_array(s.rsplitn(n, delimiter)),
            None => Ok(vec![s.clone().into()]),
        },
    );
    engine.register_fn(
        "split_rev",
        |s: &mut ImmutableString, delimiter: char, segments: INT| match segment_count(s, segments) {
            Some(n) => bounded_array(s.rsplitn(n, delimiter)),
            None => Ok(vec![s.clone().into()]),
        },
    );
    engine.register_fn(
        "replace",
        |s: &mut ImmutableString, find: &str, with: &str| bounded_replace(s, find, with),
    );
    engine.register_fn(
        "replace",
        |s: &mut ImmutableString, find: &str, with: char| {
            bounded_replace(s, find, with.encode_utf8(&mut [0; 4]))
        },
    );
    engine.register_fn(
        "replace",
        |s: &mut ImmutableString, find: char, with: &str| {
            bounded_replace(s, find.encode_utf8(&mut [0; 4]), with)
        },
    );
    engine.register_fn(
        "replace",
        |s: &mut ImmutableString, find: char, with: char| {
            bounded_replace(
                s,
                find.encode_utf8(&mut [0; 4]),
                with.encode_utf8(&mut [0; 4]),
            )
        },
    );
}

/// `split(s, delimiter, segments)`: rhai gives the whole string for fewer than two
/// segments or an empty string.
fn segment_count(s: &str, segments: INT) -> Option<usize> {
    (segments > 1 && !s.is_empty()).then(|| usize::try_from(segments).unwrap_or(usize::MAX))
}

/// The items as an array, refused as soon as there are more than an array may hold.
fn bounded_array<T: Into<Dynamic>>(
    items: impl Iterator<Item = T>,
) -> Result<Array, Box<EvalAltResult>> {
    let mut array = Array::new();
    for item in items {
        if array.len() >= MAX_ARRAY_SIZE {
            return Err(too_large("Size of array/BLOB"));
        }
        array.push(item.into());
    }
    Ok(array)
}

/// `s` with every `find` replaced by `with`, refused before it is built when the
/// result would be longer than a string may be.
fn bounded_replace(
    s: &mut ImmutableString,
    find: &str,
    with: &str,
) -> Result<(), Box<EvalAltResult>> {
    if s.is_empty() {
        return Ok(());
    }
    if with.len() > find.len() {
        let found = s.matches(find).count();
        let longer = found.saturating_mul(with.len() - find.len());
        if s.len().saturating_add(longer) > MAX_STRING_SIZE {
            return Err(too_large("Length of string"));
        }
    }
    *s = s.replace(find, with).into();
    Ok(())
}

fn too_large(what: &str) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorDataTooLarge(
        what.to_owned(),
        Position::NONE,
    ))
}

/// Ends a host helper's long work when the command's time or memory is spent: the
/// same uncatchable error the engine raises between operations.
pub fn check_budget() -> Result<(), Box<EvalAltResult>> {
    match BUDGET.with(Cell::get).and_then(|b| b.exceeded(true)) {
        Some(token) => Err(Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(token),
            Position::NONE,
        ))),
        None => Ok(()),
    }
}

/// Starts the time and memory budget of one command on this thread; it ends when
/// the guard is dropped.
pub fn start_budget() -> BudgetGuard {
    let budget = Budget {
        deadline: Instant::now() + MAX_SCRIPT_TIME,
        memory_base: memory::held_by_this_thread(),
    };
    let previous = BUDGET.with(|b| b.replace(Some(budget)));
    BudgetGuard { previous }
}

pub struct BudgetGuard {
    previous: Option<Budget>,
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        BUDGET.with(|b| b.set(self.previous));
    }
}

/// Runs `wait` (an HTTP exchange) without counting its time against the budget.
pub fn off_the_clock<T>(wait: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = wait();
    let waited = started.elapsed();
    BUDGET.with(|b| {
        b.set(b.get().map(|budget| Budget {
            deadline: budget.deadline + waited,
            ..budget
        }))
    });
    result
}
