//! Who may publish and play: signed stream URLs, and HTTP callbacks that
//! speak nginx-rtmp's `notify` protocol (`on_publish`, `on_play`,
//! `on_publish_done`, `on_play_done`), so existing control panels work
//! unchanged.
//!
//! A callback is an `application/x-www-form-urlencoded` POST with the
//! fields `call`, `addr`, `clientid`, `app`, `flashver`, `swfurl`, `tcurl`,
//! `pageurl`, `name` (and `type` for publish, `start` for play), then every
//! argument of the stream name's query string. 2xx allows; 3xx with a
//! `Location` renames the stream (a plain name) or relays it (an `rtmp://`
//! URL); anything else, no answer in time, or no connection refuses.

use super::signed;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tracing::{debug, warn};

/// Who may publish and play. Everything is open by default.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// Asked before a publish starts (`http://...`).
    pub on_publish: Option<String>,
    /// Asked before a play starts.
    pub on_play: Option<String>,
    /// Told when a publisher leaves (the answer is ignored).
    pub on_publish_done: Option<String>,
    /// Told when a player leaves (the answer is ignored).
    pub on_play_done: Option<String>,
    /// Asked at every `connect` (nginx-rtmp's `on_connect`, `call=connect`):
    /// a non-2xx answer refuses the connection.
    pub on_connect: Option<String>,
    /// Told every `update_interval` while a session publishes or plays
    /// (nginx-rtmp's `on_update`, `call=update_publish` / `update_play`,
    /// with `time` and `timestamp`): a non-2xx answer ends the session, as
    /// nginx-rtmp's strict mode does.
    pub on_update: Option<String>,
    /// How often `on_update` is told (default 30 s, as nginx-rtmp's
    /// `notify_update_timeout`).
    pub update_interval: Duration,
    /// A hook that has not answered in this time refuses (default 3 s).
    pub hook_timeout: Duration,
    /// Publishing needs `?expires=E&token=T` signed with this secret
    /// (see [`sign_url`](super::sign_url)).
    pub publish_secret: Option<String>,
    /// Playing needs a token signed with this secret.
    pub play_secret: Option<String>,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            on_publish: None,
            on_play: None,
            on_publish_done: None,
            on_play_done: None,
            on_connect: None,
            on_update: None,
            update_interval: Duration::from_secs(30),
            hook_timeout: Duration::from_secs(3),
            publish_secret: None,
            play_secret: None,
        }
    }
}

/// Which question a hook is asked; its name is the `call` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Publish,
    Play,
    PublishDone,
    PlayDone,
    RecordDone,
    Connect,
    UpdatePublish,
    UpdatePlay,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Publish => "publish",
            Call::Play => "play",
            Call::PublishDone => "publish_done",
            Call::PlayDone => "play_done",
            Call::RecordDone => "record_done",
            Call::Connect => "connect",
            Call::UpdatePublish => "update_publish",
            Call::UpdatePlay => "update_play",
        }
    }
}

/// What a hook is told about the connection (from its `connect` command).
#[derive(Debug, Clone, Default)]
pub(crate) struct Caller {
    pub addr: Option<SocketAddr>,
    pub client_id: u64,
    pub app: String,
    pub flashver: String,
    pub swfurl: String,
    pub tcurl: String,
    pub pageurl: String,
}

/// The answer to a publish or play request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Go ahead, under this stream name (the hook may have renamed it);
    /// `relay` is where a hook's redirect sends the stream.
    Allow { name: String, relay: Option<String> },
    /// Refused, for this reason (sent to the client as the description).
    Refuse(String),
}

/// Checks requests against the configured secrets and hooks.
#[derive(Debug)]
pub(crate) struct Authorizer {
    opts: AuthOptions,
    http: Option<Client<HttpConnector, Full<Bytes>>>,
}

/// Most of a hook's answer kept for the refusal's description.
const ANSWER_CHARS: usize = 200;

impl Authorizer {
    /// Checks the hook URLs (and `on_record_done`, which the recorder
    /// tells through this client); only `http://` hooks are supported.
    pub fn new(opts: AuthOptions, on_record_done: Option<&String>) -> io::Result<Authorizer> {
        let hooks = [
            ("on_publish", opts.on_publish.as_ref()),
            ("on_play", opts.on_play.as_ref()),
            ("on_publish_done", opts.on_publish_done.as_ref()),
            ("on_play_done", opts.on_play_done.as_ref()),
            ("on_connect", opts.on_connect.as_ref()),
            ("on_update", opts.on_update.as_ref()),
            ("on_record_done", on_record_done),
        ];
        let mut any = false;
        for (what, url) in hooks {
            let Some(url) = url else { continue };
            any = true;
            let uri: hyper::Uri = url.parse().map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("{what} {url:?}: {e}"))
            })?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{what} {url:?}: must be an http://host[:port]/path URL"),
                ));
            }
        }
        let http = any.then(|| Client::builder(TokioExecutor::new()).build_http());
        Ok(Authorizer { opts, http })
    }

    /// Whether a publish or play needs no check at all.
    pub fn is_open(&self, call: Call) -> bool {
        match call {
            Call::Publish => self.opts.publish_secret.is_none() && self.opts.on_publish.is_none(),
            Call::Play => self.opts.play_secret.is_none() && self.opts.on_play.is_none(),
            _ => true,
        }
    }

    /// Decides a publish (`extra` = `type`) or a play (`extra` = `start`).
    /// `name` is the stream name as sent, query included.
    pub async fn check(
        &self,
        call: Call,
        caller: &Caller,
        name: &str,
        extra: (&str, String),
    ) -> Decision {
        let (plain, query) = split_query(name);
        let (secret, hook) = match call {
            Call::Publish => (&self.opts.publish_secret, &self.opts.on_publish),
            Call::Play => (&self.opts.play_secret, &self.opts.on_play),
            _ => (&None, &None),
        };
        if let Some(secret) = secret {
            let key = format!("{}/{plain}", caller.app);
            if let Err(why) = signed::verify(secret, &key, query, signed::now()) {
                return Decision::Refuse(format!("signed URL refused: {why}"));
            }
        }
        let Some(hook) = hook else {
            return Decision::Allow {
                name: plain.to_owned(),
                relay: None,
            };
        };
        let form = form(call, caller, plain, query, Some(extra));
        let what = format!("on_{} hook", call.name());
        let answer = match tokio::time::timeout(self.opts.hook_timeout, self.post(hook, form)).await
        {
            Err(_) => {
                return Decision::Refuse(format!(
                    "{what} did not answer within {:?}",
                    self.opts.hook_timeout
                ));
            }
            Ok(Err(e)) => return Decision::Refuse(format!("{what} unreachable: {e}")),
            Ok(Ok(a)) => a,
        };
        debug!(status = answer.status, location = ?answer.location, "{what} answered");
        decide(&what, plain, answer)
    }

    /// The play secret's check alone (no hook): for every request of a
    /// stream a player already watches over HTTP.
    pub fn check_play_token(&self, app: &str, name: &str) -> Result<(), String> {
        let Some(secret) = &self.opts.play_secret else {
            return Ok(());
        };
        let (plain, query) = split_query(name);
        signed::verify(secret, &format!("{app}/{plain}"), query, signed::now())
            .map_err(|why| format!("signed URL refused: {why}"))
    }

    /// Tells a done hook, in the background; its answer is only logged.
    pub fn notify_done(&self, call: Call, caller: &Caller, name: &str) {
        let hook = match call {
            Call::PublishDone => &self.opts.on_publish_done,
            Call::PlayDone => &self.opts.on_play_done,
            _ => &None,
        };
        let (Some(hook), Some(http)) = (hook.clone(), self.http.clone()) else {
            return;
        };
        let (plain, query) = split_query(name);
        let form = form(call, caller, plain, query, None);
        let timeout = self.opts.hook_timeout;
        tokio::spawn(async move {
            let sent = tokio::time::timeout(timeout, post(&http, &hook, form)).await;
            match sent {
                Ok(Ok(a)) if (200..300).contains(&a.status) => {}
                Ok(Ok(a)) => warn!("on_{} hook answered {}", call.name(), a.status),
                Ok(Err(e)) => warn!("on_{} hook unreachable: {e}", call.name()),
                Err(_) => warn!("on_{} hook did not answer within {timeout:?}", call.name()),
            }
        });
    }

    /// Tells `on_record_done` of a finished recording, in the background:
    /// nginx-rtmp's form (`call=record_done`, `app`, `name`, ...) with
    /// `fields` (`path`, `recorder`, ...) and the stream's query
    /// arguments.
    pub fn notify_record_done(
        &self,
        hook: String,
        caller: &Caller,
        app: &str,
        name: &str,
        fields: &[(&str, String)],
    ) {
        let Some(http) = self.http.clone() else {
            return;
        };
        let (plain, query) = split_query(name);
        let mut caller = caller.clone();
        caller.app = app.to_owned();
        let mut form = form(Call::RecordDone, &caller, plain, query, None);
        let mut extra = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            extra.append_pair(k, v);
        }
        form.push('&');
        form.push_str(&extra.finish());
        let timeout = self.opts.hook_timeout;
        tokio::spawn(async move {
            match tokio::time::timeout(timeout, post(&http, &hook, form)).await {
                Ok(Ok(a)) if (200..300).contains(&a.status) => {}
                Ok(Ok(a)) => warn!("on_record_done hook answered {}", a.status),
                Ok(Err(e)) => warn!("on_record_done hook unreachable: {e}"),
                Err(_) => warn!("on_record_done hook did not answer within {timeout:?}"),
            }
        });
    }

    /// Asks `on_connect`, if set; `Err` says why the connection is
    /// refused.
    pub async fn check_connect(&self, caller: &Caller) -> Result<(), String> {
        let Some(hook) = self.opts.on_connect.clone() else {
            return Ok(());
        };
        let form = form(Call::Connect, caller, "", "", None);
        self.ask(&hook, form, Call::Connect).await
    }

    /// The `on_update` hook and how often to tell it, if set.
    pub fn update_interval(&self) -> Option<Duration> {
        self.opts
            .on_update
            .as_ref()
            .map(|_| self.opts.update_interval)
    }

    /// Tells `on_update` of a session that publishes (or plays) `name`
    /// for `time` seconds, at media `timestamp` ms; the answer comes on
    /// the receiver (`Err`: the session must end, and why).
    pub fn update(
        self: &std::sync::Arc<Self>,
        publishing: bool,
        caller: &Caller,
        name: &str,
        time: u64,
        timestamp: u32,
    ) -> Option<tokio::sync::oneshot::Receiver<Result<(), String>>> {
        let hook = self.opts.on_update.clone()?;
        let call = if publishing {
            Call::UpdatePublish
        } else {
            Call::UpdatePlay
        };
        let (plain, query) = split_query(name);
        let mut form = form(call, caller, plain, query, Some(("time", time.to_string())));
        form.push_str("&timestamp=");
        form.push_str(&timestamp.to_string());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        tokio::spawn(async move {
            let _ = tx.send(me.ask(&hook, form, call).await);
        });
        Some(rx)
    }

    /// Posts `form` to `hook`; a 2xx answer is `Ok`.
    async fn ask(&self, hook: &str, form: String, call: Call) -> Result<(), String> {
        let what = format!("on_{} hook", call.name());
        match tokio::time::timeout(self.opts.hook_timeout, self.post(hook, form)).await {
            Err(_) => Err(format!(
                "{what} did not answer within {:?}",
                self.opts.hook_timeout
            )),
            Ok(Err(e)) => Err(format!("{what} unreachable: {e}")),
            Ok(Ok(a)) if (200..300).contains(&a.status) => Ok(()),
            Ok(Ok(a)) => Err(refusal(&what, &a)),
        }
    }

    async fn post(&self, url: &str, form: String) -> Result<Answer, String> {
        match &self.http {
            Some(http) => post(http, url, form).await,
            None => Err("no HTTP client".into()),
        }
    }
}

/// What a hook answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

async fn post(
    http: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    form: String,
) -> Result<Answer, String> {
    let req = hyper::Request::post(url)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| e.to_string())?;
    let resp = http.request(req).await.map_err(|e| {
        // The legacy client's own text is "client error (Connect)": name the cause.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text = s.to_string();
            source = s.source();
        }
        text
    })?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match Limited::new(resp.into_body(), 4096).collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    Ok(Answer {
        status,
        location,
        body,
    })
}

/// nginx-rtmp's reading of a hook's answer.
fn decide(what: &str, name: &str, answer: Answer) -> Decision {
    match (answer.status, answer.location.clone()) {
        (200..=299, _) => Decision::Allow {
            name: name.to_owned(),
            relay: None,
        },
        (300..=399, Some(loc)) if !loc.is_empty() => {
            let lower = loc.to_ascii_lowercase();
            if lower.starts_with("rtmp://") || lower.starts_with("rtmps://") {
                Decision::Allow {
                    name: name.to_owned(),
                    relay: Some(loc),
                }
            } else {
                let renamed = loc.trim_start_matches('/');
                Decision::Allow {
                    name: split_query(renamed).0.to_owned(),
                    relay: None,
                }
            }
        }
        _ => Decision::Refuse(refusal(what, &answer)),
    }
}

/// Why a hook's non-2xx answer refuses: its status and the start of its
/// body.
fn refusal(what: &str, answer: &Answer) -> String {
    let status = answer.status;
    let body: String = answer.body.trim().chars().take(ANSWER_CHARS).collect();
    let reason = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut text = format!("refused by the {what}: {status} {reason}");
    if !body.is_empty() {
        text.push_str(": ");
        text.push_str(&body);
    }
    text.trim_end().to_owned()
}

/// `name?query` into its two parts.
pub(crate) fn split_query(name: &str) -> (&str, &str) {
    name.split_once('?').unwrap_or((name, ""))
}

/// The POST body, in nginx-rtmp's field order.
fn form(
    call: Call,
    caller: &Caller,
    name: &str,
    query: &str,
    extra: Option<(&str, String)>,
) -> String {
    let mut f = form_urlencoded::Serializer::new(String::new());
    f.append_pair("call", call.name());
    let addr = caller.addr.map(|a| a.ip().to_string()).unwrap_or_default();
    f.append_pair("addr", &addr);
    f.append_pair("clientid", &caller.client_id.to_string());
    f.append_pair("app", &caller.app);
    f.append_pair("flashver", &caller.flashver);
    f.append_pair("swfurl", &caller.swfurl);
    f.append_pair("tcurl", &caller.tcurl);
    f.append_pair("pageurl", &caller.pageurl);
    f.append_pair("name", name);
    if let Some((k, v)) = extra {
        f.append_pair(k, &v);
    }
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        f.append_pair(&k, &v);
    }
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, location: Option<&str>, body: &str) -> Answer {
        Answer {
            status,
            location: location.map(str::to_owned),
            body: body.to_owned(),
        }
    }

    #[test]
    fn answers_read_as_nginx_rtmp_does() {
        let allow = |name: &str, relay: Option<&str>| Decision::Allow {
            name: name.to_owned(),
            relay: relay.map(str::to_owned),
        };
        assert_eq!(
            decide("h", "cam", answer(204, None, "")),
            allow("cam", None)
        );
        assert_eq!(
            decide("h", "cam", answer(302, Some("other"), "")),
            allow("other", None)
        );
        assert_eq!(
            decide("h", "cam", answer(302, Some("rtmp://x/live/y"), "")),
            allow("cam", Some("rtmp://x/live/y"))
        );
        assert_eq!(
            decide("h", "cam", answer(403, None, " no key\n")),
            Decision::Refuse("refused by the h: 403 Forbidden: no key".into())
        );
        // A redirect without a Location refuses.
        assert!(matches!(
            decide("h", "cam", answer(302, None, "")),
            Decision::Refuse(_)
        ));
    }

    #[test]
    fn form_has_nginx_fields_then_query_args() {
        let caller = Caller {
            addr: Some(SocketAddr::from(([10, 0, 0, 7], 5000))),
            client_id: 42,
            app: "live".into(),
            flashver: "FMLE/3.0".into(),
            tcurl: "rtmp://h/live".into(),
            ..Caller::default()
        };
        let body = form(
            Call::Publish,
            &caller,
            "cam 1",
            "key=a%26b&x=1",
            Some(("type", "live".into())),
        );
        assert_eq!(
            body,
            "call=publish&addr=10.0.0.7&clientid=42&app=live&flashver=FMLE%2F3.0&swfurl=\
             &tcurl=rtmp%3A%2F%2Fh%2Flive&pageurl=&name=cam+1&type=live&key=a%26b&x=1"
        );
    }
}
