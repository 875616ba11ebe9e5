//! The control tick's signal operations allocate nothing: histogram record, snapshot, shard
//! merge, delta and quantile, and EWMA updates, checked with a counting global allocator.
//!
//! The counter is thread-local, so allocations by other test threads (or the harness) are not
//! counted; only allocations made on this thread inside the measured region are.

use std::hint::black_box;
use std::time::Duration;

use elastic_pool::ewma::{Ewma, PeakEwma};
use elastic_pool::histogram::{Histogram, Snapshot};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

/// Allocations made on this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    counting_alloc::allocations_in(f).1
}

#[test]
fn the_counter_sees_allocations() {
    // Guard against a vacuous pass: an allocation inside the region is counted.
    let n = allocations_in(|| {
        black_box(Box::new(black_box(7u64)));
    });
    assert!(n >= 1, "counting allocator missed an allocation");
    let n = allocations_in(|| {
        let mut v: Vec<u64> = Vec::with_capacity(1);
        v.extend(black_box([1, 2, 3]));
        black_box(v);
    });
    assert!(n >= 2, "counting allocator missed a realloc: {n}");
}

#[test]
fn signal_operations_do_not_allocate() {
    // Set-up (allowed to allocate): 8 shards, snapshots, averages.
    let shards: Vec<Histogram> = (0..8).map(|_| Histogram::new()).collect();
    let mut total = Box::new(Snapshot::new());
    let mut previous = Box::new(Snapshot::new());
    let mut window = Box::new(Snapshot::new());
    let mut one = Box::new(Snapshot::new());
    let mut lambda = Ewma::new(Duration::from_secs(5));
    let mut wait = PeakEwma::new(Duration::from_secs(5));

    let mut checksum = 0u64;
    for round in 0..5u64 {
        let n = allocations_in(|| {
            // Workers record.
            for (i, h) in shards.iter().enumerate() {
                for k in 0..100u64 {
                    h.record(black_box((k + 1) * 7_919 * (i as u64 + 1) * (round + 1)));
                }
                h.record_n(black_box(2_000_000), 3);
            }
            // The tick: merge shards, window since the last tick, quantiles, smoothing.
            total.clear();
            for h in &shards {
                total.add_histogram(h);
            }
            one.clear();
            one.add_histograms(&shards);
            assert_eq!(one.count(), total.count());
            shards[0].snapshot_into(&mut one);
            one.merge(&total);
            total.delta_into(&previous, &mut window);
            for q in [0.5, 0.9, 0.99, 0.999] {
                checksum = checksum.wrapping_add(window.quantile(black_box(q)).unwrap_or(0));
            }
            let mean = window.mean_ns().unwrap_or(0.0);
            let now = (round + 1) * 500_000_000;
            let l = lambda.update(black_box(window.count() as f64), now);
            let w = wait.update(black_box(mean), now);
            checksum = checksum.wrapping_add(l as u64 + w as u64 + window.bucket_count(5));
            std::mem::swap(&mut previous, &mut total);
        });
        assert_eq!(n, 0, "round {round}: {n} allocation(s) in the signal path");
    }
    // The work was real: the windows held records and the quantiles were found.
    assert!(checksum > 0);
    assert_eq!(previous.count(), 5 * 8 * 103);
}
