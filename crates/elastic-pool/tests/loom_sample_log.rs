//! loom model of the sample log (`src/sample_log.rs`): a read that the log accepts returns
//! exactly the entries written since the reader's cursor, in order, however the writer's
//! stores interleave with it — even when the writer laps the ring during the read. Removing
//! the writer's release fence, the reader's acquire fence or the reader's `begun` check, or
//! making the writer's first header store relaxed, makes a model fail ("accepted a wrong
//! entry").
//!
//! Run with: `RUSTFLAGS="--cfg loom" cargo test -p elastic-pool --release --test loom_sample_log`
#![cfg(loom)]

use elastic_pool::__loom::{Lapped, SampleLog};
use loom::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Entry `k` of the writer is series `k % 2`, bucket `10 + k`, so an entry read names its own
/// position.
fn entry(k: u64) -> (usize, usize, u64) {
    ((k % 2) as usize, 10 + k as usize, 1)
}

/// A writer pushes `writes` entries into a ring of two slots while the reader reads twice
/// (resyncing after a lap). Every accepted read must hold entries `cursor, cursor + 1, …` in
/// order, and the cursors never go backwards.
///
/// The model also counts the interleavings in which a read *during* the writes accepted
/// entries, and fails if there were none: loom once explored a single interleaving here (the
/// reader finishing before the writer began) because the writer's first step was a load of
/// its own header, and every check passed vacuously.
fn model(writes: u64) {
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&accepted);
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(move || {
        let log = Arc::new(SampleLog::<2>::new());
        let w = {
            let log = Arc::clone(&log);
            loom::thread::spawn(move || {
                for k in 0..writes {
                    let (series, bucket, n) = entry(k);
                    log.push(series, bucket, n);
                }
            })
        };
        let (mut next, mut cursor) = (0u64, 0u64);
        for _ in 0..2 {
            let mut got = Vec::new();
            match log.read_new(&mut cursor, |s, i, n| got.push((s, i, n))) {
                Ok(()) => {
                    if !got.is_empty() {
                        counted.fetch_add(1, Relaxed);
                    }
                    for e in got {
                        assert_eq!(e, entry(next), "accepted a wrong entry");
                        next += 1;
                    }
                }
                Err(Lapped) => {
                    let before = next;
                    log.resync(&mut cursor);
                    next = cursor;
                    assert!(next >= before, "the cursor went backwards");
                }
            }
        }
        w.join().unwrap();
        // After the writer is done, one more read returns the rest (or reports a lap).
        let mut got = Vec::new();
        if log
            .read_new(&mut cursor, |s, i, n| got.push((s, i, n)))
            .is_ok()
        {
            for e in got {
                assert_eq!(e, entry(next), "accepted a wrong entry at the end");
                next += 1;
            }
            assert_eq!(next, writes, "entries went missing without a lap");
        }
    });
    assert!(
        accepted.load(Relaxed) > 0,
        "no interleaving had the reader accept entries while the writer wrote"
    );
}

#[test]
fn reads_within_capacity() {
    model(2);
}

#[test]
fn writer_laps_the_ring() {
    model(4);
}
