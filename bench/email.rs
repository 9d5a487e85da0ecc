//! `cargo bench --bench email`: 1,000 queued emails through `ntemail --command
//! process` and gwsmtp to a local SMTP server (tests/smtp_server.py, Python's
//! aiosmtpd, which writes every message to disk), two ways:
//! - gwsmtp in-process: each worker keeps its SMTP connection across its messages;
//! - gwsmtp as a separate program per message, as BILLmanager runs a gateway module:
//!   a process start and one SMTP connection a message.
//!
//! Beside them, the server's own ceiling: the same number of mails sent straight from
//! the bench process over kept connections (no queue, no database), so it shows when
//! the Python server, not mgrnotify, is what limits the rate. Then both runs again
//! against a minimal SMTP sink of the bench's own (a thread per connection that answers
//! every command at once and keeps nothing), which shows mgrnotify's own rate. Prints
//! messages per second and the ntemail run's peak RSS (wait4's ru_maxrss).
//!
//! Uses the test MariaDB (MGRNOTIFY_TEST_DB_URL, or the private server the tests start).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::mariadb::{wait_rusage, TestDb};
use common::mgr_root::MgrRoot;
use common::smtp::{Options, SmtpServer};
use mgrnotify::mail::message::{self, Content, Sender};
use mgrnotify::mail::smtp::{SmtpClient, SmtpSettings};
use mgrnotify::xml::Params;
use mysql::prelude::Queryable;

const MESSAGES: usize = 1_000;
const WORKERS: usize = 16;

const TEMPLATE: &str = "&lt;html&gt;&lt;body&gt;&lt;p&gt;Здравствуйте, {user.name}!&lt;/p&gt;\
    &lt;p&gt;Счёт оплачен. &lt;a href=\"https://my.shop.test/\"&gt;Кабинет&lt;/a&gt;&lt;/p&gt;\
    &lt;/body&gt;&lt;/html&gt;";

struct Figures {
    sent: usize,
    seconds: f64,
    peak_rss_mb: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: keep that quick.
    let messages = if args.iter().any(|a| a == "--bench") {
        MESSAGES
    } else {
        40
    };
    println!("email bench: {messages} HTML mails, {WORKERS} workers");
    println!("  to aiosmtpd on loopback (tests/smtp_server.py, keeps every mail on disk):");
    let server = SmtpServer::start(Options::default());
    let ceiling = server_ceiling(server.port, messages);
    assert_eq!(server.messages().len(), messages);
    drop(server);
    println!(
        "    the server's ceiling (mails sent straight from {WORKERS} threads on kept \
         connections, no queue): {ceiling:.0} messages/s"
    );
    for separate in [false, true] {
        let server = SmtpServer::start(Options::default());
        let f = queue_run(server.port, messages, separate);
        assert_eq!(server.messages().len(), messages);
        report(separate, &f, ceiling);
    }
    println!("  to the bench's own SMTP sink (answers at once, keeps nothing):");
    let sink = Sink::start();
    let ceiling = server_ceiling(sink.port, messages);
    println!("    the sink's ceiling (straight from {WORKERS} threads): {ceiling:.0} messages/s");
    for separate in [false, true] {
        let before = sink.messages();
        let f = queue_run(sink.port, messages, separate);
        assert_eq!(sink.messages() - before, messages);
        report(separate, &f, ceiling);
    }
}

fn report(separate: bool, f: &Figures, ceiling: f64) {
    let label = if separate {
        "gwsmtp as a program per message (one connection a message)"
    } else {
        "gwsmtp in-process, connections reused"
    };
    let rate = f.sent as f64 / f.seconds;
    println!(
        "    {label}: {} sent in {:.2} s, {rate:.0} messages/s ({:.0}% of the ceiling), \
         ntemail peak RSS {:.1} MB",
        f.sent,
        f.seconds,
        100.0 * rate / ceiling,
        f.peak_rss_mb
    );
}

/// A minimal SMTP server: a thread per connection, every command answered at once,
/// messages counted and dropped.
struct Sink {
    port: u16,
    received: Arc<AtomicUsize>,
}

impl Sink {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        let port = listener.local_addr().expect("sink address").port();
        let received = Arc::new(AtomicUsize::new(0));
        let count = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let count = count.clone();
                std::thread::spawn(move || {
                    let _ = Sink::serve(stream, &count);
                });
            }
        });
        Self { port, received }
    }

    fn messages(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }

    fn serve(stream: std::net::TcpStream, count: &AtomicUsize) -> std::io::Result<()> {
        use std::io::{BufRead, BufReader, Write};
        let mut out = stream.try_clone()?;
        let mut lines = BufReader::new(stream);
        out.write_all(b"220 sink ESMTP\r\n")?;
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
                "DATA" => {
                    out.write_all(b"354 go on\r\n")?;
                    loop {
                        line.clear();
                        if lines.read_line(&mut line)? == 0 {
                            return Ok(());
                        }
                        if line == ".\r\n" {
                            break;
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    b"250 kept\r\n"
                }
                "QUIT" => {
                    out.write_all(b"221 bye\r\n")?;
                    return Ok(());
                }
                _ => b"250 ok\r\n",
            };
            out.write_all(reply)?;
        }
    }
}

fn params(port: u16) -> Params {
    let mut p = Params::new();
    for (k, v) in [
        ("host", "127.0.0.1".to_owned()),
        ("port", port.to_string()),
        ("security", "none".to_owned()),
        ("from_email", "billing@shop.test".to_owned()),
        ("timeout", "30".to_owned()),
    ] {
        p.set(k, &v);
    }
    p
}

/// Mails per second the server on `port` takes from WORKERS threads on kept
/// connections.
fn server_ceiling(port: u16, messages: usize) -> f64 {
    let params = params(port);
    let root = tempfile::tempdir().expect("temp dir");
    let settings = SmtpSettings::from_params(&params, root.path()).expect("settings");
    let sender = Sender::from_params(&params).expect("sender");
    let html = TEMPLATE
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("{user.name}", "client");
    let body = mgrnotify::template::Rendered {
        text: html,
        subject: "Счёт оплачен".into(),
        html: true,
    }
    .body();
    let client = Arc::new(SmtpClient::new());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (client, next, settings, sender, body) = (
                client.clone(),
                next.clone(),
                settings.clone(),
                sender.clone(),
                body.clone(),
            );
            let base = root.path().to_path_buf();
            std::thread::spawn(move || {
                while next.fetch_add(1, Ordering::SeqCst) < messages {
                    let content = Content {
                        recipients: "client@client.test",
                        subject: "Счёт оплачен",
                        text: &body.text,
                        html: body.html.as_deref(),
                        attachments: &[],
                    };
                    let mail = message::compose(&sender, &content, &base).expect("compose");
                    client.send(&settings, &mail).expect("send");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("sender thread");
    }
    messages as f64 / started.elapsed().as_secs_f64()
}

/// Queues `messages` ntemail rows for the SMTP server on `port`, runs `ntemail
/// --command process` once, and measures it; gwsmtp runs in-process, or as a program of
/// its own per message.
fn queue_run(port: u16, messages: usize, separate_program: bool) -> Figures {
    let root = MgrRoot::new();
    if separate_program {
        // A copy of the binary is not "us": ntemail runs it as BILLmanager would.
        let link = root.path().join("gate/gwsmtp");
        std::fs::remove_file(&link).expect("remove the gate symlink");
        std::fs::copy(common::mgr_root::BIN, &link).expect("copy the binary");
    }
    root.write(
        "etc/mgrnotify/mgrnotify.conf",
        &format!("QueueWorkers {WORKERS}\nQueueTimeBudget 0\n"),
    );
    let db = TestDb::create();
    let fields: String = params(port)
        .iter()
        .map(|(k, v)| format!("<{k}>{v}</{k}>"))
        .collect();
    db.add_gateway_for(
        "ntemail",
        "gwsmtp",
        1,
        &format!("<doc>{fields}</doc>"),
        "on",
        "outgoing",
    );
    let mut conn = db.conn();
    for chunk in (0..messages).collect::<Vec<_>>().chunks(1000) {
        let mut values = Vec::with_capacity(chunk.len());
        for n in chunk {
            root.write(&format!("var/notify/e/{n}"), &notice(n));
            values.push(format!("('ntemail', 'e/{n}', 0, '2026-01-01 00:00:00')"));
        }
        conn.query_drop(format!(
            "INSERT INTO notifytask (modulename, filename, priority, createdate) VALUES {}",
            values.join(",")
        ))
        .expect("queue the bench rows");
    }
    let started = Instant::now();
    // Reaped by wait4 below, which also reads its peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(root.path().join("notify/ntemail"))
        .args(["--command", "process"])
        .current_dir(root.path())
        .env_remove("MGR_ROOT")
        .env("MGRNOTIFY_DB_URL", db.url())
        .stdin(Stdio::null())
        .spawn()
        .expect("start ntemail");
    let (ok, usage) = wait_rusage(child.id());
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        ok,
        "ntemail --command process failed: see {}",
        root.path().display()
    );
    let left: usize = conn
        .query_first("SELECT COUNT(*) FROM notifytask")
        .expect("count rows")
        .unwrap_or(0);
    assert_eq!(left, 0, "every row sent: see {}", root.path().display());
    Figures {
        sent: messages - left,
        seconds,
        peak_rss_mb: usage.ru_maxrss as f64 / 1024.0,
    }
}

fn notice(n: &usize) -> String {
    format!(
        "<doc><notify><tmpl>{TEMPLATE}</tmpl>\
         <notice_xml>&lt;doc&gt;&lt;project&gt;&lt;id&gt;1&lt;/id&gt;&lt;/project&gt;\
         &lt;subject&gt;Счёт {n} оплачен&lt;/subject&gt;&lt;/doc&gt;</notice_xml>\
         <user><id>7</id><name>client{n}</name><email>client{n}@client.test</email></user>\
         </notify></doc>"
    )
}
