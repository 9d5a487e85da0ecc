//! The queue with gwsmtp as a gateway of ntemail: run in-process (no `gate/gwsmtp`
//! subprocess), one gateway value for the run, so each worker keeps its SMTP
//! connection across the messages it sends.

mod common;

use common::mariadb::{spawn_role_process, wait_bounded, TestDb};
use common::mgr_root::{stderr, MgrRoot};
use common::smtp::{Options, SmtpServer};

fn notice(n: usize) -> String {
    format!(
        "<doc><notify><tmpl>Invoice {n} is paid</tmpl>\
         <notice_xml>&lt;doc&gt;&lt;project&gt;&lt;id&gt;1&lt;/id&gt;&lt;name&gt;Hosting&lt;/name&gt;&lt;/project&gt;&lt;subject&gt;Invoice {n}&lt;/subject&gt;&lt;/doc&gt;</notice_xml>\
         <user><id>7</id><name>client</name><email>client{n}@client.test</email></user>\
         <templatesubject>Fallback</templatesubject></notify></doc>"
    )
}

#[test]
fn workers_send_through_gwsmtp_in_process_on_kept_connections() {
    let server = SmtpServer::start(Options::default());
    let root = MgrRoot::new();
    let db = TestDb::create();
    db.add_gateway_for(
        "ntemail",
        "gwsmtp",
        1,
        &format!(
            "<doc><host>127.0.0.1</host><port>{}</port><security>none</security>\
             <from_email>billing@shop.test</from_email></doc>",
            server.port
        ),
        "on",
        "outgoing",
    );
    let count = 12;
    for n in 0..count {
        root.write(&format!("var/notify/m{n}"), &notice(n));
        db.add_task_for("ntemail", &format!("m{n}"), 0, "2026-01-01 00:00:00", false);
    }
    root.write("etc/mgrnotify/mgrnotify.conf", "QueueWorkers 2\n");
    let run = spawn_role_process(&root, &db.url(), "ntemail");
    let out = wait_bounded(run, std::time::Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(db.tasks().is_empty(), "{:?}", db.tasks());

    let got = server.messages();
    assert_eq!(got.len(), count);
    let mut recipients: Vec<String> = got.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    let mut wanted: Vec<String> = (0..count)
        .map(|n| format!("client{n}@client.test"))
        .collect();
    wanted.sort();
    assert_eq!(recipients, wanted);
    // In-process: no gate/gwsmtp subprocess answered an outgoing command.
    assert!(!root.read("var/gwsmtp.log").contains("outgoing"));
    // One connection per worker at most, not one per message.
    let mut peers: Vec<u16> = got.iter().map(|m| m.peer).collect();
    peers.sort();
    peers.dedup();
    assert!(
        peers.len() <= 2,
        "{} connections for {count} mails",
        peers.len()
    );
    let connects = server.events().iter().filter(|e| *e == "CONNECT").count();
    assert_eq!(connects, peers.len());
}
