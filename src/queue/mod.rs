//! `--command process`: working through a notification module's rows of the
//! notifytask queue, reliably and fast.
//!
//! One dispatcher pages through the ready rows in queue order (priority, then oldest)
//! and hands their ids to a pool of workers. A worker claims a row (a transaction that
//! holds the row lock, see [`schema::claim`]), sends its file, and in the same
//! transaction deletes the row (then its file) or records the failure with its next
//! retry time. Other runs skip claimed rows, so nothing is sent twice; a killed run's
//! transactions roll back, so nothing is lost. A run ends when a whole pass over the
//! queue claimed nothing, or when its time budget is spent.

pub mod backoff;
pub mod config;
pub mod send;
pub mod stop;

use std::collections::HashSet;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mysql::PooledConn;

use crate::db::schema::{self, ClaimMode, QueuePosition, ReadyFilter, TableFacts};
use crate::db::{DbError, DbSettings, StatementError};
use crate::root::MgrRoot;
use config::QueueConfig;
use send::{Channel, Courier, Destination, RowTx};

/// Why a run could not do its work (the database, the configuration). Problems of a
/// single row are not run errors: they go to that row's err_info (see [`send::SendError`]).
#[derive(Debug)]
pub enum QueueError {
    Config(config::ConfigError),
    /// The database cannot be used: nothing was sent.
    Db(DbError),
    /// A worker lost its database connection during the run.
    DbLost(DbError),
    /// The process cannot set itself up (signal handlers, threads).
    Setup(std::io::Error),
    /// Every worker ended; `pending` rows were handed over and not handled.
    WorkersGone {
        pending: usize,
    },
    /// SIGTERM or SIGINT ended the run early; `counts` says what it did.
    Stopped {
        signal: &'static str,
        counts: String,
    },
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Config(e) => e.fmt(f),
            QueueError::Db(e) => e.fmt(f),
            QueueError::DbLost(e) => write!(f, "{e} (the rows being sent stay queued)"),
            QueueError::Setup(e) => e.fmt(f),
            QueueError::WorkersGone { pending: 0 } => f.write_str("every worker stopped"),
            QueueError::WorkersGone { pending } => write!(
                f,
                "every worker stopped with {pending} row(s) not yet handled (they stay queued)"
            ),
            QueueError::Stopped { signal, counts } => write!(
                f,
                "stopped by {signal} before the queue was done ({counts}); the rows being \
                 sent went back to the queue"
            ),
        }
    }
}

impl std::error::Error for QueueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            QueueError::Config(e) => Some(e),
            QueueError::Db(e) | QueueError::DbLost(e) => Some(e),
            QueueError::Setup(e) => Some(e),
            QueueError::WorkersGone { .. } | QueueError::Stopped { .. } => None,
        }
    }
}

impl From<DbError> for QueueError {
    fn from(e: DbError) -> Self {
        Self::Db(e)
    }
}

impl From<config::ConfigError> for QueueError {
    fn from(e: config::ConfigError) -> Self {
        Self::Config(e)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub sent: usize,
    pub failed: usize,
    /// Rows another run held, or that changed before we could claim them.
    pub skipped: usize,
    /// Rows left as they were: a statement on them failed, a worker panicked with
    /// them, or the run stopped while sending them. Not taken again in this run.
    pub released: usize,
    pub passes: usize,
    /// The time budget ended the run while rows were still ready.
    pub out_of_time: bool,
    /// SIGTERM or SIGINT ended the run.
    pub stopped: bool,
}

/// One row's result, reported by a worker to the dispatcher.
enum Outcome {
    Sent,
    Failed,
    Skipped,
    /// The row is as it was before the worker took it.
    Released,
    /// The worker's database connection is gone: the run cannot go on.
    Broken(DbError),
}

/// Everything a worker needs, shared.
struct Shared {
    courier: Courier,
    mode: ClaimMode,
    facts: TableFacts,
    config: QueueConfig,
    /// The user table columns a notice may take (see [`user_fields`]).
    user_columns: Vec<String>,
    /// What the run sent and failed, for `mgrnotify stats`.
    stats: crate::stats::Recorder,
    /// A worker lost its database connection: the run ends, so the rows still handed
    /// over are left alone rather than each waiting for a database that hangs.
    db_lost: AtomicBool,
}

struct Job {
    id: i64,
    filter: Arc<ReadyFilter>,
}

/// A job a worker has taken. It reports exactly one outcome: the worker's, or
/// [`Outcome::Released`] when the worker dies first (dropped while unwinding), so the
/// dispatcher never waits for a row nobody works on.
struct Taken<'a> {
    id: i64,
    outcomes: &'a mpsc::Sender<(i64, Outcome)>,
    reported: bool,
}

impl Taken<'_> {
    fn report(mut self, outcome: Outcome) {
        self.reported = true;
        let _ = self.outcomes.send((self.id, outcome));
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if !self.reported {
            let _ = self.outcomes.send((self.id, Outcome::Released));
        }
    }
}

/// The user table columns a notice may take: the standard ones, the contact field of
/// the notification kind, and those an operator added (`QueueUserFields`).
pub fn user_fields(config: &QueueConfig, contact_field: &str) -> Vec<String> {
    schema::USER_FIELDS
        .iter()
        .chain([&contact_field])
        .map(|f| (*f).to_owned())
        .chain(config.user_fields.iter().cloned())
        .collect()
}

/// Processes the ready rows of `channel.role` (`modulename`) until none is left, the
/// time budget is spent, or SIGTERM/SIGINT stops the run.
pub fn process(root: &MgrRoot, channel: &Channel) -> Result<Summary, QueueError> {
    let role = channel.role.as_str();
    let config = QueueConfig::load(root)?;
    stop::install().map_err(QueueError::Setup)?;
    let settings = DbSettings::load(root)?;
    let pool = settings.connect(config.workers + 1, config.db_timeout)?;
    let mut conn = pool
        .get_conn()
        .map_err(|e| DbError::query("cannot get a database connection", e))?;
    let version = schema::server_version(&mut conn)?;
    let mode = config
        .claim
        .unwrap_or_else(|| ClaimMode::for_server(&version));
    let facts = schema::check_tables(&mut conn)?;
    let gateways = match &channel.destination {
        Destination::Gateways => schema::gateways(&mut conn, role)?,
        Destination::Table => {
            // Before any claim: creating a table commits whatever is open.
            schema::create_internal_table(&mut conn, &config.internal_table)?;
            Vec::new()
        }
    };
    let user_columns =
        schema::user_columns(&mut conn, &user_fields(&config, &channel.contact_field))?;
    let forced_only = root.do_nothing_flag().exists();
    crate::info!(
        "process: {} (server {version}, claim {}), {} workers, {}{}",
        settings.describe(),
        mode.name(),
        config.workers,
        match &channel.destination {
            Destination::Gateways => format!("{} {role} gateway row(s)", gateways.len()),
            Destination::Table => {
                format!("messages stored in the table {}", config.internal_table)
            }
        },
        if forced_only {
            ", billmgr.DoNothing present: only forcedonothing='on' rows"
        } else {
            ""
        }
    );
    let shared = Arc::new(Shared {
        courier: Courier::new(root.clone(), channel.clone(), gateways, &config),
        mode,
        facts,
        config: config.clone(),
        user_columns,
        stats: crate::stats::Recorder::new(root),
        db_lost: AtomicBool::new(false),
    });

    let workers = Workers::start(config.workers, || {
        let mut conn = pool
            .get_conn()
            .map_err(|e| DbError::query("cannot open the workers' database connections", e))?;
        let shared = shared.clone();
        Ok(move |job: &Job| run_job(&shared, &mut conn, job))
    })?;
    let ready = ReadyFilter {
        module: role.to_owned(),
        forced_only,
        max_attempts: config.max_attempts,
        now: String::new(),
    };
    let result = dispatch(
        |filter, after| schema::ready_page(&mut conn, filter, after, config.batch_size),
        &ready,
        config.time_budget,
        &workers,
    );
    workers.finish();
    shared.stats.flush();
    let summary = result?;
    let counts = format!(
        "{} sent, {} failed, {} skipped (held by another run), {} left as they were",
        summary.sent, summary.failed, summary.skipped, summary.released
    );
    if summary.stopped {
        crate::info!("process: stopped by {}: {counts}", stop::signal_name());
        return Err(QueueError::Stopped {
            signal: stop::signal_name(),
            counts,
        });
    }
    crate::info!(
        "process: done: {counts}, {} pass(es){}",
        summary.passes,
        if summary.out_of_time {
            "; time budget spent, the rest waits for the next run"
        } else {
            ""
        }
    );
    Ok(summary)
}

/// The worker threads and the channels to them.
struct Workers {
    /// A short hand-over queue: the time budget is checked close to the sending.
    jobs: mpsc::SyncSender<Job>,
    outcomes: mpsc::Receiver<(i64, Outcome)>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Starts `count` workers, each with the row handler `make` gives it. Only the
    /// workers hold the receiving end of the jobs and the sending end of the outcomes:
    /// when every worker is gone, handing over a job fails and waiting for an outcome
    /// ends, instead of blocking for ever.
    fn start<H>(
        count: usize,
        mut make: impl FnMut() -> Result<H, QueueError>,
    ) -> Result<Self, QueueError>
    where
        H: FnMut(&Job) -> Outcome + Send + 'static,
    {
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(count);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (outcome_tx, outcomes) = mpsc::channel();
        let mut threads = Vec::with_capacity(count);
        for n in 0..count {
            let handle = make()?;
            let (job_rx, outcome_tx) = (job_rx.clone(), outcome_tx.clone());
            let thread = std::thread::Builder::new()
                .name(format!("worker{n}"))
                .spawn(move || work(&job_rx, &outcome_tx, handle))
                .map_err(|e| {
                    QueueError::Setup(std::io::Error::new(
                        e.kind(),
                        format!("cannot start a worker thread: {e}"),
                    ))
                })?;
            threads.push(thread);
        }
        Ok(Self {
            jobs,
            outcomes,
            threads,
        })
    }

    /// No more jobs: waits for the workers to end.
    fn finish(self) {
        drop(self.jobs);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Pages through the ready rows (`next_page`) and feeds the workers, pass after pass,
/// until a pass claims nothing, the time budget is spent or the run is stopped.
fn dispatch(
    mut next_page: impl FnMut(
        &ReadyFilter,
        Option<&QueuePosition>,
    ) -> Result<Vec<QueuePosition>, DbError>,
    ready: &ReadyFilter,
    time_budget: Option<Duration>,
    workers: &Workers,
) -> Result<Summary, QueueError> {
    let (jobs, outcomes) = (&workers.jobs, &workers.outcomes);
    let started = Instant::now();
    let mut summary = Summary::default();
    let must_end = |summary: &mut Summary| {
        summary.stopped = stop::requested();
        summary.out_of_time = time_budget.is_some_and(|b| started.elapsed() >= b);
        summary.stopped || summary.out_of_time
    };
    let mut broken: Option<DbError> = None;
    let mut released = HashSet::new();
    loop {
        summary.passes += 1;
        let filter = Arc::new(ReadyFilter {
            now: now_stamp(),
            ..ready.clone()
        });
        let mut claimed = 0usize;
        let mut pending = 0usize;
        let mut after = None;
        'pages: while broken.is_none() {
            if must_end(&mut summary) {
                break;
            }
            let page = next_page(&filter, after.as_ref())?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            for position in page {
                if must_end(&mut summary) {
                    break 'pages;
                }
                if released.contains(&position.id) {
                    continue;
                }
                let job = Job {
                    id: position.id,
                    filter: filter.clone(),
                };
                if jobs.send(job).is_err() {
                    return Err(QueueError::WorkersGone { pending: 0 });
                }
                pending += 1;
                while let Ok(o) = outcomes.try_recv() {
                    pending -= 1;
                    claimed += tally(&mut summary, &mut released, &mut broken, o);
                }
                if broken.is_some() {
                    break 'pages;
                }
            }
            after = Some(last);
        }
        while pending > 0 {
            let Ok(o) = outcomes.recv() else { break };
            pending -= 1;
            claimed += tally(&mut summary, &mut released, &mut broken, o);
        }
        if let Some(e) = broken {
            return Err(QueueError::DbLost(e));
        }
        if pending > 0 {
            return Err(QueueError::WorkersGone { pending });
        }
        // A stop during the last rows of the pass ends the run too.
        summary.stopped = stop::requested();
        if summary.stopped || summary.out_of_time || claimed == 0 {
            return Ok(summary);
        }
    }
}

/// Counts one row's outcome; 1 when the row was claimed (sent or failed).
fn tally(
    summary: &mut Summary,
    released: &mut HashSet<i64>,
    broken: &mut Option<DbError>,
    (id, outcome): (i64, Outcome),
) -> usize {
    match outcome {
        Outcome::Sent => summary.sent += 1,
        Outcome::Failed => summary.failed += 1,
        Outcome::Skipped => {
            summary.skipped += 1;
            return 0;
        }
        Outcome::Released => {
            summary.released += 1;
            released.insert(id);
            return 0;
        }
        Outcome::Broken(e) => {
            broken.get_or_insert(e);
            return 0;
        }
    }
    1
}

/// A worker: takes jobs until there are none, and reports one outcome for each, even
/// when `handle` panics (then the worker ends; see [`Taken`]).
fn work(
    jobs: &Mutex<mpsc::Receiver<Job>>,
    outcomes: &mpsc::Sender<(i64, Outcome)>,
    mut handle: impl FnMut(&Job) -> Outcome,
) {
    loop {
        let job = {
            let rx = jobs.lock().unwrap_or_else(PoisonError::into_inner);
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let taken = Taken {
            id: job.id,
            outcomes,
            reported: false,
        };
        taken.report(handle(&job));
    }
}

/// One row, start to end. A panic in any part of it leaves the row as it was (its
/// transaction rolls back as the panic unwinds) and not taken again in this run; the
/// worker goes on with the next row.
fn run_job(shared: &Shared, conn: &mut PooledConn, job: &Job) -> Outcome {
    if stop::requested() || shared.db_lost.load(Ordering::Relaxed) {
        return Outcome::Released;
    }
    let outcome = match catch_unwind(AssertUnwindSafe(|| handle_row(shared, conn, job))) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            crate::error!(
                "notifytask {}: internal error, the row stays queued as it was: {what}",
                job.id
            );
            match schema::release(conn, shared.mode, job.id) {
                Err(e) if e.connection_lost => Outcome::Broken(e.error),
                _ => Outcome::Released,
            }
        }
    };
    if matches!(outcome, Outcome::Broken(_)) {
        shared.db_lost.store(true, Ordering::Relaxed);
    }
    outcome
}

fn handle_row(shared: &Shared, conn: &mut PooledConn, job: &Job) -> Outcome {
    let outcome = claim_and_send(shared, conn, job).unwrap_or_else(|e| {
        if e.connection_lost {
            return Outcome::Broken(e.error);
        }
        crate::error!(
            "notifytask {}: {e}; the row stays queued as it was, for the next run",
            job.id
        );
        Outcome::Released
    });
    // A named lock outlives the transaction: drop it whatever happened.
    match (outcome, schema::release(conn, shared.mode, job.id)) {
        (Outcome::Broken(e), _) => Outcome::Broken(e),
        (_, Err(e)) if e.connection_lost => Outcome::Broken(e.error),
        (outcome, Err(e)) => {
            crate::warn!("notifytask {}: {e}", job.id);
            outcome
        }
        (outcome, Ok(())) => outcome,
    }
}

fn claim_and_send(
    shared: &Shared,
    conn: &mut PooledConn,
    job: &Job,
) -> Result<Outcome, StatementError> {
    let Some(mut claim) = schema::claim(conn, shared.mode, &job.filter, job.id)? else {
        return Ok(Outcome::Skipped);
    };
    let task = claim.task.clone();
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut row = ClaimedRow {
            claim: &mut claim,
            user_columns: &shared.user_columns,
        };
        shared.courier.deliver_file(&task.filename, &mut row)
    }))
    .unwrap_or_else(|_| {
        Err(send::SendError {
            kind: send::SendErrorKind::Transient,
            msg: "internal error while sending (see the log)".to_owned(),
            gateway: String::new(),
        })
    });
    match result {
        Ok(delivered) => {
            if let Err(e) = claim.delete() {
                crate::error!(
                    "notifytask {}: sent, but the row could not be deleted, so it may be sent again: {e}",
                    task.id
                );
                return Err(e);
            }
            let latency = started.elapsed();
            for s in &delivered.sent {
                shared.stats.sent(shared.courier.role(), &s.module, latency);
                crate::info!(
                    "notifytask {}: {} in {} ms{}",
                    task.id,
                    s.via(),
                    started.elapsed().as_millis(),
                    s.provider_message_id
                        .as_deref()
                        .map(|id| format!(", provider id {id}"))
                        .unwrap_or_default()
                );
            }
            remove_file(&delivered.path);
            Ok(Outcome::Sent)
        }
        // Cut short by the stop, not refused by anyone: back to the queue as it was
        // (the transaction rolls back as it is dropped).
        Err(_) if stop::requested() => Ok(Outcome::Released),
        Err(reason) => {
            let attempt = task.error_count.saturating_add(1);
            let config = &shared.config;
            let delay = backoff::retry_delay(attempt, config.retry_base, config.retry_cap);
            let err_info = backoff::failure_text(
                &reason.msg,
                reason.is_permanent(),
                attempt,
                config.max_attempts,
                time::OffsetDateTime::now_utc(),
                delay,
                &shared.facts.err_info,
            );
            crate::warn!("notifytask {}: {err_info}", task.id);
            claim.record_failure(&err_info)?;
            let retried = !reason.is_permanent() && attempt < config.max_attempts;
            shared
                .stats
                .failed(shared.courier.role(), &reason.gateway, retried);
            Ok(Outcome::Failed)
        }
    }
}

/// A claimed row's transaction, as the courier uses it.
struct ClaimedRow<'a, 'c> {
    claim: &'a mut schema::Claim<'c>,
    user_columns: &'a [String],
}

impl RowTx for ClaimedRow<'_, '_> {
    fn user_fields(&mut self, id: &str) -> Option<crate::xml::Params> {
        schema::user_fields(self.claim.conn(), self.user_columns, id)
    }

    fn store(&mut self, table: &str, messages: &[schema::InternalMessage]) -> Result<(), String> {
        schema::insert_internal(self.claim.conn(), table, messages).map_err(|e| e.to_string())
    }
}

/// The sent row's file goes too (its real path, checked to be under `var/notify` when
/// it was read); one that is already gone is fine.
fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            crate::warn!(
                "cannot remove the sent notification file {}: {e}",
                path.display()
            );
        }
    }
}

/// Now in the retry marker's format (UTC).
fn now_stamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(schema::RETRY_STAMP)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `dispatch` over a queue of rows 1..=`rows` with `workers` threads whose
    /// `handle` says what became of each row; a sent row leaves the queue. Fails the
    /// test when the run hangs.
    fn run(
        rows: i64,
        workers: usize,
        handle: impl Fn(&Job) -> Outcome + Send + Clone + 'static,
    ) -> Result<Summary, QueueError> {
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let sent: Arc<Mutex<HashSet<i64>>> = Arc::default();
            let workers = Workers::start(workers, || {
                let (handle, sent) = (handle.clone(), sent.clone());
                Ok(move |job: &Job| {
                    let outcome = handle(job);
                    if matches!(outcome, Outcome::Sent) {
                        sent.lock().unwrap().insert(job.id);
                    }
                    outcome
                })
            })
            .unwrap();
            let ready = ReadyFilter {
                module: "ntsms".into(),
                forced_only: false,
                max_attempts: 10,
                now: String::new(),
            };
            let queue = |_: &ReadyFilter, after: Option<&QueuePosition>| {
                let sent = sent.lock().unwrap();
                Ok((1..=rows)
                    .filter(|id| after.is_none() && !sent.contains(id))
                    .map(|id| QueuePosition {
                        priority: 0,
                        created: String::new(),
                        id,
                    })
                    .collect())
            };
            let result = dispatch(queue, &ready, None, &workers);
            workers.finish();
            let _ = done_tx.send(result);
        });
        done_rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the run hangs")
    }

    #[test]
    fn a_worker_that_dies_is_an_outcome_and_the_run_goes_on() {
        let summary = run(40, 4, |job| {
            if job.id == 7 || job.id == 30 {
                panic!("row {} breaks the worker", job.id);
            }
            Outcome::Sent
        })
        .unwrap();
        // Two workers died with their rows; the other two sent the rest, and the
        // dead workers' rows were not taken again.
        assert_eq!((summary.sent, summary.released), (38, 2), "{summary:?}");
        assert_eq!(summary.passes, 2);
    }

    #[test]
    fn when_every_worker_dies_the_run_ends_with_an_error() {
        let e = run(10, 3, |job| panic!("row {} breaks the worker", job.id)).unwrap_err();
        assert!(matches!(e, QueueError::WorkersGone { .. }), "{e:?}");
        assert!(e.to_string().contains("every worker stopped"), "{e}");
    }
}
