//! Prometheus counters and a latency histogram, written out by hand: a few dozen lines
//! beat pulling a metrics framework into an admission path.

use crate::handler::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds in seconds. Dense below a millisecond, where decisions are expected to sit,
/// so a regression shows up as a shifted bucket rather than a flat line.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

#[derive(Default)]
pub struct Metrics {
    decisions: Mutex<BTreeMap<Key, u64>>,
    latency: Histogram,
    cert_reloads: AtomicU64,
    cert_reload_failures: AtomicU64,
    snapshot_builds: AtomicU64,
    snapshot_updates: AtomicU64,
}

type Key = (&'static str, &'static str, &'static str, &'static str);

#[derive(Default)]
struct Histogram {
    /// One per bucket in [`BUCKETS`], plus `+Inf`; not cumulative until rendered.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Metrics {
    pub fn record(&self, outcome: &Outcome, took: Duration) {
        let key = (
            outcome.kind,
            outcome.operation,
            outcome.verdict.as_str(),
            outcome.reason,
        );
        *self
            .decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        self.latency.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.latency.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn cert_reloaded(&self, ok: bool) {
        let counter = if ok {
            &self.cert_reloads
        } else {
            &self.cert_reload_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot_built(&self) {
        self.snapshot_builds.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot_updated(&self) {
        self.snapshot_updates.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format, version 0.0.4.
    pub fn render(&self, synced: bool) -> String {
        let mut out = String::new();
        out.push_str("# HELP gatehouse_webhook_decisions_total Admission reviews answered.\n");
        out.push_str("# TYPE gatehouse_webhook_decisions_total counter\n");
        let decisions = self
            .decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for ((kind, operation, verdict, reason), count) in decisions {
            let _ = writeln!(
                out,
                "gatehouse_webhook_decisions_total{{kind=\"{kind}\",operation=\"{operation}\",verdict=\"{verdict}\",reason=\"{reason}\"}} {count}"
            );
        }
        let name = "gatehouse_webhook_decision_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to answer one review, from body received to response encoded."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.latency.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.latency.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.latency.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
        let gauges = [
            (
                "gatehouse_webhook_caches_synced",
                "gauge",
                "1 once the watch caches have synced and decisions use them.",
                u64::from(synced),
            ),
            (
                "gatehouse_webhook_snapshot_builds_total",
                "counter",
                "Snapshots rebuilt from the watch caches.",
                self.snapshot_builds.load(Ordering::Relaxed),
            ),
            (
                "gatehouse_webhook_snapshot_updates_total",
                "counter",
                "Snapshots published by applying watch events to the previous one.",
                self.snapshot_updates.load(Ordering::Relaxed),
            ),
            (
                "gatehouse_webhook_cert_reloads_total",
                "counter",
                "Serving certificates loaded after a file change.",
                self.cert_reloads.load(Ordering::Relaxed),
            ),
            (
                "gatehouse_webhook_cert_reload_failures_total",
                "counter",
                "Changed certificate files that did not load; the previous pair kept serving.",
                self.cert_reload_failures.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

/// Estimates a quantile from the histogram text the way Prometheus' `histogram_quantile`
/// does (linear inside the bucket), so the benchmark reports what a dashboard would show.
pub fn quantile_from_text(text: &str, name: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (bound, count) = rest.split_once("\"} ")?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            Some((bound, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower);
            }
            let inside = count - below;
            let fraction = if inside > 0.0 {
                (rank - below) / inside
            } else {
                1.0
            };
            return Some(lower + (bound - lower) * fraction);
        }
        (lower, below) = (bound, count);
    }
    None
}
