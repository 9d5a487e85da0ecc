//! Email: which files a notice may attach ([`attachments`]), building a mail from the
//! outgoing request ([`message`]) and sending it over SMTP ([`smtp`]); reading incoming
//! mail from a [`mailbox`] over [`imap`] or [`pop3`], on a bounded connection
//! ([`wire`]); the server parameters they share ([`server`]).

pub mod attachments;
pub mod imap;
pub mod mailbox;
pub mod message;
pub mod pop3;
pub mod server;
pub mod smtp;
pub mod wire;
