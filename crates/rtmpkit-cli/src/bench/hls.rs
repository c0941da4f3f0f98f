//! `rtmpkit bench hls`: N LL-HLS viewers of one stream, each on one
//! keep-alive HTTP/1.1 connection, as hls.js in low-latency mode reads:
//! the playlist, then a blocking reload for the next part
//! (`_HLS_msn`/`_HLS_part`) and each new part. With a multivariant
//! playlist (a ladder), the viewers are spread over its variants, and each
//! also reads the default audio rendition, on a second connection, as
//! hls.js does.

use super::procstat::{TICKS_PER_SEC, proc_sample, report_tool_cpu};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Arguments of `rtmpkit bench hls`.
#[derive(Debug, clap::Args)]
pub struct HlsArgs {
    /// http://host:port/APP/STREAM/index.m3u8 (the server's --http-listen).
    url: String,
    /// Viewers.
    #[arg(short = 'n', long, default_value_t = 100)]
    viewers: usize,
    /// Seconds to measure, after every viewer has its first part.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Report this process's CPU time (the server's pid).
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Debug, Default)]
struct Counts {
    parts: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    started: AtomicU64,
}

pub async fn hls(a: HlsArgs) -> Result<()> {
    if a.duration.is_nan() || a.duration <= 0.0 || a.viewers == 0 {
        bail!("--duration and -n must be > 0");
    }
    let uri: hyper::Uri = a
        .url
        .parse()
        .with_context(|| format!("{}: not a URL", a.url))?;
    let base = a.url.rsplit_once('/').map_or("", |(b, _)| b).to_owned();
    let authority = uri.authority().context("the URL has no host")?.to_string();
    // The first viewer reads the top playlist: a ladder's variants, or
    // the one media playlist.
    let mut probe = connect(&authority).await?;
    let top = get(&mut probe, &authority, uri.path()).await?;
    let top = String::from_utf8_lossy(&top).into_owned();
    let lines: Vec<&str> = top.lines().collect();
    let variants: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("#EXT-X-STREAM-INF:"))
        .filter_map(|(i, _)| lines.get(i + 1).map(|u| format!("{base}/{u}")))
        .collect();
    let playlists = if variants.is_empty() {
        vec![a.url.clone()]
    } else {
        variants
    };
    let audio: Option<String> = lines
        .iter()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:") && l.contains("TYPE=AUDIO"))
        .find(|l| l.contains("DEFAULT=YES"))
        .and_then(|l| l.split("URI=\"").nth(1)?.split('"').next())
        .map(|u| format!("{base}/{u}"));
    eprintln!(
        "{} viewers over {} playlist(s): {}{}",
        a.viewers,
        playlists.len(),
        playlists.join(", "),
        audio
            .as_deref()
            .map_or(String::new(), |u| format!(", each with the audio {u}"))
    );
    let counts = Arc::new(Counts::default());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..a.viewers {
        let video = playlists[i % playlists.len()].clone();
        let reads = std::iter::once((video, true)).chain(audio.clone().map(|u| (u, false)));
        for (url, main) in reads {
            let (counts, authority) = (counts.clone(), authority.clone());
            tasks.spawn(async move {
                if let Err(e) = viewer(&authority, &url, &counts, main).await {
                    counts.errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("viewer: {e:#}");
                }
            });
        }
        // A gentle ramp: 50 viewers a second.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp = Instant::now();
    while (counts.started.load(Ordering::Relaxed) as usize) < a.viewers
        && ramp.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (parts0, bytes0) = (
        counts.parts.load(Ordering::Relaxed),
        counts.bytes.load(Ordering::Relaxed),
    );
    let server_before = a.server_pid.and_then(proc_sample);
    let self_before = proc_sample(std::process::id());
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(a.duration)).await;
    let secs = t0.elapsed().as_secs_f64();
    let server_after = a.server_pid.and_then(proc_sample);
    let self_after = proc_sample(std::process::id());
    tasks.abort_all();
    let parts = counts.parts.load(Ordering::Relaxed) - parts0;
    let mbps = (counts.bytes.load(Ordering::Relaxed) - bytes0) as f64 * 8.0 / secs / 1e6;
    let started = counts.started.load(Ordering::Relaxed);
    let errors = counts.errors.load(Ordering::Relaxed);
    println!(
        "bench hls: {started} of {} viewers, {:.1} parts/s per viewer, {mbps:.1} Mbit/s delivered, {errors} errors",
        a.viewers,
        parts as f64 / secs / a.viewers as f64
    );
    let mut result = format!(
        "RESULT hls viewers={} started={started} variants={} parts_per_s={:.1} mbps={mbps:.2} errors={errors}",
        a.viewers,
        playlists.len(),
        parts as f64 / secs
    );
    if let (Some(b), Some(e)) = (server_before, server_after) {
        let pct = (e.ticks() - b.ticks()) as f64 / TICKS_PER_SEC / secs * 100.0;
        println!("server: CPU {pct:.1}% of a core; RSS {} KiB", e.rss);
        result += &format!(" server_cpu_pct={pct:.1} server_rss_kib={}", e.rss);
    }
    report_tool_cpu(self_before, self_after, secs, &mut result);
    println!("{result}");
    Ok(())
}

async fn connect(authority: &str) -> Result<SendRequest<Empty<Bytes>>> {
    let sock = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connect {authority}"))?;
    let _ = sock.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(sock)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// GET `path` on the connection; the body (an error unless 200).
async fn get(c: &mut SendRequest<Empty<Bytes>>, authority: &str, path: &str) -> Result<Bytes> {
    c.ready().await?;
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .body(Empty::new())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), c.send_request(req))
        .await
        .context("no answer within 10 s")??;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("GET {path}: HTTP {status}");
    }
    Ok(body)
}

/// One viewer's reading of one media playlist: the playlist, then each
/// next part as it comes. `main`: its first part counts the viewer as
/// started (the audio rendition's does not).
async fn viewer(authority: &str, url: &str, counts: &Counts, main: bool) -> Result<()> {
    let uri: hyper::Uri = url.parse()?;
    let path = uri.path().to_owned();
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
    let mut c = connect(authority).await?;
    let mut playlist = get(&mut c, authority, &path).await?;
    let mut fetched: Option<(u64, u64)> = None;
    let mut first = true;
    loop {
        let text = String::from_utf8_lossy(&playlist).into_owned();
        let parts = listed_parts(&text);
        // Start at the newest part, as a low-latency player does.
        let new: Vec<&(u64, u64, String)> = match fetched {
            None => parts.last().into_iter().collect(),
            Some(at) => parts.iter().filter(|p| (p.0, p.1) > at).collect(),
        };
        for (msn, i, name) in new {
            let body = get(&mut c, authority, &format!("{dir}/{name}")).await?;
            counts.parts.fetch_add(1, Ordering::Relaxed);
            counts.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            fetched = Some((*msn, *i));
            if first && main {
                counts.started.fetch_add(1, Ordering::Relaxed);
            }
            first = false;
        }
        // Ask for the part after the last one had, blocking until it is.
        let (msn, part) = match fetched {
            Some((m, p)) => (m, p + 1),
            None => (0, 0),
        };
        // (The part after a segment's last is the next segment's first:
        // the server answers once that one is there.)
        playlist = get(
            &mut c,
            authority,
            &format!("{path}?_HLS_msn={msn}&_HLS_part={part}"),
        )
        .await?;
    }
}

/// The parts a media playlist lists: (segment, part, URI), in order.
fn listed_parts(text: &str) -> Vec<(u64, u64, String)> {
    let mut out = Vec::new();
    let mut msn = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let mut i = 0;
    for l in text.lines() {
        if let Some(attrs) = l.strip_prefix("#EXT-X-PART:") {
            if let Some(uri) = attrs.split(',').find_map(|kv| kv.strip_prefix("URI=")) {
                out.push((msn, i, uri.trim_matches('"').to_owned()));
            }
            i += 1;
        } else if !l.starts_with('#') && !l.trim().is_empty() {
            // A segment line closes the segment.
            msn += 1;
            i = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::listed_parts;

    #[test]
    fn parts_are_numbered_by_segment() {
        let p = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-PART:DURATION=0.5,URI=\"part4.0.m4s\",INDEPENDENT=YES\n\
                 #EXT-X-PART:DURATION=0.5,URI=\"part4.1.m4s\"\n#EXTINF:1.0,\nseg4.m4s\n\
                 #EXT-X-PART:DURATION=0.5,URI=\"v1-part5.0.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part5.1.m4s\"\n";
        let got = listed_parts(p);
        let want = [
            (4, 0, "part4.0.m4s"),
            (4, 1, "part4.1.m4s"),
            (5, 0, "v1-part5.0.m4s"),
        ];
        assert_eq!(got.len(), 3);
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0, g.1, g.2.as_str()), w);
        }
    }
}
