//! The POP3 client incoming mail needs (RFC 1939, STLS of RFC 2595): USER/PASS, UIDL,
//! RETR, DELE, QUIT, over [`Wire`]. POP3 has no "seen" flag: the UIDLs handed on are
//! remembered in a file per gateway, and a message is deleted only with `delete=on`.
//!
//! Written here: no maintained POP3 crate exists, and the protocol is a handful of
//! commands; every line and every message is read within the limits of
//! [`crate::mail::mailbox`].

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::mail::mailbox::{Mailbox, MAX_LINE, MAX_MESSAGE, MAX_MESSAGES};
use crate::mail::wire::{Wire, WireError};

/// Longest UIDL kept (RFC 1939: 1 to 70 characters).
const MAX_UIDL: usize = 70;
/// Most messages a mailbox listing may have.
const MAX_LISTING: usize = 100_000;

pub struct Pop3 {
    wire: Wire,
    delete: bool,
    /// The file of UIDLs handed on.
    store: PathBuf,
    seen: BTreeSet<String>,
    /// UIDL → message number, for this session.
    numbers: Vec<(String, u32)>,
}

impl Pop3 {
    /// Reads the greeting, starts TLS when asked and logs in. `store` is the file
    /// of UIDLs already handed on.
    pub fn login(
        wire: Wire,
        starttls: bool,
        login: &str,
        password: &str,
        delete: bool,
        store: PathBuf,
    ) -> Result<Self, WireError> {
        let seen = match std::fs::read_to_string(&store) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", store.display())),
        };
        let mut pop = Self {
            wire,
            delete,
            store,
            seen,
            numbers: Vec::new(),
        };
        pop.status()
            .map_err(|e| format!("the server did not greet: {e}"))?;
        if starttls {
            pop.command("STLS")
                .map_err(|e| format!("STLS refused: {e}"))?;
            pop.wire.start_tls()?;
        }
        if login.contains(['\r', '\n']) || password.contains(['\r', '\n']) {
            return Err("login and password cannot hold line breaks".into());
        }
        pop.command(&format!("USER {login}"))
            .and_then(|_| pop.command(&format!("PASS {password}")))
            .map_err(|e| format!("login as '{login}' refused: {e}"))?;
        Ok(pop)
    }

    /// One status line: `+OK ...` is its text, `-ERR ...` an error with it.
    fn status(&mut self) -> Result<String, WireError> {
        let line = self.wire.line(MAX_LINE)?;
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end();
        match line.strip_prefix("+OK") {
            Some(rest) => Ok(rest.trim().to_owned()),
            None => Err(format!("the server answered: {line}")),
        }
    }

    fn command(&mut self, command: &str) -> Result<String, WireError> {
        self.wire.send(format!("{command}\r\n").as_bytes())?;
        self.status()
    }

    /// A multi-line answer's body, dot-unstuffed, line ends as sent, at most `max`
    /// bytes.
    fn body(&mut self, max: usize) -> Result<Vec<u8>, WireError> {
        let mut body = Vec::new();
        loop {
            let line = self.wire.line(max.saturating_sub(body.len()) + 3)?;
            if line == b".\r\n" || line == b".\n" {
                return Ok(body);
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            if body.len() + line.len() > max {
                return Err(format!("the server sent more than {max} bytes"));
            }
            body.extend_from_slice(line);
        }
    }

    fn number(&self, id: &str) -> Result<u32, WireError> {
        self.numbers
            .iter()
            .find(|(uidl, _)| uidl == id)
            .map(|(_, n)| *n)
            .ok_or_else(|| format!("message {id} is no longer in the mailbox"))
    }

    /// Writes the UIDLs handed on that are still in the mailbox (the others can
    /// never come back), through a temporary file: a crash leaves the old list or the
    /// new one.
    fn save(&self) -> Result<(), WireError> {
        let present: BTreeSet<&str> = self.numbers.iter().map(|(u, _)| u.as_str()).collect();
        let mut text = String::new();
        for uidl in self.seen.iter().filter(|u| present.contains(u.as_str())) {
            text.push_str(uidl);
            text.push('\n');
        }
        crate::files::write_atomically(&self.store, text.as_bytes(), crate::files::Access::Private)
            .map_err(|e| format!("cannot record the messages handed on: {e}"))
    }
}

impl Mailbox for Pop3 {
    fn unread(&mut self) -> Result<Vec<String>, String> {
        self.command("UIDL")?;
        let listing = self.body(MAX_LISTING * (MAX_UIDL + 12))?;
        self.numbers.clear();
        for line in String::from_utf8_lossy(&listing).lines() {
            let mut fields = line.split_ascii_whitespace();
            let (Some(n), Some(uidl)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u32>() else { continue };
            if uidl.len() <= MAX_UIDL && self.numbers.len() < MAX_LISTING {
                self.numbers.push((uidl.to_owned(), n));
            }
        }
        Ok(self
            .numbers
            .iter()
            .filter(|(uidl, _)| !self.seen.contains(uidl))
            .take(MAX_MESSAGES)
            .map(|(uidl, _)| uidl.clone())
            .collect())
    }

    fn fetch(&mut self, id: &str) -> Result<Result<Vec<u8>, usize>, String> {
        let n = self.number(id)?;
        let size = self
            .command(&format!("LIST {n}"))?
            .split_ascii_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(0);
        if size > MAX_MESSAGE {
            return Ok(Err(size));
        }
        self.command(&format!("RETR {n}"))?;
        self.body(MAX_MESSAGE + MAX_MESSAGE / 8).map(Ok)
    }

    fn handed_on(&mut self, id: &str) -> Result<(), String> {
        let n = self.number(id)?;
        self.seen.insert(id.to_owned());
        self.save()?;
        if self.delete {
            self.command(&format!("DELE {n}"))?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), String> {
        self.command("QUIT").map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::wire::testing::{connect, scripted};

    #[test]
    fn dot_stuffing_uidls_and_deletion() {
        let (port, server) = scripted(
            "+OK POP3 ready",
            &[
                "+OK\r\n",
                "+OK logged in\r\n",
                "+OK\r\n1 aaa\r\n2 bbb\r\n.\r\n",
                "+OK 1 40\r\n",
                "+OK\r\nSubject: x\r\n\r\n..dot line\r\nend\r\n.\r\n",
                "+OK deleted\r\n",
                "+OK bye\r\n",
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("uidl");
        std::fs::write(&store, "bbb\ngone\n").unwrap();
        let mut pop = Pop3::login(connect(port), false, "u", "p", true, store.clone()).unwrap();
        assert_eq!(pop.unread().unwrap(), ["aaa"]);
        assert_eq!(
            pop.fetch("aaa").unwrap().unwrap(),
            b"Subject: x\r\n\r\n.dot line\r\nend\r\n"
        );
        pop.handed_on("aaa").unwrap();
        pop.close().unwrap();
        // The UIDLs no longer on the server are forgotten.
        assert_eq!(std::fs::read_to_string(&store).unwrap(), "aaa\nbbb\n");
        let got = server.join().unwrap();
        assert_eq!(
            got,
            ["USER u", "PASS p", "UIDL", "LIST 1", "RETR 1", "DELE 1", "QUIT"]
        );
    }

    #[test]
    fn refusals_and_oversized_messages() {
        let (port, _server) = scripted(
            "+OK",
            &["+OK\r\n", "-ERR [AUTH] Authentication failed.\r\n"],
        );
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("uidl");
        let e = Pop3::login(connect(port), false, "u", "p", false, store.clone())
            .err()
            .unwrap();
        assert!(
            e.contains("login as 'u' refused") && e.contains("[AUTH]"),
            "{e}"
        );
        let (port, _server) = scripted(
            "+OK",
            &[
                "+OK\r\n",
                "+OK\r\n",
                "+OK\r\n1 big\r\n.\r\n",
                "+OK 1 999999999999\r\n",
            ],
        );
        let mut pop = Pop3::login(connect(port), false, "u", "p", false, store).unwrap();
        assert_eq!(pop.unread().unwrap(), ["big"]);
        assert_eq!(pop.fetch("big").unwrap(), Err(999_999_999_999));
    }
}
