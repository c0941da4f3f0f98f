//! `GET /metrics`: the server's counters in the Prometheus / OpenMetrics
//! text format, encoded by `prometheus-client` from one reading of the
//! server's state.

use crate::server::StatsHandle;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The content type of the text [`render`] returns.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels<const N: usize> = [(&'static str, String); N];

fn gauge(registry: &mut Registry, name: &str, help: &str, v: u64) {
    let g = Gauge::<i64>::default();
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, v: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(v);
    registry.register(name, help, c);
}

fn family<const N: usize, M>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels<N>, u64)>,
    set: impl Fn(&M, u64),
) where
    M: prometheus_client::encoding::EncodeMetric
        + prometheus_client::metrics::TypedMetric
        + std::fmt::Debug
        + Default
        + Clone
        + Send
        + Sync
        + 'static,
{
    let f = Family::<Labels<N>, M>::default();
    for (labels, v) in rows {
        set(&f.get_or_create(&labels), v);
    }
    registry.register(name, help, f);
}

fn set_gauge(g: &Gauge<i64>, v: u64) {
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
}

fn add_counter(c: &Counter<u64>, v: u64) {
    c.inc_by(v);
}

/// The server's metrics now, as OpenMetrics text.
pub fn render(stats: &StatsHandle) -> String {
    let m = stats.metrics();
    let streams = stats.streams();
    let mut r = Registry::with_prefix("rtmpkit");
    let setting_up = m.connections.saturating_sub(m.publishers + m.players);
    family(
        &mut r,
        "connections",
        "Accepted connections open now, by role (other: still setting up, or idle)",
        [
            ([("role", "publisher".to_owned())], m.publishers),
            ([("role", "player".to_owned())], m.players),
            ([("role", "other".to_owned())], setting_up),
        ],
        set_gauge,
    );
    gauge(
        &mut r,
        "streams",
        "Streams with a publisher or a player",
        streams.len() as u64,
    );
    gauge(
        &mut r,
        "streams_published",
        "Streams with a publisher (a local one, or a pull)",
        streams.iter().filter(|s| s.publishing).count() as u64,
    );
    family(
        &mut r,
        "stream_players",
        "Players of each stream (relay pushes included)",
        streams
            .iter()
            .map(|s| ([("stream", s.name.clone())], s.players as u64)),
        set_gauge,
    );
    family(
        &mut r,
        "stream_queued_bytes",
        "Bytes waiting in the players' queues of each stream",
        streams
            .iter()
            .map(|s| ([("stream", s.name.clone())], s.queued_bytes as u64)),
        set_gauge,
    );
    gauge(
        &mut r,
        "player_queue_bytes",
        "Bytes waiting in every player's queue",
        m.queued_bytes,
    );
    counter(
        &mut r,
        "received_bytes",
        "Bytes read from accepted connections",
        m.bytes_received,
    );
    counter(
        &mut r,
        "sent_bytes",
        "Bytes written to accepted connections",
        m.bytes_sent,
    );
    counter(
        &mut r,
        "dropped_messages",
        "Messages dropped for players that fell behind",
        m.dropped_messages,
    );
    family(
        &mut r,
        "failures",
        "Accept, TLS, handshake, connect, publish and play failures by cause",
        m.failures.iter().map(|f| {
            (
                [("stage", f.stage.to_owned()), ("cause", f.cause.to_owned())],
                f.count,
            )
        }),
        add_counter,
    );
    family(
        &mut r,
        "pulls",
        "Pulls started: relay (an edge's origin, or a hook's redirect), cluster (the owning node)",
        [
            ([("kind", "relay".to_owned())], m.relay_pulls),
            ([("kind", "cluster".to_owned())], m.cluster_pulls),
        ],
        add_counter,
    );
    family(
        &mut r,
        "reconnects",
        "takeover: a publisher replaced a silent one; pull: a pull found its source again; request: reconnect requests sent to clients",
        [
            ([("kind", "takeover".to_owned())], m.takeovers),
            ([("kind", "pull".to_owned())], m.pull_reconnects),
            ([("kind", "request".to_owned())], m.reconnect_requests),
        ],
        add_counter,
    );
    counter(
        &mut r,
        "kicks",
        "Sessions kicked by an operator (DELETE /api/v1/sessions/ID)",
        m.kicks,
    );
    gauge(
        &mut r,
        "recordings",
        "Recording files being written now",
        m.recordings,
    );
    counter(
        &mut r,
        "record_errors",
        "Recording writes or file creations that failed (the live stream went on)",
        m.record_errors,
    );
    counter(
        &mut r,
        "record_bytes",
        "Bytes written to recordings",
        m.record_bytes,
    );
    let mut text = String::new();
    // Writing into a String does not fail.
    let _ = encode(&mut text, &r);
    text
}
