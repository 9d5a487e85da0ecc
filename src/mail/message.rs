//! Building one email from the outgoing request: headers (From, To, Subject, Date,
//! Message-ID, Reply-To, MIME-Version), a text/plain body or a multipart/alternative
//! one with HTML, and the attachments around it in multipart/mixed. lettre encodes
//! headers (RFC 2047) and bodies (7bit, quoted-printable or base64, whichever fits).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use lettre::address::{Address, Envelope};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment as AttachmentPart, Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use crate::gateway::{Attachment, GatewayError};
use crate::mail::attachments::{self, MAX_ATTACHMENT_BYTES};
use crate::xml::Params;

/// Who a mail is from: the gateway parameters `from_email`, `from_name` and `reply_to`.
#[derive(Debug, Clone)]
pub struct Sender {
    from: Mailbox,
    reply_to: Option<Mailbox>,
}

impl Sender {
    pub fn from_params(params: &Params) -> Result<Self, GatewayError> {
        let email = params
            .get("from_email")
            .ok_or_else(|| GatewayError::missed("from_email"))?;
        let address = parse_address("from_email", email)?;
        let name = params.get("from_name").map(one_line);
        let reply_to = params
            .get("reply_to")
            .map(|r| parse_address("reply_to", r).map(|a| Mailbox::new(None, a)))
            .transpose()?;
        Ok(Self {
            from: Mailbox::new(name, address),
            reply_to,
        })
    }

    /// The domain of the from address: Message-IDs are made under it.
    fn domain(&self) -> &str {
        self.from.email.domain()
    }
}

/// A mail ready for the SMTP transaction.
#[derive(Debug, Clone)]
pub struct Mail {
    pub envelope: Envelope,
    /// The RFC 5322 source, CRLF line ends.
    pub source: Vec<u8>,
    /// The Message-ID, without its angle brackets.
    pub message_id: String,
}

/// What goes into one mail.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    /// `user/email`: one address or several, separated by commas, semicolons or spaces.
    pub recipients: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
    pub attachments: &'a [Attachment],
}

/// Builds the mail. Attachment paths that are not absolute are taken relative to
/// `base` (the mgr root). Every problem of the input — no or a bad recipient, a
/// missing or too large attachment — is an error: a mail is never sent without a part.
pub fn compose(sender: &Sender, content: &Content<'_>, base: &Path) -> Result<Mail, GatewayError> {
    let recipients = recipients(content.recipients)?;
    let message_id = new_message_id(sender.domain());
    let mut builder = Message::builder()
        .from(sender.from.clone())
        .subject(one_line(content.subject))
        .date_now()
        .message_id(Some(format!("<{message_id}>")));
    if let Some(reply_to) = &sender.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    for address in recipients {
        builder = builder.to(Mailbox::new(None, address));
    }
    let text = content.text.to_owned();
    let body = match content.html {
        Some(html) => Part::Multi(MultiPart::alternative_plain_html(text, html.to_owned())),
        None => Part::Single(SinglePart::plain(text)),
    };
    let body = if content.attachments.is_empty() {
        body
    } else {
        let mut mixed = match body {
            Part::Multi(alternative) => MultiPart::mixed().multipart(alternative),
            Part::Single(plain) => MultiPart::mixed().singlepart(plain),
        };
        let mut budget = MAX_ATTACHMENT_BYTES;
        for attachment in content.attachments {
            mixed = mixed.singlepart(attachment_part(attachment, base, &mut budget)?);
        }
        Part::Multi(mixed)
    };
    let message = match body {
        Part::Multi(multi) => builder.multipart(multi),
        Part::Single(single) => builder.singlepart(single),
    }
    .map_err(|e| GatewayError::value("message", format!("cannot build the mail: {e}")))?;
    Ok(Mail {
        envelope: message.envelope().clone(),
        source: message.formatted(),
        message_id,
    })
}

enum Part {
    Single(SinglePart),
    Multi(MultiPart),
}

/// The addresses of `user/email`: BILLmanager may put several there, separated by
/// commas or spaces (semicolons are taken too).
pub fn recipients(text: &str) -> Result<Vec<Address>, GatewayError> {
    let addresses = text
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|a| !a.is_empty())
        .map(|a| parse_address("email", a))
        .collect::<Result<Vec<_>, _>>()?;
    if addresses.is_empty() {
        return Err(GatewayError::new(
            "missed",
            "email",
            "the user has no email address (user/email is empty)",
        ));
    }
    Ok(addresses)
}

/// An address, its domain in ASCII (IDNA): a domain such as `пример.рф` goes into
/// headers, the envelope and Message-IDs as `xn--e1afmkfd.xn--p1ai`, which every server
/// takes.
fn parse_address(field: &str, text: &str) -> Result<Address, GatewayError> {
    let text = text.trim();
    let refused =
        |e: String| GatewayError::value(field, format!("'{text}' is not an email address ({e})"));
    let ascii = match text.rsplit_once('@') {
        Some((user, domain)) if !domain.is_ascii() => {
            let domain = idna::domain_to_ascii(domain).map_err(|e| refused(e.to_string()))?;
            format!("{user}@{domain}")
        }
        _ => text.to_owned(),
    };
    ascii.parse::<Address>().map_err(|e| refused(e.to_string()))
}

/// Header text on one line: a CR or LF in a subject or a name must not start a
/// header of its own.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `<time>.<random>@<domain>`: unique without asking anyone.
fn new_message_id(domain: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}.{:016x}@{domain}", fastrand::u64(..))
}

/// One attachment read from its file, counted against `budget`.
fn attachment_part(
    attachment: &Attachment,
    base: &Path,
    budget: &mut u64,
) -> Result<SinglePart, GatewayError> {
    let error = |msg: String| GatewayError::value("attachment", msg);
    let given = attachment.path.trim();
    if given.is_empty() {
        return Err(error("an attachment has no file path".into()));
    }
    let path = if Path::new(given).is_absolute() {
        PathBuf::from(given)
    } else {
        base.join(given)
    };
    let bytes = attachments::read(&path, budget).map_err(error)?;
    let name = match attachment.name.trim() {
        "" => attachments::file_name(&path),
        name => one_line(name),
    };
    let content_type = match attachment.content_type.trim() {
        "" => attachments::guess_type(&name),
        given => given,
    };
    let content_type = ContentType::parse(content_type).map_err(|_| {
        error(format!(
            "the attachment {name} has type '{content_type}', which is not a MIME type"
        ))
    })?;
    // base64 whatever the type: the recipient gets the file's bytes exactly (7bit or
    // quoted-printable would turn a text file's line ends into CRLF).
    let body = Body::new_with_encoding(bytes, ContentTransferEncoding::Base64)
        .map_err(|_| error(format!("cannot encode the attachment {name}")))?;
    Ok(AttachmentPart::new(name).body(body, content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Sender {
        let mut p = Params::new();
        p.set("from_email", "billing@shop.test");
        p.set("from_name", "Shop\r\nBcc: evil@x.test");
        Sender::from_params(&p).unwrap()
    }

    fn content<'a>(recipients: &'a str, subject: &'a str) -> Content<'a> {
        Content {
            recipients,
            subject,
            text: "Hello",
            html: None,
            attachments: &[],
        }
    }

    #[test]
    fn recipients_split_on_commas_and_spaces() {
        let got: Vec<String> = recipients(" a@x.test, b@y.test  c@z.test;d@w.test ")
            .unwrap()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(got, ["a@x.test", "b@y.test", "c@z.test", "d@w.test"]);
        assert_eq!(recipients(" , ").unwrap_err().kind, "missed");
        let bad = recipients("a@x.test, not-an-address").unwrap_err();
        assert_eq!(bad.kind, "value");
        assert!(bad.msg.contains("not-an-address"), "{}", bad.msg);
    }

    #[test]
    fn no_header_injection_through_subject_or_name() {
        let mail = compose(
            &sender(),
            &content("a@x.test", "Hi\r\nBcc: evil@x.test"),
            Path::new("/"),
        )
        .unwrap();
        let source = String::from_utf8(mail.source).unwrap();
        let head = source.split("\r\n\r\n").next().unwrap();
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc")),
            "{head}"
        );
        // One line each, as meant, not an encoded word hiding a line break.
        assert!(
            head.contains("\r\nSubject: Hi Bcc: evil@x.test\r\n"),
            "{head}"
        );
        let from = head.lines().find(|l| l.starts_with("From:")).unwrap();
        let word = from
            .split("=?utf-8?b?")
            .nth(1)
            .and_then(|w| w.split("?=").next())
            .unwrap_or_else(|| panic!("{from}"));
        use base64::Engine;
        let name = base64::engine::general_purpose::STANDARD
            .decode(word)
            .unwrap();
        assert_eq!(String::from_utf8(name).unwrap(), "Shop Bcc: evil@x.test");
        assert_eq!(mail.envelope.to().len(), 1);
    }

    #[test]
    fn message_id_is_under_the_from_domain() {
        let mail = compose(&sender(), &content("a@x.test", "S"), Path::new("/")).unwrap();
        assert!(
            mail.message_id.ends_with("@shop.test"),
            "{}",
            mail.message_id
        );
        let source = String::from_utf8(mail.source).unwrap();
        assert!(source.contains(&format!("Message-ID: <{}>", mail.message_id)));
    }

    #[test]
    fn international_domains_go_out_in_ascii() {
        let mut p = Params::new();
        p.set("from_email", "billing@пример.рф");
        let mail = compose(
            &Sender::from_params(&p).unwrap(),
            &content("ivan@почта.рф", "S"),
            Path::new("/"),
        )
        .unwrap();
        assert!(
            mail.message_id.ends_with("@xn--e1afmkfd.xn--p1ai"),
            "{}",
            mail.message_id
        );
        let source = String::from_utf8(mail.source).unwrap();
        assert!(source.contains(&format!("Message-ID: <{}>\r\n", mail.message_id)));
        assert!(
            source.contains("From: billing@xn--e1afmkfd.xn--p1ai\r\n"),
            "{source}"
        );
        assert!(
            source.contains("To: ivan@xn--80a1acny.xn--p1ai\r\n"),
            "{source}"
        );
        assert_eq!(
            mail.envelope.from().map(ToString::to_string).as_deref(),
            Some("billing@xn--e1afmkfd.xn--p1ai")
        );
    }

    #[test]
    fn attachments_are_capped_and_typed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.bin"), vec![0u8; 64]).unwrap();
        let mut budget = 10;
        let big = Attachment {
            path: "big.bin".into(),
            ..Attachment::default()
        };
        let err = attachment_part(&big, dir.path(), &mut budget).unwrap_err();
        assert!(err.msg.contains("larger than"), "{}", err.msg);
        let bad_type = Attachment {
            content_type: "not a type".into(),
            ..big.clone()
        };
        let err = attachment_part(&bad_type, dir.path(), &mut 1000).unwrap_err();
        assert!(err.msg.contains("not a MIME type"), "{}", err.msg);
        let part = attachment_part(&big, dir.path(), &mut 1000).unwrap();
        let head = String::from_utf8_lossy(&part.formatted()).into_owned();
        assert!(
            head.contains("Content-Type: application/octet-stream"),
            "{head}"
        );
        assert!(head.contains("filename=\"big.bin\""), "{head}");
    }
}
