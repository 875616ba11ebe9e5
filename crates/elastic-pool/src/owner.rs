//! The owning side of a pool: the last handle to drop shuts the pool down, and the methods
//! that closure and typed pools share (resize, stats, shutdown).

use crate::controller::Controller;
use crate::shared::{Handler, Shared};
use std::sync::Arc;

/// Dropped with the last pool handle: shuts the pool down gracefully and detaches it from
/// its control thread (stopping a private one).
pub(crate) struct Owner<J: Send + 'static, H: Handler<J>> {
    pub(crate) shared: Arc<Shared<J, H>>,
    pub(crate) controller: Controller,
}

impl<J: Send + 'static, H: Handler<J>> Owner<J, H> {
    /// Attaches a new pool to `controller` (a fresh private one if `None`).
    pub(crate) fn start(
        config: crate::builder::Config,
        controller: Option<Controller>,
        autoscale: Option<crate::autoscale::Autoscale>,
        handler: H,
    ) -> Arc<Self> {
        let controller = controller.unwrap_or_else(|| {
            // A pool cannot work without its control thread; failing to start one thread
            // at build time means the process is out of threads.
            Controller::new().expect("elastic-pool: could not start the control thread")
        });
        let prestart = config.prestart;
        let shared = Shared::new(config, handler, Arc::clone(controller.inner()), autoscale);
        let weak: std::sync::Weak<dyn crate::controller::Managed> =
            Arc::downgrade(&shared) as std::sync::Weak<Shared<J, H>>;
        controller.attach(weak);
        if prestart {
            shared.prestart();
        }
        Arc::new(Owner { shared, controller })
    }
}

impl<J: Send + 'static, H: Handler<J>> Drop for Owner<J, H> {
    fn drop(&mut self) {
        let _ = self.shared.shutdown(None, false);
        self.controller.detach(self.shared.id);
    }
}

/// Generates the methods that [`Pool`](crate::Pool) and [`TypedPool`](crate::TypedPool)
/// share, so that both read from one source.
macro_rules! common_pool_methods {
    ($job:ty) => {
        /// Sets the ceiling for on-demand growth, clamped to `[max(min, 1), max]`, and
        /// returns the value in force. Lowering it retires idle workers at once (the
        /// coldest first) and busy ones after their current task; raising it lets the pool
        /// grow while work is queued. An autoscaler, if attached, moves it every tick.
        pub fn set_target(&self, n: usize) -> usize {
            self.shared.set_target(n)
        }

        /// Changes the bounds at run time. Growth to a higher `min` starts at once; the
        /// target is clamped into the new range.
        ///
        /// # Errors
        /// A [`BuildError`](crate::BuildError) naming `max_workers` (zero) or `min_workers`
        /// (above max); nothing changes.
        pub fn set_bounds(&self, min: usize, max: usize) -> Result<(), crate::BuildError> {
            self.shared.set_bounds(min, max)
        }

        /// Records the queue wait of one task in `n` per submitting thread from now on
        /// (clamped to ≥ 1); counts of tasks stay exact. An attached autoscaler manages
        /// this itself.
        pub fn set_wait_sampling(&self, n: u32) {
            self.shared.set_sample_every(n);
        }

        /// The wait-sampling rate in force (1 = every task).
        pub fn wait_sampling(&self) -> u32 {
            self.shared.sample_every()
        }

        /// Everything the pool measures: the latest window (queue-wait and service-time
        /// quantiles, rates, utilisation, queue depth, live and idle workers), smoothed
        /// values and exact totals. With autoscaling the window is the last control
        /// tick's; without, it runs from the previous call to this one.
        pub fn metrics(&self) -> crate::Metrics {
            self.shared.metrics()
        }

        /// Replaces the autoscaling policy; it takes effect at the next tick. The bounds
        /// follow the new policy at once.
        ///
        /// # Errors
        /// The policy is invalid ([`PolicyError`](crate::policy::PolicyError) names the
        /// field and the rule; the old policy stays), or the pool has no autoscaler
        /// (`PolicyError::NotAutoscaled`).
        pub fn set_policy(
            &self,
            policy: crate::policy::Policy,
        ) -> Result<(), crate::policy::PolicyError> {
            self.shared.set_policy(policy)
        }

        /// Runs one control tick now, on the calling thread, and returns its decision
        /// (`None` without an autoscaler). The control thread keeps its own schedule; this
        /// is for tests, benchmarks and tools that drive the autoscaler by hand.
        pub fn tick_now(&self) -> Option<crate::Decision> {
            self.shared.tick_now()
        }

        /// Copies the cumulative (since start) queue-wait and service-time histograms into
        /// the caller's buffers, merging every worker shard. For exporters: Prometheus
        /// histograms are cumulative. Allocates nothing.
        pub fn histograms(
            &self,
            wait: &mut crate::histogram::Snapshot,
            service: &mut crate::histogram::Snapshot,
        ) {
            self.shared.cumulative_histograms(wait, service)
        }

        /// The autoscaler's latest demand estimate in workers (additive across replicas;
        /// may exceed `max_workers`), or `None` before the first tick or without one.
        pub fn demand_workers(&self) -> Option<f64> {
            self.shared
                .autoscale
                .as_ref()
                .and_then(|a| a.last_decision())
                .map(|d| d.demand_workers)
        }

        /// The autoscaling policy in force, if the pool autoscales.
        pub fn policy(&self) -> Option<std::sync::Arc<crate::policy::Policy>> {
            self.shared.autoscale.as_ref().map(|a| a.policy())
        }

        /// The most recent scale decisions (at most 256, oldest first): every resize and
        /// every tick where a rule other than `hold` fired, each with the signals behind
        /// it. Empty without an autoscaler.
        pub fn decisions(&self) -> Vec<crate::Decision> {
            self.shared
                .autoscale
                .as_ref()
                .map_or_else(Vec::new, |a| a.decisions())
        }

        /// A snapshot of the pool's counts; see [`Stats`](crate::Stats) for how consistent
        /// it is.
        pub fn stats(&self) -> crate::Stats {
            self.shared.stats()
        }

        /// The number of CPUs available to the process, read once.
        pub fn cpu_count(&self) -> usize {
            crate::clock::cpu_count()
        }

        /// Whether the pool has stopped accepting work.
        pub fn is_shutdown(&self) -> bool {
            self.shared.is_closed()
        }

        /// Graceful shutdown: refuse new work, run every queued task, then join the
        /// workers. Calling it again (or dropping the pool afterwards) is a no-op. Called
        /// from inside one of the pool's own tasks, it does not wait for that task's worker.
        pub fn shutdown(&self) {
            let _ = self.shared.shutdown(None, false);
        }

        /// Like [`shutdown`](Self::shutdown), but waits at most `timeout`.
        ///
        /// # Errors
        /// [`ShutdownTimeout`](crate::ShutdownTimeout) says what was still running and
        /// queued; those workers finish in the background.
        pub fn shutdown_timeout(
            &self,
            timeout: std::time::Duration,
        ) -> Result<(), crate::ShutdownTimeout> {
            self.shared
                .shutdown(std::time::Instant::now().checked_add(timeout), false)
                .0
        }

        /// Immediate shutdown: refuse new work, let running tasks finish, and hand back
        /// every queued task that never ran.
        pub fn shutdown_now(&self) -> Vec<$job> {
            self.shared.shutdown(None, true).1
        }
    };
}
pub(crate) use common_pool_methods;
