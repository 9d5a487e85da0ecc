//! An incoming mail as a ticket needs it: the sender's address, the decoded subject
//! and the text of the reply — the plain-text body (text from the HTML when there is
//! no plain part) with the quoted history below the usual reply markers cut off.
//! mail-parser decodes the MIME structure, transfer encodings, charsets (UTF-8,
//! KOI8-R, CP1251, ISO-8859-*, ...) and RFC 2047 headers.

use mail_parser::MessageParser;

use crate::mail::mailbox::MAX_MESSAGE;
use regex::Regex;

/// Longest subject passed on, in characters.
const MAX_SUBJECT: usize = 500;

/// What a ticket takes from a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The From address.
    pub from: String,
    pub subject: String,
    pub text: String,
    /// Why it is an automatic mail (an out-of-office reply, a bounce), when it is one:
    /// posting it could start a mail loop with the ticket notifications.
    pub automatic: Option<String>,
}

/// Reads a mail's source; `Err` says why it is not a mail that can be posted.
pub fn read(source: &[u8]) -> Result<Incoming, String> {
    if source.len() > MAX_MESSAGE {
        return Err(format!("the mail is larger than {MAX_MESSAGE} bytes"));
    }
    let message = MessageParser::default()
        .parse(source)
        .ok_or("not a mail: no headers could be read")?;
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::trim)
        .filter(|a| a.contains('@'))
        .ok_or("the mail has no sender address (From)")?
        .to_owned();
    let subject: String = message
        .subject()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_SUBJECT)
        .collect();
    let body = message.body_text(0).unwrap_or_default();
    let text = cut_quoted(&body.replace("\r\n", "\n"));
    if text.trim().is_empty() {
        return Err("the mail has no text".into());
    }
    let header = |name: &'static str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let automatic = match (header("Auto-Submitted"), header("Precedence")) {
        (Some(a), _) if a != "no" => Some(format!("Auto-Submitted: {a}")),
        (_, Some(p)) if ["bulk", "junk", "auto_reply"].contains(&p.as_str()) => {
            Some(format!("Precedence: {p}"))
        }
        _ => None,
    };
    Ok(Incoming {
        from,
        subject,
        text,
        automatic,
    })
}

/// The ticket number in `subject`: the first capture group of `pattern`.
pub fn ticket_number(pattern: &Regex, subject: &str) -> Option<String> {
    let captures = pattern.captures(subject)?;
    let number = captures.get(1).unwrap_or(captures.get(0)?).as_str().trim();
    (!number.is_empty()).then(|| number.to_owned())
}

/// The text above the quoted history: everything from the first reply marker on is
/// cut ("On ... wrote:", "... написал(а):", the "date, Name <address>:" of Gmail in
/// Russian, Yandex and Mail.ru, "-----Original Message-----", Outlook's line of
/// underscores, a "From:" header block), then trailing `>` lines. A text that would be
/// left empty is kept whole.
pub fn cut_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let lower = t.to_lowercase();
        let marker = is_separator(&lower)
            || ((lower.starts_with("on ") || lower.starts_with("в ") || lower.starts_with("le "))
                && ends_like_attribution(&lower))
            || (ends_like_attribution(&lower) && t.contains('@'))
            || (t.ends_with(">:") && t.rfind('<').is_some_and(|at| t[at..].contains('@')))
            || (i + 1 < lines.len()
                && (lower.starts_with("on ") || lower.starts_with("в "))
                && ends_like_attribution(&lines[i + 1].trim().to_lowercase())
                && lines[i + 1].split_whitespace().count() <= 2)
            || ((lower.starts_with("from:") || lower.starts_with("от:"))
                && i > 0
                && lines[i - 1].trim().is_empty()
                && lines[i + 1..].iter().take(4).any(|l| {
                    let l = l.trim().to_lowercase();
                    l.starts_with("sent:")
                        || l.starts_with("date:")
                        || l.starts_with("отправлено:")
                        || l.starts_with("дата:")
                }));
        if marker {
            end = i;
            break;
        }
    }
    while end > 0
        && (lines[end - 1].trim().is_empty() || lines[end - 1].trim_start().starts_with('>'))
    {
        end -= 1;
    }
    let kept = lines[..end].join("\n");
    if kept.trim().is_empty() {
        text.trim().to_owned()
    } else {
        kept.trim_end().to_owned()
    }
}

fn ends_like_attribution(lower: &str) -> bool {
    [
        "wrote:",
        "написал:",
        "написала:",
        "написал(а):",
        "пишет:",
        "a écrit :",
        "schrieb:",
    ]
    .iter()
    .any(|m| lower.ends_with(m))
}

fn is_separator(lower: &str) -> bool {
    let dashes = |s: &str| s.trim_matches(|c| c == '-' || c == ' ').trim().to_owned();
    lower.starts_with("-----") && {
        let inner = dashes(lower);
        [
            "original message",
            "исходное сообщение",
            "forwarded message",
            "пересылаемое сообщение",
        ]
        .contains(&inner.as_str())
    } || (lower.len() >= 20 && lower.chars().all(|c| c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_history_is_cut() {
        let gmail = "Thanks, it works now.\n\nOn Mon, 30 Nov 2026 at 10:00, Support <s@x.com> wrote:\n> old";
        assert_eq!(cut_quoted(gmail), "Thanks, it works now.");
        let wrapped = "Ok\n\nOn Mon, 30 Nov 2026 at 10:00, Support <s@x.com>\nwrote:\n> old";
        assert_eq!(cut_quoted(wrapped), "Ok");
        let ru = "Спасибо!\n\n30.11.2026, 10:00, \"Поддержка\" <s@x.ru> написал:\n> старое";
        assert_eq!(cut_quoted(ru), "Спасибо!");
        let outlook = "Fine\n\n-----Original Message-----\nFrom: a\n";
        assert_eq!(cut_quoted(outlook), "Fine");
        let gmail_ru = "Да\n\nпн, 30 нояб. 2026 г. в 10:00, Поддержка <s@x.ru>:\n> старое";
        assert_eq!(cut_quoted(gmail_ru), "Да");
        let yandex = "Ок\n\n30.11.2026, 10:00, \"Поддержка\" <s@x.ru>:\nстарое из HTML";
        assert_eq!(cut_quoted(yandex), "Ок");
        let mail_ru = "Хорошо\nПонедельник, 30 ноября 2026, 10:00 +03:00 от s@x.ru <s@x.ru>:\n";
        assert_eq!(cut_quoted(mail_ru), "Хорошо");
        let list = "Write to:\n<s@x.ru> or <t@x.ru>\nthanks";
        assert_eq!(cut_quoted(list), list);
        let header = "Done\n\nFrom: Support <s@x.com>\nSent: Monday\nTo: me\n\nold";
        assert_eq!(cut_quoted(header), "Done");
        assert_eq!(cut_quoted("top\n> quoted\n>> more\n"), "top");
        assert_eq!(cut_quoted("a\n> inline\nb"), "a\n> inline\nb");
        assert_eq!(cut_quoted("> only quoted"), "> only quoted");
    }

    #[test]
    fn deeply_nested_mail_is_read_without_harm() {
        let mut mail = String::from("From: a@b.c\r\nSubject: deep\r\n");
        for i in 0..20_000 {
            mail.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
            ));
        }
        mail.push_str("Content-Type: text/plain\r\n\r\nbottom\r\n");
        let started = std::time::Instant::now();
        let _ = read(mail.as_bytes());
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn ticket_numbers_come_from_the_first_group() {
        let default = Regex::new(r"\[#(\d+)\]").unwrap();
        assert_eq!(
            ticket_number(&default, "Re: [#42] Server down"),
            Some("42".into())
        );
        assert_eq!(ticket_number(&default, "Server down #42"), None);
        let custom = Regex::new(r"Ticket (\d+)").unwrap();
        assert_eq!(ticket_number(&custom, "RE: Ticket 7"), Some("7".into()));
    }

    #[test]
    fn mails_without_sender_or_text_are_refused() {
        let huge = vec![b'a'; MAX_MESSAGE + 1];
        assert!(read(&huge).unwrap_err().contains("larger than"));
        assert!(read(b"\x00\x01 garbage").is_err());
        assert!(read(b"Subject: x\r\n\r\nbody\r\n")
            .unwrap_err()
            .contains("sender"));
        assert!(read(b"From: a@b.c\r\nSubject: x\r\n\r\n")
            .unwrap_err()
            .contains("no text"));
        let ok = read(b"From: A <A@B.C>\r\nSubject: =?UTF-8?B?0J/RgNC40LLQtdGC?=\r\n\r\nhi\r\n")
            .unwrap();
        assert_eq!(
            (ok.from.as_str(), ok.subject.as_str(), ok.text.as_str()),
            ("A@B.C", "Привет", "hi")
        );
        assert_eq!(ok.automatic, None);
        let away = read(b"From: a@b.c\r\nAuto-Submitted: auto-replied\r\n\r\naway\r\n").unwrap();
        assert_eq!(
            away.automatic.as_deref(),
            Some("Auto-Submitted: auto-replied")
        );
        let bulk = read(b"From: a@b.c\r\nPrecedence: Bulk\r\n\r\nnews\r\n").unwrap();
        assert_eq!(bulk.automatic.as_deref(), Some("Precedence: bulk"));
    }
}
