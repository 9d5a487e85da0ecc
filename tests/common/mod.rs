//! Shared test support: a fake BILLmanager root and fake HTTP providers.

pub mod fake_http;
pub mod mariadb;
pub mod mgr_root;
pub mod tcp_proxy;
