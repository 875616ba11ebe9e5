//! `--virtual`: the same schedule and the same strategy code against a simulated pool in
//! virtual time — a discrete-event M/G/c-style model, not a measurement.
//!
//! The model: one FIFO queue; workers spawn instantly; an arriving task goes to an idle worker
//! if there is one (the most recently idled for our pool, the longest idle for the peers, whose
//! channels wake waiters in FIFO order), otherwise it queues, and the pool spawns a worker at
//! once if it is below its ceiling (for our autoscaled pool: at once below the target, and
//! between the target and the ceiling only while the queue is `Decision::burst_queue` deep or
//! once the oldest queued task has waited the spawn grace, one worker per grace, as the real
//! pool does). Sleep tasks hold a worker for their service time; spin tasks share `ncpu`
//! cores (processor sharing: each runs at `min(1, ncpu/n)` of a core while `n` spin at once).
//! Idle workers above the minimum (for our autoscaled pool: above the target) retire after
//! the keep-alive; lowering the target retires idle workers (coldest first; at a tick, those
//! idle for `elastic_pool::TrimBudget::idle_before_trim` of the surplus, with the budget
//! doubled by regretted trims, as the real pool does) and busy ones when they finish. For our
//! strategies, `elastic_pool::scaler::Scaler` — the code the real pool runs — sees the
//! window's signals every jittered tick and its `Decision::to` becomes the target.
//! Nothing sleeps: a 150 s trace takes milliseconds.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use elastic_pool::policy::Policy;
use elastic_pool::scaler::Scaler;
use elastic_pool::strategy::TickSignals;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::contender::{Contender, KEEP_ALIVE, ON_DEMAND_MAX, RUSTY_CORE, RUSTY_MAX};
use crate::generator::Schedule;
use crate::oracle::Oracle;
use crate::score::{quantile, RunData, Sample, TaskRecord, SAMPLE_NS};
use crate::task::{thread_cpu_ns, Work};
use crate::trace::Trace;

/// Which idle worker takes the next task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wake {
    /// The most recently idled (our pool): surplus workers stay cold and expire.
    Lifo,
    /// The longest idle (crossbeam/tokio waiters): work spreads over every idle worker.
    Fifo,
}

/// Who moves the target.
enum Control {
    /// Nobody: the target stays where it started.
    Fixed,
    /// Our scaler, every jittered tick.
    Scaler(Box<ScalerState>),
    /// The oracle's `c*`, set at every oracle tick (floor and ceiling).
    Oracle,
    /// ThreadPoolExecutor: grow past core only when the queue is full.
    Tpe,
}

/// The library's decision function with its policy and the tick-jitter stream.
struct ScalerState {
    scaler: Scaler,
    policy: Policy,
    rng: StdRng,
}

/// The pool model's configuration.
struct Config {
    min: usize,
    max: usize,
    target: usize,
    /// On-demand growth ceiling (≥ target); the scaler's `Decision::ceiling`, else the target.
    ceiling: usize,
    /// On-demand growth waits until the oldest queued task has waited this long (ns);
    /// 0 = at once. Applies above the target only; our autoscaled pool uses twice the SLO, as
    /// the real one does (capped at 1 s).
    spawn_grace_ns: u64,
    /// A queue at least this deep grows the pool at once, grace or not (the scaler's
    /// `Decision::burst_queue`); 0 = no such rule.
    burst_queue: usize,
    grow_on_demand: bool,
    queue_cap: Option<usize>,
    keep_alive_ns: Option<u64>,
    /// Keep-alive expires only workers above the target (our autoscaled pool), not every
    /// worker above `min`.
    expire_above_target: bool,
    wake: Wake,
    prestart: usize,
    control: Control,
}

fn ns(s: f64) -> u64 {
    (s.max(0.0) * 1e9) as u64
}

fn config(contender: &Contender, oracle: &Oracle, policy: &Policy, seed: u64) -> Config {
    let ka = Some(KEEP_ALIVE.as_nanos() as u64);
    match *contender {
        Contender::Strategy(kind) => {
            let mut p = policy.clone();
            p.strategy = kind;
            let min = p.min_workers;
            Config {
                min,
                max: p.max_workers,
                target: min.max(1),
                ceiling: min.max(1),
                // The grace, then the real pool's confirmation (no stalls here, so it is
                // just a little more grace; the model does not re-confirm a draining
                // backlog, which a queue without stalls rarely is after the grace).
                spawn_grace_ns: ns((p.target_p99_wait_ms / 1000.0
                    * elastic_pool::SPAWN_GRACE_FRACTION)
                    .min(1.0)
                    * (1.0 + elastic_pool::SPAWN_CONFIRM_FRACTION)),
                burst_queue: min.max(1),
                grow_on_demand: true,
                queue_cap: None,
                keep_alive_ns: Some(ns(p.keep_alive_s)),
                expire_above_target: true,
                wake: Wake::Lifo,
                prestart: min,
                control: Control::Scaler(Box::new(ScalerState {
                    scaler: Scaler::new(&p),
                    policy: p,
                    rng: StdRng::seed_from_u64(seed ^ 0x5CA1_AB1E),
                })),
            }
        }
        Contender::Oracle => {
            let c = oracle.at(0.0).max(1);
            Config {
                min: c,
                max: oracle.peak().max(1),
                target: c,
                ceiling: c,
                spawn_grace_ns: 0,
                burst_queue: 0,
                grow_on_demand: true,
                queue_cap: None,
                keep_alive_ns: None,
                expire_above_target: false,
                wake: Wake::Lifo,
                prestart: c,
                control: Control::Oracle,
            }
        }
        Contender::Static(n) => fixed(n),
        Contender::StaticPeak => fixed(oracle.peak().max(1)),
        Contender::OnDemand => Config {
            min: 0,
            max: ON_DEMAND_MAX,
            target: ON_DEMAND_MAX,
            ceiling: ON_DEMAND_MAX,
            spawn_grace_ns: 0,
            burst_queue: 0,
            grow_on_demand: true,
            queue_cap: None,
            keep_alive_ns: ka,
            expire_above_target: false,
            wake: Wake::Lifo,
            prestart: 0,
            control: Control::Fixed,
        },
        Contender::Tpe(p) => {
            let (core, max, queue) = Contender::tpe_sizes(&p, oracle);
            Config {
                min: core,
                max,
                // Growth happens only in `arrive` (queue full); the target only has to keep
                // the threads past core from retiring before their keep-alive.
                target: max,
                ceiling: max,
                spawn_grace_ns: 0,
                burst_queue: 0,
                grow_on_demand: false,
                queue_cap: Some(queue),
                keep_alive_ns: ka,
                expire_above_target: false,
                wake: Wake::Lifo,
                prestart: core,
                control: Control::Tpe,
            }
        }
        Contender::TokioBlocking => Config {
            min: 0,
            max: ON_DEMAND_MAX,
            target: ON_DEMAND_MAX,
            ceiling: ON_DEMAND_MAX,
            spawn_grace_ns: 0,
            burst_queue: 0,
            grow_on_demand: true,
            queue_cap: None,
            keep_alive_ns: ka,
            expire_above_target: false,
            wake: Wake::Fifo,
            prestart: 0,
            control: Control::Fixed,
        },
        Contender::RustyPool => Config {
            min: RUSTY_CORE,
            max: RUSTY_MAX,
            target: RUSTY_MAX,
            ceiling: RUSTY_MAX,
            spawn_grace_ns: 0,
            burst_queue: 0,
            grow_on_demand: true,
            queue_cap: None,
            keep_alive_ns: ka,
            expire_above_target: false,
            wake: Wake::Fifo,
            prestart: 0,
            control: Control::Fixed,
        },
    }
}

fn fixed(n: usize) -> Config {
    Config {
        min: n,
        max: n,
        target: n,
        ceiling: n,
        spawn_grace_ns: 0,
        burst_queue: 0,
        grow_on_demand: false,
        queue_cap: None,
        keep_alive_ns: None,
        expire_above_target: false,
        wake: Wake::Lifo,
        prestart: n,
        control: Control::Fixed,
    }
}

/// Counters of the window since the last control tick.
#[derive(Default)]
struct Window {
    start_ns: u64,
    arrivals: u64,
    completions: u64,
    dequeued: u64,
    busy_ns: f64,
    service_ns: u64,
    waits: Vec<u64>,
    /// Times a worker went idle in the window.
    idle_entries: u64,
    spin_cpu_ns: f64,
    /// What the pool's CPU probe would count for the tasks that finished in the window: the
    /// CPU work of spin tasks (they never block, so none of their wall time is blocked), and
    /// the wall time of sleep tasks (all blocked).
    probe_cpu_ns: u64,
    probe_blocked_ns: u64,
}

struct Sim<'a> {
    cfg: Config,
    trace: &'a Trace,
    oracle: &'a Oracle,
    schedule: &'a Schedule,
    ncpu: usize,
    now: u64,
    live: usize,
    /// Idle workers' idle-since times, coldest first.
    idle: VecDeque<u64>,
    busy: usize,
    queue: VecDeque<usize>,
    sleeping: BinaryHeap<Reverse<(u64, usize)>>,
    /// Running spin tasks: (task, CPU ns still to run).
    spinning: Vec<(usize, f64)>,
    records: Vec<TaskRecord>,
    window: Window,
    last_dequeue_ns: u64,
    spawned: u64,
    scored_worker_ns: f64,
    scored: (u64, u64),
    controller_cpu_ns: u64,
    /// The scaler's next tick.
    next_tick: u64,
    /// When the last worker started for a task that waited out the grace: as in the real
    /// pool, such growth is one worker per grace.
    last_grace_spawn_ns: Option<u64>,
    /// The trim budget and its regrets, as the real pool keeps them.
    trim_budget: elastic_pool::TrimBudget,
}

/// Runs `schedule` against the pool model of `contender`.
pub fn run(
    trace: &Trace,
    schedule: &Schedule,
    oracle: &Oracle,
    contender: &Contender,
    policy: &Policy,
    ncpu: usize,
) -> RunData {
    let cfg = config(contender, oracle, policy, schedule.seed);
    let records = schedule
        .arrivals
        .iter()
        .map(|a| TaskRecord {
            intended_ns: a.at_ns,
            start_ns: None,
            end_ns: None,
            spin: a.work.is_spin(),
            rejected: false,
        })
        .collect();
    let mut sim = Sim {
        cfg,
        trace,
        oracle,
        schedule,
        ncpu: ncpu.max(1),
        now: 0,
        live: 0,
        idle: VecDeque::new(),
        busy: 0,
        queue: VecDeque::new(),
        sleeping: BinaryHeap::new(),
        spinning: Vec::new(),
        records,
        window: Window::default(),
        last_dequeue_ns: 0,
        spawned: 0,
        scored_worker_ns: 0.0,
        scored: (ns(trace.warmup_s), ns(trace.duration_s())),
        controller_cpu_ns: 0,
        next_tick: u64::MAX,
        last_grace_spawn_ns: None,
        trim_budget: elastic_pool::TrimBudget::default(),
    };
    for _ in 0..sim.cfg.prestart {
        sim.spawn_idle();
    }
    let samples = sim.run_events();
    RunData {
        records: sim.records,
        samples,
        worker_seconds_exact: Some(sim.scored_worker_ns / 1e9),
        threads_spawned: sim.spawned,
        controller_cpu_ns: sim.controller_cpu_ns,
    }
}

impl Sim<'_> {
    fn spin_rate(&self) -> f64 {
        let n = self.spinning.len();
        if n == 0 {
            1.0
        } else {
            (self.ncpu as f64 / n as f64).min(1.0)
        }
    }

    /// Moves time to `t`, integrating workers, busy time and spin progress.
    fn advance(&mut self, t: u64) {
        if t <= self.now {
            return;
        }
        let dt = (t - self.now) as f64;
        let (a, b) = self.scored;
        let overlap = t.min(b).saturating_sub(self.now.max(a)) as f64;
        self.scored_worker_ns += self.live as f64 * overlap;
        self.window.busy_ns += self.busy as f64 * dt;
        let rate = self.spin_rate();
        for s in &mut self.spinning {
            s.1 -= dt * rate;
        }
        self.window.spin_cpu_ns += self.spinning.len() as f64 * rate * dt;
        self.now = t;
    }

    fn next_spin_done(&self) -> Option<u64> {
        let rate = self.spin_rate();
        self.spinning
            .iter()
            .map(|s| s.1.max(0.0))
            .reduce(f64::min)
            .map(|left| self.now + (left / rate).ceil() as u64)
    }

    /// The live count keep-alive expiry stops at (the real pool's `keep_alive_floor`).
    fn keep_alive_floor(&self) -> usize {
        if self.cfg.expire_above_target {
            self.cfg.min.max(self.cfg.target)
        } else {
            self.cfg.min
        }
    }

    fn next_expiry(&self) -> Option<u64> {
        let ka = self.cfg.keep_alive_ns?;
        if self.live <= self.keep_alive_floor() {
            return None;
        }
        self.idle.front().map(|&since| since + ka)
    }

    fn spawn_idle(&mut self) {
        self.live += 1;
        self.spawned += 1;
        self.idle.push_back(self.now);
        self.window.idle_entries += 1;
    }

    fn take_idle(&mut self) -> bool {
        let got = match self.cfg.wake {
            Wake::Lifo => self.idle.pop_back(),
            Wake::Fifo => self.idle.pop_front(),
        };
        got.is_some()
    }

    /// A worker (already counted busy) starts task `i` now.
    fn start(&mut self, i: usize) {
        let intended = self.records[i].intended_ns;
        self.records[i].start_ns = Some(self.now);
        self.window.dequeued += 1;
        self.window.waits.push(self.now.saturating_sub(intended));
        self.last_dequeue_ns = self.now;
        match self.schedule.arrivals[i].work {
            Work::Sleep(n) => self.sleeping.push(Reverse((self.now + n, i))),
            Work::Spin(n) => self.spinning.push((i, n as f64)),
        }
    }

    /// When the oldest queued task's grace ends, if on-demand growth is otherwise allowed.
    fn grace_expiry(&self) -> Option<u64> {
        if self.cfg.spawn_grace_ns == 0
            || !self.cfg.grow_on_demand
            || self.live >= self.cfg.ceiling.min(self.cfg.max)
        {
            return None;
        }
        let &i = self.queue.front()?;
        let oldest = self.records[i].intended_ns + self.cfg.spawn_grace_ns;
        Some(oldest.max(self.next_grace_spawn_ns()))
    }

    /// The earliest time the next grace growth may start a worker.
    fn next_grace_spawn_ns(&self) -> u64 {
        self.last_grace_spawn_ns
            .map_or(0, |t| t + self.cfg.spawn_grace_ns)
    }

    /// Task `i` has waited out the grace, and the last grace growth was a grace ago.
    fn grace_passed(&self, i: usize) -> bool {
        self.now.saturating_sub(self.records[i].intended_ns) >= self.cfg.spawn_grace_ns
            && self.now >= self.next_grace_spawn_ns()
    }

    /// Hands queued tasks to idle workers, spawning up to the target where allowed.
    fn dispatch(&mut self) {
        while let Some(&i) = self.queue.front() {
            // As the real pool: workers start at once while the queue is burst-deep.
            let burst = self.cfg.burst_queue > 0 && self.queue.len() >= self.cfg.burst_queue;
            if self.take_idle() {
            } else if self.cfg.grow_on_demand
                && self.live < self.cfg.ceiling.min(self.cfg.max)
                && (burst || self.live < self.cfg.target || self.grace_passed(i))
            {
                if !burst && self.live >= self.cfg.target && self.cfg.spawn_grace_ns > 0 {
                    self.last_grace_spawn_ns = Some(self.now);
                    self.trim_budget
                        .grew_above_target(self.now, self.cfg.target);
                }
                self.live += 1;
                self.spawned += 1;
            } else {
                break;
            }
            self.queue.pop_front();
            self.busy += 1;
            self.start(i);
        }
    }

    fn arrive(&mut self, i: usize) {
        self.window.arrivals += 1;
        if let (Some(cap), Control::Tpe) = (self.cfg.queue_cap, &self.cfg.control) {
            let no_idle = self.idle.is_empty();
            if no_idle && self.queue.len() >= cap {
                if self.live < self.cfg.max {
                    // ThreadPoolExecutor: a new thread runs the task that did not fit.
                    self.live += 1;
                    self.spawned += 1;
                    self.busy += 1;
                    self.start(i);
                } else {
                    self.records[i].rejected = true;
                }
                return;
            }
        }
        self.queue.push_back(i);
        self.dispatch();
    }

    fn finish(&mut self, i: usize) {
        self.records[i].end_ns = Some(self.now);
        let start = self.records[i].start_ns.unwrap_or(self.now);
        self.window.completions += 1;
        self.window.service_ns += self.now - start;
        match self.schedule.arrivals[i].work {
            Work::Spin(n) => self.window.probe_cpu_ns += n,
            Work::Sleep(_) => self.window.probe_blocked_ns += self.now - start,
        }
        self.busy -= 1;
        if self.live > self.cfg.ceiling.max(self.cfg.min) {
            // The ceiling fell below this worker while it was busy: it retires now.
            self.live -= 1;
            return;
        }
        // The worker takes the next queued task itself, or goes idle.
        if let Some(j) = self.queue.pop_front() {
            self.busy += 1;
            self.start(j);
        } else {
            self.idle.push_back(self.now);
            self.window.idle_entries += 1;
        }
    }

    /// Applies a new target (and for the oracle a new floor).
    fn set_target(&mut self, target: usize, floor: Option<usize>) {
        self.set_target_ceiling(target, target, floor, 0);
    }

    /// Applies a new target and on-demand ceiling; idle workers above the target retire.
    /// `min_idle_ns`: only workers idle at least this long are retired (the real pool's
    /// `trim_idle` of the surplus for autoscaler ticks; 0 for a direct resize).
    fn set_target_ceiling(
        &mut self,
        target: usize,
        ceiling: usize,
        floor: Option<usize>,
        min_idle_ns: u64,
    ) {
        let target = target.clamp(self.cfg.min.max(1).min(self.cfg.max), self.cfg.max);
        self.cfg.target = target;
        self.cfg.ceiling = ceiling.clamp(target, self.cfg.max);
        if let Some(f) = floor {
            self.cfg.min = f.min(self.cfg.max);
        }
        while self.live > target
            && self.live > self.cfg.min
            && self
                .idle
                .front()
                .is_some_and(|&since| self.now.saturating_sub(since) >= min_idle_ns)
        {
            self.idle.pop_front();
            self.live -= 1;
        }
        while self.live < self.cfg.min {
            self.spawn_idle();
        }
        self.dispatch();
    }

    fn expire(&mut self) {
        let Some(ka) = self.cfg.keep_alive_ns else {
            return;
        };
        while self.live > self.keep_alive_floor() {
            match self.idle.front() {
                Some(&since) if since + ka <= self.now => {
                    self.idle.pop_front();
                    self.live -= 1;
                }
                _ => break,
            }
        }
    }

    fn tick(&mut self) {
        let Control::Scaler(state) = &mut self.cfg.control else {
            return;
        };
        let ScalerState {
            scaler,
            policy,
            rng,
        } = &mut **state;
        let w = std::mem::take(&mut self.window);
        let dt_s = (self.now - w.start_ns) as f64 / 1e9;
        let mut waits = w.waits;
        waits.sort_unstable();
        let signals = TickSignals {
            now_ns: self.now,
            dt_s,
            arrivals: w.arrivals,
            completions: w.completions,
            dequeued: w.dequeued,
            busy_s: w.busy_ns / 1e9,
            service_mean_s: (w.completions > 0)
                .then(|| w.service_ns as f64 / w.completions as f64 / 1e9),
            wait_p99_s: quantile(&waits, 0.99).map(|x| x as f64 / 1e9),
            wait_samples: waits.len() as u64,
            queue_depth: self.queue.len(),
            live: self.live,
            idle: self.idle.len(),
            // As the pool measures it: nobody idle now and nobody went idle all window.
            saturated: self.live > 0 && self.idle.is_empty() && w.idle_entries == 0,
            cpu_util: Some(if dt_s > 0.0 {
                (w.spin_cpu_ns / 1e9 / (dt_s * self.ncpu as f64)).min(1.0)
            } else {
                0.0
            }),
            // The pool probes one sampled task in four; the model knows every task, so it
            // "probes" them all: the share is the same in expectation.
            cpu_probes: w.completions,
            cpu_probe_cpu_s: w.probe_cpu_ns as f64 / 1e9,
            cpu_probe_blocked_s: w.probe_blocked_ns as f64 / 1e9,
            ncpu: self.ncpu,
            since_last_dequeue_s: (self.now - self.last_dequeue_ns) as f64 / 1e9,
            target: self.cfg.target,
            on_demand: true,
        };
        let c0 = thread_cpu_ns();
        let decision = scaler.tick(&signals, policy);
        self.controller_cpu_ns += thread_cpu_ns().saturating_sub(c0);
        let next = policy.tick_jittered(rng.random::<f64>());
        self.window = Window {
            start_ns: self.now,
            ..Window::default()
        };
        self.next_tick = self.now + next.as_nanos() as u64;
        self.cfg.burst_queue = decision.burst_queue.max(1);
        let surplus = self.live.saturating_sub(decision.to);
        let trim = self
            .trim_budget
            .idle_before_trim(surplus, self.now)
            .as_nanos() as u64;
        let live = self.live;
        self.set_target_ceiling(decision.to, decision.ceiling, None, trim);
        if self.live < live {
            self.trim_budget.trimmed(self.now, self.cfg.target);
        }
    }

    /// The event loop: arrivals, completions, keep-alive expiries, control ticks and samples
    /// in time order, until the trace is over and the pool has drained.
    fn run_events(&mut self) -> Vec<Sample> {
        let end = ns(self.trace.duration_s());
        let n = self.schedule.arrivals.len();
        let oracle_tick = ns(self.oracle.tick_s).max(1);
        let mut next_oracle = oracle_tick;
        if let Control::Scaler(st) = &mut self.cfg.control {
            let first = st.policy.tick_jittered(st.rng.random::<f64>());
            self.next_tick = first.min(elastic_pool::FIRST_TICK).as_nanos() as u64;
        }
        let is_oracle = matches!(self.cfg.control, Control::Oracle);
        let mut next_arrival = 0usize;
        let mut next_sample = 0u64;
        let mut samples = Vec::with_capacity((end / SAMPLE_NS) as usize + 16);
        loop {
            let drained = next_arrival == n && self.queue.is_empty() && self.busy == 0;
            if drained && samples.last().is_some_and(|s: &Sample| s.t_ns >= end) {
                break;
            }
            let mut t = next_sample;
            if let Some(a) = self.schedule.arrivals.get(next_arrival) {
                t = t.min(a.at_ns);
            }
            if let Some(Reverse((e, _))) = self.sleeping.peek() {
                t = t.min(*e);
            }
            if let Some(e) = self.next_spin_done() {
                t = t.min(e);
            }
            if let Some(e) = self.next_expiry() {
                t = t.min(e);
            }
            if let Some(e) = self.grace_expiry() {
                t = t.min(e);
            }
            if self.next_tick < end {
                t = t.min(self.next_tick);
            }
            if is_oracle && next_oracle < end {
                t = t.min(next_oracle);
            }
            self.advance(t);

            while let Some(&Reverse((e, i))) = self.sleeping.peek() {
                if e > self.now {
                    break;
                }
                self.sleeping.pop();
                self.finish(i);
            }
            while let Some(k) = self.spinning.iter().position(|s| s.1 <= 0.5) {
                let (i, _) = self.spinning.swap_remove(k);
                self.finish(i);
            }
            self.expire();
            if self.grace_expiry().is_some_and(|e| e <= self.now) {
                self.dispatch();
            }
            if self.next_tick <= self.now && self.next_tick < end {
                self.tick();
            }
            if is_oracle && next_oracle <= self.now && next_oracle < end {
                let c = self.oracle.at(self.now as f64 / 1e9).max(1);
                self.set_target(c, Some(c));
                next_oracle += oracle_tick;
            }
            while let Some(a) = self.schedule.arrivals.get(next_arrival) {
                if a.at_ns > self.now {
                    break;
                }
                self.arrive(next_arrival);
                next_arrival += 1;
            }
            if next_sample <= self.now {
                samples.push(Sample {
                    t_ns: next_sample,
                    live: self.live,
                    busy: self.busy,
                    queued: self.queue.len(),
                });
                next_sample += SAMPLE_NS;
            }
        }
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::generate;
    use crate::score::{score, Mode, RunMeta};
    use crate::trace::BuiltIn;
    use elastic_pool::strategy::StrategyKind;

    fn play(trace: &str, contender: Contender) -> crate::score::Score {
        let t = BuiltIn::find(trace).unwrap().load(2);
        let o = Oracle::plan(&t, 2);
        let s = generate(&t, 1);
        let data = run(&t, &s, &o, &contender, &Policy::default(), 2);
        let meta = RunMeta {
            trace: trace.into(),
            contender: contender.to_string(),
            seed: 1,
            mode: Mode::Virtual,
            ncpu: 2,
        };
        score(&t, &o, &data, &meta)
    }

    #[test]
    fn every_task_finishes_and_static_pools_cost_what_they_hold() {
        let s = play("step", Contender::Static(20));
        assert_eq!(s.lost, 0);
        assert_eq!(s.rejected, 0);
        assert_eq!(s.completed, s.submitted);
        assert_eq!(s.max_workers, 20);
        assert_eq!(s.threads_spawned, 20);
        assert!((s.worker_seconds - 20.0 * 140.0).abs() < 1e-6);
        assert_eq!(s.reversals_per_min, 0.0);
    }

    #[test]
    fn the_oracle_meets_the_slo_at_its_own_cost() {
        let s = play("step", Contender::Oracle);
        assert_eq!(s.lost, 0);
        assert!(
            (s.worker_seconds_ratio - 1.0).abs() < 0.01,
            "{}",
            s.worker_seconds_ratio
        );
        // Sampling noise only (control.md: about 0.5).
        assert!(s.budget_burn < 1.5, "burn {}", s.budget_burn);
        assert_eq!(s.max_workers, 16);
    }

    #[test]
    fn too_few_workers_burn_the_budget() {
        let s = play("step", Contender::Static(8));
        assert!(s.budget_burn > 10.0, "burn {}", s.budget_burn);
        assert!(s.wait_p99_ms > 100.0);
    }

    #[test]
    fn on_demand_pools_wait_nothing_and_the_fifo_ones_do_not_shrink() {
        let ours = play("step", Contender::OnDemand);
        assert_eq!(ours.budget_burn, 0.0);
        assert_eq!(ours.wait_max_ms, 0.0);
        let tokio = play("step", Contender::TokioBlocking);
        assert_eq!(tokio.budget_burn, 0.0);
        // LIFO wake lets surplus workers expire after the step down; FIFO wake keeps them.
        assert!(
            tokio.worker_seconds > ours.worker_seconds * 1.2,
            "tokio {} vs ours {}",
            tokio.worker_seconds,
            ours.worker_seconds
        );
    }

    #[test]
    fn tpe_grows_only_once_its_queue_is_full() {
        let s = play("step", Contender::parse("tpe:4:64:100").unwrap());
        // It grows past core, but only behind a full queue of 100: waits of 100/(c/S).
        assert!(s.max_workers > 4 && s.max_workers < 64);
        assert!(s.wait_p99_ms > 100.0, "p99 wait {}", s.wait_p99_ms);
        let tiny = play("step", Contender::parse("tpe:1:1:5").unwrap());
        assert!(tiny.rejected > 0);
        assert_eq!(tiny.lost, 0);
    }

    #[test]
    fn spin_tasks_share_the_cores() {
        let s = play("cpu-overload", Contender::Static(8));
        assert_eq!(s.lost, 0);
        // Eight workers on two cores keep both cores busy: the ideal server's throughput.
        let r = s.throughput_ratio.unwrap();
        assert!(r > 0.95 && r < 1.05, "{r}");
        // One worker serves half of what two cores could.
        let one = play("cpu-overload", Contender::Static(1));
        let r1 = one.throughput_ratio.unwrap();
        assert!(r1 > 0.4 && r1 < 0.75, "{r1}");
        assert!(s.sojourn_p99_ms.unwrap() > s.wait_p99_ms);
    }

    #[test]
    fn the_scaler_drives_the_model() {
        for kind in StrategyKind::ALL {
            let s = play("step", Contender::Strategy(kind));
            assert_eq!(s.lost, 0, "{kind}");
            assert!(s.max_workers >= 16, "{kind}: max {}", s.max_workers);
            assert!(s.max_workers < 200, "{kind}: max {}", s.max_workers);
            assert!(s.controller_cpu_ms > 0.0);
        }
    }
}
