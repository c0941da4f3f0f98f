//! A duplicate of a TCP socket's descriptor, for what no safe socket API
//! offers: the receive low-water mark (`SO_RCVLOWAT`, the read grid's
//! pause) and the kernel's round-trip estimate (`TCP_INFO`, the sessions
//! API); and for writes from outside the connection's task (the server's
//! fan-out, [`TcpDup::try_write_vectored`]). Clones share one descriptor.

use std::io::{IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Duration;

/// A shared duplicate of a TCP socket's descriptor; it stays open while
/// any clone lives, so it never names another socket.
#[derive(Debug, Clone)]
pub(crate) struct TcpDup(Arc<std::net::TcpStream>);

impl TcpDup {
    /// A duplicate of `socket`'s descriptor.
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // the server's sockets
    pub(crate) fn new(socket: &tokio::net::TcpStream) -> std::io::Result<Self> {
        let fd = socket.as_fd().try_clone_to_owned()?;
        Ok(TcpDup(Arc::new(std::net::TcpStream::from(fd))))
    }

    /// Writes what the socket takes now, without waiting: the descriptor
    /// shares the runtime's non-blocking mode, so a full socket answers
    /// `WouldBlock`. The runtime's own readiness for the socket stays
    /// right: a write of the connection's task that finds the socket full
    /// waits for the kernel's next edge as usual.
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // the server's fan-out
    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }

    #[allow(unsafe_code)]
    pub(super) fn set_lowat(&self, bytes: i32) -> std::io::Result<()> {
        // SAFETY: the descriptor is owned by `self`, so it is open for the
        // whole call; the value is a c_int that the kernel reads through a
        // pointer valid for the call, with its exact size.
        let r = unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&raw const bytes).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
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
