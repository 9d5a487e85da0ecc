//! A private Prosody (Debian's `prosody`) for the XMPP tests: its own config, data and
//! certificates (a test CA and a server certificate for `localhost`) in a temp dir, c2s
//! on a free loopback port with STARTTLS required, accounts written straight into its
//! data folder (`internal_plain`). Killed when dropped.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The XMPP domain of every account.
pub const DOMAIN: &str = "localhost";

pub struct Prosody {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Prosody {
    /// Starts a server with the accounts `(user, password)` and waits until it listens.
    pub fn start(accounts: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path();
        super::smtp::make_certificates(path);
        let accounts_dir = path.join("data").join(DOMAIN).join("accounts");
        std::fs::create_dir_all(&accounts_dir).expect("mkdir accounts");
        for (user, password) in accounts {
            std::fs::write(
                accounts_dir.join(format!("{user}.dat")),
                format!("return {{\n\t[\"password\"] = {password:?};\n}};\n"),
            )
            .expect("write account");
        }
        let port = free_port();
        let p = |name: &str| path.join(name).display().to_string();
        let config = format!(
            r#"run_as_root = true
daemonize = false
pidfile = "{pid}"
data_path = "{data}"
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = "{log}" }} }}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "offline"; "posix" }}
modules_disabled = {{ "s2s" }}
c2s_ports = {{ {port} }}
c2s_interfaces = {{ "127.0.0.1" }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
c2s_require_encryption = true
authentication = "internal_plain"
storage = "internal"
VirtualHost "{DOMAIN}"
  ssl = {{ key = "{key}"; certificate = "{cert}" }}
"#,
            pid = p("prosody.pid"),
            data = p("data"),
            log = p("prosody.log"),
            key = p("server.key"),
            cert = p("server.pem"),
        );
        std::fs::write(path.join("prosody.cfg.lua"), config).expect("write config");
        let child = spawn(path);
        let server = Self { dir, port, child };
        server.wait_listening();
        server
    }

    /// Stops the server and starts it again on the same port with the same data:
    /// every client loses its connection.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.dir.path());
        self.wait_listening();
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "prosody did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The CA file the server's certificate is checked against.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prosody.log")).unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path) -> Child {
    Command::new("prosody")
        .arg("--config")
        .arg(dir.join("prosody.cfg.lua"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run prosody (tests/run.sh installs it)")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Another account on the server, as a customer's XMPP client (the same library the
/// gateway uses): sends chat messages and collects those it receives.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    client: tokio_xmpp::Client,
    pub jid: String,
}

impl Client {
    /// Logs in as `user` and announces presence (so messages reach this client).
    pub fn connect(server: &Prosody, user: &str, password: &str) -> Self {
        use futures::StreamExt;
        use tokio_xmpp::connect::DnsConfig;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let jid = format!("{user}@{DOMAIN}");
        let connector = mgrnotify::xmpp::connector::StartTls {
            dns: DnsConfig::no_srv("127.0.0.1", server.port),
            tls: mgrnotify::tls::client_config(Some(&server.ca_file())).expect("tls"),
        };
        let client = runtime.block_on(async {
            let mut client = tokio_xmpp::Client::new_with_connector(
                tokio_xmpp::jid::BareJid::new(&jid).expect("jid"),
                password.to_owned(),
                connector,
                tokio_xmpp::xmlstream::Timeouts::default(),
            );
            let online = tokio::time::timeout(Duration::from_secs(15), async {
                while let Some(event) = client.next().await {
                    if event.is_online() {
                        return true;
                    }
                }
                false
            })
            .await;
            assert_eq!(online, Ok(true), "{jid} did not come online");
            client
                .send_stanza(tokio_xmpp::Stanza::Presence(
                    tokio_xmpp::parsers::presence::Presence::available(),
                ))
                .await
                .expect("presence");
            client
        });
        Self {
            runtime,
            client,
            jid,
        }
    }

    /// Sends a chat message to `to` (a bare JID).
    pub fn send(&mut self, to: &str, text: &str) {
        let to = tokio_xmpp::jid::BareJid::new(to).expect("jid");
        let stanza = mgrnotify::xmpp::chat(to, text);
        let client = &mut self.client;
        self.runtime
            .block_on(client.send_stanza(stanza))
            .expect("send");
    }

    /// The chat messages received, `(from bare JID, body)`, until `count` came or
    /// `wait` passed.
    pub fn receive(&mut self, count: usize, wait: Duration) -> Vec<(String, String)> {
        self.receive_with_subjects(count, wait)
            .into_iter()
            .map(|(from, body, _)| (from, body))
            .collect()
    }

    /// Up to `count` messages as (sender, body, subject).
    pub fn receive_with_subjects(
        &mut self,
        count: usize,
        wait: Duration,
    ) -> Vec<(String, String, Option<String>)> {
        use futures::StreamExt;
        let client = &mut self.client;
        self.runtime.block_on(async {
            let mut got = Vec::new();
            let deadline = tokio::time::Instant::now() + wait;
            while got.len() < count {
                let event = match tokio::time::timeout_at(deadline, client.next()).await {
                    Ok(Some(event)) => event,
                    _ => break,
                };
                if let tokio_xmpp::Event::Stanza(tokio_xmpp::Stanza::Message(m)) = event {
                    if let (Some(from), Some((_, body))) = (&m.from, m.get_best_body(Vec::new())) {
                        let subject = m.get_best_subject(Vec::new()).map(|(_, s)| s.clone());
                        got.push((from.to_bare().to_string(), body.clone(), subject));
                    }
                }
            }
            got
        })
    }
}
