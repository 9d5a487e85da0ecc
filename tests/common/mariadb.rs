//! A real MariaDB for tests. `MGRNOTIFY_TEST_DB_URL` (a mysql:// URL of an account that
//! may create and drop databases) when set; else a private `mariadbd` of our own,
//! initialised under /tmp on first use, listening on its own socket and a free port on
//! 127.0.0.1, started once and reused by every test process (a lock file guards the
//! start). Needs only Debian 12's `mariadb-server` package: no system server has to
//! run. Stop it with `kill $(cat /tmp/mgrnotify-test-mariadb-$UID/mariadbd.pid)`.
//!
//! Each [`TestDb`] is a fresh database with `tests/fixtures/schema.sql`, dropped at the end.

#![allow(dead_code)]

use std::fs::OpenOptions;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};

pub const URL_ENV: &str = "MGRNOTIFY_TEST_DB_URL";
/// The account the private server gets for tests (TCP, with a password, so password
/// handling and redaction are exercised).
pub const TEST_USER: &str = "mgrnotify";
pub const TEST_PASSWORD: &str = "Test-Pw-7f3k9";

/// Where the server is and whom to log in as.
#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

impl Server {
    fn opts(&self, db: Option<&str>) -> OptsBuilder {
        OptsBuilder::new()
            .ip_or_hostname(Some(self.host.clone()))
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            .db_name(db.map(str::to_owned))
            .prefer_socket(false)
    }

    pub fn conn(&self, db: Option<&str>) -> Conn {
        Conn::new(self.opts(db)).expect("connect to the test MariaDB")
    }

    /// `mysql://user:pass@host:port/db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "mysql://{}:{}@{}:{}/{db}",
            encode(&self.user),
            encode(&self.password),
            self.host,
            self.port
        )
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The test server, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var(URL_ENV) {
        Ok(url) if !url.trim().is_empty() => {
            let opts = Opts::from_url(&url).expect("MGRNOTIFY_TEST_DB_URL is a mysql:// URL");
            Server {
                host: opts.get_ip_or_hostname().into_owned(),
                port: opts.get_tcp_port(),
                user: opts.get_user().unwrap_or("root").to_owned(),
                password: opts.get_pass().unwrap_or("").to_owned(),
            }
        }
        _ => private_server(),
    })
}

fn base_dir() -> PathBuf {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    PathBuf::from(format!("/tmp/mgrnotify-test-mariadb-{uid}"))
}

fn private_server() -> Server {
    let base = base_dir();
    std::fs::create_dir_all(&base).expect("create the test MariaDB folder");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(base.join("start.lock"))
        .expect("open the start lock");
    // SAFETY: flock on a file descriptor we own; released when `lock` is dropped.
    let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "lock the test MariaDB start");
    let server = |port| Server {
        host: "127.0.0.1".into(),
        port,
        user: TEST_USER.into(),
        password: TEST_PASSWORD.into(),
    };
    if let Some(port) = std::fs::read_to_string(base.join("port"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
    {
        let s = server(port);
        if Conn::new(s.opts(None)).is_ok() {
            return s;
        }
    }
    let data = base.join("data");
    if !data.join("mysql").is_dir() {
        let _ = std::fs::remove_dir_all(&data);
        install_db(&base, &data);
    }
    let port = free_port();
    let socket = base.join("mariadbd.sock");
    start_mariadbd(&base, &data, &socket, port);
    create_test_user(&socket);
    std::fs::write(base.join("port"), port.to_string()).expect("write the port file");
    let s = server(port);
    Conn::new(s.opts(None)).expect("the test user can log in over TCP");
    s
}

fn program(names: &[&str]) -> PathBuf {
    for name in names {
        for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "none of {names:?} found: install MariaDB (apt-get install mariadb-server) or set \
         {URL_ENV}"
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn install_db(base: &Path, data: &Path) {
    let mut cmd = Command::new(program(&["mariadb-install-db", "mysql_install_db"]));
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .stdout(log_file(base, "install-db.log"))
        .stderr(log_file(base, "install-db.log"));
    if is_root() {
        cmd.arg("--user=root");
    }
    let status = cmd.status().expect("run mariadb-install-db");
    assert!(
        status.success(),
        "mariadb-install-db failed: see {}",
        base.join("install-db.log").display()
    );
}

fn log_file(base: &Path, name: &str) -> Stdio {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(base.join(name))
        .expect("open a MariaDB log")
        .into()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

fn start_mariadbd(base: &Path, data: &Path, socket: &Path, port: u16) {
    let _ = std::fs::remove_file(socket);
    let mut cmd = Command::new(program(&["mariadbd", "mysqld"]));
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!(
            "--pid-file={}",
            base.join("mariadbd.pid").display()
        ))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--skip-name-resolve")
        .arg("--skip-log-bin")
        .arg("--max-connections=1000")
        .arg("--character-set-server=utf8mb4")
        .arg("--innodb-buffer-pool-size=128M")
        // Tests need speed, not durability across a power cut.
        .arg("--innodb-flush-log-at-trx-commit=2")
        .stdin(Stdio::null())
        .stdout(log_file(base, "mariadbd.log"))
        .stderr(log_file(base, "mariadbd.log"))
        // Its own process group: it outlives this test process and its signals.
        .process_group(0);
    if is_root() {
        cmd.arg("--user=root");
    }
    let mut server = cmd.spawn().expect("start mariadbd");
    // It outlives this process (init adopts it then); while we live, reap it if it ends.
    std::thread::spawn(move || {
        let _ = server.wait();
    });
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if socket_conn(socket).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "mariadbd did not start within 60 s: see {}",
        base.join("mariadbd.log").display()
    );
}

fn socket_conn(socket: &Path) -> mysql::Result<Conn> {
    Conn::new(
        OptsBuilder::new()
            .socket(Some(socket.display().to_string()))
            .user(Some("root")),
    )
}

fn create_test_user(socket: &Path) {
    let mut root = socket_conn(socket).expect("log in as root over the socket");
    for stmt in [
        format!(
            "CREATE USER IF NOT EXISTS '{TEST_USER}'@'127.0.0.1' IDENTIFIED BY '{TEST_PASSWORD}'"
        ),
        format!("GRANT ALL PRIVILEGES ON *.* TO '{TEST_USER}'@'127.0.0.1'"),
    ] {
        root.query_drop(stmt).expect("create the test user");
    }
}

/// A database of its own for one test, with the fixture schema; dropped on drop.
pub struct TestDb {
    pub name: String,
    pub server: Server,
}

impl TestDb {
    pub fn create() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let server = server().clone();
        let name = format!(
            "mgrnotify_t{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut conn = server.conn(None);
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
            .expect("drop an old test database");
        conn.query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .expect("create the test database");
        let db = Self { name, server };
        let schema = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema.sql"),
        )
        .expect("read the fixture schema");
        let mut conn = db.conn();
        for stmt in schema.split(';') {
            let sql: String = stmt
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            if !sql.trim().is_empty() {
                conn.query_drop(sql).expect("load the fixture schema");
            }
        }
        db
    }

    pub fn conn(&self) -> Conn {
        self.server.conn(Some(&self.name))
    }

    /// The value for `MGRNOTIFY_DB_URL`.
    pub fn url(&self) -> String {
        self.server.url(&self.name)
    }

    /// The text of an `etc/billmgr.conf.d/db.conf` pointing at this database.
    pub fn db_conf(&self) -> String {
        format!(
            "DBHost {}\nDBPort {}\nDBUser {}\nDBPassword {}\nDBName {}\n",
            self.server.host, self.server.port, self.server.user, self.server.password, self.name
        )
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = Conn::new(self.server.opts(None)) {
            let _ = conn.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name));
        }
    }
}

/// A queue row as a test reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    pub id: u64,
    pub error_count: u32,
    pub err_info: Option<String>,
}

impl TestDb {
    /// Adds an ntsms gateway row and returns its id.
    pub fn add_gateway(
        &self,
        module: &str,
        project: u32,
        xmlparams: &str,
        active: &str,
        gateway_type: &str,
    ) -> u64 {
        self.add_gateway_for("ntsms", module, project, xmlparams, active, gateway_type)
    }

    /// Adds a gateway row of the notification module `notify_module` and returns its id.
    pub fn add_gateway_for(
        &self,
        notify_module: &str,
        module: &str,
        project: u32,
        xmlparams: &str,
        active: &str,
        gateway_type: &str,
    ) -> u64 {
        let mut c = self.conn();
        c.exec_drop(
            "INSERT INTO gateway (name, gateway_module, notify_module, gateway_type, active, \
             project, xmlparams) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                format!("{module} for {project}"),
                module,
                notify_module,
                gateway_type,
                active,
                project,
                xmlparams,
            ),
        )
        .expect("insert gateway");
        c.last_insert_id()
    }

    /// Adds an active outgoing gwepochta gateway for `project` whose requests go to
    /// `api_url` (a fake ePochta).
    pub fn add_epochta_gateway(
        &self,
        project: u32,
        login: &str,
        password: &str,
        api_url: &str,
    ) -> u64 {
        self.add_gateway(
            "gwepochta",
            project,
            &format!(
                "<doc><login>{login}</login><password>{password}</password><sender>Shop</sender>\
                 <api_url>{api_url}</api_url></doc>"
            ),
            "on",
            "outgoing",
        )
    }

    /// Adds an ntsms queue row and returns its id.
    pub fn add_task(&self, filename: &str, priority: i32, createdate: &str, forced: bool) -> u64 {
        self.add_task_for("ntsms", filename, priority, createdate, forced)
    }

    /// Adds a queue row of the notification module `module` and returns its id.
    pub fn add_task_for(
        &self,
        module: &str,
        filename: &str,
        priority: i32,
        createdate: &str,
        forced: bool,
    ) -> u64 {
        let mut c = self.conn();
        c.exec_drop(
            "INSERT INTO notifytask (modulename, filename, priority, forcedonothing, createdate) \
             VALUES (?, ?, ?, ?, ?)",
            (
                module,
                filename,
                priority,
                if forced { "on" } else { "off" },
                createdate,
            ),
        )
        .expect("insert notifytask");
        c.last_insert_id()
    }

    pub fn tasks(&self) -> Vec<TaskRow> {
        self.conn()
            .query_map(
                "SELECT id, error_count, err_info FROM notifytask ORDER BY id",
                |(id, error_count, err_info)| TaskRow {
                    id,
                    error_count,
                    err_info,
                },
            )
            .expect("read notifytask")
    }

    pub fn task(&self, id: u64) -> Option<TaskRow> {
        self.tasks().into_iter().find(|t| t.id == id)
    }

    pub fn exec(&self, sql: &str) {
        self.conn().query_drop(sql).expect("run SQL");
    }

    /// A trigger `refuse_delete` makes the server refuse to delete queue row `id`
    /// ("delete refused by a trigger"), as a statement error.
    pub fn refuse_delete(&self, id: u64) {
        self.exec(&format!(
            "CREATE TRIGGER refuse_delete BEFORE DELETE ON notifytask FOR EACH ROW \
             BEGIN IF OLD.id = {id} THEN \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'delete refused by a trigger'; END IF; END"
        ));
    }
}

/// A notification file for an SMS: message text `text` (the template), a user with
/// `phone` (none when `None`), provider `provider`.
pub fn notice_file(text: &str, phone: Option<&str>, provider: u32) -> String {
    let phone = phone
        .map(|p| format!("<phone>{p}</phone>"))
        .unwrap_or_default();
    format!(
        "<doc><notify><tmpl>{text}</tmpl>\
         <notice_xml>&lt;doc&gt;&lt;project&gt;&lt;id&gt;{provider}&lt;/id&gt;&lt;name&gt;Hosting&lt;/name&gt;&lt;/project&gt;&lt;subject&gt;Subj&lt;/subject&gt;&lt;/doc&gt;</notice_xml>\
         <user><id>7</id><name>client</name>{phone}</user>\
         <templatesubject>Fallback</templatesubject></notify></doc>"
    )
}

/// A third-party gateway module in shell: appends `<phone>|<message>` to
/// `var/delivered.log` (the fake provider's record) and answers `<doc/>`.
pub const RECORDING_GATEWAY: &str = r#"#!/bin/sh
input=$(cat)
phone=$(printf '%s' "$input" | sed -n 's:.*<phone>\([^<]*\)</phone>.*:\1:p')
msg=$(printf '%s' "$input" | sed -n 's:.*<message>\([^<]*\)</message>.*:\1:p')
# Input cut short (the sender died while writing it): refuse, as a real module would.
if [ -z "$msg" ]; then echo '<doc><error type="xml"><msg>no message</msg></error></doc>'; exit 1; fi
printf '%s|%s\n' "$phone" "$msg" >> var/delivered.log
echo '<doc/>'
"#;

/// Installs an executable third-party gateway module as `gate/<module>`.
pub fn add_program(root: &super::mgr_root::MgrRoot, module: &str, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = root.write(&format!("gate/{module}"), text);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make the gateway executable");
}

/// Adds `gate/gwslow`, the recording gateway that runs `then` (shell) after reading its
/// input and before it records the message, and its active outgoing row for project 1.
pub fn add_slow_gateway(root: &super::mgr_root::MgrRoot, db: &TestDb, then: &str) {
    add_program(
        root,
        "gwslow",
        &RECORDING_GATEWAY.replace("input=$(cat)", &format!("input=$(cat)\n{then}")),
    );
    db.add_gateway("gwslow", 1, "", "on", "outgoing");
}

/// The lines of `var/delivered.log`.
pub fn delivered(root: &super::mgr_root::MgrRoot) -> Vec<String> {
    root.read("var/delivered.log")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs `notify/ntsms --command process` against `db` (through MGRNOTIFY_DB_URL).
pub fn run_process(root: &super::mgr_root::MgrRoot, db: &TestDb) -> std::process::Output {
    root.run_env(
        "notify/ntsms",
        &["--command", "process"],
        "",
        &[("MGRNOTIFY_DB_URL", &db.url())],
    )
}

/// Runs `notify/ntsms --command process` against `db` like [`run_process`], but kills it
/// and fails the test when it has not finished within `limit` (a hang), and caps its
/// address space at 4 GiB so a run that reads without bound fails instead of taking
/// the machine's memory.
pub fn run_process_bounded(
    root: &super::mgr_root::MgrRoot,
    db: &TestDb,
    limit: Duration,
) -> std::process::Output {
    let child = spawn_process(root, &db.url());
    wait_bounded(child, limit)
}

/// Starts `notify/ntsms --command process` against the database at `url`, its address
/// space capped at 4 GiB.
pub fn spawn_process(root: &super::mgr_root::MgrRoot, url: &str) -> std::process::Child {
    spawn_role_process(root, url, "ntsms")
}

/// Starts `notify/<role> --command process` like [`spawn_process`].
pub fn spawn_role_process(
    root: &super::mgr_root::MgrRoot,
    url: &str,
    role: &str,
) -> std::process::Child {
    let mut cmd = Command::new(root.path().join("notify").join(role));
    cmd.args(["--command", "process"])
        .current_dir(root.path())
        .env_remove("MGR_ROOT")
        .env("MGRNOTIFY_DB_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
    unsafe {
        cmd.pre_exec(|| {
            let cap = 4 << 30;
            let limit = libc::rlimit {
                rlim_cur: cap,
                rlim_max: cap,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("start the notification module")
}

/// Waits for `child` to end and collects its output; kills it and fails the test when it
/// is still running after `limit`.
pub fn wait_bounded(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    fn drain(
        pipe: Option<impl std::io::Read + Send + 'static>,
    ) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ntsms") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ntsms did not finish within {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// The pids listed in the file `rel` below the root (one a line) whose processes still
/// run (a zombie has ended).
pub fn running_pids(root: &super::mgr_root::MgrRoot, rel: &str) -> Vec<i32> {
    root.read(rel)
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Waits for the child `pid` (spawned, not yet waited for) and returns whether it
/// succeeded and its resource usage (the benches read its peak RSS and CPU time).
pub fn wait_rusage(pid: u32) -> (bool, libc::rusage) {
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = libc::pid_t::try_from(pid).expect("pid fits");
    // SAFETY: waiting for a child we spawned and have not waited for.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    (
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        usage,
    )
}
