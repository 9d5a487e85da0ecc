//! Hostile and broken provider scripts, run through their gate symlinks: each ends
//! with a clear error XML (type "script", the script's file as object, a line
//! number) well within a second or two, never a hang or a panic.

mod common;

use std::time::{Duration, Instant};

use common::mgr_root::{error_of, stderr, stdout, MgrRoot};

const METADATA: &str = r#"fn metadata() { #{title: "Test", notify_module: "ntsms"} }"#;

/// Generous: the sandbox stops scripts after 500 ms of script time; this only
/// catches a hang.
const HANG: Duration = Duration::from_secs(2);

const OUTGOING: &str = "<doc><gateway><xmlparams>&lt;doc/&gt;</xmlparams></gateway>\
                        <message>Hi</message><user><phone>+79990000000</phone></user></doc>";

/// Installs `body` (after the metadata line) as gw<name> and runs `command`.
fn run_script(name: &str, body: &str, command: &str) -> (std::process::Output, Duration) {
    let root = MgrRoot::new();
    let role = format!("gw{name}");
    root.add_script(&role, &format!("{METADATA}\n{body}"));
    let started = Instant::now();
    let out = root.run(&format!("gate/{role}"), &["--command", command], OUTGOING);
    (out, started.elapsed())
}

/// Where an error must point: a line, or (sandbox limits, which rhai reports without
/// a line) the function that was running.
enum At {
    Line(usize),
    Function(&'static str),
}

/// Runs a hostile script and checks the error: script type, file as object, the
/// expected words and place, in time.
fn assert_script_error(name: &str, body: &str, command: &str, words: &[&str], at: At) {
    let (out, elapsed) = run_script(name, body, command);
    assert!(elapsed < HANG, "{name}: took {elapsed:?}");
    assert_ne!(out.status.code(), Some(0), "{name}: {}", stdout(&out));
    assert!(
        !stderr(&out).contains("panicked"),
        "{name}: {}",
        stderr(&out)
    );
    let (kind, object, msg) = error_of(&out);
    assert_eq!(kind, "script", "{name}: {msg}");
    assert_eq!(object, format!("gw{name}.rhai"), "{name}: {msg}");
    for w in words {
        assert!(msg.contains(w), "{name}: '{w}' not in: {msg}");
    }
    let place = match at {
        At::Line(line) => format!("line {line}"),
        At::Function(f) => f.to_owned(),
    };
    assert!(msg.contains(&place), "{name}: no '{place}' in: {msg}");
}

#[test]
fn endless_loop_is_stopped() {
    assert_script_error(
        "loop",
        "fn outgoing(req) {\n  let n = 0;\n  loop { n += 1; }\n}",
        "outgoing",
        &["endless loop"],
        At::Function("fn outgoing()"),
    );
}

#[test]
fn endless_loop_at_top_level_is_stopped_even_for_features() {
    assert_script_error(
        "toploop",
        "fn outgoing(req) {}\nwhile true {}",
        "features",
        &["endless loop"],
        At::Line(3),
    );
}

#[test]
fn huge_string_is_stopped() {
    assert_script_error(
        "bigstring",
        "fn outgoing(req) {\n  let s = \"xxxxxxxx\";\n  loop { s += s; }\n}",
        "outgoing",
        &["sandbox limit"],
        At::Function("fn outgoing()"),
    );
}

#[test]
fn huge_array_is_stopped() {
    assert_script_error(
        "bigarray",
        "fn outgoing(req) {\n  let a = [];\n  loop { a.push(1); }\n}",
        "outgoing",
        // rhai re-measures the array on each push, so the time limit may come first.
        &["limit"],
        At::Function("fn outgoing()"),
    );
}

#[test]
fn deep_recursion_is_stopped() {
    assert_script_error(
        "recursion",
        "fn down(n) { down(n + 1) }\nfn outgoing(req) {\n  down(0)\n}",
        "outgoing",
        &["endless recursion"],
        At::Function("fn outgoing()"),
    );
}

#[test]
fn import_is_refused_at_compile_time() {
    assert_script_error(
        "import",
        "import \"/etc/passwd\" as secrets;\nfn outgoing(req) {}",
        "outgoing",
        &["import"],
        At::Line(2),
    );
}

#[test]
fn eval_is_refused_at_compile_time() {
    assert_script_error(
        "eval",
        "fn outgoing(req) {\n  eval(\"1 + 1\")\n}",
        "features",
        &["eval"],
        At::Line(3),
    );
}

#[test]
fn no_sleep_files_or_processes() {
    for (name, call) in [
        ("sleep", "sleep(100)"),
        ("exit", "exit(3)"),
        ("open", "open_file(\"/etc/passwd\")"),
        ("exec", "system(\"id\")"),
    ] {
        assert_script_error(
            name,
            &format!("fn outgoing(req) {{\n  {call}\n}}"),
            "outgoing",
            &["Function not found"],
            At::Line(3),
        );
    }
}

#[test]
fn runtime_errors_name_the_line() {
    assert_script_error(
        "typo",
        "fn outgoing(req) {\n  let x = req.params.nothing;\n  x.len() + 1\n}",
        "outgoing",
        &["Function not found"],
        At::Line(4),
    );
}

#[test]
fn syntax_errors_name_line_and_column() {
    assert_script_error(
        "syntax",
        "fn outgoing(req) {\n  let x = ;\n}",
        "features",
        &["syntax error", "column"],
        At::Line(3),
    );
}

#[test]
fn bad_metadata_is_a_clear_error() {
    let root = MgrRoot::new();
    root.add_script(
        "gwbadmeta",
        "fn metadata() { #{title: \"T\", notify_module: \"ntsms\", fields: [#{name: \"x\", type: \"radio\"}]} }\nfn outgoing(req) {}",
    );
    let out = root.run("gate/gwbadmeta", &["--command", "features"], "");
    assert_ne!(out.status.code(), Some(0));
    let (kind, object, msg) = error_of(&out);
    assert_eq!(
        (kind.as_str(), object.as_str()),
        ("script", "gwbadmeta.rhai")
    );
    assert!(msg.contains("type 'radio'"), "{msg}");
}

#[test]
fn fail_and_throw_are_gateway_errors_with_the_text() {
    for (name, body) in [
        (
            "fail",
            "fn outgoing(req) { fail(\"provider says: quota exceeded\") }",
        ),
        (
            "throw",
            "fn outgoing(req) { throw \"provider says: quota exceeded\"; }",
        ),
        (
            "throwmap",
            "fn outgoing(req) { throw #{msg: \"provider says: quota exceeded\"}; }",
        ),
    ] {
        let (out, _) = run_script(name, body, "outgoing");
        assert_eq!(out.status.code(), Some(1));
        let (kind, object, msg) = error_of(&out);
        assert_eq!(
            (kind.as_str(), object.as_str()),
            ("gateway", format!("gw{name}").as_str())
        );
        assert_eq!(msg, "provider says: quota exceeded");
    }
}

#[test]
fn too_many_requests_in_one_command() {
    // Every request refused at once; the 17th is refused by the host without trying.
    let (out, elapsed) = run_script(
        "manyreq",
        "fn outgoing(req) {\n  let n = 0;\n  loop {\n    n += 1;\n    try { http_get(\"http://127.0.0.1:9/\"); }\n    catch (e) { if e.contains(\"more than\") { fail(e); } }\n  }\n}",
        "outgoing",
    );
    assert!(elapsed < HANG, "took {elapsed:?}");
    let (kind, _, msg) = error_of(&out);
    assert_eq!(kind, "gateway");
    assert!(msg.contains("more than 16 requests"), "{msg}");
}

#[test]
fn sandbox_limits_hold_on_small_worker_thread_stacks() {
    use mgrnotify::gateway::script::ScriptGateway;
    use mgrnotify::gateway::{GatewayModule, OutgoingInput};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gwdeep.rhai");
    std::fs::write(
        &path,
        format!("{METADATA}\nfn down(n) {{ [down(n + 1)] }}\nfn outgoing(req) {{ down(0) }}"),
    )
    .unwrap();
    let gateway = ScriptGateway::from_path("gwdeep", &path).unwrap();
    let input = OutgoingInput::parse(OUTGOING).unwrap();
    let result = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || gateway.outgoing(&input))
        .unwrap()
        .join()
        .expect("no native stack overflow");
    let err = result.unwrap_err();
    assert_eq!(err.kind, "script");
    assert!(err.msg.contains("endless recursion"), "{}", err.msg);
}
