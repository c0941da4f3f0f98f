//! The RTMP server: accept loop, stream hub with GOP cache, fan-out to
//! players with bounded queues, and relays (origin / edge).
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use rtmpkit::server::{Server, ServerOptions};
//! let server = Server::bind(ServerOptions::default()).await?;
//! println!("listening rtmp {:?}", server.local_addr());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod auth;
mod cluster;
mod connection;
mod context;
mod drain;
mod hub;
mod listen;
mod metrics;
mod player;
mod policy;
mod publication;
mod record;
mod relay;
mod reload;
mod rendition;
mod sessions;
mod signed;
mod stats;
mod subscription;

pub use auth::AuthOptions;
pub use cluster::ClusterOptions;
pub use drain::DrainHandle;
pub use metrics::{FailureCount, Metrics};
pub use player::{Player, PlayerInfo, Players};
pub use policy::{AccessRule, Action, AppPolicy, BadRule};
pub use record::{FlvFileWriter, RecordFormat, RecordOptions};
pub use reload::{ReloadReport, Reloader};
pub use sessions::{SessionInfo, SessionKind, SessionsHandle};
pub use signed::{sign_url, token as sign_token};
pub use stats::{
    AudioStat, ClusterView, PulledStream, StatsHandle, StreamStat, TrackStat, VideoStat,
};
pub use subscription::PlayRefused;

use crate::tls::ServerCertificate;
use cluster::Cluster;
use context::ServerContext;
use hub::{FlushClock, GopLimits, Hub, QueueLimits};
use listen::{ListenerChange, Listeners, bind};
use metrics::MetricCounters;
use policy::Policy;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::info;

/// Settings of a server. Every field has a working default.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where to listen for plain RTMP (default 0.0.0.0:1935); `None`: only TLS.
    pub listen: Option<SocketAddr>,
    /// Where to listen for RTMPS (default none); needs `tls_certificate`.
    pub tls_listen: Option<SocketAddr>,
    /// The certificate the RTMPS listener presents; keep a clone to
    /// [`reload`](ServerCertificate::reload) it.
    pub tls_certificate: Option<ServerCertificate>,
    /// Who may publish and play (default: anyone); with `apps`, only
    /// the defaults of [`app_defaults`](Self::app_defaults).
    pub auth: AuthOptions,
    /// Per-application policy, by application name, `"*"` for every
    /// other one (see [`AppPolicy`]). Empty (the default): every
    /// application is served under the top-level `auth`, `gop_cache`,
    /// `takeover_after` and `record`. Otherwise an application no entry
    /// covers is refused at `connect`.
    pub apps: BTreeMap<String, AppPolicy>,
    /// Our outgoing chunk size (default 4096).
    pub chunk_size: u32,
    /// Most connections at once; more are closed at accept (default 10000).
    pub max_connections: usize,
    /// Time for handshake + connect + publish / play (default 10 s).
    pub setup_timeout: Duration,
    /// A publisher that sends nothing this long is disconnected, and so is
    /// a connection that stopped publishing / playing and does nothing
    /// (default 30 s).
    pub idle_timeout: Duration,
    /// A publish for a stream whose publisher has sent nothing this long
    /// replaces that publisher (its encoder reconnected); players stay.
    /// `None`: a second publisher is always refused (default 3 s).
    pub takeover_after: Option<Duration>,
    /// A player whose socket takes no data this long is disconnected (default 10 s).
    pub stuck_timeout: Duration,
    /// Latency bound of fan-out coalescing: a stream's messages wait up to
    /// this long and reach each player as one batch, written in one
    /// vectored write (one wake-up and one write per player per period,
    /// whatever the message rate). Zero: each message is handed over at
    /// once (lowest latency, several times the CPU per delivered Gbit/s).
    /// The publisher of a small stream (up to 8 players) is read once per
    /// period too, on its stream's turn, and its players get what the read
    /// brought right away. Default 100 ms: see
    /// the README's coalescing and ingest tables.
    pub max_write_delay: Duration,
    /// Keep the last GOP so late joiners start on a keyframe at once (default on).
    pub gop_cache: bool,
    /// Longest GOP kept, in bytes (default 32 MiB).
    pub gop_cache_max_bytes: usize,
    /// A player queue above this many bytes drops video until a keyframe (default 4 MiB).
    pub player_queue_soft_bytes: usize,
    /// A player queue above this many bytes drops audio too (default 8 MiB).
    pub player_queue_hard_bytes: usize,
    /// Edge mode: a play request for a stream nobody publishes here pulls
    /// `ORIGIN/app/stream` from this origin (e.g. `rtmp://origin:1935`).
    pub relay_pull: Option<String>,
    /// Every published stream is also pushed to `URL/app/stream` for each of these.
    pub relay_push: Vec<String>,
    /// Record every published stream (see [`RecordOptions`]).
    pub record: Option<RecordOptions>,
    /// Cluster mode: share the stream directory with other nodes in Redis
    /// (default none).
    pub cluster: Option<ClusterOptions>,
}

impl ServerOptions {
    /// Checks what [`Server::bind`] would refuse without binding anything:
    /// the hook URLs (only `http://host[:port]/path`).
    pub fn validate(&self) -> std::io::Result<()> {
        self.policy().map(drop)
    }

    /// An application policy with the top-level settings: no access
    /// rules, no limits, HLS on, recording when the server records.
    pub fn app_defaults(&self) -> AppPolicy {
        AppPolicy {
            auth: self.auth.clone(),
            rules: Vec::new(),
            gop_cache: self.gop_cache,
            record: self.record.is_some(),
            hls: true,
            max_players: None,
            max_publishers: None,
            takeover_after: self.takeover_after,
        }
    }

    fn policy(&self) -> std::io::Result<Policy> {
        let record_hook = self.record.as_ref().and_then(|r| r.on_record_done.as_ref());
        Policy::new(&self.apps, self.app_defaults(), record_hook)
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            listen: Some(SocketAddr::from(([0, 0, 0, 0], 1935))),
            tls_listen: None,
            tls_certificate: None,
            auth: AuthOptions::default(),
            apps: BTreeMap::new(),
            chunk_size: 4096,
            max_connections: 10_000,
            setup_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            takeover_after: Some(Duration::from_secs(3)),
            max_write_delay: Duration::from_millis(100),
            stuck_timeout: Duration::from_secs(10),
            gop_cache: true,
            gop_cache_max_bytes: 32 << 20,
            player_queue_soft_bytes: 4 << 20,
            player_queue_hard_bytes: 8 << 20,
            relay_pull: None,
            relay_push: Vec::new(),
            record: None,
            cluster: None,
        }
    }
}

/// A bound server, ready to run.
#[derive(Debug)]
pub struct Server {
    listeners: Listeners,
    changes: mpsc::UnboundedReceiver<ListenerChange>,
    reloader: Reloader,
    context: Arc<ServerContext>,
    stop_tx: watch::Sender<bool>,
}

impl Server {
    /// Binds the listening sockets. Fails on a bad hook URL, a TLS
    /// listener without a certificate, or no listener at all.
    pub async fn bind(opts: ServerOptions) -> std::io::Result<Server> {
        let invalid =
            |msg: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, msg.to_owned());
        let policy = opts.policy()?;
        let listener = match opts.listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let tls = match (opts.tls_listen, &opts.tls_certificate) {
            (Some(addr), Some(_)) => Some(bind(addr).await?),
            (Some(_), None) => {
                return Err(invalid("an RTMPS listener needs a certificate and key"));
            }
            (None, _) => None,
        };
        if listener.is_none() && tls.is_none() {
            return Err(invalid(
                "nothing to listen on: give a plain or a TLS address",
            ));
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let hub = Hub::new(
            GopLimits {
                enabled: opts.gop_cache,
                max_bytes: opts.gop_cache_max_bytes,
                max_messages: 10_000,
            },
            QueueLimits {
                soft_bytes: opts.player_queue_soft_bytes,
                hard_bytes: opts
                    .player_queue_hard_bytes
                    .max(opts.player_queue_soft_bytes),
            },
        );
        let hub = match opts.max_write_delay {
            d if d.is_zero() => hub,
            d => hub.with_clock(Arc::new(FlushClock::new(d))),
        };
        let cluster = match &opts.cluster {
            Some(c) => Some(Arc::new(Cluster::new(c.clone(), opts.takeover_after)?)),
            None => None,
        };
        let context = Arc::new(ServerContext {
            hub,
            policy: Mutex::new(Arc::new(policy)),
            cluster,
            counters: MetricCounters::default(),
            next_id: AtomicU64::new(1),
            relay_pulls: Mutex::new(HashMap::new()),
            shutdown: stop_rx,
            drain: watch::Sender::new(None),
            recordings: Default::default(),
            renditions: Default::default(),
            sessions: Default::default(),
            started: std::time::Instant::now(),
            opts: opts.clone(),
        });
        let listeners = Listeners {
            plain: listener,
            tls,
            tls_config: opts.tls_certificate.as_ref().map(|c| c.server_config()),
        };
        let (changes_tx, changes) = mpsc::unbounded_channel();
        let reloader = Reloader {
            ctx: context.clone(),
            changes: changes_tx,
            current: Arc::new(tokio::sync::Mutex::new(opts)),
        };
        Ok(Server {
            listeners,
            changes,
            reloader,
            context,
            stop_tx,
        })
    }

    /// The plain RTMP address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .plain
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The RTMPS address actually bound.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .tls
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// A handle to read the server's streams while it runs.
    pub fn stats(&self) -> StatsHandle {
        StatsHandle(self.context.clone())
    }

    /// A handle to open players of other protocols (HTTP-FLV) while it runs.
    pub fn players(&self) -> Players {
        Players(self.context.clone())
    }

    /// A handle to move clients elsewhere while it runs.
    pub fn drainer(&self) -> DrainHandle {
        DrainHandle(self.context.clone())
    }

    /// Reloads the settings of the running server (see [`Reloader`]).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Lists and kicks sessions on the running server.
    pub fn sessions(&self) -> SessionsHandle {
        SessionsHandle(self.context.sessions.clone())
    }

    /// Serves until `shutdown` resolves; then players get end-of-stream,
    /// connections close, and this returns.
    ///
    /// Accepting runs as a task of the runtime, wherever this is awaited:
    /// a connection it spawns then starts on the same worker, without a
    /// cross-thread wake-up for every accepted socket.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let ctx = self.context;
        let stop_tx = self.stop_tx;
        if let Some(clock) = ctx.hub.clock() {
            let mut stop = ctx.shutdown.clone();
            tokio::spawn(clock.run(async move { crate::sync::raised(&mut stop).await }));
        }
        let cluster = ctx
            .cluster
            .clone()
            .map(|c| tokio::spawn(c.run(ctx.clone())));
        let (quit_tx, quit_rx) = tokio::sync::oneshot::channel();
        let acceptor = tokio::spawn(listen::accept_loop(
            self.listeners,
            self.changes,
            ctx.clone(),
            quit_rx,
        ));
        shutdown.await;
        let _ = quit_tx.send(());
        let mut tasks = acceptor.await.map_err(std::io::Error::other)?;
        info!("shutting down: ending {} connections", tasks.len());
        ctx.hub.end_all();
        let _ = stop_tx.send(true);
        ctx.sessions.shut_down();
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(3), drain)
            .await
            .is_err()
        {
            tasks.abort_all();
        }
        if let Some(cluster) = cluster {
            // It gives up this node's claims (bounded by Redis timeouts).
            let _ = tokio::time::timeout(Duration::from_secs(3), cluster).await;
        }
        Ok(())
    }
}
