//! `mgrnotify queue`: what waits in BILLmanager's notifytask queue, per notification
//! module, and the failing rows with their attempts, next try and reason; `queue retry`
//! clears the backoff of rows so the next run takes them at once; `queue show` renders
//! a row's notification as it would be sent.

use super::CliError;
use std::ffi::OsString;

use serde_json::json;

use crate::cli::say;
use crate::db::schema::{self, ReadyFilter};
use crate::db::DbSettings;
use crate::gateway::GatewaySettings;
use crate::queue::config::QueueConfig;
use crate::queue::send::{Channel, Courier};
use crate::root::MgrRoot;

/// How many failing rows the listing shows.
const FAILING_SHOWN: usize = 200;

const USAGE: &str = "\
Usage: mgrnotify queue [--json]           what waits, per module, and the failing rows
       mgrnotify queue retry ID...|--failed  make failed rows ready at once
       mgrnotify queue show ID           the row's notification as it would be sent
                                         (a dry run: nothing is sent or changed)
";

pub fn run(root: &MgrRoot, args: &[OsString]) -> Result<bool, CliError> {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match words.first().map(String::as_str) {
        None => overview(root, false),
        Some("--json") if words.len() == 1 => overview(root, true),
        Some("retry") => retry(root, &words[1..]),
        Some("show") if words.len() == 2 => show(root, &words[1]),
        Some("show") => Err(CliError::Usage(format!(
            "queue show needs one row id\n\n{USAGE}"
        ))),
        Some("--help" | "-h") => {
            say!("{}", USAGE.trim_end());
            Ok(true)
        }
        Some(other) => Err(CliError::Usage(format!(
            "queue: unknown argument '{other}'\n\n{USAGE}"
        ))),
    }
}

fn connect(root: &MgrRoot) -> Result<mysql::PooledConn, CliError> {
    let settings = DbSettings::load(root)?;
    let pool = settings.connect(1, crate::db::TOOL_TIMEOUT)?;
    let mut conn = pool
        .get_conn()
        .map_err(|e| crate::db::DbError::query("cannot get a database connection", e))?;
    // Every gateway's secrets, so that an err_info that quotes one shows it masked.
    for row in schema::all_gateways(&mut conn)? {
        let _ = GatewaySettings::new(row.columns.clone(), &row.xmlparams);
    }
    Ok(conn)
}

fn overview(root: &MgrRoot, as_json: bool) -> Result<bool, CliError> {
    let config = QueueConfig::load(root)?;
    let mut conn = connect(root)?;
    let filter = ReadyFilter {
        module: String::new(),
        forced_only: root.do_nothing_flag().exists(),
        max_attempts: config.max_attempts,
        now: time::OffsetDateTime::now_utc()
            .format(schema::RETRY_STAMP)
            .unwrap_or_default(),
    };
    let modules = schema::queue_overview(&mut conn, &filter)?;
    let failing = schema::failing_rows(&mut conn, FAILING_SHOWN)?;
    let rows: Vec<_> = failing
        .iter()
        .map(|r| {
            let state = schema::retry_state(&r.err_info);
            let kind = match &state {
                Some(s) if s.permanent => "permanent",
                Some(_) => "transient",
                None => "unknown",
            };
            let next = match &state {
                Some(s) if s.permanent => "waits for an operator".to_owned(),
                Some(schema::RetryState {
                    retry_at: Some(at), ..
                }) => format!("{at} UTC"),
                Some(_) if r.error_count >= i64::from(config.max_attempts) => {
                    "no more retries".to_owned()
                }
                _ => "next run".to_owned(),
            };
            (r, kind, next)
        })
        .collect();
    if as_json {
        let value = json!({
            "modules": modules.iter().map(|m| json!({
                "module": m.module, "rows": m.rows, "ready": m.ready,
                "failing": m.failing, "oldest": m.oldest,
            })).collect::<Vec<_>>(),
            "failing": rows.iter().map(|(r, kind, next)| json!({
                "id": r.id, "module": r.module, "filename": r.filename,
                "attempts": r.error_count, "kind": kind, "next_try": next,
                "created": r.created, "err_info": r.err_info,
            })).collect::<Vec<_>>(),
        });
        say!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(true);
    }
    if modules.is_empty() {
        say!("the queue is empty");
        return Ok(true);
    }
    say!(
        "{:<12} {:>7} {:>7} {:>8}  oldest",
        "module",
        "rows",
        "ready",
        "failing"
    );
    for m in &modules {
        say!(
            "{:<12} {:>7} {:>7} {:>8}  {}",
            m.module,
            m.rows,
            m.ready,
            m.failing,
            m.oldest
        );
    }
    if !rows.is_empty() {
        say!("\nfailing rows (oldest first):");
        say!(
            "{:>8} {:<10} {:>8}  {:<10} {:<23}  err_info",
            "id",
            "module",
            "attempts",
            "kind",
            "next try"
        );
        for (r, kind, next) in &rows {
            say!(
                "{:>8} {:<10} {:>8}  {:<10} {:<23}  {}",
                r.id,
                r.module,
                r.error_count,
                kind,
                next,
                r.err_info
            );
        }
        let total: u64 = modules.iter().map(|m| m.failing).sum();
        if total > rows.len() as u64 {
            say!("... and {} more (see --json)", total - rows.len() as u64);
        }
    }
    Ok(true)
}

fn retry(root: &MgrRoot, words: &[String]) -> Result<bool, CliError> {
    let ids: Vec<u64> = if words == ["--failed"] {
        Vec::new()
    } else if words.is_empty() {
        return Err(CliError::Usage(format!(
            "queue retry needs row ids or --failed\n\n{USAGE}"
        )));
    } else {
        words
            .iter()
            .map(|w| {
                w.parse::<u64>()
                    .map_err(|_| CliError::Usage(format!("queue retry: '{w}' is not a row id")))
            })
            .collect::<Result<_, _>>()?
    };
    let mut conn = connect(root)?;
    let changed = schema::clear_backoff(&mut conn, &ids)?;
    say!("{changed} row(s) will be tried on the next run");
    Ok(ids.is_empty() || changed as usize == ids.len())
}

/// The notification of row `id` as the queue would send it: template kind, subject,
/// text (and for email the HTML and the attachments), contact and the gateways in
/// failover order. Nothing is sent or changed.
fn show(root: &MgrRoot, id: &str) -> Result<bool, CliError> {
    let id: u64 = id
        .parse()
        .map_err(|_| CliError::Usage(format!("queue show: '{id}' is not a row id")))?;
    let config = QueueConfig::load(root)?;
    let mut conn = connect(root)?;
    let Some((module, filename)) = schema::task_file(&mut conn, id)? else {
        return Err(CliError::Refused(format!(
            "queue show: there is no notifytask row {id}"
        )));
    };
    let kind = match crate::roles::lookup(&module).map(|r| r.build) {
        Some(crate::roles::Build::Notify(kind)) => kind,
        _ => {
            return Err(CliError::Refused(format!(
                "row {id} is for '{module}', which is not a module of mgrnotify"
            )))
        }
    };
    let gateways = schema::gateways(&mut conn, &module)?;
    let channel = Channel::from(kind);
    let columns = schema::user_columns(
        &mut conn,
        &crate::queue::user_fields(&config, &channel.contact_field),
    )?;
    let courier = Courier::new(root.clone(), channel, gateways, &config);
    say!("row {id}: {module}, file {filename}");
    let notices = courier
        .preview_file(&filename, &mut |user| {
            schema::user_fields(&mut conn, &columns, user)
        })
        .map_err(|e| CliError::Refused(format!("row {id}: {e}")))?;
    let mut sendable = true;
    for (index, notice) in notices.iter().enumerate() {
        say!("\nnotify block {} of {}", index + 1, notices.len());
        let p = match notice {
            Ok(p) => p,
            Err(e) => {
                let kind = if e.is_permanent() {
                    "permanent"
                } else {
                    "transient"
                };
                say!("  cannot be sent ({kind}): {}", e.msg);
                sendable = false;
                continue;
            }
        };
        let contact = p.notice.user.get(courier.contact_field()).unwrap_or("");
        say!(
            "  template: {}",
            crate::template::detect(&p.notice.tmpl).name()
        );
        say!("  {}: {contact}", courier.contact_field());
        say!("  subject: {}", p.rendered.subject);
        let gateways: Vec<String> = p
            .gateways
            .iter()
            .map(|g| format!("{} ({})", g.row.id, g.row.module))
            .collect();
        say!("  gateways in failover order: {}", gateways.join(", "));
        say!("  text:");
        for line in p.body.text.lines() {
            say!("    {line}");
        }
        if let Some(html) = &p.body.html {
            say!(
                "  html: {} bytes (the text above is made from it)",
                html.len()
            );
        }
        for a in &p.attachments {
            say!("  attachment: {} ({}) {}", a.name, a.content_type, a.path);
        }
    }
    Ok(sendable)
}
