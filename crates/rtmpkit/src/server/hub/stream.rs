//! One live stream: its publisher, what late joiners need (metadata,
//! sequence headers, the GOP), its players, and its fan-out, straight or
//! through the [`FlushClock`](super::FlushClock)'s turns.

use super::fanout::push_all;
use super::queue::{Batch, PlayerQueue};
use super::{FlushClock, GopLimits, StreamInfo, rate};
use crate::sync::lock;
use rtmpkit_proto::Timestamp;
use rtmpkit_proto::media::{Media, MediaKind};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The connection that publishes a stream.
#[derive(Debug)]
pub(super) struct Publisher {
    pub(super) conn: u64,
    /// Told when a new publisher takes the stream over.
    pub(super) replaced: Arc<Notify>,
}

/// Keeps the players' timestamps going forward when a new publisher takes
/// a stream over (its own timestamps start again near 0).
#[derive(Debug, Default)]
pub(super) struct Timeline {
    /// Added to every timestamp of the current publisher.
    pub(super) offset: u32,
    /// The latest timestamp the players got, and when.
    pub(super) last: Option<(u32, Instant)>,
    /// Set by a takeover: the next message sets `offset`.
    pub(super) rebase: bool,
}

impl Timeline {
    /// The timestamp players get for `ts`.
    pub(super) fn place(&mut self, ts: Timestamp, now: Instant) -> Timestamp {
        if self.rebase {
            self.rebase = false;
            // Continue where the players are, plus the time that passed.
            let next = match self.last {
                Some((last, at)) => {
                    let gap = now.duration_since(at).as_millis().min(1 << 30) as u32;
                    last.wrapping_add(gap.max(1))
                }
                None => ts.0,
            };
            self.offset = next.wrapping_sub(ts.0);
        }
        let placed = ts.0.wrapping_add(self.offset);
        // Audio and video interleave: remember the latest, in serial-number order.
        match self.last {
            Some((last, _)) if placed.wrapping_sub(last) > 1 << 31 => {}
            _ => self.last = Some((placed, now)),
        }
        Timestamp(placed)
    }
}

#[derive(Debug, Default)]
pub(super) struct StreamState {
    pub(super) publisher: Option<Publisher>,
    /// When the publisher last sent something (or started).
    pub(super) last_input: Option<Instant>,
    pub(super) timeline: Timeline,
    pub(super) metadata: Option<Media>,
    pub(super) video_seq: Option<Media>,
    pub(super) audio_seq: Option<Media>,
    /// Sequence headers of the extra tracks of a multitrack stream, one
    /// per (kind, track).
    pub(super) track_seqs: Vec<Media>,
    /// Messages since the last keyframe, the keyframe first.
    pub(super) gop: Vec<Media>,
    pub(super) gop_bytes: usize,
    /// The publisher's application keeps no GOP.
    pub(super) gop_off: bool,
    pub(super) players: HashMap<u64, Arc<PlayerQueue>>,
    /// Serial number of the next message published.
    pub(super) next_seq: u64,
    /// Messages waiting for the flush clock's tick (coalescing only).
    pub(super) pending: Vec<Media>,
    pub(super) pending_bytes: usize,
    /// The last batches made, until every phase group has had them.
    pub(super) recent: VecDeque<Arc<Batch>>,
    /// The players split into the clock's phase groups (coalescing only).
    pub(super) groups: Vec<Arc<[Arc<PlayerQueue>]>>,
    /// The flush clock visits this stream.
    pub(super) ticking: bool,
    /// Ticks since the last batch was made.
    pub(super) idle_ticks: u64,
    /// The players' queues as one list, rebuilt when a player joins or
    /// leaves, shared with fan-out by a reference count.
    pub(super) fanout: Arc<[Arc<PlayerQueue>]>,
    /// The publisher's bit rate; and over 10 s windows as nginx-rtmp's
    /// `/stat` gives it, all of it, its video and its audio.
    pub(super) rate: rate::Rate,
    pub(super) slow_rates: SlowRates,
    /// The latest media timestamp handed out (ms).
    pub(super) last_timestamp: u32,
    /// When the current publisher started.
    pub(super) published_at: Option<Instant>,
}

/// Rates over 10 s windows.
#[derive(Debug)]
pub(super) struct SlowRates {
    pub all: rate::Rate,
    pub video: rate::Rate,
    pub audio: rate::Rate,
    /// Each video track's, once the stream is multitrack (a ladder's
    /// rungs); empty for a one-track stream.
    pub video_tracks: Vec<(u8, rate::Rate)>,
}

/// Video tracks measured apart, at most.
const MEASURED_TRACKS: usize = 16;

impl SlowRates {
    fn add_video(&mut self, track: Option<u8>, bytes: usize, now: Instant) {
        self.video.add(bytes, now);
        if track.is_none() && self.video_tracks.is_empty() {
            return;
        }
        let id = track.unwrap_or(0);
        let known = self.video_tracks.iter().position(|(t, _)| *t == id);
        match known {
            Some(i) => self.video_tracks[i].1.add(bytes, now),
            None if self.video_tracks.len() < MEASURED_TRACKS => {
                let mut r = rate::Rate::over(std::time::Duration::from_secs(10));
                r.add(bytes, now);
                self.video_tracks.push((id, r));
            }
            None => {}
        }
    }
}

impl Default for SlowRates {
    fn default() -> Self {
        let ten = std::time::Duration::from_secs(10);
        SlowRates {
            all: rate::Rate::over(ten),
            video: rate::Rate::over(ten),
            audio: rate::Rate::over(ten),
            video_tracks: Vec::new(),
        }
    }
}

impl StreamState {
    /// The pending batch, if there is one.
    pub(super) fn take_pending(&mut self) -> Option<Arc<Batch>> {
        if self.pending.is_empty() {
            return None;
        }
        let media = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let first_seq = self.next_seq - media.len() as u64;
        Some(Arc::new(Batch::new(first_seq, media)))
    }

    pub(super) fn rebuild_fanout(&mut self, phases: u64) {
        self.fanout = self.players.values().cloned().collect();
        if phases > 1 {
            self.groups = (0..phases)
                .map(|g| {
                    self.players
                        .iter()
                        .filter(|(conn, _)| **conn % phases == g)
                        .map(|(_, q)| q.clone())
                        .collect()
                })
                .collect();
        }
    }

    /// Forgets what late joiners were given: a new publisher brings its own.
    /// The GOP's room goes too, since nobody may come to fill it.
    pub(super) fn clear_caches(&mut self) {
        self.metadata = None;
        self.video_seq = None;
        self.audio_seq = None;
        self.track_seqs.clear();
        self.gop = Vec::new();
        self.gop_bytes = 0;
    }
}

/// One live stream: `app/name`.
#[derive(Debug)]
pub(crate) struct Stream {
    pub key: String,
    pub(super) state: Mutex<StreamState>,
    pub(super) gop: GopLimits,
    pub(super) clock: Option<Arc<FlushClock>>,
    /// Held while a batch is handed out, so batches and notices keep
    /// their order (taken before the state lock, never after it).
    pub(super) fan_out: Mutex<()>,
    /// The flush clock's phase group this stream belongs to while it is
    /// small (see `clock.rs`).
    pub(super) phase: u64,
    /// Few players: the clock serves them all at once, once per period.
    pub(super) small: std::sync::atomic::AtomicBool,
}

impl Stream {
    /// Hands a message of publisher `conn` to the caches and every player;
    /// a publisher that was replaced reaches nobody.
    pub fn deliver(self: &Arc<Self>, conn: u64, mut frame: Media) {
        let now = Instant::now();
        let mut st = lock(&self.state);
        if st.publisher.as_ref().map(|p| p.conn) != Some(conn) {
            return;
        }
        st.last_input = Some(now);
        st.rate.add(frame.payload.len(), now);
        let n = frame.payload.len();
        let slow = &mut st.slow_rates;
        slow.all.add(n, now);
        match frame.kind {
            MediaKind::Video => slow.add_video(frame.track, n, now),
            MediaKind::Audio => slow.audio.add(n, now),
            MediaKind::Metadata => {}
        }
        frame.timestamp = st.timeline.place(frame.timestamp, now);
        st.last_timestamp = frame.timestamp.0;
        if frame.kind == MediaKind::Metadata {
            st.metadata = Some(frame.clone());
        } else if frame.sequence_header && frame.track.is_some() {
            let seqs = &mut st.track_seqs;
            match seqs
                .iter()
                .position(|m| m.kind == frame.kind && m.track == frame.track)
            {
                Some(i) => seqs[i] = frame.clone(),
                None if seqs.len() < 64 => seqs.push(frame.clone()),
                None => {}
            }
        } else if frame.sequence_header {
            if frame.kind == MediaKind::Video {
                st.video_seq = Some(frame.clone());
            } else {
                st.audio_seq = Some(frame.clone());
            }
        } else if self.gop.enabled && !st.gop_off {
            if frame.keyframe {
                st.gop.clear();
                st.gop_bytes = 0;
            }
            if frame.keyframe || !st.gop.is_empty() {
                if st.gop.len() >= self.gop.max_messages
                    || st.gop_bytes + frame.payload.len() > self.gop.max_bytes
                {
                    // A GOP too long to keep: late joiners wait for the next keyframe.
                    st.gop.clear();
                    st.gop_bytes = 0;
                } else {
                    st.gop_bytes += frame.payload.len();
                    st.gop.push(frame.clone());
                }
            }
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        if let Some(clock) = &self.clock {
            // Coalescing: the message waits for the tick in the pending batch.
            st.pending_bytes += frame.payload.len();
            st.pending.push(frame);
            let full = st.pending_bytes >= MAX_PENDING_BYTES;
            let start = !std::mem::replace(&mut st.ticking, true);
            drop(st);
            if full {
                // The clock is late: do not let the batch grow.
                self.settle(|_| ());
            }
            if start {
                clock.add(self.clone());
            }
            return;
        }
        // No coalescing: the message goes out alone, but still as a batch,
        // so that its chunks are encoded once for every player.
        let fanout = st.fanout.clone();
        drop(st);
        if fanout.is_empty() {
            return;
        }
        let batch = [Arc::new(Batch::new(seq, vec![frame]))];
        push_all(&fanout, &batch);
    }

    /// Phase groups of the flush clock (1 without coalescing).
    pub(super) fn phases(&self) -> u64 {
        self.clock.as_ref().map_or(1, |c| c.phases())
    }

    /// Number of players.
    pub fn player_count(&self) -> usize {
        lock(&self.state).players.len()
    }

    /// Its state now, for stats and metrics.
    pub(super) fn info(&self) -> StreamInfo {
        let now = Instant::now();
        let (
            publishing,
            queues,
            (video_seq, audio_seq, track_seqs),
            metadata,
            rates,
            per_track,
            at,
        ) = {
            let st = lock(&self.state);
            (
                st.publisher.is_some(),
                st.fanout.clone(),
                (
                    st.video_seq.clone(),
                    st.audio_seq.clone(),
                    st.track_seqs.clone(),
                ),
                st.metadata.clone(),
                [
                    st.rate.bits_per_second(now),
                    st.slow_rates.all.bits_per_second(now),
                    st.slow_rates.video.bits_per_second(now),
                    st.slow_rates.audio.bits_per_second(now),
                ],
                st.slow_rates
                    .video_tracks
                    .iter()
                    .map(|(t, r)| (*t, r.bits_per_second(now)))
                    .collect(),
                (st.last_timestamp, st.published_at),
            )
        };
        StreamInfo {
            name: self.key.clone(),
            publishing,
            players: queues.len(),
            queued_bytes: queues.iter().map(|q| q.queued_bytes()).sum(),
            dropped: queues.iter().map(|q| q.dropped()).sum(),
            video_seq,
            audio_seq,
            track_seqs,
            metadata,
            bits_per_second: rates[0],
            bits_per_second_10s: rates[1],
            video_bits_per_second: rates[2],
            audio_bits_per_second: rates[3],
            video_track_bits_per_second: per_track,
            last_timestamp: at.0,
            published_for: at.1.map(|t| now.duration_since(t)),
        }
    }

    /// The latest media timestamp handed out (ms).
    pub fn last_timestamp(&self) -> u32 {
        lock(&self.state).last_timestamp
    }

    /// The connection (or relay) that publishes it.
    pub fn publisher_conn(&self) -> Option<u64> {
        lock(&self.state).publisher.as_ref().map(|p| p.conn)
    }

    /// How long the publisher has sent nothing; `None` without one.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))] // used by cluster mode
    pub fn publisher_silence(&self) -> Option<Duration> {
        let st = lock(&self.state);
        st.publisher.as_ref()?;
        Some(st.last_input.map_or(Duration::MAX, |t| t.elapsed()))
    }

    /// Whether a publisher is on.
    pub fn has_publisher(&self) -> bool {
        lock(&self.state).publisher.is_some()
    }
}

/// Pending bytes that make a publisher fan its batch out without waiting
/// for the tick (the clock is late).
const MAX_PENDING_BYTES: usize = 4 << 20;

impl Stream {
    /// One tick: the pending messages become a batch, and phase group
    /// `k % phases` gets every recent batch it has not had. Returns
    /// whether the clock must come back (some group still lacks a batch).
    pub(super) fn on_tick(&self, k: u64, phases: u64) -> bool {
        if phases > 1 && self.small.load(Ordering::Relaxed) {
            if k % phases != self.phase % phases {
                return true;
            }
            return self.serve_whole(phases);
        }
        let _order = lock(&self.fan_out);
        let (batches, group) = {
            let mut st = lock(&self.state);
            match st.take_pending() {
                Some(b) => {
                    st.recent.push_back(b);
                    if st.recent.len() as u64 > phases {
                        st.recent.pop_front();
                    }
                    st.idle_ticks = 0;
                }
                None => st.idle_ticks += 1,
            }
            if st.idle_ticks >= phases {
                // Every group has had every batch.
                st.ticking = false;
                st.recent.clear();
                return false;
            }
            let group: Arc<[Arc<PlayerQueue>]> = if phases > 1 {
                // No groups yet while nobody has joined.
                match st.groups.get((k % phases) as usize) {
                    Some(g) => g.clone(),
                    None => return true,
                }
            } else {
                st.fanout.clone()
            };
            let batches: Vec<Arc<Batch>> = st.recent.iter().cloned().collect();
            (batches, group)
        };
        push_all(&group, &batches);
        true
    }

    /// A small stream's turn (once per period): what is pending, and any
    /// batch some group has not had, goes to every player. Returns whether
    /// the clock must come back.
    fn serve_whole(&self, phases: u64) -> bool {
        let _order = lock(&self.fan_out);
        let (batches, players) = {
            let mut st = lock(&self.state);
            match st.take_pending() {
                Some(b) => {
                    st.recent.push_back(b);
                    st.idle_ticks = 0;
                }
                // A whole period without input.
                None => st.idle_ticks += phases,
            }
            if st.recent.is_empty() {
                if st.idle_ticks >= phases {
                    st.ticking = false;
                    return false;
                }
                return true;
            }
            let batches: Vec<Arc<Batch>> = st.recent.drain(..).collect();
            (batches, st.fanout.clone())
        };
        push_all(&players, &batches);
        true
    }

    /// A small stream whose publisher was just read on its turn: what is
    /// pending goes to every player now (its tick would bring the same a
    /// moment later, with a wake-up of its own).
    pub(crate) fn serve_read(&self) {
        if !self.small.load(Ordering::Relaxed) {
            return;
        }
        let _order = lock(&self.fan_out);
        let (batches, players) = {
            let mut st = lock(&self.state);
            let Some(b) = st.take_pending() else {
                return;
            };
            st.recent.push_back(b);
            st.idle_ticks = 0;
            let batches: Vec<Arc<Batch>> = st.recent.drain(..).collect();
            (batches, st.fanout.clone())
        };
        push_all(&players, &batches);
    }

    /// Runs `f` (which pushes a notice to the players) after everything
    /// pending reached every player, so the notice keeps its place. Rare
    /// events only: the N queue locks are taken under the stream lock.
    pub(super) fn settle<R>(&self, f: impl FnOnce(&mut StreamState) -> R) -> R {
        let _order = lock(&self.fan_out);
        let mut st = lock(&self.state);
        if let Some(b) = st.take_pending() {
            st.recent.push_back(b);
        }
        let batches: Vec<Arc<Batch>> = st.recent.iter().cloned().collect();
        if !batches.is_empty() {
            push_all(&st.fanout, &batches);
            // Every player has them now.
            st.recent.clear();
        }
        f(&mut st)
    }
}
