//! `rtmpkit sessions URL`, `rtmpkit kick URL ID` and `rtmpkit reload URL`:
//! the operator API of a running `rtmpkit serve --http-listen` from the
//! command line. The token comes from `--token` or `$RTMPKIT_HTTP_TOKEN`.

use crate::units::human_bytes;
use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt, Empty};
use hyper::Method;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the API is and the token it wants.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The server's HTTP address: http://HOST:PORT (its --http-listen).
    url: String,
    /// Its --http-token [default: $RTMPKIT_HTTP_TOKEN].
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

/// Arguments of `rtmpkit sessions`.
#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Print the API's JSON as it is.
    #[arg(long)]
    json: bool,
}

/// Arguments of `rtmpkit kick`.
#[derive(Debug, clap::Args)]
pub struct KickArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The session id (`rtmpkit sessions` lists them).
    id: u64,
    /// Refuse the stream's next publishes for SECS.
    #[arg(long, value_name = "SECS")]
    block: Option<f64>,
}

/// Arguments of `rtmpkit reload`.
#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    api: ApiArgs,
}

/// One request to the API; the JSON answer, or an error naming the status.
async fn call(api: &ApiArgs, method: Method, path: &str) -> Result<Value> {
    let base: hyper::Uri = api
        .url
        .parse()
        .with_context(|| format!("{}: not a URL", api.url))?;
    if base.scheme_str() != Some("http") {
        bail!("{}: expected http://HOST:PORT", api.url);
    }
    let authority = base
        .authority()
        .ok_or_else(|| anyhow!("{}: no host", api.url))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let sock = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((authority.host(), port)),
    )
    .await
    .map_err(|_| anyhow!("{}: no answer within 5 s", api.url))?
    .with_context(|| format!("cannot connect to {}", api.url))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(sock))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(conn);
    let token = api
        .token
        .clone()
        .or_else(|| std::env::var("RTMPKIT_HTTP_TOKEN").ok());
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, authority.as_str());
    if let Some(t) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req.body(Empty::<bytes::Bytes>::new())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .map_err(|_| anyhow!("{}: no answer within 10 s", api.url))??;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        let why = v["error"].as_str().unwrap_or("");
        bail!("{} {path}: {status} {why}", api.url);
    }
    Ok(v)
}

pub async fn sessions(args: SessionsArgs) -> Result<()> {
    let v = call(&args.api, Method::GET, "/api/v1/sessions").await?;
    if args.json {
        println!("{v}");
        return Ok(());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    println!(
        "{:>6}  {:<8} {:<9} {:<24} {:<21} {:>8} {:>10} {:>10} {:>9} {:>9} {:>7}",
        "ID", "KIND", "ROLE", "STREAM", "PEER", "AGE", "IN", "OUT", "KBIT/S IN", "OUT", "RTT"
    );
    for s in v["sessions"].as_array().into_iter().flatten() {
        let text = |k: &str| s[k].as_str().unwrap_or("-").to_owned();
        let age = now - s["started"].as_f64().unwrap_or(now);
        let rtt = s["round_trip_ms"]
            .as_f64()
            .map_or("-".to_owned(), |ms| format!("{ms:.1}ms"));
        println!(
            "{:>6}  {:<8} {:<9} {:<24} {:<21} {:>7.0}s {:>10} {:>10} {:>9} {:>9} {:>7}",
            s["id"].as_u64().unwrap_or(0),
            text("kind"),
            text("role"),
            text("stream"),
            text("peer"),
            age,
            human_bytes(s["bytes_in"].as_u64().unwrap_or(0)),
            human_bytes(s["bytes_out"].as_u64().unwrap_or(0)),
            s["bitrate_in_kbps"].as_u64().unwrap_or(0),
            s["bitrate_out_kbps"].as_u64().unwrap_or(0),
            rtt,
        );
    }
    Ok(())
}

pub async fn reload(args: ReloadArgs) -> Result<()> {
    let v = call(&args.api, Method::POST, "/api/v1/reload").await?;
    let list = |k: &str| {
        let items: Vec<&str> = v[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    println!(
        "reloaded: listener changes: {}; sessions closed: {}; needs a restart: {}",
        list("listeners"),
        v["closed_sessions"].as_u64().unwrap_or(0),
        list("restart_needed"),
    );
    Ok(())
}

pub async fn kick(args: KickArgs) -> Result<()> {
    let path = match args.block {
        Some(b) if !(b.is_finite() && b > 0.0) => bail!("--block must be a number of seconds > 0"),
        Some(b) => format!("/api/v1/sessions/{}?block={b}", args.id),
        None => format!("/api/v1/sessions/{}", args.id),
    };
    call(&args.api, Method::DELETE, &path).await?;
    match args.block {
        Some(b) => println!(
            "kicked session {}; its stream's publishes are refused for {b} s",
            args.id
        ),
        None => println!("kicked session {}", args.id),
    }
    Ok(())
}
