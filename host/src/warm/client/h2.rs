//! What the pool knows of one HTTP/2 connection while hyper's connection
//! task drives it: whether the server's first SETTINGS frame arrived (RFC
//! 9113 §3.4: the server's preface is a SETTINGS frame), the stream limit
//! it announced (SETTINGS_MAX_CONCURRENT_STREAMS, §6.5.2, as h2 applies
//! it), and whether the task ended. Requests wait for that first SETTINGS
//! before more than [`INITIAL_STREAMS`] open on a new connection, and a
//! connection whose limit is reached makes the pool open another.
//! A connection that stops answering is found by hyper's keep-alive PING
//! (no PING ACK within [`PING_TIMEOUT`] closes it).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Streams opened on a new connection before the server's SETTINGS says
/// how many it takes (h2's `initial_max_send_streams`; RFC 9113 §6.5.2
/// suggests no fewer than 100 for servers, but lighttpd announces 8 and
/// stalls a connection that opened more).
pub const INITIAL_STREAMS: usize = 8;
/// Most requests one connection carries at once, whatever the server
/// allows: staying under the usual caps (nginx's 128) keeps thousands of
/// requests in flight over a few connections, none queued inside h2
/// against the header timeout.
pub const STREAMS_PER_CONNECTION: usize = 100;
/// A PING goes out when nothing was read for this long while streams wait.
pub const PING_INTERVAL: Duration = Duration::from_secs(2);
/// No PING ACK within this long: the connection is dead, hyper closes it
/// and its unanswered streams are sent on another.
pub const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// Shared between the pool (the engine thread) and the connection task.
#[derive(Debug)]
pub struct Watch {
    /// The server's first frame (its SETTINGS) was read and applied.
    settled: AtomicBool,
    /// The server's stream limit as h2 applies it ([`INITIAL_STREAMS`]
    /// until its SETTINGS).
    max_streams: AtomicUsize,
    closed: AtomicBool,
    /// Woken when a waiting request may find room: SETTINGS arrived, a
    /// full connection freed a stream, a connection ended.
    pub room: Arc<Notify>,
}

impl Watch {
    pub fn new(room: Arc<Notify>) -> Self {
        Watch {
            settled: AtomicBool::new(false),
            max_streams: AtomicUsize::new(INITIAL_STREAMS),
            closed: AtomicBool::new(false),
            room,
        }
    }

    pub fn settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Requests this connection may carry at once now.
    pub fn limit(&self) -> usize {
        if self.settled() {
            self.max_streams.load(Ordering::Acquire).min(STREAMS_PER_CONNECTION)
        } else {
            INITIAL_STREAMS
        }
    }
}

/// The TLS stream as the connection reads it: notes when the server's
/// first frame has been read whole (its length is in the frame's first
/// three bytes, RFC 9113 §4.1).
pub struct Preface<S> {
    inner: S,
    /// Bytes of the server's first frame still to come; `None` until its
    /// length is known.
    left: Option<u64>,
    head: [u8; 3],
    seen: usize,
    /// Set once the first frame is in.
    read: Arc<AtomicBool>,
}

impl<S> Preface<S> {
    pub fn new(inner: S, read: Arc<AtomicBool>) -> Self {
        Preface { inner, left: None, head: [0; 3], seen: 0, read }
    }

    fn saw(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.left != Some(0) {
            match self.left {
                None => {
                    self.head[self.seen] = bytes[0];
                    self.seen += 1;
                    bytes = &bytes[1..];
                    if self.seen == 3 {
                        let len = u64::from(u32::from_be_bytes([0, self.head[0], self.head[1], self.head[2]]));
                        // The rest of the 9-byte frame header, then the payload.
                        self.left = Some(6 + len);
                    }
                }
                Some(left) => {
                    let take = left.min(bytes.len() as u64);
                    self.left = Some(left - take);
                    bytes = &bytes[take as usize..];
                }
            }
        }
        if self.left == Some(0) {
            self.read.store(true, Ordering::Release);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Preface<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.left != Some(0) && buf.filled().len() > before {
            let new = buf.filled()[before..].to_vec();
            self.saw(&new);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Preface<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Drive hyper's connection future, publishing after each poll what the
/// pool needs: h2 has applied a frame by the time the poll that read it
/// returns, so "first frame read" then means "SETTINGS applied".
pub async fn drive<C>(conn: C, watch: Arc<Watch>, preface_read: Arc<AtomicBool>, max_streams: impl Fn(&C) -> usize)
where
    C: Future,
{
    let mut conn = Box::pin(conn);
    std::future::poll_fn(|cx| {
        let polled = conn.as_mut().poll(cx);
        let settled = preface_read.load(Ordering::Acquire);
        let max = max_streams(conn.as_ref().get_ref());
        let was_settled = watch.settled.swap(settled, Ordering::AcqRel);
        let was_max = watch.max_streams.swap(max, Ordering::AcqRel);
        if settled != was_settled || (settled && max != was_max) {
            watch.room.notify_waiters();
        }
        polled.map(|_| ())
    })
    .await;
    watch.closed.store(true, Ordering::Release);
    watch.room.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_frame_is_read_whole_across_reads() {
        // A SETTINGS frame with two settings (12 bytes of payload), then more.
        let frame: Vec<u8> = [&[0, 0, 12, 4, 0, 0, 0, 0, 0][..], &[0; 12], &[0, 0, 0, 4, 1, 0, 0, 0, 0]].concat();
        for step in 1..frame.len() {
            let flag = Arc::new(AtomicBool::new(false));
            let mut p = Preface::new((), flag.clone());
            let mut fed = 0;
            for piece in frame.chunks(step) {
                assert_eq!(flag.load(Ordering::Acquire), fed >= 21, "step {step} after {fed}");
                p.saw(piece);
                fed += piece.len();
            }
            assert!(flag.load(Ordering::Acquire));
        }
    }
}
