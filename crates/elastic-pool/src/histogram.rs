//! A fixed-memory, lock-free log-linear histogram of durations in nanoseconds: an H2 histogram
//! (Brian Martin, <https://iop.systems/blog/h2-histogram/>, as used by tokio's
//! `runtime/metrics/histogram/h2_histogram.rs`), with HdrHistogram-style bucket precision.
//!
//! # Design
//!
//! Every power of two `[2^k, 2^(k+1))` for `k` in `10..36` is cut into `2^3 = 8` equal linear
//! sub-buckets, so a bucket is never wider than 1/8 of its lower bound. Values below
//! [`UNDERFLOW_NS`] (1 024 ns, about 1 µs) share bucket 0 and values at or above
//! [`OVERFLOW_NS`] (2^36 ns, about 68.7 s) share the last bucket: 1 + 26·8 + 1 = [`BUCKETS`] = 210
//! buckets in all. The index is pure bit arithmetic (a clamp, `leading_zeros`, a shift and an
//! add), with no search or loop.
//!
//! Why these numbers: a merge of shards costs one relaxed load and one add per bucket it reads,
//! so the bucket count bounds it. (Each histogram also keeps a bitmap of the buckets it has
//! ever recorded into, and merges read only those: a shard's values usually span a few
//! octaves, a few dozen of the 210 buckets.) The pool's control tick usually avoids the merge
//! altogether: it folds each worker's [`SampleLog`](crate::sample_log::SampleLog) of recent
//! records into the window and merges only when a log has been outrun. Three sub-bucket bits
//! keep the reported quantile within 1/16 of the true value (see [`Snapshot::quantile`]), which
//! is finer than the run-to-run noise of a 500 ms window's p99; four bits would double the
//! merge cost for a 3% gain.
//!
//! A [`Histogram`] is written by any number of threads with relaxed atomics only. The control
//! thread reads it into a plain [`Snapshot`] (a caller-owned buffer, so nothing allocates), takes
//! the difference from the previous tick's snapshot ([`Snapshot::delta_into`]) to get the window
//! since that tick, and asks the window for quantiles. Reads are not atomic across buckets: a
//! snapshot taken while threads record may include a record's bucket but not yet its sum, or the
//! reverse. Each bucket is monotonic, so the error is bounded by the records in flight and is
//! picked up by the next window; delta saturates per bucket so it can never go negative.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Sub-bucket bits: each power of two is split into `2^SUB_BUCKET_BITS` linear buckets.
pub const SUB_BUCKET_BITS: u32 = 3;

/// Linear sub-buckets per power of two.
const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;

/// `log2` of [`UNDERFLOW_NS`].
const MIN_EXP: u32 = 10;

/// `log2` of [`OVERFLOW_NS`].
const MAX_EXP: u32 = 36;

/// Values below this (1 024 ns ≈ 1 µs) all land in bucket 0.
pub const UNDERFLOW_NS: u64 = 1 << MIN_EXP;

/// Values at or above this (2^36 ns ≈ 68.7 s) all land in the last (overflow) bucket.
pub const OVERFLOW_NS: u64 = 1 << MAX_EXP;

/// Number of buckets: one underflow bucket, 8 per power of two from 2^10 to 2^36 ns, one
/// overflow bucket (210).
pub const BUCKETS: usize = 1 + (MAX_EXP - MIN_EXP) as usize * SUB_BUCKETS + 1;

/// Size in bytes of a [`Snapshot`]: 210 bucket counters plus the sum, 8 bytes each (1 688
/// bytes, about 26.4 cache lines).
pub const SNAPSHOT_BYTES: usize = (BUCKETS + 1) * 8;

/// Size in bytes of a [`Histogram`]: a [`Snapshot`]'s counters plus the 4-word touched-bucket
/// bitmap and a spare word, 27 whole 64-byte cache lines (1 728 bytes): the bitmap, the sum and
/// the underflow and overflow buckets share the first line, each octave has one line.
pub const HISTOGRAM_BYTES: usize = WORDS * 8;

/// Worst-case relative error of [`Snapshot::quantile`] for values in
/// `UNDERFLOW_NS..OVERFLOW_NS`: `2^-(SUB_BUCKET_BITS + 1)` = 1/16 = 6.25%.
pub const MAX_RELATIVE_ERROR: f64 = 1.0 / (2 * SUB_BUCKETS) as f64;

// The range promised in the module docs: 1 µs resolution floor, at least 60 s before overflow.
const _: () = assert!(UNDERFLOW_NS <= 1_024 && OVERFLOW_NS >= 60_000_000_000);
const _: () = assert!(BUCKETS == 210 && SNAPSHOT_BYTES == 1_688 && HISTOGRAM_BYTES == 1_728);

/// Subtracted from the raw H2 index so that `UNDERFLOW_NS - 1` maps to 0. In the raw index,
/// `v` with `h = floor(log2 v) ≥ SUB_BUCKET_BITS` is `((h - SUB_BUCKET_BITS) << SUB_BUCKET_BITS)
/// + (v >> (h - SUB_BUCKET_BITS))`; for `v = 2^MIN_EXP - 1` that is this constant.
const INDEX_OFFSET: u64 =
    (((MIN_EXP - 1 - SUB_BUCKET_BITS) as u64) << SUB_BUCKET_BITS) + (2 * SUB_BUCKETS as u64 - 1);

/// The bucket that `ns` is counted in. O(1): a clamp, `leading_zeros`, a shift and an add.
///
/// Bucket 0 holds `0..UNDERFLOW_NS`, bucket `BUCKETS - 1` holds `OVERFLOW_NS..=u64::MAX`.
#[inline]
pub const fn bucket_index(ns: u64) -> usize {
    // Clamping below to UNDERFLOW_NS - 1 puts every small value in the last sub-bucket of the
    // octave under the range, which the offset turns into bucket 0; clamping above to
    // OVERFLOW_NS puts every large value in the first sub-bucket past the range (the last bucket).
    let v = if ns < UNDERFLOW_NS - 1 {
        UNDERFLOW_NS - 1
    } else if ns > OVERFLOW_NS {
        OVERFLOW_NS
    } else {
        ns
    };
    let h = 63 - v.leading_zeros(); // floor(log2 v), in MIN_EXP - 1 ..= MAX_EXP
    let shift = h - SUB_BUCKET_BITS;
    // (v >> shift) is in SUB_BUCKETS..2 * SUB_BUCKETS: the leading 1 and the next 3 bits.
    (((shift as u64) << SUB_BUCKET_BITS) + (v >> shift) - INDEX_OFFSET) as usize
}

/// The values counted in bucket `i`, as a half-open range.
///
/// Bucket 0 is `0..UNDERFLOW_NS`. The last bucket is `OVERFLOW_NS..u64::MAX`; `u64::MAX` itself
/// also lands there, which a `Range` cannot express (see [`bucket_upper_bound`]). Ranges are
/// contiguous: `bucket_range(i).end == bucket_range(i + 1).start`.
///
/// # Panics
///
/// If `i >= BUCKETS`.
pub const fn bucket_range(i: usize) -> Range<u64> {
    assert!(i < BUCKETS, "bucket index out of range");
    if i == 0 {
        return 0..UNDERFLOW_NS;
    }
    if i == BUCKETS - 1 {
        return OVERFLOW_NS..u64::MAX;
    }
    let j = i - 1;
    let exp = MIN_EXP + (j / SUB_BUCKETS) as u32;
    let sub = (j % SUB_BUCKETS) as u64;
    let width = 1u64 << (exp - SUB_BUCKET_BITS);
    let start = (1u64 << exp) + sub * width;
    start..start + width
}

/// The largest value counted in bucket `i` (inclusive): `bucket_range(i).end - 1`, and
/// `u64::MAX` for the overflow bucket.
///
/// Since values are whole nanoseconds, the number of records `≤ bucket_upper_bound(i)` is exactly
/// the cumulative count of buckets `0..=i`, so this is the Prometheus `le` bound of bucket `i`
/// (write the overflow bucket as `+Inf`).
///
/// # Panics
///
/// If `i >= BUCKETS`.
pub const fn bucket_upper_bound(i: usize) -> u64 {
    if i == BUCKETS - 1 {
        u64::MAX
    } else {
        bucket_range(i).end - 1
    }
}

/// The value [`Snapshot::quantile`] reports for a rank that falls in bucket `i`: the midpoint
/// `start + width / 2` of the bucket's range; 512 ns for the underflow bucket; and
/// [`OVERFLOW_NS`], a lower bound, for the overflow bucket.
///
/// # Panics
///
/// If `i >= BUCKETS`.
pub const fn bucket_value(i: usize) -> u64 {
    if i == BUCKETS - 1 {
        return OVERFLOW_NS;
    }
    let r = bucket_range(i);
    r.start + (r.end - r.start) / 2
}

/// A lock-free histogram of nanosecond durations: [`BUCKETS`] relaxed atomic counters plus an
/// atomic sum and a bitmap of the buckets ever recorded into, [`HISTOGRAM_BYTES`] (1 728)
/// bytes, no heap.
///
/// Meant to be sharded: one per worker, so recording threads do not contend on cache lines. It is
/// aligned to a 64-byte cache line but not padded against the adjacent-line prefetcher; wrap it
/// (e.g. `crossbeam_utils::CachePadded`) if neighbours are hot.
/// Counters wrap on overflow like the atomics they are (2^64 records, or 584 years of summed
/// nanoseconds).
#[repr(C, align(64))]
pub struct Histogram {
    /// 27 cache lines of counters. The first line holds the touched-bucket bitmap (words
    /// `0..TOUCHED_WORDS`: bit `i % 64` of word `i / 64` is set once bucket `i` has been
    /// recorded into, and never cleared, so a merge reads only those buckets), the sum, and the
    /// underflow and overflow buckets; each following line holds the 8 buckets of one power of
    /// two, so a merge reads one line per octave the values span. See [`slot`].
    words: [AtomicU64; WORDS],
}

/// Words of the touched-bucket bitmap: one bit per bucket.
const TOUCHED_WORDS: usize = BUCKETS.div_ceil(64);

/// Word of [`Histogram::words`] holding the sum.
const SUM: usize = TOUCHED_WORDS;

/// Words in a [`Histogram`]: the first line (bitmap, sum, underflow, overflow, one spare word),
/// then the 208 octave buckets.
const WORDS: usize = 8 + BUCKETS - 2;

const _: () = assert!(TOUCHED_WORDS + 3 <= 8 && WORDS * 8 % 64 == 0);

/// The word of [`Histogram::words`] that counts bucket `i`: underflow and overflow share the
/// first line with the bitmap and the sum; bucket `i` of the octaves is word `i + 7`, so
/// buckets `1 + 8k ..= 8 + 8k` (octave `k`) fill line `k + 1` exactly.
#[inline]
const fn slot(i: usize) -> usize {
    if i == 0 {
        SUM + 1
    } else if i == BUCKETS - 1 {
        SUM + 2
    } else {
        i + 7
    }
}

/// Sets bucket `i`'s touched bit unless it is already set: a relaxed load (of the line the
/// record's `sum` add writes anyway) and, once per bucket in the histogram's life, a `fetch_or`.
#[inline]
fn touch(words: &[AtomicU64; WORDS], i: usize) {
    let (word, bit) = (&words[i / 64], 1u64 << (i % 64));
    if word.load(Relaxed) & bit == 0 {
        word.fetch_or(bit, Relaxed);
    }
}

impl Histogram {
    /// An empty histogram.
    pub const fn new() -> Self {
        Histogram {
            words: [const { AtomicU64::new(0) }; WORDS],
        }
    }

    /// Records one value of `ns` nanoseconds: two relaxed `fetch_add`s and a relaxed load of
    /// the bucket's touched bit (plus a `fetch_or` the first time the bucket is used).
    #[inline]
    pub fn record(&self, ns: u64) {
        let i = bucket_index(ns);
        touch(&self.words, i);
        self.words[slot(i)].fetch_add(1, Relaxed);
        self.words[SUM].fetch_add(ns, Relaxed);
    }

    /// Records `n` values of `ns` nanoseconds each (the sum grows by `ns·n`, wrapping).
    #[inline]
    pub fn record_n(&self, ns: u64, n: u64) {
        self.record_n_in_bucket(ns, n);
    }

    /// [`record_n`](Self::record_n) that also returns the bucket it counted into, for a
    /// caller that logs the bucket too (see [`SampleLog`](crate::sample_log::SampleLog)).
    #[inline]
    pub fn record_n_in_bucket(&self, ns: u64, n: u64) -> usize {
        let i = bucket_index(ns);
        touch(&self.words, i);
        self.words[slot(i)].fetch_add(n, Relaxed);
        self.words[SUM].fetch_add(ns.wrapping_mul(n), Relaxed);
        i
    }

    /// The sum of every recorded value, nanoseconds (wrapping).
    #[inline]
    pub fn sum_ns(&self) -> u64 {
        self.words[SUM].load(Relaxed)
    }

    /// The touched-bucket bitmap's word `w` (bit `b` stands for bucket `64·w + b`).
    #[inline]
    fn touched(&self, w: usize) -> u64 {
        self.words[w].load(Relaxed)
    }

    /// Bucket `i`'s count.
    #[inline]
    fn bucket(&self, i: usize) -> u64 {
        self.words[slot(i)].load(Relaxed)
    }

    /// Copies the current counts and sum into `out`, overwriting it. Reads every bucket (the
    /// reference the sparse merges are tested against). Does not allocate.
    pub fn snapshot_into(&self, out: &mut Snapshot) {
        for (i, o) in out.counts.iter_mut().enumerate() {
            *o = self.bucket(i);
        }
        out.sum = self.sum_ns();
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = Snapshot::new();
        self.snapshot_into(&mut s);
        f.debug_struct("Histogram")
            .field("count", &s.count())
            .field("sum_ns", &s.sum_ns())
            .finish_non_exhaustive()
    }
}

/// A plain copy of a [`Histogram`]'s counts and sum (or of a merge or difference of several),
/// [`SNAPSHOT_BYTES`] bytes, no heap. None of its operations allocates.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    counts: [u64; BUCKETS],
    sum: u64,
}

impl Snapshot {
    /// An empty snapshot.
    pub const fn new() -> Self {
        Snapshot {
            counts: [0; BUCKETS],
            sum: 0,
        }
    }

    /// Empties the snapshot.
    pub fn clear(&mut self) {
        self.counts = [0; BUCKETS];
        self.sum = 0;
    }

    /// Adds a live histogram's current counts and sum to this snapshot (relaxed loads).
    ///
    /// Reads only the buckets the histogram has ever recorded into (its touched bitmap), so the
    /// cost follows the spread of the recorded values, not [`BUCKETS`]. The result is the same
    /// as adding every bucket: an untouched bucket is zero. (A record racing with the merge
    /// may be counted in `sum` but not yet in its bucket, or the reverse, as with any
    /// non-atomic read of the buckets; the next merge sees it.)
    ///
    /// A tick merges shards with [`clear`](Self::clear), then `add_histogram` on each shard, or
    /// one [`add_histograms`](Self::add_histograms) over all of them.
    pub fn add_histogram(&mut self, h: &Histogram) {
        for w in 0..TOUCHED_WORDS {
            let mut bits = h.touched(w);
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(c) = self.counts.get_mut(i) {
                    *c = c.wrapping_add(h.bucket(i));
                }
            }
        }
        self.sum = self.sum.wrapping_add(h.sum_ns());
    }

    /// Adds several live histograms (relaxed loads); the same result as calling
    /// [`add_histogram`](Self::add_histogram) on each, faster for many shards: shards are
    /// summed eight at a time over the union of their touched buckets, so each bucket of
    /// `self` is read and written once per eight shards, and the eight loads of a bucket are
    /// independent (they overlap their cache misses). Does not allocate.
    pub fn add_histograms<'a, I>(&mut self, shards: I)
    where
        I: IntoIterator<Item = &'a Histogram>,
    {
        let mut it = shards.into_iter().fuse();
        loop {
            let mut group: [Option<&Histogram>; GROUP] = [None; GROUP];
            for slot in &mut group {
                *slot = it.next();
            }
            if group.iter().all(Option::is_some) {
                self.add_group(group.map(|h| h.unwrap()));
            } else {
                for h in group.into_iter().flatten() {
                    self.add_histogram(h);
                }
                return;
            }
        }
    }

    fn add_group(&mut self, group: [&Histogram; GROUP]) {
        for w in 0..TOUCHED_WORDS {
            let mut bits = group.iter().fold(0u64, |a, h| a | h.touched(w));
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if i < BUCKETS {
                    let mut s = 0u64;
                    for h in &group {
                        s = s.wrapping_add(h.bucket(i));
                    }
                    self.counts[i] = self.counts[i].wrapping_add(s);
                }
            }
        }
        let mut s = 0u64;
        for h in &group {
            s = s.wrapping_add(h.sum_ns());
        }
        self.sum = self.sum.wrapping_add(s);
    }

    /// Adds `n` records to bucket `i` (e.g. a [`SampleLog`](crate::sample_log::SampleLog)
    /// entry), leaving the sum alone. Out-of-range indices are ignored.
    #[inline]
    pub fn add_to_bucket(&mut self, i: usize, n: u64) {
        if let Some(c) = self.counts.get_mut(i) {
            *c = c.wrapping_add(n);
        }
    }

    /// Sets the sum of the recorded values (for a window whose buckets came from sample logs
    /// and whose sum comes from the shards' exact sums).
    #[inline]
    pub(crate) fn set_sum(&mut self, sum: u64) {
        self.sum = sum;
    }

    /// Adds `other`'s counts and sum to this snapshot.
    pub fn merge(&mut self, other: &Snapshot) {
        for (c, o) in self.counts.iter_mut().zip(&other.counts) {
            *c = c.wrapping_add(*o);
        }
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// Writes `self − earlier` into `out`: the records made between the two snapshots when both
    /// were taken from the same histograms, `earlier` first.
    ///
    /// Each bucket and the sum subtract with saturation at zero, so a torn read, or an `earlier`
    /// that includes a shard since retired, can never produce a negative (wrapped) count.
    pub fn delta_into(&self, earlier: &Snapshot, out: &mut Snapshot) {
        for ((o, now), then) in out.counts.iter_mut().zip(&self.counts).zip(&earlier.counts) {
            *o = now.saturating_sub(*then);
        }
        out.sum = self.sum.saturating_sub(earlier.sum);
    }

    /// The number of records. O(BUCKETS).
    pub fn count(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.wrapping_add(c))
    }

    /// The sum of the recorded values in nanoseconds (exact, not bucketed).
    pub fn sum_ns(&self) -> u64 {
        self.sum
    }

    /// The mean recorded value in nanoseconds (exact sum over count), or `None` when empty.
    pub fn mean_ns(&self) -> Option<f64> {
        match self.count() {
            0 => None,
            n => Some(self.sum as f64 / n as f64),
        }
    }

    /// The count in bucket `i` (see [`bucket_range`] for its values).
    ///
    /// # Panics
    ///
    /// If `i >= BUCKETS`.
    pub fn bucket_count(&self, i: usize) -> u64 {
        self.counts[i]
    }

    /// All bucket counts, in bucket order (for exporters that accumulate `le` buckets).
    pub fn counts(&self) -> &[u64; BUCKETS] {
        &self.counts
    }

    /// The `q`-quantile of the recorded values in nanoseconds, or `None` when the snapshot is
    /// empty or `q` is NaN. O(BUCKETS), no allocation.
    ///
    /// `q` is clamped to `[0, 1]`. The rank is `r = ⌈q·n⌉` (at least 1), with `n` the count: the
    /// result describes the `r`-th smallest record, so `q = 0` is the minimum, `q = 1` the maximum
    /// and `q = 0.99` of 100 records the 99th. `q·n` is computed in `f64` with a tolerance of a
    /// few ulps, so that a decimal `q` such as `0.07` times 100 (`7.000000000000001`) gives rank 7.
    ///
    /// The value reported is [`bucket_value`] of the bucket holding that record: the bucket's
    /// midpoint. With `v` the exact `r`-th smallest record:
    /// - for `UNDERFLOW_NS ≤ v < OVERFLOW_NS`, `|result − v| ≤ v / 16` ([`MAX_RELATIVE_ERROR`]):
    ///   a bucket's width is at most 1/8 of its lower bound, and the midpoint is at most half a
    ///   width away;
    /// - for `v < UNDERFLOW_NS`, the result is 512 ns (`|result − v| ≤ 512`);
    /// - for `v ≥ OVERFLOW_NS`, the result is `OVERFLOW_NS`, a lower bound.
    ///
    /// The midpoint, not the upper bound, because it halves the worst-case error (upper bound:
    /// up to +12.5%, always high) and because the controller compares p99 against a target from
    /// both sides; callers that need a never-low figure can use [`bucket_upper_bound`].
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if q.is_nan() {
            return None;
        }
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = rank(q.clamp(0.0, 1.0), n);
        let i = if rank <= n / 2 {
            self.nth_from_bottom(rank)
        } else {
            // High quantiles scan fewer buckets from the top: the rank-th smallest record is the
            // (n − rank + 1)-th largest.
            self.nth_from_top(n - rank + 1)
        };
        Some(bucket_value(i))
    }

    /// Several quantiles at once: the same values as [`quantile`](Self::quantile) on each of
    /// `qs` (in any order), from one count and one upward scan instead of one count and one
    /// scan per quantile. O(BUCKETS), no allocation.
    pub fn quantiles<const N: usize>(&self, qs: [f64; N]) -> [Option<u64>; N] {
        self.quantiles_in(qs, &BucketSet::all()).0
    }

    /// [`quantiles`](Self::quantiles) for a snapshot whose buckets outside `set` are all
    /// zero (a window folded from sample logs knows which buckets it wrote), and the number
    /// of records. Reads only those buckets, in increasing order, comparing each running total
    /// with the next rank still wanted: a sparse window costs a few cache lines, not 27.
    pub(crate) fn quantiles_in<const N: usize>(
        &self,
        qs: [f64; N],
        set: &BucketSet,
    ) -> ([Option<u64>; N], u64) {
        let n = set.iter().fold(0u64, |a, i| a.wrapping_add(self.counts[i]));
        (scan_ranks(qs, n, set, false, |i| self.counts[i]), n)
    }

    /// [`quantiles_in`](Self::quantiles_in) of a snapshot known to hold `n` records, all in
    /// the buckets of `set`, computed in the one pass that also empties those buckets and the
    /// sum, adding them into `into` if given. A window hands its records to the cumulative
    /// snapshot this way: one visit per used bucket instead of four (count, scan, merge and
    /// the next window's clear). Afterwards the snapshot is empty.
    pub(crate) fn drain_quantiles_in<const N: usize>(
        &mut self,
        qs: [f64; N],
        n: u64,
        set: &BucketSet,
        into: Option<&mut Snapshot>,
    ) -> [Option<u64>; N] {
        let counts = &mut self.counts;
        let out = match into {
            Some(t) => {
                t.sum = t.sum.wrapping_add(self.sum);
                scan_ranks(qs, n, set, true, |i| {
                    let c = std::mem::take(&mut counts[i]);
                    t.counts[i] = t.counts[i].wrapping_add(c);
                    c
                })
            }
            None => scan_ranks(qs, n, set, true, |i| std::mem::take(&mut counts[i])),
        };
        self.sum = 0;
        out
    }

    /// The bucket holding the `k`-th smallest record (`1 ≤ k ≤ count`). Sums a chunk of buckets
    /// at a time (vectorised), then walks the chunk that crosses `k`.
    fn nth_from_bottom(&self, k: u64) -> usize {
        let mut seen = 0u64;
        for (c, chunk) in self.counts.chunks(SCAN_CHUNK).enumerate() {
            let total = chunk.iter().fold(0u64, |a, &x| a.wrapping_add(x));
            if seen.saturating_add(total) >= k {
                for (j, &x) in chunk.iter().enumerate() {
                    seen = seen.saturating_add(x);
                    if seen >= k {
                        return c * SCAN_CHUNK + j;
                    }
                }
            }
            seen = seen.saturating_add(total);
        }
        BUCKETS - 1 // only if the counts wrapped
    }

    /// The bucket holding the `k`-th largest record (`1 ≤ k ≤ count`), scanning from the top.
    fn nth_from_top(&self, k: u64) -> usize {
        let mut seen = 0u64;
        let mut end = BUCKETS; // one past the current chunk
        for chunk in self.counts.rchunks(SCAN_CHUNK) {
            let total = chunk.iter().fold(0u64, |a, &x| a.wrapping_add(x));
            let start = end - chunk.len();
            if seen.saturating_add(total) >= k {
                for (j, &x) in chunk.iter().enumerate().rev() {
                    seen = seen.saturating_add(x);
                    if seen >= k {
                        return start + j;
                    }
                }
            }
            seen = seen.saturating_add(total);
            end = start;
        }
        0 // only if the counts wrapped
    }
}

/// A set of bucket indices, one bit each (32 bytes): the buckets a window wrote into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BucketSet([u64; TOUCHED_WORDS]);

impl BucketSet {
    /// Every bucket.
    pub(crate) const fn all() -> Self {
        let mut words = [u64::MAX; TOUCHED_WORDS];
        // The last word holds only the buckets past the last multiple of 64.
        if BUCKETS % 64 != 0 {
            words[TOUCHED_WORDS - 1] = (1 << (BUCKETS % 64)) - 1;
        }
        BucketSet(words)
    }

    /// Adds bucket `i` (ignored when out of range).
    #[inline]
    pub(crate) fn insert(&mut self, i: usize) {
        if i < BUCKETS {
            self.0[i / 64] |= 1 << (i % 64);
        }
    }

    /// The buckets in increasing order.
    #[inline]
    pub(crate) fn iter(&self) -> BucketSetIter {
        BucketSetIter {
            words: self.0,
            w: 0,
        }
    }
}

/// The buckets of a [`BucketSet`] in increasing order.
pub(crate) struct BucketSetIter {
    words: [u64; TOUCHED_WORDS],
    w: usize,
}

impl Iterator for BucketSetIter {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.w < TOUCHED_WORDS {
            let bits = self.words[self.w];
            if bits != 0 {
                self.words[self.w] = bits & (bits - 1);
                return Some(self.w * 64 + bits.trailing_zeros() as usize);
            }
            self.w += 1;
        }
        None
    }
}

/// Shards summed per pass by [`Snapshot::add_histograms`]: 8 halved the 64-shard merge time
/// against one at a time in `benches/signals.rs` (4 gained less, 16 no more).
const GROUP: usize = 8;

/// Buckets summed per step when [`Snapshot::quantile`] scans for a rank.
const SCAN_CHUNK: usize = 8;

/// The buckets holding the `qs`-quantiles of `n` records that lie in the buckets of `set`,
/// whose counts `take(i)` gives, visited once each in increasing order (all of them if
/// `whole`, else until every rank is found). The wanted ranks are sorted first, so each
/// bucket costs one comparison with the next rank.
#[inline]
fn scan_ranks<const N: usize>(
    qs: [f64; N],
    n: u64,
    set: &BucketSet,
    whole: bool,
    mut take: impl FnMut(usize) -> u64,
) -> [Option<u64>; N] {
    let mut out = [None; N];
    // (rank, which quantile) in increasing rank; a NaN quantile (or an empty set) wants none.
    let mut want = [(0u64, 0usize); N];
    let mut wanted = 0;
    if n > 0 {
        for (k, q) in qs.iter().enumerate() {
            if !q.is_nan() {
                want[wanted] = (rank(q.clamp(0.0, 1.0), n), k);
                wanted += 1;
            }
        }
    }
    let want = &mut want[..wanted];
    want.sort_unstable();
    let (mut next, mut seen) = (0usize, 0u64);
    'scan: for (w, &word) in set.0.iter().enumerate() {
        let mut bits = word;
        while bits != 0 {
            let i = w * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            seen = seen.saturating_add(take(i));
            while next < wanted && want[next].0 <= seen {
                out[want[next].1] = Some(bucket_value(i));
                next += 1;
            }
            if next == wanted && !whole {
                break 'scan;
            }
        }
    }
    // Only if the counts wrapped: as `quantile`'s upward scan, the last bucket.
    for &(_, k) in &want[next..] {
        out[k] = Some(bucket_value(BUCKETS - 1));
    }
    out
}

/// `⌈q·n⌉` clamped to `1..=n`, forgiving a few ulps of rounding in `q·n`.
#[inline]
fn rank(q: f64, n: u64) -> u64 {
    let x = q * n as f64;
    let r = (x - x * (4.0 * f64::EPSILON)).ceil() as u64;
    r.clamp(1, n)
}

impl Default for Snapshot {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Buckets<'a>(&'a [u64; BUCKETS]);
        impl fmt::Debug for Buckets<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let nonzero = self.0.iter().enumerate().filter(|(_, &c)| c != 0);
                f.debug_map()
                    .entries(nonzero.map(|(i, c)| (bucket_range(i), c)))
                    .finish()
            }
        }
        f.debug_struct("Snapshot")
            .field("count", &self.count())
            .field("sum_ns", &self.sum)
            .field("buckets", &Buckets(&self.counts))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_constants() {
        assert_eq!(BUCKETS, 210);
        assert_eq!(SNAPSHOT_BYTES, 1688);
        assert_eq!(HISTOGRAM_BYTES, 1728);
        assert_eq!(std::mem::size_of::<Histogram>(), HISTOGRAM_BYTES);
        assert_eq!(std::mem::size_of::<Snapshot>(), SNAPSHOT_BYTES);
    }

    #[test]
    fn ranges_are_contiguous_and_increasing() {
        assert_eq!(bucket_range(0).start, 0);
        for i in 0..BUCKETS {
            let r = bucket_range(i);
            assert!(r.start < r.end, "bucket {i}: {r:?}");
            if i + 1 < BUCKETS {
                assert_eq!(r.end, bucket_range(i + 1).start, "gap after bucket {i}");
            }
        }
        assert_eq!(bucket_range(BUCKETS - 1), OVERFLOW_NS..u64::MAX);
    }

    #[test]
    fn range_ends_map_back_to_their_bucket() {
        for i in 0..BUCKETS {
            let r = bucket_range(i);
            assert_eq!(bucket_index(r.start), i, "start of {i}");
            assert_eq!(bucket_index(r.end - 1), i, "end of {i}");
            assert_eq!(bucket_index(bucket_upper_bound(i)), i);
            assert_eq!(bucket_index(bucket_value(i)), i);
            if i + 1 < BUCKETS {
                assert_eq!(bucket_index(bucket_upper_bound(i) + 1), i + 1);
            }
        }
        assert_eq!(bucket_index(u64::MAX), BUCKETS - 1);
    }

    fn contains(i: usize, v: u64) -> bool {
        bucket_range(i).contains(&v) || (i == BUCKETS - 1 && v == u64::MAX)
    }

    #[test]
    fn every_value_lands_in_a_bucket_that_contains_it() {
        // Exhaustive over the first 2^17 values (bucket 0 and the first seven octaves) ...
        for v in 0..(1u64 << 17) {
            assert!(contains(bucket_index(v), v), "{v}");
        }
        // ... then a deterministic spread over the whole u64 range.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = x >> (x % 64); // every magnitude
            assert!(contains(bucket_index(v), v), "{v}");
        }
        for k in 0..64 {
            for v in [(1u64 << k) - 1, 1u64 << k, (1u64 << k) + 1] {
                assert!(contains(bucket_index(v), v), "{v}");
            }
        }
    }

    #[test]
    fn bucket_width_gives_the_stated_error() {
        for i in 1..BUCKETS - 1 {
            let r = bucket_range(i);
            let width = r.end - r.start;
            assert!(width.is_power_of_two());
            // width ≤ start / 8, so the midpoint is within start / 16 of any value in the bucket.
            assert!(width * SUB_BUCKETS as u64 <= r.start, "bucket {i}: {r:?}");
            let mid = bucket_value(i);
            for v in [r.start, r.end - 1] {
                assert!(v.abs_diff(mid) as f64 <= v as f64 * MAX_RELATIVE_ERROR);
            }
        }
    }

    #[test]
    fn record_sum_mean_and_quantiles() {
        let h = Histogram::new();
        let mut s = Snapshot::new();
        h.snapshot_into(&mut s);
        assert_eq!(s.count(), 0);
        assert_eq!(s.quantile(0.5), None);
        assert_eq!(s.mean_ns(), None);

        for v in 1..=100u64 {
            h.record(v * 10_000); // 10 µs .. 1 ms
        }
        h.record_n(5_000_000, 3);
        h.snapshot_into(&mut s);
        assert_eq!(s.count(), 103);
        assert_eq!(s.sum_ns(), 10_000 * 5050 + 15_000_000);
        assert_eq!(s.mean_ns(), Some((10_000.0 * 5050.0 + 15e6) / 103.0));
        assert_eq!(s.bucket_count(bucket_index(5_000_000)), 3);
        // Rank ⌈0.5·103⌉ = 52 → 520 µs; q = 0 is the minimum, q = 1 and q > 1 the maximum.
        assert_eq!(s.quantile(0.5), Some(bucket_value(bucket_index(520_000))));
        assert_eq!(s.quantile(0.0), Some(bucket_value(bucket_index(10_000))));
        assert_eq!(s.quantile(-3.0), s.quantile(0.0));
        assert_eq!(s.quantile(1.0), Some(bucket_value(bucket_index(5_000_000))));
        assert_eq!(s.quantile(7.0), s.quantile(1.0));
        assert_eq!(s.quantile(f64::NAN), None);
    }

    #[test]
    fn rank_is_ceil_of_q_times_n() {
        assert_eq!(rank(0.0, 10), 1);
        assert_eq!(rank(0.1, 10), 1);
        assert_eq!(rank(0.11, 10), 2);
        assert_eq!(rank(0.07, 100), 7); // 0.07 * 100.0 == 7.000000000000001
        assert_eq!(rank(0.99, 100), 99);
        assert_eq!(rank(0.999, 100), 100);
        assert_eq!(rank(1.0, 100), 100);
        assert_eq!(rank(0.5, 1), 1);
    }

    #[test]
    fn every_rank_finds_its_record() {
        // Both walks (from the bottom for rank ≤ n/2, from the top above) against a sorted list.
        let values: Vec<u64> = (0..61u64).map(|k| (k * k * 7_919) % 90_000_000).collect();
        let h = Histogram::new();
        let mut s = Snapshot::new();
        for (i, &v) in values.iter().enumerate() {
            h.record(v);
            h.snapshot_into(&mut s);
            let mut sorted = values[..=i].to_vec();
            sorted.sort_unstable();
            let n = sorted.len();
            for r in 1..=n {
                let q = (r as f64 - 0.5) / n as f64;
                let want = bucket_value(bucket_index(sorted[r - 1]));
                assert_eq!(s.quantile(q), Some(want), "n={n} r={r}");
            }
        }
    }

    #[test]
    fn underflow_and_overflow_report_their_documented_values() {
        let mut s = Snapshot::new();
        let h = Histogram::new();
        h.record(0);
        h.record(1_023);
        h.snapshot_into(&mut s);
        assert_eq!(s.bucket_count(0), 2);
        assert_eq!(s.quantile(1.0), Some(512));
        h.record(u64::MAX);
        h.record(OVERFLOW_NS);
        h.snapshot_into(&mut s);
        assert_eq!(s.bucket_count(BUCKETS - 1), 2);
        assert_eq!(s.quantile(1.0), Some(OVERFLOW_NS));
        assert_eq!(bucket_upper_bound(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn slots_are_distinct_and_octaves_fill_lines() {
        let mut seen = [false; WORDS];
        for i in 0..BUCKETS {
            let w = slot(i);
            assert!(w > SUM && w < WORDS && !seen[w], "bucket {i} -> word {w}");
            seen[w] = true;
        }
        assert!(
            seen[..=SUM].iter().all(|&s| !s),
            "bitmap and sum words hold no bucket"
        );
        for k in 0..(BUCKETS - 2) / SUB_BUCKETS {
            let first = slot(1 + k * SUB_BUCKETS);
            assert_eq!(first % SUB_BUCKETS, 0, "octave {k} starts a line");
            assert_eq!(slot(SUB_BUCKETS + k * SUB_BUCKETS), first + SUB_BUCKETS - 1);
        }
        assert_eq!(std::mem::align_of::<Histogram>(), 64);
    }

    #[test]
    fn touched_bits_are_the_buckets_recorded_into() {
        let h = Histogram::new();
        let touched = |h: &Histogram| -> Vec<usize> {
            (0..BUCKETS)
                .filter(|&i| h.touched(i / 64) & (1 << (i % 64)) != 0)
                .collect()
        };
        assert!(touched(&h).is_empty());
        h.record(0);
        h.record(5_000);
        h.record(5_001); // same bucket: the bit is already set
        h.record_n(u64::MAX, 2); // the last bucket, in the last bitmap word
        let mut want = vec![0, bucket_index(5_000), BUCKETS - 1];
        want.sort_unstable();
        assert_eq!(touched(&h), want);
        // Untouched bitmap bits past BUCKETS stay clear, and every other bucket is zero.
        let last = h.touched(TOUCHED_WORDS - 1);
        assert_eq!(last >> (BUCKETS % 64), 0);
        let mut s = Snapshot::new();
        h.snapshot_into(&mut s);
        for i in 0..BUCKETS {
            assert_eq!(s.bucket_count(i) != 0, want.contains(&i), "bucket {i}");
        }
    }

    #[test]
    fn bucket_sets_list_their_buckets_in_order_and_sparse_operations_match_dense_ones() {
        let mut set = BucketSet::default();
        for i in [200, 3, 64, 3, 63, 129, BUCKETS, 10_000] {
            set.insert(i);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![3, 63, 64, 129, 200]);
        assert_eq!(BucketSet::all().iter().count(), BUCKETS);

        // A window written into a few buckets: the sparse quantiles equal the dense ones.
        let h = Histogram::new();
        let mut used = BucketSet::default();
        for (k, v) in [5_000u64, 5_100, 80_000, 2_000_000, 2_000_000, 9_000_000_000]
            .into_iter()
            .cycle()
            .take(600)
            .enumerate()
        {
            h.record(v + k as u64);
            used.insert(bucket_index(v + k as u64));
        }
        let mut w = Snapshot::new();
        h.snapshot_into(&mut w);
        let qs = [0.999, 0.5, f64::NAN, 0.0, 1.0, 0.9];
        assert_eq!(w.quantiles_in(qs, &used), (w.quantiles(qs), 600));
        assert_eq!(w.quantiles_in(qs, &BucketSet::all()).1, w.count());

        // Draining the window: the same quantiles, its records moved into a total, itself
        // left empty; without a total, just emptied.
        let mut total = Snapshot::new();
        total.add_to_bucket(bucket_index(5_000), 7);
        let mut want_total = total.clone();
        want_total.merge(&w);
        let mut w2 = w.clone();
        assert_eq!(
            w2.drain_quantiles_in(qs, 600, &used, Some(&mut total)),
            w.quantiles(qs)
        );
        assert_eq!((total, w2), (want_total, Snapshot::new()));
        let mut w3 = w.clone();
        assert_eq!(w3.drain_quantiles_in(qs, 600, &used, None), w.quantiles(qs));
        assert_eq!(w3, Snapshot::new());
        assert_eq!(w3.drain_quantiles_in(qs, 0, &used, None), [None; 6]);
    }

    #[test]
    fn merge_delta_and_clear() {
        let (a, b) = (Histogram::new(), Histogram::new());
        a.record(2_000);
        b.record_n(3_000_000, 2);
        let mut m = Snapshot::new();
        m.add_histogram(&a);
        m.add_histogram(&b);
        let (mut sa, mut sb) = (Snapshot::new(), Snapshot::new());
        a.snapshot_into(&mut sa);
        b.snapshot_into(&mut sb);
        sa.merge(&sb);
        assert_eq!(m, sa);
        assert_eq!(m.count(), 3);
        assert_eq!(m.sum_ns(), 6_002_000);

        // Delta of earlier > later saturates instead of wrapping.
        let mut d = Snapshot::new();
        sb.delta_into(&m, &mut d);
        assert_eq!(d.count(), 0);
        assert_eq!(d.sum_ns(), 0);
        m.delta_into(&sb, &mut d);
        assert_eq!(d.count(), 1);
        assert_eq!(d.bucket_count(bucket_index(2_000)), 1);
        assert_eq!(d.sum_ns(), 2_000);

        m.clear();
        assert_eq!(m, Snapshot::default());
        assert!(format!("{d:?}").contains("count: 1"));
    }
}
