//! The one connection driver: a transport, one session of either side, and
//! the application's [`Handler`], in one task.
//!
//! Every connection of rtmpkit runs on it: the server's accepted
//! connections, `PushSession` / `PullSession`, the load tool's players and
//! the test helpers. It is quinn's `ConnectionDriver` shape over the
//! sans-IO core:
//! - reads go straight into the session's receive buffer
//!   ([`Session::recv_buffer`]): no copy between the socket and the chunk
//!   decoder;
//! - after each input the handler acts on the session's events;
//! - output is taken in batches of at most [`DriverOptions::max_batch`]
//!   bytes and written with vectored writes, chunk headers and slices of
//!   shared payloads side by side;
//! - the session's timers ([`Session::poll_timeout`]) and the handler's
//!   deadlines share one sleep;
//! - it ends with the handler's stop reason or a typed [`Error`].

mod grid;
mod shared_tcp;

use crate::error::{Error, Stage};
use bytes::Bytes;
use grid::ReadGrid;
use rtmpkit_proto::session::{
    ClientSession, ClientState, ServerSession, ServerState, Session, Side,
};
pub(crate) use shared_tcp::SharedTcp;
use std::future::Future;
use std::io::IoSlice;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// The longest [`Connection::run`] waits, after its last write, for the
/// peer to close its side too.
const LINGER: Duration = Duration::from_millis(500);

/// A byte stream a session runs over: TCP now, TLS next.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// Whether the driver goes on.
#[derive(Debug)]
pub enum Flow<R> {
    /// Keep driving.
    Continue,
    /// Stop with this reason; what is queued is still written (for up to a
    /// second), then the transport is shut down.
    Stop(R),
}

/// The application side of a connection.
pub trait Handler<T: Transport, S: Side>: Send {
    /// Something of the application's that needs the connection: a
    /// command, a queue that has data, a shutdown.
    type Signal: Send;
    /// Why the application stopped the connection.
    type Stop: Send;

    /// Waits for the next signal; cancelled (and called again) whenever
    /// input or a timer comes first, so it must be cancel-safe. By default
    /// there are none.
    fn signal(&mut self) -> impl Future<Output = Self::Signal> + Send {
        std::future::pending()
    }

    /// Acts on a signal.
    fn on_signal(
        &mut self,
        conn: &mut Connection<T, S>,
        signal: Self::Signal,
    ) -> impl Future<Output = Result<Flow<Self::Stop>, Error>> + Send {
        let _ = (conn, signal);
        async { Ok(Flow::Continue) }
    }

    /// Acts on the session's events after input (drain
    /// `conn.session_mut().poll_event()`).
    fn on_events(
        &mut self,
        conn: &mut Connection<T, S>,
    ) -> impl Future<Output = Result<Flow<Self::Stop>, Error>> + Send;

    /// Called before the driver writes the session's output (`idle`
    /// false), and when it is about to wait with nothing left to write
    /// (`idle` true); also before the last words when the connection
    /// ends. Other code may write to the transport only between an idle
    /// call and the next call (the server's fan-out does, and then says
    /// so with [`Session::written_elsewhere`]). By default nothing.
    fn on_output(&mut self, session: &mut Session<S>, idle: bool) {
        let _ = (session, idle);
    }

    /// The application's next deadline (a setup or idle timeout), if any.
    fn deadline(&self, conn: &Connection<T, S>) -> Option<Instant> {
        let _ = conn;
        None
    }

    /// Called when [`Handler::deadline`] has passed.
    fn on_deadline(&mut self, conn: &mut Connection<T, S>) -> Result<Flow<Self::Stop>, Error> {
        let _ = conn;
        Ok(Flow::Continue)
    }
}

/// How a [`Connection`] reads and writes.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Room made in the receive buffer before a read; it grows up to
    /// `max_read` while reads fill it.
    pub read_size: usize,
    /// Largest room made for one read.
    pub max_read: usize,
    /// Most bytes taken from the session for one batch of vectored writes.
    pub max_batch: usize,
    /// Longest one batch may take to write (None: no limit): a peer that
    /// takes nothing this long is stalled ([`Error::WriteStalled`]).
    pub write_timeout: Option<Duration>,
    /// Hold output until this many bytes are queued (0: write at once) ...
    pub write_buffer: usize,
    /// ... but no longer than this.
    pub max_write_delay: Duration,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            read_size: 64 * 1024,
            max_read: 64 * 1024,
            max_batch: 256 * 1024,
            write_timeout: None,
            write_buffer: 0,
            max_write_delay: Duration::from_millis(20),
        }
    }
}

/// Bytes moved by a connection, readable from any task.
#[derive(Debug, Default)]
pub struct IoCounters {
    /// Bytes read from the transport.
    pub read: AtomicU64,
    /// Bytes written to the transport.
    pub written: AtomicU64,
}

/// Which step a session is in, to name it in errors.
pub trait Staged {
    /// The step.
    fn stage(&self) -> Stage;
}

impl Staged for ClientSession {
    fn stage(&self) -> Stage {
        match self.state() {
            ClientState::ExpectHandshake => Stage::Handshake,
            ClientState::ExpectConnectResult => Stage::ConnectCommand,
            ClientState::ExpectCreateStreamResult => Stage::CreateStream,
            ClientState::ExpectStart => match self.config().mode {
                rtmpkit_proto::session::ClientMode::Publish => Stage::Publish,
                rtmpkit_proto::session::ClientMode::Play => Stage::Play,
            },
            ClientState::Started | ClientState::Idle | ClientState::Closed => Stage::Streaming,
        }
    }
}

impl Staged for ServerSession {
    fn stage(&self) -> Stage {
        match self.state() {
            ServerState::ExpectHandshake => Stage::Handshake,
            ServerState::ExpectConnect | ServerState::ExpectConnectDecision => {
                Stage::ConnectCommand
            }
            ServerState::Connected | ServerState::Closed => Stage::Streaming,
        }
    }
}

/// A transport and the session that runs over it.
#[derive(Debug)]
pub struct Connection<T, S: Side> {
    transport: T,
    session: Session<S>,
    peer: Arc<str>,
    opts: DriverOptions,
    read_room: usize,
    batch: Vec<Bytes>,
    counters: Arc<IoCounters>,
    last_input: Instant,
    /// Since when output has been held back for the write buffer.
    held_since: Option<Instant>,
    /// When reads pause; see [`Connection::set_read_grid`].
    grid: ReadGrid,
}

impl<T: Transport, S: Side> Connection<T, S>
where
    Session<S>: Staged,
{
    /// A connection; `peer` names the other end in errors.
    pub fn new(transport: T, session: Session<S>, peer: &str, opts: DriverOptions) -> Self {
        Connection {
            transport,
            session,
            peer: peer.into(),
            read_room: opts.read_size.max(64),
            opts,
            batch: Vec::new(),
            counters: Arc::default(),
            last_input: Instant::now(),
            held_since: None,
            grid: ReadGrid::default(),
        }
    }

    /// After a read that drains the socket, reads next at the first point
    /// `anchor + k * period` to come (`None`: whenever bytes arrive). What
    /// arrives in between waits in the kernel and comes in one read: for a
    /// steady sender of small messages (a publisher sends about 70 a
    /// second), several times fewer wake-ups and reads. The server puts the
    /// points on the stream's turn and serves the stream right after the
    /// read, so the messages wait in the kernel instead of in the stream's
    /// pending batch. A read that fills the buffer is followed by the next
    /// at once, so the grid never caps throughput.
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // the server's read turns
    pub(crate) fn set_read_grid(&mut self, grid: Option<(Instant, Duration)>) {
        self.grid.set_points(grid);
    }

    /// The TCP socket under the transport (a duplicate of its descriptor):
    /// while a read grid pauses reads, its receive low-water mark is raised
    /// so that arriving bytes do not wake the runtime for nothing.
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // the server's read turns
    pub(crate) fn with_read_gate(mut self, gate: SharedTcp) -> Self {
        self.grid.set_gate(gate);
        self
    }

    /// Counts bytes into `counters` (shared with handles in other tasks).
    pub fn with_counters(mut self, counters: Arc<IoCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// The session.
    pub fn session(&self) -> &Session<S> {
        &self.session
    }

    /// The session, to answer events or queue media.
    pub fn session_mut(&mut self) -> &mut Session<S> {
        &mut self.session
    }

    /// The other end, as named in errors.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// When bytes last arrived.
    pub fn last_input(&self) -> Instant {
        self.last_input
    }

    /// Writes everything the session has queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.held_since = None;
        loop {
            self.batch.clear();
            let n = self
                .session
                .poll_transmit(self.opts.max_batch, &mut self.batch);
            if n == 0 {
                self.batch.shrink_to(64);
                return Ok(());
            }
            let written = &self.counters.written;
            let write = write_all_vectored(&mut self.transport, &self.batch, written);
            match self.opts.write_timeout {
                Some(after) => {
                    tokio::time::timeout(after, write)
                        .await
                        .map_err(|_| Error::WriteStalled {
                            peer: self.peer.to_string(),
                            after,
                        })?
                }
                None => write.await,
            }
            .map_err(|e| Error::io(self.session.stage(), &self.peer, e))?;
        }
    }

    /// Writes what is queued unless the write buffer holds it back (less
    /// than [`DriverOptions::write_buffer`] bytes, for less than
    /// [`DriverOptions::max_write_delay`]).
    pub async fn write_due(&mut self) -> Result<(), Error> {
        let pending = self.session.pending_output();
        if pending == 0 {
            return Ok(());
        }
        if pending < self.opts.write_buffer {
            let since = *self.held_since.get_or_insert_with(Instant::now);
            if since.elapsed() < self.opts.max_write_delay {
                return Ok(());
            }
        }
        self.flush().await
    }

    /// Reads once into the session's buffer and handles what came.
    async fn read_input(&mut self) -> Result<(), Error> {
        let buf = self.session.recv_buffer();
        if buf.capacity() - buf.len() < self.read_room {
            buf.reserve(self.read_room);
        }
        let room = buf.capacity() - buf.len();
        let n = self
            .transport
            .read_buf(self.session.recv_buffer())
            .await
            .map_err(|e| Error::io(self.session.stage(), &self.peer, e))?;
        if n == 0 {
            return Err(Error::Closed {
                stage: self.session.stage(),
                peer: self.peer.to_string(),
            });
        }
        self.last_input = Instant::now();
        self.grid.count(self.last_input, n);
        let max_read = if self.grid.pauses_reads() {
            grid::MAX_READ
        } else {
            self.opts.max_read
        };
        // A busy sender (a publisher) is read more at a time, up to the
        // most its reads may take.
        let grown = if n == room {
            self.read_room * 2
        } else {
            self.read_room
        };
        self.read_room = grown.min(max_read);
        if n < room {
            self.grid.drained(self.last_input);
        }
        self.counters.read.fetch_add(n as u64, Ordering::Relaxed);
        // Named by the step it failed in, not the closed state after it.
        let stage = self.session.stage();
        self.session
            .handle_received(n, std::time::Instant::now())
            .map_err(|e| Error::from_core(stage, &self.peer, e))?;
        if self.grid.is_paused() && self.session.recv_buffer().is_empty() {
            // Nothing is read until the next grid point: the buffer is
            // not kept meanwhile.
            *self.session.recv_buffer() = bytes::BytesMut::new();
        }
        Ok(())
    }

    /// Drives the connection until the handler stops it or it fails; then
    /// writes what is left (for up to a second), shuts the transport, and
    /// reads until the peer closes its side too (a lingering close, for up
    /// to half a second).
    pub async fn run<H: Handler<T, S>>(&mut self, handler: &mut H) -> Result<H::Stop, Error> {
        let result = self.drive(handler).await;
        handler.on_output(&mut self.session, false);
        // The last words: a rejection, an end of stream, the status that
        // names a protocol error.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.flush()).await;
        let _ = tokio::time::timeout(Duration::from_millis(100), self.transport.shutdown()).await;
        self.grid.stop();
        let _ = tokio::time::timeout(LINGER, self.read_until_closed()).await;
        result
    }

    /// Reads and drops what the peer still sends, until it closes too (or
    /// fails). A socket closed with unread bytes in it sends a reset, not
    /// a FIN, and a reset can make the peer drop our last words unread.
    async fn read_until_closed(&mut self) {
        loop {
            let buf = self.session.recv_buffer();
            buf.clear();
            buf.reserve(4096);
            match self.transport.read_buf(buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Drives the connection until the handler stops it or it fails, and
    /// leaves the transport open: for a connection that is handed on, or
    /// deliberately left unread. Most callers want [`Connection::run`].
    pub async fn drive<H: Handler<T, S>>(&mut self, handler: &mut H) -> Result<H::Stop, Error> {
        // One timer for the connection's life, moved only when the next
        // deadline changes: a wake-up per message must not register a timer.
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        loop {
            if self.session.pending_output() > 0 {
                handler.on_output(&mut self.session, false);
            }
            self.write_due().await?;
            if self.session.pending_output() == 0 {
                handler.on_output(&mut self.session, true);
            }
            let session_due = self.session.poll_timeout().map(Instant::from_std);
            let app_due = handler.deadline(self);
            let flush_due = self.held_since.map(|t| t + self.opts.max_write_delay);
            let read_due = self.grid.resume_at(Instant::now());
            let wake = [session_due, app_due, flush_due, read_due]
                .into_iter()
                .flatten()
                .min();
            if let Some(t) = wake.filter(|t| armed != Some(*t)) {
                timer.as_mut().reset(t);
            }
            armed = wake;
            let flow = tokio::select! {
                r = self.read_input(), if read_due.is_none() => {
                    r?;
                    handler.on_events(self).await?
                }
                s = handler.signal() => handler.on_signal(self, s).await?,
                _ = &mut timer, if wake.is_some() => {
                    armed = None;
                    let now = Instant::now();
                    if session_due.is_some_and(|t| t <= now) {
                        self.session.handle_timeout(now.into_std());
                    }
                    if app_due.is_some_and(|t| t <= now) {
                        handler.on_deadline(self)?
                    } else {
                        Flow::Continue
                    }
                }
            };
            if let Flow::Stop(r) = flow {
                return Ok(r);
            }
        }
    }
}

/// Writes every piece in order with vectored writes, up to 64 slices a
/// call, counting each call's bytes into `written` as it returns (a push's
/// queue measure reads it while a batch is half written).
async fn write_all_vectored<T: AsyncWrite + Unpin>(
    w: &mut T,
    pieces: &[Bytes],
    written: &AtomicU64,
) -> std::io::Result<()> {
    let (mut idx, mut off) = (0usize, 0usize);
    let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(64.min(pieces.len()));
    while idx < pieces.len() {
        iov.clear();
        iov.push(IoSlice::new(&pieces[idx][off..]));
        iov.extend(pieces[idx + 1..].iter().take(63).map(|b| IoSlice::new(b)));
        let mut n = w.write_vectored(&iov).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        written.fetch_add(n as u64, Ordering::Relaxed);
        while n > 0 && idx < pieces.len() {
            let left = pieces[idx].len() - off;
            if n >= left {
                n -= left;
                idx += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
        while idx < pieces.len() && pieces[idx].len() == off {
            idx += 1;
            off = 0;
        }
    }
    // A TLS transport may hold the last records until flushed (a no-op
    // for a plain socket).
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn vectored_writes_keep_order_across_partial_writes() {
        // A 1-byte pipe forces a partial write on every call.
        let (mut a, mut b) = tokio::io::duplex(1);
        let pieces: Vec<Bytes> = (0..200u8)
            .map(|i| Bytes::from(vec![i; usize::from(i % 7)]))
            .collect();
        let expect: Vec<u8> = pieces.concat();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.map(|_| got)
        });
        let written = AtomicU64::new(0);
        write_all_vectored(&mut a, &pieces, &written)
            .await
            .expect("write");
        assert_eq!(written.load(Ordering::Relaxed), expect.len() as u64);
        drop(a);
        assert_eq!(reader.await.expect("join").expect("read"), expect);
    }
}
