//! Shared test support: a fake BILLmanager root and fake HTTP providers.

pub mod fake_http;
pub mod mgr_root;
