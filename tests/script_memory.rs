//! Scripts built to get round the sandbox's per-value limits (many big values, big
//! temporaries, closure captures, standard functions whose result dwarfs their input,
//! helpers given huge input): each command fails with a clear error soon after its
//! 500 ms limit, and the `mgrnotify send --dry-run` process running it stays small.

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::mgr_root::{MgrRoot, BIN};

/// A command may hold 64 MiB; the process itself (debug build, an 8 MiB string the
/// script starts from) adds a few tens.
const PEAK_RSS_BYTES: u64 = 150 * 1024 * 1024;

/// The script-time limit is 500 ms: this only proves that it held.
const HANG: Duration = Duration::from_secs(3);

/// Script lines that leave `s`, a 4 MiB string, as the raw material of an attack.
const FOUR_MIB: &str = r#"let s = "x"; while s.len() < 4000000 { s += s; }"#;

struct Run {
    status: ExitStatus,
    stderr: String,
    elapsed: Duration,
    peak_rss: u64,
}

/// Runs `body` as the outgoing() of a script through `mgrnotify send --dry-run` and
/// measures the process's peak resident size.
// The child is reaped by wait4, which also reports its resource use.
#[allow(clippy::zombie_processes)]
fn run_hostile(name: &str, body: &str, extra_functions: &str) -> Run {
    let root = MgrRoot::new();
    let script = root.write(
        &format!("attack/gw{name}.rhai"),
        &format!(
            "fn metadata() {{ #{{title: \"T\", notify_module: \"ntsms\"}} }}\n\
             fn outgoing(req) {{\n{body}\n}}\n{extra_functions}\n"
        ),
    );
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("send")
        .arg(&script)
        .args(["--to", "+79990000000", "--text", "hi", "--dry-run"])
        .env("MGR_ROOT", root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mgrnotify send");
    let mut pipe = child.stderr.take().expect("stderr pipe");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    let pid = i32::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; `status` and `usage` are valid for writing.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    let elapsed = started.elapsed();
    Run {
        status: ExitStatus::from_raw(status),
        stderr: reader.join().unwrap_or_default(),
        elapsed,
        // ru_maxrss is in KiB on Linux.
        peak_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
    }
}

/// The command failed with `words` in its message, in time, and the process stayed small.
fn assert_bounded(name: &str, body: &str, extra_functions: &str, words: &str) {
    let run = run_hostile(name, body, extra_functions);
    assert!(
        run.peak_rss < PEAK_RSS_BYTES,
        "{name}: peak RSS {} MiB",
        run.peak_rss / (1024 * 1024)
    );
    assert!(run.elapsed < HANG, "{name}: took {:?}", run.elapsed);
    assert_eq!(run.status.code(), Some(1), "{name}: {}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
    assert!(
        run.stderr.contains(words),
        "{name}: '{words}' not in: {}",
        run.stderr
    );
}

/// Generated `let` lines: `count` copies of `s`, each a new 4 MiB string.
fn many_lets(count: usize) -> String {
    (0..count)
        .map(|i| format!("let a{i} = s + \"{i}\";\n"))
        .collect()
}

#[test]
fn many_big_variables_hit_the_memory_limit() {
    // 200 values of 4 MiB, each within the string limit, in fewer operations than
    // the clock used to be checked after.
    assert_bounded(
        "lets",
        &format!("{FOUR_MIB}\n{}", many_lets(200)),
        "",
        "memory limit of 64 MiB",
    );
}

#[test]
fn big_temporaries_in_function_arguments_hit_the_memory_limit() {
    let args: String = (0..300).map(|i| format!("s + \"{i}\", ")).collect();
    assert_bounded(
        "args",
        &format!("{FOUR_MIB}\nnothere({args}1);"),
        "",
        "memory limit of 64 MiB",
    );
}

#[test]
fn values_captured_by_closures_and_curried_hit_the_memory_limit() {
    assert_bounded(
        "closures",
        &format!("{FOUR_MIB}\nlet a = [];\nloop {{ let t = s + a.len(); a.push(|| t); }}"),
        "",
        "memory limit of 64 MiB",
    );
    assert_bounded(
        "curry",
        &format!("{FOUR_MIB}\nlet a = [];\nloop {{ a.push(Fn(\"keep\").curry(s + a.len())); }}"),
        "fn keep(x) { x }",
        "memory limit of 64 MiB",
    );
}

#[test]
fn values_held_down_a_call_chain_hit_the_memory_limit() {
    assert_bounded(
        "recursion",
        &format!("{FOUR_MIB}\ndown(0, s);"),
        "fn down(n, s) { let a = s + n; let b = s + n + 1; let c = s + n + 2; down(n + 1, s) }",
        "memory limit of 64 MiB",
    );
}

#[test]
fn splitting_a_big_string_stops_at_the_array_limit() {
    assert_bounded(
        "split",
        "let commas = \",\"; while commas.len() < 4000000 { commas += commas; }\n\
         let parts = (commas + commas).split(\",\");",
        "",
        "Size of array",
    );
    assert_bounded(
        "chars",
        &format!("{FOUR_MIB}\nlet chars = (s + s).to_chars();"),
        "",
        "Size of array",
    );
    assert_bounded(
        "words",
        "let words = \"x \"; while words.len() < 4000000 { words += words; }\n\
         let parts = (words + words).split();",
        "",
        "Size of array",
    );
}

#[test]
fn replacing_into_a_huge_string_is_refused_before_it_is_built() {
    assert_bounded(
        "replace",
        &format!(
            "{FOUR_MIB}\nlet long = \"y\"; while long.len() < 100 {{ long += long; }}\n\
             s.replace(\"x\", long);"
        ),
        "",
        "Length of string",
    );
}

#[test]
fn json_with_millions_of_values_is_refused_before_it_is_built() {
    assert_bounded(
        "json",
        // Nearly 8 MiB of `"",`: 2.6 million strings.
        "let x = \"\\\"\\\",\"; while x.len() < 4000000 { x += x; }\n\
         let more = \"\\\"\\\",\"; while more.len() < 1500000 { more += more; }\n\
         let doc = json_parse(\"[\" + x + more + \"1]\");",
        "",
        "json_parse: the document has more than",
    );
}

#[test]
fn ordinary_scripts_are_untouched_by_the_limits() {
    let run = run_hostile(
        "ordinary",
        r#"let parts = "a,b,,c".split(",");
           let words = " a  b ".split();
           let rev = "a-b-c".split_rev("-", 2);
           let chars = "añb".to_chars();
           let text = "a.b"; text.replace(".", "::"); text.replace('a', 'A');
           let doc = json_parse("{\"a\": [1, \"x,[{\", {\"b\": null}]}");
           let tree = xml_parse("<r><a x='1'/><b>t</b></r>");
           let big = []; for i in 0..1000 { big.push(`item ${i}`); }
           if parts != ["a", "b", "", "c"] || words != ["a", "b"] || rev != ["c", "a-b"]
              || chars.len() != 3 || text != "A::b" || doc.a.len() != 3
              || tree.children.len() != 2 || big.len() != 1000 {
               fail(`wrong: ${parts} ${words} ${rev} ${chars} ${text}`);
           }"#,
        "",
    );
    assert!(run.status.success(), "{}", run.stderr);
}
