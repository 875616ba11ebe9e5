//! The autoscaler attached to a pool: the hot-swappable policy, the scaler's state, the
//! decision ring, and the control tick that ties signals to a new target.
//!
//! The policy sits in an [`ArcSwap`]: `set_policy` validates and stores a new one without
//! any reader ever taking a lock, and the next tick loads it. Everything else is touched
//! only by the control thread (behind a mutex that is therefore never contended). A tick
//! allocates nothing: the scaler keeps fixed-size state, windows are computed into
//! preallocated snapshots, and the decision ring is a `VecDeque` allocated once at its
//! capacity.

use crate::policy::{Policy, PolicyError};
use crate::scaler::{Decision, Rule, Scaler};
use crate::shared::{Handler, Shared};
use crate::strategy::TickSignals;
use crate::sync::lock_std as lock;
use arc_swap::ArcSwap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How many decisions the ring keeps.
pub const DECISION_RING: usize = 256;

pub(crate) struct Autoscale {
    policy: ArcSwap<Policy>,
    state: Mutex<AutoState>,
    /// Exact counts of target changes by direction (the ring keeps only the latest).
    pub(crate) scale_ups: std::sync::atomic::AtomicU64,
    pub(crate) scale_downs: std::sync::atomic::AtomicU64,
}

struct AutoState {
    scaler: Scaler,
    next_tick: Option<Instant>,
    rng: u64,
    ring: VecDeque<Decision>,
    last: Option<Decision>,
    /// Consecutive idle ticks (no change, nothing queued, nothing run); from
    /// [`IDLE_TICKS`] on, ticks are [`IDLE_TICK_FACTOR`] times further apart.
    quiet_ticks: u32,
}

impl Autoscale {
    /// Validates `policy` and prepares the state.
    pub(crate) fn new(policy: Policy) -> Result<Self, PolicyError> {
        policy.validate()?;
        Ok(Autoscale {
            state: Mutex::new(AutoState {
                scaler: Scaler::new(&policy),
                next_tick: None,
                rng: 0x9E37_79B9_7F4A_7C15 ^ (Instant::now().elapsed().as_nanos() as u64),
                ring: VecDeque::with_capacity(DECISION_RING),
                last: None,
                quiet_ticks: 0,
            }),
            policy: ArcSwap::from_pointee(policy),
            scale_ups: std::sync::atomic::AtomicU64::new(0),
            scale_downs: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub(crate) fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    pub(crate) fn store(&self, p: Policy) {
        self.policy.store(Arc::new(p));
    }

    /// The last tick's decision (kept even when it was a plain hold).
    pub(crate) fn last_decision(&self) -> Option<Decision> {
        lock(&self.state).last
    }

    pub(crate) fn decisions(&self) -> Vec<Decision> {
        lock(&self.state).ring.iter().copied().collect()
    }
}

/// How long, as a multiple of the wait target, growth above the target waits (between
/// ticks) while tasks are queued and no worker is idle, unless the queue is burst-deep
/// ([`Decision::burst_queue`](crate::Decision::burst_queue)). Below the target there is no
/// grace. At its Erlang-C size a pool has about 1% of its tasks wait near the SLO — that is
/// what sizing for a p99 means — so growing at half the SLO (this module's first rule)
/// grew the pool for ordinary Poisson tails and trimmed it back 3 s later: 1.2–1.5× the
/// oracle's worker-seconds and 3–14 reversals a minute on real threads. At twice the SLO a
/// right-sized pool almost never waits that long; the grace is a backstop for a model that
/// is wrong, and bursts are caught by the queue depth.
pub const SPAWN_GRACE_FRACTION: f64 = 2.0;

fn spawn_grace(policy: &Policy) -> std::time::Duration {
    std::time::Duration::from_secs_f64(
        (policy.target_p99_wait_ms / 1000.0 * SPAWN_GRACE_FRACTION).clamp(0.0, 1.0),
    )
}

/// The first control tick comes this soon after the pool starts (or sooner, with a shorter
/// tick): until then the growth ceiling is `min_workers`, so a pool started under load would
/// otherwise queue a whole tick of arrivals (150 at 300 tasks/s) and size its first decision
/// for that backlog — 66 threads on the on/off trace's warm-up for a load that needs 21.
pub const FIRST_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// After this many idle ticks in a row (no change, nothing queued, no busy time), the control
/// tick slows down by [`IDLE_TICK_FACTOR`] until the pool is served again. On this project's
/// VMs a timer wake-up alone costs ~80 µs of CPU (a bare thread that parks for 500 ms ten
/// times: 0.81 ms), which is most of an idle pool's cost.
pub const IDLE_TICKS: u32 = 4;
/// How much further apart idle ticks are (2 s at the default 500 ms tick).
pub const IDLE_TICK_FACTOR: u32 = 4;

/// xorshift64*: a tiny, allocation-free source of jitter (no `rand` in the library).
fn next_unit(rng: &mut u64) -> f64 {
    let mut x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

impl<J: Send + 'static, H: Handler<J>> Shared<J, H> {
    /// Runs one control tick now on the calling thread (see `Pool::tick_now`). Returns the
    /// decision, or `None` without an autoscaler.
    pub(crate) fn tick_now(&self) -> Option<Decision> {
        let a = self.autoscale.as_ref()?;
        let mut st = lock(&a.state);
        let policy = a.policy.load();
        Some(self.control_tick(&mut st, &policy))
    }

    /// Runs a control tick if one is due; returns when the next one is due.
    pub(crate) fn autoscale_service(&self, now: Instant) -> Option<Instant> {
        let a = self.autoscale.as_ref()?;
        let mut st = lock(&a.state);
        let policy = a.policy.load();
        let due = match st.next_tick {
            None => {
                // First service: open the first window now, decide at the first tick.
                self.set_spawn_grace(spawn_grace(&policy));
                let mut sig = lock(&self.signals);
                self.close_window(&mut sig, self.clock.now_ns());
                true
            }
            Some(t) => now >= t,
        };
        if !due && st.quiet_ticks >= IDLE_TICKS {
            // Served between ticks (a submitter asked for a worker, a grace ran out): the
            // pool is busy again, so the tick returns to its normal pace.
            st.quiet_ticks = 0;
            if let Some(t) = st.next_tick {
                st.next_tick = Some(t.min(now + policy.tick()));
            }
        }
        if due && st.next_tick.is_some() {
            let d = self.control_tick(&mut st, &policy);
            let idle = d.to == d.from && d.queue_depth == 0 && d.utilisation == 0.0;
            st.quiet_ticks = if idle {
                st.quiet_ticks.saturating_add(1)
            } else {
                0
            };
        }
        if due {
            let jitter = next_unit(&mut st.rng);
            let mut next = policy.tick_jittered(jitter);
            if st.next_tick.is_none() {
                next = next.min(FIRST_TICK);
            } else if st.quiet_ticks >= IDLE_TICKS {
                next *= IDLE_TICK_FACTOR;
            }
            st.next_tick = Some(now + next);
        }
        st.next_tick
    }

    fn control_tick(&self, st: &mut AutoState, policy: &Policy) -> Decision {
        let a = self
            .autoscale
            .as_ref()
            .expect("control ticks run only on autoscaled pools");
        let now_ns = self.clock.now_ns();
        let w = {
            let mut sig = lock(&self.signals);
            self.close_window(&mut sig, now_ns)
        };
        let target = self.target_now();
        let s = TickSignals {
            now_ns,
            dt_s: w.duration.as_secs_f64(),
            arrivals: w.arrivals,
            completions: w.completions,
            dequeued: w.dequeued,
            busy_s: w.busy_seconds,
            service_mean_s: w.service.mean.map(|d| d.as_secs_f64()),
            wait_p99_s: w.wait.p99.map(|d| d.as_secs_f64()),
            wait_samples: w.wait.samples,
            queue_depth: w.queue_depth,
            live: w.live,
            idle: w.idle,
            saturated: w.saturated,
            cpu_util: w.cpu_util,
            cpu_probes: w.cpu_probes,
            cpu_probe_cpu_s: w.cpu_probe_cpu_seconds,
            cpu_probe_blocked_s: w.cpu_probe_blocked_seconds,
            ncpu: crate::clock::cpu_count(),
            since_last_dequeue_s: w.since_last_dequeue.as_secs_f64(),
            target,
            on_demand: true,
        };
        let d = st.scaler.tick(&s, policy);
        st.last = Some(d);
        self.set_spawn_grace(spawn_grace(policy));
        // Also trims idle workers started on demand above the target.
        self.set_target_and_ceiling(d.to, d.ceiling, d.burst_queue);
        self.adapt_sampling(policy, &s);
        if d.changed() || d.rule != Rule::Hold {
            if st.ring.len() == DECISION_RING {
                st.ring.pop_front();
            }
            st.ring.push_back(d);
        }
        if d.to > d.from {
            a.scale_ups
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else if d.to < d.from {
            a.scale_downs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if d.changed() {
            tracing::info!(
                target: "elastic_pool::scale",
                pool = self.id,
                from = d.from,
                to = d.to,
                rule = d.rule.as_str(),
                strategy = d.strategy.as_str(),
                lambda = d.lambda,
                service_s = d.service_s,
                wait_p99_s = d.wait_p99_s.unwrap_or(f64::NAN),
                utilisation = d.utilisation,
                demand_workers = d.demand_workers,
                queue_depth = d.queue_depth,
                live = d.live,
                "scale"
            );
        } else {
            tracing::debug!(
                target: "elastic_pool::scale",
                pool = self.id,
                from = d.from,
                to = d.to,
                rule = d.rule.as_str(),
                lambda = d.lambda,
                demand_workers = d.demand_workers,
                "hold"
            );
        }
        d
    }

    /// Samples 1 task in N with N as large as the policy allows, but small enough that a
    /// window at the current arrival rate still holds the minimum evidence: at low rates
    /// every task is sampled.
    fn adapt_sampling(&self, policy: &Policy, s: &TickSignals) {
        let per_window = s.arrivals as f64;
        let want = policy.min_wait_samples.max(1) as f64;
        let n = (per_window / want)
            .floor()
            .clamp(1.0, f64::from(policy.wait_sample_every.max(1)));
        self.set_sample_every(n as u32);
    }
}
