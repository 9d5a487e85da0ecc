//! What the TLS clients share: an operator's CA file, read within bounds.

use std::io::Read;
use std::path::Path;

/// Largest `ca_file` read: a bundle of a few CAs is kilobytes.
const MAX_CA_FILE: u64 = 1024 * 1024;

/// The PEM text of `ca_file`: at most 1 MiB, holding at least one certificate.
pub fn read_ca_file(path: &Path) -> Result<Vec<u8>, String> {
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CA_FILE + 1).read_to_end(&mut pem))
        .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
    if pem.len() as u64 > MAX_CA_FILE {
        return Err(format!(
            "ca_file {} is larger than 1 MiB: not a CA bundle",
            path.display()
        ));
    }
    let marker = b"-----BEGIN CERTIFICATE-----";
    if !pem.windows(marker.len()).any(|w| w == marker) {
        return Err(format!(
            "ca_file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(pem)
}
