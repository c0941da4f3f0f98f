//! A TCP socket shared by its connection's task and those that look at it
//! or write it from outside: the server's fan-out
//! ([`SharedTcp::try_write_vectored`]), the read grid's receive low-water
//! mark (`SO_RCVLOWAT`) and the kernel's round-trip estimate (`TCP_INFO`,
//! the sessions API), which no safe socket API offers. One descriptor for
//! all: clones share the socket, and it is closed when the last one goes.
//!
//! The connection reads and writes it as a [`Transport`](super::Transport)
//! (directly, or under TLS) through the runtime's readiness, exactly as it
//! would a `tokio::net::TcpStream` it owned.

use std::io::{IoSlice, Result};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP socket with shared ownership; it stays open while any clone
/// lives, so its descriptor never names another socket.
#[derive(Debug, Clone)]
pub(crate) struct SharedTcp(Arc<TcpStream>);

impl SharedTcp {
    /// Shares `socket`.
    pub(crate) fn new(socket: TcpStream) -> Self {
        SharedTcp(Arc::new(socket))
    }

    /// Writes what the socket takes now, without waiting: a full socket
    /// answers `WouldBlock`, and the runtime's readiness is cleared so that
    /// the connection's next write waits for the kernel's next edge.
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // the server's fan-out
    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    /// The socket itself, for tests that look at its readiness.
    #[cfg(test)]
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.0
    }

    pub(super) fn set_lowat(&self, bytes: i32) -> Result<()> {
        self.set_option(libc::SOL_SOCKET, libc::SO_RCVLOWAT, bytes)
    }

    /// Keeps at most `bytes` not yet sent in the kernel (`TCP_NOTSENT_LOWAT`):
    /// beyond that the socket is not writable, so what waits, waits where
    /// its owner can still drop it. Bytes sent and not yet acknowledged
    /// are not counted: the congestion window bounds those.
    pub(crate) fn set_notsent_lowat(&self, bytes: i32) -> Result<()> {
        /// linux/tcp.h; the libc crate does not name it.
        const TCP_NOTSENT_LOWAT: libc::c_int = 25;
        self.set_option(libc::IPPROTO_TCP, TCP_NOTSENT_LOWAT, bytes)
    }

    #[allow(unsafe_code)]
    fn set_option(&self, level: libc::c_int, name: libc::c_int, value: i32) -> Result<()> {
        // SAFETY: the descriptor is owned by `self`, so it is open for the
        // whole call; the value is a c_int that the kernel reads through a
        // pointer valid for the call, with its exact size.
        let r = unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                level,
                name,
                (&raw const value).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Bytes written to the socket that the peer has not acknowledged yet,
    /// sent or not (`SIOCOUTQ`).
    #[allow(unsafe_code)]
    pub(crate) fn unacknowledged(&self) -> Option<u64> {
        let mut bytes: libc::c_int = 0;
        // SAFETY: the descriptor is owned by `self`, so it is open for the
        // whole call; SIOCOUTQ (TIOCOUTQ on sockets) writes one c_int
        // through the pointer, which is valid for that write.
        let r = unsafe { libc::ioctl(self.0.as_raw_fd(), libc::TIOCOUTQ, &raw mut bytes) };
        (r == 0).then(|| u64::try_from(bytes).unwrap_or(0))
    }

    /// The kernel's smoothed round-trip time of the connection.
    #[allow(unsafe_code)]
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // the sessions API
    pub(crate) fn round_trip(&self) -> Option<Duration> {
        // SAFETY: all-zero bytes are a valid `tcp_info` (plain integers).
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: the descriptor is owned by `self`, so it is open for the
        // whole call; the kernel writes at most `len` bytes into `info`,
        // which is valid for writes of that size, and stores the length it
        // wrote in `len`.
        let r = unsafe {
            libc::getsockopt(
                self.0.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&raw mut info).cast(),
                &raw mut len,
            )
        };
        (r == 0 && info.tcpi_rtt > 0).then(|| Duration::from_micros(u64::from(info.tcpi_rtt)))
    }
}

// Each poll waits for the runtime's readiness, then tries the socket; a
// `WouldBlock` clears the readiness and the loop waits again, as the
// runtime's own `TcpStream` does.
impl AsyncRead for SharedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read_buf(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r.map(drop)),
            }
        }
    }
}

impl AsyncWrite for SharedTcp {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    #[allow(unsafe_code)]
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<()>> {
        // SAFETY: the descriptor is owned by the shared socket, which `self`
        // keeps open for the whole call; shutdown takes no pointers.
        let r = unsafe { libc::shutdown(self.0.as_raw_fd(), libc::SHUT_WR) };
        if r == 0 {
            Poll::Ready(Ok(()))
        } else {
            Poll::Ready(Err(std::io::Error::last_os_error()))
        }
    }
}
