//! The cluster over Redis (feature `cluster`).

use super::{Claim, ClusterOptions};
use crate::server::context::ServerContext;
use crate::sync::lock;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, info, warn};

/// Takes a claim: free, already ours, or left by a silent publisher
/// (no live key, and takeovers allowed). Returns "" when it is ours, or
/// the owner. KEYS: claim, live. ARGV: node, claim TTL ms, live TTL ms,
/// takeover allowed (1/0).
const CLAIM: &str = r"
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] or (ARGV[4] == '1' and redis.call('EXISTS', KEYS[2]) == 0) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
  return ''
end
return cur
";

/// Keeps a claim: made again if it expired (Redis restarted, or was away
/// longer than the TTL), extended if ours; the live key is set when the
/// publisher sends (ARGV[4] = 1). Returns "" or the node that took it.
const REFRESH: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  cur = ARGV[1]
end
if cur ~= ARGV[1] then return cur end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[4] == '1' then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3]) end
return ''
";

/// Drops a claim if it is still ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
end
return ''
";

/// One Redis request.
#[derive(Clone, Copy)]
enum Op<'a> {
    /// A script on the stream's two keys.
    Script(&'a Script),
    /// Who owns the stream.
    Get,
    /// Whether Redis answers (an idle node's health).
    Ping,
}

/// This node's part of the cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    opts: ClusterOptions,
    client: redis::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    /// Streams published here, claimed (or to claim) in Redis.
    owned: Mutex<HashSet<String>>,
    reachable: AtomicBool,
    /// TTL of the live key; `None`: a claim is never taken over.
    takeover_after: Option<Duration>,
    claim: Script,
    refresh: Script,
    release: Script,
}

/// Longest wait for one Redis round trip (or for connecting).
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// How often claims are refreshed and players' streams followed.
const TICK: Duration = Duration::from_secs(1);

fn claim_key(key: &str) -> String {
    format!("rtmpkit:stream:{key}")
}

fn live_key(key: &str) -> String {
    format!("rtmpkit:live:{key}")
}

fn millis(d: Duration) -> u64 {
    d.as_millis().max(1) as u64
}

impl Cluster {
    pub fn new(opts: ClusterOptions, takeover_after: Option<Duration>) -> std::io::Result<Self> {
        let client = redis::Client::open(opts.redis.as_str()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("cluster: bad Redis URL {:?}: {e}", opts.redis),
            )
        })?;
        Ok(Cluster {
            opts,
            client,
            conn: Mutex::new(None),
            owned: Mutex::new(HashSet::new()),
            reachable: AtomicBool::new(false),
            takeover_after,
            claim: Script::new(CLAIM),
            refresh: Script::new(REFRESH),
            release: Script::new(RELEASE),
        })
    }

    /// The settings.
    pub fn opts(&self) -> &ClusterOptions {
        &self.opts
    }

    /// Whether the last Redis round trip worked.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// The streams this node owns.
    pub fn owned(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.owned).iter().cloned().collect();
        v.sort();
        v
    }

    /// Runs one request with a bounded wait; an error drops the
    /// connection so that the next call dials again.
    async fn call(&self, op: Op<'_>, key: &str, args: &[String]) -> Option<String> {
        let attempt = async {
            // The lock is never held while dialing: a call that finds no
            // connection dials its own (a concurrent one may too; the
            // last to finish is kept).
            let held = lock(&self.conn).clone();
            let mut conn = match held {
                Some(c) => c,
                None => {
                    let cfg = AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(REDIS_TIMEOUT))
                        .set_response_timeout(Some(REDIS_TIMEOUT));
                    let c = self
                        .client
                        .get_multiplexed_async_connection_with_config(&cfg)
                        .await?;
                    *lock(&self.conn) = Some(c.clone());
                    c
                }
            };
            let reply: redis::RedisResult<Option<String>> = match op {
                Op::Script(s) => {
                    let mut inv = s.prepare_invoke();
                    inv.key(claim_key(key)).key(live_key(key));
                    for a in args {
                        inv.arg(a);
                    }
                    inv.invoke_async(&mut conn).await
                }
                Op::Get => {
                    redis::cmd("GET")
                        .arg(claim_key(key))
                        .query_async(&mut conn)
                        .await
                }
                Op::Ping => redis::cmd("PING").query_async(&mut conn).await,
            };
            if reply.is_err() {
                *lock(&self.conn) = None;
            }
            reply
        };
        let result = tokio::time::timeout(REDIS_TIMEOUT * 2, attempt).await;
        let reply = match result {
            Ok(Ok(v)) => Some(v.unwrap_or_default()),
            Ok(Err(e)) => {
                self.lost(&e.to_string());
                None
            }
            Err(_) => {
                *lock(&self.conn) = None;
                self.lost("no answer");
                None
            }
        };
        if reply.is_some() && !self.reachable.swap(true, Ordering::Relaxed) {
            info!("cluster: Redis at {} reachable", self.opts.redis);
        }
        reply
    }

    fn lost(&self, why: &str) {
        if self.reachable.swap(false, Ordering::Relaxed) {
            warn!(
                "cluster: Redis at {} unreachable ({why}); local publishing and playing go on, retrying",
                self.opts.redis
            );
        } else {
            debug!("cluster: Redis still unreachable: {why}");
        }
    }

    /// ARGV of the scripts: node, claim TTL, live TTL, `flag`.
    fn ttl_args(&self, flag: bool) -> [String; 4] {
        let live = self.takeover_after.unwrap_or(self.opts.claim_ttl);
        [
            self.opts.advertise.clone(),
            millis(self.opts.claim_ttl).to_string(),
            millis(live).to_string(),
            u8::from(flag).to_string(),
        ]
    }

    /// Claims `key` for a publisher that starts here.
    pub async fn claim(&self, key: &str) -> Claim {
        let args = self.ttl_args(self.takeover_after.is_some());
        match self.call(Op::Script(&self.claim), key, &args).await {
            Some(owner) if owner.is_empty() => Claim::Ours,
            Some(owner) => Claim::Elsewhere(owner),
            None => Claim::Unreachable,
        }
    }

    /// A publisher started here (claimed, or to be claimed once Redis is back).
    pub fn own(&self, key: &str) {
        lock(&self.owned).insert(key.to_owned());
    }

    /// The local publisher of `key` left: forget the claim.
    pub fn disown(self: &Arc<Self>, key: &str) {
        if lock(&self.owned).remove(key) {
            let (me, key) = (self.clone(), key.to_owned());
            tokio::spawn(async move {
                let args = me.ttl_args(false);
                me.call(Op::Script(&me.release), &key, &args).await;
            });
        }
    }

    /// The node that owns `key`, if Redis answers and one does.
    pub async fn owner(&self, key: &str) -> Option<String> {
        self.call(Op::Get, key, &[]).await.filter(|o| !o.is_empty())
    }

    /// Every second until shutdown: keeps the claims, gives up those a
    /// new publisher elsewhere took, and starts pulls for local players
    /// whose stream is published on another node.
    pub async fn run(self: Arc<Self>, ctx: Arc<ServerContext>) {
        let mut shutdown = ctx.shutdown.clone();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = crate::sync::raised(&mut shutdown) => break,
            }
            let owned = self.owned();
            if owned.is_empty() {
                // Nothing to refresh: still know whether Redis answers.
                self.call(Op::Ping, "", &[]).await;
            }
            for key in owned {
                let sending = ctx
                    .hub
                    .get(&key)
                    .and_then(|s| s.publisher_silence())
                    .is_some_and(|silent| silent < TICK * 3 / 2);
                let args = self.ttl_args(sending);
                match self.call(Op::Script(&self.refresh), &key, &args).await {
                    Some(other) if !other.is_empty() => {
                        info!(stream = %key, "cluster: the stream is published on {other} now; ending the silent local publisher");
                        lock(&self.owned).remove(&key);
                        ctx.hub.evict_publisher(&key);
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            // Players here whose stream nobody publishes here: pull it
            // from its owner (a pull already running follows by itself).
            for s in ctx.hub.list() {
                if s.players > 0 && !s.publishing {
                    ctx.pull_from_cluster(&s.name, "");
                }
            }
        }
        // Shutting down: the streams published here end now.
        for key in self.owned() {
            let args = self.ttl_args(false);
            self.call(Op::Script(&self.release), &key, &args).await;
        }
    }
}
