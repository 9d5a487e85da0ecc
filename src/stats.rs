//! Counters of what the queue did, for `mgrnotify stats`: sent, failed and retried
//! notifications per kind (notification module) and gateway, and how long sending took.
//!
//! A run counts in memory ([`Recorder`], one short lock per message) and adds its
//! counts to the state file `var/mgrnotify/stats.json` when it ends (and every
//! [`FLUSH_EVERY`] on long runs), under an exclusive lock, so runs at once never lose
//! each other's counts. Latency is kept as a histogram with fixed buckets, so the file
//! stays small however many messages went out; quantiles are read off it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::files::Access;
use crate::root::MgrRoot;

/// Upper bounds of the latency buckets, in seconds (the last bucket is +Inf).
pub const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often a long run adds its counts to the file.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// The largest state file read; anything bigger is not ours and starts afresh.
const MAX_STATE: u64 = 4 << 20;

/// Counts of one (kind, gateway).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub sent: u64,
    /// Attempts that failed and will be tried again.
    pub retried: u64,
    /// Attempts that failed for good (permanent, or out of attempts).
    pub failed: u64,
    /// Send latency histogram: one count a bucket of [`BUCKETS`], then +Inf.
    pub latency: [u64; BUCKETS.len() + 1],
    pub latency_sum: f64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.sent += other.sent;
        self.retried += other.retried;
        self.failed += other.failed;
        for (a, b) in self.latency.iter_mut().zip(other.latency) {
            *a += b;
        }
        self.latency_sum += other.latency_sum;
    }

    fn observe(&mut self, latency: Duration) {
        let secs = latency.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.latency[bucket] += 1;
        self.latency_sum += secs;
    }

    /// The `q` quantile of the latency, interpolated inside its bucket.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut seen = 0u64;
        for (i, &n) in self.latency.iter().enumerate() {
            if n > 0 && (seen + n) as f64 >= rank {
                let low = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
                let Some(&high) = BUCKETS.get(i) else {
                    return Some(low);
                };
                return Some(low + (high - low) * ((rank - seen as f64) / n as f64).max(0.0));
            }
            seen += n;
        }
        None
    }
}

/// Everything counted since `since` (Unix seconds), by (kind, gateway).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub since: u64,
    pub by: BTreeMap<(String, String), Counts>,
}

impl Stats {
    fn merge(&mut self, other: &Stats) {
        for (key, counts) in &other.by {
            self.by.entry(key.clone()).or_default().add(counts);
        }
    }

    fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .by
            .iter()
            .map(|((kind, gateway), c)| {
                json!({
                    "kind": kind, "gateway": gateway, "sent": c.sent, "retried": c.retried,
                    "failed": c.failed, "latency": c.latency.to_vec(), "latency_sum": c.latency_sum,
                })
            })
            .collect();
        json!({"since": self.since, "counts": rows})
    }

    /// Reads the file's JSON; whatever does not fit is skipped (never trusted to crash us).
    fn from_json(v: &Value) -> Stats {
        let mut stats = Stats {
            since: v["since"].as_u64().unwrap_or(0),
            by: BTreeMap::new(),
        };
        for row in v["counts"].as_array().into_iter().flatten() {
            let (Some(kind), Some(gateway)) = (row["kind"].as_str(), row["gateway"].as_str())
            else {
                continue;
            };
            let mut c = Counts {
                sent: row["sent"].as_u64().unwrap_or(0),
                retried: row["retried"].as_u64().unwrap_or(0),
                failed: row["failed"].as_u64().unwrap_or(0),
                latency_sum: row["latency_sum"].as_f64().unwrap_or(0.0),
                ..Counts::default()
            };
            for (slot, n) in c
                .latency
                .iter_mut()
                .zip(row["latency"].as_array().into_iter().flatten())
            {
                *slot = n.as_u64().unwrap_or(0);
            }
            stats
                .by
                .entry((kind.to_owned(), gateway.to_owned()))
                .or_default()
                .add(&c);
        }
        stats
    }

    /// The Prometheus text exposition format.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let label = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', " ")
        };
        let mut counter = |name: &str, help: &str, get: &dyn Fn(&Counts) -> u64| {
            let _ = writeln!(out, "# HELP mgrnotify_{name} {help}");
            let _ = writeln!(out, "# TYPE mgrnotify_{name} counter");
            for ((kind, gateway), c) in &self.by {
                let _ = writeln!(
                    out,
                    "mgrnotify_{name}{{kind=\"{}\",gateway=\"{}\"}} {}",
                    label(kind),
                    label(gateway),
                    get(c)
                );
            }
        };
        counter("sent_total", "Notifications sent.", &|c| c.sent);
        counter(
            "retried_total",
            "Failed attempts that will be tried again.",
            &|c| c.retried,
        );
        counter(
            "failed_total",
            "Failed attempts that wait for an operator (permanent, or no attempts left).",
            &|c| c.failed,
        );
        let _ = writeln!(
            out,
            "# HELP mgrnotify_send_seconds Time to send one notification."
        );
        let _ = writeln!(out, "# TYPE mgrnotify_send_seconds histogram");
        for ((kind, gateway), c) in &self.by {
            let labels = format!("kind=\"{}\",gateway=\"{}\"", label(kind), label(gateway));
            let mut cumulative = 0;
            for (i, n) in c.latency.iter().enumerate() {
                cumulative += n;
                let le = BUCKETS.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "mgrnotify_send_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "mgrnotify_send_seconds_sum{{{labels}}} {}",
                c.latency_sum
            );
            let _ = writeln!(out, "mgrnotify_send_seconds_count{{{labels}}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "# HELP mgrnotify_send_seconds_quantile Send time quantiles, read off the histogram."
        );
        let _ = writeln!(out, "# TYPE mgrnotify_send_seconds_quantile gauge");
        for ((kind, gateway), c) in &self.by {
            for q in [0.5, 0.9, 0.99] {
                if let Some(v) = c.quantile(q) {
                    let _ = writeln!(
                        out,
                        "mgrnotify_send_seconds_quantile{{kind=\"{}\",gateway=\"{}\",quantile=\"{q}\"}} {v:.6}",
                        label(kind),
                        label(gateway)
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP mgrnotify_stats_since_seconds When counting began (Unix time)."
        );
        let _ = writeln!(out, "# TYPE mgrnotify_stats_since_seconds gauge");
        let _ = writeln!(out, "mgrnotify_stats_since_seconds {}", self.since);
        out
    }
}

/// Counts of one run, shared by its workers.
pub struct Recorder {
    state: PathBuf,
    pending: Mutex<(Stats, Instant)>,
}

impl Recorder {
    pub fn new(root: &MgrRoot) -> Self {
        Self {
            state: state_file(root),
            pending: Mutex::new((Stats::default(), Instant::now())),
        }
    }

    pub fn sent(&self, kind: &str, gateway: &str, latency: Duration) {
        self.count(kind, gateway, |c| {
            c.sent += 1;
            c.observe(latency);
        });
    }

    /// A failed attempt; `retried` when it will be tried again.
    pub fn failed(&self, kind: &str, gateway: &str, retried: bool) {
        self.count(kind, gateway, |c| {
            if retried {
                c.retried += 1;
            } else {
                c.failed += 1;
            }
        });
    }

    fn count(&self, kind: &str, gateway: &str, f: impl FnOnce(&mut Counts)) {
        let due = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let key = (kind.to_owned(), gateway.to_owned());
            f(pending.0.by.entry(key).or_default());
            pending.1.elapsed() >= FLUSH_EVERY
        };
        if due {
            self.flush();
        }
    }

    /// Adds what was counted to the state file. Counting never fails a send: a file
    /// that cannot be written is logged and its counts dropped.
    pub fn flush(&self) {
        let taken = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.1 = Instant::now();
            std::mem::take(&mut pending.0)
        };
        if taken.by.is_empty() {
            return;
        }
        if let Err(e) = update(&self.state, |stats| stats.merge(&taken)) {
            crate::warn!("cannot update {}: {e}", self.state.display());
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

pub fn state_file(root: &MgrRoot) -> PathBuf {
    root.path().join("var/mgrnotify/stats.json")
}

/// What the state file holds (empty, counting from now, when there is none).
pub fn load(root: &MgrRoot) -> io::Result<Stats> {
    let path = state_file(root);
    let _lock = lock(&path)?;
    Ok(read(&path))
}

/// Starts counting afresh from now.
pub fn reset(root: &MgrRoot) -> io::Result<()> {
    update(&state_file(root), |stats| {
        *stats = Stats {
            since: now(),
            by: BTreeMap::new(),
        }
    })
}

fn update(path: &Path, change: impl FnOnce(&mut Stats)) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let _lock = lock(path)?;
    let mut stats = read(path);
    change(&mut stats);
    let text = stats.to_json().to_string();
    crate::files::write_atomically(path, text.as_bytes(), Access::Shared)
}

fn read(path: &Path) -> Stats {
    let text = File::open(path).and_then(|f| {
        let mut s = String::new();
        io::Read::read_to_string(&mut io::Read::take(f, MAX_STATE), &mut s).map(|_| s)
    });
    let mut stats = text
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .map(|v| Stats::from_json(&v))
        .unwrap_or_default();
    if stats.since == 0 {
        stats.since = now();
    }
    stats
}

/// An exclusive lock beside the state file, held until the returned file is dropped.
fn lock(path: &Path) -> io::Result<Option<File>> {
    crate::files::lock(&path.with_extension("lock"), true, Access::Shared)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_add_up_in_the_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        for _ in 0..2 {
            let r = Recorder::new(&root);
            r.sent("ntsms", "gwepochta", Duration::from_millis(3));
            r.sent("ntsms", "gwepochta", Duration::from_millis(70));
            r.failed("ntsms", "gwepochta", true);
            r.failed("ntsms", "", false);
        }
        let stats = load(&root).unwrap();
        let c = &stats.by[&("ntsms".to_owned(), "gwepochta".to_owned())];
        assert_eq!((c.sent, c.retried, c.failed), (4, 2, 0));
        assert_eq!(c.latency[0], 2, "3 ms is in the first bucket");
        assert_eq!(c.latency[4], 2, "70 ms is in the 0.1 s bucket");
        assert_eq!(stats.by[&("ntsms".to_owned(), String::new())].failed, 2);
        let text = stats.to_prometheus();
        assert!(text.contains("mgrnotify_sent_total{kind=\"ntsms\",gateway=\"gwepochta\"} 4"));
        assert!(text.contains(
            "mgrnotify_send_seconds_bucket{kind=\"ntsms\",gateway=\"gwepochta\",le=\"+Inf\"} 4"
        ));
        reset(&root).unwrap();
        assert!(load(&root).unwrap().by.is_empty());
    }

    #[test]
    fn quantiles_fall_in_their_bucket() {
        let mut c = Counts::default();
        for ms in [1, 2, 3, 4, 5, 6, 7, 8, 9, 200] {
            c.observe(Duration::from_millis(ms));
        }
        let median = c.quantile(0.5).unwrap();
        assert!((0.0..=0.01).contains(&median), "{median}");
        let p99 = c.quantile(0.99).unwrap();
        assert!((0.1..=0.25).contains(&p99), "{p99}");
        assert_eq!(Counts::default().quantile(0.5), None);
    }

    #[test]
    fn a_broken_state_file_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let root = MgrRoot::new(dir.path());
        fs::create_dir_all(dir.path().join("var/mgrnotify")).unwrap();
        fs::write(
            state_file(&root),
            "{\"counts\": [{\"kind\": 1}], \"since\": \"x\"",
        )
        .unwrap();
        let stats = load(&root).unwrap();
        assert!(stats.by.is_empty());
        assert!(stats.since > 0);
    }
}
