//! `GET /stat`: the XML of nginx-rtmp's `rtmp_stat all`, with the same
//! elements and nesting (`rtmp/server/application/live/stream/...`), so
//! tools written for nginx-rtmp (NOALBS reads `bw_video` and
//! `meta/video`; exporters and dashboards) read rtmpkit unchanged. Rates
//! are bits per second and times milliseconds, as nginx-rtmp gives them.

use super::{Body, Page, full};
use crate::server::{SessionInfo, StreamStat};
use bytes::Bytes;
use hyper::Response;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use std::collections::BTreeMap;
use std::io;
use std::time::SystemTime;

type Xml = Writer<Vec<u8>>;

fn text(w: &mut Xml, name: &str, value: impl ToString) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(&value.to_string()))?;
    Ok(())
}

fn empty(w: &mut Xml, name: &str) -> io::Result<()> {
    w.create_element(name).write_empty()?;
    Ok(())
}

fn ms_since(t: SystemTime) -> u128 {
    SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

impl Page {
    /// `GET /stat`.
    pub(super) fn stat(&self) -> Response<Body> {
        let xml = self.stat_xml().unwrap_or_default();
        let mut resp = Response::new(full(Bytes::from(xml)));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/xml"));
        resp
    }

    fn stat_xml(&self) -> io::Result<Vec<u8>> {
        let m = self.stats.metrics();
        let streams = self.stats.streams();
        let sessions = self.sessions.list();
        let version = concat!("rtmpkit/", env!("CARGO_PKG_VERSION"));
        let mut w = Writer::new(Vec::new());
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
        let bw_in: u64 = streams.iter().map(|s| s.bits_per_second_10s).sum();
        let bw_out: u64 = streams
            .iter()
            .map(|s| s.bits_per_second_10s * s.players as u64)
            .sum();
        let mut apps: BTreeMap<&str, Vec<&StreamStat>> = BTreeMap::new();
        for s in &streams {
            let app = s.name.split_once('/').map_or("", |(a, _)| a);
            apps.entry(app).or_default().push(s);
        }
        w.create_element("rtmp").write_inner_content(|w| {
            text(w, "nginx_version", version)?;
            text(w, "nginx_rtmp_version", version)?;
            text(w, "built", version)?;
            text(w, "pid", std::process::id())?;
            text(w, "uptime", self.stats.uptime().as_secs())?;
            text(w, "naccepted", self.stats.accepted())?;
            text(w, "bw_in", bw_in)?;
            text(w, "bytes_in", m.bytes_received)?;
            text(w, "bw_out", bw_out)?;
            text(w, "bytes_out", m.bytes_sent)?;
            w.create_element("server").write_inner_content(|w| {
                for (app, list) in &apps {
                    w.create_element("application").write_inner_content(|w| {
                        text(w, "name", app)?;
                        w.create_element("live").write_inner_content(|w| {
                            let mut clients = 0;
                            for s in list {
                                clients += self.stream_xml(w, s, &sessions)?;
                            }
                            text(w, "nclients", clients)
                        })?;
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
        Ok(w.into_inner())
    }

    /// One `<stream>`; returns its client count.
    fn stream_xml(
        &self,
        w: &mut Xml,
        s: &StreamStat,
        sessions: &[SessionInfo],
    ) -> io::Result<usize> {
        let name = s.name.split_once('/').map_or(s.name.as_str(), |(_, n)| n);
        let mine: Vec<&SessionInfo> = sessions
            .iter()
            .filter(|x| x.stream.as_deref() == Some(s.name.as_str()))
            .collect();
        let (mut bytes_in, mut bytes_out) = (0, 0);
        for c in &mine {
            match c.role {
                Some("publisher") => bytes_in += c.bytes_in,
                _ => bytes_out += c.bytes_out,
            }
        }
        w.create_element("stream").write_inner_content(|w| {
            text(w, "name", name)?;
            text(w, "time", s.published_for.map_or(0, |d| d.as_millis()))?;
            text(w, "bw_in", s.bits_per_second_10s)?;
            text(w, "bytes_in", bytes_in)?;
            text(w, "bw_out", s.bits_per_second_10s * s.players as u64)?;
            text(w, "bytes_out", bytes_out)?;
            text(w, "bw_audio", s.audio_bits_per_second)?;
            text(w, "bw_video", s.video_bits_per_second)?;
            for c in &mine {
                w.create_element("client").write_inner_content(|w| {
                    text(w, "id", c.id)?;
                    text(
                        w,
                        "address",
                        c.peer.map(|p| p.ip().to_string()).unwrap_or_default(),
                    )?;
                    text(w, "time", ms_since(c.started))?;
                    text(w, "flashver", &c.flash_ver)?;
                    text(w, "dropped", c.dropped)?;
                    text(w, "avsync", 0)?;
                    text(w, "timestamp", s.last_timestamp)?;
                    if c.role == Some("publisher") {
                        empty(w, "publishing")?;
                    }
                    empty(w, "active")
                })?;
            }
            w.create_element("meta").write_inner_content(|w| {
                if let Some(v) = &s.video {
                    w.create_element("video").write_inner_content(|w| {
                        text(w, "width", v.width.unwrap_or(0))?;
                        text(w, "height", v.height.unwrap_or(0))?;
                        text(w, "frame_rate", s.frame_rate.unwrap_or(0))?;
                        text(w, "codec", nginx_codec(&v.codec))?;
                        if let Some(p) = &v.profile {
                            text(w, "profile", p)?;
                        }
                        if let Some(c) = v.compat {
                            text(w, "compat", c)?;
                        }
                        if let Some(l) = &v.level {
                            text(w, "level", l)?;
                        }
                        Ok(())
                    })?;
                }
                if let Some(a) = &s.audio {
                    w.create_element("audio").write_inner_content(|w| {
                        text(w, "codec", nginx_codec(&a.codec))?;
                        if let Some(p) = &a.profile {
                            text(w, "profile", p)?;
                        }
                        text(w, "channels", a.channels.unwrap_or(0))?;
                        text(w, "sample_rate", a.sample_rate.unwrap_or(0))
                    })?;
                }
                Ok(())
            })?;
            text(w, "nclients", mine.len())?;
            if s.publishing {
                empty(w, "publishing")?;
            }
            empty(w, "active")
        })?;
        Ok(mine.len())
    }
}

/// Codec names as nginx-rtmp writes them (`H264`, `AAC`); others in
/// upper case.
fn nginx_codec(name: &str) -> String {
    match name {
        "h264" => "H264".into(),
        "aac" => "AAC".into(),
        other => other.to_uppercase(),
    }
}
