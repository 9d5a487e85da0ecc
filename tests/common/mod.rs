//! Shared test support: a fake BILLmanager root, fake HTTP providers, MariaDB and an
//! SMTP server.

pub mod fake_http;
pub mod mariadb;
pub mod mgr_root;
pub mod smtp;
