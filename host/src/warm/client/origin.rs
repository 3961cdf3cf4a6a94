//! One origin (scheme, host, port as a URL wrote them) and all that is
//! worked out once for it: the Host header, Basic credentials from the URL,
//! the TLS server name, where to connect (`--connect-to`), the DNS answers,
//! and its idle connections.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpStream;
use tokio::sync::OnceCell;
use tokio_rustls::rustls::pki_types::ServerName;

use super::ClientConfig;
use super::target::{Authority, Target, join_host_port, route};
use super::tls;

/// Most connection attempts one thread has in progress to one origin.
const MAX_CONNECTING: usize = 512;

pub struct Origin {
    pub https: bool,
    /// `host[:port]`, the port only when not the scheme's default
    /// (RFC 9110 §7.2); the host ASCII (IDNA) and lowercase.
    pub host_header: String,
    /// `Basic ...` from the URL's userinfo, as browsers and reqwest send it.
    pub authorization: Option<String>,
    pub server_name: Option<ServerName<'static>>,
    /// Where connections go: the URL's host and port, or a
    /// `--connect-to` route.
    connect: (String, u16),
    /// Whether `--connect-to` routed this origin (then exchanges name the
    /// edge address they reached).
    pub mapped: bool,
    addrs: OnceCell<Vec<SocketAddr>>,
    /// Connection attempts in progress at once, per thread: thousands of
    /// SYNs at once overflow a server's listen queue (Linux caps it at
    /// `net.core.somaxconn`, 4096 by default), and each dropped SYN costs
    /// a 1 s retransmit (RFC 6298 §2.1).
    connecting: tokio::sync::Semaphore,
    /// Idle plain-HTTP connections, the most recent last.
    pub idle: RefCell<Vec<TcpStream>>,
    pub tls: tls::Pool,
}

impl Origin {
    pub fn new(target: &Target<'_>, config: &ClientConfig) -> Result<Self, String> {
        let authority = Authority::parse(target.authority, target.https).map_err(|e| e.to_string())?;
        let host = ascii_host(authority.host)?;
        let default_port = if target.https { 443 } else { 80 };
        let host_header =
            if authority.port == default_port { bracket(&host) } else { join_host_port(&host, authority.port) };
        let authorization = authority.userinfo.map(basic);
        let server_name = match target.https {
            true => Some(ServerName::try_from(host.clone()).map_err(|_| format!("`{host}` is not a TLS server name"))?),
            false => None,
        };
        let mapped = route(&config.connect_to, &host, authority.port);
        Ok(Origin {
            https: target.https,
            host_header,
            authorization,
            server_name,
            mapped: mapped.is_some(),
            connect: mapped.unwrap_or((host, authority.port)),
            addrs: OnceCell::new(),
            connecting: tokio::sync::Semaphore::new(MAX_CONNECTING),
            idle: RefCell::new(Vec::new()),
            tls: tls::Pool::default(),
        })
    }

    /// The most recently idled connection the server has not closed.
    pub fn take_idle(&self) -> Option<TcpStream> {
        let mut idle = self.idle.borrow_mut();
        while let Some(stream) = idle.pop() {
            // An idle connection has nothing to read; a readable one was
            // closed (or is confused) and is dropped here rather than
            // failing a request.
            let mut probe = [0u8; 1];
            match stream.try_read(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(stream),
                _ => continue,
            }
        }
        None
    }

    /// A new TCP connection: the origin's addresses (resolved once) tried
    /// in turn.
    pub async fn connect(&self) -> io::Result<TcpStream> {
        let addrs = self.addrs.get_or_try_init(|| resolve(&self.connect.0, self.connect.1)).await?;
        let mut last = None;
        let _turn = self.connecting.acquire().await.map_err(io::Error::other)?;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Ok(stream);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for the host")))
    }
}

async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    match addrs.is_empty() {
        true => Err(io::Error::new(io::ErrorKind::NotFound, format!("no address for `{host}`"))),
        false => Ok(addrs),
    }
}

/// The host as it goes on the wire: lowercase ASCII, IDNA for a
/// non-ASCII name (done here, once per origin, by the URL parser).
pub fn ascii_host(host: &str) -> Result<String, String> {
    if host.is_ascii() {
        return Ok(host.to_ascii_lowercase());
    }
    let url = reqwest::Url::parse(&format!("http://{host}/")).map_err(|e| format!("bad host: {e}"))?;
    url.host_str().map(str::to_string).ok_or_else(|| "bad host".to_string())
}

fn bracket(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}

fn basic(userinfo: &str) -> String {
    use base64::Engine as _;
    let decoded = percent_encoding::percent_decode_str(userinfo).decode_utf8_lossy();
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(decoded.as_bytes()))
}
