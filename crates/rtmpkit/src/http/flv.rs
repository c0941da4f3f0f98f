//! HTTP-FLV: `GET /APP/STREAM.flv` answers with the live stream as one
//! FLV file of unknown length (chunked), read by flv.js / mpegts.js in a
//! page, by ffplay, VLC and ffmpeg. Each tag's payload is the publisher's
//! shared buffer: a batch of messages goes out as one HTTP chunk written
//! with one vectored write, without copying the media.

use crate::server::Player;
use bytes::{Buf, Bytes};
use futures_util::stream::{self, Stream};
use hyper::body::Frame;
use rtmpkit_proto::media::Media;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::IoSlice;

/// Bytes to send as one piece, made of several buffers (a vectored write).
#[derive(Debug, Default)]
pub struct Pieces {
    parts: VecDeque<Bytes>,
    len: usize,
}

impl Pieces {
    pub fn push(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.len += b.len();
            self.parts.push_back(b);
        }
    }
}

impl From<Bytes> for Pieces {
    fn from(b: Bytes) -> Self {
        let mut p = Pieces::default();
        p.push(b);
        p
    }
}

impl Buf for Pieces {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        self.parts.front().map_or(&[], |b| b.as_ref())
    }

    fn advance(&mut self, mut n: usize) {
        assert!(n <= self.len, "advance past the end");
        self.len -= n;
        while n > 0 {
            let front = self.parts.front_mut().expect("len counts the parts");
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.parts.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, part) in dst.iter_mut().zip(&self.parts) {
            *slot = IoSlice::new(part);
            n += 1;
        }
        n
    }
}

/// The FLV file header (audio and video) and PreviousTagSize0.
fn file_header() -> Bytes {
    let mut h = Vec::with_capacity(13);
    rtmpkit_proto::flv::write_header(true, true, &mut h);
    Bytes::from(h)
}

/// The previous tag's size (0 for the first tag) and this tag's header.
fn tag_header(prev: u32, m: &Media) -> Option<Bytes> {
    let size = u32::try_from(m.payload.len())
        .ok()
        .filter(|&s| s <= 0xFF_FFFF)?;
    let mut h = Vec::with_capacity(15);
    h.extend_from_slice(&prev.to_be_bytes());
    rtmpkit_proto::flv::write_tag_header(m.kind.type_id(), m.timestamp, size, &mut h);
    Some(Bytes::from(h))
}

struct State {
    player: Player,
    started: bool,
    /// Size of the last tag written (its PreviousTagSize is still owed).
    prev: Option<u32>,
    done: bool,
    batch: Vec<Media>,
}

/// The body: the FLV header, then what the player gets, a batch per
/// chunk, until the stream ends.
pub fn body(player: Player) -> impl Stream<Item = Result<Frame<Pieces>, Infallible>> + Send {
    let state = State {
        player,
        started: false,
        prev: None,
        done: false,
        batch: Vec::new(),
    };
    stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let mut out = Pieces::default();
        if !std::mem::replace(&mut st.started, true) {
            // The header goes out before the first media, so a reader
            // knows at once that the stream is there.
            return Some((Ok(Frame::data(Pieces::from(file_header()))), st));
        }
        let more = st.player.next(&mut st.batch).await;
        for m in st.batch.drain(..) {
            // The header's PreviousTagSize0 stands for the first tag's.
            let Some(h) = tag_header(st.prev.unwrap_or(0), &m) else {
                continue;
            };
            let h = if st.prev.is_none() { h.slice(4..) } else { h };
            st.prev = Some(m.payload.len() as u32 + 11);
            out.push(h);
            out.push(m.payload);
        }
        if !more {
            if let Some(prev) = st.prev {
                out.push(Bytes::copy_from_slice(&prev.to_be_bytes()));
            }
            st.done = true;
        }
        st.player.sent(bytes::Buf::remaining(&out));
        Some((Ok(Frame::data(out)), st))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_advance_across_parts() {
        let mut p = Pieces::default();
        p.push(Bytes::from_static(b"abc"));
        p.push(Bytes::new());
        p.push(Bytes::from_static(b"defg"));
        assert_eq!(p.remaining(), 7);
        p.advance(4);
        assert_eq!(p.chunk(), b"efg");
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(p.chunks_vectored(&mut slices), 1);
        p.advance(3);
        assert_eq!(p.remaining(), 0);
        assert!(p.chunk().is_empty());
    }
}
