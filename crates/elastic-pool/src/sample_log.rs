//! A single-writer ring of recent histogram records, so that a control tick reads a window in
//! proportion to the samples in it rather than to every bucket every shard ever used.
//!
//! # Why
//!
//! Each worker records its sampled waits and run times into its own [`Histogram`] shards. A
//! window used to be the difference of two merges of every shard: with 64 workers about 140
//! used buckets × 64 shards ≈ 9 000 counters a tick (6–7 µs here) even when each shard had
//! gained two samples. A `SampleLog` sits beside a worker's histograms and keeps the series
//! (wait or run), bucket index and multiplicity of its last [`CAPACITY`] records, in one ring
//! so that a window's entries share cache lines. The tick folds the entries written since its
//! previous read into the window; only when a writer has outrun its ring (more than
//! `CAPACITY` records in one window) does the tick fall back to the full merge, with the
//! cumulative histograms as the source of truth. The histograms stay the record for exporters.
//!
//! # Design note: the protocol
//!
//! One thread writes a log at a time (the worker owning the shard; shards change hands only
//! under the shard table's mutex) and one thread reads it (the holder of the pool's signal
//! state). Three positions, counted in entries:
//!
//! * `begun`: the writer raises it *before* writing a slot, then issues a release fence;
//! * `published`: raised with a release store *after* the slot is written;
//! * `read`: the reader's cursor (entries before it belong to earlier windows). The reader
//!   keeps it in its own memory and passes it in, so reading never writes to the writer's
//!   cache lines (a store there would cost the reader an ownership transfer per log and the
//!   writer a miss on its next record).
//!
//! `begun` is always `published` or `published + 1`, so the log keeps both in one word,
//! `head = 2·published + (begun − published)`: one 8-byte header, which lets an owner put it
//! on a cache line it reads anyway.
//!
//! Writer, entry `k`: `head = 2k+1 (begun = k+1, Release); fence(Release); slots[k % N] = e;
//! head = 2k+2 (published = k+1, Release)`. Both header stores are releases: a reader whose
//! acquire load returns `2k+1` must see entries `< k` as surely as one that read `2k`
//! (loom finds stale slots otherwise).
//!
//! Reader: `to = published (Acquire load of head)`; if `to − read > N` the ring has been
//! lapped: fall back. Otherwise load `slots[read..to]` (relaxed), `fence(Acquire)`, load
//! `head` again for `begun`. If `begun − read > N`, an entry the reader loaded may already be
//! a newer one (entry `j + N` overwrote slot `j`): discard and fall back. Why this is enough:
//! if a slot load returned the value of entry `m` written after the writer's release fence,
//! that fence synchronises with the reader's acquire fence, so the reader's later load of
//! `head` sees at least the store that made `begun = m + 1`; an overwritten slot
//! `j ∈ [read, to)` is written by `m = j + N ≥ read + N`, so the check catches it. A slot in
//! `[read, to)` can not hold an *older* entry: the acquire load of `published ≥ j + 1` orders
//! entry `j`'s write before the slot load. `tests/loom_sample_log.rs` checks this with a ring
//! of two slots.
//!
//! On x86 both fences compile to nothing; the writer pays three plain stores and a load of its
//! own header per record.
//!
//! [`Histogram`]: crate::histogram::Histogram

use crate::sync::{fence, AtomicU32, AtomicU64, Ordering::*};

/// Entries a production log holds: more records than this in one window (a sampled task
/// writes two, its wait and its run time) make the tick merge the full histograms instead.
/// 128 entries of 4 bytes: 512 bytes, eight cache lines.
pub const CAPACITY: usize = 128;

/// Bits of an entry that hold the bucket index (the histogram has 210 buckets).
const BUCKET_BITS: u32 = 8;
/// Bits that hold the series (`0` or `1`), above the bucket.
const SERIES_BITS: u32 = 1;
/// Bits below the multiplicity.
const N_SHIFT: u32 = BUCKET_BITS + SERIES_BITS;
/// Largest multiplicity one entry holds (larger `n` is split over several entries).
const MAX_N: u64 = (1 << (32 - N_SHIFT)) - 1;

const _: () = assert!(crate::histogram::BUCKETS <= 1 << BUCKET_BITS);

/// The last `N` records of a worker's histogram shards: series (`0` or `1`, e.g. wait and run
/// time), bucket index and multiplicity. See the module docs for the protocol. One writer and
/// one reader at a time.
///
/// `repr(C)`: the header (8 bytes) comes first, so an owner can place it in a cache line it
/// reads anyway ([`SLOTS_OFFSET`](Self::SLOTS_OFFSET) says where the slots start).
///
/// The reader's cursor is not part of the log: the reader keeps one `u64` per log, starting
/// at 0, and passes it to [`read_new`](Self::read_new) and [`resync`](Self::resync).
#[repr(C)]
pub struct SampleLog<const N: usize = CAPACITY> {
    /// `2·published + (begun − published)`: see the module docs.
    head: AtomicU64,
    slots: [AtomicU32; N],
}

/// Entries from `from` to `to`, positions that count modulo 2^63 (the header's top 63 bits).
#[inline]
fn distance(from: u64, to: u64) -> u64 {
    to.wrapping_sub(from) & (u64::MAX >> 1)
}

impl<const N: usize> Default for SampleLog<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> std::fmt::Debug for SampleLog<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleLog")
            .field("published", &(self.head.load(Relaxed) >> 1))
            .finish_non_exhaustive()
    }
}

/// The reader found that the writer outran the ring since the last read: the entries it
/// would have returned are gone (or may be torn), so the window must come from the full
/// histograms, followed by [`SampleLog::resync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lapped;

impl<const N: usize> SampleLog<N> {
    /// Offset of the slots from the start of the log, bytes.
    pub const SLOTS_OFFSET: usize = std::mem::offset_of!(Self, slots);

    /// An empty log.
    pub fn new() -> Self {
        assert!(N > 0, "a sample log needs at least one slot");
        SampleLog {
            head: AtomicU64::new(0),
            slots: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// Appends `n` records of series `series` (0 or 1) into bucket `bucket` (one entry, or
    /// more when `n` exceeds 2^23 − 1). Only the log's single writer may call this.
    #[inline]
    pub fn push(&self, series: usize, bucket: usize, n: u64) {
        debug_assert!(bucket < 1 << BUCKET_BITS && series < 1 << SERIES_BITS);
        let tag = (bucket | (series & 1) << BUCKET_BITS) as u32;
        if n <= MAX_N {
            if n > 0 {
                self.push_entry(tag | (n as u32) << N_SHIFT);
            }
        } else {
            self.push_split(tag, n);
        }
    }

    #[cold]
    fn push_split(&self, tag: u32, mut n: u64) {
        while n > 0 {
            let take = n.min(MAX_N);
            n -= take;
            self.push_entry(tag | (take as u32) << N_SHIFT);
        }
    }

    /// The writer's side of the protocol for one entry (see the module docs).
    #[inline]
    fn push_entry(&self, e: u32) {
        // Between entries `begun == published`: the low bit is clear.
        let h = self.own_head();
        let k = h >> 1;
        // Release, like the publishing store: a reader that loads this value (`published`
        // unchanged) must see the slots published so far as surely as one that loaded `h`.
        self.head.store(h | 1, Release);
        fence(Release);
        self.slots[(k % N as u64) as usize].store(e, Relaxed);
        self.head.store(h.wrapping_add(2), Release);
    }

    /// The writer's read of its own header (no other thread stores to it).
    #[cfg(not(loom))]
    #[inline]
    fn own_head(&self) -> u64 {
        self.head.load(Relaxed)
    }

    /// The writer's read of its own header, outside the model. With a model step (a loom
    /// load) here, loom explored one interleaving of `tests/loom_sample_log.rs` instead of
    /// thousands, and every check passed vacuously; the model now also fails if no read
    /// accepts entries while the writer writes.
    #[cfg(loom)]
    fn own_head(&self) -> u64 {
        // SAFETY: only the log's single writer stores to `head`, and only that writer calls
        // this, so no store races with the load.
        unsafe { self.head.unsync_load() }
    }

    /// Calls `f(series, bucket, n)` for every entry published after `cursor`, then moves
    /// `cursor` past them. On `Err(Lapped)` the cursor stays, and `f` may already have been
    /// called with entries that must be thrown away. Only the log's single reader may call
    /// this, with its own cursor for this log.
    #[inline]
    pub fn read_new(
        &self,
        cursor: &mut u64,
        mut f: impl FnMut(usize, usize, u64),
    ) -> Result<(), Lapped> {
        let from = *cursor;
        let to = self.head.load(Acquire) >> 1;
        let new = distance(from, to);
        if new == 0 {
            return Ok(());
        }
        if new > N as u64 {
            return Err(Lapped);
        }
        let mut k = from;
        for _ in 0..new {
            let e = self.slots[(k % N as u64) as usize].load(Relaxed);
            f(
                (e >> BUCKET_BITS & 1) as usize,
                (e & ((1 << BUCKET_BITS) - 1)) as usize,
                u64::from(e >> N_SHIFT),
            );
            k = k.wrapping_add(1);
        }
        fence(Acquire);
        let h = self.head.load(Relaxed);
        let begun = (h >> 1).wrapping_add(h & 1);
        if distance(from, begun) > N as u64 {
            return Err(Lapped);
        }
        *cursor = to;
        Ok(())
    }

    /// Loads the first and the last slot published after `cursor` and returns them, mixed,
    /// for the caller to feed to [`black_box`](std::hint::black_box): a hint with no part in
    /// the protocol. The tick calls it on every log before reading any (see
    /// `ShardTable::totals_with`), so that the slot lines, which the workers wrote on other
    /// cores, are fetched together rather than one after another. Entries may be overwritten
    /// meanwhile; [`read_new`](Self::read_new) loads and checks them again.
    #[inline]
    pub fn touch_unread(&self, cursor: u64) -> u32 {
        let to = self.head.load(Relaxed) >> 1;
        let new = distance(cursor, to);
        if new == 0 || new > N as u64 {
            return 0;
        }
        let first = self.slots[(cursor % N as u64) as usize].load(Relaxed);
        let last = to.wrapping_sub(1) & (u64::MAX >> 1);
        let last = self.slots[(last % N as u64) as usize].load(Relaxed);
        first ^ last
    }

    /// Moves `cursor` to the last published entry, after the reader took a window from the
    /// full histograms instead ([`Lapped`]). Records published between that merge and this
    /// call are in neither window; the full merge after the next lap counts them.
    #[inline]
    pub fn resync(&self, cursor: &mut u64) {
        *cursor = self.head.load(Acquire) >> 1;
    }

    /// Entries published after `cursor`.
    #[inline]
    pub fn unread(&self, cursor: u64) -> u64 {
        distance(cursor, self.head.load(Acquire) >> 1)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn drain<const N: usize>(
        log: &SampleLog<N>,
        cursor: &mut u64,
    ) -> Result<Vec<(usize, usize, u64)>, Lapped> {
        let mut v = Vec::new();
        log.read_new(cursor, |s, i, n| v.push((s, i, n)))
            .map(|()| v)
    }

    #[test]
    fn reads_what_was_pushed_since_the_last_read_in_order() {
        let log = SampleLog::<4>::new();
        let mut c = 0u64;
        assert_eq!(drain(&log, &mut c), Ok(vec![]));
        log.push(0, 3, 1);
        log.push(1, 7, 2);
        assert_eq!(log.unread(c), 2);
        assert_eq!(drain(&log, &mut c), Ok(vec![(0, 3, 1), (1, 7, 2)]));
        assert_eq!(log.unread(c), 0);
        assert_eq!(drain(&log, &mut c), Ok(vec![]));
        for i in 0..4 {
            log.push(i % 2, 206 + i, 1);
        }
        // Exactly full: still readable, wrapping round the slots.
        assert_eq!(
            drain(&log, &mut c),
            Ok(vec![(0, 206, 1), (1, 207, 1), (0, 208, 1), (1, 209, 1)])
        );
    }

    #[test]
    fn touching_loads_the_first_and_last_unread_slots_only() {
        let log = SampleLog::<4>::new();
        let entry = |series: u32, bucket: u32| bucket | series << BUCKET_BITS | 1 << N_SHIFT;
        assert_eq!(log.touch_unread(0), 0, "nothing unread");
        log.push(0, 3, 1);
        assert_eq!(log.touch_unread(0), 0, "first and last are the same slot");
        log.push(1, 7, 1);
        log.push(0, 9, 1);
        assert_eq!(log.touch_unread(0), entry(0, 3) ^ entry(0, 9));
        assert_eq!(log.touch_unread(1), entry(1, 7) ^ entry(0, 9));
        assert_eq!(log.touch_unread(3), 0, "caught up");
        // Wrapping: entries 3..=5 sit in slots 3, 0 and 1.
        log.push(1, 11, 1);
        log.push(0, 12, 1);
        log.push(1, 13, 1);
        assert_eq!(log.touch_unread(3), entry(1, 11) ^ entry(1, 13));
        // Lapped (more than four unread): nothing is touched; `read_new` reports the lap.
        assert_eq!(log.touch_unread(1), 0);
        assert_eq!(drain(&log, &mut 1), Err(Lapped));
    }

    #[test]
    fn a_lapped_ring_is_reported_and_resync_moves_past_it() {
        let log = SampleLog::<4>::new();
        let mut c = 0u64;
        for i in 0..5 {
            log.push(0, i, 1);
        }
        assert_eq!(drain(&log, &mut c), Err(Lapped));
        // The cursor did not move: still lapped.
        assert_eq!(drain(&log, &mut c), Err(Lapped));
        log.resync(&mut c);
        assert_eq!(drain(&log, &mut c), Ok(vec![]));
        log.push(1, 9, 1);
        assert_eq!(drain(&log, &mut c), Ok(vec![(1, 9, 1)]));
    }

    #[test]
    fn large_multiplicities_split_over_entries() {
        let log = SampleLog::<4>::new();
        let mut c = 0u64;
        log.push(1, 209, MAX_N * 2 + 5);
        assert_eq!(
            drain(&log, &mut c),
            Ok(vec![(1, 209, MAX_N), (1, 209, MAX_N), (1, 209, 5)])
        );
        log.push(0, 1, 0);
        assert_eq!(log.unread(c), 0, "n = 0 writes nothing");
    }

    #[test]
    fn a_concurrent_writer_never_yields_a_wrong_entry() {
        // The writer pushes series k % 2, bucket k % 200 for its k-th entry, in chunks of
        // 1..=12 (the ring holds 8); after every other chunk it waits until the reader has
        // caught up (the reader mirrors its cursor into `seen`), so reads both succeed and
        // lap. Every successful read must return exactly the entries after the cursor, in
        // order.
        use std::sync::Arc;
        let log = Arc::new(SampleLog::<8>::new());
        let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let total = 100_000u64;
        let w = {
            let (log, seen) = (Arc::clone(&log), Arc::clone(&seen));
            std::thread::spawn(move || {
                let (mut k, mut chunk) = (0u64, 0u64);
                while k < total {
                    let len = (chunk * 7 % 12 + 1).min(total - k);
                    for _ in 0..len {
                        log.push((k % 2) as usize, (k % 200) as usize, 1);
                        k += 1;
                    }
                    if chunk % 2 == 0 {
                        while seen.load(std::sync::atomic::Ordering::Acquire) != k {
                            std::hint::spin_loop();
                        }
                    }
                    chunk += 1;
                }
            })
        };
        let (mut next, mut entries_read, mut cursor) = (0u64, 0u64, 0u64);
        while next < total {
            let mut got = Vec::new();
            match log.read_new(&mut cursor, |s, i, n| got.push((s, i, n))) {
                Ok(()) => {
                    for e in got {
                        let want = ((next % 2) as usize, (next % 200) as usize, 1);
                        assert_eq!(e, want, "entry {next}");
                        next += 1;
                        entries_read += 1;
                    }
                }
                Err(Lapped) => {
                    log.resync(&mut cursor);
                    next = cursor;
                }
            }
            seen.store(cursor, std::sync::atomic::Ordering::Release);
        }
        w.join().unwrap();
        assert_eq!(next, total);
        assert!(entries_read > 0, "no read ever succeeded with entries");
    }
}
