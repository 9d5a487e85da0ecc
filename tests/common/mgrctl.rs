//! A stand-in `sbin/mgrctl`: a shell script that records each call's argv (one file a
//! call, arguments NUL-separated) and answers like BILLmanager's: success, an `<error`
//! in its output with exit 0, or a failed exit, as the test sets it.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub struct Mgrctl {
    root: PathBuf,
}

/// How the stand-in answers the next calls.
pub enum Answer {
    Ok,
    /// Exit 0 with `<error ...>` in the output, as mgrctl does for a refused edit.
    ErrorXml,
    /// Exit 3 and a message on stderr.
    Fails,
    /// Success after 0.3 s: a run that takes a while.
    Slow,
}

impl Mgrctl {
    /// Installs the stand-in as `sbin/mgrctl` under `root`.
    pub fn install(root: &Path) -> Self {
        let script = r#"#!/bin/sh
dir="$(dirname "$0")/../var/mgrctl-calls"
mkdir -p "$dir"
printf '%s\0' "$@" > "$dir/$(date +%s%N)-$$"
answer="$(cat "$(dirname "$0")/../var/mgrctl-answer" 2>/dev/null)"
case "$answer" in
  error) echo '<?xml version="1.0"?><doc><error type="access" object="ticket"><msg>Access denied</msg></error></doc>' ;;
  fail) echo 'mgrctl: cannot connect to core' >&2; exit 3 ;;
  slow) sleep 0.3; echo '<?xml version="1.0"?><doc><ok/></doc>' ;;
  *) echo '<?xml version="1.0"?><doc><ok/><id>77</id></doc>' ;;
esac
"#;
        let sbin = root.join("sbin");
        std::fs::create_dir_all(&sbin).expect("mkdir sbin");
        let path = sbin.join("mgrctl");
        std::fs::write(&path, script).expect("write mgrctl");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod mgrctl");
        std::fs::create_dir_all(root.join("var")).expect("mkdir var");
        Self {
            root: root.to_owned(),
        }
    }

    pub fn answer(&self, answer: Answer) {
        let text = match answer {
            Answer::Ok => "ok",
            Answer::ErrorXml => "error",
            Answer::Fails => "fail",
            Answer::Slow => "slow",
        };
        std::fs::write(self.root.join("var/mgrctl-answer"), text).expect("write answer");
    }

    /// Every call so far, in order: its arguments.
    pub fn calls(&self) -> Vec<Vec<String>> {
        let dir = self.root.join("var/mgrctl-calls");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        files
            .iter()
            .map(|f| {
                let bytes = std::fs::read(f).expect("read call");
                String::from_utf8_lossy(&bytes)
                    .split('\0')
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .collect()
    }

    /// The value of `name=` in a call's arguments.
    pub fn arg<'c>(call: &'c [String], name: &str) -> Option<&'c str> {
        call.iter()
            .find_map(|a| a.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
    }
}
