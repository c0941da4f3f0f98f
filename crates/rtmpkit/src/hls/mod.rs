//! LL-HLS with fMP4 (CMAF), served by [`http`](crate::http):
//! `GET /APP/STREAM/index.m3u8` (with blocking reload, `_HLS_msn` /
//! `_HLS_part`), `init.mp4`, `segN.m4s` and `partN.I.m4s`.
//!
//! A stream published with several video tracks (E-RTMP multitrack, a
//! quality ladder) is served as adaptive bitrate: `index.m3u8` is then a
//! multivariant playlist with one variant per video track, whose media
//! playlist is `vT.m3u8` and whose files are `vT-init.mp4`, `vT-segN.m4s`
//! and `vT-partN.I.m4s`, and one audio rendition per audio track, `aT.m3u8`
//! and `aT-...` (see `hls/ladder.rs`).
//!
//! A stream is segmented only while somebody asks for it: the first
//! request starts a [`Player`](crate::server::Player) (the play
//! authorization applies), and segmenting stops 30 s after the last
//! request. Segments live in memory, a few per stream.

mod ladder;
mod segmenter;

use crate::server::{PlayerInfo, Players};
use crate::sync::lock;
use ladder::Ladder;
pub use segmenter::Limits;
use segmenter::Segmenter;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::info;

/// Segmenting stops this long after the last request.
const IDLE: Duration = Duration::from_secs(30);

/// Streams segmented at once, at most: each costs a player and its
/// segments, and a request for any name starts one (it waits for a
/// publisher that may never come), so a flood of made-up names is refused.
const MAX_STREAMS: usize = 1000;

/// What a request gets: content type and body, or a status and a reason.
#[derive(Debug)]
pub enum Answer {
    /// The content type and the body.
    Ok(&'static str, bytes::Bytes),
    /// An HTTP status and why.
    Err(u16, String),
}

/// One stream being segmented.
#[derive(Debug)]
struct Live {
    seg: Mutex<Ladder>,
    /// Bumped at every new part (blocking requests wait on it).
    version: watch::Sender<u64>,
    last_request: Mutex<Instant>,
    ended: std::sync::atomic::AtomicBool,
}

/// A stream's place in the map: empty while its first request waits for
/// the play authorization (a hook may take seconds), then the stream.
type Slot = Arc<tokio::sync::OnceCell<Arc<Live>>>;

/// Every stream served over HLS.
#[derive(Debug)]
pub struct Hls {
    players: Players,
    limits: Limits,
    /// Never held across an await: a request that waits for a hook waits
    /// on its stream's slot, and requests for other streams go on.
    streams: Mutex<HashMap<String, Slot>>,
}

impl Hls {
    pub fn new(players: Players, limits: Limits) -> Arc<Hls> {
        Arc::new(Hls {
            players,
            limits,
            streams: Mutex::new(HashMap::new()),
        })
    }

    /// The stream `app/name`, segmenting from now on if it was not.
    async fn live(
        self: &Arc<Self>,
        app: &str,
        name: &str,
        query: &str,
        who: PlayerInfo,
    ) -> Result<Arc<Live>, Answer> {
        let key = format!("{app}/{name}");
        let full = if query.is_empty() {
            name.to_owned()
        } else {
            format!("{name}?{query}")
        };
        let slot = {
            let mut streams = lock(&self.streams);
            match streams.get(&key) {
                Some(slot) => slot.clone(),
                None if streams.len() >= MAX_STREAMS => {
                    return Err(Answer::Err(
                        503,
                        format!("{MAX_STREAMS} streams are being segmented: try again later"),
                    ));
                }
                None => {
                    let slot = Slot::default();
                    streams.insert(key.clone(), slot.clone());
                    slot
                }
            }
        };
        if let Some(l) = slot.get() {
            // Every request shows its token (hooks were asked at the start).
            self.players
                .check_token(app, &full)
                .map_err(|e| Answer::Err(403, e.to_string()))?;
            *lock(&l.last_request) = Instant::now();
            return Ok(l.clone());
        }
        // The first request (or, after a refusal, the next) asks the play
        // authorization; others of the same stream wait for its answer.
        let started = slot
            .get_or_try_init(|| self.start(app, &full, who, &key, slot.clone()))
            .await;
        match started {
            Ok(l) => {
                *lock(&l.last_request) = Instant::now();
                Ok(l.clone())
            }
            Err(refused) => {
                let mut streams = lock(&self.streams);
                if streams
                    .get(&key)
                    .is_some_and(|s| Arc::ptr_eq(s, &slot) && s.get().is_none())
                {
                    streams.remove(&key);
                }
                Err(refused)
            }
        }
    }

    /// Starts segmenting `key` once its player is authorized.
    async fn start(
        self: &Arc<Self>,
        app: &str,
        full: &str,
        who: PlayerInfo,
        key: &str,
        slot: Slot,
    ) -> Result<Arc<Live>, Answer> {
        let mut player = self
            .players
            .play_every_track(app, full, who)
            .await
            .map_err(|e| Answer::Err(403, e.to_string()))?;
        let live = Arc::new(Live {
            seg: Mutex::new(Ladder::new(self.limits)),
            version: watch::Sender::new(0),
            last_request: Mutex::new(Instant::now()),
            ended: false.into(),
        });
        // A refusal of another request may have taken the slot out meanwhile.
        lock(&self.streams)
            .entry(key.to_owned())
            .or_insert_with(|| slot.clone());
        let (me, l, key) = (self.clone(), live.clone(), key.to_owned());
        info!(stream = %key, "hls: segmenting");
        tokio::spawn(async move {
            let mut batch = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                let more = tokio::select! {
                    more = player.next(&mut batch) => more,
                    _ = tick.tick() => {
                        if lock(&l.last_request).elapsed() > IDLE { break; }
                        continue;
                    }
                };
                {
                    let mut seg = lock(&l.seg);
                    for m in batch.drain(..) {
                        seg.push(&m);
                    }
                    if !more {
                        seg.finish();
                    }
                }
                l.version.send_modify(|v| *v += 1);
                if !more {
                    l.ended.store(true, std::sync::atomic::Ordering::Relaxed);
                    // Keep the last segments for late readers a while.
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    break;
                }
            }
            drop(player);
            let mut streams = lock(&me.streams);
            if streams.get(&key).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                streams.remove(&key);
            }
            drop(streams);
            info!(stream = %key, "hls: stopped segmenting");
        });
        Ok(live)
    }

    /// Answers `GET /APP/STREAM/FILE?query`.
    pub async fn answer(
        self: &Arc<Self>,
        app: &str,
        name: &str,
        file: &str,
        query: &str,
        who: PlayerInfo,
    ) -> Answer {
        if !self.players.serves_hls(app) {
            return Answer::Err(404, format!("application {app:?} does not serve HLS"));
        }
        let live = match self.live(app, name, query, who).await {
            Ok(l) => l,
            Err(a) => return a,
        };
        let arg = |k: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        let wait = Duration::from_millis(u64::from(self.limits.segment_ms) * 3);
        let ended = || live.ended.load(std::sync::atomic::Ordering::Relaxed);
        let (variant, file) = split_variant(file);
        let prefix = match variant {
            None => String::new(),
            Some(Rendition::Video(t)) => format!("v{t}-"),
            Some(Rendition::Audio(t)) => format!("a{t}-"),
        };
        let found = match file {
            "index.m3u8" => {
                // Blocking reload: hold until that part (or segment) exists.
                let (msn, part) = (arg("_HLS_msn"), arg("_HLS_part"));
                let multivariant = variant.is_none() && msn.is_none();
                wait_for(&live, wait, |l| {
                    let s = pick_segmenter(l, variant)?;
                    let ready = match msn {
                        None => s.init.is_some(),
                        Some(m) => has_part(s, m, part),
                    };
                    if !ready {
                        return None;
                    }
                    if multivariant && l.is_ladder() {
                        return multivariant_playlist(l);
                    }
                    Some(playlist(s, &self.limits, ended(), &prefix))
                })
                .await
                .map(|p| Answer::Ok("application/vnd.apple.mpegurl", p.into()))
            }
            "init.mp4" => wait_for(&live, wait, |l| pick_segmenter(l, variant)?.init.clone())
                .await
                .map(|b| Answer::Ok("video/mp4", b)),
            f => match parse_media_name(f) {
                Some((msn, None)) => wait_for(&live, wait, |l| {
                    pick_segmenter(l, variant)?
                        .segments
                        .iter()
                        .find(|x| x.msn == msn)
                        .and_then(|x| x.data.clone())
                })
                .await
                .map(|b| Answer::Ok("video/mp4", b)),
                Some((msn, Some(i))) => wait_for(&live, wait, |l| {
                    pick_segmenter(l, variant)?
                        .segments
                        .iter()
                        .find(|x| x.msn == msn)
                        .and_then(|x| x.parts.get(i as usize))
                        .map(|p| p.data.clone())
                })
                .await
                .map(|b| Answer::Ok("video/mp4", b)),
                None => return Answer::Err(404, format!("no {f}: try index.m3u8")),
            },
        };
        found.unwrap_or_else(|| Answer::Err(404, format!("{file} is not (or no longer) there")))
    }
}

/// A ladder's media playlist: a video variant or an audio rendition, by
/// track id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rendition {
    Video(u8),
    Audio(u8),
}

/// The segmenter a request is about: track 0's, or a ladder's rendition.
fn pick_segmenter(l: &Ladder, variant: Option<Rendition>) -> Option<&Segmenter> {
    match variant {
        None => Some(l.main()),
        Some(Rendition::Video(t)) => l.variant(t).map(|v| &v.seg),
        Some(Rendition::Audio(t)) => l.audio(t).map(|v| &v.seg),
    }
}

/// `vT.m3u8` -> (video T, "index.m3u8"); `vT-FILE` -> (video T, FILE);
/// the same with `a` for audio; anything else is track 0's.
fn split_variant(f: &str) -> (Option<Rendition>, &str) {
    let kind = match f.as_bytes().first() {
        Some(b'v') => Rendition::Video,
        Some(b'a') => Rendition::Audio,
        _ => return (None, f),
    };
    let rest = &f[1..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (n, tail) = rest.split_at(digits);
    match (n.parse::<u8>(), tail) {
        (Ok(t), ".m3u8") => (Some(kind(t)), "index.m3u8"),
        (Ok(t), tail) if tail.len() > 1 && tail.starts_with('-') => (Some(kind(t)), &tail[1..]),
        _ => (None, f),
    }
}

/// `segN.m4s` -> (N, None); `partN.I.m4s` -> (N, Some(I)).
fn parse_media_name(f: &str) -> Option<(u64, Option<u64>)> {
    let stem = f.strip_suffix(".m4s")?;
    if let Some(n) = stem.strip_prefix("seg") {
        return Some((n.parse().ok()?, None));
    }
    let (n, i) = stem.strip_prefix("part")?.split_once('.')?;
    Some((n.parse().ok()?, Some(i.parse().ok()?)))
}

/// Whether part `part` of segment `msn` exists (the whole segment
/// without `part`).
fn has_part(s: &Segmenter, msn: u64, part: Option<u64>) -> bool {
    s.segments.iter().any(|x| match part {
        None => x.msn >= msn && (x.msn > msn || x.data.is_some()),
        Some(p) => x.msn > msn || (x.msn == msn && x.parts.len() as u64 > p),
    })
}

/// Runs `f` on the stream's segmenters until it gives something or
/// `limit` passes.
async fn wait_for<T>(live: &Live, limit: Duration, f: impl Fn(&Ladder) -> Option<T>) -> Option<T> {
    let mut rx = live.version.subscribe();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f(&lock(&live.seg)) {
            return Some(v);
        }
        if live.ended.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            return None;
        }
    }
}

fn secs(ms: u32) -> String {
    format!("{:.3}", f64::from(ms) / 1000.0)
}

/// The LL-HLS media playlist (RFC 8216bis, version 9); `prefix` comes
/// before each file's name (a variant's `vT-`).
fn playlist(s: &Segmenter, limits: &Limits, ended: bool, prefix: &str) -> String {
    let mut p = String::new();
    let target = s.longest_ms.max(limits.segment_ms).div_ceil(1000);
    let part = limits.part_ms;
    let _ = writeln!(
        p,
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{target}"
    );
    let _ = writeln!(
        p,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}",
        secs(part * 3)
    );
    let _ = writeln!(p, "#EXT-X-PART-INF:PART-TARGET={}", secs(part));
    let first = s.segments.front().map_or(0, |x| x.msn);
    let _ = writeln!(
        p,
        "#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-MAP:URI=\"{prefix}init.mp4\""
    );
    for seg in &s.segments {
        if let (Some((wall, first)), Some(dts)) = (s.clock, seg.start_dts) {
            let at = wall + Duration::from_millis(u64::from(dts.wrapping_sub(first)));
            let _ = writeln!(
                p,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                humantime::format_rfc3339_millis(at)
            );
        }
        for (i, part) in seg.parts.iter().enumerate() {
            let _ = writeln!(
                p,
                "#EXT-X-PART:DURATION={},URI=\"{prefix}part{}.{i}.m4s\"{}",
                secs(part.duration_ms),
                seg.msn,
                if part.independent {
                    ",INDEPENDENT=YES"
                } else {
                    ""
                }
            );
        }
        if seg.data.is_some() {
            let _ = writeln!(
                p,
                "#EXTINF:{},\n{prefix}seg{}.m4s",
                secs(seg.duration_ms),
                seg.msn
            );
        } else if !ended {
            let _ = writeln!(
                p,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{prefix}part{}.{}.m4s\"",
                seg.msn,
                seg.parts.len()
            );
        }
    }
    if ended {
        p.push_str("#EXT-X-ENDLIST\n");
    }
    p
}

/// The multivariant playlist of a ladder (RFC 8216bis §4.4.6): the audio
/// renditions as one `EXT-X-MEDIA` group, then one `EXT-X-STREAM-INF` per
/// video track, with the bandwidth measured on its segments plus the
/// audio's, and its codecs and size from its sequence headers. `None`
/// until every rendition has started and has a part.
fn multivariant_playlist(l: &Ladder) -> Option<String> {
    let mut p = String::from("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let (mut audio_peak, mut audio_average) = (0, 0);
    let mut audio_codecs: Vec<String> = Vec::new();
    for (i, a) in l.audios.iter().enumerate() {
        let (peak, average) = a.bandwidth()?;
        audio_peak = audio_peak.max(peak);
        audio_average = audio_average.max(average);
        let track = a.seg.tracks.first()?;
        if let Some(c) = track.codec_string().filter(|c| !audio_codecs.contains(c)) {
            audio_codecs.push(c);
        }
        let default = if i == 0 { "YES" } else { "NO" };
        let _ = writeln!(
            p,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio {}\",DEFAULT={default},AUTOSELECT=YES,CHANNELS=\"{}\",URI=\"a{}.m3u8\"",
            a.track,
            track.channels.max(1),
            a.track
        );
    }
    for v in &l.variants {
        let (peak, average) = v.bandwidth()?;
        let codecs: Vec<String> = v
            .seg
            .tracks
            .iter()
            .filter_map(|t| t.codec_string())
            .chain(audio_codecs.iter().cloned())
            .collect();
        let _ = write!(
            p,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"",
            peak + audio_peak,
            average + audio_average,
            codecs.join(",")
        );
        if let Some(video) = v.seg.tracks.first().filter(|t| t.width > 0) {
            let _ = write!(p, ",RESOLUTION={}x{}", video.width, video.height);
        }
        if let Some(fps) = v.frame_rate() {
            let _ = write!(p, ",FRAME-RATE={fps:.3}");
        }
        if !l.audios.is_empty() {
            p.push_str(",AUDIO=\"audio\"");
        }
        let _ = writeln!(p, "\nv{}.m3u8", v.track);
    }
    Some(p)
}
