//! What a run prints: the summary table of `simulate`, the one-row-per-contender table of
//! `compare`, and the JSON forms.

use std::fmt::Write as _;

use crate::score::{Mode, Score};

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

/// The heading of a run's output, with the model label in virtual mode.
pub fn heading(
    command: &str,
    trace: &str,
    seed: u64,
    mode: Mode,
    ncpu: usize,
    speed: f64,
) -> String {
    let mut s = format!(
        "elastic-pool {command} · trace {trace} · seed {seed} · {} · {ncpu} CPU{}",
        match mode {
            Mode::Real => "real threads",
            Mode::Virtual => "virtual time",
        },
        if ncpu == 1 { "" } else { "s" }
    );
    if speed != 1.0 {
        let _ = write!(
            s,
            " · speed ×{speed} (time compressed: absolute figures differ from a full-speed run)"
        );
    }
    if mode == Mode::Virtual {
        s.push_str("\nMODEL: a discrete-event simulation in virtual time (instant spawn), not a measurement");
    }
    s
}

/// The summary table of one run.
pub fn summary(s: &Score) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        (
            "tasks",
            format!(
                "{} submitted · {} completed · {} rejected · {} lost · {} scored after warm-up",
                s.submitted, s.completed, s.rejected, s.lost, s.scored_tasks
            ),
        ),
        (
            "queue wait",
            format!(
                "p50 {:.2} ms · p99 {:.2} ms · max {:.2} ms (SLO: p99 ≤ {} ms)",
                s.wait_p50_ms,
                s.wait_p99_ms,
                s.wait_max_ms,
                crate::trace::fmt_num(s.slo_ms)
            ),
        ),
        (
            "budget burn",
            format!(
                "{:.2} (tasks over the SLO / 1% of tasks; 1.0 = at the SLO)",
                s.budget_burn
            ),
        ),
        (
            "windows over SLO",
            format!("{:.1}% of 1 s windows", 100.0 * s.windows_over_slo_fraction),
        ),
        (
            "worker-seconds",
            format!(
                "{:.1} = {:.2} × the oracle's {:.1} · idle {:.1}",
                s.worker_seconds,
                s.worker_seconds_ratio,
                s.oracle_worker_seconds,
                s.idle_worker_seconds
            ),
        ),
        (
            "workers",
            format!(
                "max {} (oracle max {}) · {} threads started",
                s.max_workers, s.oracle_max_workers, s.threads_spawned
            ),
        ),
        (
            "reversals",
            format!("{:.1} per minute", s.reversals_per_min),
        ),
        (
            "recovery after step",
            s.recovery_s.map_or_else(
                || "- (no step in this trace)".to_string(),
                |r| format!("{r:.0} s"),
            ),
        ),
        ("controller CPU", format!("{:.1} ms", s.controller_cpu_ms)),
    ];
    if s.throughput_ratio.is_some() || s.sojourn_p99_ms.is_some() {
        rows.push((
            "spin throughput",
            format!("{} of min(λ, ncpu/S)", opt(s.throughput_ratio, 3)),
        ));
        rows.push((
            "sojourn",
            format!(
                "p50 {} ms · p99 {} ms · max {} ms",
                opt(s.sojourn_p50_ms, 2),
                opt(s.sojourn_p99_ms, 2),
                opt(s.sojourn_max_ms, 2)
            ),
        ));
    }
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<width$}  {v}");
    }
    out
}

/// The `compare` table: one row per contender.
pub fn compare_table(scores: &[Score]) -> String {
    let spin = scores.iter().any(|s| s.throughput_ratio.is_some());
    let mut header = vec![
        "contender",
        "burn",
        "p99 ms",
        "max ms",
        "win>SLO",
        "w·s",
        "÷oracle",
        "idle w·s",
        "max wk",
        "threads",
        "rev/min",
        "recov s",
        "ctl ms",
        "lost",
    ];
    if spin {
        header.extend(["thrpt", "soj p99"]);
    }
    let rows: Vec<Vec<String>> = scores
        .iter()
        .map(|s| {
            let mut r = vec![
                s.contender.clone(),
                format!("{:.2}", s.budget_burn),
                format!("{:.2}", s.wait_p99_ms),
                format!("{:.1}", s.wait_max_ms),
                format!("{:.1}%", 100.0 * s.windows_over_slo_fraction),
                format!("{:.0}", s.worker_seconds),
                format!("{:.2}", s.worker_seconds_ratio),
                format!("{:.0}", s.idle_worker_seconds),
                s.max_workers.to_string(),
                s.threads_spawned.to_string(),
                format!("{:.1}", s.reversals_per_min),
                opt(s.recovery_s, 0),
                format!("{:.1}", s.controller_cpu_ms),
                s.lost.to_string(),
            ];
            if spin {
                r.push(opt(s.throughput_ratio, 3));
                r.push(opt(s.sojourn_p99_ms, 1));
            }
            r
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut l = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                let _ = write!(l, " {c:<w$}", w = widths[i]);
            } else {
                let _ = write!(l, "  {c:>w$}", w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.clone(), &mut out);
    for r in &rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    let _ = writeln!(
        out,
        "  burn = tasks over the SLO / 1% of tasks; ÷oracle = worker-seconds over the oracle's{}",
        if spin {
            "; thrpt = completions over min(λ, ncpu/S)"
        } else {
            ""
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(name: &str) -> Score {
        Score {
            trace: "step".into(),
            contender: name.into(),
            seed: 1,
            mode: Mode::Virtual,
            note: Mode::Virtual.note().into(),
            speed: 1.0,
            duration_s: 150.0,
            slo_ms: 20.0,
            ncpu: 2,
            submitted: 10,
            completed: 10,
            rejected: 0,
            lost: 0,
            scored_tasks: 9,
            wait_p50_ms: 0.1,
            wait_p99_ms: 12.0,
            wait_max_ms: 30.0,
            budget_burn: 0.5,
            windows_over_slo_fraction: 0.05,
            worker_seconds: 1300.0,
            oracle_worker_seconds: 1000.0,
            worker_seconds_ratio: 1.3,
            idle_worker_seconds: 600.0,
            reversals_per_min: 2.0,
            recovery_s: Some(1.0),
            max_workers: 18,
            oracle_max_workers: 16,
            threads_spawned: 20,
            controller_cpu_ms: 3.0,
            throughput_ratio: None,
            sojourn_p50_ms: None,
            sojourn_p99_ms: None,
            sojourn_max_ms: None,
        }
    }

    #[test]
    fn tables_show_the_figures() {
        let s = summary(&score("erlang"));
        assert!(s.contains("budget burn") && s.contains("0.50") && s.contains("1.30 ×"));
        let t = compare_table(&[score("erlang"), score("on-demand")]);
        assert_eq!(t.lines().count(), 4);
        assert!(t.contains("on-demand") && t.contains("÷oracle"));
        assert!(heading("compare", "step", 1, Mode::Virtual, 2, 1.0).contains("not a measurement"));
    }
}
