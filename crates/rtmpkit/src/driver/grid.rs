//! Reading a steady sender in bunches: the read grid of a connection.
//!
//! A publisher of a small stream sends about 70 small messages a second.
//! Read as they come, each costs a wake-up of the runtime, a read and a
//! pass through the hub; yet the fan-out clock hands them to players only
//! once per period anyway. On a grid, a read that drains the socket is
//! followed by the next only at the next grid point, just before the clock
//! serves the stream: what arrives meanwhile waits in the kernel and comes
//! in one read. On plain TCP the socket's receive low-water mark is raised
//! while reads pause, so arriving bytes wake nobody either.

use super::SharedTcp;
use std::time::Duration;
use tokio::time::Instant;

/// The receive low-water mark while reads pause: arriving bytes wake
/// nobody until this many wait (a sender of more than this a period is
/// read early).
const PAUSED_LOWAT: i32 = 64 * 1024;

/// The largest read on a grid: a sender read in bunches keeps a small
/// buffer, and a read that fills it is followed by the next at once.
pub(super) const MAX_READ: usize = 8 * 1024;

/// A sender of more than this in one period is read whenever bytes arrive
/// (about 5 Mbit/s at 100 ms): its messages are large, so reads are few
/// anyway, and holding a period of it back would reach the players as a
/// burst their queues may not take.
const HEAVY_PERIOD_BYTES: usize = 64 * 1024;

/// A connection's read grid: its points, the pause after a read, and the
/// socket whose low-water mark follows the pause.
#[derive(Debug, Default)]
pub(super) struct ReadGrid {
    /// (anchor, period): the points `anchor + k * period`.
    points: Option<(Instant, Duration)>,
    /// No read before this.
    paused_until: Option<Instant>,
    gate: Option<SharedTcp>,
    /// Whether the low-water mark is raised now.
    raised: bool,
    /// Bytes read since the start of the current period (`window_from`).
    window_bytes: usize,
    window_from: Option<Instant>,
    /// Whether the last whole period brought more than
    /// [`HEAVY_PERIOD_BYTES`]: then reads do not pause.
    heavy: bool,
}

impl ReadGrid {
    /// Sets the points (`None`: read whenever bytes arrive).
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // the server's read turns
    pub fn set_points(&mut self, points: Option<(Instant, Duration)>) {
        self.points = points.filter(|(_, period)| !period.is_zero());
    }

    #[cfg_attr(not(feature = "server"), allow(dead_code))] // the server's read turns
    pub fn set_gate(&mut self, gate: SharedTcp) {
        self.gate = Some(gate);
    }

    /// Whether reads pause between points (a grid is set and the sender
    /// is not heavy).
    pub fn pauses_reads(&self) -> bool {
        self.points.is_some() && !self.heavy
    }

    /// Counts a read of `n` bytes at `now`; at each period's end the sender
    /// is found heavy or not.
    pub fn count(&mut self, now: Instant, n: usize) {
        let Some((_, period)) = self.points else {
            return;
        };
        match self.window_from {
            Some(from) if now < from + period => {}
            _ => {
                self.heavy = self.window_bytes > HEAVY_PERIOD_BYTES;
                self.window_bytes = 0;
                self.window_from = Some(now);
            }
        }
        self.window_bytes += n;
    }

    /// Whether reads pause now (until the next point).
    pub fn is_paused(&self) -> bool {
        self.paused_until.is_some()
    }

    /// After a read at `now` that drained the socket: pause until the next
    /// point.
    pub fn drained(&mut self, now: Instant) {
        let Some((anchor, period)) = self.points.filter(|_| !self.heavy) else {
            return;
        };
        self.paused_until = Some(next_point(now, anchor, period));
        if let Some(g) = &self.gate {
            self.raised = g.set_lowat(PAUSED_LOWAT).is_ok();
        }
    }

    /// Off for good (the connection closes): the mark goes back down, so
    /// that the last bytes can still be read.
    pub fn stop(&mut self) {
        self.points = None;
        self.paused_until = None;
        self.lower();
    }

    /// When reads may go on (`None`: now). A pause that is over ends here,
    /// and lowering the mark makes the kernel report what waits.
    pub fn resume_at(&mut self, now: Instant) -> Option<Instant> {
        let until = self.paused_until.filter(|t| *t > now);
        if until.is_none() {
            self.paused_until = None;
            self.lower();
        }
        until
    }

    /// Puts a raised low-water mark back down.
    fn lower(&mut self) {
        if std::mem::take(&mut self.raised)
            && let Some(g) = &self.gate
        {
            let _ = g.set_lowat(1);
        }
    }
}

/// The first `anchor + k * period` after `t` (k may be negative).
fn next_point(t: Instant, anchor: Instant, period: Duration) -> Instant {
    let step = period.as_nanos().max(1);
    if t < anchor {
        let before = (anchor - t).as_nanos() % step;
        return t + Duration::from_nanos(before as u64);
    }
    let since = (t - anchor).as_nanos();
    let next = (since / step + 1) * step;
    anchor + Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_point_of_a_read_grid() {
        let anchor = Instant::now();
        let p = Duration::from_millis(100);
        let ms = Duration::from_millis;
        assert_eq!(next_point(anchor, anchor, p), anchor + p);
        assert_eq!(next_point(anchor + ms(30), anchor, p), anchor + p);
        assert_eq!(next_point(anchor + ms(250), anchor, p), anchor + ms(300));
        // Before the anchor: the grid reaches back too.
        let later = anchor + ms(1000);
        assert_eq!(next_point(anchor + ms(30), later, p), anchor + p);
    }

    #[test]
    fn a_heavy_sender_is_read_as_bytes_come_until_it_is_light_again() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut grid = ReadGrid::default();
        grid.set_points(Some((t0, ms(100))));
        // A light period: reads pause.
        grid.count(t0, 8000);
        grid.drained(t0);
        assert!(grid.pauses_reads() && grid.is_paused());
        assert_eq!(grid.resume_at(t0 + ms(100)), None);
        // A turn that brings 250 KB: from the next period on, no pauses.
        for _ in 0..31 {
            grid.count(t0 + ms(100), 8192);
        }
        grid.count(t0 + ms(200), 8192);
        assert!(!grid.pauses_reads(), "heavy");
        grid.drained(t0 + ms(200));
        assert!(!grid.is_paused(), "a heavy sender's reads do not pause");
        // A quiet period makes it light again.
        grid.count(t0 + ms(300), 1000);
        assert!(grid.pauses_reads(), "light again");
    }

    #[tokio::test]
    async fn a_raised_mark_holds_bytes_back_and_lowering_it_reports_them() {
        use tokio::io::AsyncWriteExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let tx = tokio::net::TcpStream::connect(l.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (rx, _) = l.accept().await.expect("accept");
        let shared = SharedTcp::new(rx);
        let rx = shared.socket();
        // Open the receive window first: on loopback one segment can be as
        // large as a new connection's whole window, and a window that small
        // is reported readable whatever the mark.
        let pump = tokio::spawn(async move {
            let mut tx = tx;
            tx.write_all(&vec![1; 4 << 20]).await.map(|_| tx)
        });
        let mut sink = vec![0u8; 1 << 16];
        let mut got = 0;
        while got < 4 << 20 {
            rx.readable().await.expect("readable");
            match rx.try_read(&mut sink) {
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        let mut tx = pump.await.expect("join").expect("pump");
        // Read to WouldBlock, which clears the runtime's readiness.
        assert!(rx.try_read(&mut sink).is_err(), "all was read");
        let mut grid = ReadGrid::default();
        grid.set_gate(shared.clone());
        grid.set_points(Some((Instant::now(), Duration::from_millis(50))));
        grid.drained(Instant::now());
        assert!(grid.raised, "the mark is raised while paused");
        tx.write_all(&[7; 100]).await.expect("write");
        // 100 bytes wait below the mark: the socket does not report them.
        let early = tokio::time::timeout(Duration::from_millis(30), rx.readable()).await;
        assert!(early.is_err(), "readable while the mark was raised");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(grid.resume_at(Instant::now()), None, "the pause is over");
        tokio::time::timeout(Duration::from_millis(500), rx.readable())
            .await
            .expect("readable once the mark is lowered")
            .expect("readable");
        let mut buf = [0u8; 200];
        assert_eq!(rx.try_read(&mut buf).expect("read"), 100);
    }
}
