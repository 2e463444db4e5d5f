//! `redis://` and `redis+sentinel://` URLs.

use crate::RedisError;

#[derive(Clone, PartialEq, Eq)]
pub enum Target {
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

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password: this ends up in logs.
        match self {
            Target::Direct { addr, db, .. } => write!(f, "redis://{addr}/{db}"),
            Target::Sentinel { sentinels, master, db, .. } => {
                write!(f, "redis+sentinel://{}/{master}/{db}", sentinels.join(","))
            }
        }
    }
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, RedisError> {
        let (sentinel, rest) = if let Some(r) = url.strip_prefix("redis+sentinel://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("redis://") {
            (false, r)
        } else {
            return Err(RedisError::Config("must start with redis:// or redis+sentinel://".into()));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let auth = userinfo.map(|u| match u.split_once(':') {
            Some((user, pw)) => Auth { user: Some(user.to_owned()).filter(|u| !u.is_empty()), password: pw.to_owned() },
            None => Auth { user: None, password: u.to_owned() },
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
            Ok(Target::Sentinel { sentinels: addrs, master: master.to_owned(), auth, db: parse_db(db)? })
        } else {
            if addrs.len() > 1 {
                return Err(RedisError::Config(
                    "redis:// takes one host; for several, use Sentinel: redis+sentinel://s1:26379,s2:26379/mymaster"
                        .into(),
                ));
            }
            Ok(Target::Direct { addr: addrs[0].clone(), auth, db: parse_db(path)? })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Target::parse("redis://127.0.0.1").unwrap(),
            Target::Direct { addr: "127.0.0.1:6379".into(), auth: None, db: 0 }
        );
        assert_eq!(
            Target::parse("redis://:pw@cache:6380/2").unwrap(),
            Target::Direct { addr: "cache:6380".into(), auth: Some(Auth { user: None, password: "pw".into() }), db: 2 }
        );
        assert_eq!(
            Target::parse("redis://berth:pw@cache").unwrap(),
            Target::Direct {
                addr: "cache:6379".into(),
                auth: Some(Auth { user: Some("berth".into()), password: "pw".into() }),
                db: 0
            }
        );
        assert_eq!(
            Target::parse("redis+sentinel://s1,s2:26380/mymaster/1").unwrap(),
            Target::Sentinel {
                sentinels: vec!["s1:26379".into(), "s2:26380".into()],
                master: "mymaster".into(),
                auth: None,
                db: 1
            }
        );
        for bad in ["http://x", "redis://", "redis://a,b", "redis+sentinel://s1", "redis://h/x"] {
            assert!(matches!(Target::parse(bad), Err(RedisError::Config(_))), "{bad}");
        }
        let shown = format!("{:?}", Target::parse("redis://:secret@h").unwrap());
        assert!(!shown.contains("secret"), "{shown}");
    }
}
