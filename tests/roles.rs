//! The roles as BILLmanager and operators start them: argv[0] dispatch, --help,
//! --version, unknown roles and commands.

mod common;

use common::mgr_root::{stderr, stdout, MgrRoot};

#[test]
fn unknown_role_is_a_clear_error_with_exit_2() {
    let root = MgrRoot::new();
    std::os::unix::fs::symlink("../sbin/mgrnotify", root.path().join("notify/xyz")).unwrap();
    let out = root.run("notify/xyz", &["--command", "features"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown role 'xyz'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ntsms_features_match_the_seed() {
    let root = MgrRoot::new();
    let out = root.run("notify/ntsms", &["--command", "features"], "");
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        r#"<doc><features><feature name="sms"/></features><contact_type>phone</contact_type></doc>"#
    );
}

#[test]
fn version_and_help_everywhere() {
    let root = MgrRoot::new();
    for role in ["sbin/mgrnotify", "notify/ntsms", "gate/gwsmtp"] {
        let out = root.run(role, &["--version"], "");
        assert!(out.status.success(), "{role}");
        assert!(stdout(&out).contains(env!("CARGO_PKG_VERSION")), "{role}");
        let out = root.run(role, &["--help"], "");
        assert!(out.status.success(), "{role}");
        assert!(stdout(&out).contains("Usage"), "{role}: {}", stdout(&out));
    }
    // Each role's help says what it is.
    for (role, about) in [
        ("notify/ntemail", "ntemail: email notifications"),
        ("notify/ntinternal", "ntinternal: client-area notifications"),
        ("gate/gwsmtp", "gwsmtp: outgoing email over SMTP."),
        ("gate/gwimap", "gwimap: incoming email over IMAP."),
        ("gate/gwpop3", "gwpop3: incoming email over POP3."),
    ] {
        let out = root.run(role, &["--help"], "");
        assert!(stdout(&out).contains(about), "{role}: {}", stdout(&out));
    }
}

#[test]
fn incoming_mail_gateways_are_ingoing_gateways_of_ntemail() {
    let root = MgrRoot::new();
    for role in ["gate/gwimap", "gate/gwpop3"] {
        let out = root.run(role, &["--command", "features"], "");
        assert!(out.status.success(), "{role}");
        let text = stdout(&out);
        assert!(
            text.contains("<feature name=\"ingoing\"/>")
                && text.contains("<feature name=\"check_connection\"/>")
                && !text.contains("outgoing")
                && text.contains("<notify_module>ntemail</notify_module>"),
            "{role}: {text}"
        );
    }
}

#[test]
fn cli_runs_a_role_by_name() {
    let root = MgrRoot::new();
    let out = root.run("sbin/mgrnotify", &["ntsms", "--command", "features"], "");
    assert!(out.status.success());
    assert!(stdout(&out).contains("<contact_type>phone</contact_type>"));
}

#[test]
fn ntsms_getmessage_has_nothing_to_get() {
    let root = MgrRoot::new();
    let out = root.run(
        "notify/ntsms",
        &["--command", "getmessage", "--gate", "all"],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(root.read("var/ntsms.log").contains("nothing to get"));
    let out = root.run("notify/ntsms", &["--command", "getmessage"], "");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--gate"));
}

/// `symlinks/` shows the layout install.sh makes: nothing in it that is not a role of
/// the table or a bundled script.
#[test]
fn the_symlinks_folder_holds_only_real_roles() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["notify", "gate"] {
        for entry in std::fs::read_dir(repo.join("symlinks").join(folder)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let in_table = mgrnotify::roles::ROLES
                .iter()
                .any(|r| r.name == name && r.folder.name() == folder);
            let bundled = repo.join("scripts").join(format!("{name}.rhai")).is_file();
            assert!(in_table || bundled, "symlinks/{folder}/{name} is no role");
        }
    }
}

/// The command names a role's `--help` lists under "Commands:".
fn listed_commands(root: &MgrRoot, role: &str) -> Vec<String> {
    let out = root.run(role, &["--help"], "");
    assert!(out.status.success(), "{role}: {}", stderr(&out));
    let text = stdout(&out);
    let list = text
        .split("\nCommands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{role}: no command list in\n{text}"));
    list.lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn each_role_lists_only_the_commands_it_serves() {
    let root = MgrRoot::new();
    for (role, commands) in [
        ("notify/ntsms", &["features", "process"][..]),
        ("notify/ntinternal", &["features", "process"]),
        ("notify/ntemail", &["features", "process", "getmessage"]),
        (
            "gate/gwsmtp",
            &["features", "outgoing", "formtune", "check_connection"],
        ),
        (
            "gate/gwimap",
            &["features", "ingoing", "formtune", "check_connection"],
        ),
        (
            "gate/gwjabber",
            &[
                "features",
                "outgoing",
                "ingoing",
                "formtune",
                "check_connection",
            ],
        ),
        // A script serves the functions it defines.
        ("gate/gwwebhook", &["features", "outgoing"]),
        (
            "gate/gwepochta",
            &["features", "outgoing", "check_connection", "formtune"],
        ),
    ] {
        assert_eq!(listed_commands(&root, role), commands, "{role}");
    }
    // A declared type once a gateway declares it.
    let out = root.run("sbin/mgrnotify", &["sync"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        listed_commands(&root, "notify/ntjabber"),
        ["features", "process", "getmessage"]
    );
    // It says which gateway declares it, and the user field it sends to.
    let help = stdout(&root.run("notify/ntjabber", &["--help"], ""));
    assert!(
        help.contains("ntjabber: Jabber messages, the notification type gwjabber declares")
            && help.contains("user field 'jabber'"),
        "{help}"
    );
}

#[test]
fn an_unknown_gateway_command_names_the_commands_the_gateway_serves() {
    let root = MgrRoot::new();
    let out = root.run("gate/gwsmtp", &["--command", "frob"], "");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("unknown command 'frob': use features, outgoing, formtune, check_connection"),
        "{text}"
    );
    let out = root.run("gate/gwimap", &[], "");
    let text = stdout(&out);
    assert!(
        text.contains("no --command given: use features, ingoing,"),
        "{text}"
    );
    assert!(!text.contains("outgoing"), "{text}");
}
