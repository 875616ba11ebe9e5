//! The per-second timeline of a run: arrivals, workers against the oracle, queue depth and
//! p99 wait per window, and its CSV form (`timeline.csv`).
//!
//! Rows are one second of trace time each: with `--speed F` a row covers `1/F` s of real time.

use std::fmt::Write as _;

use crate::oracle::Oracle;
use crate::score::{quantile, Mode, RunData};
use crate::trace::Trace;

/// One window of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Window start, seconds since the run's start.
    pub t_s: f64,
    /// Mean true rate λ over the window, tasks/s.
    pub lambda: f64,
    /// Realised arrivals (by intended time), per second.
    pub arrivals_per_s: f64,
    /// Completions, per second.
    pub completed_per_s: f64,
    /// Mean live workers (sampled).
    pub live_mean: f64,
    /// Most live workers sampled.
    pub live_max: usize,
    /// The oracle's largest `c*` in the window.
    pub oracle: usize,
    /// Mean queue depth (sampled).
    pub queue_mean: f64,
    /// Deepest queue sampled.
    pub queue_max: usize,
    /// p99 queue wait of the tasks that arrived in the window, ms (`None`: no task).
    pub wait_p99_ms: Option<f64>,
}

/// Window length for a trace: one second of trace time.
pub fn bin_s(trace: &Trace) -> f64 {
    1.0 / trace.speed
}

/// Builds the timeline of a run.
pub fn build(trace: &Trace, oracle: &Oracle, data: &RunData) -> Vec<Row> {
    let bin = bin_s(trace);
    let dur = trace.duration_s();
    let n = ((dur / bin) - 1e-9).ceil().max(1.0) as usize;
    let idx = |ns: u64| ((ns as f64 / 1e9) / bin) as usize;
    let mut arrivals = vec![0usize; n];
    let mut completed = vec![0usize; n];
    let mut waits: Vec<Vec<u64>> = vec![Vec::new(); n];
    for r in &data.records {
        let i = idx(r.intended_ns);
        if i < n {
            arrivals[i] += 1;
            waits[i].push(if r.rejected {
                u64::MAX
            } else {
                r.wait_ns().unwrap_or(u64::MAX)
            });
        }
        if let Some(e) = r.end_ns {
            if idx(e) < n {
                completed[idx(e)] += 1;
            }
        }
    }
    let mut live_sum = vec![0.0; n];
    let mut live_max = vec![0usize; n];
    let mut queue_sum = vec![0.0; n];
    let mut queue_max = vec![0usize; n];
    let mut count = vec![0usize; n];
    for s in &data.samples {
        let i = idx(s.t_ns);
        if i < n {
            live_sum[i] += s.live as f64;
            live_max[i] = live_max[i].max(s.live);
            queue_sum[i] += s.queued as f64;
            queue_max[i] = queue_max[i].max(s.queued);
            count[i] += 1;
        }
    }
    (0..n)
        .map(|i| {
            let t0 = i as f64 * bin;
            let t1 = (t0 + bin).min(dur);
            let w = &mut waits[i];
            w.sort_unstable();
            let c = count[i].max(1) as f64;
            Row {
                t_s: t0,
                lambda: trace.expected_arrivals(t0, t1) / (t1 - t0).max(1e-9),
                arrivals_per_s: arrivals[i] as f64 / bin,
                completed_per_s: completed[i] as f64 / bin,
                live_mean: live_sum[i] / c,
                live_max: live_max[i],
                oracle: oracle.max_over(t0, t1),
                queue_mean: queue_sum[i] / c,
                queue_max: queue_max[i],
                wait_p99_ms: quantile(w, 0.99).map(|ns| {
                    if ns == u64::MAX {
                        f64::INFINITY
                    } else {
                        ns as f64 / 1e6
                    }
                }),
            }
        })
        .collect()
}

/// The CSV header.
pub const CSV_HEADER: &str = "t_s,lambda_per_s,arrivals_per_s,completed_per_s,live_workers_mean,\
live_workers_max,oracle_workers,queue_depth_mean,queue_depth_max,wait_p99_ms,mode";

/// The timeline as CSV; `mode` is repeated on every row so a model's rows can never be read
/// as measurements. An empty `wait_p99_ms` means no task arrived in the window; `inf` means a
/// task was refused or never started.
pub fn csv(rows: &[Row], mode: Mode) -> String {
    let mut out = String::with_capacity(64 * (rows.len() + 1));
    out.push_str(CSV_HEADER);
    out.push('\n');
    for r in rows {
        let p99 = match r.wait_p99_ms {
            Some(x) if x.is_finite() => format!("{x:.3}"),
            Some(_) => "inf".into(),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{:.3},{:.2},{:.2},{:.2},{:.2},{},{},{:.2},{},{},{}",
            r.t_s,
            r.lambda,
            r.arrivals_per_s,
            r.completed_per_s,
            r.live_mean,
            r.live_max,
            r.oracle,
            r.queue_mean,
            r.queue_max,
            p99,
            mode.name()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{Sample, TaskRecord, SAMPLE_NS};
    use crate::trace::BuiltIn;

    #[test]
    fn rows_follow_the_records() {
        let t = BuiltIn::find("step").unwrap().load(2);
        let o = Oracle::plan(&t, 2);
        let records = vec![
            TaskRecord {
                intended_ns: 500_000_000,
                start_ns: Some(510_000_000),
                end_ns: Some(1_600_000_000),
                spin: false,
                rejected: false,
            },
            TaskRecord {
                intended_ns: 600_000_000,
                start_ns: Some(603_000_000),
                end_ns: Some(700_000_000),
                spin: false,
                rejected: false,
            },
        ];
        let samples = (0..20)
            .map(|i| Sample {
                t_ns: i * SAMPLE_NS,
                live: if i < 10 { 2 } else { 4 },
                busy: 0,
                queued: i as usize % 2,
            })
            .collect();
        let data = RunData {
            records,
            samples,
            ..RunData::default()
        };
        let rows = build(&t, &o, &data);
        assert_eq!(rows.len(), 150);
        assert_eq!(rows[0].arrivals_per_s, 2.0);
        assert_eq!(rows[0].completed_per_s, 1.0);
        assert_eq!(rows[1].completed_per_s, 1.0);
        assert_eq!(rows[0].wait_p99_ms, Some(10.0));
        assert_eq!(rows[1].wait_p99_ms, None);
        assert_eq!(rows[0].live_mean, 2.0);
        assert_eq!(rows[1].live_max, 4);
        assert_eq!(rows[0].queue_max, 1);
        assert_eq!(rows[0].oracle, 4);
        assert_eq!(rows[40].oracle, 16);
        assert_eq!(rows[40].lambda, 200.0);
        let text = csv(&rows, Mode::Virtual);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(CSV_HEADER));
        let first: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(first.len(), CSV_HEADER.split(',').count());
        assert_eq!(first[9], "10.000");
        assert_eq!(first[10], "virtual");
        assert_eq!(text.lines().count(), 151);
    }
}
