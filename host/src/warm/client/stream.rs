//! One request whose answer is handed back unread, for a caller that
//! streams it on (validate's loopback relay, [`crate::media::relay`]): a
//! fresh HTTP/1.1 connection through the origin's route (`--connect-to`,
//! DNS, TLS with `--ca-file`) and the same request head as the hot path.
//! No pooling: a relay asks a few times per object, not thousands.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;

use super::origin::Origins;
use super::target::Target;
use super::{ClientConfig, Job, io_error, other, request};
use crate::plugin::{Method, WarmRequest};
use crate::warm::http::TransportError;

/// Opens requests one connection each; one per thread (`!Send`).
pub struct Streamer {
    config: Arc<ClientConfig>,
    /// The run's TLS settings offering HTTP/1.1 only: the answer is read
    /// as one byte stream.
    tls: Arc<rustls::ClientConfig>,
    /// Routes and DNS answers, worked out once per origin.
    origins: Origins,
}

impl Streamer {
    pub fn new(config: Arc<ClientConfig>) -> Self {
        let mut tls = (*config.tls).clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Streamer { config, tls: Arc::new(tls), origins: Origins::default() }
    }

    /// Send `request` (an admitted URL) with `extra` headers and return the
    /// response with its body still to read.
    pub async fn open(
        &self,
        request: &WarmRequest,
        extra: &[(&str, &str)],
    ) -> Result<http::Response<Incoming>, TransportError> {
        let target = Target::split(&request.url).map_err(|e| other(e.to_string()))?;
        request::check_headers(request, extra)?;
        let origin = self.origins.get(&target, &self.config).map_err(other)?;
        let is_head = request.method == Method::Head;
        let resent = std::cell::Cell::new(0);
        let job = Job { origin: &origin, target, request, extra, is_head, limit: None, probe: false, resent: &resent };
        let outgoing = request::for_hyper(&job, &self.config.user_agent, false)?;
        let tcp = origin.connect().await.map_err(io_error)?;
        match &origin.server_name {
            None => send(tcp, outgoing).await,
            Some(name) => {
                let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
                let tls = connector.connect(name.clone(), tcp).await.map_err(io_error)?;
                send(tls, outgoing).await
            }
        }
    }
}

async fn send<T>(io: T, outgoing: http::Request<Empty<Bytes>>) -> Result<http::Response<Incoming>, TransportError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = http1::handshake(TokioIo::new(io)).await.map_err(super::tls::hyper_error)?;
    // The connection ends with the body, or when the caller drops it.
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    sender.send_request(outgoing).await.map_err(super::tls::hyper_error)
}
