//! Per-application policy: which applications a server serves and, for
//! each, who may publish and play (secrets, hooks, access rules by
//! address written as nginx-rtmp's `allow` / `deny` lines), GOP cache,
//! recording, HLS, limits and takeover.
//!
//! [`ServerOptions::apps`](super::ServerOptions::apps) holds one
//! [`AppPolicy`] per application name, and `"*"` for every other one.
//! Without any, every application is served under the top-level
//! settings. With some, an application none of them covers is refused at
//! `connect` (`NetConnection.Connect.Rejected`).
//!
//! The policy can be replaced while the server runs
//! ([`Reloader`](super::Reloader)): new requests see the new one at once.

use super::auth::{AuthOptions, Authorizer};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// What an access rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Play,
}

impl Action {
    /// `publish` or `play`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

/// One line of an application's access list, in nginx-rtmp's syntax:
/// `allow publish 10.0.0.0/8`, `deny play 2001:db8::/32`,
/// `deny publish all`. The first line that matches a request decides;
/// when none does, the request is allowed (as in nginx-rtmp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    /// `allow` (or `deny`).
    pub allow: bool,
    pub action: Action,
    /// The addresses it covers; `None`: `all`.
    pub from: Option<IpNet>,
}

impl AccessRule {
    /// Whether this rule covers `action` from `ip` (no address: only
    /// `all` covers it).
    pub fn covers(&self, action: Action, ip: Option<IpAddr>) -> bool {
        self.action == action
            && match (&self.from, ip) {
                (None, _) => true,
                (Some(net), Some(ip)) => net.contains(&canonical(ip)),
                (Some(_), None) => false,
            }
    }
}

/// An IPv4 address seen through an IPv6 socket (`::ffff:a.b.c.d`) is
/// matched as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Why an access rule could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "access rule {line:?}: {why} (expected `allow|deny publish|play all|ADDRESS|CIDR`, as in nginx-rtmp)"
)]
pub struct BadRule {
    pub line: String,
    pub why: String,
}

impl FromStr for AccessRule {
    type Err = BadRule;

    fn from_str(line: &str) -> Result<Self, BadRule> {
        let bad = |why: &str| BadRule {
            line: line.to_owned(),
            why: why.to_owned(),
        };
        let words: Vec<&str> = line
            .trim()
            .trim_end_matches(';')
            .split_whitespace()
            .collect();
        let [verdict, action, who] = words[..] else {
            return Err(bad("three words are needed"));
        };
        let allow = match verdict {
            "allow" => true,
            "deny" => false,
            _ => return Err(bad("it must start with allow or deny")),
        };
        let action = match action {
            "publish" => Action::Publish,
            "play" => Action::Play,
            _ => return Err(bad("the second word must be publish or play")),
        };
        let from = match who {
            "all" => None,
            net if net.contains('/') => Some(
                net.parse::<IpNet>()
                    .map_err(|e| bad(&format!("{net}: {e}")))?
                    .trunc(),
            ),
            addr => Some(IpNet::from(
                addr.parse::<IpAddr>()
                    .map_err(|e| bad(&format!("{addr}: {e}")))?,
            )),
        };
        Ok(AccessRule {
            allow,
            action,
            from,
        })
    }
}

impl fmt::Display for AccessRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.allow { "allow" } else { "deny" };
        match &self.from {
            None => write!(f, "{verdict} {} all", self.action.name()),
            Some(net) => write!(f, "{verdict} {} {net}", self.action.name()),
        }
    }
}

/// The settings of one application (or of `"*"`, every other one).
/// [`ServerOptions::app_defaults`](super::ServerOptions::app_defaults)
/// gives one with the server's top-level settings.
#[derive(Debug, Clone)]
pub struct AppPolicy {
    /// Secrets and hooks of its publishes and plays.
    pub auth: AuthOptions,
    /// Access rules, first match wins; none matching allows.
    pub rules: Vec<AccessRule>,
    /// Keep the last GOP for late joiners.
    pub gop_cache: bool,
    /// Record its streams (when the server records).
    pub record: bool,
    /// Serve its streams over LL-HLS.
    pub hls: bool,
    /// Most players of one stream (RTMP and HTTP); `None`: no limit.
    pub max_players: Option<usize>,
    /// Most streams published at once in this application.
    pub max_publishers: Option<usize>,
    /// A silent publisher is replaced after this long (see
    /// [`ServerOptions::takeover_after`](super::ServerOptions::takeover_after)).
    pub takeover_after: Option<Duration>,
}

impl AppPolicy {
    /// Whether the access rules let `ip` do `action`; `Err` names the
    /// rule that refused.
    pub fn check_access(&self, action: Action, ip: Option<IpAddr>) -> Result<(), String> {
        match self.rules.iter().find(|r| r.covers(action, ip)) {
            Some(rule) if !rule.allow => Err(format!("denied by the rule `{rule}`")),
            _ => Ok(()),
        }
    }
}

/// One application's policy in force, with its hook client.
#[derive(Debug)]
pub(crate) struct App {
    pub policy: AppPolicy,
    pub auth: Arc<Authorizer>,
}

/// Every application's policy in force.
#[derive(Debug)]
pub(crate) struct Policy {
    apps: HashMap<String, Arc<App>>,
    rest: Option<Arc<App>>,
}

impl Policy {
    /// The policy of `apps` (empty: `defaults` for every application);
    /// fails on a bad hook URL.
    pub fn new(
        apps: &BTreeMap<String, AppPolicy>,
        defaults: AppPolicy,
        on_record_done: Option<&String>,
    ) -> std::io::Result<Policy> {
        let make = |table: &str, policy: &AppPolicy| -> std::io::Result<Arc<App>> {
            let auth = Authorizer::new(policy.auth.clone(), on_record_done)
                .map_err(|e| std::io::Error::new(e.kind(), format!("apps.{table:?}: {e}")))?;
            Ok(Arc::new(App {
                policy: policy.clone(),
                auth: Arc::new(auth),
            }))
        };
        if apps.is_empty() {
            return Ok(Policy {
                apps: HashMap::new(),
                rest: Some(make("*", &defaults)?),
            });
        }
        let mut named = HashMap::new();
        let mut rest = None;
        for (name, policy) in apps {
            let app = make(name, policy)?;
            match name.as_str() {
                "*" => rest = Some(app),
                _ => {
                    named.insert(name.clone(), app);
                }
            }
        }
        Ok(Policy { apps: named, rest })
    }

    /// The policy of application `name`; `None`: it is not served.
    pub fn app(&self, name: &str) -> Option<Arc<App>> {
        self.apps.get(name).or(self.rest.as_ref()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(lines: &[&str]) -> AppPolicy {
        AppPolicy {
            auth: AuthOptions::default(),
            rules: lines.iter().map(|l| l.parse().unwrap()).collect(),
            gop_cache: true,
            record: true,
            hls: true,
            max_players: None,
            max_publishers: None,
            takeover_after: None,
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn first_matching_rule_decides_as_in_nginx_rtmp() {
        let p = rules(&[
            "allow publish 127.0.0.1",
            "allow publish 10.0.0.0/8",
            "deny publish all",
            "deny play 2001:db8::/32",
        ]);
        assert!(p.check_access(Action::Publish, ip("127.0.0.1")).is_ok());
        assert!(p.check_access(Action::Publish, ip("10.9.8.7")).is_ok());
        let why = p
            .check_access(Action::Publish, ip("127.0.0.2"))
            .unwrap_err();
        assert_eq!(why, "denied by the rule `deny publish all`");
        // IPv4 through an IPv6 socket is IPv4.
        assert!(
            p.check_access(Action::Publish, ip("::ffff:10.1.1.1"))
                .is_ok()
        );
        assert!(p.check_access(Action::Play, ip("2001:db8::5")).is_err());
        // No rule matches: allowed.
        assert!(p.check_access(Action::Play, ip("192.0.2.1")).is_ok());
        // No address: only `all` rules cover it.
        assert!(p.check_access(Action::Publish, None).is_err());
        assert!(p.check_access(Action::Play, None).is_ok());
    }

    #[test]
    fn rules_read_and_print_as_nginx_lines() {
        for line in [
            "allow publish 10.0.0.0/8",
            "deny play all",
            "allow play ::1/128",
            "deny publish 192.0.2.0/24",
        ] {
            assert_eq!(line.parse::<AccessRule>().unwrap().to_string(), line);
        }
        // nginx's trailing semicolon and host bits are accepted.
        let r: AccessRule = "deny publish 10.1.2.3/8;".parse().unwrap();
        assert_eq!(r.to_string(), "deny publish 10.0.0.0/8");
        for bad in [
            "allow publish",
            "permit publish all",
            "allow record all",
            "allow play 10.0.0.0/33",
            "deny play localhost",
        ] {
            let e = bad.parse::<AccessRule>().unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn unknown_apps_are_refused_once_tables_exist() {
        let open = Policy::new(&BTreeMap::new(), rules(&[]), None).unwrap();
        assert!(open.app("anything").is_some());
        let mut apps = BTreeMap::new();
        apps.insert("live".to_owned(), rules(&["deny play all"]));
        let strict = Policy::new(&apps, rules(&[]), None).unwrap();
        assert_eq!(strict.app("live").unwrap().policy.rules.len(), 1);
        assert!(strict.app("other").is_none());
        apps.insert(
            "*".to_owned(),
            rules(&["allow play all", "deny publish all"]),
        );
        let rest = Policy::new(&apps, rules(&[]), None).unwrap();
        assert_eq!(rest.app("other").unwrap().policy.rules.len(), 2);
        assert_eq!(rest.app("live").unwrap().policy.rules.len(), 1);
    }
}
