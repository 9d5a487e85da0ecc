//! `--command process`: working through a notification module's rows of the
//! notifytask queue, reliably and fast.
//!
//! One dispatcher pages through the ready rows in queue order (priority, then oldest)
//! and hands their ids, a few at a time, to a pool of workers. A worker claims its rows
//! (a transaction that holds their locks, see [`schema::claim`]), sends each file, and
//! in the same transaction deletes the sent rows (then their files) and records each
//! failure with its next retry time. Other runs skip claimed rows, so nothing is sent
//! twice; a killed run's transactions roll back, so nothing is lost, and its sent
//! journal ([`journal`]) keeps what it had sent from being sent again. A run ends when
//! a whole pass over the queue claimed nothing, or when its time budget is spent.

pub mod backoff;
pub mod config;
pub mod journal;
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
use journal::{Journals, SentJournal};
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

/// Rows for one worker to claim together, in queue order.
#[derive(Clone)]
struct Job {
    ids: Vec<i64>,
    filter: Arc<ReadyFilter>,
    /// When the run's time budget ends: the rows not yet sent then stay queued.
    deadline: Option<Instant>,
}

/// Each row's outcome.
type Outcomes = Vec<(i64, Outcome)>;

/// A job a worker has taken. It reports exactly once: the worker's outcomes, or
/// [`Outcome::Released`] for every row when the worker dies first (dropped while
/// unwinding), so the dispatcher never waits for rows nobody works on.
struct Taken<'a> {
    ids: Vec<i64>,
    outcomes: &'a mpsc::Sender<Outcomes>,
    reported: bool,
}

impl Taken<'_> {
    fn report(mut self, outcomes: Outcomes) {
        self.reported = true;
        let _ = self.outcomes.send(outcomes);
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if !self.reported {
            let released = self.ids.iter().map(|&id| (id, Outcome::Released));
            let _ = self.outcomes.send(released.collect());
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
    // Sends recorded before their delete commits let a worker claim many rows at a
    // time; without them (var/ not writable), each row is claimed alone, committed
    // right after its send. A table channel's messages are written in the transaction
    // itself: nothing to record.
    let journals = match channel.destination {
        Destination::Table => None,
        Destination::Gateways => match Journals::open(root, role) {
            Ok(j) => Some(j),
            Err(e) => {
                crate::warn!(
                    "process: cannot keep a sent journal under {}: {e}; each row is claimed \
                     alone",
                    root.state_dir("sent").display()
                );
                None
            }
        },
    };
    if let Some(j) = &journals {
        j.remove_settled(|rows| schema::still_queued(&mut conn, rows))?;
    }
    // A table channel's row commits whole or not at all (its messages with its
    // delete), so one row a transaction: a row the server will not delete then holds
    // up no other.
    let claim_rows = match (&channel.destination, &journals) {
        (Destination::Gateways, Some(_)) => config.claim_rows,
        _ => 1,
    };
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
        let mut worker = Worker {
            shared: shared.clone(),
            journal: None,
            journals: journals.clone(),
        };
        worker.renew_journal();
        Ok(move |job: &Job| worker.run_job(&mut conn, job))
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
        Grouping {
            workers: config.workers,
            most: claim_rows,
        },
        config.time_budget,
        &workers,
    );
    workers.finish();
    shared.stats.flush();
    let summary = result?;
    if let Some(j) = &journals {
        // This run's journals left behind (a refused delete) and those of runs that
        // ended while it ran.
        if let Err(e) = j.remove_settled(|rows| schema::still_queued(&mut conn, rows)) {
            crate::warn!("process: cannot check the sent journals: {e}");
        }
    }
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
    outcomes: mpsc::Receiver<Outcomes>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Starts `count` workers, each with the job handler `make` gives it. Only the
    /// workers hold the receiving end of the jobs and the sending end of the outcomes:
    /// when every worker is gone, handing over a job fails and waiting for an outcome
    /// ends, instead of blocking for ever.
    fn start<H>(
        count: usize,
        mut make: impl FnMut() -> Result<H, QueueError>,
    ) -> Result<Self, QueueError>
    where
        H: FnMut(&Job) -> Outcomes + Send + 'static,
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

/// How a page's rows are split into jobs: into enough jobs for every worker when
/// the page has the rows, and of at most `most` rows each, sizes differing by one at
/// most.
#[derive(Debug, Clone, Copy)]
struct Grouping {
    workers: usize,
    most: usize,
}

impl Grouping {
    /// The sizes of the jobs for `rows` rows, in order.
    fn job_sizes(&self, rows: usize) -> impl Iterator<Item = usize> {
        let jobs = rows
            .div_ceil(self.most.max(1))
            .max(rows.min(self.workers))
            .max(1);
        let (size, larger) = (rows / jobs, rows % jobs);
        (0..jobs)
            .map(move |n| size + usize::from(n < larger))
            .filter(|&n| n > 0)
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
    grouping: Grouping,
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
            let ids: Vec<i64> = page
                .iter()
                .map(|p| p.id)
                .filter(|id| !released.contains(id))
                .collect();
            let mut rest = ids.as_slice();
            for size in grouping.job_sizes(ids.len()) {
                if must_end(&mut summary) {
                    break 'pages;
                }
                let (group, after_group) = rest.split_at(size);
                rest = after_group;
                let job = Job {
                    ids: group.to_vec(),
                    filter: filter.clone(),
                    deadline: time_budget.map(|b| started + b),
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

/// Counts one job's outcomes; returns how many rows were claimed (sent or failed).
fn tally(
    summary: &mut Summary,
    released: &mut HashSet<i64>,
    broken: &mut Option<DbError>,
    outcomes: Outcomes,
) -> usize {
    let mut claimed = 0;
    for (id, outcome) in outcomes {
        match outcome {
            Outcome::Sent => {
                summary.sent += 1;
                claimed += 1;
            }
            Outcome::Failed => {
                summary.failed += 1;
                claimed += 1;
            }
            Outcome::Skipped => summary.skipped += 1,
            Outcome::Released => {
                summary.released += 1;
                released.insert(id);
            }
            Outcome::Broken(e) => {
                broken.get_or_insert(e);
            }
        }
    }
    claimed
}

/// A worker: takes jobs until there are none, and reports the outcomes of each, even
/// when `handle` panics (then the worker ends; see [`Taken`]).
fn work(
    jobs: &Mutex<mpsc::Receiver<Job>>,
    outcomes: &mpsc::Sender<Outcomes>,
    mut handle: impl FnMut(&Job) -> Outcomes,
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
            ids: job.ids.clone(),
            outcomes,
            reported: false,
        };
        taken.report(handle(&job));
    }
}

/// Every row of `ids` with the same outcome; a lost connection is reported once.
fn all(ids: &[i64], outcome: impl Fn() -> Outcome) -> Outcomes {
    ids.iter().map(|&id| (id, outcome())).collect()
}

/// How a job ended before its rows could be told apart.
enum JobError {
    /// The claim failed: no row was touched.
    Claim(StatementError),
    /// The transaction was lost after rows were sent: they are in the sent journal.
    Commit(StatementError),
}

/// One worker's state: its share of the run, and its sent journal.
struct Worker {
    shared: Arc<Shared>,
    journals: Option<Arc<Journals>>,
    /// `None` when the run keeps no journal, or a new one cannot be opened.
    journal: Option<SentJournal>,
}

impl Worker {
    /// A new journal when the last one holds sends whose delete did not commit: it
    /// stays behind for whoever claims those rows next.
    fn renew_journal(&mut self) {
        if self.journal.as_ref().is_some_and(|j| !j.has_pending()) {
            return;
        }
        self.journal = None;
        if let Some(journals) = &self.journals {
            match journals.journal() {
                Ok(j) => self.journal = Some(j),
                Err(e) => crate::warn!(
                    "process: cannot open a sent journal: {e}; a sent row whose delete fails \
                     may be sent again"
                ),
            }
        }
    }

    /// One job, start to end. A panic in any part of it leaves its rows as they were
    /// (the transaction rolls back as the panic unwinds; rows sent before it are in
    /// the sent journal) and not taken again in this run; the worker goes on.
    fn run_job(&mut self, conn: &mut PooledConn, job: &Job) -> Outcomes {
        let shared = self.shared.clone();
        if stop::requested() || shared.db_lost.load(Ordering::Relaxed) {
            return all(&job.ids, || Outcome::Released);
        }
        let outcomes = catch_unwind(AssertUnwindSafe(|| self.handle_rows(conn, job)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                crate::error!(
                    "notifytask {}: internal error, the rows stay queued as they were: {what}",
                    schema::id_list(&job.ids)
                );
                match schema::release(conn, shared.mode, &job.ids) {
                    Err(e) if e.connection_lost => broken(&job.ids, e.error),
                    _ => all(&job.ids, || Outcome::Released),
                }
            });
        self.renew_journal();
        if outcomes
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Broken(_)))
        {
            shared.db_lost.store(true, Ordering::Relaxed);
        }
        outcomes
    }

    fn handle_rows(&mut self, conn: &mut PooledConn, job: &Job) -> Outcomes {
        let mode = self.shared.mode;
        let outcomes = match self.claim_and_send(conn, job) {
            Ok(outcomes) => outcomes,
            Err(JobError::Claim(e) | JobError::Commit(e)) if e.connection_lost => {
                broken(&job.ids, e.error)
            }
            // The server refused to claim them together (one row it cannot read):
            // each alone, so the others still go.
            Err(JobError::Claim(e)) if job.ids.len() > 1 => {
                crate::warn!(
                    "notifytask {}: {e}; claiming them one by one",
                    schema::id_list(&job.ids)
                );
                let _ = schema::release(conn, mode, &job.ids);
                return job
                    .ids
                    .iter()
                    .flat_map(|&id| {
                        let one = Job {
                            ids: vec![id],
                            ..job.clone()
                        };
                        self.handle_rows(conn, &one)
                    })
                    .collect();
            }
            Err(JobError::Claim(e)) => {
                crate::error!(
                    "notifytask {}: {e}; the row stays queued as it was, for the next run",
                    schema::id_list(&job.ids)
                );
                all(&job.ids, || Outcome::Released)
            }
            Err(JobError::Commit(e)) => {
                crate::error!(
                    "notifytask {}: {e}; the rows stay queued as they were{}",
                    schema::id_list(&job.ids),
                    if self.journal.is_some() {
                        ", and those already sent are in the sent journal, so they are not \
                         sent again"
                    } else {
                        ""
                    }
                );
                all(&job.ids, || Outcome::Released)
            }
        };
        // A named lock outlives the transaction: drop it whatever happened.
        match schema::release(conn, mode, &job.ids) {
            Err(e) if e.connection_lost => broken(&job.ids, e.error),
            Err(e) => {
                crate::warn!("notifytask {}: {e}", schema::id_list(&job.ids));
                outcomes
            }
            Ok(()) => outcomes,
        }
    }

    /// Claims the job's rows, sends each claimed row that no journal names, and
    /// commits the sent rows' deletes with the failures.
    fn claim_and_send(&mut self, conn: &mut PooledConn, job: &Job) -> Result<Outcomes, JobError> {
        let shared = &*self.shared;
        let ids = &job.ids;
        let out_of_time = || job.deadline.is_some_and(|d| Instant::now() >= d);
        let Some(mut claim) =
            schema::claim(conn, shared.mode, &job.filter, ids).map_err(JobError::Claim)?
        else {
            return Ok(all(ids, || Outcome::Skipped));
        };
        let tasks = std::mem::take(&mut claim.tasks);
        let mut outcomes: Outcomes = ids
            .iter()
            .filter(|id| !tasks.iter().any(|t| t.id == **id))
            .map(|&id| (id, Outcome::Skipped))
            .collect();
        let sent_before = self
            .journals
            .as_ref()
            .map(|j| j.sent_before(&tasks))
            .unwrap_or_default();
        let mut sent = Vec::new();
        let mut stopped = false;
        for task in tasks {
            if sent_before.contains(&task.id) {
                sent.push(SentRow {
                    task,
                    delivered: None,
                    started: Instant::now(),
                });
                continue;
            }
            if stopped || stop::requested() || out_of_time() {
                outcomes.push((task.id, Outcome::Released));
                continue;
            }
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
                    if let Some(journal) = &mut self.journal {
                        if let Err(e) = journal.record(task.id, &task.filename) {
                            crate::warn!(
                                "notifytask {}: cannot write to the sent journal: {e}; if its \
                                 delete fails, it may be sent again",
                                task.id
                            );
                        }
                    }
                    sent.push(SentRow {
                        task,
                        delivered: Some(delivered),
                        started,
                    });
                }
                // Cut short by the stop, not refused by anyone: back to the queue as
                // it was.
                Err(_) if stop::requested() => outcomes.push((task.id, Outcome::Released)),
                Err(reason) => {
                    let (outcome, ends) = self.record_failure(&mut claim, &task, &reason)?;
                    stopped |= ends;
                    outcomes.push((task.id, outcome));
                }
            }
        }
        let sent_ids: Vec<i64> = sent.iter().map(|s| s.task.id).collect();
        let refused = if shared.courier.writes_in_transaction() {
            claim.commit_whole(&sent_ids).map_err(JobError::Commit)?;
            Vec::new()
        } else {
            claim.commit(&sent_ids).map_err(JobError::Commit)?
        };
        if refused.is_empty() {
            if let Some(journal) = &mut self.journal {
                if let Err(e) = journal.settled() {
                    crate::warn!("process: cannot empty the sent journal: {e}");
                }
            }
        }
        for s in sent {
            let id = s.task.id;
            if let Some((_, e)) = refused.iter().find(|(r, _)| *r == id) {
                crate::error!(
                    "notifytask {id}: sent, but the row could not be deleted: {e}; it stays \
                     queued, and the sent journal keeps it from being sent again"
                );
                outcomes.push((id, Outcome::Released));
                continue;
            }
            match s.delivered {
                Some(delivered) => {
                    let latency = s.started.elapsed();
                    for one in &delivered.sent {
                        shared
                            .stats
                            .sent(shared.courier.role(), &one.module, latency);
                        crate::info!(
                            "notifytask {id}: {} in {} ms{}",
                            one.via(),
                            latency.as_millis(),
                            one.provider_message_id
                                .as_deref()
                                .map(|p| format!(", provider id {p}"))
                                .unwrap_or_default()
                        );
                    }
                    remove_file(&delivered.path);
                }
                None => {
                    crate::info!(
                        "notifytask {id}: sent by an earlier run that could not remove it; \
                         removed now, not sent again"
                    );
                    if let Some(path) = shared.courier.file_path(&s.task.filename) {
                        remove_file(&path);
                    }
                }
            }
            outcomes.push((id, Outcome::Sent));
        }
        Ok(outcomes)
    }

    /// Records a row's failed attempt in the claim's transaction. Also says whether
    /// the job must stop: the server ended the whole transaction.
    fn record_failure(
        &self,
        claim: &mut schema::Claim<'_>,
        task: &schema::Task,
        reason: &send::SendError,
    ) -> Result<(Outcome, bool), JobError> {
        let shared = &*self.shared;
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
        match claim.record_failure(task.id, &err_info) {
            Ok(()) => {
                let retried = !reason.is_permanent() && attempt < config.max_attempts;
                shared
                    .stats
                    .failed(shared.courier.role(), &reason.gateway, retried);
                Ok((Outcome::Failed, false))
            }
            Err(e) if e.connection_lost => Err(JobError::Commit(e)),
            Err(e) => {
                crate::error!(
                    "notifytask {}: {e}; the row stays queued as it was, for the next run",
                    task.id
                );
                Ok((Outcome::Released, e.transaction_lost))
            }
        }
    }
}

/// A row sent in this job (`delivered`), or by an earlier run (`None`).
struct SentRow {
    task: schema::Task,
    delivered: Option<send::Delivered>,
    started: Instant,
}

/// The first row carries the lost connection's error; the rest are left as they were.
fn broken(ids: &[i64], e: DbError) -> Outcomes {
    let mut e = Some(e);
    ids.iter()
        .map(|&id| match e.take() {
            Some(e) => (id, Outcome::Broken(e)),
            None => (id, Outcome::Released),
        })
        .collect()
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
    /// `handle` says what became of each row, `most` rows a job; a sent row leaves the
    /// queue. Fails the test when the run hangs.
    fn run(
        rows: i64,
        workers: usize,
        most: usize,
        handle: impl Fn(i64) -> Outcome + Send + Clone + 'static,
    ) -> Result<Summary, QueueError> {
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let sent: Arc<Mutex<HashSet<i64>>> = Arc::default();
            let pool = Workers::start(workers, || {
                let (handle, sent) = (handle.clone(), sent.clone());
                Ok(move |job: &Job| {
                    job.ids
                        .iter()
                        .map(|&id| {
                            let outcome = handle(id);
                            if matches!(outcome, Outcome::Sent) {
                                sent.lock().unwrap().insert(id);
                            }
                            (id, outcome)
                        })
                        .collect()
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
            let grouping = Grouping { workers, most };
            let result = dispatch(queue, &ready, grouping, None, &pool);
            pool.finish();
            let _ = done_tx.send(result);
        });
        done_rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the run hangs")
    }

    #[test]
    fn a_worker_that_dies_is_an_outcome_and_the_run_goes_on() {
        let summary = run(40, 4, 1, |id| {
            if id == 7 || id == 30 {
                panic!("row {id} breaks the worker");
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
    fn a_worker_that_dies_with_several_rows_reports_each_of_them() {
        // 40 rows, 4 workers: jobs of 10 rows. The job holding row 7 dies whole.
        let summary = run(40, 4, 16, |id| {
            if id == 7 {
                panic!("row {id} breaks the worker");
            }
            Outcome::Sent
        })
        .unwrap();
        assert_eq!((summary.sent, summary.released), (30, 10), "{summary:?}");
    }

    #[test]
    fn every_worker_gets_a_job_and_none_more_than_most_rows() {
        let g = Grouping {
            workers: 16,
            most: 16,
        };
        let sizes = |g: Grouping, rows| g.job_sizes(rows).collect::<Vec<_>>();
        let many = sizes(g, 500);
        assert_eq!((many.len(), many.iter().sum::<usize>()), (32, 500));
        assert!(many.iter().all(|&n| n == 15 || n == 16), "{many:?}");
        let few = sizes(g, 24);
        assert_eq!(few, [[2; 8], [1; 8]].concat());
        assert_eq!(sizes(g, 5), [1; 5]);
        assert_eq!(sizes(g, 0), Vec::<usize>::new());
        assert_eq!(sizes(Grouping { most: 1, ..g }, 40), [1; 40]);
    }

    #[test]
    fn when_every_worker_dies_the_run_ends_with_an_error() {
        let e = run(10, 3, 1, |id| panic!("row {id} breaks the worker")).unwrap_err();
        assert!(matches!(e, QueueError::WorkersGone { .. }), "{e:?}");
        assert!(e.to_string().contains("every worker stopped"), "{e}");
    }
}
