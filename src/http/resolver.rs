//! Host name resolution that remembers its answers for a while. ureq resolves before
//! every request, even one that goes out on a kept-alive connection, and with a
//! timeout set (ours always is) it does so on a thread of its own: without this, a
//! queue run starts one thread and makes one DNS lookup for every message.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a host's addresses are reused: a provider that moves is followed within it.
const TTL: Duration = Duration::from_secs(30);
/// Hosts remembered at most; scripts call a handful.
const MAX_HOSTS: usize = 64;

#[derive(Debug, Default)]
pub struct CachingResolver {
    inner: DefaultResolver,
    /// `host:port` → when it was resolved, and its addresses.
    known: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(key) = uri
            .scheme()
            .zip(uri.authority())
            .and_then(|(scheme, authority)| DefaultResolver::host_and_port(scheme, authority))
        else {
            return self.inner.resolve(uri, config, timeout);
        };
        let fresh = self
            .lock()
            .get(&key)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, addrs)| addrs.clone());
        if let Some(addrs) = fresh {
            return Ok(addrs);
        }
        let addrs = match key.parse::<SocketAddr>() {
            // An address already: nothing to look up.
            Ok(addr) => {
                let mut addrs = self.empty();
                addrs.push(addr);
                addrs
            }
            Err(_) => self.inner.resolve(uri, config, timeout)?,
        };
        let mut known = self.lock();
        if known.len() >= MAX_HOSTS {
            known.retain(|_, (at, _)| at.elapsed() < TTL);
            if known.len() >= MAX_HOSTS {
                known.clear();
            }
        }
        known.insert(key, (Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

impl CachingResolver {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, ResolvedSocketAddrs)>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::Timeout;

    fn timeout() -> NextTimeout {
        NextTimeout {
            after: std::time::Duration::from_secs(5).into(),
            reason: Timeout::Resolve,
            per_read: None,
            per_write: None,
        }
    }

    #[test]
    fn a_host_is_looked_up_once_and_an_address_never() {
        let resolver = CachingResolver::default();
        let config = Config::default();
        let uri: Uri = "http://127.0.0.1:8080/x".parse().unwrap();
        let addrs = resolver.resolve(&uri, &config, timeout()).unwrap();
        assert_eq!(addrs.to_vec(), vec!["127.0.0.1:8080".parse().unwrap()]);

        let uri: Uri = "https://localhost/sms".parse().unwrap();
        let first = resolver.resolve(&uri, &config, timeout()).unwrap();
        assert!(first
            .iter()
            .all(|a| a.port() == 443 && a.ip().is_loopback()));
        let looked_up_at = resolver.lock()["localhost:443"].0;
        let again = resolver.resolve(&uri, &config, timeout()).unwrap();
        assert_eq!(again.to_vec(), first.to_vec());
        // Answered from memory: the entry was not renewed.
        assert_eq!(resolver.lock()["localhost:443"].0, looked_up_at);
        assert_eq!(resolver.lock().len(), 2);
    }
}
