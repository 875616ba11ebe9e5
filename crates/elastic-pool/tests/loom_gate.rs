//! loom model of the submit gate (`src/gate.rs`): once shutdown's `close_and_wait` returns,
//! no submitter can still push.
//!
//! Run with: `RUSTFLAGS="--cfg loom" cargo test -p elastic-pool --release --test loom_gate`
#![cfg(loom)]

use elastic_pool::__loom::Gate;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;

/// Two submitters race a closer. Every push that happens, happens before `close_and_wait`
/// returns; every submit after that is refused.
#[test]
fn no_push_after_close() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let gate = Arc::new(Gate::new(2));
        let pushed = Arc::new(AtomicUsize::new(0));
        let subs: Vec<_> = (0..2)
            .map(|_| {
                let (g, p) = (Arc::clone(&gate), Arc::clone(&pushed));
                loom::thread::spawn(move || {
                    if let Ok(pass) = g.enter() {
                        p.fetch_add(1, SeqCst);
                        drop(pass);
                    }
                })
            })
            .collect();
        assert!(gate.close_and_wait(None));
        let at_close = pushed.load(SeqCst);
        for s in subs {
            s.join().unwrap();
        }
        assert_eq!(
            pushed.load(SeqCst),
            at_close,
            "a push slipped in after close"
        );
        assert!(gate.enter().is_err());
    });
}
