//! STARTTLS to an XMPP server with certificates checked against the system roots plus
//! an operator's CA file: tokio-xmpp's own StartTLS connector trusts only the system
//! roots, so this one does the same steps through the crate's public stream API with
//! a TLS configuration of ours.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use sasl::common::ChannelBinding;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;
use tokio_xmpp::connect::{DnsConfig, ServerConnector};
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::xmlstream::{
    initiate_stream, PendingFeaturesRecv, ReadError, StreamHeader, Timeouts, XmppStream,
    XmppStreamElement,
};
use tokio_xmpp::Error;

/// Connects over TCP (SRV of the JID's domain, or the configured host and port) and
/// switches to TLS before anything else is said.
#[derive(Clone)]
pub struct StartTls {
    pub dns: DnsConfig,
    pub tls: Arc<ClientConfig>,
}

impl std::fmt::Debug for StartTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StartTls({:?})", self.dns)
    }
}

impl ServerConnector for StartTls {
    type Stream = BufStream<TlsStream<TcpStream>>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), Error> {
        let domain = jid.domain().as_str();
        let header = || StreamHeader {
            to: Some(Cow::Owned(domain.to_owned())),
            from: None,
            id: None,
        };
        let tcp = BufStream::new(self.dns.resolve().await?);
        let (features, mut plain): (_, XmppStream<_>) =
            initiate_stream(tcp, ns, header(), timeouts)
                .await?
                .recv_features()
                .await?;
        if !features.can_starttls() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the server does not offer STARTTLS: refusing to log in without TLS",
            )
            .into());
        }
        plain
            .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                starttls::Request,
            )))
            .await?;
        loop {
            match plain
                .next()
                .await
                .map(|v| v.and_then(|v| v.into_read_error()))
            {
                Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
                Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) => {}
                Some(Err(ReadError::HardError(e))) => return Err(e.into()),
                Some(Err(ReadError::ParseError(e))) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e).into())
                }
                None | Some(Err(ReadError::StreamFooterReceived)) => {
                    return Err(Error::Disconnected)
                }
            }
        }
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tcp = plain.into_inner().into_inner();
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(Error::Io)?;
        let stream = initiate_stream(BufStream::new(tls), ns, header(), timeouts).await?;
        Ok((stream, ChannelBinding::None))
    }
}
