//! A private dovecot for the incoming mail tests: IMAP and POP3 on free ports of
//! 127.0.0.1, STARTTLS with a certificate of the test CA, users in a passwd-file,
//! maildirs in a temp folder that the tests fill directly. It stops with the value.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "Imap-Secret-8xQ2";

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub imap_port: u16,
    pub pop3_port: u16,
    /// IMAP with TLS from the first byte.
    pub imaps_port: u16,
    /// The test CA's certificate: the gateways' `ca_file`.
    pub ca_file: PathBuf,
    child: Child,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn open_to_all(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
}

impl Dovecot {
    /// Starts dovecot with the mailbox users `users` (password [`PASSWORD`]).
    pub fn start(users: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        // Dovecot's own processes (other users when the tests run as root) walk it.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        super::smtp::make_certificates(d);
        let passwd: String = users.iter().map(|u| format!("{u}:{PASSWORD}\n")).collect();
        std::fs::write(d.join("passwd"), passwd).expect("write passwd");
        let root = current_uid() == 0;
        // As root, dovecot refuses to serve mail as root: the mail user is `mail`.
        let (uid, gid, internal, login) = if root {
            (8, 8, "dovecot".to_owned(), "dovenull".to_owned())
        } else {
            let me = std::env::var("USER").unwrap_or_else(|_| whoami());
            let uid = current_uid();
            (uid, current_gid(), me.clone(), me)
        };
        for u in users {
            let maildir = d.join("mail").join(u);
            for sub in ["cur", "new", "tmp"] {
                std::fs::create_dir_all(maildir.join(sub)).expect("mkdir maildir");
                open_to_all(&maildir.join(sub));
            }
            open_to_all(&maildir);
        }
        open_to_all(&d.join("mail"));
        std::fs::create_dir_all(d.join("home")).expect("mkdir home");
        open_to_all(&d.join("home"));
        let (imap_port, pop3_port, imaps_port) = (free_port(), free_port(), free_port());
        let p = d.display();
        let conf = format!(
            "protocols = imap pop3\n\
             listen = 127.0.0.1\n\
             base_dir = {p}/run\n\
             state_dir = {p}/state\n\
             log_path = {p}/dovecot.log\n\
             ssl = yes\n\
             ssl_cert = <{p}/server.pem\n\
             ssl_key = <{p}/server.key\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             auth_failure_delay = 0\n\
             mail_location = maildir:{p}/mail/%u\n\
             first_valid_uid = {uid}\n\
             first_valid_gid = {gid}\n\
             default_internal_user = {internal}\n\
             default_login_user = {login}\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {p}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={p}/home/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {imap_port}\n  }}\n  \
             inet_listener imaps {{\n    port = {imaps_port}\n    ssl = yes\n  }}\n}}\n\
             service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3_port}\n  }}\n  \
             inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
             service stats {{\n  unix_listener stats-reader {{\n    mode = 0666\n  }}\n  \
             unix_listener stats-writer {{\n    mode = 0666\n  }}\n}}\n"
        );
        std::fs::write(d.join("dovecot.conf"), conf).expect("write conf");
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dovecot (tests/run.sh installs dovecot-imapd and dovecot-pop3d)");
        let server = Self {
            ca_file: d.join("ca.pem"),
            dir,
            imap_port,
            pop3_port,
            imaps_port,
            child,
        };
        let started = Instant::now();
        while [imap_port, pop3_port, imaps_port]
            .iter()
            .any(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_err())
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "dovecot did not start: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("mail").join(user)
    }

    /// Puts a mail into `user`'s INBOX as a new, unread one.
    pub fn deliver(&self, user: &str, source: &[u8]) {
        self.deliver_to(user, "", source);
    }

    /// Puts a mail into `user`'s folder `folder` (its Maildir++ name on disk: IMAP's
    /// modified UTF-7; "" = INBOX) as a new, unread one; makes the folder when missing.
    pub fn deliver_to(&self, user: &str, folder: &str, source: &[u8]) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("{}.M{n}P{}.test", 1_700_000_000 + n, std::process::id());
        let dir = self.folder(user, folder);
        for sub in ["cur", "new", "tmp"] {
            if !dir.join(sub).exists() {
                std::fs::create_dir_all(dir.join(sub)).expect("mkdir maildir");
                open_to_all(&dir.join(sub));
            }
        }
        open_to_all(&dir);
        let tmp = dir.join("tmp").join(&name);
        std::fs::write(&tmp, source).expect("write mail");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        std::fs::rename(&tmp, dir.join("new").join(&name)).expect("deliver");
    }

    /// Every mail in `user`'s INBOX: its source and whether it is \Seen (the `S` flag
    /// in its maildir file name), ordered by delivery.
    pub fn mailbox(&self, user: &str) -> Vec<(Vec<u8>, bool)> {
        self.mailbox_folder(user, "")
    }

    /// As [`Dovecot::mailbox`], of the folder `folder` (as in [`Dovecot::deliver_to`]).
    pub fn mailbox_folder(&self, user: &str, folder: &str) -> Vec<(Vec<u8>, bool)> {
        let dir = self.folder(user, folder);
        let mut files: Vec<(String, PathBuf)> = ["new", "cur"]
            .iter()
            .flat_map(|sub| std::fs::read_dir(dir.join(sub)).expect("read maildir"))
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(name, path)| {
                let seen = name
                    .rsplit_once(":2,")
                    .is_some_and(|(_, flags)| flags.contains('S'));
                (std::fs::read(path).expect("read mail"), seen)
            })
            .collect()
    }

    fn folder(&self, user: &str, folder: &str) -> PathBuf {
        match folder {
            "" => self.maildir(user),
            _ => self.maildir(user).join(format!(".{folder}")),
        }
    }
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn current_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("uid")
}

fn current_gid() -> u32 {
    let out = Command::new("id").arg("-g").output().expect("id -g");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("gid")
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM: the master stops its children too (SIGKILL would leave them).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
