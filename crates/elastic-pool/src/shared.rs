//! The engine shared by [`Pool`](crate::Pool) and [`TypedPool`](crate::TypedPool): queue,
//! submit path, worker accounting, resize and shutdown.
//!
//! # Design note: sizing
//!
//! Three numbers bound the live worker count: `min ≤ target ≤ max`. `target` is the ceiling
//! for on-demand growth (the autoscaler moves it; without one it equals `max`).
//!
//! * **Growth is lazy and never happens on the submit path.** After a push, a submitter wakes
//!   one parked worker; if none is parked and `live < ceiling`, it raises `spawn_pending` and
//!   kicks the control thread (one flag swap; at most one kick until it is served). The
//!   control thread starts workers while `queued > idle + waking + starting` (the
//!   *uncovered* tasks; `waking` are workers popped to run a task that have not resumed yet)
//!   and `live < ceiling`, or while `live < min`. Thread creation (~50 µs) therefore costs
//!   the submitter nothing, and no lock that a submitter takes is held while a thread starts.
//! * **With an autoscaler, growth above the target is for bursts.** Up to the target, workers
//!   start at once. Above it (up to the ceiling), a worker starts at once only while the
//!   uncovered tasks are at least `burst_queue` (a queue the model makes rare; the
//!   autoscaler sets it each tick), otherwise only after the spawn grace: growth must still
//!   be wanted `spawn_grace_ns` after it was first wanted, and again a moment after the
//!   control thread saw the grace pass (see `Shared::grace_deadline`). While the grace runs,
//!   `spawn_pending` stays raised; a submitter that sees a burst-deep queue kicks anyway,
//!   once (`burst_kick`).
//! * **`live` is reserved before a thread starts** (compare-and-swap below the ceiling) and
//!   released if the OS refuses it, so `live ≤ max` holds at every instant outside shutdown.
//! * **Shrinking never interrupts a task.** Lowering the target asks the coldest parked
//!   workers to retire at once ([`Sleepers::retire_coldest`]); busy workers check
//!   `live > target` after each task. Either way a worker retires only by winning a
//!   compare-and-swap `live → live − 1` guarded by `live > floor`, so concurrent retirements
//!   can never take the pool below `target` (or below `min` for keep-alive expiry).
//!
//! # Design note: shutdown
//!
//! 1. Close the submit gate and wait until no submitter is inside it ([`crate::gate`]).
//!    From then on the queue can only shrink.
//! 2. `shutdown_now` only: set `aborting`; from then on whoever dequeues a task (a worker or
//!    the closer) moves it to the returned list instead of running it. Blocked submitters
//!    are unblocked by that draining.
//! 3. Set `draining` and wake every parked worker. A worker exits when it finds the queue
//!    empty while draining. If tasks remain and no worker is alive, the control thread
//!    starts one (it serves a draining pool as usual).
//! 4. Wait (condvar, optionally with a deadline) until no worker is alive, then join the
//!    threads. Called from one of the pool's own workers, shutdown skips waiting for that
//!    worker, which drains and exits after its current task returns.

use crate::builder::{Config, QueueCapacity};
use crate::clock::Clock;
use crate::controller::{CtlInner, Managed};
use crate::error::ShutdownTimeout;
use crate::gate::Gate;
use crate::job::Outcome;
use crate::shard::{bump, ShardTable, ShardTotals, WorkerShard};
use crate::sleep::Sleepers;
use crate::stats::Stats;
use crate::sync::lock_std as lock;
use crate::tenant::{KeyTable, NO_KEY};
use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};
use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs one job of type `J`.
pub(crate) trait Handler<J>: Send + Sync + 'static {
    fn handle(&self, job: J) -> Outcome;
}

/// What a queue entry holds: one job, or a chunk of a batch.
pub(crate) enum Item<J> {
    One(J),
    Batch(Vec<J>),
}

impl<J> Item<J> {
    fn len(&self) -> u64 {
        match self {
            Item::One(_) => 1,
            Item::Batch(v) => v.len() as u64,
        }
    }
}

/// A queue entry: the item, when it was queued (0 = not sampled for wait time), and its
/// tenant key ([`NO_KEY`] for none).
pub(crate) struct Task<J> {
    pub(crate) item: Item<J>,
    pub(crate) queued_ns: u64,
    pub(crate) key: u32,
}

/// How a submit waits for room in a full queue.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    Block,
    Never,
    Until(Instant),
}

/// Why a push failed; the task comes back.
pub(crate) enum Reject<J> {
    Full(Task<J>),
    Closed(Task<J>),
}

thread_local! {
    /// The pool whose worker the current thread is (0 = none).
    static CURRENT_POOL: Cell<usize> = const { Cell::new(0) };
    /// Per-thread countdowns for 1-in-N wait sampling: no shared counter to contend on. One
    /// per pool, indexed by pool id modulo [`COUNTDOWN_SLOTS`]. With a single countdown, a
    /// thread that alternates between two pools (say one CPU and one I/O task per request)
    /// would sample only one of them whenever N is even: every N-th submit would always land
    /// on the same pool, and the other pool's wait signal would stay empty. Pools whose ids
    /// share a slot share a countdown, which is the old behaviour.
    static SAMPLE_COUNTDOWN: [Cell<u32>; COUNTDOWN_SLOTS] =
        const { [const { Cell::new(0) }; COUNTDOWN_SLOTS] };
}

/// Sampling countdowns per thread (see `SAMPLE_COUNTDOWN`): eight pools with consecutive ids
/// that one thread submits to each count their own 1 in N.
const COUNTDOWN_SLOTS: usize = 8;

static NEXT_POOL_ID: AtomicUsize = AtomicUsize::new(1);

/// Counters that are not per-thread or per-worker (rare events).
#[derive(Default)]
struct RareCounters {
    spawned: AtomicU64,
    retired: AtomicU64,
    spawn_failures: AtomicU64,
    hook_panics: AtomicU64,
    returned: AtomicU64,
}

/// Spawn backoff after the OS refused a thread, and the on-demand grace period.
struct SpawnBackoff {
    until: Option<Instant>,
    delay: Duration,
    /// On-demand growth waiting out its grace period.
    grace: GraceTimer,
}

/// The grace period of on-demand growth above the target, with its confirmation (see the
/// design note on `Shared::grace_deadline`).
#[derive(Debug, Default)]
struct GraceTimer {
    /// When growth was first wanted and not yet acted on.
    wanted_since: Option<Instant>,
    /// When, having seen the grace pass, the control thread grows if growth is still wanted
    /// and the backlog has not shrunk meanwhile.
    confirm_at: Option<Instant>,
    /// The uncovered backlog when the running confirmation began.
    backlog: usize,
}

impl GraceTimer {
    /// Growth is no longer wanted: the next want starts a new grace.
    fn reset(&mut self) {
        *self = GraceTimer::default();
    }

    /// Growth is wanted at `now`, with `backlog` queued tasks uncovered: `None` to grow now
    /// (and start afresh), or when to look again. The grace runs from the first want; a
    /// confirmation, `confirm` long, from the first look at or after the grace's end. A
    /// confirmation that ends with a smaller backlog than it began with (the workers are
    /// draining it) is followed by another; the backlog can shrink only so often, so this
    /// delays growth by at most `backlog` confirmations.
    fn wanted(
        &mut self,
        now: Instant,
        grace: Duration,
        confirm: Duration,
        backlog: usize,
    ) -> Option<Instant> {
        let due = *self.wanted_since.get_or_insert(now) + grace;
        if now < due {
            return Some(due);
        }
        match self.confirm_at {
            Some(at) if now < at => Some(at),
            Some(_) if backlog >= self.backlog => {
                self.reset();
                None
            }
            // The first look after the grace, or the backlog is draining: (re)confirm.
            _ => {
                self.confirm_at = Some(now + confirm);
                self.backlog = backlog;
                self.confirm_at
            }
        }
    }
}

/// The largest chunk a batch is split into: big enough to amortise a queue operation over
/// many trivial tasks, small enough that one worker does not hog a long batch.
const MAX_BATCH_CHUNK: usize = 256;

/// After the spawn grace has passed, growth waits this fraction of the grace more, counted
/// from when the control thread saw the grace pass, and again for as long as each such wait
/// ends with a smaller backlog than it began with (see `Shared::grace_deadline`): 10 ms at
/// the default 40 ms grace.
pub const SPAWN_CONFIRM_FRACTION: f64 = 0.25;

/// What one surplus episode may cost in idle worker-seconds before a tick trims it (see
/// [`trim_idle`]).
pub const TRIM_BUDGET_WORKER_S: f64 = 10.0;
/// The shortest park after which a tick retires a surplus worker, however large the surplus
/// (a worker between two tasks of a busy pool is not surplus).
pub const TRIM_IDLE_MIN: Duration = Duration::from_secs(1);

/// How long idle workers above the autoscaler's target must have stayed parked before a tick
/// retires them, when `surplus` workers are above it: [`TRIM_BUDGET_WORKER_S`] ÷ `surplus`
/// seconds, at least [`TRIM_IDLE_MIN`] (and at most the budget itself, for one worker). The
/// keep-alive still expires a surplus worker that idles longer than it, whichever is first.
///
/// A surplus costs its size in worker-seconds for every second it idles, while trimming it
/// and growing again costs two reversals whatever its size: ski rental, with the whole
/// surplus as the thing rented. So the many workers a burst leaves behind go quickly, and
/// the single worker started for a queue that outlived the spawn grace stays long enough
/// that the next such queue usually finds it parked, instead of starting another and
/// trimming it again.
pub fn trim_idle(surplus: usize) -> Duration {
    idle_for_budget(TRIM_BUDGET_WORKER_S, surplus)
}

/// `budget_ws` ÷ `surplus` seconds, at least [`TRIM_IDLE_MIN`].
fn idle_for_budget(budget_ws: f64, surplus: usize) -> Duration {
    Duration::from_secs_f64(budget_ws / surplus.max(1) as f64).max(TRIM_IDLE_MIN)
}

/// The most a regretted trim can raise the trim budget: this many doublings of
/// [`TRIM_BUDGET_WORKER_S`] (40 worker-seconds).
pub const TRIM_REGRET_MAX_DOUBLINGS: u32 = 2;
/// One doubling of the trim budget is forgotten per this long without a regretted trim.
pub const TRIM_REGRET_DECAY: Duration = Duration::from_secs(60);
/// The largest surplus a regretted budget applies to; larger ones keep
/// [`TRIM_BUDGET_WORKER_S`].
pub const TRIM_REGRET_MAX_SURPLUS: usize = 2;
/// Growth this soon after a trim can regret it: one worker's base budget.
const REGRET_WINDOW_NS: u64 = (TRIM_BUDGET_WORKER_S * 1e9) as u64;

/// The trim budget with a memory of its mistakes: [`trim_idle`]'s rule, where a small
/// surplus (at most [`TRIM_REGRET_MAX_SURPLUS`] workers) gets a budget that doubles each time
/// a trim is regretted, up to [`TRIM_REGRET_MAX_DOUBLINGS`], and loses one doubling per
/// [`TRIM_REGRET_DECAY`] without one. The pool's control thread keeps one, and the CLI's
/// virtual model keeps its own.
///
/// A trim is regretted when growth above the target (a queue that outlived the spawn grace)
/// follows it within one worker's base budget (10 s, the time a lone surplus worker is
/// kept), while the target is still the one it trimmed to: the worker trimmed was wanted
/// again although the model's view of the load had not moved, and the round trip cost two
/// reversals. With heavy-tailed service, a pool at its model size sees such a queue every
/// 15–20 s, longer than the 10 s a lone surplus stays; a debug print of a real `heavy-tail`
/// run showed the pool trimming its 16th worker and starting it again 3–5 s later, twice a
/// minute. A fixed larger budget would pay for that everywhere; this one pays only where
/// trims keep being undone, and only for the one or two workers such a queue wants back.
///
/// Two wider first versions were measured on real threads and narrowed. Doubling the budget
/// of every surplus let the dozen workers a burst leaves behind idle 2.4 s instead of 1 s
/// (`onoff` cost 2.05× the oracle against 1.81×). Counting growth at any target no lower
/// than the trim's took the load rising after a trough for a mistake, and held a worker or
/// two more through every descent of `diurnal`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrimBudget {
    doublings: u32,
    last_regret_ns: u64,
    /// The last trim not yet regretted: when, and the target it trimmed to.
    last_trim: Option<(u64, usize)>,
}

impl TrimBudget {
    /// Doublings in force at `now_ns` (clock ns).
    pub fn doublings(&self, now_ns: u64) -> u32 {
        let forgotten =
            now_ns.saturating_sub(self.last_regret_ns) / TRIM_REGRET_DECAY.as_nanos() as u64;
        self.doublings
            .saturating_sub(u32::try_from(forgotten).unwrap_or(u32::MAX))
    }

    /// The budget at `now_ns`, in idle worker-seconds per surplus episode.
    pub fn worker_seconds(&self, now_ns: u64) -> f64 {
        TRIM_BUDGET_WORKER_S * f64::from(1u32 << self.doublings(now_ns))
    }

    /// How long idle workers above the target must have stayed parked before a tick at
    /// `now_ns` retires them: [`trim_idle`], with this budget for a small surplus.
    pub fn idle_before_trim(&self, surplus: usize, now_ns: u64) -> Duration {
        if surplus <= TRIM_REGRET_MAX_SURPLUS {
            idle_for_budget(self.worker_seconds(now_ns), surplus)
        } else {
            trim_idle(surplus)
        }
    }

    /// A tick retired surplus workers at `now_ns`, above `target`.
    pub fn trimmed(&mut self, now_ns: u64, target: usize) {
        self.last_trim = Some((now_ns, target));
    }

    /// The pool grew above `target` at `now_ns`, past the spawn grace. Returns whether that
    /// regretted the last trim (and doubled the budget); a trim is regretted once.
    pub fn grew_above_target(&mut self, now_ns: u64, target: usize) -> bool {
        let Some((trim, trim_target)) = self.last_trim else {
            return false;
        };
        if target != trim_target || now_ns.saturating_sub(trim) > REGRET_WINDOW_NS {
            return false;
        }
        self.doublings = (self.doublings(now_ns) + 1).min(TRIM_REGRET_MAX_DOUBLINGS);
        self.last_regret_ns = now_ns;
        self.last_trim = None;
        true
    }
}

const SPAWN_BACKOFF_MIN: Duration = Duration::from_millis(10);
const SPAWN_BACKOFF_MAX: Duration = Duration::from_secs(1);

pub(crate) struct Shared<J, H> {
    pub(crate) id: usize,
    tx: Sender<Task<J>>,
    rx: Receiver<Task<J>>,
    handler: H,
    gate: Gate,
    pub(crate) sleepers: Sleepers,
    live: CachePadded<AtomicUsize>,
    starting: AtomicUsize,
    target: AtomicUsize,
    /// Growth ceiling between control ticks (≥ target); equals the target unless an
    /// autoscaler allows headroom.
    ceiling: AtomicUsize,
    min: AtomicUsize,
    max: AtomicUsize,
    bounds_lock: Mutex<()>,
    draining: AtomicBool,
    aborting: AtomicBool,
    spawn_pending: AtomicBool,
    /// A submitter saw a burst-deep queue during a spawn grace and kicked (once per service).
    burst_kick: AtomicBool,
    /// Growth above the target waits this long (ns) for the backlog to clear by itself
    /// before starting a worker; 0 = start at once. The autoscaler sets twice the SLO.
    spawn_grace_ns: AtomicU64,
    /// Uncovered tasks (queued beyond idle and starting workers) that start workers above
    /// the target at once, grace or not. `usize::MAX` without an autoscaler (whose pools
    /// have no grace anyway).
    burst_queue: AtomicUsize,
    /// Record the wait of one task in this many per submitting thread (≥ 1).
    sample_every: std::sync::atomic::AtomicU32,
    rare: RareCounters,
    shards: Mutex<ShardTable>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    returned: Mutex<Vec<J>>,
    exit_lock: Mutex<()>,
    exited: Condvar,
    backoff: Mutex<SpawnBackoff>,
    /// The trim budget and its regrets (the control thread's alone).
    trim_budget: Mutex<TrimBudget>,
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    pub(crate) keys: KeyTable,
    pub(crate) signals: Mutex<crate::signals::SignalState>,
    pub(crate) autoscale: Option<crate::autoscale::Autoscale>,
    ctl: Arc<CtlInner>,
}

impl<J: Send + 'static, H: Handler<J>> Shared<J, H> {
    pub(crate) fn new(
        config: Config,
        handler: H,
        ctl: Arc<CtlInner>,
        autoscale: Option<crate::autoscale::Autoscale>,
    ) -> Arc<Self> {
        let (tx, rx) = match config.queue {
            QueueCapacity::Bounded(n) => crossbeam_channel::bounded(n),
            QueueCapacity::Unbounded => crossbeam_channel::unbounded(),
        };
        let shards = (crate::clock::cpu_count() * 4).clamp(4, 64);
        Arc::new(Shared {
            id: NEXT_POOL_ID.fetch_add(1, Relaxed),
            tx,
            rx,
            handler,
            gate: Gate::new(shards),
            sleepers: Sleepers::new(),
            live: CachePadded::new(AtomicUsize::new(0)),
            starting: AtomicUsize::new(0),
            target: AtomicUsize::new(if autoscale.is_some() {
                config.min.max(1)
            } else {
                config.max
            }),
            ceiling: AtomicUsize::new(if autoscale.is_some() {
                config.min.max(1)
            } else {
                config.max
            }),
            min: AtomicUsize::new(config.min),
            max: AtomicUsize::new(config.max),
            bounds_lock: Mutex::new(()),
            draining: AtomicBool::new(false),
            aborting: AtomicBool::new(false),
            spawn_pending: AtomicBool::new(false),
            burst_kick: AtomicBool::new(false),
            burst_queue: AtomicUsize::new(if autoscale.is_some() {
                config.min.max(1)
            } else {
                usize::MAX
            }),
            sample_every: std::sync::atomic::AtomicU32::new(config.wait_sample_every),
            rare: RareCounters::default(),
            shards: Mutex::new(ShardTable::default()),
            handles: Mutex::new(Vec::new()),
            returned: Mutex::new(Vec::new()),
            exit_lock: Mutex::new(()),
            exited: Condvar::new(),
            backoff: Mutex::new(SpawnBackoff {
                until: None,
                delay: SPAWN_BACKOFF_MIN,
                grace: GraceTimer::default(),
            }),
            trim_budget: Mutex::new(TrimBudget::default()),
            spawn_grace_ns: AtomicU64::new(0),
            keys: KeyTable::new(config.max_keys),
            signals: Mutex::new(crate::signals::SignalState::new()),
            autoscale,
            config,
            clock: Clock::new(),
            ctl,
        })
    }

    /// Starts `min` workers on the calling thread (the `prestart` option).
    pub(crate) fn prestart(self: &Arc<Self>) {
        while self.live.load(Acquire) < self.min.load(Relaxed) {
            if !self.try_spawn_one(usize::MAX) {
                break;
            }
        }
    }

    // ----- submit path -------------------------------------------------------------------

    /// The enqueue timestamp for the next task from this thread (0 when not sampled).
    #[inline]
    pub(crate) fn stamp(&self) -> u64 {
        let every = self.sample_every.load(Relaxed).max(1);
        if every == 1 {
            return self.clock.now_ns();
        }
        SAMPLE_COUNTDOWN.with(|slots| {
            let c = &slots[self.id % COUNTDOWN_SLOTS];
            let left = c.get();
            if left == 0 || left >= every {
                c.set(every - 1);
                self.clock.now_ns()
            } else {
                c.set(left - 1);
                0
            }
        })
    }

    /// Changes the wait-sampling rate (the autoscaler samples more at low rates).
    pub(crate) fn set_sample_every(&self, n: u32) {
        self.sample_every.store(n.max(1), Relaxed);
    }

    /// The wait-sampling rate in force.
    pub(crate) fn sample_every(&self) -> u32 {
        self.sample_every.load(Relaxed)
    }

    /// Whether the queue is full right now (a cheap pre-check that lets `try_*` reject
    /// without wrapping the job).
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.tx.is_full()
    }

    /// Counts a rejection decided before a push was attempted (the queue looked full), as
    /// overload or, if the gate is closed, as shutdown. Returns whether it was shutdown.
    #[inline]
    pub(crate) fn count_early_reject(&self, n: u64, key: u32) -> bool {
        // No push follows, so no need to enter the gate (see gate.rs): one acquire load
        // and one counter on this thread's shard. `elastic-pool bench --scenario reject`.
        let counters = self.gate.my_counters();
        let closed = self.gate.is_closed();
        if closed {
            bump_shared(&counters.rejected_shutdown, n);
        } else {
            bump_shared(&counters.rejected_full, n);
        }
        self.count_key(key, |k| &k.rejected, n);
        closed
    }

    /// Counts `n` jobs refused without a push attempt because shutdown refused an earlier
    /// chunk of their batch.
    fn count_rejected_shutdown(&self, n: u64, key: u32) {
        match self.gate.enter() {
            Ok(pass) => bump_shared(&pass.counters().rejected_shutdown, n),
            Err(c) => bump_shared(&c.rejected_shutdown, n),
        }
        self.count_key(key, |k| &k.rejected, n);
    }

    /// Adds `n` to one counter of a task's key, if it has one.
    #[inline]
    fn count_key(&self, key: u32, f: impl FnOnce(&crate::tenant::KeySlot) -> &AtomicU64, n: u64) {
        if key != NO_KEY {
            if let Some(slot) = self.keys.slot(key) {
                f(slot).fetch_add(n, Relaxed);
            }
        }
    }

    /// Whether submits are being refused.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.gate.is_closed()
    }

    /// Pushes one queue entry. On success the task is accepted and counted.
    #[inline]
    pub(crate) fn push(&self, task: Task<J>, wait: Wait) -> Result<(), Reject<J>> {
        let n = task.item.len();
        let key = task.key;
        let pass = match self.gate.enter() {
            Ok(p) => p,
            Err(counters) => {
                bump_shared(&counters.rejected_shutdown, n);
                self.count_key(key, |k| &k.rejected, n);
                return Err(Reject::Closed(task));
            }
        };
        let sent = match wait {
            Wait::Never => self.tx.try_send(task).map_err(|e| match e {
                TrySendError::Full(t) | TrySendError::Disconnected(t) => t,
            }),
            Wait::Block => self.tx.send(task).map_err(|e| e.0),
            Wait::Until(d) => self.tx.send_deadline(task, d).map_err(|e| match e {
                SendTimeoutError::Timeout(t) | SendTimeoutError::Disconnected(t) => t,
            }),
        };
        match sent {
            Ok(()) => {
                bump_shared(&pass.counters().submitted, n);
                drop(pass);
                self.count_key(key, |k| &k.submitted, n);
                self.after_push();
                Ok(())
            }
            Err(task) => {
                bump_shared(&pass.counters().rejected_full, n);
                drop(pass);
                self.count_key(key, |k| &k.rejected, n);
                Err(Reject::Full(task))
            }
        }
    }

    /// Splits `jobs` into chunks, one queue entry each, and pushes them in order
    /// (blocking). On shutdown returns the jobs not accepted, in order.
    pub(crate) fn push_batch(
        &self,
        mut pending: Vec<J>,
        stamp: u64,
        key: u32,
    ) -> Result<(), Vec<J>> {
        let n = pending.len();
        if n == 0 {
            return Ok(());
        }
        let workers = self
            .live
            .load(Relaxed)
            .clamp(1, self.target.load(Relaxed).max(1));
        let chunk = n.div_ceil(workers).clamp(1, MAX_BATCH_CHUNK);
        while !pending.is_empty() {
            let tail = if pending.len() > chunk {
                pending.split_off(chunk)
            } else {
                Vec::new()
            };
            let item = if pending.len() == 1 {
                Item::One(pending.pop().expect("one job"))
            } else {
                Item::Batch(pending)
            };
            match self.push(
                Task {
                    item,
                    queued_ns: stamp,
                    key,
                },
                Wait::Block,
            ) {
                Ok(()) => pending = tail,
                Err(Reject::Closed(t) | Reject::Full(t)) => {
                    let mut rest = match t.item {
                        Item::One(j) => vec![j],
                        Item::Batch(v) => v,
                    };
                    // The refused chunk was counted by `push`; the chunks after it are
                    // handed back too, so count them the same way.
                    if !tail.is_empty() {
                        self.count_rejected_shutdown(tail.len() as u64, key);
                    }
                    rest.extend(tail);
                    return Err(rest);
                }
            }
        }
        Ok(())
    }

    /// Wakes one parked worker for a task just queued, or asks for one more worker. Must
    /// follow the drop of the submit pass, whose fence orders the push before the look at
    /// the idle count.
    #[inline]
    fn after_push(&self) {
        if !self.sleepers.notify_one_after_fence() {
            self.request_spawn();
        }
    }

    #[inline]
    fn request_spawn(&self) {
        if self.live.load(Relaxed) >= self.ceiling.load(Relaxed) {
            return;
        }
        if !self.spawn_pending.load(Relaxed) {
            if !self.spawn_pending.swap(true, SeqCst) {
                self.ctl.kick();
            }
        } else if self.spawn_grace_ns.load(Relaxed) != 0
            && self.rx.len() >= self.burst_queue.load(Relaxed)
            && !self.burst_kick.load(Relaxed)
            && !self.burst_kick.swap(true, SeqCst)
        {
            // A grace is running (it keeps `spawn_pending` raised) and the queue has become
            // burst-deep: the control thread must not sleep until the grace ends. (The queue
            // length over-counts tasks that starting workers will take; at worst that is one
            // extra wake-up of the control thread per service, which then re-checks.)
            self.ctl.kick();
        }
    }

    // ----- worker side -------------------------------------------------------------------

    /// Takes one queue entry without blocking.
    #[inline]
    pub(crate) fn try_take(&self) -> Option<Task<J>> {
        self.rx.try_recv().ok()
    }

    /// Runs a dequeued entry on the current worker, recording wait and run time.
    #[inline]
    pub(crate) fn run_task(&self, task: Task<J>, shard: &WorkerShard) {
        if self.aborting.load(Acquire) {
            self.return_unrun(task);
            return;
        }
        let Task {
            item,
            queued_ns,
            key,
        } = task;
        let n = item.len();
        bump(&shard.taken, n);
        let sampled = queued_ns != 0;
        let start = if sampled {
            let now = self.clock.now_ns();
            let wait = now.saturating_sub(queued_ns);
            shard.record_wait(wait);
            if key != NO_KEY {
                if let Some(slot) = self.keys.slot(key) {
                    slot.wait.record(wait);
                    slot.wait_samples.fetch_add(1, Relaxed);
                }
            }
            now
        } else {
            0
        };
        let mark = if sampled { shard.prober.begin() } else { None };
        match item {
            Item::One(j) => self.run_one(j, shard),
            Item::Batch(jobs) => {
                for j in jobs {
                    self.run_one(j, shard);
                }
            }
        }
        if sampled {
            let run = self.clock.now_ns().saturating_sub(start);
            shard.prober.end(&shard.probe, mark, run, n);
            shard.record_run(run / n.max(1), n);
        }
        self.count_key(key, |k| &k.completed, n);
    }

    /// A worker found a task after being idle: a busy period starts.
    #[inline]
    pub(crate) fn begin_busy(&self, shard: &WorkerShard) {
        shard.busy_since.store(self.clock.now_ns(), Relaxed);
    }

    /// A worker found the queue empty: its busy period ends.
    #[inline]
    pub(crate) fn end_busy(&self, shard: &WorkerShard) {
        bump(&shard.idle_entries, 1);
        let since = shard.busy_since.load(Relaxed);
        bump(&shard.busy_ns, self.clock.now_ns().saturating_sub(since));
        shard.busy_since.store(0, Relaxed);
    }

    #[inline]
    fn run_one(&self, job: J, shard: &WorkerShard) {
        match catch_unwind(AssertUnwindSafe(|| self.handler.handle(job))) {
            Ok(Outcome::Done) => {}
            Ok(Outcome::PanickedDelivered) => bump(&shard.panicked, 1),
            Err(payload) => {
                bump(&shard.panicked, 1);
                self.report_panic(payload);
            }
        }
        bump(&shard.completed, 1);
    }

    #[cold]
    fn report_panic(&self, payload: Box<dyn std::any::Any + Send>) {
        if let Some(h) = &self.config.panic_handler {
            let h = Arc::clone(h);
            if catch_unwind(AssertUnwindSafe(move || h(payload))).is_err() {
                self.rare.hook_panics.fetch_add(1, Relaxed);
            }
        }
    }

    /// Runs a thread hook, containing and counting a panic.
    pub(crate) fn run_hook(&self, hook: Option<&crate::builder::ThreadHook>) {
        if let Some(h) = hook {
            if catch_unwind(AssertUnwindSafe(|| h())).is_err() {
                self.rare.hook_panics.fetch_add(1, Relaxed);
            }
        }
    }

    #[cold]
    fn return_unrun(&self, task: Task<J>) {
        let mut r = lock(&self.returned);
        match task.item {
            Item::One(j) => r.push(j),
            Item::Batch(v) => r.extend(v),
        }
    }

    /// Whether a worker that finds the queue empty should exit.
    #[inline]
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(SeqCst)
    }

    /// The deadline for an idle worker's park: keep-alive if the pool is above its
    /// keep-alive floor, none otherwise (workers at the floor never wake up for nothing).
    pub(crate) fn idle_deadline(&self) -> Option<Instant> {
        if self.live.load(Relaxed) > self.keep_alive_floor() {
            Instant::now().checked_add(self.config.keep_alive)
        } else {
            None
        }
    }

    /// Retires the calling worker if the pool has more than `floor` live workers. On
    /// success the caller must exit.
    pub(crate) fn try_retire_above(&self, floor: usize) -> bool {
        let mut live = self.live.load(Relaxed);
        while live > floor {
            match self
                .live
                .compare_exchange_weak(live, live - 1, AcqRel, Relaxed)
            {
                Ok(_) => {
                    self.rare.retired.fetch_add(1, Relaxed);
                    return true;
                }
                Err(now) => live = now,
            }
        }
        false
    }

    /// After a task: retire if the pool is above its growth ceiling. (Workers between the
    /// target and the ceiling were started on demand; they stay while busy, and the
    /// control tick retires them once idle.)
    #[inline]
    pub(crate) fn should_retire_busy(&self) -> bool {
        self.live.load(Relaxed) > self.ceiling.load(Relaxed) && {
            let t = self.ceiling.load(Relaxed).max(self.min.load(Relaxed));
            self.try_retire_above(t)
        }
    }

    /// The floor for keep-alive expiry: `min`, or with an autoscaler the target (at least
    /// `min`). Only a surplus worker expires: below the target, the autoscaler still wants
    /// the worker, and one that expired there would be started again by the next queue
    /// (a shrink and a regrowth, two reversals, for nothing). The autoscaler retires idle
    /// workers itself when it lowers the target.
    pub(crate) fn keep_alive_floor(&self) -> usize {
        if self.autoscale.is_some() {
            self.target_floor()
        } else {
            self.min.load(Relaxed)
        }
    }

    /// The floor for a retire request.
    pub(crate) fn target_floor(&self) -> usize {
        self.target.load(Relaxed).max(self.min.load(Relaxed))
    }

    /// A worker leaving because of shutdown (not a retirement): release its live slot.
    pub(crate) fn exit_for_shutdown(&self) {
        self.live.fetch_sub(1, AcqRel);
    }

    /// Bookkeeping every exiting worker does last.
    pub(crate) fn worker_exited(&self, shard_idx: usize) {
        lock(&self.shards).release(shard_idx);
        let _g = lock(&self.exit_lock);
        self.exited.notify_all();
    }

    /// Marks the current thread as a worker of this pool.
    pub(crate) fn enter_worker(&self) {
        CURRENT_POOL.with(|c| c.set(self.id));
        self.starting.fetch_sub(1, AcqRel);
    }

    fn on_own_worker(&self) -> bool {
        CURRENT_POOL.with(|c| c.get()) == self.id
    }

    // ----- growth (control thread) -----------------------------------------------------

    /// Starts one worker if `live < ceiling` (and `< max`). Returns whether one started.
    fn try_spawn_one(self: &Arc<Self>, ceiling: usize) -> bool {
        let cap = ceiling.min(self.max.load(Relaxed));
        let mut live = self.live.load(Relaxed);
        loop {
            if live >= cap {
                return false;
            }
            match self
                .live
                .compare_exchange_weak(live, live + 1, AcqRel, Relaxed)
            {
                Ok(_) => break,
                Err(now) => live = now,
            }
        }
        self.starting.fetch_add(1, AcqRel);
        match self.start_thread() {
            Ok(h) => {
                self.rare.spawned.fetch_add(1, Relaxed);
                let mut hs = lock(&self.handles);
                hs.retain(|h| !h.is_finished());
                hs.push(h);
                lock(&self.backoff).delay = SPAWN_BACKOFF_MIN;
                true
            }
            Err(e) => {
                self.live.fetch_sub(1, AcqRel);
                self.starting.fetch_sub(1, AcqRel);
                self.rare.spawn_failures.fetch_add(1, Relaxed);
                let mut b = lock(&self.backoff);
                b.until = Some(Instant::now() + b.delay);
                tracing::warn!(
                    pool = self.id,
                    error = %e,
                    retry_in_ms = b.delay.as_millis() as u64,
                    "could not start a worker thread"
                );
                b.delay = (b.delay * 2).min(SPAWN_BACKOFF_MAX);
                // Wake the submitter-side flag so that the next push asks again.
                self.spawn_pending.store(false, Release);
                false
            }
        }
    }

    fn start_thread(self: &Arc<Self>) -> std::io::Result<JoinHandle<()>> {
        if let Some(hook) = &self.config.spawn_hook {
            hook()?;
        }
        let (idx, shard) = lock(&self.shards).acquire();
        let mut b = std::thread::Builder::new().name(self.config.thread_name.clone());
        if let Some(s) = self.config.stack_size {
            b = b.stack_size(s);
        }
        let me = Arc::clone(self);
        let r = b.spawn(move || crate::worker::run(me, idx, shard));
        if r.is_err() {
            lock(&self.shards).release(idx);
        }
        r
    }

    /// Sets the on-demand grace period (see `spawn_grace_ns`).
    pub(crate) fn set_spawn_grace(&self, grace: Duration) {
        self.spawn_grace_ns
            .store(grace.as_nanos().min(u128::from(u64::MAX)) as u64, Relaxed);
    }

    /// Growth wanted now, without waiting for the grace: below the target, or while the
    /// uncovered tasks are burst-deep (see the design note). Never while draining.
    fn spawn_wanted_at_once(&self) -> bool {
        if self.spawn_grace_ns.load(Relaxed) == 0
            || self.draining.load(Relaxed)
            || !self.spawn_wanted()
        {
            return false;
        }
        let live = self.live.load(Acquire);
        let uncovered = self.rx.len().saturating_sub(self.covering());
        live < self.target.load(Relaxed) || uncovered >= self.burst_queue.load(Relaxed)
    }

    fn spawn_wanted(&self) -> bool {
        let live = self.live.load(Acquire);
        if live < self.min.load(Relaxed) && !self.draining.load(Relaxed) {
            return true;
        }
        let queued = self.rx.len();
        if queued == 0 {
            return false;
        }
        // While draining, make sure somebody is left to run what is queued.
        if self.draining.load(Relaxed) {
            return live == 0;
        }
        live < self.ceiling.load(Relaxed) && queued > self.covering()
    }

    /// Workers that will take a queued task without a new thread: parked, starting, or
    /// woken and not yet running (on a busy machine a wake-up can wait milliseconds for a
    /// core; a thread started then would wait for one too).
    fn covering(&self) -> usize {
        self.sleepers.idle() + self.sleepers.waking() + self.starting.load(Acquire)
    }

    // ----- resize ------------------------------------------------------------------------

    /// Sets the ceiling for growth; returns the value in force (clamped to
    /// `[max(min, 1), max]`).
    pub(crate) fn set_target(&self, n: usize) -> usize {
        let _g = lock(&self.bounds_lock);
        let min = self.min.load(Relaxed);
        let max = self.max.load(Relaxed);
        let t = n.clamp(min.max(1), max);
        self.target.store(t, Release);
        self.ceiling.store(t, Release);
        drop(_g);
        self.enforce_target();
        t
    }

    /// The autoscaler's form of [`Shared::set_target`]: the target, and how far on-demand
    /// growth may go beyond it before the next tick.
    ///
    /// Idle workers above the target are retired only once they have stayed parked for
    /// [`trim_idle`] of the surplus (with the budget a [`TrimBudget`] keeps): a worker
    /// started on demand that the load keeps reusing (it sits on top of the LIFO stack) is
    /// not churned away at every tick.
    pub(crate) fn set_target_and_ceiling(&self, target: usize, ceiling: usize, burst_queue: usize) {
        let _g = lock(&self.bounds_lock);
        let min = self.min.load(Relaxed);
        let max = self.max.load(Relaxed);
        let t = target.clamp(min.max(1), max);
        self.target.store(t, Release);
        self.ceiling.store(ceiling.clamp(t, max), Release);
        self.burst_queue.store(burst_queue.max(1), Relaxed);
        drop(_g);
        let live = self.live.load(Acquire);
        let floor = self.target_floor();
        if live > floor {
            let now = self.clock.now_ns();
            let mut budget = lock(&self.trim_budget);
            let cutoff =
                now.saturating_sub(budget.idle_before_trim(live - floor, now).as_nanos() as u64);
            if self
                .sleepers
                .retire_coldest_parked_before(live - floor, cutoff)
                > 0
            {
                budget.trimmed(now, t);
            }
        } else if !self.rx.is_empty() || live < self.min.load(Relaxed) {
            self.spawn_pending.store(true, Release);
            self.ctl.kick();
        }
    }

    /// Shrinks toward the target at once by retiring idle workers, and asks for growth if
    /// work is waiting.
    fn enforce_target(&self) {
        let live = self.live.load(Acquire);
        let target = self.target_floor();
        if live > target {
            self.sleepers.retire_coldest(live - target);
        } else if !self.rx.is_empty() || live < self.min.load(Relaxed) {
            self.spawn_pending.store(true, Release);
            self.ctl.kick();
        }
    }

    /// Validates and installs a new autoscaling policy; its bounds apply at once, the rest
    /// at the next tick.
    pub(crate) fn set_policy(
        &self,
        policy: crate::policy::Policy,
    ) -> Result<(), crate::policy::PolicyError> {
        let a = self
            .autoscale
            .as_ref()
            .ok_or(crate::policy::PolicyError::NotAutoscaled)?;
        policy.validate()?;
        let (min, max) = (policy.min_workers, policy.max_workers);
        a.store(policy);
        // validate() guarantees 1 ≤ max and min ≤ max.
        let _ = self.set_bounds(min, max);
        Ok(())
    }

    /// Changes `min` and `max`; the target is clamped into the new range.
    pub(crate) fn set_bounds(&self, min: usize, max: usize) -> Result<(), crate::BuildError> {
        if max == 0 {
            return Err(crate::BuildError::new("max_workers", "must be at least 1"));
        }
        if min > max {
            return Err(crate::BuildError::new(
                "min_workers",
                format!("{min} is greater than max_workers ({max})"),
            ));
        }
        let old_min = {
            let _g = lock(&self.bounds_lock);
            let old_min = self.min.swap(min, AcqRel);
            self.max.store(max, Release);
            let t = self.target.load(Relaxed).clamp(min.max(1), max);
            self.target.store(t, Release);
            let c = self.ceiling.load(Relaxed).clamp(t, max);
            self.ceiling.store(c, Release);
            old_min
        };
        if min < old_min {
            // Workers parked at or below the old floor have no keep-alive deadline; wake
            // them once so they park again with one (lowering `min` is rare).
            self.sleepers.notify_all();
        }
        self.enforce_target();
        if self.live.load(Acquire) < min {
            self.spawn_pending.store(true, Release);
            self.ctl.kick();
        }
        Ok(())
    }

    // ----- observation -------------------------------------------------------------------

    pub(crate) fn shards_table(&self) -> &Mutex<ShardTable> {
        &self.shards
    }

    /// Accepted and refused task totals over every submitter shard.
    pub(crate) fn submit_totals(&self) -> (u64, u64) {
        let (submitted, full, shutdown) = self.gate.sums();
        (submitted, full + shutdown)
    }

    pub(crate) fn live_now(&self) -> usize {
        self.live.load(Acquire)
    }

    pub(crate) fn target_now(&self) -> usize {
        self.target.load(Acquire)
    }

    pub(crate) fn queue_len(&self) -> usize {
        self.rx.len()
    }

    pub(crate) fn shard_totals(&self) -> ShardTotals {
        lock(&self.shards).totals(self.clock.now_ns())
    }

    pub(crate) fn stats(&self) -> Stats {
        self.stats_with(self.shard_totals(), None)
    }

    /// [`Shared::stats`] from shard totals already read (a window just closed read them),
    /// and optionally the live, idle and queued counts it read.
    pub(crate) fn stats_with(&self, t: ShardTotals, seen: Option<(usize, usize, usize)>) -> Stats {
        let (submitted, rejected_full, rejected_shutdown) = self.gate.sums();
        let (live, idle, queued) = seen.unwrap_or_else(|| {
            let live = self.live.load(Acquire);
            (live, self.sleepers.idle().min(live), self.rx.len())
        });
        Stats {
            live,
            idle,
            busy: t.busy,
            queued,
            submitted,
            completed: t.completed,
            rejected: rejected_full + rejected_shutdown,
            rejected_overloaded: rejected_full,
            rejected_shutdown,
            panicked: t.panicked,
            spawned: self.rare.spawned.load(Relaxed),
            retired: self.rare.retired.load(Relaxed),
            spawn_failures: self.rare.spawn_failures.load(Relaxed),
            hook_panics: self.rare.hook_panics.load(Relaxed),
            returned: self.rare.returned.load(Relaxed),
            target: self.target.load(Relaxed),
            ceiling: self.ceiling.load(Relaxed),
            scale_ups: self
                .autoscale
                .as_ref()
                .map_or(0, |a| a.scale_ups.load(Relaxed)),
            scale_downs: self
                .autoscale
                .as_ref()
                .map_or(0, |a| a.scale_downs.load(Relaxed)),
            min: self.min.load(Relaxed),
            max: self.max.load(Relaxed),
            wait_ns_total: t.wait_ns,
            wait_samples: t.wait_samples,
            run_ns_total: t.run_ns,
            run_samples: t.run_samples,
            busy_ns_total: t.busy_ns,
        }
    }

    // ----- shutdown ----------------------------------------------------------------------

    /// Runs the shutdown protocol (see the module notes). With `abort`, returns the jobs
    /// that never ran.
    pub(crate) fn shutdown(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        abort: bool,
    ) -> (Result<(), ShutdownTimeout>, Vec<J>) {
        if abort {
            self.aborting.store(true, SeqCst);
            // Drain while waiting so that submitters blocked on a full queue get in (and
            // then get drained too).
            loop {
                self.drain_into_returned();
                let step = Instant::now() + Duration::from_millis(1);
                let until = deadline.map_or(step, |d| d.min(step));
                if self.gate.close_and_wait(Some(until)) {
                    break;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return (Err(self.timeout_report()), self.take_returned());
                }
            }
            self.drain_into_returned();
        } else if !self.gate.close_and_wait(deadline) {
            return (Err(self.timeout_report()), Vec::new());
        }
        self.draining.store(true, SeqCst);
        self.sleepers.notify_all();
        if !self.rx.is_empty() && self.live.load(Acquire) == 0 {
            self.spawn_pending.store(true, Release);
            self.ctl.kick();
        }
        let own = usize::from(self.on_own_worker());
        {
            let mut g = lock(&self.exit_lock);
            loop {
                let live = self.live.load(Acquire);
                if live <= own && (own == 1 || self.rx.is_empty()) {
                    break;
                }
                g = match deadline {
                    None => self.exited.wait(g).unwrap_or_else(|p| p.into_inner()),
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            drop(g);
                            return (Err(self.timeout_report()), self.take_returned());
                        }
                        self.exited
                            .wait_timeout(g, d - now)
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                };
            }
        }
        // Every worker but (possibly) the caller has left its loop; join them so that no
        // thread outlives the pool.
        let me = std::thread::current().id();
        let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.handles));
        for h in handles {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
        (Ok(()), self.take_returned())
    }

    fn drain_into_returned(&self) {
        while let Ok(t) = self.rx.try_recv() {
            self.return_unrun(t);
        }
    }

    fn take_returned(&self) -> Vec<J> {
        let v = std::mem::take(&mut *lock(&self.returned));
        self.rare.returned.fetch_add(v.len() as u64, Relaxed);
        v
    }

    fn timeout_report(&self) -> ShutdownTimeout {
        ShutdownTimeout {
            running: self.shard_totals().busy,
            queued: self.rx.len(),
            workers: self.live.load(Acquire),
        }
    }
}

/// Adds to a counter that several threads may share (submit counters are per-thread
/// shards, but more threads than shards can map to one).
#[inline]
fn bump_shared(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Relaxed);
}

impl<J: Send + 'static, H: Handler<J>> Managed for Shared<J, H> {
    fn service(self: Arc<Self>, now: Instant) -> Option<Instant> {
        self.spawn_pending.store(false, SeqCst);
        self.burst_kick.store(false, SeqCst);
        let backoff_until = lock(&self.backoff).until.filter(|u| now < *u);
        if let Some(until) = backoff_until {
            // Refused threads: no spawning until the backoff passes; control ticks go on.
            return Some(match self.autoscale_service(now) {
                Some(t) => t.min(until),
                None => until,
            });
        }
        // Growth that needs no grace: below the target, or for a burst-deep queue.
        let mut refused = false;
        while self.spawn_wanted_at_once() {
            let ceiling = self.ceiling.load(Relaxed).max(self.min.load(Relaxed));
            if !self.try_spawn_one(ceiling) {
                refused = true;
                break;
            }
        }
        let mut next = if refused {
            lock(&self.backoff).until.filter(|u| *u > Instant::now())
        } else {
            self.grace_deadline(now)
        };
        if next.is_none() && !refused {
            // Past the grace, growth above the target is one worker per grace (see the
            // design note on `grace_deadline`); filling up to `min`, draining, and pools
            // without a grace start all they need at once.
            let one_per_grace = self.grace_applies();
            while self.spawn_wanted() {
                let ceiling = if self.draining.load(Relaxed) {
                    1
                } else {
                    self.ceiling.load(Relaxed).max(self.min.load(Relaxed))
                };
                if !self.try_spawn_one(ceiling) {
                    next = lock(&self.backoff).until.filter(|u| *u > Instant::now());
                    break;
                }
                if one_per_grace {
                    // Growth above the target: if a trim at this target came shortly
                    // before, it was a mistake (see `TrimBudget`).
                    let regret = lock(&self.trim_budget)
                        .grew_above_target(self.clock.now_ns(), self.target.load(Relaxed));
                    if regret {
                        tracing::debug!(pool = self.id, "trim regretted: trim budget doubled");
                    }
                    // The new worker is `starting`, so it covers one queued task; if more
                    // are still uncovered, a new grace starts now.
                    next = self.grace_deadline(Instant::now());
                    break;
                }
            }
        }
        if self.draining.load(Relaxed) {
            return next;
        }
        match (next, self.autoscale_service(now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn id(&self) -> usize {
        self.id
    }
}

impl<J: Send + 'static, H: Handler<J>> Shared<J, H> {
    /// Growth now would be on-demand growth under a grace period: the pool has one (an
    /// autoscaler set it), is at least at `min`, and is not draining.
    fn grace_applies(&self) -> bool {
        self.spawn_grace_ns.load(Relaxed) != 0
            && self.live.load(Acquire) >= self.min.load(Relaxed)
            && !self.draining.load(Relaxed)
    }

    /// On-demand growth under a grace period: the first time growth is wanted, note the
    /// time and come back when the grace has passed (keeping `spawn_pending` raised so that
    /// submitters do not kick meanwhile); then come back after [`SPAWN_CONFIRM_FRACTION`]
    /// of the grace, and grow only if growth is still wanted and the uncovered backlog is
    /// no smaller than it was (a shrinking one gets another confirmation). Growth is then
    /// one worker, and a new grace starts if tasks are still uncovered. Filling up to `min`
    /// and draining at shutdown are never delayed. Returns the deadline to wait for, or
    /// `None` to act now.
    ///
    /// # Design note: why the confirmation, and one worker at a time
    ///
    /// The grace is wall time, and a stall of the whole machine (a VM's steal time, tens of
    /// milliseconds at once here) passes it without the workers having run: when the guest
    /// resumes, the control thread's timer has expired and the queue the frozen workers
    /// left is still there, so it started threads above the target that a few milliseconds
    /// of running would have made useless, and trimmed them 3 s later — two reversals each.
    /// (A debug print of a real `step` run showed every growth above the target at 200
    /// tasks/s came from the grace, for 2–4 queued tasks at a size that serves that load
    /// with sub-millisecond p99s.) The confirmation is timed from when the control thread
    /// saw the grace pass, so the workers always get that moment of running first.
    ///
    /// That alone removed only part of it: a debug run of `ramp` still grew after the
    /// confirmation for queues of 4–9 tasks, twice a minute, and started one thread per
    /// queued task (7 at once at target 16), all trimmed 3 s later. Two rules now hold such
    /// growth to what a backlog that outlives the grace justifies. Workers that have
    /// resumed drain a stall's backlog within milliseconds, while a pool that is really
    /// short leaves it standing: so the confirmation grows only a backlog that did not
    /// shrink over it. And when it grows, it starts one worker and then waits a new grace,
    /// so a backlog that a few more milliseconds would have cleared costs one thread, not
    /// one per task; the burst rule, not this one, is what grows fast. Measured on real
    /// threads (seed 1, debug build): `ramp` went from 6.0 to 1.1 reversals a minute and
    /// `step` from 3.9 to 1.3, with budget burn 0.04 → 0.17 and 0.03 → 0.04.
    fn grace_deadline(&self, now: Instant) -> Option<Instant> {
        let grace = self.spawn_grace_ns.load(Relaxed);
        let mut b = lock(&self.backoff);
        if !self.grace_applies() || !self.spawn_wanted() {
            b.grace.reset();
            return None;
        }
        let confirm = (grace as f64 * SPAWN_CONFIRM_FRACTION) as u64;
        let backlog = self.rx.len().saturating_sub(self.covering());
        let next = b.grace.wanted(
            now,
            Duration::from_nanos(grace),
            Duration::from_nanos(confirm),
            backlog,
        );
        if next.is_some() {
            self.spawn_pending.store(true, SeqCst);
        }
        next
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{
        trim_idle, GraceTimer, TrimBudget, TRIM_BUDGET_WORKER_S, TRIM_IDLE_MIN, TRIM_REGRET_DECAY,
        TRIM_REGRET_MAX_DOUBLINGS, TRIM_REGRET_MAX_SURPLUS,
    };
    use std::time::{Duration, Instant};

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn a_trim_undone_within_a_workers_budget_doubles_the_budget_and_a_quiet_minute_halves_it() {
        let mut b = TrimBudget::default();
        // Unregretted, it is `trim_idle`.
        for s in 0..40 {
            assert_eq!(b.idle_before_trim(s, 5 * SEC), trim_idle(s), "surplus {s}");
        }
        // Growth with no trim before it regrets nothing.
        assert!(!b.grew_above_target(5 * SEC, 14));
        // A trim undone 4 s later (within the 10 s one worker is kept), at the same target,
        // is regretted once.
        b.trimmed(10 * SEC, 14);
        assert!(b.grew_above_target(14 * SEC, 14));
        assert!(!b.grew_above_target(15 * SEC, 14), "one regret per trim");
        assert_eq!(b.doublings(15 * SEC), 1);
        assert_eq!(b.worker_seconds(15 * SEC), 2.0 * TRIM_BUDGET_WORKER_S);
        // The doubled budget is a small surplus's; a larger one keeps the base budget.
        assert_eq!(
            b.idle_before_trim(1, 15 * SEC).as_secs_f64(),
            2.0 * TRIM_BUDGET_WORKER_S
        );
        assert_eq!(
            b.idle_before_trim(TRIM_REGRET_MAX_SURPLUS, 15 * SEC)
                .as_secs_f64(),
            2.0 * TRIM_BUDGET_WORKER_S / TRIM_REGRET_MAX_SURPLUS as f64
        );
        for s in TRIM_REGRET_MAX_SURPLUS + 1..40 {
            assert_eq!(b.idle_before_trim(s, 15 * SEC), trim_idle(s), "surplus {s}");
        }
        // Growth at another target than the trim's is the load moving, not a regret.
        b.trimmed(16 * SEC, 14);
        assert!(!b.grew_above_target(17 * SEC, 13));
        assert!(!b.grew_above_target(17 * SEC, 15));
        // The window to regret in is one worker's base budget, 10 s, whatever the budget.
        b.trimmed(20 * SEC, 14);
        assert!(!b.grew_above_target(31 * SEC, 14), "past the window");
        b.trimmed(50 * SEC, 14);
        assert!(b.grew_above_target(60 * SEC, 14));
        assert_eq!(b.doublings(70 * SEC), 2);
        // Capped.
        b.trimmed(71 * SEC, 14);
        assert!(b.grew_above_target(72 * SEC, 14));
        assert_eq!(b.doublings(72 * SEC), TRIM_REGRET_MAX_DOUBLINGS);
        // Forgotten one doubling per quiet TRIM_REGRET_DECAY since the last regret.
        let decay = TRIM_REGRET_DECAY.as_nanos() as u64;
        assert_eq!(b.doublings(72 * SEC + decay - 1), 2);
        assert_eq!(b.doublings(72 * SEC + decay), 1);
        assert_eq!(b.doublings(72 * SEC + 2 * decay), 0);
        assert_eq!(b.doublings(u64::MAX), 0);
        // A regret after a partial decay doubles what is left.
        b.trimmed(72 * SEC + decay, 14);
        assert!(b.grew_above_target(72 * SEC + decay + SEC, 14));
        assert_eq!(b.doublings(72 * SEC + decay + SEC), 2);
        // Time going backwards (a caller's clock) forgets nothing and panics nowhere.
        assert_eq!(b.doublings(0), 2);
    }

    #[test]
    fn a_surplus_is_trimmed_once_it_has_idled_the_budget() {
        let secs = |s: usize| trim_idle(s).as_secs_f64();
        assert_eq!(secs(1), TRIM_BUDGET_WORKER_S);
        assert_eq!(secs(2), TRIM_BUDGET_WORKER_S / 2.0);
        // The surplus times the wait is the budget, down to the shortest wait...
        for s in 1..=8 {
            assert!(
                (secs(s) * s as f64 - TRIM_BUDGET_WORKER_S).abs() < 1e-6,
                "surplus {s}"
            );
        }
        // ...which a large surplus waits instead.
        assert_eq!(trim_idle(1000), TRIM_IDLE_MIN);
        // No surplus: as for one worker (the caller retires none anyway).
        assert_eq!(trim_idle(0), trim_idle(1));
        // Larger surpluses never wait longer.
        assert!((1..200).all(|s| trim_idle(s + 1) <= trim_idle(s)));
    }

    const GRACE: Duration = Duration::from_millis(40);
    const CONFIRM: Duration = Duration::from_millis(5);

    #[test]
    fn growth_waits_out_the_grace_then_the_confirmation() {
        let t0 = Instant::now();
        let mut g = GraceTimer::default();
        assert_eq!(g.wanted(t0, GRACE, CONFIRM, 3), Some(t0 + GRACE));
        // A look before the grace ends changes nothing.
        assert_eq!(g.wanted(t0 + CONFIRM, GRACE, CONFIRM, 3), Some(t0 + GRACE));
        // On time: the confirmation follows the grace.
        let end = t0 + GRACE;
        assert_eq!(g.wanted(end, GRACE, CONFIRM, 3), Some(end + CONFIRM));
        assert_eq!(g.wanted(end + CONFIRM, GRACE, CONFIRM, 3), None);
        // Growing started afresh: a new want waits a whole grace again.
        let t1 = end + CONFIRM;
        assert_eq!(g.wanted(t1, GRACE, CONFIRM, 3), Some(t1 + GRACE));
    }

    #[test]
    fn a_late_look_at_the_grace_still_waits_the_confirmation() {
        // The control thread first looks 100 ms after the grace ended (a stalled machine):
        // growth waits the confirmation from that look, not from the grace's end.
        let t0 = Instant::now();
        let mut g = GraceTimer::default();
        assert_eq!(g.wanted(t0, GRACE, CONFIRM, 3), Some(t0 + GRACE));
        let late = t0 + GRACE + Duration::from_millis(100);
        assert_eq!(g.wanted(late, GRACE, CONFIRM, 3), Some(late + CONFIRM));
        assert_eq!(g.wanted(late + CONFIRM, GRACE, CONFIRM, 3), None);
    }

    #[test]
    fn a_draining_backlog_is_confirmed_again_and_a_standing_one_grows() {
        let t0 = Instant::now();
        let mut g = GraceTimer::default();
        g.wanted(t0, GRACE, CONFIRM, 7);
        let end = t0 + GRACE;
        assert_eq!(g.wanted(end, GRACE, CONFIRM, 7), Some(end + CONFIRM));
        // The workers took two tasks during the confirmation: look again later.
        let c1 = end + CONFIRM;
        assert_eq!(g.wanted(c1, GRACE, CONFIRM, 5), Some(c1 + CONFIRM));
        // A look before that confirmation ends changes nothing.
        assert_eq!(
            g.wanted(c1 + CONFIRM / 2, GRACE, CONFIRM, 1),
            Some(c1 + CONFIRM)
        );
        // No progress over a whole confirmation: grow.
        assert_eq!(g.wanted(c1 + CONFIRM, GRACE, CONFIRM, 5), None);
        // A backlog that grew is no progress either.
        let t1 = c1 + CONFIRM;
        g.wanted(t1, GRACE, CONFIRM, 2);
        g.wanted(t1 + GRACE, GRACE, CONFIRM, 2);
        assert_eq!(g.wanted(t1 + GRACE + CONFIRM, GRACE, CONFIRM, 6), None);
    }

    #[test]
    fn growth_no_longer_wanted_restarts_the_grace() {
        let t0 = Instant::now();
        let mut g = GraceTimer::default();
        g.wanted(t0, GRACE, CONFIRM, 3);
        g.wanted(t0 + GRACE, GRACE, CONFIRM, 3);
        g.reset();
        let t1 = t0 + GRACE + Duration::from_millis(1);
        assert_eq!(g.wanted(t1, GRACE, CONFIRM, 3), Some(t1 + GRACE));
    }
}
