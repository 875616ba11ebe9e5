//! Accuracy and correctness of `elastic_pool::histogram`: quantiles against an exact sort and
//! against the `hdrhistogram` crate, merge and delta algebra, and concurrent recording.

use elastic_pool::histogram::{
    bucket_index, bucket_range, bucket_upper_bound, bucket_value, Histogram, Snapshot, BUCKETS,
    MAX_RELATIVE_ERROR, OVERFLOW_NS, UNDERFLOW_NS,
};
use proptest::prelude::*;

/// Quantiles under test as exact fractions `num / 1000`, so the exact rank is integer arithmetic.
const QUANTILES: [u64; 4] = [500, 900, 990, 999];

/// splitmix64: a small seeded generator, enough for test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[derive(Clone, Copy, Debug)]
enum Dist {
    /// Uniform over 1 µs .. 100 ms.
    Uniform,
    /// Exponential with mean 50 ms.
    Exponential,
    /// Lognormal, median 5 ms, σ = 1.5 (a long tail).
    Lognormal,
    /// 90% around 200 µs, 10% around 80 ms.
    Bimodal,
}

const DISTS: [Dist; 4] = [
    Dist::Uniform,
    Dist::Exponential,
    Dist::Lognormal,
    Dist::Bimodal,
];

fn sample(dist: Dist, rng: &mut Rng) -> u64 {
    let ns = match dist {
        Dist::Uniform => 1_000.0 + (rng.next_u64() % 99_999_000) as f64,
        Dist::Exponential => -rng.unit().ln() * 50e6,
        Dist::Lognormal => (5e6f64.ln() + 1.5 * rng.normal()).exp(),
        Dist::Bimodal => {
            let median: f64 = if rng.next_u64() % 10 == 0 {
                80e6
            } else {
                200e3
            };
            (median.ln() + 0.3 * rng.normal()).exp()
        }
    };
    (ns as u64).min(OVERFLOW_NS - 1)
}

fn data(dist: Dist, seed: u64, n: usize) -> Vec<u64> {
    let mut rng = Rng(seed);
    (0..n).map(|_| sample(dist, &mut rng)).collect()
}

/// `⌈n·num/1000⌉`, at least 1.
fn exact_rank(n: u64, num: u64) -> u64 {
    (n * num).div_ceil(1000).max(1)
}

/// The documented bound of `Snapshot::quantile` for an exact rank-r value `exact`.
fn within_bound(reported: u64, exact: u64) -> bool {
    if exact < UNDERFLOW_NS {
        reported == 512
    } else if exact >= OVERFLOW_NS {
        reported == OVERFLOW_NS
    } else {
        reported.abs_diff(exact) as f64 <= exact as f64 * MAX_RELATIVE_ERROR
    }
}

fn snapshot_of(values: &[u64]) -> Snapshot {
    let h = Histogram::new();
    for &v in values {
        h.record(v);
    }
    let mut s = Snapshot::new();
    h.snapshot_into(&mut s);
    s
}

/// Checks every quantile in `QUANTILES` against the sorted data and against hdrhistogram.
fn check_accuracy(dist: Dist, values: &[u64]) -> Result<(), TestCaseError> {
    let s = snapshot_of(values);
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len() as u64;
    prop_assert_eq!(s.count(), n);
    prop_assert_eq!(s.sum_ns(), sorted.iter().sum::<u64>());

    let mut hdr = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1 << 40, 3).unwrap();
    for &v in values {
        hdr.record(v).unwrap();
    }

    for num in QUANTILES {
        let q = num as f64 / 1000.0;
        let r = exact_rank(n, num);
        let exact = sorted[(r - 1) as usize];
        let got = s.quantile(q).unwrap();
        // The reported value is the documented representative of the exact sample's bucket ...
        prop_assert_eq!(
            got,
            bucket_value(bucket_index(exact)),
            "{:?} q={} n={}",
            dist,
            q,
            n
        );
        // ... and so within the stated error bound.
        prop_assert!(
            within_bound(got, exact),
            "{:?} q={} n={}: got {} exact {}",
            dist,
            q,
            n,
            got,
            exact
        );

        // hdrhistogram (3 significant digits, reports the top of its ~0.1%-wide bucket) at the
        // same rank; (r − ½)/n makes its ⌈q·n⌉ land on r without floating-point doubt.
        let h = hdr.value_at_quantile((r as f64 - 0.5) / n as f64);
        let allowed = (h as f64 * MAX_RELATIVE_ERROR).max(512.0) + h as f64 / 512.0;
        prop_assert!(
            got.abs_diff(h) as f64 <= allowed,
            "{:?} q={} n={}: ours {} hdrhistogram {}",
            dist,
            q,
            n,
            got,
            h
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn quantiles_within_bound(dist in 0..DISTS.len(), seed in any::<u64>(), n in 1usize..20_000) {
        let dist = DISTS[dist];
        check_accuracy(dist, &data(dist, seed, n))?;
    }

    #[test]
    fn merge_of_shards_is_histogram_of_union(
        shard_count in 1usize..20,
        records in prop::collection::vec((any::<usize>(), value()), 0..500)
    ) {
        let shards: Vec<Histogram> = (0..shard_count).map(|_| Histogram::new()).collect();
        for &(shard, v) in &records {
            shards[shard % shard_count].record(v);
        }
        let values: Vec<u64> = records.iter().map(|&(_, v)| v).collect();
        let union = snapshot_of(&values);

        // Clear, then add each live shard: the tick's merge.
        let mut merged = snapshot_of(&[3, 5_000]);
        merged.clear();
        for h in &shards {
            merged.add_histogram(h);
        }
        prop_assert_eq!(&merged, &union);

        // All shards at once (eight at a time, then the remainder one by one).
        let mut grouped = snapshot_of(&[7]);
        grouped.clear();
        grouped.add_histograms(&shards);
        prop_assert_eq!(&grouped, &union);

        // Merging shard snapshots gives the same.
        let mut merged2 = Snapshot::new();
        let mut one = Snapshot::new();
        for h in &shards {
            h.snapshot_into(&mut one);
            merged2.merge(&one);
        }
        prop_assert_eq!(&merged2, &union);
        prop_assert_eq!(merged2.count(), records.len() as u64);
    }

    #[test]
    fn delta_is_histogram_of_records_between(
        records in prop::collection::vec((0usize..4, value()), 0..500),
        split in any::<prop::sample::Index>(),
    ) {
        let k = split.index(records.len() + 1);
        let shards: Vec<Histogram> = (0..4).map(|_| Histogram::new()).collect();
        let merged = |out: &mut Snapshot| {
            out.clear();
            for h in &shards {
                out.add_histogram(h);
            }
        };
        let (mut before, mut after, mut window) = (Snapshot::new(), Snapshot::new(), Snapshot::new());
        for &(shard, v) in &records[..k] {
            shards[shard].record(v);
        }
        merged(&mut before);
        for &(shard, v) in &records[k..] {
            shards[shard].record(v);
        }
        merged(&mut after);
        after.delta_into(&before, &mut window);
        let between: Vec<u64> = records[k..].iter().map(|&(_, v)| v).collect();
        prop_assert_eq!(&window, &snapshot_of(&between));
        // And the reverse order saturates at zero rather than wrapping.
        before.delta_into(&after, &mut window);
        prop_assert_eq!(window.count(), 0);
        prop_assert_eq!(window.sum_ns(), 0);
    }
}

/// The full merge, reading every bucket of every shard (`snapshot_into` is dense): the
/// reference for the sparse merges, which read only each shard's touched buckets.
fn full_merge(shards: &[Histogram]) -> Snapshot {
    let (mut out, mut one) = (Snapshot::new(), Snapshot::new());
    for h in shards {
        h.snapshot_into(&mut one);
        out.merge(&one);
    }
    out
}

proptest! {
    /// The sparse merges (one shard at a time, and eight at a time over the union of their
    /// touched buckets) equal the dense merge, at every step of a recording sequence, for
    /// buckets anywhere in the range (every word of the touched bitmap) and `record_n`.
    #[test]
    fn sparse_merge_equals_full_merge(
        shard_count in 1usize..26,
        steps in prop::collection::vec(
            prop::collection::vec((any::<usize>(), 0usize..BUCKETS, 0u64..4), 0..40),
            1..6,
        ),
    ) {
        let shards: Vec<Histogram> = (0..shard_count).map(|_| Histogram::new()).collect();
        let mut previous = Snapshot::new();
        let mut window = Snapshot::new();
        for step in &steps {
            for &(shard, bucket, n) in step {
                let h = &shards[shard % shard_count];
                // Either end of the bucket's range; n = 0 touches the bucket without counting.
                let v = if n % 2 == 0 { bucket_range(bucket).start } else { bucket_upper_bound(bucket) };
                if n == 1 {
                    h.record(v);
                } else {
                    h.record_n(v, n);
                }
            }
            let full = full_merge(&shards);
            let mut one_by_one = Snapshot::new();
            for h in &shards {
                one_by_one.add_histogram(h);
            }
            prop_assert_eq!(&one_by_one, &full);
            let mut grouped = Snapshot::new();
            grouped.add_histograms(&shards);
            prop_assert_eq!(&grouped, &full);
            // The window is exactly this step's records.
            grouped.delta_into(&previous, &mut window);
            let step_count: u64 = step.iter().map(|&(_, _, n)| n).sum();
            prop_assert_eq!(window.count(), step_count);
            previous = grouped;
        }
    }
}

proptest! {
    /// `quantiles` (one scan) gives what `quantile` gives for each, in any order, with NaN
    /// and out-of-range `q` handled the same way.
    #[test]
    fn quantiles_equal_quantile_each(
        values in prop::collection::vec(value(), 0..300),
        qs in prop::array::uniform5(prop_oneof![
            0.0f64..=1.0,
            Just(0.5),
            Just(0.99),
            Just(0.999),
            Just(1.0),
            Just(-0.5),
            Just(2.0),
            Just(f64::NAN),
        ]),
    ) {
        let s = snapshot_of(&values);
        let want = qs.map(|q| s.quantile(q));
        prop_assert_eq!(s.quantiles(qs), want);
    }
}

/// Values across all the bucket regimes: underflow, the log-linear range, overflow.
fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..4_096,
        1_000u64..100_000_000,
        0u64..(1 << 40),
        Just(OVERFLOW_NS),
        Just(u64::MAX >> 20),
    ]
}

#[test]
fn quantiles_within_bound_on_large_samples() {
    for (i, dist) in DISTS.into_iter().enumerate() {
        check_accuracy(dist, &data(dist, 0xE1A5_71C0 + i as u64, 200_000)).unwrap();
    }
}

#[test]
fn concurrent_recording_is_exact() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 50_000;
    let value = |t: u64, i: u64| (t * 7_919 + i * 104_729) % 200_000_000;

    let shared = Histogram::new();
    let mut seen_counts = Vec::new();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let h = &shared;
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    if i % 10 == 0 {
                        h.record_n(value(t, i), 2);
                    } else {
                        h.record(value(t, i));
                    }
                }
            });
        }
        // A reader racing the writers: the count it sees never goes backwards, through the
        // dense copy or the sparse merge (which reads only touched buckets), and no bucket of
        // the sparse merge ever goes backwards either (deltas saturate, so that would lose
        // records).
        let mut snap = Snapshot::new();
        let (mut sparse, mut previous) = (Snapshot::new(), Snapshot::new());
        for _ in 0..200 {
            shared.snapshot_into(&mut snap);
            seen_counts.push(snap.count());
            sparse.clear();
            sparse.add_histogram(&shared);
            for i in 0..BUCKETS {
                assert!(
                    sparse.bucket_count(i) >= previous.bucket_count(i),
                    "bucket {i}"
                );
            }
            std::mem::swap(&mut sparse, &mut previous);
        }
    });
    assert!(
        seen_counts.windows(2).all(|w| w[0] <= w[1]),
        "count went backwards"
    );
    let mut sparse = Snapshot::new();
    sparse.add_histogram(&shared);
    let mut dense = Snapshot::new();
    shared.snapshot_into(&mut dense);
    assert_eq!(sparse, dense);

    let expected = Histogram::new();
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            let n = if i % 10 == 0 { 2 } else { 1 };
            expected.record_n(value(t, i), n);
        }
    }
    let (mut got, mut want) = (Snapshot::new(), Snapshot::new());
    shared.snapshot_into(&mut got);
    expected.snapshot_into(&mut want);
    assert_eq!(got.count(), THREADS * PER_THREAD * 11 / 10);
    let sum: u64 = (0..THREADS)
        .flat_map(|t| (0..PER_THREAD).map(move |i| value(t, i) * if i % 10 == 0 { 2 } else { 1 }))
        .sum();
    assert_eq!(got.sum_ns(), sum);
    assert_eq!(got, want);
}
