//! Container output: captured line by line into files in the CRI log format
//! (`<RFC 3339 time> <stream> F <line>`), one file per run of a container, and read back
//! for the kubelet API's `containerLogs` endpoint.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};

/// `<pod dir>/logs/<container>/<run>.log`; run 0 is the first start.
pub fn log_path(pod_dir: &Path, container: &str, run: u32) -> PathBuf {
    pod_dir
        .join("logs")
        .join(container)
        .join(format!("{run}.log"))
}

pub fn format_line(at: Timestamp, stream: &str, line: &[u8]) -> Vec<u8> {
    let mut out = format!("{at:.9} {stream} F ").into_bytes();
    out.extend_from_slice(line);
    out.push(b'\n');
    out
}

/// Copies `reader` into `file` until EOF. Each line is one append, so the two streams of
/// a container can share the file.
pub async fn pump<R: AsyncRead + Unpin>(reader: R, stream: &'static str, file: PathBuf) {
    let mut out = match tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .await
    {
        Ok(f) => f,
        Err(e) => return tracing::warn!(file = %file.display(), "cannot open log file: {e}"),
    };
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = line.strip_suffix(b"\n").unwrap_or(&line);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                // tokio's File hands writes to a blocking thread; flush so readers (and
                // the end of the stream) see every line.
                let line = format_line(Timestamp::now(), stream, text);
                if out.write_all(&line).await.is_err() || out.flush().await.is_err() {
                    break;
                }
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub since_seconds: Option<i64>,
    pub limit_bytes: Option<usize>,
}

impl LogQuery {
    pub fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut q = LogQuery::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, "true"));
            let flag = || match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(format!("query parameter {k}: {v:?} is not a boolean")),
            };
            let num = || {
                v.parse::<i64>()
                    .map_err(|_| format!("query parameter {k}: {v:?} is not a number"))
            };
            match k {
                "follow" => q.follow = flag()?,
                "previous" => q.previous = flag()?,
                "timestamps" => q.timestamps = flag()?,
                "tailLines" => q.tail_lines = Some(num()?.max(0) as usize),
                "sinceSeconds" => q.since_seconds = Some(num()?),
                "limitBytes" => q.limit_bytes = Some(num()?.max(0) as usize),
                // sinceTime, insecureSkipTLSVerifyBackend and the like change nothing here.
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The selected lines of a CRI log file, as `kubectl logs` prints them.
pub fn render(content: &str, q: &LogQuery, now: Timestamp) -> String {
    let since = q.since_seconds.map(|s| now - SignedDuration::from_secs(s));
    let lines: Vec<(Option<Timestamp>, &str)> = content
        .lines()
        .filter_map(|l| {
            let (ts, rest) = l.split_once(' ')?;
            let (_stream, rest) = rest.split_once(' ')?;
            let (_tag, msg) = rest.split_once(' ').unwrap_or((rest, ""));
            Some((ts.parse::<Timestamp>().ok(), msg))
        })
        .filter(|(ts, _)| match (since, ts) {
            (Some(since), Some(ts)) => *ts >= since,
            _ => true,
        })
        .collect();
    let skip = q.tail_lines.map_or(0, |n| lines.len().saturating_sub(n));
    let mut out = String::new();
    for (ts, msg) in &lines[skip..] {
        if q.timestamps
            && let Some(ts) = ts
        {
            out.push_str(&format!("{ts:.9} "));
        }
        out.push_str(msg);
        out.push('\n');
    }
    if let Some(limit) = q.limit_bytes {
        let mut cut = limit.min(out.len());
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// Where each container's logs are and whether its current run is still going.
#[derive(Clone, Debug, Default)]
pub struct LogIndex {
    inner: Arc<Mutex<HashMap<(String, String), PodLogs>>>,
}

#[derive(Clone, Debug)]
pub struct PodLogs {
    pub dir: PathBuf,
    /// Container name -> (number of the current run, running now).
    pub containers: HashMap<String, (u32, bool)>,
}

/// A log file to serve and whether it may still grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSource {
    pub path: PathBuf,
    pub run: u32,
}

impl LogIndex {
    pub fn set(&self, ns: &str, pod: &str, container: &str, dir: &Path, run: u32, running: bool) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map
            .entry((ns.into(), pod.into()))
            .or_insert_with(|| PodLogs {
                dir: dir.into(),
                containers: HashMap::new(),
            });
        entry.containers.insert(container.into(), (run, running));
    }

    pub fn remove(&self, ns: &str, pod: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(ns.to_string(), pod.to_string()));
    }

    /// The file for the current (or, with `previous`, the last finished) run.
    pub fn source(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<LogSource, String> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let p = map
            .get(&(ns.to_string(), pod.to_string()))
            .ok_or_else(|| format!("pod {ns}/{pod} is not running on this node"))?;
        let (run, _) = p
            .containers
            .get(container)
            .ok_or_else(|| format!("container {container:?} in pod {ns}/{pod} has not started"))?;
        let run = if previous {
            run.checked_sub(1).ok_or_else(|| {
                format!("previous terminated container {container:?} in pod {ns}/{pod} not found")
            })?
        } else {
            *run
        };
        Ok(LogSource {
            path: log_path(&p.dir, container, run),
            run,
        })
    }

    /// Whether `run` of the container is the current one and still going.
    pub fn is_live(&self, ns: &str, pod: &str, container: &str, run: u32) -> bool {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(ns.to_string(), pod.to_string()))
            .and_then(|p| p.containers.get(container))
            .is_some_and(|(current, running)| *current == run && *running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn file() -> String {
        let mut s = Vec::new();
        s.extend(format_line(at(0), "stdout", b"one"));
        s.extend(format_line(at(10), "stderr", b"two words"));
        s.extend(format_line(at(20), "stdout", b""));
        s.extend(format_line(at(30), "stdout", "drei ü".as_bytes()));
        String::from_utf8(s).unwrap()
    }

    #[test]
    fn render_plain_tail_since_timestamps_and_limit() {
        let all = LogQuery::default();
        assert_eq!(render(&file(), &all, at(40)), "one\ntwo words\n\ndrei ü\n");
        let tail = LogQuery {
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(render(&file(), &tail, at(40)), "\ndrei ü\n");
        let since = LogQuery {
            since_seconds: Some(25),
            ..Default::default()
        };
        assert_eq!(render(&file(), &since, at(40)), "\ndrei ü\n");
        let ts = LogQuery {
            timestamps: true,
            tail_lines: Some(1),
            ..Default::default()
        };
        assert_eq!(
            render(&file(), &ts, at(40)),
            "2023-11-14T22:13:50.000000000Z drei ü\n"
        );
        let limit = LogQuery {
            limit_bytes: Some(5),
            ..Default::default()
        };
        assert_eq!(render(&file(), &limit, at(40)), "one\nt");
    }

    #[test]
    fn query_parsing_names_the_bad_parameter() {
        let q = LogQuery::parse(Some("follow=true&tailLines=10&timestamps=1&container=x")).unwrap();
        assert!(q.follow && q.timestamps && q.tail_lines == Some(10));
        assert!(
            LogQuery::parse(Some("tailLines=ten"))
                .unwrap_err()
                .contains("tailLines")
        );
    }

    #[test]
    fn previous_run_and_unknown_containers() {
        let idx = LogIndex::default();
        idx.set("ns", "p", "c", Path::new("/d"), 0, true);
        assert_eq!(
            idx.source("ns", "p", "c", false).unwrap().path,
            PathBuf::from("/d/logs/c/0.log")
        );
        assert!(
            idx.source("ns", "p", "c", true)
                .unwrap_err()
                .contains("previous")
        );
        idx.set("ns", "p", "c", Path::new("/d"), 1, true);
        assert_eq!(idx.source("ns", "p", "c", true).unwrap().run, 0);
        assert!(!idx.is_live("ns", "p", "c", 0) && idx.is_live("ns", "p", "c", 1));
        assert!(idx.source("ns", "p", "x", false).is_err());
        assert!(
            idx.source("ns", "q", "c", false)
                .unwrap_err()
                .contains("not running on this node")
        );
    }

    #[tokio::test]
    async fn pump_writes_one_cri_line_per_output_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        pump(&b"hello\r\nworld\npartial"[..], "stdout", path.clone()).await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            render(&text, &LogQuery::default(), Timestamp::now()),
            "hello\nworld\npartial\n"
        );
        assert!(text.lines().all(|l| l.contains(" stdout F ")));
    }
}
