//! Measures what an idle autoscaled pool costs: CPU time and wake-ups of the control thread
//! and of the workers over an idle period, read from /proc (Linux only).
//!
//! `cargo run --release -p elastic-pool --example idle_cost -- [seconds] [workers]`
//! (defaults: 10 s, 64 workers).

use elastic_pool::policy::Policy;
use elastic_pool::Pool;
use std::time::Duration;

/// (cpu_ns, voluntary + involuntary context switches) summed over this process's threads
/// whose name starts with `prefix`.
fn threads(prefix: &str) -> (u64, u64, usize) {
    let mut cpu = 0;
    let mut switches = 0;
    let mut n = 0;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0, 0);
    };
    for entry in dir.flatten() {
        let p = entry.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        n += 1;
        // schedstat: nanoseconds on CPU, nanoseconds waiting, timeslices.
        let sched = std::fs::read_to_string(p.join("schedstat")).unwrap_or_default();
        cpu += sched
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let status = std::fs::read_to_string(p.join("status")).unwrap_or_default();
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches")
                || line.starts_with("nonvoluntary_ctxt_switches")
            {
                switches += line
                    .split_whitespace()
                    .last()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    (cpu, switches, n)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let pool = Pool::builder()
        .autoscale(Policy {
            min_workers: workers,
            max_workers: workers.max(1) * 2,
            ..Policy::default()
        })
        .prestart(true)
        .build()
        .expect("valid policy");
    // Let every worker park once.
    while pool.stats().idle < workers {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (c0, s0, nc) = threads("elastic-pool-ct");
    let (w0, ws0, nw) = threads("elastic-pool-wo");
    std::thread::sleep(Duration::from_secs(secs));
    let (c1, s1, _) = threads("elastic-pool-ct");
    let (w1, ws1, _) = threads("elastic-pool-wo");
    println!("idle for {secs} s with {nw} parked workers and {nc} control thread(s):");
    println!(
        "  control thread: {:.3} ms CPU, {} context switches (~{} control ticks at 500 ms ± 10 %)",
        (c1 - c0) as f64 / 1e6,
        s1 - s0,
        secs * 2
    );
    println!(
        "  workers:        {:.3} ms CPU, {} context switches",
        (w1 - w0) as f64 / 1e6,
        ws1 - ws0
    );
}
