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

#[derive(Default)]
pub struct UpstreamPool {
    idle: Mutex<HashMap<SocketAddr, Vec<(TcpStream, Instant)>>>,
}

impl UpstreamPool {
    /// A connection to `addr` that is still open, if one is idle.
    pub fn take(&self, addr: SocketAddr) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(&addr)?;
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
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(addr).or_default();
        if list.len() < IDLE_PER_ENDPOINT {
            list.push((conn, Instant::now()));
        }
    }

    /// Idle connections held, over all endpoints.
    pub fn idle(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.values().map(Vec::len).sum()
    }
}
