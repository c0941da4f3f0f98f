//! One player's bounded queue between the stream and its connection task,
//! and when the task is woken for it.

use super::lock;
use rtmpkit_proto::media::{Media, MediaKind};
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Queued bytes that wake a player that is holding its writes back.
const WAKE_BYTES: usize = 64 * 1024;

/// What a message costs in a queue: its payload and bookkeeping.
fn cost(m: &Media) -> usize {
    m.payload.len() + 64
}

/// What a player's connection task sends.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    Media(Media),
    /// The publisher (re)appeared: StreamBegin + PublishNotify.
    StreamBegin,
    /// The publisher left: StreamEOF + UnpublishNotify.
    StreamEnd,
}

/// Limits of one player's queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    /// Above this many queued bytes, video is dropped until the next keyframe.
    pub soft_bytes: usize,
    /// Above this, audio is dropped too. Metadata, sequence headers and
    /// stream events are never dropped.
    pub hard_bytes: usize,
}

#[derive(Debug, Default)]
struct QueueState {
    items: VecDeque<Item>,
    bytes: usize,
    /// Dropping video until a keyframe finds room.
    skip_video: bool,
    dropped: u64,
    closed: bool,
}

/// A bounded queue between the stream and one player's connection task.
#[derive(Debug)]
pub(crate) struct PlayerQueue {
    state: Mutex<QueueState>,
    pub notify: Notify,
    limits: QueueLimits,
    /// A player that did not announce E-RTMP (no fourCcList, no
    /// multitrack in capsEx) gets track 0 only.
    track0_only: bool,
    /// Writes are coalesced: a queue that stops being empty is woken by
    /// the server's [flush clock](super::FlushClock), not at once.
    coalesce: bool,
}

/// Whether a push needs the player woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing new to do (dropped, or the player already has a wake-up coming).
    No,
    /// The player was woken.
    Woken,
    /// The queue stopped being empty: wake the player at the next tick.
    AtTick,
}

impl PlayerQueue {
    pub(super) fn new(limits: QueueLimits, track0_only: bool, coalesce: bool) -> Self {
        PlayerQueue {
            state: Mutex::new(QueueState::default()),
            notify: Notify::new(),
            limits,
            track0_only,
            coalesce,
        }
    }

    /// Queues an item, dropping media at the message level when the player
    /// falls behind: non-key video first (and then every video frame until a
    /// keyframe fits, so the decoder never sees a broken GOP), audio only
    /// past the hard limit.
    pub(super) fn push(&self, item: Item) -> Due {
        if let Item::Media(m) = &item
            && self.track0_only
            && m.track.is_some()
        {
            return Due::No;
        }
        let mut q = lock(&self.state);
        if q.closed {
            return Due::No;
        }
        let keep = match &item {
            Item::Media(f) if f.sequence_header || f.kind == MediaKind::Metadata => true,
            Item::Media(f) if f.kind == MediaKind::Video => {
                if q.skip_video && !(f.keyframe && q.bytes + cost(f) <= self.limits.soft_bytes) {
                    false
                } else if q.bytes + cost(f) > self.limits.soft_bytes {
                    q.skip_video = true;
                    false
                } else {
                    q.skip_video = false;
                    true
                }
            }
            Item::Media(f) => q.bytes + cost(f) <= self.limits.hard_bytes,
            Item::StreamBegin | Item::StreamEnd => true,
        };
        if !keep {
            q.dropped += 1;
            return Due::No;
        }
        let before = q.bytes;
        if let Item::Media(f) = &item {
            q.bytes += cost(f);
        }
        let notice = matches!(item, Item::StreamBegin | Item::StreamEnd);
        q.items.push_back(item);
        // Wake the player when its queue stops being empty (at the next
        // tick when coalescing), or grows past a batch, or a stream notice
        // comes: one wake-up per batch, not per message.
        let first = q.items.len() == 1;
        let batch = before < WAKE_BYTES && q.bytes >= WAKE_BYTES;
        drop(q);
        if batch || notice || (first && !self.coalesce) {
            self.notify.notify_one();
            Due::Woken
        } else if first {
            Due::AtTick
        } else {
            Due::No
        }
    }

    /// Wakes the player now (a join: its first frames must not wait).
    pub(super) fn wake(&self) {
        self.notify.notify_one();
    }

    /// Takes queued items, up to about `max_bytes` of payload.
    pub fn take(&self, max_bytes: usize, out: &mut Vec<Item>) {
        let mut q = lock(&self.state);
        // A join fills the queue with a whole GOP once; do not keep that
        // much room for every player afterwards.
        if q.items.capacity() > 32 && q.items.len() <= 16 {
            q.items.shrink_to(16);
        }
        let mut taken = 0;
        while let Some(item) = q.items.pop_front() {
            if let Item::Media(f) = &item {
                q.bytes -= cost(f);
                taken += cost(f);
            }
            out.push(item);
            if taken >= max_bytes {
                // More is left: make sure the task comes back for it.
                if !q.items.is_empty() {
                    self.notify.notify_one();
                }
                break;
            }
        }
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }

    /// Bytes waiting.
    #[cfg(test)]
    pub fn queued_bytes(&self) -> usize {
        lock(&self.state).bytes
    }

    pub(super) fn close(&self) {
        let mut q = lock(&self.state);
        q.closed = true;
        q.items.clear();
        q.bytes = 0;
    }

    /// Starts the player on a keyframe: video is skipped until one arrives.
    pub(super) fn wait_for_keyframe(&self) {
        lock(&self.state).skip_video = true;
    }
}
