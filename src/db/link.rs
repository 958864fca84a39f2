//! Links that go silent: a partition, a writer that vanished in a failover, a
//! NAT that dropped the flow. Nothing arrives and nothing closes, so without
//! help a read waits forever.
//!
//! `--link-timeout` (30 s by default) bounds how long a connection may stay
//! silent, three ways, because each covers what the others miss:
//! - TCP keepalive probes (idle, interval and count derived from it) notice a
//!   peer that stopped answering while we wait with nothing in flight; a busy
//!   server still answers them, so an hour-long statement is not cut.
//! - `TCP_USER_TIMEOUT` (Linux) decides while we have unacknowledged data in
//!   flight, where keepalive does not probe.
//! - [`Watch`]: a middlebox that keeps the TCP connection up but forwards
//!   nothing (a proxy, a load balancer) answers both for the server. So while
//!   the run waits for an answer, a second connection asks the server what our
//!   session is doing: gone, or idle for the whole timeout, means the request
//!   or its answer was lost on the way.
//!
//! The driver that sees the link die returns a lost connection; the engine then
//! settles what was in doubt on a new session (`Driver::reconnect`).

use std::net::SocketAddr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::mysql::MySqlConnectOptions;
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How long a silent link may last (`--link-timeout`); `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    pub timeout: Option<Duration>,
}

/// Keepalive probes that notice a dead peer within the link timeout: the first
/// after a third of it, then every sixth, as many as fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probes {
    pub idle: Duration,
    pub interval: Duration,
    pub retries: u32,
}

impl Link {
    pub fn probes(&self) -> Option<Probes> {
        let t = self.timeout?.as_secs().max(2);
        // Kernel keepalive settings are whole seconds.
        let idle = (t / 3).max(1);
        let interval = (t / 6).max(1);
        let retries = ((t - idle) / interval).clamp(1, 127) as u32;
        Some(Probes {
            idle: Duration::from_secs(idle),
            interval: Duration::from_secs(interval),
            retries,
        })
    }

    /// How often [`Watch`] asks about the session: often enough to notice a
    /// silent link within about the timeout and a third.
    pub fn watch_period(&self) -> Option<Duration> {
        self.timeout
            .map(|t| (t / 3).clamp(Duration::from_millis(500), Duration::from_secs(10)))
    }

    /// Keepalive and `TCP_USER_TIMEOUT` on a PostgreSQL configuration, unless
    /// its URL set them (`keepalives_idle=`, `tcp_user_timeout=`).
    pub fn configure_postgres(&self, config: &mut Config) {
        let (Some(p), Some(t)) = (self.probes(), self.timeout) else {
            return;
        };
        config.keepalives(true);
        // tokio-postgres' default idle is 2 hours: anything else came from the URL.
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(p.idle);
            config.keepalives_interval(p.interval);
            config.keepalives_retries(p.retries);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(t);
        }
    }

    /// Keepalive and `TCP_USER_TIMEOUT` on the MySQL sockets of this process
    /// that are connected to `peers`. sqlx opens its socket itself and offers
    /// no option for either, so the socket is found among the process's open
    /// descriptors once connected (Linux); elsewhere this does nothing.
    /// Setting them twice on one socket is harmless.
    pub fn configure_sockets(&self, peers: &[SocketAddr]) {
        let Some(p) = self.probes() else { return };
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            tracing::debug!("no /proc/self/fd: MySQL keepalive not set");
            return;
        };
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(p.idle)
            .with_interval(p.interval);
        for entry in fds.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"));
            if !is_socket {
                continue;
            }
            // SAFETY: the descriptor is only borrowed for the calls below, on
            // this thread; it is not closed or kept. One closed meanwhile by
            // another thread makes the calls fail with EBADF, which is ignored.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let sock = socket2::SockRef::from(&fd);
            let peer = sock.peer_addr().ok().and_then(|a| a.as_socket());
            if !peer.is_some_and(|a| peers.contains(&a)) {
                continue;
            }
            let user_timeout = self
                .timeout
                .map_or(0, |t| t.as_millis().min(u32::MAX as u128));
            let set = sock
                .set_tcp_keepalive(&keepalive)
                .and_then(|()| set_int(&fd, libc::TCP_KEEPCNT, p.retries as libc::c_int))
                .and_then(|()| set_int(&fd, libc::TCP_USER_TIMEOUT, user_timeout as libc::c_int));
            if let Err(e) = set {
                tracing::debug!(error = %e, "could not set keepalive on a MySQL socket");
            }
        }
    }
}

/// One integer TCP-level socket option (socket2 has these two only behind a
/// feature that would rebuild half the dependency tree).
fn set_int(
    fd: &std::os::fd::BorrowedFd<'_>,
    name: libc::c_int,
    value: libc::c_int,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `value` outlives the call, and its size is the length passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The addresses `host:port` resolves to, for [`Link::configure_sockets`].
pub async fn peers(host: &str, port: u16) -> Vec<SocketAddr> {
    tokio::net::lookup_host((host, port))
        .await
        .map(|a| a.collect())
        .unwrap_or_default()
}

/// Who to ask, from a second connection, what our session is doing.
#[derive(Clone)]
pub enum Watch {
    Off,
    Postgres {
        config: Box<Config>,
        tls: MakeRustlsConnect,
        pid: i32,
        link: Link,
    },
    Mysql {
        options: Box<MySqlConnectOptions>,
        id: u64,
        link: Link,
    },
}

/// What one look at the session found.
enum Seen {
    Working,
    /// Idle on the server for this long while we wait for it.
    Idle(Duration),
    Gone,
}

impl Watch {
    /// Resolves once the session is gone from the server, or has been idle
    /// there for the whole link timeout while the run waited for it: the
    /// request or its answer was lost. Never resolves while the session works,
    /// however long, nor when the watch is off. The message says what was seen.
    pub async fn dead(&self) -> String {
        let (link, session) = match self {
            Watch::Off => std::future::pending().await,
            Watch::Postgres { link, pid, .. } => (*link, format!("session {pid}")),
            Watch::Mysql { link, id, .. } => (*link, format!("connection {id}")),
        };
        let (Some(timeout), Some(period)) = (link.timeout, link.watch_period()) else {
            return std::future::pending().await;
        };
        let mut side = Side::None;
        loop {
            tokio::time::sleep(period).await;
            let seen = match tokio::time::timeout(timeout, self.look(&mut side)).await {
                Ok(Ok(seen)) => seen,
                Ok(Err(e)) => {
                    // The server cannot be asked either: keepalive decides.
                    tracing::debug!(error = %e, "could not look at our session");
                    side = Side::None;
                    continue;
                }
                Err(_) => {
                    side = Side::None;
                    continue;
                }
            };
            match seen {
                Seen::Working => {}
                Seen::Gone => {
                    return format!("the server no longer has our {session}");
                }
                Seen::Idle(d) if d >= timeout => {
                    return format!(
                        "the server has been idle on our {session} for {} s while we waited \
                         for its answer (--link-timeout {}): the link went silent",
                        d.as_secs(),
                        migrator_core::duration::format(timeout)
                    );
                }
                Seen::Idle(_) => {}
            }
        }
    }

    async fn look(&self, side: &mut Side) -> Result<Seen, String> {
        match self {
            Watch::Off => Ok(Seen::Working),
            Watch::Postgres {
                config, tls, pid, ..
            } => {
                if !matches!(side, Side::Postgres(_)) {
                    let (client, connection) = config
                        .connect(tls.clone())
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::spawn(connection);
                    *side = Side::Postgres(client);
                }
                let Side::Postgres(client) = side else {
                    unreachable!()
                };
                let rows = client
                    .query(
                        // Idle, or waiting to read from us in the middle of an
                        // extended-protocol exchange (Parse sent, Sync lost):
                        // either way the server waits for us while we wait for it.
                        "SELECT CASE WHEN wait_event = 'ClientRead' THEN 'idle' ELSE state END, \
                         extract(epoch FROM clock_timestamp() - state_change)::float8 \
                         FROM pg_stat_activity WHERE pid = $1",
                        &[pid],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(row) = rows.first() else {
                    return Ok(Seen::Gone);
                };
                let state: Option<String> = row.get(0);
                let age: Option<f64> = row.get(1);
                Ok(match (state, age) {
                    (Some(s), Some(a)) if s.starts_with("idle") => {
                        Seen::Idle(Duration::from_secs_f64(a.max(0.0)))
                    }
                    _ => Seen::Working,
                })
            }
            Watch::Mysql { options, id, .. } => {
                if !matches!(side, Side::Mysql(_)) {
                    let conn = options.connect().await.map_err(|e| e.to_string())?;
                    *side = Side::Mysql(Box::new(conn));
                }
                let Side::Mysql(conn) = side else {
                    unreachable!()
                };
                let row: Option<(String, i64)> = sqlx::query_as(
                    "SELECT COMMAND, CAST(TIME AS SIGNED) FROM information_schema.PROCESSLIST \
                     WHERE ID = ?",
                )
                .bind(*id)
                .fetch_optional(conn.as_mut())
                .await
                .map_err(|e| e.to_string())?;
                Ok(match row {
                    None => Seen::Gone,
                    Some((command, secs)) if command == "Sleep" => {
                        Seen::Idle(Duration::from_secs(secs.max(0) as u64))
                    }
                    Some(_) => Seen::Working,
                })
            }
        }
    }
}

/// The second connection, kept for the run once opened.
enum Side {
    None,
    Postgres(tokio_postgres::Client),
    Mysql(Box<sqlx::mysql::MySqlConnection>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_notice_a_dead_peer_within_the_timeout() {
        let p = Link {
            timeout: Some(Duration::from_secs(30)),
        }
        .probes()
        .unwrap();
        assert_eq!(p.idle, Duration::from_secs(10));
        assert_eq!(p.interval, Duration::from_secs(5));
        assert_eq!(p.retries, 4);
        assert!(p.idle + p.interval * p.retries <= Duration::from_secs(30));
        let short = Link {
            timeout: Some(Duration::from_secs(3)),
        }
        .probes()
        .unwrap();
        assert!(short.idle + short.interval * short.retries <= Duration::from_secs(3));
        assert_eq!(Link::default().probes(), None);
    }
}
