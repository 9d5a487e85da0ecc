//! `mgrnotify sync` as an operator uses it: a dropped-in script becomes a gateway
//! module (symlink and plugin XML), a deleted one goes away, and nothing that sync did
//! not make is ever touched.

mod common;

use std::os::unix::fs::symlink;

use common::mgr_root::{stderr, stdout, MgrRoot};

fn sync(root: &MgrRoot) -> std::process::Output {
    root.run("sbin/mgrnotify", &["sync"], "")
}

fn epochta_script() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/gwepochta.rhai"
    ))
    .unwrap()
}

#[test]
fn adds_and_removes_a_provider() {
    let root = MgrRoot::new();
    root.write("etc/mgrnotify/scripts/gwacme.rhai", &epochta_script());
    let out = sync(&root);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_link(root.path().join("gate/gwacme")).unwrap(),
        std::path::Path::new("../sbin/mgrnotify")
    );
    let xml = root.read("etc/xml/billmgr_mod_gwacme.xml");
    assert!(xml.contains(r#"<plugin name="gwacme">"#), "{xml}");
    assert!(xml.contains(r#"<metadata name="gateway.gwacme">"#), "{xml}");
    let features = root.run("gate/gwacme", &["--command", "features"], "");
    assert!(stdout(&features).contains("<notify_module>ntsms</notify_module>"));

    // A second sync changes nothing.
    let again = sync(&root);
    assert!(again.status.success());
    assert_eq!(stdout(&again), "");

    std::fs::remove_file(root.path().join("etc/mgrnotify/scripts/gwacme.rhai")).unwrap();
    let out = sync(&root);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(root.path().join("gate/gwacme").symlink_metadata().is_err());
    assert!(!root.path().join("etc/xml/billmgr_mod_gwacme.xml").exists());
}

#[test]
fn never_touches_what_it_did_not_make() {
    let root = MgrRoot::new();
    // A third-party gateway program and its plugin XML, and a built-in role's link.
    root.write("gate/gwicq", "#!/bin/sh\n");
    root.write("etc/xml/billmgr_mod_gwicq.xml", "<mgrdata/>");
    root.write("etc/xml/billmgr_mod_gwother.xml", "<mgrdata/>");
    symlink("/usr/bin/true", root.path().join("gate/gwlinked")).unwrap();
    let out = sync(&root);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(root.read("gate/gwicq"), "#!/bin/sh\n");
    assert_eq!(root.read("etc/xml/billmgr_mod_gwother.xml"), "<mgrdata/>");
    assert!(root.path().join("gate/gwlinked").symlink_metadata().is_ok());
    assert!(root.path().join("gate/gwsmtp").symlink_metadata().is_ok());

    // A script whose name is taken by a foreign file: reported, file left alone.
    root.write("etc/mgrnotify/scripts/gwicq.rhai", &epochta_script());
    let out = sync(&root);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("left alone"), "{}", stderr(&out));
    assert_eq!(root.read("gate/gwicq"), "#!/bin/sh\n");
    assert_eq!(root.read("etc/xml/billmgr_mod_gwicq.xml"), "<mgrdata/>");
}

#[test]
fn a_broken_script_keeps_its_gateway_until_fixed() {
    let root = MgrRoot::new();
    let before = root.read("etc/xml/billmgr_mod_gwepochta.xml");
    let out = sync(&root);
    assert!(out.status.success(), "{}", stderr(&out));
    let good = root.read("etc/xml/billmgr_mod_gwepochta.xml");
    assert!(good.contains("gwepochta") && before != good);

    root.write(
        "etc/mgrnotify/scripts/gwepochta.rhai",
        "fn metadata() { #{ title: ",
    );
    let out = sync(&root);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("gwepochta") && err.contains("line"), "{err}");
    assert_eq!(root.read("etc/xml/billmgr_mod_gwepochta.xml"), good);
    assert!(root
        .path()
        .join("gate/gwepochta")
        .symlink_metadata()
        .is_ok());
}

#[test]
fn help_and_stray_arguments_do_not_sync() {
    let root = MgrRoot::new();
    let out = root.run("sbin/mgrnotify", &["sync", "--help"], "");
    assert!(out.status.success());
    assert!(stdout(&out).contains("Usage"));
    let out = root.run("sbin/mgrnotify", &["sync", "now"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(!root
        .path()
        .join("etc/xml/billmgr_mod_gwepochta.xml")
        .exists());
}
