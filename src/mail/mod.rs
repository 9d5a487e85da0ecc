//! Email: which files a notice may attach ([`attachments`]), building a mail from the
//! outgoing request ([`message`]) and sending it over SMTP ([`smtp`]).

pub mod attachments;
pub mod message;
pub mod smtp;
