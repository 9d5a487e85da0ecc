//! A real SMTP server for tests: `tests/smtp_server.py` (Python's aiosmtpd) on
//! 127.0.0.1 and a free port, keeping every message it receives in a temp folder.
//! Plain, STARTTLS or implicit TLS with a certificate of a test CA made here with
//! `openssl`, and AUTH when asked. The server ends with the [`SmtpServer`] value.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

pub const LOGIN: &str = "mailer@shop.test";
pub const PASSWORD: &str = "Smtp-Secret-4q9Z";

/// How the server is started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encryption {
    #[default]
    None,
    /// STARTTLS offered and required before MAIL.
    StartTls,
    /// TLS from the first byte (port 465 style).
    Implicit,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub tls: Encryption,
    pub auth: bool,
    pub close_after_message: bool,
}

pub struct SmtpServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The test CA's certificate (PEM) that signed the server's: the `ca_file`.
    pub ca_file: PathBuf,
    child: Child,
}

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub raw: Vec<u8>,
    pub from: String,
    pub to: Vec<String>,
    /// The client's port: messages with the same one came over one connection.
    pub peer: u16,
    pub tls: bool,
    pub login: Option<String>,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8(self.raw.clone()).expect("a mail is ASCII/UTF-8 text")
    }

    /// The value of the first header `name` (unfolded), as it is in the source.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let head = text.split("\r\n\r\n").next().unwrap_or("");
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = found.as_mut() {
                    v.push_str(line);
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                if n.eq_ignore_ascii_case(name) {
                    found = Some(v.trim_start().to_owned());
                }
            }
        }
        found
    }
}

/// The Python that has aiosmtpd: Debian's own first (tests/run.sh installs
/// python3-aiosmtpd), then the one on PATH.
fn python() -> &'static str {
    static FOUND: OnceLock<&'static str> = OnceLock::new();
    FOUND.get_or_init(|| {
        for candidate in ["/usr/bin/python3", "python3"] {
            let ok = Command::new(candidate)
                .args(["-c", "import aiosmtpd"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return candidate;
            }
        }
        panic!("no python3 with aiosmtpd: install python3-aiosmtpd (tests/run.sh does)")
    })
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA (`ca.pem`) and a server certificate (`server.pem`, `server.key`) for
/// 127.0.0.1 and localhost signed by it, made in `dir`.
pub fn make_certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec![
        "req",
        "-x509",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=mgrnotify test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-nodes", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}

impl SmtpServer {
    pub fn start(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mail_dir = dir.path().join("mail");
        std::fs::create_dir(&mail_dir).expect("mkdir mail");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let mut cmd = Command::new(python());
        cmd.arg(script).arg("--dir").arg(&mail_dir);
        if options.tls != Encryption::None {
            make_certificates(dir.path());
            cmd.arg("--tls-cert")
                .arg(dir.path().join("server.pem"))
                .arg("--tls-key")
                .arg(dir.path().join("server.key"));
        }
        if options.tls == Encryption::Implicit {
            cmd.arg("--implicit-tls");
        }
        if options.auth {
            cmd.arg("--auth")
                .env("SMTP_TEST_LOGIN", LOGIN)
                .env("SMTP_TEST_PASSWORD", PASSWORD);
        }
        if options.close_after_message {
            cmd.arg("--close-after-message");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tests/smtp_server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the port");
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("tests/smtp_server.py did not start: '{line}'")
        });
        Self {
            port,
            ca_file: dir.path().join("ca.pem"),
            dir,
            child,
        }
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.mail_dir())
            .expect("read mail dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let meta = std::fs::read_to_string(eml.with_extension("json")).expect("json");
                let meta: serde_json::Value = serde_json::from_str(&meta).expect("parse json");
                Received {
                    raw: std::fs::read(&eml).expect("read eml"),
                    from: meta["from"].as_str().unwrap_or_default().to_owned(),
                    to: meta["to"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str())
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                    peer: meta["peer"].as_u64().unwrap_or_default() as u16,
                    tls: meta["tls"].as_bool().unwrap_or_default(),
                    login: meta["login"].as_str().map(str::to_owned),
                }
            })
            .collect()
    }

    /// The server's event lines: `CONNECT`, `RSET <port>`, `MESSAGE <port>`.
    pub fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.mail_dir().join("events.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A port on 127.0.0.1 where nothing listens (bound, then closed).
    pub fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
