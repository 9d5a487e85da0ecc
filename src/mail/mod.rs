//! Email: building a mail from the outgoing request ([`message`]) and sending it over
//! SMTP ([`smtp`]).

pub mod message;
pub mod smtp;
