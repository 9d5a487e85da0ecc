//! A connection to a mail server for the line protocols IMAP and POP3: TCP with
//! timeouts, TLS from the start or after STARTTLS/STLS (rustls; the system's CAs plus
//! an optional `ca_file`), and bounded reads: a line, a literal or a whole exchange
//! can be only so long, and every read waits at most the timeout and never past the
//! session's deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

pub use crate::mail::server::Endpoint;

/// Why talking to the server failed, as a sentence naming the server.
pub type WireError = String;

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// Between the two, while the handshake starts.
    Gone,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Gone => Ok(()),
        }
    }
}

/// An open connection.
pub struct Wire {
    reader: BufReader<Stream>,
    tcp: TcpStream,
    endpoint: Endpoint,
    deadline: Instant,
}

impl Wire {
    /// Connects; the whole session must end within `session` from now.
    pub fn connect(endpoint: &Endpoint, session: Duration) -> Result<Self, WireError> {
        let server = endpoint.server();
        let addrs: Vec<_> = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {server}: {e}"))?
            .collect();
        let mut last = format!("cannot connect to {server}: no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, endpoint.timeout) {
                Ok(tcp) => {
                    let clone = tcp
                        .try_clone()
                        .map_err(|e| format!("cannot use the connection to {server}: {e}"))?;
                    return Ok(Self {
                        reader: BufReader::new(Stream::Plain(tcp)),
                        tcp: clone,
                        endpoint: endpoint.clone(),
                        deadline: Instant::now() + session,
                    });
                }
                Err(e) => last = format!("cannot connect to {server}: {e}"),
            }
        }
        Err(last)
    }

    /// Starts TLS on the connection (at once for implicit TLS, or after the server
    /// agreed to STARTTLS/STLS). The certificate is checked against the host name.
    pub fn start_tls(&mut self) -> Result<(), WireError> {
        let server = self.endpoint.server();
        if !self.reader.buffer().is_empty() {
            return Err(format!(
                "{server} sent data before the TLS handshake (a STARTTLS injection?)"
            ));
        }
        let config = crate::tls::client_config(self.endpoint.ca_file.as_deref())?;
        let name = ServerName::try_from(self.endpoint.host.clone())
            .map_err(|e| format!("'{}' is not a host name for TLS: {e}", self.endpoint.host))?;
        let conn = ClientConnection::new(config, name)
            .map_err(|e| format!("cannot start TLS with {server}: {e}"))?;
        let Stream::Plain(tcp) = std::mem::replace(self.reader.get_mut(), Stream::Gone) else {
            return Err(format!("TLS is already on with {server}"));
        };
        let mut tls = StreamOwned::new(conn, tcp);
        self.arm()?;
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| format!("TLS handshake with {server} failed: {}", io_text(&e)))?;
        }
        *self.reader.get_mut() = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Sets the socket's timeouts for the next wait: the timeout, cut to the deadline.
    fn arm(&self) -> Result<(), WireError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "the session with {} took too long and was given up",
                self.endpoint.server()
            ));
        }
        let wait = Some(self.endpoint.timeout.min(left));
        self.tcp
            .set_read_timeout(wait)
            .and_then(|()| self.tcp.set_write_timeout(wait))
            .map_err(|e| format!("cannot set timeouts: {e}"))
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.arm()?;
        let stream = self.reader.get_mut();
        stream
            .write_all(bytes)
            .and_then(|()| stream.flush())
            .map_err(|e| self.failed("write to", &e))
    }

    /// One line, CRLF (or LF) included, of at most `max` bytes.
    pub fn line(&mut self, max: usize) -> Result<Vec<u8>, WireError> {
        let mut line = Vec::new();
        loop {
            self.arm()?;
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.failed("read from", &e)),
            };
            if available.is_empty() {
                return Err(format!("{} closed the connection", self.endpoint.server()));
            }
            let (take, done) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if line.len() + take > max {
                return Err(format!(
                    "{} sent a line longer than {max} bytes",
                    self.endpoint.server()
                ));
            }
            line.extend_from_slice(&available[..take]);
            self.reader.consume(take);
            if done {
                return Ok(line);
            }
        }
    }

    /// Exactly `n` bytes (an IMAP literal).
    pub fn exact(&mut self, n: usize) -> Result<Vec<u8>, WireError> {
        let mut bytes = vec![0; n];
        let mut got = 0;
        while got < n {
            self.arm()?;
            match self.reader.read(&mut bytes[got..]) {
                Ok(0) => return Err(format!("{} closed the connection", self.endpoint.server())),
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.failed("read from", &e)),
            }
        }
        Ok(bytes)
    }

    fn failed(&self, what: &str, e: &std::io::Error) -> WireError {
        format!("cannot {what} {}: {}", self.endpoint.server(), io_text(e))
    }
}

fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            "no answer in time (timed out)".to_owned()
        }
        _ => e.to_string(),
    }
}

/// A scripted server for the protocol clients' tests.
#[cfg(test)]
pub mod testing {
    use super::*;

    /// A server on a free port that sends `greeting`, then answers each command line
    /// with the next of `answers`; joined, it returns the lines it got.
    pub fn scripted(
        greeting: &'static str,
        answers: &'static [&'static str],
    ) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.write_all(format!("{greeting}\r\n").as_bytes())
                .unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut got = Vec::new();
            for answer in answers {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                got.push(line.trim_end().to_owned());
                if conn.write_all(answer.as_bytes()).is_err() {
                    break;
                }
            }
            got
        });
        (port, server)
    }

    /// A plain connection to `port` on 127.0.0.1.
    pub fn connect(port: u16) -> Wire {
        let endpoint = Endpoint {
            host: "127.0.0.1".into(),
            port,
            ca_file: None,
            timeout: Duration::from_secs(5),
        };
        Wire::connect(&endpoint, Duration::from_secs(30)).unwrap()
    }
}
