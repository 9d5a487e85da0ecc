//! Shared test support: a fake BILLmanager root, fake HTTP providers, a private
//! MariaDB, an SMTP server, a TCP proxy that can hang, and the harness of the provider
//! script tests.

pub mod dovecot;
pub mod fake_http;
pub mod mariadb;
pub mod mgr_root;
pub mod mgrctl;
pub mod plugin;
pub mod prosody;
pub mod providers;
pub mod smtp;
pub mod tcp_proxy;
