//! The Prometheus text exposition format (version 0.0.4) for the registered pools.
//!
//! Metric families come one after another, each with its `# HELP` and `# TYPE` lines and one
//! sample per pool. Histograms are cumulative since the pool started (`_bucket{le}`, `_sum`,
//! `_count`), read from [`Pool::histograms`](crate::Pool::histograms).
//!
//! # Buckets
//!
//! The pool's histograms have 210 log-linear buckets (8 per power of two). Exporting all of
//! them would cost 210 series per histogram per pool, so the exposition keeps two bounds per
//! power of two: the fine buckets ending at `2^k` and at `1.5·2^k` nanoseconds, for
//! `k = 12..=36` (4.1 µs to 68.7 s), plus `+Inf`: 49 finite bounds ([`le_bounds_ns`]).
//! Because durations are whole nanoseconds and a bound is the last nanosecond a fine bucket
//! holds (`bucket_upper_bound`), every exported `le` bucket is *exact*: it counts precisely
//! the records `≤ le`. Its `le` is printed as that many nanoseconds in seconds, in exact
//! decimal (`0.000004095` for 4 095 ns). `histogram_quantile` interpolates linearly inside a
//! bucket, so a quantile read back from Prometheus lies in the same exported bucket as the
//! true one: within a factor 1.5 (bounds alternate ×1.5 and ×1.33).

use super::{Exporter, Sample, PREFIX, VERSION};
use crate::histogram::{bucket_upper_bound, Snapshot, BUCKETS, SUB_BUCKET_BITS};
use std::fmt::Write;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Fine buckets per power of two.
const PER_OCTAVE: usize = 1 << SUB_BUCKET_BITS;
/// Index of the fine bucket that ends at 2^12 ns (the first exported bound): bucket 0 is the
/// underflow bucket, then 8 per octave from 2^10.
const FIRST_BOUND: usize = 2 * PER_OCTAVE;
/// Every this many fine buckets is an exported bound (two per octave).
const STEP: usize = PER_OCTAVE / 2;

/// The fine bucket indices whose upper bounds are exported as `le` (all but the overflow
/// bucket, which is `+Inf`).
fn bound_indices() -> impl Iterator<Item = usize> {
    (FIRST_BOUND..BUCKETS - 1).step_by(STEP)
}

/// The finite `le` bounds of the exported histograms, in nanoseconds, ascending: the fine
/// buckets' inclusive upper bounds at `2^k − 1` and `1.5·2^k − 1` ns.
pub fn le_bounds_ns() -> Vec<u64> {
    bound_indices().map(bucket_upper_bound).collect()
}

// The bounds step through whole octaves and end at the last finite bucket.
const _: () = assert!((BUCKETS - 2 - FIRST_BOUND) % STEP == 0);

/// Writes `ns` nanoseconds as seconds in exact decimal, without trailing zeros.
fn write_seconds(out: &mut String, ns: u64) {
    let (s, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    if frac == 0 {
        let _ = write!(out, "{s}");
    } else {
        let digits = format!("{frac:09}");
        let _ = write!(out, "{s}.{}", digits.trim_end_matches('0'));
    }
}

/// Writes a float as the exposition format spells it.
fn write_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Writes a label value with `\`, `"` and newlines escaped.
fn write_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {PREFIX}{name} {help}");
    let _ = writeln!(out, "# TYPE {PREFIX}{name} {kind}");
}

/// `elastic_pool_<name>{pool="<pool>"[,<k>="<v>"]} ` — the value follows.
fn series(out: &mut String, name: &str, pool: &str, extra: Option<(&str, &str)>) {
    let _ = write!(out, "{PREFIX}{name}{{pool=\"");
    write_label_value(out, pool);
    out.push('"');
    if let Some((k, v)) = extra {
        let _ = write!(out, ",{k}=\"");
        write_label_value(out, v);
        out.push('"');
    }
    out.push_str("} ");
}

/// One integer-valued family (counter or gauge), one sample per pool.
fn family_u64(
    out: &mut String,
    samples: &[Sample],
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&Sample) -> u64,
) {
    header(out, name, kind, help);
    for s in samples {
        series(out, name, &s.name, None);
        let _ = writeln!(out, "{}", value(s));
    }
}

fn histogram(
    out: &mut String,
    samples: &[Sample],
    name: &str,
    help: &str,
    pick: fn(&Sample) -> &Snapshot,
) {
    header(out, name, "histogram", help);
    let bucket = format!("{name}_bucket");
    let les: Vec<(usize, String)> = bound_indices()
        .map(|i| {
            let mut le = String::new();
            write_seconds(&mut le, bucket_upper_bound(i));
            (i, le)
        })
        .collect();
    for s in samples {
        let h = pick(s);
        let counts = h.counts();
        let mut cum = 0u64;
        let mut next = 0usize; // first fine bucket not yet added
        for (i, le) in &les {
            cum += counts[next..=*i].iter().sum::<u64>();
            next = i + 1;
            series(out, &bucket, &s.name, Some(("le", le)));
            let _ = writeln!(out, "{cum}");
        }
        cum += counts[next..].iter().sum::<u64>();
        series(out, &bucket, &s.name, Some(("le", "+Inf")));
        let _ = writeln!(out, "{cum}");
        series(out, &format!("{name}_sum"), &s.name, None);
        write_seconds(out, h.sum_ns());
        out.push('\n');
        series(out, &format!("{name}_count"), &s.name, None);
        let _ = writeln!(out, "{cum}");
    }
}

/// Writes the exposition of `samples` into `out`.
pub(crate) fn render_samples(samples: &[Sample], out: &mut String) {
    header(
        out,
        "build_info",
        "gauge",
        "The elastic-pool version, as a label; always 1.",
    );
    let _ = writeln!(out, "{PREFIX}build_info{{version=\"{VERSION}\"}} 1");

    family_u64(
        out,
        samples,
        "tasks_submitted_total",
        "counter",
        "Tasks accepted (each job of a batch counts).",
        |s| s.counters.submitted,
    );
    family_u64(
        out,
        samples,
        "tasks_completed_total",
        "counter",
        "Tasks that ran, including those that panicked.",
        |s| s.counters.completed,
    );
    header(
        out,
        "tasks_rejected_total",
        "counter",
        "Tasks refused: reason=\"overloaded\" (queue full) or \"shutdown\".",
    );
    for s in samples {
        series(
            out,
            "tasks_rejected_total",
            &s.name,
            Some(("reason", "overloaded")),
        );
        let _ = writeln!(out, "{}", s.counters.rejected_overloaded);
        series(
            out,
            "tasks_rejected_total",
            &s.name,
            Some(("reason", "shutdown")),
        );
        let _ = writeln!(out, "{}", s.counters.rejected_shutdown);
    }
    family_u64(
        out,
        samples,
        "tasks_panicked_total",
        "counter",
        "Tasks that panicked.",
        |s| s.counters.panicked,
    );
    header(
        out,
        "scale_events_total",
        "counter",
        "Autoscaler target changes: direction=\"up\" or \"down\".",
    );
    for s in samples {
        series(
            out,
            "scale_events_total",
            &s.name,
            Some(("direction", "up")),
        );
        let _ = writeln!(out, "{}", s.counters.scale_up);
        series(
            out,
            "scale_events_total",
            &s.name,
            Some(("direction", "down")),
        );
        let _ = writeln!(out, "{}", s.counters.scale_down);
    }
    family_u64(
        out,
        samples,
        "workers_started_total",
        "counter",
        "Worker threads started.",
        |s| s.counters.spawned,
    );
    family_u64(
        out,
        samples,
        "workers_retired_total",
        "counter",
        "Worker threads retired (shrink or keep-alive expiry).",
        |s| s.counters.retired,
    );
    header(
        out,
        "busy_seconds_total",
        "counter",
        "Worker-seconds spent running tasks; its rate is the mean number of busy workers.",
    );
    for s in samples {
        series(out, "busy_seconds_total", &s.name, None);
        write_seconds(out, s.counters.busy_ns);
        out.push('\n');
    }

    family_u64(
        out,
        samples,
        "workers",
        "gauge",
        "Worker threads alive.",
        |s| s.stats.live as u64,
    );
    family_u64(
        out,
        samples,
        "workers_idle",
        "gauge",
        "Workers parked waiting for work.",
        |s| s.stats.idle as u64,
    );
    family_u64(
        out,
        samples,
        "workers_busy",
        "gauge",
        "Workers running tasks.",
        |s| s.stats.busy as u64,
    );
    family_u64(
        out,
        samples,
        "workers_min",
        "gauge",
        "The pool's lower bound on workers.",
        |s| s.stats.min as u64,
    );
    family_u64(
        out,
        samples,
        "workers_max",
        "gauge",
        "The pool's upper bound on workers: at it, only more replicas help.",
        |s| s.stats.max as u64,
    );
    family_u64(
        out,
        samples,
        "workers_target",
        "gauge",
        "The autoscaler's current ceiling for on-demand growth.",
        |s| s.stats.target as u64,
    );
    family_u64(
        out,
        samples,
        "queue_depth",
        "gauge",
        "Queue entries waiting (a batch chunk counts once).",
        |s| s.stats.queued as u64,
    );
    header(out, "demand_workers", "gauge",
        "Workers the load needs by the autoscaler's model; additive across replicas, may exceed workers_max.");
    for s in samples {
        if let Some(d) = s.demand {
            series(out, "demand_workers", &s.name, None);
            write_f64(out, d);
            out.push('\n');
        }
    }
    header(out, "wait_sampling_ratio", "gauge",
        "Share of tasks whose queue wait and service time are timed (the histograms' _count counts those).");
    for s in samples {
        series(out, "wait_sampling_ratio", &s.name, None);
        write_f64(out, 1.0 / f64::from(s.wait_sampling));
        out.push('\n');
    }

    histogram(
        out,
        samples,
        "queue_wait_seconds",
        "Time sampled tasks waited in the queue, cumulative since the pool started.",
        |s| &s.wait,
    );
    histogram(
        out,
        samples,
        "service_time_seconds",
        "Run time of sampled tasks, cumulative since the pool started.",
        |s| &s.service,
    );
}

impl Exporter {
    /// The registered pools' signals in the Prometheus text exposition format (version
    /// 0.0.4, [`CONTENT_TYPE`]). docs/OBSERVABILITY.md lists the metrics.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.render_into(&mut out);
        out
    }

    /// Like [`render`](Exporter::render), appending to `out`.
    pub fn render_into(&self, out: &mut String) {
        render_samples(&self.samples(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact_decimals() {
        let mut s = String::new();
        for ns in [0, 1, 4_095, 1_000_000_000, 1_500_000_000, 68_719_476_735] {
            s.clear();
            write_seconds(&mut s, ns);
            let back: f64 = s.parse().unwrap();
            assert!(
                (back * 1e9 - ns as f64).abs() < 1e-3 * (ns as f64).max(1.0),
                "{ns} {s}"
            );
            if ns % 10 != 0 {
                assert!(s.ends_with(&(ns % 10).to_string()), "{s}");
            }
        }
        s.clear();
        write_seconds(&mut s, 4_095);
        assert_eq!(s, "0.000004095");
        s.clear();
        write_seconds(&mut s, 1_500_000_000);
        assert_eq!(s, "1.5");
    }

    #[test]
    fn bounds_are_two_per_octave_from_4us_to_the_overflow() {
        let b = le_bounds_ns();
        assert_eq!(b.len(), 49);
        assert_eq!(b[0], (1 << 12) - 1);
        assert_eq!(b[1], 3 * (1 << 11) - 1);
        assert_eq!(*b.last().unwrap(), crate::histogram::OVERFLOW_NS - 1);
        assert!(b.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        write_label_value(&mut s, "a\"b\\c\nd");
        assert_eq!(s, "a\\\"b\\\\c\\nd");
    }
}
