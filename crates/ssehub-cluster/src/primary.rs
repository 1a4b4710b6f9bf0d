//! Where the Redis primary is, and the store's connection to it.
//!
//! A `redis://HOST:PORT[/DB]` URL names the primary itself. A
//! `redis+sentinel://[USERINFO@]HOST:PORT[,HOST:PORT…]/MASTER_NAME[/DB]` URL names Redis
//! Sentinels instead: the primary is where they say `MASTER_NAME` is now
//! (`SENTINEL get-master-addr-by-name`), asked of each Sentinel in turn, the first that
//! answers wins; `USERINFO` and `DB` are the primary's. When a command fails, the store asks
//! again ([`Link::failed`]); after a failover the Sentinels name the promoted replica, and
//! the store (and the tail, which asks on each reconnection) follows it.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult};

/// The scheme of a URL that names Sentinels.
const SENTINEL_SCHEME: &str = "redis+sentinel://";

/// How to find the primary.
enum Target {
    /// It is at this URL.
    Direct(String),
    /// The Sentinels (`redis://HOST:PORT` each) know where `master` is.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        /// `USER:PASSWORD@` or empty, for the primary.
        userinfo: String,
        db: i64,
    },
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let Some(rest) = url.strip_prefix(SENTINEL_SCHEME) else {
            return Ok(Target::Direct(url.to_string()));
        };
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match hosts.rsplit_once('@') {
            Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
            None => (String::new(), hosts),
        };
        let (master, db) = path.split_once('/').unwrap_or((path, "0"));
        let db = db.trim_end_matches('/');
        let db = if db.is_empty() { "0" } else { db };
        let shape = "redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER_NAME[/DB]";
        let db = db
            .parse()
            .map_err(|_| format!("{shape}: the DB is a number"))?;
        if master.is_empty() || hosts.is_empty() {
            return Err(format!("{shape}: a Sentinel and a master name"));
        }
        let sentinels = hosts.split(',').map(|h| format!("redis://{h}")).collect();
        Ok(Target::Sentinel {
            sentinels,
            master: master.to_string(),
            userinfo,
            db,
        })
    }

    /// The primary's URL now.
    async fn resolve(&self) -> RedisResult<String> {
        let (sentinels, master, userinfo, db) = match self {
            Target::Direct(url) => return Ok(url.clone()),
            Target::Sentinel {
                sentinels,
                master,
                userinfo,
                db,
            } => (sentinels, master, userinfo, db),
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)));
        let mut last_error = None;
        for sentinel in sentinels {
            let asked = async {
                let mut conn = Client::open(sentinel.as_str())?
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(master)
                    .query_async::<Option<(String, u16)>>(&mut conn)
                    .await
            };
            match asked.await {
                Ok(Some((host, port))) => {
                    return Ok(format!("redis://{userinfo}{host}:{port}/{db}"));
                }
                Ok(None) => {
                    last_error = Some(redis::RedisError::from((
                        redis::ErrorKind::Client,
                        "Sentinel does not know the master",
                        master.clone(),
                    )));
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| redis::RedisError::from((redis::ErrorKind::Client, "no Sentinel"))))
    }
}

/// The store's connection to the primary, which follows it when Sentinel moves it.
pub(crate) struct Link {
    target: Target,
    config: ConnectionManagerConfig,
    /// The primary's URL and the connection to it.
    current: Mutex<(String, ConnectionManager)>,
    /// One re-resolution at a time: the others wait for its answer.
    resolving: tokio::sync::Mutex<()>,
}

impl Link {
    /// Finds the primary and connects to it.
    pub(crate) async fn open(url: &str, config: ConnectionManagerConfig) -> Result<Link, String> {
        let target = Target::parse(url)?;
        let primary = target.resolve().await.map_err(|e| e.to_string())?;
        let conn = connect(&primary, config.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Link {
            target,
            config,
            current: Mutex::new((primary, conn)),
            resolving: tokio::sync::Mutex::new(()),
        })
    }

    /// A handle on the connection to the primary (cheap: it is shared).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.lock().1.clone()
    }

    /// A client of the primary as Sentinel names it now, for a connection of its own.
    pub(crate) async fn client(&self) -> RedisResult<Client> {
        Client::open(self.primary().await?.as_str())
    }

    /// The primary's URL as Sentinel names it now (with a direct URL, that URL: no command is
    /// sent). A connection of its own compares it with the one it made to see the primary
    /// move.
    pub(crate) async fn primary(&self) -> RedisResult<String> {
        self.target.resolve().await
    }

    /// A command failed: with Sentinel, asks where the primary is and, when it moved,
    /// connects there. A direct URL's connection reconnects by itself.
    pub(crate) async fn failed(&self) {
        if matches!(self.target, Target::Direct(_)) {
            return;
        }
        let _one = self.resolving.lock().await;
        let Ok(primary) = self.target.resolve().await else {
            return;
        };
        if primary == self.lock().0 {
            return;
        }
        match connect(&primary, self.config.clone()).await {
            Ok(conn) => {
                tracing::warn!(
                    primary = %crate::redacted(&primary),
                    "Sentinel names a new Redis primary; following it"
                );
                *self.lock() = (primary, conn);
            }
            Err(error) => tracing::debug!(%error, "the new Redis primary is not reachable yet"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (String, ConnectionManager)> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn connect(url: &str, config: ConnectionManagerConfig) -> RedisResult<ConnectionManager> {
    ConnectionManager::new_with_config(Client::open(url)?, config).await
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn sentinel_urls_name_sentinels_a_master_and_a_db() {
        let Ok(Target::Sentinel {
            sentinels,
            master,
            userinfo,
            db,
        }) = Target::parse("redis+sentinel://:pw@10.0.0.1:26379,h:26380/mymaster/2")
        else {
            panic!("a Sentinel URL");
        };
        assert_eq!(sentinels, ["redis://10.0.0.1:26379", "redis://h:26380"]);
        assert_eq!(
            (master.as_str(), userinfo.as_str(), db),
            ("mymaster", ":pw@", 2)
        );
        let Ok(Target::Sentinel { db, .. }) = Target::parse("redis+sentinel://h:1/m") else {
            panic!("a Sentinel URL without a DB");
        };
        assert_eq!(db, 0);
        assert!(Target::parse("redis+sentinel://h:1/").is_err());
        assert!(Target::parse("redis+sentinel://h:1/m/x").is_err());
        assert!(matches!(
            Target::parse("redis://h:1/0"),
            Ok(Target::Direct(_))
        ));
    }
}
