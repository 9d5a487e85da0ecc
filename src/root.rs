//! The mgr root: the BILLmanager install every path is relative to.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Where BILLmanager lives when nothing else says so.
pub const DEFAULT_ROOT: &str = "/usr/local/mgr5";

/// A BILLmanager installation: `sbin/`, `notify/`, `gate/`, `etc/`, `var/`.
#[derive(Debug, Clone)]
pub struct MgrRoot {
    path: PathBuf,
}

impl MgrRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `MGR_ROOT`; else the parent of the folder the role was started from when that
    /// folder is `notify/`, `gate/` or `sbin/`; else `/usr/local/mgr5`.
    pub fn discover(argv0: &OsStr) -> Self {
        if let Some(dir) = std::env::var_os("MGR_ROOT").filter(|v| !v.is_empty()) {
            return Self::new(dir);
        }
        Self::from_argv0(argv0).unwrap_or_else(|| Self::new(DEFAULT_ROOT))
    }

    fn from_argv0(argv0: &OsStr) -> Option<Self> {
        let started_as = Path::new(argv0);
        let folder = match started_as.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(folder) if folder.is_absolute() => folder.to_path_buf(),
            Some(folder) => std::env::current_dir().ok()?.join(folder),
            // A bare name was found on PATH: the folder it was found in, else where
            // the executable really is.
            None => on_path(started_as)
                .or_else(|| Some(std::env::current_exe().ok()?.parent()?.to_path_buf()))?,
        };
        let name = folder.file_name()?.to_str()?;
        if matches!(name, "notify" | "gate" | "sbin") {
            folder.parent().map(Self::new)
        } else {
            None
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn sbin_binary(&self) -> PathBuf {
        self.path.join("sbin/mgrnotify")
    }
    pub fn notify_dir(&self) -> PathBuf {
        self.path.join("notify")
    }
    pub fn gate_dir(&self) -> PathBuf {
        self.path.join("gate")
    }
    /// Where the role `name` of `folder` is installed.
    pub fn role_path(&self, folder: crate::roles::Folder, name: &str) -> PathBuf {
        self.path.join(folder.name()).join(name)
    }
    pub fn gate_module(&self, module: &str) -> PathBuf {
        self.gate_dir().join(module)
    }
    /// Where `mgrnotify take-over` keeps the originals it replaced.
    pub fn taken_over_dir(&self) -> PathBuf {
        self.path.join("etc/mgrnotify/taken-over")
    }
    pub fn taken_over(&self, folder: crate::roles::Folder, name: &str) -> PathBuf {
        self.taken_over_dir().join(folder.name()).join(name)
    }
    pub fn scripts_dir(&self) -> PathBuf {
        self.path.join("etc/mgrnotify/scripts")
    }
    pub fn script(&self, role: &str) -> PathBuf {
        self.scripts_dir().join(format!("{role}.rhai"))
    }
    pub fn xml_dir(&self) -> PathBuf {
        self.path.join("etc/xml")
    }
    pub fn plugin_xml(&self, role: &str) -> PathBuf {
        self.xml_dir().join(format!("billmgr_mod_{role}.xml"))
    }
    /// BILLmanager's description of an extra user-table column.
    pub fn user_addon(&self, field: &str) -> PathBuf {
        self.path.join("etc/sql/billmgr.user.addon").join(field)
    }
    pub fn db_conf(&self) -> PathBuf {
        self.path.join("etc/billmgr.conf.d/db.conf")
    }
    pub fn billmgr_conf(&self) -> PathBuf {
        self.path.join("etc/billmgr.conf")
    }
    pub fn mgrnotify_conf(&self) -> PathBuf {
        self.path.join("etc/mgrnotify/mgrnotify.conf")
    }
    pub fn debug_conf(&self) -> PathBuf {
        self.path.join("etc/debug.conf")
    }
    /// Present while BILLmanager imports data from another panel: only rows marked
    /// `forcedonothing='on'` may be sent.
    pub fn do_nothing_flag(&self) -> PathBuf {
        self.path.join("etc/billmgr.DoNothing")
    }
    pub fn log_file(&self, role: &str) -> PathBuf {
        self.path.join("var").join(format!("{role}.log"))
    }
    /// What a channel keeps between runs (chat links, poll offsets, locks), under
    /// `var/mgrnotify/<channel>`.
    pub fn state_dir(&self, channel: &str) -> PathBuf {
        self.path.join("var/mgrnotify").join(channel)
    }
    pub fn notify_files_dir(&self) -> PathBuf {
        self.path.join("var/notify")
    }
    /// A queue row's `filename`: absolute, or relative to `var/notify/` (a name that
    /// already starts with `var/notify/` is taken relative to the root).
    pub fn notify_file(&self, filename: &str) -> PathBuf {
        let p = Path::new(filename);
        if p.is_absolute() {
            p.to_path_buf()
        } else if p.starts_with("var/notify") {
            self.path.join(p)
        } else {
            self.notify_files_dir().join(p)
        }
    }
}

/// The folder of the first `PATH` entry that holds an executable `name`, as a shell finds it.
fn on_path(name: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .filter(|dir| dir.is_absolute())
        .find(|dir| {
            std::fs::metadata(dir.join(name))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_parent_of_role_folder() {
        let r = MgrRoot::from_argv0(OsStr::new("/opt/mgr/gate/gwepochta")).unwrap();
        assert_eq!(r.path(), Path::new("/opt/mgr"));
        let r = MgrRoot::from_argv0(OsStr::new("/opt/mgr/sbin/mgrnotify")).unwrap();
        assert_eq!(r.path(), Path::new("/opt/mgr"));
        assert!(MgrRoot::from_argv0(OsStr::new("/usr/bin/gwepochta")).is_none());
    }

    #[test]
    fn notify_file_relative_or_absolute() {
        let r = MgrRoot::new("/m");
        assert_eq!(
            r.notify_file("2026-11-27/5"),
            Path::new("/m/var/notify/2026-11-27/5")
        );
        assert_eq!(r.notify_file("/tmp/x"), Path::new("/tmp/x"));
        assert_eq!(
            r.notify_file("var/notify/d/5"),
            Path::new("/m/var/notify/d/5")
        );
    }
}
