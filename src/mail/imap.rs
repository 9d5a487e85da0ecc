//! The IMAP4rev1 client incoming mail needs (RFC 3501): LOGIN, SELECT, UID SEARCH
//! UNSEEN, UID FETCH BODY.PEEK[] and UID STORE \Seen, over [`Wire`]. Folder names go to
//! the server in IMAP's modified UTF-7, so an operator types them as a mail client
//! shows them.
//!
//! Written here rather than taken from the `imap` crate: its maintained line is an
//! alpha, and it reads every literal the server announces whole, however large; this
//! client asks a message's size first and reads no line or literal past its limits.

use crate::mail::mailbox::{Mailbox, MAX_LINE, MAX_MESSAGE, MAX_MESSAGES};
use crate::mail::wire::{Wire, WireError};

/// One server response: its text with every literal replaced by `{n}`, and the
/// literals.
struct Response {
    text: String,
    literals: Vec<Vec<u8>>,
}

pub struct Imap {
    wire: Wire,
    next_tag: u32,
    /// LOGOUT was sent: the server's BYE is the expected answer.
    logging_out: bool,
}

impl Imap {
    /// Reads the greeting, starts TLS when asked, logs in and selects `folder` (its
    /// name as a person reads it).
    pub fn login(
        wire: Wire,
        starttls: bool,
        login: &str,
        password: &str,
        folder: &str,
    ) -> Result<Self, WireError> {
        let mut imap = Self {
            wire,
            next_tag: 0,
            logging_out: false,
        };
        let greeting = imap.response(MAX_LINE)?;
        if !greeting.text.starts_with("* OK") && !greeting.text.starts_with("* PREAUTH") {
            return Err(format!(
                "the server did not greet: {}",
                greeting.text.trim()
            ));
        }
        if starttls {
            imap.command(&[Part::Raw("STARTTLS")])
                .map_err(|e| format!("STARTTLS refused: {e}"))?;
            imap.wire.start_tls()?;
        }
        if !greeting.text.starts_with("* PREAUTH") {
            imap.command(&[
                Part::Raw("LOGIN "),
                Part::Str(login),
                Part::Raw(" "),
                Part::Str(password),
            ])
            .map_err(|e| format!("login as '{login}' refused: {e}"))?;
        }
        imap.command(&[Part::Raw("SELECT "), Part::Str(&modified_utf7(folder))])
            .map_err(|e| format!("cannot open folder '{folder}': {e}"))?;
        Ok(imap)
    }

    /// Sends a command and reads until its tagged answer: the untagged responses on
    /// OK, the server's words on NO or BAD.
    fn command(&mut self, parts: &[Part<'_>]) -> Result<Vec<Response>, WireError> {
        self.next_tag += 1;
        let tag = format!("A{}", self.next_tag);
        let mut line = format!("{tag} ").into_bytes();
        for part in parts {
            match part {
                Part::Raw(text) => line.extend_from_slice(text.as_bytes()),
                Part::Str(text) if is_quotable(text) => {
                    line.push(b'"');
                    for b in text.bytes() {
                        if b == b'"' || b == b'\\' {
                            line.push(b'\\');
                        }
                        line.push(b);
                    }
                    line.push(b'"');
                }
                Part::Str(text) => {
                    // A synchronizing literal: the server says "+" before the bytes.
                    line.extend_from_slice(format!("{{{}}}\r\n", text.len()).as_bytes());
                    self.wire.send(&line)?;
                    let go = self.response(MAX_LINE)?;
                    if !go.text.starts_with('+') {
                        return Err(go.text.trim().to_owned());
                    }
                    line = text.as_bytes().to_vec();
                }
            }
        }
        line.extend_from_slice(b"\r\n");
        self.wire.send(&line)?;
        let mut untagged = Vec::new();
        // What one command's answer may bring in all: one message and some lines.
        let mut budget = MAX_MESSAGE + 8 * MAX_LINE;
        loop {
            let r = self.response(budget)?;
            let size = r.text.len() + r.literals.iter().map(Vec::len).sum::<usize>();
            budget = budget
                .checked_sub(size)
                .ok_or("the server sent more than one command can bring")?;
            if let Some(rest) = r.text.strip_prefix(&format!("{tag} ")) {
                let rest = rest.trim();
                let ok = rest
                    .as_bytes()
                    .get(..2)
                    .is_some_and(|b| b.eq_ignore_ascii_case(b"OK"));
                return if ok {
                    Ok(untagged)
                } else {
                    Err(format!("the server answered: {rest}"))
                };
            }
            if r.text.starts_with("* BYE") && !self.logging_out {
                return Err(format!("the server ended the session: {}", r.text.trim()));
            }
            if untagged.len() >= 4 * MAX_MESSAGES + 64 {
                return Err("the server sent too many responses".into());
            }
            untagged.push(r);
        }
    }

    /// One response: a line, and after each line that ends with a literal `{n}`, the
    /// literal and the line that goes on after it; its literals at most `max_literals`
    /// bytes in all.
    fn response(&mut self, max_literals: usize) -> Result<Response, WireError> {
        let mut text = String::new();
        let mut literals = Vec::new();
        let mut left = max_literals;
        loop {
            let line = self.wire.line(MAX_LINE)?;
            let line = String::from_utf8_lossy(&line).into_owned();
            let trimmed = line.trim_end_matches(['\r', '\n']);
            match literal_size(trimmed) {
                Some(n) if n > left => {
                    return Err(format!(
                        "the server announced {n} bytes, more than expected"
                    ))
                }
                Some(n) => {
                    left -= n;
                    text.push_str(trimmed);
                    literals.push(self.wire.exact(n)?);
                    if literals.len() > 16 {
                        return Err("the server sent too many literals in one response".into());
                    }
                }
                None => {
                    text.push_str(trimmed);
                    return Ok(Response { text, literals });
                }
            }
        }
    }

    fn uid(id: &str) -> Result<u32, WireError> {
        id.parse().map_err(|_| format!("'{id}' is not an IMAP UID"))
    }
}

impl Mailbox for Imap {
    fn unread(&mut self) -> Result<Vec<String>, String> {
        let responses = self.command(&[Part::Raw("UID SEARCH UNSEEN")])?;
        let mut uids: Vec<u32> = responses
            .iter()
            .filter_map(|r| r.text.strip_prefix("* SEARCH"))
            .flat_map(|rest| rest.split_ascii_whitespace())
            .filter_map(|n| n.parse().ok())
            .collect();
        uids.sort_unstable();
        uids.dedup();
        uids.truncate(MAX_MESSAGES);
        Ok(uids.iter().map(u32::to_string).collect())
    }

    fn fetch(&mut self, id: &str) -> Result<Result<Vec<u8>, usize>, String> {
        let uid = Self::uid(id)?;
        let sizes = self.command(&[Part::Raw(&format!("UID FETCH {uid} (RFC822.SIZE)"))])?;
        let size = sizes
            .iter()
            .filter(|r| fetch_uid(&r.text) == Some(uid))
            .find_map(|r| number_after(&r.text, "RFC822.SIZE "))
            .ok_or_else(|| format!("message {uid} is no longer in the folder"))?;
        if size > MAX_MESSAGE {
            return Ok(Err(size));
        }
        let bodies = self.command(&[Part::Raw(&format!("UID FETCH {uid} BODY.PEEK[]"))])?;
        bodies
            .into_iter()
            .find(|r| fetch_uid(&r.text) == Some(uid) && r.text.contains("BODY[]"))
            .and_then(|mut r| (!r.literals.is_empty()).then(|| r.literals.swap_remove(0)))
            .map(Ok)
            .ok_or_else(|| format!("the server sent no body for message {uid}"))
    }

    fn handed_on(&mut self, id: &str) -> Result<(), String> {
        let uid = Self::uid(id)?;
        self.command(&[Part::Raw(&format!(
            "UID STORE {uid} +FLAGS.SILENT (\\Seen)"
        ))])?;
        Ok(())
    }

    fn close(&mut self) -> Result<(), String> {
        self.logging_out = true;
        self.command(&[Part::Raw("LOGOUT")]).map(|_| ())
    }
}

/// A piece of a command line: as it is, or a string argument (quoted or a literal).
enum Part<'a> {
    Raw(&'a str),
    Str(&'a str),
}

/// Printable ASCII goes as a quoted string; anything else as a literal.
fn is_quotable(text: &str) -> bool {
    text.len() < 1024 && text.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// A mailbox name in IMAP's modified UTF-7 (RFC 3501 5.1.3): printable ASCII as it is
/// (`&` as `&-`), every run of other characters as `&` + UTF-16BE in base64 with `,`
/// for `/`, unpadded, + `-`.
fn modified_utf7(name: &str) -> String {
    use base64::Engine;
    const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::IMAP_MUTF7,
        base64::engine::general_purpose::NO_PAD,
    );
    let mut out = String::with_capacity(name.len());
    let mut wide: Vec<u8> = Vec::new();
    let flush = |wide: &mut Vec<u8>, out: &mut String| {
        if !wide.is_empty() {
            out.push('&');
            out.push_str(&ENGINE.encode(&*wide));
            out.push('-');
            wide.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut wide, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                wide.extend_from_slice(&unit.to_be_bytes());
            }
        }
    }
    flush(&mut wide, &mut out);
    out
}

/// `n` of a line ending in `{n}` (or `{n+}`).
fn literal_size(line: &str) -> Option<usize> {
    let open = line.strip_suffix('}')?.rfind('{')?;
    let inner = &line[open + 1..line.len() - 1];
    inner.strip_suffix('+').unwrap_or(inner).parse().ok()
}

/// The UID of an untagged FETCH response.
fn fetch_uid(text: &str) -> Option<u32> {
    if !text.starts_with("* ") || !text.contains(" FETCH (") {
        return None;
    }
    number_after(text, "UID ").and_then(|n| u32::try_from(n).ok())
}

fn number_after(text: &str, key: &str) -> Option<usize> {
    let upper = text.to_ascii_uppercase();
    let at = upper.find(key)? + key.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::wire::testing::{connect, scripted};

    #[test]
    fn a_server_announcing_a_huge_literal_is_refused_unread() {
        let (port, server) = scripted(
            "* OK ready",
            &[
                "A1 OK logged in\r\n",
                "A2 OK [READ-WRITE] selected\r\n",
                "* SEARCH 3 1\r\nA3 OK\r\n",
                "* 1 FETCH (UID 1 RFC822.SIZE 10)\r\nA4 OK\r\n",
                "* 1 FETCH (UID 1 BODY[] {999999999999}\r\n",
            ],
        );
        let mut imap = Imap::login(connect(port), false, "u", "p\"w", "INBOX").unwrap();
        assert_eq!(imap.unread().unwrap(), ["1", "3"]);
        let e = imap.fetch("1").unwrap_err();
        assert!(e.contains("more than expected"), "{e}");
        drop(imap);
        let got = server.join().unwrap();
        assert_eq!(got[0], "A1 LOGIN \"u\" \"p\\\"w\"");
        assert_eq!(got[1], "A2 SELECT \"INBOX\"");
        assert_eq!(got[4], "A5 UID FETCH 1 BODY.PEEK[]");
    }

    #[test]
    fn refusals_carry_the_servers_words_and_odd_bytes_do_no_harm() {
        let (port, _server) = scripted(
            "* OK ready",
            &["A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"],
        );
        let e = Imap::login(connect(port), false, "u", "p", "INBOX")
            .err()
            .unwrap();
        assert!(
            e.contains("login as 'u' refused") && e.contains("AUTHENTICATIONFAILED"),
            "{e}"
        );
        let (port, _server) = scripted("* OK ready", &["A1 \u{fffd}\u{fffd} weird\r\n"]);
        assert!(Imap::login(connect(port), false, "u", "p", "INBOX").is_err());
        let (port, _server) = scripted("* OK ready", &["A10 OK not ours\r\n"]);
        assert!(Imap::login(connect(port), false, "u", "p", "INBOX").is_err());
    }

    #[test]
    fn responses_are_read_by_their_parts() {
        assert_eq!(literal_size("* 1 FETCH (UID 7 BODY[] {1234}"), Some(1234));
        assert_eq!(literal_size("A1 LOGIN {5+}"), Some(5));
        assert_eq!(literal_size("* OK done"), None);
        assert_eq!(literal_size("* OK {x}"), None);
        assert_eq!(fetch_uid("* 3 FETCH (UID 7 RFC822.SIZE 99)"), Some(7));
        assert_eq!(fetch_uid("* 3 EXISTS"), None);
        assert_eq!(
            number_after("* 3 FETCH (UID 7 RFC822.SIZE 99)", "RFC822.SIZE "),
            Some(99)
        );
        assert!(is_quotable("p\"a\\ss"));
        assert_eq!(modified_utf7("INBOX"), "INBOX");
        assert_eq!(modified_utf7("Поддержка"), "&BB8EPgQ0BDQENQRABDYEOgQw-");
        assert_eq!(modified_utf7("Tom & Jerry"), "Tom &- Jerry");
        // RFC 3501's example, and a character beyond the BMP (a surrogate pair).
        assert_eq!(
            modified_utf7("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(modified_utf7("a😀"), "a&2D3eAA-");
        assert!(!is_quotable("пароль") && !is_quotable("a\r\nb"));
    }
}
