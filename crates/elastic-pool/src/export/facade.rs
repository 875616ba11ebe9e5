//! Publishing the registered pools' signals through the `metrics` facade, so that an
//! application's own recorder (Prometheus, StatsD, OpenTelemetry…) exports them.
//!
//! The names, labels and units are those of the Prometheus exposition (docs/OBSERVABILITY.md).
//! Counters are set to the pool's exact totals ([`Counter::absolute`](metrics::Counter)),
//! gauges to their current values. The facade's histograms take observations, not buckets,
//! so each publish feeds them what the pool recorded since the previous publish: for every
//! fine bucket of the pool's histogram that gained `n` records, `n` observations of the
//! bucket's midpoint (within 1/16 of each true value), with `record_many`. A recorder that
//! keeps a summary or its own buckets thus sees the same distribution, one publish late.
//!
//! Call [`Exporter::publish`] every few seconds (at least as often as your recorder
//! exports), or let [`Exporter::spawn_publisher`] do it from a thread of its own.

use super::Exporter;
use crate::histogram::{bucket_value, Snapshot, BUCKETS};
use crate::sync::lock_std as lock;
use metrics::{Label, Unit};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counter names, units and descriptions (the Prometheus exposition's).
const COUNTERS: [(&str, Unit, &str); 8] = [
    (
        "elastic_pool_tasks_submitted_total",
        Unit::Count,
        "Tasks accepted.",
    ),
    (
        "elastic_pool_tasks_completed_total",
        Unit::Count,
        "Tasks that ran.",
    ),
    (
        "elastic_pool_tasks_rejected_total",
        Unit::Count,
        "Tasks refused, by reason.",
    ),
    (
        "elastic_pool_tasks_panicked_total",
        Unit::Count,
        "Tasks that panicked.",
    ),
    (
        "elastic_pool_scale_events_total",
        Unit::Count,
        "Target changes, by direction.",
    ),
    (
        "elastic_pool_workers_started_total",
        Unit::Count,
        "Worker threads started.",
    ),
    (
        "elastic_pool_workers_retired_total",
        Unit::Count,
        "Worker threads retired.",
    ),
    (
        "elastic_pool_busy_seconds_total",
        Unit::Seconds,
        "Worker-seconds spent running tasks.",
    ),
];

/// Gauge names, units and descriptions.
const GAUGES: [(&str, Unit, &str); 8] = [
    ("elastic_pool_workers", Unit::Count, "Worker threads alive."),
    ("elastic_pool_workers_idle", Unit::Count, "Workers parked."),
    (
        "elastic_pool_workers_busy",
        Unit::Count,
        "Workers running tasks.",
    ),
    (
        "elastic_pool_workers_min",
        Unit::Count,
        "Lower bound on workers.",
    ),
    (
        "elastic_pool_workers_max",
        Unit::Count,
        "Upper bound on workers.",
    ),
    (
        "elastic_pool_workers_target",
        Unit::Count,
        "Current growth ceiling.",
    ),
    (
        "elastic_pool_queue_depth",
        Unit::Count,
        "Queue entries waiting.",
    ),
    (
        "elastic_pool_demand_workers",
        Unit::Count,
        "Workers the load needs (additive).",
    ),
];

/// The sampling ratio gauge (0..1: no facade unit fits).
const SAMPLING: (&str, &str) = (
    "elastic_pool_wait_sampling_ratio",
    "Share of tasks whose wait and run time are timed (0..1).",
);

/// Histogram names and descriptions (seconds).
const HISTOGRAMS: [(&str, &str); 2] = [
    (
        "elastic_pool_queue_wait_seconds",
        "Queue wait of sampled tasks.",
    ),
    (
        "elastic_pool_service_time_seconds",
        "Run time of sampled tasks.",
    ),
];

fn describe() {
    for (name, unit, help) in COUNTERS {
        metrics::describe_counter!(name, unit, help);
    }
    for (name, unit, help) in GAUGES {
        metrics::describe_gauge!(name, unit, help);
    }
    metrics::describe_gauge!(SAMPLING.0, SAMPLING.1);
    for (name, help) in HISTOGRAMS {
        metrics::describe_histogram!(name, Unit::Seconds, help);
    }
}

/// Records `now − before` into the facade histogram `name` as bucket midpoints.
fn record_delta(name: &'static str, labels: &[Label], now: &Snapshot, before: Option<&Snapshot>) {
    let h = metrics::histogram!(name, labels.iter());
    for i in 0..BUCKETS {
        let n = now
            .bucket_count(i)
            .saturating_sub(before.map_or(0, |b| b.bucket_count(i)));
        if n > 0 {
            let secs = bucket_value(i) as f64 / 1e9;
            h.record_many(secs, usize::try_from(n).unwrap_or(usize::MAX));
        }
    }
}

impl Exporter {
    /// Publishes every registered pool's signals once through the `metrics` facade (to the
    /// recorder in force on this thread: the global one, or a local one). Call it
    /// periodically; see the module documentation for how histograms are fed.
    pub fn publish(&self) {
        describe();
        for entry in self.entries() {
            let s = entry.sample();
            let pool = || Label::new("pool", s.name.to_string());
            let labels = [pool()];
            let c = &s.counters;
            let with = |k: &'static str, v: &'static str| [pool(), Label::new(k, v)];
            metrics::counter!(COUNTERS[0].0, labels.iter()).absolute(c.submitted);
            metrics::counter!(COUNTERS[1].0, labels.iter()).absolute(c.completed);
            metrics::counter!(COUNTERS[2].0, with("reason", "overloaded").iter())
                .absolute(c.rejected_overloaded);
            metrics::counter!(COUNTERS[2].0, with("reason", "shutdown").iter())
                .absolute(c.rejected_shutdown);
            metrics::counter!(COUNTERS[3].0, labels.iter()).absolute(c.panicked);
            metrics::counter!(COUNTERS[4].0, with("direction", "up").iter()).absolute(c.scale_up);
            metrics::counter!(COUNTERS[4].0, with("direction", "down").iter())
                .absolute(c.scale_down);
            metrics::counter!(COUNTERS[5].0, labels.iter()).absolute(c.spawned);
            metrics::counter!(COUNTERS[6].0, labels.iter()).absolute(c.retired);
            // The facade's counters are integers: busy time goes out in whole seconds.
            metrics::counter!(COUNTERS[7].0, labels.iter()).absolute(c.busy_ns / 1_000_000_000);

            let st = &s.stats;
            let gauges = [
                st.live as f64,
                st.idle as f64,
                st.busy as f64,
                st.min as f64,
                st.max as f64,
                st.target as f64,
                st.queued as f64,
            ];
            for ((name, _, _), v) in GAUGES.iter().zip(gauges) {
                metrics::gauge!(*name, labels.iter()).set(v);
            }
            if let Some(d) = s.demand {
                metrics::gauge!(GAUGES[7].0, labels.iter()).set(d);
            }
            metrics::gauge!(SAMPLING.0, labels.iter()).set(1.0 / f64::from(s.wait_sampling));

            let mut state = lock(&entry.state);
            let before = state.published.take();
            record_delta(
                HISTOGRAMS[0].0,
                &labels,
                &s.wait,
                before.as_ref().map(|b| &*b.0),
            );
            record_delta(
                HISTOGRAMS[1].0,
                &labels,
                &s.service,
                before.as_ref().map(|b| &*b.1),
            );
            state.published = Some((s.wait, s.service));
        }
    }

    /// Calls [`publish`](Exporter::publish) every `every` from a thread of its own (named
    /// `elastic-pool-publish`), publishing to the global recorder, until the returned
    /// [`Publisher`] is dropped.
    ///
    /// # Errors
    /// The OS refused the thread.
    pub fn spawn_publisher(&self, every: Duration) -> std::io::Result<Publisher> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let exporter = self.clone();
        let thread = std::thread::Builder::new()
            .name("elastic-pool-publish".into())
            .spawn(move || {
                let mut next = Instant::now();
                while !flag.load(Acquire) {
                    let now = Instant::now();
                    if now >= next {
                        exporter.publish();
                        next = now + every;
                    } else {
                        std::thread::park_timeout(next - now);
                    }
                }
            })?;
        Ok(Publisher {
            stop,
            thread: Some(thread),
        })
    }
}

/// A thread publishing an [`Exporter`]'s pools through the `metrics` facade, from
/// [`Exporter::spawn_publisher`]. Dropping it stops and joins the thread.
#[derive(Debug)]
pub struct Publisher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Exporter;
    use crate::histogram::Snapshot;
    use metrics::atomics::AtomicU64;
    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };
    use std::collections::HashMap;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::{Arc, Mutex};

    /// Observations as (value, count).
    #[derive(Default)]
    struct Hist(Mutex<Vec<(f64, usize)>>);

    impl metrics::HistogramFn for Hist {
        fn record(&self, v: f64) {
            self.record_many(v, 1);
        }
        fn record_many(&self, v: f64, n: usize) {
            self.0.lock().unwrap().push((v, n));
        }
    }

    /// A recorder that keeps every handle by `name{labels}`.
    #[derive(Default)]
    struct Rec {
        counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
        gauges: Mutex<HashMap<String, Arc<AtomicU64>>>,
        hists: Mutex<HashMap<String, Arc<Hist>>>,
    }

    fn id(key: &Key) -> String {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    impl Rec {
        fn counter(&self, k: &str) -> u64 {
            self.counters.lock().unwrap()[k].load(Relaxed)
        }
        fn gauge(&self, k: &str) -> f64 {
            f64::from_bits(self.gauges.lock().unwrap()[k].load(Relaxed))
        }
        fn observations(&self, k: &str) -> (usize, f64) {
            let h = Arc::clone(&self.hists.lock().unwrap()[k]);
            let obs = h.0.lock().unwrap();
            (
                obs.iter().map(|o| o.1).sum(),
                obs.iter().map(|o| o.0 * o.1 as f64).sum(),
            )
        }
    }

    impl Recorder for Rec {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let mut m = self.counters.lock().unwrap();
            Counter::from_arc(Arc::clone(m.entry(id(key)).or_default()))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            let mut m = self.gauges.lock().unwrap();
            Gauge::from_arc(Arc::clone(m.entry(id(key)).or_default()))
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            let mut m = self.hists.lock().unwrap();
            Histogram::from_arc(Arc::clone(m.entry(id(key)).or_default()))
        }
    }

    fn run(pool: &crate::Pool, n: usize) {
        for _ in 0..n {
            pool.execute(|| std::thread::sleep(std::time::Duration::from_micros(200)))
                .unwrap();
        }
        let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while {
            let s = pool.stats();
            s.completed < s.submitted || s.busy > 0
        } {
            assert!(std::time::Instant::now() < end, "the pool did not settle");
            std::thread::yield_now();
        }
    }

    #[test]
    fn publishes_the_same_signals_and_feeds_histograms_only_what_is_new() {
        let pool = crate::Pool::builder()
            .max_workers(3)
            .wait_sampling(1)
            .build()
            .unwrap();
        let exporter = Exporter::new();
        exporter.register("f", &pool).unwrap();
        let rec = Rec::default();
        run(&pool, 50);
        metrics::with_local_recorder(&rec, || exporter.publish());
        let s = pool.stats();
        let wait_key = "elastic_pool_queue_wait_seconds{pool=f}";
        assert_eq!(
            rec.counter("elastic_pool_tasks_submitted_total{pool=f}"),
            50
        );
        assert_eq!(
            rec.counter("elastic_pool_tasks_completed_total{pool=f}"),
            50
        );
        assert_eq!(
            rec.counter("elastic_pool_tasks_rejected_total{pool=f,reason=overloaded}"),
            0
        );
        assert_eq!(rec.gauge("elastic_pool_workers_max{pool=f}"), 3.0);
        assert_eq!(rec.gauge("elastic_pool_wait_sampling_ratio{pool=f}"), 1.0);
        assert_eq!(rec.observations(wait_key).0 as u64, s.wait_samples);

        // A second publish adds only the new records, at their buckets' midpoints.
        run(&pool, 30);
        metrics::with_local_recorder(&rec, || exporter.publish());
        let (mut wait, mut service) = (Snapshot::new(), Snapshot::new());
        pool.histograms(&mut wait, &mut service);
        assert_eq!(
            rec.counter("elastic_pool_tasks_submitted_total{pool=f}"),
            80
        );
        let (n, sum) = rec.observations("elastic_pool_service_time_seconds{pool=f}");
        assert_eq!(n as u64, service.count());
        let exact = service.sum_ns() as f64 / 1e9;
        assert!(
            (sum - exact).abs() <= exact * crate::histogram::MAX_RELATIVE_ERROR,
            "{sum} vs {exact}"
        );
        assert_eq!(rec.observations(wait_key).0 as u64, wait.count());
    }
}
