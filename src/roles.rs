//! Every role this binary plays, in one table. Dispatch, `--help`, `mgrnotify list`,
//! `mgrnotify sync` (which install.sh runs to lay the symlinks) and the tests all read
//! it, so a new role is one entry here.

/// The folder of the mgr root a role is installed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Sbin,
    Notify,
    Gate,
}

impl Folder {
    pub fn name(self) -> &'static str {
        match self {
            Folder::Sbin => "sbin",
            Folder::Notify => "notify",
            Folder::Gate => "gate",
        }
    }
}

/// How a role is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// The operator's command.
    Cli,
    /// A notification module, served by [`crate::notify::serve`].
    Notify(crate::notify::Kind),
    /// A gateway built into the binary.
    Builtin(crate::gateway::Builtin),
    /// A gateway backed by the provider script `etc/mgrnotify/scripts/<role>.rhai`.
    Script,
    /// A notification type a gateway declares in its metadata (`nt<name>`), served by
    /// [`crate::notify::declared`].
    Declared,
}

impl Build {
    pub fn is_gateway(self) -> bool {
        matches!(self, Build::Builtin(_) | Build::Script)
    }
}

/// One entry of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleSpec {
    pub name: &'static str,
    pub folder: Folder,
    pub build: Build,
    /// One line for `--help` and `mgrnotify list`.
    pub about: &'static str,
}

/// The roles built into the binary. Script gateways (`gw<name>`) come on top, one per
/// provider script, and the notification types (`nt<name>`) gateways declare.
pub const ROLES: &[RoleSpec] = &[
    RoleSpec {
        name: "mgrnotify",
        folder: Folder::Sbin,
        build: Build::Cli,
        about: "the operator's command",
    },
    RoleSpec {
        name: "ntsms",
        folder: Folder::Notify,
        build: Build::Notify(crate::notify::Kind::Sms),
        about: "SMS notifications through the SMS gateways",
    },
    RoleSpec {
        name: "ntemail",
        folder: Folder::Notify,
        build: Build::Notify(crate::notify::Kind::Email),
        about: "email notifications through the email gateways: HTML and attachments",
    },
    RoleSpec {
        name: "ntinternal",
        folder: Folder::Notify,
        build: Build::Notify(crate::notify::Kind::Internal),
        about: "client-area notifications, stored in mgrnotify's own table",
    },
    RoleSpec {
        name: "gwsmtp",
        folder: Folder::Gate,
        build: Build::Builtin(crate::gateway::Builtin::Smtp),
        about: "outgoing email over SMTP",
    },
    RoleSpec {
        name: "gwtelegram",
        folder: Folder::Gate,
        build: Build::Builtin(crate::gateway::Builtin::Telegram),
        about: "a Telegram bot (outgoing and ingoing)",
    },
    RoleSpec {
        name: "gwjabber",
        folder: Folder::Gate,
        build: Build::Builtin(crate::gateway::Builtin::Jabber),
        about: "an XMPP (Jabber) bot account (outgoing and ingoing)",
    },
    RoleSpec {
        name: "gwimap",
        folder: Folder::Gate,
        build: Build::Builtin(crate::gateway::Builtin::Imap),
        about: "incoming email over IMAP",
    },
    RoleSpec {
        name: "gwpop3",
        folder: Folder::Gate,
        build: Build::Builtin(crate::gateway::Builtin::Pop3),
        about: "incoming email over POP3",
    },
];

/// What a started name means: an entry of the table, a script gateway, or a declared
/// notification type (whether a gateway declares it is known only with the root).
pub fn lookup(name: &str) -> Option<RoleSpec> {
    lookup_in(ROLES, name)
}

/// [`lookup`] in any table (tests use a table with an extra role).
pub fn lookup_in(table: &[RoleSpec], name: &str) -> Option<RoleSpec> {
    if let Some(spec) = table.iter().find(|r| r.name == name) {
        return Some(*spec);
    }
    if is_script_name(name) {
        return Some(RoleSpec {
            name: "gw<name>",
            folder: Folder::Gate,
            build: Build::Script,
            about: "a provider script",
        });
    }
    is_declared_name(name).then_some(RoleSpec {
        name: "nt<name>",
        folder: Folder::Notify,
        build: Build::Declared,
        about: "a notification type a gateway declares",
    })
}

/// `gw` and then lower-case letters, digits or `_`: a name BILLmanager accepts as a
/// module and that cannot leave `gate/` or `etc/mgrnotify/scripts/`.
pub fn is_script_name(name: &str) -> bool {
    is_prefixed_name(name, "gw")
}

/// `nt` and then lower-case letters, digits or `_`: a notification type a gateway may
/// declare.
pub fn is_declared_name(name: &str) -> bool {
    is_prefixed_name(name, "nt")
}

fn is_prefixed_name(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// A module name from elsewhere (a gateway row) that is safe to look up as a file in
/// `gate/` or `notify/`.
pub fn is_module_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The roles that have a symlink in `notify/` or `gate/` of their own.
pub fn linked(table: &[RoleSpec]) -> impl Iterator<Item = &RoleSpec> {
    table.iter().filter(|r| r.folder != Folder::Sbin)
}

/// What a `--command` does, for the command list of a role's `--help`.
pub fn command_help(command: &str) -> &'static str {
    match command {
        "features" => "what the role supports, as XML",
        "process" => "send the notifytask queue's rows of this module",
        "getmessage" => "hand on the messages of the ingoing gateway --gate ID, or of all",
        "formtune" => "tune the gateway edit form on stdin",
        "check_connection" => "check the credentials of the form on stdin",
        "outgoing" => "send the message on stdin",
        "ingoing" => "receive the messages of the gateway on stdin",
        _ => "",
    }
}

/// "ntsms, ntemail, ..., gw<provider> or nt<type>": for messages that name what may be
/// started.
pub fn known_names(table: &[RoleSpec]) -> String {
    let names: Vec<&str> = table.iter().map(|r| r.name).collect();
    format!(
        "{}, gw<provider> or an nt<type> a gateway declares",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_win_and_scripts_are_checked_names() {
        assert_eq!(lookup("ntsms").map(|r| r.folder), Some(Folder::Notify));
        assert_eq!(
            lookup("gwsmtp").map(|r| r.build),
            Some(Build::Builtin(crate::gateway::Builtin::Smtp))
        );
        assert_eq!(
            lookup("gwimap").map(|r| r.build),
            Some(Build::Builtin(crate::gateway::Builtin::Imap))
        );
        assert_eq!(lookup("gwepochta").map(|r| r.build), Some(Build::Script));
        assert_eq!(lookup("ntjabber").map(|r| r.build), Some(Build::Declared));
        for bad in [
            "gw",
            "gw/../../x",
            "gwX",
            "gw-a",
            "nt",
            "nt/x",
            "ntA",
            "",
            "gw.rhai",
        ] {
            assert_eq!(lookup(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in ROLES.iter().enumerate() {
            assert!(
                ROLES[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
    }
}
