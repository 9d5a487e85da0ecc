//! Template time limits against work an engine cannot interrupt itself: native
//! JavaScript built-ins (a catastrophic regular expression, `indexOf` and `join` over
//! `{length: 2**40}`) and XPath that does not allocate (nested `count()`, node-set
//! comparison). The render is answered with a limit error within the time limit plus a
//! little, and the render process that ran it is gone (killed and reaped), not left running.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use mgrnotify::template::{ejs, xslt, TemplateError};

/// Generous: "did not hang", not a measurement.
const BOUND: Duration = Duration::from_secs(10);

/// The processes the calling thread has started that still exist (running or zombie).
fn children_of_this_thread() -> Vec<String> {
    std::fs::read_to_string("/proc/thread-self/children")
        .expect("/proc/thread-self/children")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The scheduler state of a process (R running, S sleeping, Z zombie, ...).
fn state_of(pid: &str) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    match stat.rsplit_once(") ") {
        Some((_, rest)) => rest.chars().take(1).collect(),
        None => String::from("gone"),
    }
}

/// Renders on a thread of its own; fails the test if that takes longer than [`BOUND`].
/// Returns the outcome, how long it took, and the thread's child processes just after
/// (pid and state).
fn render_on_a_thread(
    render: impl FnOnce() -> Result<String, TemplateError> + Send + 'static,
) -> (
    Result<String, TemplateError>,
    Duration,
    Vec<(String, String)>,
) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        let outcome = render();
        let took = started.elapsed();
        // Looked at here: when this thread ends, its render process ends with it. A render
        // process that has just answered may still be on its way back to waiting: it gets
        // a second to settle (one left running would not).
        let settled = Instant::now() + Duration::from_secs(1);
        let children = loop {
            let children: Vec<(String, String)> = children_of_this_thread()
                .into_iter()
                .map(|pid| {
                    let state = state_of(&pid);
                    (pid, state)
                })
                .collect();
            if Instant::now() > settled || children.iter().all(|(_, state)| state == "S") {
                break children;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = tx.send((outcome, took, children));
    });
    rx.recv_timeout(BOUND)
        .unwrap_or_else(|_| panic!("the render ran past {} s", BOUND.as_secs()))
}

fn assert_stopped_in_time(
    limit: Duration,
    render: impl FnOnce() -> Result<String, TemplateError> + Send + 'static,
) -> String {
    let (outcome, took, children) = render_on_a_thread(render);
    let err = outcome
        .expect_err("a runaway template rendered")
        .to_string();
    assert!(
        took < limit + Duration::from_secs(2),
        "took {took:?}: {err}"
    );
    // A render process the engine stopped by itself waits for the next job (S); one that
    // was killed is gone. None is left running or a zombie.
    let busy: Vec<&(String, String)> = children
        .iter()
        .filter(|(_, state)| !matches!(state.as_str(), "S" | "gone"))
        .collect();
    assert!(busy.is_empty(), "render processes left busy: {busy:?}");
    err
}

#[test]
fn native_javascript_built_ins_cannot_outrun_the_time_limit() {
    for template in [
        r#"<%= /^(a+)+$/.test("a".repeat(34) + "b") %>"#,
        "<%= Array.prototype.indexOf.call({ length: 2 ** 40 }, 1) %>",
        "<%= Array.prototype.join.call({ length: 2 ** 40 }, '').length %>",
    ] {
        let err = assert_stopped_in_time(ejs::TIME_LIMIT, move || ejs::render(template, "{}"));
        assert_eq!(
            err, "EJS: the template ran longer than 2 s and was stopped",
            "{template}"
        );
    }
}

fn stylesheet_selecting(expression: &str) -> String {
    format!(
        r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="text"/>
<xsl:template match="/"><xsl:value-of select="{expression}"/></xsl:template>
</xsl:stylesheet>"#
    )
}

#[test]
fn xpath_that_does_not_allocate_is_stopped_by_the_operation_limit() {
    let stylesheet = stylesheet_selecting("count(//*[count(//*[count(//*) &gt; 1]) &gt; 1])");
    let document = format!("<doc>{}</doc>", "<a/>".repeat(3000));
    let err = assert_stopped_in_time(xslt::TIME_LIMIT, move || {
        xslt::transform(&stylesheet, &document)
    });
    assert_eq!(
        err,
        "XSLT: the stylesheet took more than 20000000 XPath steps and was stopped"
    );
}

#[test]
fn xslt_work_that_neither_allocates_nor_counts_cannot_outrun_the_time_limit() {
    // Comparing two node-sets of 100,000 equal strings: 1e10 string comparisons inside
    // libxml2, without an allocation or a counted XPath step (about 20 s of work on an
    // idle machine of today; 30,000 took 1.7 s, under the limit).
    let stylesheet = stylesheet_selecting("//a != //a");
    let document = format!("<doc>{}</doc>", "<a>x</a>".repeat(100_000));
    let err = assert_stopped_in_time(xslt::TIME_LIMIT, move || {
        xslt::transform(&stylesheet, &document)
    });
    assert_eq!(
        err,
        "XSLT: the stylesheet ran longer than 2 s and was stopped"
    );
}

#[test]
fn the_next_render_after_a_stopped_one_works() {
    let (outcome, _, _) = render_on_a_thread(|| {
        let _ = ejs::render("<%= /^(a+)+$/.test('a'.repeat(34) + 'b') %>", "{}");
        ejs::render("<%= 6 * 7 %>", "{}")
    });
    assert_eq!(outcome.unwrap(), "42");
}

#[test]
fn a_render_process_that_died_is_replaced() {
    let (outcome, _, _) = render_on_a_thread(|| {
        assert_eq!(ejs::render("<%= 1 %>", "{}").unwrap(), "1");
        let children = children_of_this_thread();
        assert_eq!(children.len(), 1, "one render process: {children:?}");
        let pid: i32 = children[0].parse().unwrap();
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        std::thread::sleep(Duration::from_millis(100));
        ejs::render("<%= 2 %>", "{}")
    });
    assert_eq!(outcome.unwrap(), "2");
}

#[test]
fn a_render_process_holds_nothing_of_the_parent_and_has_its_memory_bounded() {
    let (outcome, _, children) = render_on_a_thread(|| {
        // Descriptors the render process must not keep: a file and a socket.
        let _file = std::fs::File::open("/proc/self/status").unwrap();
        let _listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let rendered = ejs::render("<%= 1 %>", "{}");
        let pid = &children_of_this_thread()[0];
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        rendered.map(|_| format!("{limits}\nfds {fds:?}"))
    });
    assert_eq!(children.len(), 1);
    let report = outcome.unwrap();
    let limit = |name: &str| {
        report
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {report}"))
            .split_whitespace()
            .skip(name.split_whitespace().count())
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_ne!(
        limit("Max address space"),
        "unlimited unlimited",
        "{report}"
    );
    assert_eq!(limit("Max core file size"), "0 0", "{report}");
    let fds = report.lines().last().unwrap();
    assert_eq!(fds, r#"fds ["0", "1", "2", "3"]"#, "{report}");
}
