//! Every assumption about BILLmanager's tables, and all SQL mgrnotify runs, in one
//! place. BILLmanager's schema is not public: when a real installation
//! differs, this is the file to correct.
//!
//! Assumed (and checked at start, see [`check_tables`]):
//! - `notifytask(id, modulename, filename, priority, error_count, forcedonothing,
//!   err_info, createdate, ...)`; more columns are ignored. NULLs in priority,
//!   error_count, createdate are read as 0, 0, "oldest"; a negative error_count as 0.
//!   err_info may be in any character set and of any length (see [`TextColumn`]).
//! - `gateway(id, name, gateway_module, notify_module, gateway_type, active, project,
//!   xmlparams, ...)`; every column is passed to the gateway module.
//! - `user(id, ...)`: only the columns a notice may need are read (see [`user_columns`]);
//!   the rest (password hashes, TOTP secrets) never leave the database. Incoming
//!   messages find their sender by a contact column and post as `name`; `account`
//!   owns tickets (see [`users_by_contact`]).
//! - `ticket(id, account_client, ...)`: a ticket belongs to the user whose `account` is
//!   its `account_client` (see [`ticket_account`]).
//!
//! Rows are read with the non-panicking conversions only ([`typed`]): a value of an
//! unexpected type is an error about that row, never a crash.
//!
//! - mgrnotify's own table for client-area notifications (ntinternal,
//!   [`create_internal_table`]): created when missing, named in `mgrnotify.conf`.
//!
//! mgrnotify never alters BILLmanager's tables. The retry schedule lives in `err_info`, as a
//! suffix an operator can read: `<reason> [attempt 3/10, retry after 2026-11-27
//! 18:14:00 UTC]`; the timestamp is compared in SQL (it sorts lexically).

use mysql::prelude::{FromRow, Queryable};
use mysql::{PooledConn, Row, Value};

use crate::db::column::{Charset, TextColumn};
use crate::db::{DbError, DbErrorKind, StatementError};
use crate::xml::Params;

/// The queue table.
pub const NOTIFYTASK: &str = "notifytask";
/// The gateway table.
pub const GATEWAY: &str = "gateway";

const NOTIFYTASK_COLUMNS: &[&str] = &[
    "id",
    "modulename",
    "filename",
    "priority",
    "error_count",
    "forcedonothing",
    "err_info",
    "createdate",
];
const GATEWAY_COLUMNS: &[&str] = &[
    "id",
    "gateway_module",
    "notify_module",
    "gateway_type",
    "active",
    "project",
    "xmlparams",
];

/// The timestamp format of the retry marker; it sorts lexically.
pub const RETRY_STAMP: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// `createdate` as the candidate order reads it; NULL is the oldest.
const CREATED: &str = "COALESCE(DATE_FORMAT(createdate, '%Y-%m-%d %H:%i:%s'), '')";
const PRIORITY: &str = "COALESCE(priority, 0)";
/// error_count as the queue counts it: NULL and negative values are no failure yet.
const ERRORS: &str = "GREATEST(COALESCE(error_count, 0), 0)";

/// How a run makes sure no other run sends the row it is sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimMode {
    /// `SELECT ... FOR UPDATE SKIP LOCKED` (MariaDB >= 10.6, MySQL >= 8.0.1).
    SkipLocked,
    /// `GET_LOCK('mgrnotify.<md5 of the database name>.<id>', 0)` and a row lock
    /// (older servers). The database is part of the name, so two BILLmanager databases
    /// on one server never hold each other's locks; the hash keeps it within the
    /// 64 characters a lock name may have.
    NamedLocks,
}

impl ClaimMode {
    /// The best mode a server of this `VERSION()` supports.
    pub fn for_server(version: &str) -> Self {
        // Old MariaDB handshakes prefix the real version with "5.5.5-".
        let real = version.strip_prefix("5.5.5-").unwrap_or(version);
        let mut numbers = real
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let major = numbers.next().unwrap_or(0);
        let minor = numbers.next().unwrap_or(0);
        let patch = numbers.next().unwrap_or(0);
        let has_skip_locked = if version.to_ascii_lowercase().contains("mariadb") {
            (major, minor) >= (10, 6)
        } else {
            (major, minor, patch) >= (8, 0, 1)
        };
        if has_skip_locked {
            Self::SkipLocked
        } else {
            Self::NamedLocks
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::SkipLocked => "skip_locked",
            Self::NamedLocks => "named_locks",
        }
    }
}

/// A row as `T`, or an error saying what could not be read: the mysql crate's
/// `from_row` panics on a value of an unexpected type (a negative number for an
/// unsigned one, NULL for a string), `from_row_opt` does not.
pub fn typed<T: FromRow>(row: Row, what: &str) -> Result<T, DbError> {
    T::from_row_opt(row).map_err(|e| {
        DbError::new(
            DbErrorKind::Schema,
            format!("{what}: unexpected values in {:?}", e.0),
        )
    })
}

/// The server's `VERSION()` text.
pub fn server_version(conn: &mut PooledConn) -> Result<String, DbError> {
    const WHAT: &str = "cannot read the server version";
    let row: Option<Row> = conn
        .query_first("SELECT VERSION()")
        .map_err(|e| DbError::query(WHAT, e))?;
    let version: Option<Option<String>> = row.map(|r| typed(r, WHAT)).transpose()?;
    Ok(version.flatten().unwrap_or_default())
}

/// What the tables look like on this server.
#[derive(Debug, Clone, Copy)]
pub struct TableFacts {
    /// What `err_info` holds; a failure reason is fitted to it before it is written.
    pub err_info: TextColumn,
}

/// Longest err_info written even when the column is TEXT: enough for any reason.
const ERR_INFO_MAX: usize = 2000;
/// Assumed when the server does not say: the tightest column BILLmanager could have.
const ERR_INFO_UNKNOWN: TextColumn = TextColumn {
    charset: Charset::Utf8Mb3,
    chars: 255,
    bytes: 255,
};

/// Checks that both tables have the columns this module relies on, and reads what
/// `err_info` can hold (a reason that does not fit would fail in strict mode).
pub fn check_tables(conn: &mut PooledConn) -> Result<TableFacts, DbError> {
    let mut facts = TableFacts {
        err_info: ERR_INFO_UNKNOWN,
    };
    for (table, needed) in [(NOTIFYTASK, NOTIFYTASK_COLUMNS), (GATEWAY, GATEWAY_COLUMNS)] {
        let what = format!("cannot read the columns of {table}");
        let rows: Vec<Row> = conn
            .exec(
                "SELECT COLUMN_NAME, CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH, \
                 CHARACTER_SET_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (table,),
            )
            .map_err(|e| DbError::query(&what, e))?;
        let columns = rows
            .into_iter()
            .map(|r| typed(r, &what))
            .collect::<Result<Vec<(String, Option<u64>, Option<u64>, Option<String>)>, _>>()?;
        if columns.is_empty() {
            return Err(DbError::new(
                DbErrorKind::Schema,
                format!("the database has no table {table}: is this BILLmanager's database?"),
            ));
        }
        let missing: Vec<&str> = needed
            .iter()
            .copied()
            .filter(|n| !columns.iter().any(|(c, ..)| c.eq_ignore_ascii_case(n)))
            .collect();
        if !missing.is_empty() {
            return Err(DbError::new(
                DbErrorKind::Schema,
                format!(
                    "table {table} lacks the column(s) {}: this BILLmanager schema is not the one \
                 mgrnotify expects (see src/db/schema.rs)",
                    missing.join(", ")
                ),
            ));
        }
        if table == NOTIFYTASK {
            if let Some((_, chars, bytes, charset)) = columns
                .iter()
                .find(|(c, ..)| c.eq_ignore_ascii_case("err_info"))
            {
                let size = |n: Option<u64>, unknown: usize| {
                    n.map_or(unknown, |n| usize::try_from(n).unwrap_or(usize::MAX))
                };
                facts.err_info = TextColumn {
                    charset: charset
                        .as_deref()
                        .map_or(ERR_INFO_UNKNOWN.charset, Charset::from_name),
                    chars: size(*chars, ERR_INFO_UNKNOWN.chars).min(ERR_INFO_MAX),
                    bytes: size(*bytes, ERR_INFO_UNKNOWN.bytes),
                };
            }
        }
    }
    Ok(facts)
}

/// Which rows of the queue are ready now.
#[derive(Debug, Clone)]
pub struct ReadyFilter {
    /// `modulename`, the notification role.
    pub module: String,
    /// `etc/billmgr.DoNothing` is present: only `forcedonothing='on'` rows.
    pub forced_only: bool,
    /// Rows with this many failures wait for an operator.
    pub max_attempts: u32,
    /// Now, in [`RETRY_STAMP`] format (UTC).
    pub now: String,
}

impl ReadyFilter {
    /// The WHERE condition with `values` in the places of module, max_attempts and now
    /// (`?` placeholders, or the [`Self::params`] as literals). A row is ready
    /// when it has failed fewer than max_attempts times, its failure was not permanent
    /// and its retry time, if any, has come; an operator who resets error_count to 0
    /// makes it ready at once.
    fn condition(&self, [module, max_attempts, now]: [String; 3]) -> String {
        let forced = if self.forced_only {
            " AND LOWER(COALESCE(forcedonothing, '')) = 'on'"
        } else {
            ""
        };
        format!(
            "modulename = {module} AND {ERRORS} < {max_attempts} AND ({ERRORS} = 0 OR NOT (\
             COALESCE(err_info, '') LIKE '% [attempt %/%, {PERMANENT}: %]' OR (\
             COALESCE(err_info, '') LIKE '%, retry after ____-__-__ __:__:__ UTC]' AND \
             SUBSTRING(err_info, CHAR_LENGTH(err_info) - 23, 19) > {now}))){forced}"
        )
    }

    /// The condition for a prepared statement with [`Self::params`].
    fn prepared_condition(&self) -> String {
        self.condition(["?"; 3].map(String::from))
    }

    fn params(&self) -> [Value; 3] {
        [
            Value::from(self.module.as_str()),
            Value::from(self.max_attempts),
            Value::from(self.now.as_str()),
        ]
    }
}

/// A ready row's place in the queue order: priority (higher first), createdate
/// (older first), id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePosition {
    pub priority: i64,
    pub created: String,
    pub id: i64,
}

/// The next `limit` ready rows after `after` in queue order: paging keeps memory flat
/// whatever the queue length.
pub fn ready_page(
    conn: &mut PooledConn,
    filter: &ReadyFilter,
    after: Option<&QueuePosition>,
    limit: usize,
) -> Result<Vec<QueuePosition>, DbError> {
    let mut sql = format!(
        "SELECT id, {PRIORITY}, {CREATED} FROM {NOTIFYTASK} WHERE {}",
        filter.prepared_condition()
    );
    let mut params = filter.params().to_vec();
    if let Some(p) = after {
        sql.push_str(&format!(
            " AND ({PRIORITY} < ? OR ({PRIORITY} = ? AND ({CREATED} > ? OR ({CREATED} = ? AND id > ?))))"
        ));
        params.extend([
            Value::from(p.priority),
            Value::from(p.priority),
            Value::from(p.created.as_str()),
            Value::from(p.created.as_str()),
            Value::from(p.id),
        ]);
    }
    sql.push_str(&format!(
        " ORDER BY {PRIORITY} DESC, {CREATED} ASC, id ASC LIMIT {limit}"
    ));
    const WHAT: &str = "cannot read the notifytask queue";
    let rows: Vec<Row> = conn
        .exec(sql, params)
        .map_err(|e| DbError::query(WHAT, e))?;
    rows.into_iter()
        .map(|r| {
            let (id, priority, created) = typed(r, WHAT)?;
            Ok(QueuePosition {
                priority,
                created,
                id,
            })
        })
        .collect()
}

/// A row this run has claimed: no other run sends it until the claim ends.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: i64,
    pub filename: String,
    /// Failures so far (a negative or NULL column reads as 0).
    pub error_count: u32,
}

/// Claimed rows: an open transaction on `conn` that holds their locks. It ends with
/// [`Claim::commit`], or rolls back when dropped (an error, a panic unwinding).
///
/// Not a `mysql::Transaction`: that sends START TRANSACTION, the claim, each DELETE and
/// COMMIT as round trips of their own. A claim sends START TRANSACTION with the claim,
/// and every DELETE with COMMIT, as two multi-statement text queries (see [`batch`]):
/// two round trips for all its rows, each a send, a receive and a thread switch on
/// both sides.
pub struct Claim<'c> {
    conn: &'c mut PooledConn,
    /// The rows claimed, in the order they were asked for.
    pub tasks: Vec<Task>,
    /// The transaction has not ended yet: dropping the claim rolls it back.
    open: bool,
}

impl Claim<'_> {
    /// The claim's connection, for statements inside its transaction.
    pub fn conn(&mut self) -> &mut PooledConn {
        self.conn
    }

    /// Row `id`'s attempt failed: one more error, and why (with the retry marker;
    /// fitted to the column, see [`TableFacts::err_info`]). Committed by
    /// [`Claim::commit`].
    pub fn record_failure(&mut self, id: i64, err_info: &str) -> Result<(), StatementError> {
        self.conn
            .exec_drop(
                format!(
                    "UPDATE {NOTIFYTASK} SET error_count = {ERRORS} + 1, err_info = ? WHERE id = ?"
                ),
                (err_info, id),
            )
            .map_err(|e| {
                StatementError::new(
                    &format!("cannot record the failure of notifytask row {id}"),
                    e,
                )
            })
    }

    /// The `sent` rows leave the queue, and the transaction commits, in one round trip.
    /// A delete the server refuses (a trigger) leaves that row alone queued: it comes
    /// back with the reason, and the others are deleted and committed all the same.
    pub fn commit(mut self, sent: &[i64]) -> Result<Vec<(i64, StatementError)>, StatementError> {
        let mut refused = Vec::new();
        let mut rest = sent;
        loop {
            match batch(self.conn, &delete_and_commit(rest)) {
                Ok(_) => {
                    self.open = false;
                    return Ok(refused);
                }
                Err(failed) => {
                    let Some(&id) = rest.get(failed.index) else {
                        return Err(StatementError::new(
                            "cannot commit the sent rows' deletes",
                            failed.error,
                        ));
                    };
                    let e = StatementError::new(
                        &format!("cannot delete notifytask row {id}"),
                        failed.error,
                    );
                    if e.connection_lost || e.transaction_lost {
                        return Err(e);
                    }
                    refused.push((id, e));
                    rest = &rest[failed.index + 1..];
                }
            }
        }
    }

    /// The `sent` rows leave the queue and the transaction commits, or nothing does:
    /// for rows whose sending is itself a write in this transaction (see
    /// [`insert_internal`]), a refused delete must undo that write too.
    pub fn commit_whole(mut self, sent: &[i64]) -> Result<(), StatementError> {
        batch(self.conn, &delete_and_commit(sent)).map_err(|e| {
            StatementError::new(
                &format!("cannot delete notifytask row(s) {}", id_list(sent)),
                e.error,
            )
        })?;
        self.open = false;
        Ok(())
    }

    /// Ends the transaction without a change (no row was claimable after all).
    fn rollback(mut self) -> Result<(), mysql::Error> {
        self.open = false;
        self.conn.query_drop("ROLLBACK")
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if self.open {
            // As `mysql::Transaction` does: a failed rollback means a lost connection,
            // and the server rolls back what a lost connection left open.
            let _ = self.conn.query_drop("ROLLBACK");
        }
    }
}

/// A DELETE of each row by its id (a row lock each, no gap locks), then COMMIT: one
/// statement each, so a [`batch`] error says which row it was.
fn delete_and_commit(ids: &[i64]) -> String {
    let mut sql = String::new();
    for id in ids {
        sql.push_str(&format!("DELETE FROM {NOTIFYTASK} WHERE id = {id}; "));
    }
    sql.push_str("COMMIT");
    sql
}

/// The statement of a [`batch`] that failed (0 for the first), and why.
struct BatchError {
    index: usize,
    error: mysql::Error,
}

/// Runs `sql`, several statements separated by `;`, in one round trip, and returns
/// the rows of the last one. Every statement's result is read, so an error in any of
/// them is returned with its place (the server runs none after a failed one).
/// `query_drop` would not do: it drops the results after the first unread, errors
/// included.
fn batch(conn: &mut PooledConn, sql: &str) -> Result<Vec<Row>, BatchError> {
    let mut result = conn
        .query_iter(sql)
        .map_err(|error| BatchError { index: 0, error })?;
    let mut rows = Vec::new();
    let mut index = 0;
    while let Some(set) = result.iter() {
        rows = set
            .collect::<Result<_, _>>()
            .map_err(|error| BatchError { index, error })?;
        index += 1;
    }
    Ok(rows)
}

/// Claims those of rows `ids` that are still there, still ready and held by nobody
/// else, in one transaction holding their row locks; `None` when there are none. In
/// [`ClaimMode::NamedLocks`] also a named lock on the connection for each, which
/// [`release`] drops after the transaction. A killed process loses its connection,
/// and the server drops both.
pub fn claim<'c>(
    conn: &'c mut PooledConn,
    mode: ClaimMode,
    filter: &ReadyFilter,
    ids: &[i64],
) -> Result<Option<Claim<'c>>, StatementError> {
    let what = match ids {
        [id] => format!("cannot claim notifytask row {id}"),
        _ => format!("cannot claim notifytask rows {}", id_list(ids)),
    };
    let fail = |e: mysql::Error| StatementError::new(&what, e);
    let (lock, ids) = match mode {
        ClaimMode::SkipLocked => (" FOR UPDATE SKIP LOCKED", ids.to_vec()),
        ClaimMode::NamedLocks => {
            let mut got = Vec::with_capacity(ids.len());
            for &id in ids {
                let row: Option<Row> = conn
                    .exec_first(
                        "SELECT GET_LOCK(CONCAT('mgrnotify.', MD5(DATABASE()), '.', ?), 0)",
                        (id,),
                    )
                    .map_err(fail)?;
                let locked: Option<Option<i64>> = row
                    .map(|r| typed(r, &what))
                    .transpose()
                    .map_err(StatementError::unreadable)?;
                if locked.flatten() == Some(1) {
                    got.push(id);
                }
            }
            // Nobody else of ours holds them; wait for a lock BILLmanager itself may hold.
            (" FOR UPDATE", got)
        }
    };
    if ids.is_empty() {
        return Ok(None);
    }
    // A text query, so its values are written into it, escaped as the server expects.
    let no_backslash_escape = conn.no_backslash_escape();
    let literal = |v: Value| v.as_sql(no_backslash_escape);
    let sql = format!(
        "START TRANSACTION; SELECT id, filename, {ERRORS} FROM {NOTIFYTASK} WHERE id IN ({}) AND {}{lock}",
        id_list(&ids),
        filter.condition(filter.params().map(literal))
    );
    let mut claim = Claim {
        tasks: Vec::new(),
        // From the first statement on: whatever happens, the transaction ends.
        open: true,
        conn,
    };
    let rows = batch(claim.conn, &sql).map_err(|e| fail(e.error))?;
    if rows.is_empty() {
        claim.rollback().map_err(fail)?;
        return Ok(None);
    }
    // The claim rolls back when dropped with an error.
    for row in rows {
        let (id, filename, error_count): (i64, Option<Vec<u8>>, i64) =
            typed(row, &what).map_err(StatementError::unreadable)?;
        claim.tasks.push(Task {
            id,
            filename: String::from_utf8_lossy(&filename.unwrap_or_default()).into_owned(),
            error_count: u32::try_from(error_count.max(0)).unwrap_or(u32::MAX),
        });
    }
    // In the order asked for: the queue's.
    claim
        .tasks
        .sort_by_key(|t| ids.iter().position(|&id| id == t.id));
    Ok(Some(claim))
}

/// `1, 2, 3`: ids as SQL, and for the log.
pub fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ends the claims' named locks (no-op for [`ClaimMode::SkipLocked`]).
pub fn release(conn: &mut PooledConn, mode: ClaimMode, ids: &[i64]) -> Result<(), StatementError> {
    if mode == ClaimMode::NamedLocks {
        for &id in ids {
            conn.exec_drop(
                "DO RELEASE_LOCK(CONCAT('mgrnotify.', MD5(DATABASE()), '.', ?))",
                (id,),
            )
            .map_err(|e| StatementError::new(&format!("cannot release notifytask row {id}"), e))?;
        }
    }
    Ok(())
}

/// Which of `rows` (id and filename) are still queued: a sent journal is kept until
/// none of its rows is.
pub fn still_queued(conn: &mut PooledConn, rows: &[(i64, String)]) -> Result<usize, DbError> {
    if rows.is_empty() {
        return Ok(0);
    }
    const WHAT: &str = "cannot read the notifytask queue";
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let found: Vec<Row> = conn
        .query(format!(
            "SELECT id, filename FROM {NOTIFYTASK} WHERE id IN ({})",
            id_list(&ids)
        ))
        .map_err(|e| DbError::query(WHAT, e))?;
    let mut queued = 0;
    for row in found {
        let (id, filename): (i64, Option<Vec<u8>>) = typed(row, WHAT)?;
        let filename = String::from_utf8_lossy(&filename.unwrap_or_default()).into_owned();
        if rows.iter().any(|(i, f)| *i == id && *f == filename) {
            queued += 1;
        }
    }
    Ok(queued)
}

/// `err_info`'s suffix for a transient failure: when it will be tried again, or that
/// an operator has to reset error_count.
pub fn retry_marker(attempt: u32, max_attempts: u32, retry_at: Option<&str>) -> String {
    match retry_at {
        Some(at) => {
            format!(" [attempt {attempt}/{max_attempts}, transient, retry after {at} UTC]")
        }
        None => format!(
            " [attempt {attempt}/{max_attempts}, transient, no more retries: set error_count \
             to 0 to retry]"
        ),
    }
}

/// `err_info`'s suffix for a permanent failure: the ready filter skips the row until
/// an operator resets error_count.
pub fn permanent_marker(attempt: u32, max_attempts: u32) -> String {
    format!(
        " [attempt {attempt}/{max_attempts}, {PERMANENT}: not retried, set error_count to 0 \
         to retry]"
    )
}

/// The word after the counts that marks a permanent failure.
const PERMANENT: &str = "permanent";

/// A gateway row.
#[derive(Debug, Clone)]
pub struct GatewayRow {
    pub id: String,
    pub module: String,
    pub project: String,
    /// Every column but xmlparams, as the gateway module's `<gateway>` children.
    pub columns: Params,
    pub xmlparams: String,
    active: String,
    gateway_type: String,
}

impl GatewayRow {
    /// Active ('on' in any case) and outgoing ('outgoing' or 1).
    pub fn is_active_outgoing(&self) -> bool {
        let kind = self.gateway_type.trim();
        self.active.trim().eq_ignore_ascii_case("on")
            && (kind.eq_ignore_ascii_case("outgoing") || kind == "1")
    }

    /// Active ('on' in any case) and ingoing ('ingoing' or 2): it receives mail.
    pub fn is_active_ingoing(&self) -> bool {
        let kind = self.gateway_type.trim();
        self.active.trim().eq_ignore_ascii_case("on")
            && (kind.eq_ignore_ascii_case("ingoing") || kind == "2")
    }
}

/// The gateways of one notification module, in id order (the failover order).
pub fn gateways(conn: &mut PooledConn, notify_module: &str) -> Result<Vec<GatewayRow>, DbError> {
    let rows: Vec<mysql::Row> = conn
        .exec(
            format!("SELECT * FROM {GATEWAY} WHERE notify_module = ? ORDER BY id"),
            (notify_module,),
        )
        .map_err(|e| DbError::query("cannot read the gateway table", e))?;
    Ok(rows.iter().map(gateway_row).collect())
}

/// Every gateway row, in id order.
pub fn all_gateways(conn: &mut PooledConn) -> Result<Vec<GatewayRow>, DbError> {
    let rows: Vec<mysql::Row> = conn
        .query(format!("SELECT * FROM {GATEWAY} ORDER BY id"))
        .map_err(|e| DbError::query("cannot read the gateway table", e))?;
    Ok(rows.iter().map(gateway_row).collect())
}

fn gateway_row(row: &mysql::Row) -> GatewayRow {
    let mut columns = Params::new();
    let mut xmlparams = String::new();
    for (i, column) in row.columns_ref().iter().enumerate() {
        let name = column.name_str().to_ascii_lowercase();
        let value = row.as_ref(i).map(value_text).unwrap_or_default();
        if name == "xmlparams" {
            xmlparams = value;
        } else {
            columns.insert_if_absent(&name, &value);
        }
    }
    let col = |n: &str| columns.get(n).unwrap_or("").to_owned();
    GatewayRow {
        id: col("id"),
        module: col("gateway_module"),
        project: col("project"),
        active: col("active"),
        gateway_type: col("gateway_type"),
        xmlparams,
        columns,
    }
}

/// BILLmanager's user table. A notice's `<user>` normally carries the contact; when it
/// lacks the phone, the row with the user's id fills in what is missing.
pub const USER: &str = "user";

/// The user columns a notice may take from the table, besides its kind's contact field
/// and those an operator adds: never the whole row (it holds password hashes and TOTP
/// secrets on a real install).
pub const USER_FIELDS: &[&str] = &["id", "name", "realname", "email", "phone", "language"];

/// Those of `wanted` that the user table has, spelt as the table spells them; none
/// when there is no user table.
pub fn user_columns(conn: &mut PooledConn, wanted: &[String]) -> Result<Vec<String>, DbError> {
    let what = format!("cannot read the columns of {USER}");
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (USER,),
        )
        .map_err(|e| DbError::query(&what, e))?;
    let present = rows
        .into_iter()
        .map(|r| typed::<(String,)>(r, &what).map(|(c,)| c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(present
        .into_iter()
        .filter(|c| wanted.iter().any(|w| w.eq_ignore_ascii_case(c)))
        .collect())
}

/// The `columns` (from [`user_columns`]) of the user with `id`, as text; `None` when
/// there is no such user (or no such table: then the notice's own fields are all
/// there is).
pub fn user_fields(conn: &mut impl Queryable, columns: &[String], id: &str) -> Option<Params> {
    if columns.is_empty() {
        return None;
    }
    let list = columns
        .iter()
        .map(|c| format!("`{}`", c.replace('`', "``")))
        .collect::<Vec<_>>()
        .join(", ");
    let row: mysql::Row =
        match conn.exec_first(format!("SELECT {list} FROM `{USER}` WHERE id = ?"), (id,)) {
            Ok(row) => row?,
            Err(e) => {
                crate::debug!("cannot read user {id} from the {USER} table: {e}");
                return None;
            }
        };
    let mut fields = Params::new();
    for (i, column) in row.columns_ref().iter().enumerate() {
        let value = row.as_ref(i).map(value_text).unwrap_or_default();
        fields.insert_if_absent(&column.name_str().to_ascii_lowercase(), &value);
    }
    Some(fields)
}

/// BILLmanager's ticket table, as far as incoming messages need it: a ticket
/// `id` belongs to the user whose `account` is its `account_client`.
pub const TICKET: &str = "ticket";

/// A user that incoming messages are posted as: `name` is what mgrctl's `su=` takes,
/// `account` owns tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub account: String,
}

/// The users whose contact column `column` holds `value`, compared case-insensitively
/// and without surrounding spaces (two at most: one more than a match needs, to tell an
/// ambiguous contact). `column` is a plain column name (letters, digits, `_`).
pub fn users_by_contact(
    conn: &mut impl Queryable,
    column: &str,
    value: &str,
) -> Result<Vec<Customer>, DbError> {
    if column.is_empty()
        || !column
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(DbError::new(
            DbErrorKind::Schema,
            format!("'{column}' is not a column name of {USER}"),
        ));
    }
    let what = format!("cannot look up a user by {column}");
    let rows: Vec<Row> = conn
        .exec(
            format!(
                "SELECT id, name, account FROM `{USER}` \
                 WHERE LOWER(TRIM(`{column}`)) = LOWER(TRIM(?)) ORDER BY id LIMIT 2"
            ),
            (value,),
        )
        .map_err(|e| DbError::query(&what, e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let text = |i: usize| r.as_ref(i).map(value_text).unwrap_or_default();
            Customer {
                id: text(0),
                name: text(1),
                account: text(2),
            }
        })
        .collect())
}

/// The `account_client` of ticket `id`; `None` when there is no such ticket.
pub fn ticket_account(conn: &mut impl Queryable, id: &str) -> Result<Option<String>, DbError> {
    let what = format!("cannot read ticket {id}");
    let row: Option<Row> = conn
        .exec_first(
            format!("SELECT account_client FROM `{TICKET}` WHERE id = ?"),
            (id,),
        )
        .map_err(|e| DbError::query(&what, e))?;
    Ok(row.map(|r| r.as_ref(0).map(value_text).unwrap_or_default()))
}

/// A column value as the text a gateway module reads.
fn value_text(v: &Value) -> String {
    match v {
        Value::NULL => String::new(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Date(y, mo, d, h, mi, s, _) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
        }
        Value::Time(neg, days, h, mi, s, _) => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            format!("{}{hours:02}:{mi:02}:{s:02}", if *neg { "-" } else { "" })
        }
    }
}

/// What the retry marker at the end of a row's `err_info` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryState {
    pub attempt: u32,
    pub max_attempts: u32,
    /// When it is tried again (UTC, [`RETRY_STAMP`]); `None` when it waits for an operator.
    pub retry_at: Option<String>,
    /// The failure cannot go away by itself: it waits for an operator.
    pub permanent: bool,
}

/// Reads the marker [`retry_marker`] wrote; `None` for err_info without one (written
/// by BILLmanager or an older version).
pub fn retry_state(err_info: &str) -> Option<RetryState> {
    let body = err_info.trim_end().strip_suffix(']')?;
    let body = &body[body.rfind(" [attempt ")? + " [attempt ".len()..];
    let (counts, rest) = body.split_once(", ")?;
    let (attempt, max) = counts.split_once('/')?;
    // Markers before the word "transient" was written have none.
    let rest = rest.strip_prefix("transient, ").unwrap_or(rest);
    let retry_at = rest
        .strip_prefix("retry after ")
        .and_then(|r| r.strip_suffix(" UTC"))
        .map(str::to_owned);
    Some(RetryState {
        attempt: attempt.parse().ok()?,
        max_attempts: max.parse().ok()?,
        permanent: rest.starts_with(PERMANENT),
        retry_at,
    })
}

/// One notification module's rows in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleQueue {
    pub module: String,
    pub rows: u64,
    pub ready: u64,
    pub failing: u64,
    /// The oldest createdate, as text.
    pub oldest: String,
}

/// Every module's rows: how many, how many ready now (by `filter`'s rules, its module
/// ignored), how many have failed, the oldest.
pub fn queue_overview(
    conn: &mut PooledConn,
    filter: &ReadyFilter,
) -> Result<Vec<ModuleQueue>, DbError> {
    let fail = |e| DbError::query("cannot read the notifytask queue", e);
    let modules: Vec<(Option<String>, u64, u64, Option<String>)> = conn
        .query(format!(
            "SELECT modulename, COUNT(*), SUM({ERRORS} > 0), \
             COALESCE(DATE_FORMAT(MIN(createdate), '%Y-%m-%d %H:%i:%s'), '') \
             FROM {NOTIFYTASK} GROUP BY modulename ORDER BY modulename"
        ))
        .map_err(fail)?;
    let mut out = Vec::new();
    for (module, rows, failing, oldest) in modules {
        let module = module.unwrap_or_default();
        let this = ReadyFilter {
            module: module.clone(),
            ..filter.clone()
        };
        let ready: Option<u64> = conn
            .exec_first(
                format!(
                    "SELECT COUNT(*) FROM {NOTIFYTASK} WHERE {}",
                    this.prepared_condition()
                ),
                this.params().to_vec(),
            )
            .map_err(fail)?;
        out.push(ModuleQueue {
            module,
            rows,
            ready: ready.unwrap_or(0),
            failing,
            oldest: oldest.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// A row that has failed at least once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingRow {
    pub id: u64,
    pub module: String,
    pub filename: String,
    pub error_count: i64,
    pub err_info: String,
    pub created: String,
}

/// The failing rows, oldest first, at most `limit`.
pub fn failing_rows(conn: &mut PooledConn, limit: usize) -> Result<Vec<FailingRow>, DbError> {
    conn.query_map(
        format!(
            "SELECT id, modulename, filename, {ERRORS}, COALESCE(err_info, ''), {CREATED} \
             FROM {NOTIFYTASK} WHERE {ERRORS} > 0 ORDER BY {CREATED}, id LIMIT {limit}"
        ),
        |(id, module, filename, error_count, err_info, created): (
            u64,
            Option<String>,
            Option<String>,
            i64,
            String,
            String,
        )| FailingRow {
            id,
            module: module.unwrap_or_default(),
            filename: filename.unwrap_or_default(),
            error_count,
            err_info,
            created,
        },
    )
    .map_err(|e| DbError::query("cannot read the notifytask queue", e))
}

/// The module and file of row `id`, whatever its state; `None` when there is no such row.
pub fn task_file(conn: &mut PooledConn, id: u64) -> Result<Option<(String, String)>, DbError> {
    let row: Option<(Option<String>, Option<Vec<u8>>)> = conn
        .exec_first(
            format!("SELECT modulename, filename FROM {NOTIFYTASK} WHERE id = ?"),
            (id,),
        )
        .map_err(|e| DbError::query("cannot read the notifytask queue", e))?;
    Ok(row.map(|(module, filename)| {
        (
            module.unwrap_or_default(),
            String::from_utf8_lossy(&filename.unwrap_or_default()).into_owned(),
        )
    }))
}

/// Makes failed rows ready at once (error_count 0; err_info keeps the last reason):
/// the named ones, or with `ids` empty every failed row. Returns how many changed.
pub fn clear_backoff(conn: &mut PooledConn, ids: &[u64]) -> Result<u64, DbError> {
    let which = if ids.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = ids.iter().map(u64::to_string).collect();
        format!(" AND id IN ({})", list.join(","))
    };
    conn.query_drop(format!(
        "UPDATE {NOTIFYTASK} SET error_count = 0 WHERE {ERRORS} <> 0{which}"
    ))
    .map_err(|e| DbError::query("cannot reset the failed rows", e))?;
    Ok(conn.affected_rows())
}

/// The default name of mgrnotify's table of client-area notifications.
pub const INTERNAL_TABLE: &str = "mgrnotify_internal";

/// A name usable as a table name as it is: letters, digits and `_`, not starting with a
/// digit, at most 64 characters (MariaDB's limit).
pub fn is_table_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Creates mgrnotify's table of client-area notifications when it is missing: one row
/// a message, for the client area to show (`user_id`, `project_id`, `subject`, `text`,
/// `html`, `createdate`). DDL commits at once, so it is never run inside a claim.
pub fn create_internal_table(conn: &mut PooledConn, table: &str) -> Result<(), DbError> {
    debug_assert!(is_table_name(table));
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS `{table}` (\
           id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
           user_id BIGINT NOT NULL, \
           project_id BIGINT NULL, \
           subject VARCHAR(1024) NOT NULL DEFAULT '', \
           text MEDIUMTEXT NOT NULL, \
           html MEDIUMTEXT NULL, \
           createdate DATETIME NOT NULL, \
           KEY user_createdate (user_id, createdate)\
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    ))
    .map_err(|e| DbError::query(&format!("cannot create the table {table}"), e))
}

/// One client-area notification as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalMessage {
    pub user_id: i64,
    pub project_id: Option<i64>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Stores the messages of one queue row in the claim's transaction, in one statement:
/// they are all stored, or none, and only when the row's delete commits with them.
pub fn insert_internal(
    tx: &mut impl Queryable,
    table: &str,
    messages: &[InternalMessage],
) -> Result<(), StatementError> {
    debug_assert!(is_table_name(table));
    if messages.is_empty() {
        return Ok(());
    }
    let tuples = vec!["(?, ?, ?, ?, ?, NOW())"; messages.len()].join(", ");
    let mut values: Vec<Value> = Vec::with_capacity(messages.len() * 5);
    for m in messages {
        values.push(m.user_id.into());
        values.push(m.project_id.into());
        values.push(m.subject.as_str().into());
        values.push(m.text.as_str().into());
        values.push(m.html.as_deref().into());
    }
    tx.exec_drop(
        format!(
            "INSERT INTO `{table}` (user_id, project_id, subject, text, html, createdate) \
             VALUES {tuples}"
        ),
        values,
    )
    .map_err(|e| StatementError::new(&format!("cannot store the message in {table}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        for good in ["mgrnotify_internal", "T1", "_x"] {
            assert!(is_table_name(good), "{good}");
        }
        for bad in ["", "1t", "a-b", "a`b", "a b", "x;drop", &"a".repeat(65)] {
            assert!(!is_table_name(bad), "{bad}");
        }
    }

    #[test]
    fn claim_mode_by_server_version() {
        use ClaimMode::*;
        assert_eq!(
            ClaimMode::for_server("10.11.19-MariaDB-0+deb12u1"),
            SkipLocked
        );
        assert_eq!(ClaimMode::for_server("10.6.0-MariaDB"), SkipLocked);
        assert_eq!(
            ClaimMode::for_server("10.3.39-MariaDB-0+deb10u1"),
            NamedLocks
        );
        assert_eq!(ClaimMode::for_server("5.5.5-10.4.1-MariaDB"), NamedLocks);
        assert_eq!(ClaimMode::for_server("5.5.5-10.6.1-MariaDB"), SkipLocked);
        assert_eq!(ClaimMode::for_server("8.0.36"), SkipLocked);
        assert_eq!(ClaimMode::for_server("5.7.44-log"), NamedLocks);
        assert_eq!(ClaimMode::for_server("8.0.0-dmr"), NamedLocks);
        assert_eq!(ClaimMode::for_server(""), NamedLocks);
    }

    #[test]
    fn retry_state_reads_what_retry_marker_wrote() {
        let text = format!(
            "timeout{}",
            retry_marker(3, 10, Some("2026-11-30 10:00:00"))
        );
        let state = retry_state(&text).unwrap();
        assert_eq!((state.attempt, state.max_attempts), (3, 10));
        assert_eq!(state.retry_at.as_deref(), Some("2026-11-30 10:00:00"));
        assert!(!state.permanent);
        let last = retry_state(&format!("x{}", retry_marker(10, 10, None))).unwrap();
        assert_eq!(last.retry_at, None);
        assert!(!last.permanent);
        let permanent = retry_state(&format!("x{}", permanent_marker(1, 10))).unwrap();
        assert!(permanent.permanent && permanent.retry_at.is_none());
        assert_eq!(permanent.attempt, 1);
        // Written by the version before "transient" was spelt out.
        let old = retry_state("x [attempt 2/10, retry after 2026-01-01 00:00:00 UTC]").unwrap();
        assert!(!old.permanent && old.retry_at.is_some());
        assert_eq!(retry_state("a reason of BILLmanager's"), None);
        assert_eq!(retry_state("x [attempt a/b, retry after y UTC]"), None);
    }

    #[test]
    fn retry_marker_matches_the_sql_pattern() {
        let m = retry_marker(3, 10, Some("2026-11-27 18:14:00"));
        let text = format!("gateway 3: timeout{m}");
        assert!(text.ends_with(", retry after 2026-11-27 18:14:00 UTC]"));
        // SUBSTRING(err_info, CHAR_LENGTH(err_info) - 23, 19), 1-based.
        let chars: Vec<char> = text.chars().collect();
        let start = chars.len() - 23 - 1;
        let stamp: String = chars[start..start + 19].iter().collect();
        assert_eq!(stamp, "2026-11-27 18:14:00");
        assert!(retry_marker(10, 10, None).contains("set error_count to 0"));
    }
}
