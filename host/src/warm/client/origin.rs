//! One origin (scheme, host, port as a URL wrote them) and all that is
//! worked out once for it: the Host header, Basic credentials from the URL,
//! the TLS server name, where to connect (`--connect-to`), and its idle
//! connections; and its DNS answers, asked again after [`DNS_REFRESH`] so
//! a long run follows a CDN's rotation (CDN TTLs are often 20-300 s; the
//! system resolver behind `getaddrinfo` tells no TTL, so 60 s is the
//! floor the answers are kept, and a failed lookup keeps the last good
//! answer).

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;

use super::ClientConfig;
use super::target::{Authority, Target, join_host_port, route};
use super::tls;

/// Most connection attempts one thread has in progress to one origin.
const MAX_CONNECTING: usize = 512;
/// How long a DNS answer is used before the name is resolved again.
pub const DNS_REFRESH: Duration = Duration::from_secs(60);

/// The origin table of a client: each origin worked out once, keyed by the
/// URL's `scheme://authority` as written.
#[derive(Default)]
pub struct Origins(RefCell<std::collections::HashMap<Box<str>, std::rc::Rc<Origin>>>);

impl Origins {
    /// `target`'s origin, worked out now if it is new.
    pub fn get(&self, target: &Target<'_>, config: &ClientConfig) -> Result<std::rc::Rc<Origin>, String> {
        if let Some(o) = self.0.borrow().get(target.origin) {
            return Ok(o.clone());
        }
        let origin = std::rc::Rc::new(Origin::new(target, config)?);
        self.0.borrow_mut().insert(target.origin.into(), origin.clone());
        Ok(origin)
    }

    /// Every origin known so far.
    pub fn each(&self, mut f: impl FnMut(&Origin)) {
        for origin in self.0.borrow().values() {
            f(origin);
        }
    }
}

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
    dns: Dns,
    /// Connection attempts in progress at once, per thread: thousands of
    /// SYNs at once overflow a server's listen queue (Linux caps it at
    /// `net.core.somaxconn`, 4096 by default), and each dropped SYN costs
    /// a 1 s retransmit (RFC 6298 §2.1).
    connecting: tokio::sync::Semaphore,
    /// Idle plain-HTTP connections and since when, the most recent last.
    pub idle: RefCell<Vec<(TcpStream, Instant)>>,
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
            dns: Dns::default(),
            connecting: tokio::sync::Semaphore::new(MAX_CONNECTING),
            idle: RefCell::new(Vec::new()),
            tls: tls::Pool::default(),
        })
    }

    /// Close the connections unused for [`super::IDLE_TIMEOUT`].
    pub fn close_idle(&self, now: Instant) {
        self.idle.borrow_mut().retain(|(_, since)| now.duration_since(*since) < super::IDLE_TIMEOUT);
        self.tls.close_idle(now);
    }

    /// The most recently idled connection the server has not closed.
    pub fn take_idle(&self) -> Option<TcpStream> {
        let mut idle = self.idle.borrow_mut();
        let now = Instant::now();
        while let Some((stream, since)) = idle.pop() {
            if now.duration_since(since) >= super::IDLE_TIMEOUT {
                continue;
            }
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

    /// A new TCP connection: the origin's addresses tried in turn.
    pub async fn connect(&self) -> io::Result<TcpStream> {
        let addrs = self.dns.addrs(|| resolve(&self.connect.0, self.connect.1)).await?;
        let mut last = None;
        let _turn = self.connecting.acquire().await.map_err(io::Error::other)?;
        for addr in addrs.iter() {
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

/// An origin's DNS answer and when it is due again.
#[derive(Default)]
pub struct Dns {
    answer: RefCell<Option<(Rc<[SocketAddr]>, tokio::time::Instant)>>,
    /// Held while resolving, so a burst of connects asks once.
    resolving: tokio::sync::Mutex<()>,
}

impl Dns {
    /// The current answer: `lookup`'s, asked again once [`DNS_REFRESH`]
    /// has passed; when that lookup fails, the last good answer for
    /// another [`DNS_REFRESH`].
    pub async fn addrs<F, Fut>(&self, lookup: F) -> io::Result<Rc<[SocketAddr]>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = io::Result<Vec<SocketAddr>>>,
    {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let _one = self.resolving.lock().await;
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let due = tokio::time::Instant::now() + DNS_REFRESH;
        let answer = match (lookup().await, self.answer.borrow_mut().take()) {
            (Ok(addrs), _) => addrs.into(),
            (Err(e), Some((last, _))) => {
                tracing::debug!("DNS lookup failed, keeping the last answer: {e}");
                last
            }
            (Err(e), None) => return Err(e),
        };
        *self.answer.borrow_mut() = Some((Rc::clone(&answer), due));
        Ok(answer)
    }

    fn fresh(&self) -> Option<Rc<[SocketAddr]>> {
        let answer = self.answer.borrow();
        let (addrs, due) = answer.as_ref()?;
        (tokio::time::Instant::now() < *due).then(|| Rc::clone(addrs))
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Makes the held answer due now, as [`DNS_REFRESH`] passing would.
    fn expire(dns: &Dns) {
        dns.answer.borrow_mut().as_mut().unwrap().1 = tokio::time::Instant::now();
    }

    #[tokio::test]
    async fn dns_answers_are_asked_again_after_the_refresh_and_a_failure_keeps_the_last() {
        let dns = Dns::default();
        let answer: RefCell<io::Result<Vec<SocketAddr>>> = RefCell::new(Ok(vec!["127.0.0.1:80".parse().unwrap()]));
        let asked = std::cell::Cell::new(0);
        let lookup = || {
            asked.set(asked.get() + 1);
            let now = match &*answer.borrow() {
                Ok(a) => Ok(a.clone()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            async move { now }
        };
        let first = dns.addrs(lookup).await.unwrap();
        assert_eq!(first[0].to_string(), "127.0.0.1:80");
        let due = dns.answer.borrow().as_ref().unwrap().1;
        assert!(due - tokio::time::Instant::now() > DNS_REFRESH - Duration::from_secs(1));
        // The CDN moves the name; until the answer is due the old one stands.
        *answer.borrow_mut() = Ok(vec!["127.0.0.2:80".parse().unwrap()]);
        assert_eq!(dns.addrs(lookup).await.unwrap()[0].to_string(), "127.0.0.1:80");
        assert_eq!(asked.get(), 1);
        // Then new connections go to the new address.
        expire(&dns);
        assert_eq!(dns.addrs(lookup).await.unwrap()[0].to_string(), "127.0.0.2:80");
        assert_eq!(asked.get(), 2);
        // A failed lookup keeps the last good answer, for another refresh.
        *answer.borrow_mut() = Err(io::Error::new(io::ErrorKind::NotFound, "no such host"));
        expire(&dns);
        assert_eq!(dns.addrs(lookup).await.unwrap()[0].to_string(), "127.0.0.2:80");
        assert_eq!(dns.addrs(lookup).await.unwrap()[0].to_string(), "127.0.0.2:80");
        assert_eq!(asked.get(), 3);
        // With no answer ever, the failure is the caller's.
        let empty = Dns::default();
        assert!(empty.addrs(lookup).await.is_err());
    }
}
