//! Idle upstream connections for the fast path, most recently used first.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Idle connections kept per endpoint; more are closed when returned.
const IDLE_PER_ENDPOINT: usize = 256;
/// An idle connection older than this is not reused: backends close idle connections
/// after their own timeout (nginx: 60 s, Go: 90 s), and a request sent just as one closes
/// would have to be retried.
const MAX_IDLE: Duration = Duration::from_secs(30);

/// Expired connections are swept at most this often (on a return to the pool): endpoints
/// that left the table are never asked for again, and their connections must still close.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

pub struct UpstreamPool {
    idle: Mutex<Idle>,
}

struct Idle {
    by_endpoint: HashMap<SocketAddr, Vec<(TcpStream, Instant)>>,
    swept: Instant,
}

impl Default for UpstreamPool {
    fn default() -> Self {
        Self {
            idle: Mutex::new(Idle {
                by_endpoint: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }
}

impl UpstreamPool {
    /// A connection to `addr` that is still open, if one is idle.
    pub fn take(&self, addr: SocketAddr) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.by_endpoint.get_mut(&addr)?;
        while let Some((conn, since)) = list.pop() {
            if since.elapsed() > MAX_IDLE {
                // Older ones are further down the stack: drop them all.
                list.clear();
                return None;
            }
            // Readable while idle means closed (EOF) or talking out of turn: not reusable.
            // Tokio answers from its readiness state, so a quiet connection costs no syscall.
            let mut probe = [0u8; 1];
            match conn.try_read(&mut probe) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(conn),
                _ => continue,
            }
        }
        None
    }

    pub fn put(&self, addr: SocketAddr, conn: TcpStream) {
        self.put_at(addr, conn, Instant::now());
    }

    fn put_at(&self, addr: SocketAddr, conn: TcpStream, now: Instant) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(idle.swept) >= SWEEP_EVERY {
            idle.swept = now;
            idle.by_endpoint.retain(|_, list| {
                list.retain(|(_, since)| now.saturating_duration_since(*since) <= MAX_IDLE);
                !list.is_empty()
            });
        }
        let list = idle.by_endpoint.entry(addr).or_default();
        if list.len() < IDLE_PER_ENDPOINT {
            list.push((conn, now));
        }
    }

    /// Idle connections held, over all endpoints.
    pub fn idle(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.by_endpoint.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (client.unwrap(), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn open_connections_are_reused_and_closed_ones_are_not() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pool = UpstreamPool::default();
        let (open, _open_peer) = pair(&listener).await;
        let (closed, closed_peer) = pair(&listener).await;
        pool.put(addr, open);
        pool.put(addr, closed);
        drop(closed_peer);
        // Let the reactor see the FIN.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let reused = pool.take(addr).expect("the open connection is handed out");
        assert!(reused.peer_addr().is_ok());
        assert!(pool.take(addr).is_none(), "nothing else is idle");
        assert_eq!(pool.idle(), 0);
    }

    #[tokio::test]
    async fn connections_to_endpoints_no_one_asks_for_expire_on_a_later_return() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let gone: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let pool = UpstreamPool::default();
        let start = Instant::now();
        let (a, _pa) = pair(&listener).await;
        let (b, _pb) = pair(&listener).await;
        pool.put_at(gone, a, start);
        assert_eq!(pool.idle(), 1);
        pool.put_at(addr, b, start + MAX_IDLE + SWEEP_EVERY);
        assert_eq!(
            pool.idle(),
            1,
            "the stale connection was closed by the sweep"
        );
        assert!(pool.take(gone).is_none());
    }
}
