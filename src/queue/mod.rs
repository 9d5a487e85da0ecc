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

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use mysql::PooledConn;

use crate::db::schema::{self, ClaimMode, ReadyFilter, TableFacts};
use crate::db::{DbError, DbSettings};
use crate::root::MgrRoot;
use config::QueueConfig;
use send::Courier;

/// Why a run could not do its work (the database, the configuration). Problems of a
/// single row are not run errors: they go to that row's err_info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueError(pub String);

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::log::redact(&self.0))
    }
}

impl std::error::Error for QueueError {}

impl From<DbError> for QueueError {
    fn from(e: DbError) -> Self {
        Self(e.0)
    }
}

impl From<config::ConfigError> for QueueError {
    fn from(e: config::ConfigError) -> Self {
        Self(e.0)
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub sent: usize,
    pub failed: usize,
    /// Rows another run held, or that changed before we could claim them.
    pub skipped: usize,
    pub passes: usize,
    /// The time budget ended the run while rows were still ready.
    pub out_of_time: bool,
}

/// One row's result, reported by a worker to the dispatcher.
enum Outcome {
    Sent,
    Failed,
    Skipped,
    Broken(DbError),
}

/// Everything a worker needs, shared.
struct Shared {
    root: MgrRoot,
    courier: Courier,
    mode: ClaimMode,
    facts: TableFacts,
    config: QueueConfig,
}

struct Job {
    id: u64,
    filter: Arc<ReadyFilter>,
}

/// Processes the ready rows of `role` (`modulename`) until none is left.
pub fn process(root: &MgrRoot, role: &str) -> Result<Summary, QueueError> {
    let config = QueueConfig::load(root)?;
    let settings = DbSettings::load(root)?;
    let pool = settings.connect(config.workers + 1)?;
    let mut conn = pool
        .get_conn()
        .map_err(|e| DbError::query("cannot get a database connection", &e))?;
    let version = schema::server_version(&mut conn)?;
    let mode = config
        .claim
        .unwrap_or_else(|| ClaimMode::for_server(&version));
    let facts = schema::check_tables(&mut conn)?;
    let gateways = schema::gateways(&mut conn, role)?;
    let forced_only = root.do_nothing_flag().exists();
    crate::info!(
        "process: {} (server {version}, claim {}), {} workers, {} {role} gateway row(s){}",
        settings.describe(),
        mode.name(),
        config.workers,
        gateways.len(),
        if forced_only {
            ", billmgr.DoNothing present: only forcedonothing='on' rows"
        } else {
            ""
        }
    );
    let shared = Arc::new(Shared {
        root: root.clone(),
        courier: Courier::new(root.clone(), role, gateways, config.gateway_timeout),
        mode,
        facts,
        config: config.clone(),
    });

    // A short hand-over queue: the time budget is checked close to the sending.
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(config.workers);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (outcome_tx, outcome_rx) = mpsc::channel::<Outcome>();
    let mut workers = Vec::with_capacity(config.workers);
    for n in 0..config.workers {
        let worker_conn = pool
            .get_conn()
            .map_err(|e| DbError::query("cannot open the workers' database connections", &e))?;
        let shared = shared.clone();
        let job_rx = job_rx.clone();
        let outcome_tx = outcome_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("worker{n}"))
            .spawn(move || work(&shared, worker_conn, &job_rx, &outcome_tx))
            .map_err(|e| QueueError(format!("cannot start a worker thread: {e}")))?;
        workers.push(handle);
    }
    drop(outcome_tx);

    let result = dispatch(&mut conn, role, forced_only, &config, &job_tx, &outcome_rx);
    drop(job_tx);
    for w in workers {
        let _ = w.join();
    }
    let summary = result?;
    crate::info!(
        "process: done: {} sent, {} failed, {} skipped (held by another run), {} pass(es){}",
        summary.sent,
        summary.failed,
        summary.skipped,
        summary.passes,
        if summary.out_of_time {
            "; time budget spent, the rest waits for the next run"
        } else {
            ""
        }
    );
    Ok(summary)
}

/// Pages through the ready rows and feeds the workers, pass after pass, until a pass
/// claims nothing or the time budget is spent.
fn dispatch(
    conn: &mut PooledConn,
    role: &str,
    forced_only: bool,
    config: &QueueConfig,
    jobs: &mpsc::SyncSender<Job>,
    outcomes: &mpsc::Receiver<Outcome>,
) -> Result<Summary, QueueError> {
    let started = Instant::now();
    let out_of_time = || config.time_budget.is_some_and(|b| started.elapsed() >= b);
    let mut summary = Summary::default();
    let mut broken: Option<DbError> = None;
    loop {
        summary.passes += 1;
        let filter = Arc::new(ReadyFilter {
            module: role.to_owned(),
            forced_only,
            max_attempts: config.max_attempts,
            now: now_stamp(),
        });
        let mut claimed = 0usize;
        let mut pending = 0usize;
        let mut tally = |o: Outcome, summary: &mut Summary, broken: &mut Option<DbError>| match o {
            Outcome::Sent => {
                summary.sent += 1;
                claimed += 1
            }
            Outcome::Failed => {
                summary.failed += 1;
                claimed += 1
            }
            Outcome::Skipped => summary.skipped += 1,
            Outcome::Broken(e) => {
                broken.get_or_insert(e);
            }
        };
        let mut after = None;
        'pages: while broken.is_none() {
            if out_of_time() {
                summary.out_of_time = true;
                break;
            }
            let page = schema::ready_page(conn, &filter, after.as_ref(), config.batch_size)?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            for position in page {
                if out_of_time() {
                    summary.out_of_time = true;
                    break 'pages;
                }
                let job = Job {
                    id: position.id,
                    filter: filter.clone(),
                };
                if jobs.send(job).is_err() {
                    return Err(QueueError("every worker stopped".into()));
                }
                pending += 1;
                while let Ok(o) = outcomes.try_recv() {
                    pending -= 1;
                    tally(o, &mut summary, &mut broken);
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
            tally(o, &mut summary, &mut broken);
        }
        if let Some(e) = broken {
            return Err(QueueError(format!("{e} (the rows being sent stay queued)")));
        }
        if summary.out_of_time || claimed == 0 {
            return Ok(summary);
        }
    }
}

/// A worker: claims and sends the rows it is given, with its own connection.
fn work(
    shared: &Shared,
    mut conn: PooledConn,
    jobs: &Mutex<mpsc::Receiver<Job>>,
    outcomes: &mpsc::Sender<Outcome>,
) {
    loop {
        let job = {
            let Ok(rx) = jobs.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let outcome = handle_row(shared, &mut conn, &job).unwrap_or_else(Outcome::Broken);
        if outcomes.send(outcome).is_err() {
            return;
        }
    }
}

fn handle_row(shared: &Shared, conn: &mut PooledConn, job: &Job) -> Result<Outcome, DbError> {
    let outcome = claim_and_send(shared, conn, job);
    // A named lock outlives the transaction: drop it whatever happened.
    let released = schema::release(conn, shared.mode, job.id);
    let outcome = outcome?;
    released?;
    Ok(outcome)
}

fn claim_and_send(shared: &Shared, conn: &mut PooledConn, job: &Job) -> Result<Outcome, DbError> {
    let Some((mut tx, task)) = schema::claim(conn, shared.mode, &job.filter, job.id)? else {
        return Ok(Outcome::Skipped);
    };
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        shared
            .courier
            .deliver_file(&task.filename, &mut |id| schema::user_fields(&mut tx, id))
    }))
    .unwrap_or_else(|_| Err("internal error while sending (see the log)".to_owned()));
    match result {
        Ok(sent) => {
            let done = schema::delete_task(&mut tx, task.id).and_then(|()| {
                tx.commit().map_err(|e| {
                    DbError::query(&format!("cannot commit notifytask row {}", task.id), &e)
                })
            });
            if let Err(e) = done {
                crate::error!(
                    "notifytask {}: sent, but the row could not be deleted, so it may be sent again: {e}",
                    task.id
                );
                return Err(e);
            }
            for s in &sent {
                crate::info!(
                    "notifytask {}: sent through gateway {} ({}) in {} ms{}",
                    task.id,
                    s.gateway_id,
                    s.module,
                    started.elapsed().as_millis(),
                    s.provider_message_id
                        .as_deref()
                        .map(|id| format!(", provider id {id}"))
                        .unwrap_or_default()
                );
            }
            remove_file(&shared.root, &task.filename);
            Ok(Outcome::Sent)
        }
        Err(reason) => {
            let attempt = task.error_count.saturating_add(1);
            let config = &shared.config;
            let delay = backoff::retry_delay(attempt, config.retry_base, config.retry_cap);
            let err_info = backoff::failure_text(
                &reason,
                attempt,
                config.max_attempts,
                time::OffsetDateTime::now_utc(),
                delay,
                shared.facts.err_info_chars,
            );
            crate::warn!("notifytask {}: {err_info}", task.id);
            schema::record_failure(&mut tx, task.id, &err_info)?;
            tx.commit().map_err(|e| {
                DbError::query(&format!("cannot commit notifytask row {}", task.id), &e)
            })?;
            Ok(Outcome::Failed)
        }
    }
}

/// The sent row's file goes too; one that is already gone is fine.
fn remove_file(root: &MgrRoot, filename: &str) {
    let path = root.notify_file(filename);
    if let Err(e) = std::fs::remove_file(&path) {
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

/// Sends one notification file without a queue row (`UserNotify`): the gateways
/// still come from the database.
pub fn deliver_one(root: &MgrRoot, role: &str, file: &std::path::Path) -> Result<(), QueueError> {
    let config = QueueConfig::load(root)?;
    let settings = DbSettings::load(root)?;
    let pool = settings.connect(1)?;
    let mut conn = pool
        .get_conn()
        .map_err(|e| DbError::query("cannot get a database connection", &e))?;
    let gateways = schema::gateways(&mut conn, role)?;
    let courier = Courier::new(root.clone(), role, gateways, config.gateway_timeout);
    let name = file.to_string_lossy();
    courier
        .deliver_file(&name, &mut |id| schema::user_fields(&mut conn, id))
        .map_err(QueueError)?;
    Ok(())
}
