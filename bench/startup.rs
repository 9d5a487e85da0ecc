//! Whole-process timings, as BILLmanager pays them: `gate/gwepochta --command
//! features` and `--command outgoing` against a local fake ePochta, each run as a new
//! process with cwd = root. Reports medians next to the floor of starting any process
//! (`/bin/true`). Run: `cargo bench --bench startup` (builds in release).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_http::{FakeHttp, Response};
use common::mgr_root::{run_in, MgrRoot};

const RUNS: usize = 300;

fn main() {
    let root = MgrRoot::new();
    let provider = FakeHttp::start(|_| {
        Response::xml("<RESPONSE><status>0</status><credits>0.5</credits></RESPONSE>")
    });
    let outgoing = format!(
        "<doc><gateway><id>1</id><xmlparams>&lt;doc&gt;&lt;login&gt;demo&lt;/login&gt;\
         &lt;password&gt;secret&lt;/password&gt;&lt;sender&gt;Shop&lt;/sender&gt;\
         &lt;api_url&gt;{}&lt;/api_url&gt;&lt;/doc&gt;</xmlparams></gateway>\
         <message>Your invoice #42 is paid</message><subject>Invoice</subject>\
         <user><id>7</id><phone>+79990000000</phone></user><project><id>1</id></project></doc>",
        provider.url()
    );

    let floor = median(RUNS, || {
        let t = Instant::now();
        let ok = Command::new("/bin/true")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok);
        t.elapsed()
    });
    let features = median(RUNS, || {
        let t = Instant::now();
        let out = run_in(
            root.path(),
            "gate/gwepochta",
            &["--command", "features"],
            "",
            &[],
        );
        let took = t.elapsed();
        assert!(out.status.success(), "features failed: {out:?}");
        took
    });
    let send = median(RUNS, || {
        let t = Instant::now();
        let out = run_in(
            root.path(),
            "gate/gwepochta",
            &["--command", "outgoing"],
            &outgoing,
            &[],
        );
        let took = t.elapsed();
        assert!(out.status.success(), "outgoing failed: {out:?}");
        took
    });
    println!("whole-process medians over {RUNS} runs each:");
    println!("  /bin/true (process start floor)          {}", ms(floor));
    println!(
        "  gate/gwepochta --command features         {}",
        ms(features)
    );
    println!("  gate/gwepochta --command outgoing (fake)  {}", ms(send));
    println!("  fake provider saw {} requests", provider.count());
}

fn median(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    // A few warm-up runs so the page cache holds the binary.
    for _ in 0..5 {
        f();
    }
    let mut all: Vec<Duration> = (0..runs).map(|_| f()).collect();
    all.sort();
    all[runs / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
