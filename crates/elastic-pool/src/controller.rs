//! The control thread: one thread, one timer, serving one or more pools.
//!
//! Each pool asks its controller for work through [`CtlInner::kick`] (a flag and an
//! unpark, never a lock). On every pass the controller serves each attached pool — starting
//! workers that the pool's queue needs, and (with autoscaling) running due control ticks —
//! then parks until the earliest deadline any pool reported, or until kicked. With nothing
//! due it parks without a timeout: an idle pool costs no wake-ups.

use crate::sync::lock_std as lock;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::{JoinHandle, Thread};
use std::time::Instant;

/// What the control thread needs from a pool.
pub(crate) trait Managed: Send + Sync {
    /// Serves the pool; returns when it next needs serving, if at a fixed time.
    fn service(self: Arc<Self>, now: Instant) -> Option<Instant>;
    /// The pool's id.
    fn id(&self) -> usize;
}

/// State shared by the control thread and the pools it serves.
pub(crate) struct CtlInner {
    pools: Mutex<Vec<Weak<dyn Managed>>>,
    thread: OnceLock<Thread>,
    kicked: AtomicBool,
    stop: AtomicBool,
}

impl CtlInner {
    /// Asks the control thread for a pass soon. Cheap when a kick is already pending.
    #[inline]
    pub(crate) fn kick(&self) {
        // SeqCst pairs with the control loop's SeqCst clear-then-reload of `kicked`: a kick
        // that finds the flag already set is then seen by the pass that cleared it.
        if !self.kicked.swap(true, SeqCst) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }

    fn run(self: Arc<Self>) {
        while !self.stop.load(Acquire) {
            self.kicked.store(false, SeqCst);
            let now = Instant::now();
            let mut next: Option<Instant> = None;
            {
                let mut pools = lock(&self.pools);
                pools.retain(|w| w.strong_count() > 0);
                for w in pools.iter() {
                    if let Some(p) = w.upgrade() {
                        if let Some(t) = p.service(now) {
                            next = Some(next.map_or(t, |n| n.min(t)));
                        }
                    }
                }
            }
            if self.kicked.load(SeqCst) || self.stop.load(Acquire) {
                continue;
            }
            match next {
                None => std::thread::park(),
                Some(t) => {
                    let now = Instant::now();
                    if t > now {
                        std::thread::park_timeout(t - now);
                    }
                }
            }
        }
    }
}

struct CtlOwner {
    inner: Arc<CtlInner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for CtlOwner {
    fn drop(&mut self) {
        self.inner.stop.store(true, Release);
        if let Some(h) = lock(&self.thread).take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

/// A control thread that one or more pools share.
///
/// By default each pool starts its own; create one explicitly and pass it to
/// [`Builder::controller`](crate::Builder::controller) to serve several pools from one
/// thread. The thread stops when the last `Controller` clone and the last pool using it are
/// gone.
///
/// ```
/// let ctl = elastic_pool::Controller::new().unwrap();
/// let a = elastic_pool::Pool::builder().controller(&ctl).build().unwrap();
/// let b = elastic_pool::Pool::builder().controller(&ctl).build().unwrap();
/// a.execute(|| ()).unwrap();
/// b.execute(|| ()).unwrap();
/// ```
#[derive(Clone)]
pub struct Controller {
    owner: Arc<CtlOwner>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("pools", &lock(&self.owner.inner.pools).len())
            .finish()
    }
}

impl Controller {
    /// Starts a control thread named `elastic-pool-ctl`.
    ///
    /// # Errors
    /// The OS refused the thread.
    pub fn new() -> std::io::Result<Controller> {
        let inner = Arc::new(CtlInner {
            pools: Mutex::new(Vec::new()),
            thread: OnceLock::new(),
            kicked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let run = Arc::clone(&inner);
        let h = std::thread::Builder::new()
            .name("elastic-pool-ctl".into())
            .spawn(move || run.run())?;
        let _ = inner.thread.set(h.thread().clone());
        Ok(Controller {
            owner: Arc::new(CtlOwner {
                inner,
                thread: Mutex::new(Some(h)),
            }),
        })
    }

    pub(crate) fn inner(&self) -> &Arc<CtlInner> {
        &self.owner.inner
    }

    pub(crate) fn attach(&self, pool: Weak<dyn Managed>) {
        lock(&self.owner.inner.pools).push(pool);
        self.owner.inner.kick();
    }

    pub(crate) fn detach(&self, id: usize) {
        lock(&self.owner.inner.pools).retain(|w| w.upgrade().is_some_and(|p| p.id() != id));
    }

    /// How many pools this controller serves.
    pub fn pools(&self) -> usize {
        lock(&self.owner.inner.pools)
            .iter()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}
