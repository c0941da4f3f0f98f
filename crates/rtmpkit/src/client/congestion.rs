//! A push's send queue under a [`DropPolicy`]: writers put frames in it
//! and go on; the session task takes them out as the socket takes bytes.
//! The queue measures how much media time is not delivered yet (queued
//! here, or written and not acknowledged by the peer) and drops video as
//! the policy says, in OBS's order: new non-key frames (with their
//! dependents, up to the next keyframe) first, then the queued ones.
//!
//! Its lock is held for a few list operations and one `SIOCOUTQ`, never
//! across an await.

use super::options::DropPolicy;
use crate::driver::{IoCounters, SharedTcp};
use rtmpkit_proto::amf0::Amf0Object;
use rtmpkit_proto::media::{Media, MediaKind};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// How far behind a push is, as its [`DropPolicy`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum CongestionLevel {
    /// Below [`DropPolicy::warn_after`].
    #[default]
    Clear,
    /// Above [`DropPolicy::warn_after`]: time to lower the bitrate.
    Rising,
    /// Above [`DropPolicy::drop_inter_after`]: non-key video is dropped.
    DroppingInter,
    /// Above [`DropPolicy::purge_after`]: queued non-key video is dropped
    /// too.
    Purging,
}

/// A push's congestion, as [`PushSession::congestion`](super::PushSession::congestion)
/// reports it: sent whenever the level changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Congestion {
    /// The level now.
    pub level: CongestionLevel,
    /// Media time not delivered yet, in ms, when the level changed.
    pub queued_ms: u64,
}

/// What waits in the queue.
#[derive(Debug)]
pub(crate) enum Queued {
    Media(Media),
    Metadata(Amf0Object),
}

/// What became of a frame put in the queue.
pub(crate) enum Put {
    Queued,
    Dropped,
    /// The queue is full: the writer waits for room and tries again.
    Full(Queued),
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    /// Audio and video written to the socket: where each ends in the
    /// connection's byte count, and its timestamp.
    unacknowledged: VecDeque<(u64, u32)>,
    /// The connection's socket, to ask how much it has not delivered.
    socket: Option<SharedTcp>,
    /// The newest audio or video timestamp put in.
    newest: Option<u32>,
    /// Video is dropped up to the next keyframe.
    skip_to_key: bool,
    dropped_inter: u64,
    purged_inter: u64,
    level: CongestionLevel,
    /// (when, bytes delivered) every quarter second or so, over two
    /// seconds: the rate the link carries.
    samples: VecDeque<(Instant, u64)>,
}

/// How long the delivered rate is measured over.
const RATE_WINDOW: Duration = Duration::from_secs(2);

/// A push's send queue (see the module's documentation).
#[derive(Debug)]
pub(crate) struct SendQueue {
    policy: DropPolicy,
    state: Mutex<State>,
    io: Arc<IoCounters>,
    /// Raised when something was queued: the session task takes it.
    pub ready: Notify,
    /// Raised when the session task took something: a writer waiting for
    /// room tries again.
    pub room: Notify,
    congestion: watch::Sender<Congestion>,
}

/// Bytes of an item in the queue.
fn size(q: &Queued) -> usize {
    match q {
        Queued::Media(m) => m.payload.len() + 64,
        Queued::Metadata(_) => 256,
    }
}

/// Whether a message is non-key video: a frame that others may depend on
/// and that depends on the keyframe before it.
fn is_inter(m: &Media) -> bool {
    m.kind == MediaKind::Video && !m.keyframe && !m.sequence_header
}

impl SendQueue {
    pub fn new(policy: DropPolicy, io: Arc<IoCounters>) -> Self {
        SendQueue {
            policy,
            state: Mutex::default(),
            io,
            ready: Notify::new(),
            room: Notify::new(),
            congestion: watch::channel(Congestion::default()).0,
        }
    }

    /// Told when the level changes.
    pub fn subscribe(&self) -> watch::Receiver<Congestion> {
        self.congestion.subscribe()
    }

    /// Media time not delivered yet, in ms.
    pub fn queued_ms(&self) -> u64 {
        let mut st = crate::sync::lock(&self.state);
        self.measure(&mut st)
    }

    /// (non-key frames dropped as they came, queued ones purged).
    pub fn drops(&self) -> (u64, u64) {
        let st = crate::sync::lock(&self.state);
        (st.dropped_inter, st.purged_inter)
    }

    /// kbit/s delivered over the last two seconds.
    pub fn delivered_kbits(&self) -> u64 {
        let mut st = crate::sync::lock(&self.state);
        self.measure(&mut st);
        match (st.samples.front(), st.samples.back()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
                let secs = t1.duration_since(*t0).as_secs_f64();
                (b1.saturating_sub(*b0) as f64 * 8.0 / 1000.0 / secs) as u64
            }
            _ => 0,
        }
    }

    /// Whether anything waits for the session task.
    pub fn has_queued(&self) -> bool {
        !crate::sync::lock(&self.state).queue.is_empty()
    }

    /// From the oldest audio or video not delivered to the newest put in.
    fn measure(&self, st: &mut State) -> u64 {
        let written = self.io.written.load(Ordering::Relaxed);
        let pending = st.socket.as_ref().and_then(SharedTcp::unacknowledged);
        let delivered = written.saturating_sub(pending.unwrap_or(0));
        let now = Instant::now();
        if st
            .samples
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= RATE_WINDOW / 8)
        {
            st.samples.push_back((now, delivered));
            while st.samples.len() > 2 && now.duration_since(st.samples[1].0) >= RATE_WINDOW {
                st.samples.pop_front();
            }
        }
        while st
            .unacknowledged
            .front()
            .is_some_and(|&(end, _)| end <= delivered)
        {
            st.unacknowledged.pop_front();
        }
        let queued = st.queue.iter().find_map(|q| match q {
            Queued::Media(m) if m.kind != MediaKind::Metadata => Some(m.timestamp.0),
            _ => None,
        });
        let oldest = st.unacknowledged.front().map(|&(_, ts)| ts).or(queued);
        match (oldest, st.newest) {
            (Some(old), Some(new)) => {
                let d = new.wrapping_sub(old);
                // Timestamps are 32-bit ms and may wrap; a step back is 0.
                if d > u32::MAX / 2 { 0 } else { u64::from(d) }
            }
            _ => 0,
        }
    }

    /// Puts one item in, dropping as the policy says.
    pub fn put(&self, item: Queued) -> Put {
        let mut st = crate::sync::lock(&self.state);
        if st.queued_bytes >= self.policy.max_queued_bytes {
            return Put::Full(item);
        }
        if let Queued::Media(m) = &item
            && m.kind != MediaKind::Metadata
        {
            st.newest = Some(m.timestamp.0);
        }
        let queued = self.measure(&mut st);
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        let level = if queued > ms(self.policy.purge_after) {
            CongestionLevel::Purging
        } else if queued > ms(self.policy.drop_inter_after) {
            CongestionLevel::DroppingInter
        } else if queued > ms(self.policy.warn_after) {
            CongestionLevel::Rising
        } else {
            CongestionLevel::Clear
        };
        if level != st.level {
            st.level = level;
            self.congestion.send_replace(Congestion {
                level,
                queued_ms: queued,
            });
        }
        if let Queued::Media(m) = &item {
            if m.keyframe {
                st.skip_to_key = false;
            } else if is_inter(m) && (st.skip_to_key || level >= CongestionLevel::DroppingInter) {
                st.skip_to_key = true;
                st.dropped_inter += 1;
                return Put::Dropped;
            }
        }
        if level == CongestionLevel::Purging {
            let before = st.queue.len();
            st.queue
                .retain(|q| !matches!(q, Queued::Media(m) if is_inter(m)));
            let purged = before - st.queue.len();
            if purged > 0 {
                st.purged_inter += purged as u64;
                st.queued_bytes = st.queue.iter().map(size).sum();
                let key = matches!(&item, Queued::Media(m) if m.keyframe);
                st.skip_to_key |= !key;
            }
        }
        st.queued_bytes += size(&item);
        st.queue.push_back(item);
        drop(st);
        self.ready.notify_one();
        Put::Queued
    }

    /// Takes items for the session task: at least one, up to `bytes`.
    pub fn take(&self, bytes: usize, out: &mut Vec<Queued>) {
        let mut st = crate::sync::lock(&self.state);
        let mut taken = 0;
        while let Some(q) = st.queue.pop_front() {
            taken += size(&q);
            out.push(q);
            if taken >= bytes {
                break;
            }
        }
        st.queued_bytes = st.queued_bytes.saturating_sub(taken);
        drop(st);
        self.room.notify_waiters();
    }

    /// Items taken but not sent go back to the front, in order.
    pub fn put_back(&self, items: Vec<Queued>) {
        let mut st = crate::sync::lock(&self.state);
        for item in items.into_iter().rev() {
            st.queued_bytes += size(&item);
            st.queue.push_front(item);
        }
    }

    /// An item was written to the connection: it ends at byte `end` of
    /// the connection's count.
    pub fn written(&self, m: &Media, end: u64) {
        if m.kind != MediaKind::Metadata {
            crate::sync::lock(&self.state)
                .unacknowledged
                .push_back((end, m.timestamp.0));
        }
    }

    /// A new connection (`Some`), or none: what the last one had not
    /// delivered is gone with it.
    pub fn connected(&self, socket: Option<SharedTcp>) {
        let mut st = crate::sync::lock(&self.state);
        st.unacknowledged.clear();
        st.socket = socket;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rtmpkit_proto::Timestamp;

    fn video(ts: u32, key: bool) -> Queued {
        let b0 = if key { 0x17 } else { 0x27 };
        Queued::Media(Media::video(
            Timestamp(ts),
            Bytes::from(vec![b0, 1, 0, 0, 0, 9]),
        ))
    }

    fn audio(ts: u32) -> Queued {
        Queued::Media(Media::audio(
            Timestamp(ts),
            Bytes::from_static(&[0xaf, 1, 7]),
        ))
    }

    fn queued_kinds(q: &SendQueue) -> Vec<(u32, bool)> {
        let st = crate::sync::lock(&q.state);
        st.queue
            .iter()
            .filter_map(|i| match i {
                Queued::Media(m) if m.kind == MediaKind::Video => Some((m.timestamp.0, m.keyframe)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn inter_frames_go_first_then_the_queued_ones_and_keyframes_and_audio_stay() {
        let io = Arc::new(IoCounters::default());
        let q = SendQueue::new(DropPolicy::default(), io.clone());
        let mut levels = q.subscribe();
        assert!(matches!(q.put(video(0, true)), Put::Queued));
        for ts in (40..=680).step_by(40) {
            assert!(matches!(q.put(video(ts, false)), Put::Queued), "{ts}");
            assert!(matches!(q.put(audio(ts)), Put::Queued));
        }
        assert_eq!(q.queued_ms(), 680);
        assert_eq!(levels.borrow_and_update().level, CongestionLevel::Rising);
        // Past 700 ms: the next inter frame and those after it are dropped,
        // audio is not.
        assert!(matches!(q.put(video(720, false)), Put::Dropped));
        assert_eq!(
            levels.borrow_and_update().level,
            CongestionLevel::DroppingInter
        );
        assert!(matches!(q.put(audio(720)), Put::Queued));
        assert!(matches!(q.put(video(760, false)), Put::Dropped));
        // Past 900 ms the queued inter frames go too; the keyframe stays.
        assert!(matches!(q.put(audio(920)), Put::Queued));
        assert_eq!(levels.borrow_and_update().level, CongestionLevel::Purging);
        assert_eq!(queued_kinds(&q), [(0, true)]);
        assert!(matches!(q.put(video(1000, true)), Put::Queued));
        assert_eq!(q.drops(), (2, 17));
        // The session task sends it all and the server acknowledges it.
        let mut taken = Vec::new();
        while q.has_queued() {
            q.take(SEND_ALL, &mut taken);
        }
        for (i, item) in taken.iter().enumerate() {
            if let Queued::Media(m) = item {
                q.written(m, i as u64 + 1);
            }
        }
        io.written.store(taken.len() as u64, Ordering::Relaxed);
        assert!(matches!(q.put(video(1040, false)), Put::Queued));
        assert_eq!(q.queued_ms(), 0);
        assert_eq!(levels.borrow_and_update().level, CongestionLevel::Clear);
    }

    #[test]
    fn unacknowledged_media_counts_and_a_full_queue_makes_the_writer_wait() {
        let io = Arc::new(IoCounters::default());
        let policy = DropPolicy {
            max_queued_bytes: 200,
            ..DropPolicy::default()
        };
        let q = SendQueue::new(policy, io.clone());
        let mut taken = Vec::new();
        assert!(matches!(q.put(video(0, true)), Put::Queued));
        q.take(SEND_ALL, &mut taken);
        let Queued::Media(m) = &taken[0] else {
            panic!()
        };
        // Written up to byte 100.
        q.written(m, 100);
        io.written.store(100, Ordering::Relaxed);
        assert!(matches!(q.put(audio(300)), Put::Queued));
        // Without a socket everything written counts as delivered.
        assert_eq!(q.queued_ms(), 0);
        assert!(matches!(q.put(audio(320)), Put::Queued));
        assert!(matches!(q.put(audio(340)), Put::Queued));
        assert!(matches!(q.put(audio(360)), Put::Full(_)));
    }

    const SEND_ALL: usize = usize::MAX;
}
