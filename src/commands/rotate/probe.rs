//! Does the database accept connections? Asked without credentials.
//!
//! Before `scrub` nobody knows the clone's master password (a clone inherits
//! the source's), so `ready` asks the server's protocol instead of logging in:
//! PostgreSQL answers an SSLRequest with one byte (`S` or `N`); MySQL speaks
//! first with its handshake packet (protocol version 10), or with an error
//! packet while it cannot take connections. It sends nothing but the SSLRequest
//! and never authenticates.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use migrator_core::migration::Engine;

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// What the server's first bytes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accepting,
    /// It answered, but not with a greeting (starting up, too many connections, …).
    NotYet(String),
    /// Nothing answered: the name does not resolve, the connection is refused
    /// or finds no route, or nothing comes back in time (a security group
    /// dropping the packets). Once RDS says the database is available, this
    /// lasting is a network problem, not a start-up.
    Unreachable(String),
}

/// Reads PostgreSQL's answer to the SSLRequest.
pub fn postgres_answer(bytes: &[u8]) -> Answer {
    match bytes.first() {
        Some(b'S' | b'N') => Answer::Accepting,
        Some(b'E') => Answer::NotYet("the server answered with an error".into()),
        Some(other) => Answer::NotYet(format!("unexpected answer byte 0x{other:02x}")),
        None => Answer::NotYet("the server closed the connection".into()),
    }
}

/// Reads MySQL's first packet: a 4-byte header, then 10 (handshake) or 0xff (error).
pub fn mysql_answer(bytes: &[u8]) -> Answer {
    match bytes.get(4) {
        Some(10) => Answer::Accepting,
        Some(0xff) => {
            // Error code (2 bytes), then an optional `#` and 5-character SQLSTATE.
            let rest = bytes.get(7..).unwrap_or_default();
            let rest = match rest.first() {
                Some(b'#') => rest.get(6..).unwrap_or_default(),
                _ => rest,
            };
            Answer::NotYet(format!(
                "the server refused: {}",
                String::from_utf8_lossy(rest).trim()
            ))
        }
        Some(other) => Answer::NotYet(format!("unexpected protocol version {other}")),
        None => Answer::NotYet("the server closed the connection".into()),
    }
}

/// Connects to `host:port` and reads the greeting, within `limit`.
pub async fn probe(engine: Engine, host: &str, port: u16, limit: Duration) -> Answer {
    let connect = async {
        let addrs: Vec<_> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("the name {host} does not resolve: {e}"))?
            .collect();
        let mut last = format!("the name {host} resolves to no address");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = unreachable_why(addr, &e),
            }
        }
        Err(last)
    };
    let stream = match tokio::time::timeout(limit, connect).await {
        Err(_) => {
            return Answer::Unreachable(format!(
                "no answer to a connection within {} s (a security group or network ACL \
                 dropping the packets?)",
                limit.as_secs_f64().ceil()
            ));
        }
        Ok(Err(why)) => return Answer::Unreachable(why),
        Ok(Ok(s)) => s,
    };
    let work = async move {
        let mut stream = stream;
        if engine == Engine::Postgres {
            stream
                .write_all(&SSL_REQUEST)
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut buf = vec![0u8; 256];
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        buf.truncate(n);
        Ok::<_, String>(buf)
    };
    match tokio::time::timeout(limit, work).await {
        Err(_) => Answer::NotYet(format!("no greeting within {} s", limit.as_secs())),
        Ok(Err(e)) => Answer::NotYet(e),
        Ok(Ok(bytes)) => match engine {
            Engine::Postgres => postgres_answer(&bytes),
            Engine::Mysql => mysql_answer(&bytes),
        },
    }
}

/// A failed TCP connection, said as what it means.
fn unreachable_why(addr: std::net::SocketAddr, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => format!("{addr} refused the connection"),
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
            format!("no route to {addr}: {e}")
        }
        ErrorKind::TimedOut => format!("no answer from {addr}: {e}"),
        _ => format!("cannot connect to {addr}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_are_read_per_engine() {
        assert_eq!(postgres_answer(b"S"), Answer::Accepting);
        assert_eq!(postgres_answer(b"N"), Answer::Accepting);
        assert!(matches!(postgres_answer(b"E..."), Answer::NotYet(_)));
        assert!(matches!(postgres_answer(b""), Answer::NotYet(_)));
        let handshake = [0x4a, 0, 0, 0, 10, b'1', b'1', b'.'];
        assert_eq!(mysql_answer(&handshake), Answer::Accepting);
        let mut error = vec![0x17, 0, 0, 0, 0xff, 0x10, 0x04];
        error.extend_from_slice(b"Too many connections");
        let Answer::NotYet(why) = mysql_answer(&error) else {
            panic!()
        };
        assert!(why.contains("Too many connections"), "{why}");
        assert!(matches!(mysql_answer(&[1, 0, 0]), Answer::NotYet(_)));
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_unreachable() {
        let answer = probe(
            Engine::Postgres,
            "no-such-host.invalid",
            5432,
            Duration::from_secs(5),
        )
        .await;
        let Answer::Unreachable(why) = answer else {
            panic!("{answer:?}")
        };
        assert!(why.contains("does not resolve"), "{why}");
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let answer = probe(Engine::Postgres, "127.0.0.1", port, Duration::from_secs(2)).await;
        let Answer::Unreachable(why) = answer else {
            panic!("{answer:?}")
        };
        assert!(why.contains("refused"), "{why}");
    }
}
