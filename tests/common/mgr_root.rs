//! A whole fake BILLmanager in a temp dir: the binary as `sbin/mgrnotify`, the role
//! symlinks in `notify/` and `gate/`, the bundled scripts, and a way to run a role as
//! BILLmanager does (cwd = root, XML on stdin).

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_mgrnotify");

pub struct MgrRoot {
    pub dir: tempfile::TempDir,
}

impl MgrRoot {
    /// A root with the binary, the notification role symlinks, and a gate symlink and
    /// script for every bundled provider script.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Self { dir };
        for d in [
            "sbin",
            "notify",
            "gate",
            "etc/mgrnotify/scripts",
            "etc/xml",
            "var/notify",
        ] {
            std::fs::create_dir_all(root.path().join(d)).expect("mkdir");
        }
        symlink(BIN, root.path().join("sbin/mgrnotify")).expect("symlink binary");
        for role in mgrnotify::roles::linked(mgrnotify::roles::ROLES) {
            symlink(
                "../sbin/mgrnotify",
                root.path().join(role.folder.name()).join(role.name),
            )
            .expect("symlink");
        }
        let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
        if let Ok(entries) = std::fs::read_dir(bundled) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(role) = name.strip_suffix(".rhai") {
                    root.add_script(
                        role,
                        &std::fs::read_to_string(e.path()).expect("read script"),
                    );
                }
            }
        }
        root
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Installs a provider script as `gw<name>` with its gate symlink.
    pub fn add_script(&self, role: &str, text: &str) {
        let script = self
            .path()
            .join("etc/mgrnotify/scripts")
            .join(format!("{role}.rhai"));
        std::fs::write(script, text).expect("write script");
        let link = self.path().join("gate").join(role);
        if link.symlink_metadata().is_err() {
            symlink("../sbin/mgrnotify", link).expect("symlink gate");
        }
    }

    /// Writes a file below the root, creating folders.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_default()
    }

    /// Runs `rel` (like `gate/gwepochta`) as BILLmanager does: cwd = root, the given
    /// stdin, no MGR_ROOT in the environment.
    pub fn run(&self, rel: &str, args: &[&str], stdin: &str) -> Output {
        run_in(self.path(), rel, args, stdin, &[])
    }

    pub fn run_env(&self, rel: &str, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
        run_in(self.path(), rel, args, stdin, env)
    }
}

pub fn run_in(cwd: &Path, rel: &str, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(cwd.join(rel));
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("MGR_ROOT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn role");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    child.wait_with_output().expect("wait role")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The error element of a gateway's reply: (type, object, msg).
pub fn error_of(out: &Output) -> (String, String, String) {
    let text = stdout(out);
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("reply is not XML ({e}): {text}"));
    let err = doc
        .descendants()
        .find(|n| n.has_tag_name("error"))
        .unwrap_or_else(|| panic!("no <error> in {text}"));
    let msg = err
        .descendants()
        .find(|c| c.has_tag_name("msg"))
        .and_then(|m| m.text())
        .unwrap_or("")
        .to_owned();
    (
        err.attribute("type").unwrap_or("").to_owned(),
        err.attribute("object").unwrap_or("").to_owned(),
        msg,
    )
}
