//! `redis://`, `redis+sentinel://` and their TLS forms `rediss://`, `rediss+sentinel://`.

use crate::RedisError;

#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    /// `rediss`: every connection (sentinels and master alike) is TLS.
    pub tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Direct {
        addr: String,
        auth: Option<Auth>,
        db: u32,
    },
    /// Ask the sentinels (in order) where `master` is; the auth and db apply to the master.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        auth: Option<Auth>,
        db: u32,
    },
}

#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// Redis 6 ACL user; `None` for the classic `requirepass`.
    pub user: Option<String>,
    pub password: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("user", &self.user).field("password", &"(hidden)").finish()
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password: this ends up in logs.
        let s = if self.tls { "s" } else { "" };
        match &self.kind {
            Kind::Direct { addr, db, .. } => write!(f, "redis{s}://{addr}/{db}"),
            Kind::Sentinel { sentinels, master, db, .. } => {
                write!(f, "redis{s}+sentinel://{}/{master}/{db}", sentinels.join(","))
            }
        }
    }
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, RedisError> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(RedisError::Config(SCHEMES.into()));
        };
        let (tls, sentinel) = match scheme {
            "redis" => (false, false),
            "rediss" => (true, false),
            "redis+sentinel" => (false, true),
            "rediss+sentinel" => (true, true),
            _ => return Err(RedisError::Config(SCHEMES.into())),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        // Percent-encoded like any URL userinfo, so passwords may hold `@`, `:` or `/`.
        let auth = userinfo.map(|u| match u.split_once(':') {
            Some((user, pw)) => Auth { user: Some(decode(user)).filter(|u| !u.is_empty()), password: decode(pw) },
            None => Auth { user: None, password: decode(u) },
        });
        let default_port = if sentinel { 26379 } else { 6379 };
        let addrs: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| {
                if h.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
                    h.to_owned()
                } else {
                    format!("{h}:{default_port}")
                }
            })
            .collect();
        if addrs.is_empty() {
            return Err(RedisError::Config("no host given, e.g. redis://127.0.0.1:6379".into()));
        }
        let parse_db = |s: &str| {
            if s.is_empty() {
                Ok(0)
            } else {
                s.parse::<u32>().map_err(|_| RedisError::Config(format!("database {s:?} is not a number")))
            }
        };
        if sentinel {
            let (master, db) = path.split_once('/').unwrap_or((path, ""));
            if master.is_empty() {
                return Err(RedisError::Config(
                    "redis+sentinel:// needs the master name as the path, e.g. redis+sentinel://s1:26379,s2:26379/mymaster".into(),
                ));
            }
            let kind = Kind::Sentinel { sentinels: addrs, master: master.to_owned(), auth, db: parse_db(db)? };
            Ok(Target { kind, tls })
        } else {
            if addrs.len() > 1 {
                return Err(RedisError::Config(
                    "redis:// takes one host; for several, use Sentinel: redis+sentinel://s1:26379,s2:26379/mymaster"
                        .into(),
                ));
            }
            Ok(Target { kind: Kind::Direct { addr: addrs[0].clone(), auth, db: parse_db(path)? }, tls })
        }
    }
}

const SCHEMES: &str = "must start with redis://, rediss:// (TLS), redis+sentinel:// or rediss+sentinel://";

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Target::parse("redis://127.0.0.1").unwrap().kind,
            Kind::Direct { addr: "127.0.0.1:6379".into(), auth: None, db: 0 }
        );
        assert_eq!(
            Target::parse("redis://:pw@cache:6380/2").unwrap().kind,
            Kind::Direct { addr: "cache:6380".into(), auth: Some(Auth { user: None, password: "pw".into() }), db: 2 }
        );
        assert_eq!(
            Target::parse("redis://berth:pw@cache").unwrap().kind,
            Kind::Direct {
                addr: "cache:6379".into(),
                auth: Some(Auth { user: Some("berth".into()), password: "pw".into() }),
                db: 0
            }
        );
        assert_eq!(
            Target::parse("redis+sentinel://s1,s2:26380/mymaster/1").unwrap().kind,
            Kind::Sentinel {
                sentinels: vec!["s1:26379".into(), "s2:26380".into()],
                master: "mymaster".into(),
                auth: None,
                db: 1
            }
        );
        let t = Target::parse("rediss://berth:p%40ss%3Aw0rd@cache:6380").unwrap();
        assert!(t.tls);
        assert_eq!(
            t.kind,
            Kind::Direct {
                addr: "cache:6380".into(),
                auth: Some(Auth { user: Some("berth".into()), password: "p@ss:w0rd".into() }),
                db: 0
            }
        );
        let t = Target::parse("rediss+sentinel://s1/mymaster").unwrap();
        assert!(t.tls && matches!(t.kind, Kind::Sentinel { .. }));
        assert_eq!(format!("{t:?}"), "rediss+sentinel://s1:26379/mymaster/0");
        for bad in ["http://x", "redis:/x", "redis://", "redis://a,b", "redis+sentinel://s1", "redis://h/x"] {
            assert!(matches!(Target::parse(bad), Err(RedisError::Config(_))), "{bad}");
        }
        let shown = format!("{:?}", Target::parse("redis://:secret@h").unwrap());
        assert!(!shown.contains("secret"), "{shown}");
    }
}
