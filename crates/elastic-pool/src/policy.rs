//! The scaling policy: bounds, the SLO, tick and stabilization settings, and the strategy with
//! its parameters, loaded from TOML or JSON and checked by [`Policy::validate`].
//!
//! Every field has a default (see [`Policy::default`] and `docs/SCALING.md`), so a policy file
//! names only what it changes. Unknown keys are errors. Durations are plain numbers with the unit
//! in the key (`tick_ms = 500.0`, `scale_down_window_s = 10.0`): a negative, NaN (`nan`) or
//! infinite (`inf`) value can be written down and is rejected by [`Policy::validate`] with the
//! field's name, instead of failing inside a `Duration` conversion.
//!
//! ```toml
//! min_workers = 2
//! max_workers = 64
//! target_p99_wait_ms = 20.0
//! strategy = "erlang"        # or "queue-wait", "hill-climb"
//!
//! [erlang]
//! hysteresis = 0.1
//! ```
//!
//! Loading never panics: a syntax error, a wrong type or an unknown key comes back as
//! [`PolicyError::Parse`] with the line, column and (when it can be told) the field; a value that
//! parses but breaks a rule comes back as [`PolicyError::Invalid`] with the field, the rule and
//! the line where the field was written.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::strategy::StrategyKind;

/// Largest `max_workers` accepted: a search bound for the sizing model, far above any sane pool.
pub const MAX_WORKERS_LIMIT: usize = 65_536;

/// The autoscaler's policy. Load it with [`Policy::from_toml_str`], [`Policy::from_json_str`] or
/// [`Policy::from_path`]; build it in code from [`Policy::default`] and check it with
/// [`Policy::validate`].
///
/// Field names are the keys of the policy file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Fewest workers the pool keeps. Default 1.
    pub min_workers: usize,
    /// Most workers the pool may run, a hard ceiling. Default 256 (tokio's blocking pool uses
    /// 512 and its users cap it by hand; the model, not this cap, should size the pool).
    pub max_workers: usize,
    /// The SLO: target p99 queue wait, milliseconds. Default 20 ms.
    pub target_p99_wait_ms: f64,
    /// Control tick, milliseconds. Default 500 ms.
    pub tick_ms: f64,
    /// Tick jitter as a fraction of the tick: each tick lasts `tick × (1 ± jitter)`.
    /// Default 0.1 (±10%), so the controller does not beat in step with periodic load.
    pub tick_jitter: f64,
    /// Scale-down stabilization window, seconds: the pool never shrinks below the highest
    /// recommendation of this window. Default 3 s: bursts are absorbed by growing at once
    /// for a burst-deep queue, so holding a peak size longer only costs worker-seconds (in
    /// the virtual model 10 s costs 1.24× the oracle on step and 2.41× on on/off, 3 s 1.20×
    /// and 2.03×; docs/SCALING.md).
    /// Recurring bursts of period P that must be served without any growth want a window of
    /// at least P.
    pub scale_down_window_s: f64,
    /// Most workers the target may grow by in one tick. Default 32.
    pub max_step_up: usize,
    /// Most workers the target may shrink by in one tick (on top of the ~10%-per-tick limit).
    /// Default 16.
    pub max_step_down: usize,
    /// How long a surplus idle worker (one above the target) lingers before it exits,
    /// seconds; workers at or below the target do not expire, since the autoscaler lowers
    /// the target itself when they are no longer needed. Default 10 s (tokio's).
    pub keep_alive_s: f64,
    /// Fewest queue-wait samples behind a p99 before the scaler acts on latency; shorter windows
    /// are merged until they hold this many. Default 100 (SEDA's figure).
    pub min_wait_samples: u64,
    /// Wait sampling rate, 1 in N tasks (1 = every task), when evidence is plentiful. Default
    /// 8. At low arrival rates the controller samples more often (down to every task) so that
    /// a window still holds `min_wait_samples`.
    pub wait_sample_every: u32,
    /// Horizon over which a backlog should be drained, seconds: a queue of Q adds Q/H to the
    /// arrival rate the model sizes for. Default 1 s.
    pub backlog_drain_s: f64,
    /// Time constant of the arrival-rate and busy-worker smoothing, seconds. Default 5 s.
    pub rate_tau_s: f64,
    /// Time constant of the service-time smoothing, seconds. Default 10 s.
    pub service_tau_s: f64,
    /// Starvation backstop: tasks queued and none dequeued for this long adds a worker,
    /// milliseconds. Default 500 ms (.NET's gate thread).
    pub starvation_ms: f64,
    /// Process CPU use, as a fraction of all available cores, at or above which the pool does
    /// not grow. Default 0.95 (.NET's `CpuUtilizationHigh`).
    pub cpu_busy_ratio: f64,
    /// Too-small memory: a size whose merged p99 wait was over the target is not shrunk back
    /// to until the arrival rate falls by this fraction (plus three standard deviations of the
    /// rate estimate's noise) below the rate it failed at. Default 0.15. It stops feedback on a
    /// cliff-shaped p99 from probing below the right size forever.
    pub floor_release: f64,
    /// The sizing strategy: `"erlang"` (default), `"queue-wait"` or `"hill-climb"`.
    pub strategy: StrategyKind,
    /// Parameters of the `erlang` strategy.
    pub erlang: ErlangParams,
    /// Parameters of the `queue-wait` strategy.
    pub queue_wait: QueueWaitParams,
    /// Parameters of the `hill-climb` strategy.
    pub hill_climb: HillClimbParams,
}

/// Parameters of the `erlang` strategy (Erlang-C sizing with a slow trim on measured p99).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErlangParams {
    /// Consecutive evidence windows with p99 above the target before the effective target is
    /// tightened. Default 3.
    pub trim_after: u32,
    /// Factor applied to the effective target when tightening, in (0, 1). Default 0.8.
    pub trim_factor: f64,
    /// Lowest effective target, as a fraction of the SLO, in (0, 1]. Default 0.25.
    pub trim_floor: f64,
    /// Consecutive evidence windows with p99 below half the target before the effective target
    /// is relaxed. Default 3.
    pub relax_after: u32,
    /// Factor applied to the effective target when relaxing, > 1. Default 1.1.
    pub relax_factor: f64,
    /// Hysteresis: the stabilization window remembers the size for an arrival rate this
    /// fraction higher than the estimate, on top of three standard deviations of λ̂'s own
    /// noise (always added), so noise in λ̂ does not flip the size. Default 0: the noise term
    /// and the scale-down window hold the size on their own, and a relative margin of 10%
    /// cost 4–5% more worker-seconds on real threads (docs/SCALING.md).
    pub hysteresis: f64,
}

/// Parameters of the `queue-wait` strategy (model-free feedback on p99 wait).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueWaitParams {
    /// Lower edge of the hold band, as p99 / target. Below it, spare capacity shrinks.
    /// Default 0.5.
    pub hold_low: f64,
    /// Upper edge of the hold band, as p99 / target. Above it, spare capacity grows.
    /// Default 1.0 (the target is a ceiling, not a setpoint).
    pub hold_high: f64,
    /// Largest factor applied to spare capacity in one step. Default 2.0.
    pub max_ratio: f64,
}

/// Parameters of the `hill-climb` strategy (throughput probing for CPU-bound work or work that
/// blocks an unknown amount).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HillClimbParams {
    /// Ticks a size is held under backlog before its throughput is judged. Default 4.
    pub probe_ticks: u32,
    /// Workers added by one probe step. Default 1.
    pub probe_step: usize,
    /// A step up must raise throughput by at least this fraction of the proportional gain
    /// (Δc/c) to be kept. Default 0.3.
    pub min_gain: f64,
    /// How long a size found not to pay is kept as a ceiling before one more step is probed,
    /// seconds. Default 30 s.
    pub ceiling_hold_s: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_workers: 1,
            max_workers: 256,
            target_p99_wait_ms: 20.0,
            tick_ms: 500.0,
            tick_jitter: 0.1,
            scale_down_window_s: 3.0,
            max_step_up: 32,
            max_step_down: 16,
            keep_alive_s: 10.0,
            min_wait_samples: 100,
            wait_sample_every: 8,
            backlog_drain_s: 1.0,
            rate_tau_s: 5.0,
            service_tau_s: 10.0,
            starvation_ms: 500.0,
            cpu_busy_ratio: 0.95,
            floor_release: 0.15,
            strategy: StrategyKind::Erlang,
            erlang: ErlangParams::default(),
            queue_wait: QueueWaitParams::default(),
            hill_climb: HillClimbParams::default(),
        }
    }
}

impl Default for ErlangParams {
    fn default() -> Self {
        Self {
            trim_after: 3,
            trim_factor: 0.8,
            trim_floor: 0.25,
            relax_after: 3,
            relax_factor: 1.1,
            hysteresis: 0.0,
        }
    }
}

impl Default for QueueWaitParams {
    fn default() -> Self {
        Self {
            hold_low: 0.5,
            hold_high: 1.0,
            max_ratio: 2.0,
        }
    }
}

impl Default for HillClimbParams {
    fn default() -> Self {
        Self {
            probe_ticks: 4,
            probe_step: 1,
            min_gain: 0.3,
            ceiling_hold_s: 30.0,
        }
    }
}

/// Which text format a policy was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Toml => "TOML",
            Format::Json => "JSON",
        })
    }
}

/// Why a policy was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A field holds a value that breaks a rule (found by [`Policy::validate`]).
    #[error("invalid policy{}field `{field}`: {rule}", at_line(*line))]
    Invalid {
        /// The field, as written in a policy file (`"tick_ms"`, `"erlang.trim_factor"`).
        field: &'static str,
        /// The rule it breaks, with the value found.
        rule: String,
        /// The line where the field was written, when the policy came from text.
        line: Option<usize>,
    },
    /// The text is not valid TOML or JSON, a value has the wrong type, or a key is unknown.
    #[error(
        "invalid policy {format} at line {line}, column {column}{}: {message}",
        field.as_deref().map(|f| format!(", field `{f}`")).unwrap_or_default()
    )]
    Parse {
        /// The format being read.
        format: Format,
        /// The field the error is about, when it can be told (dotted for tables).
        field: Option<String>,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The policy file could not be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The policy file's extension is neither `.toml` nor `.json`.
    #[error("policy file {}: unknown extension, expected .toml or .json", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// `set_policy` on a pool built without [`Builder::autoscale`](crate::Builder::autoscale).
    #[error("the pool has no autoscaler; attach one with Builder::autoscale")]
    NotAutoscaled,
}

fn at_line(line: Option<usize>) -> String {
    line.map_or_else(|| " ".to_string(), |l| format!(" at line {l}, "))
}

impl PolicyError {
    /// The field the error is about, if known.
    pub fn field(&self) -> Option<&str> {
        match self {
            PolicyError::Invalid { field, .. } => Some(field),
            PolicyError::Parse { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// The 1-based line of the policy text the error is about, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            PolicyError::Invalid { line, .. } => *line,
            PolicyError::Parse { line, .. } => Some(*line),
            _ => None,
        }
    }
}

fn invalid(field: &'static str, rule: String) -> PolicyError {
    PolicyError::Invalid {
        field,
        rule,
        line: None,
    }
}

/// `x` must be finite and `> 0`.
fn positive(field: &'static str, x: f64) -> Result<(), PolicyError> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be a finite number greater than 0, got {x}"),
        ))
    }
}

/// `x` must be finite and `>= 0`.
fn non_negative(field: &'static str, x: f64) -> Result<(), PolicyError> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be a finite number of at least 0, got {x}"),
        ))
    }
}

/// `x` must lie in `[lo, hi]` (finite).
fn within(field: &'static str, x: f64, lo: f64, hi: f64) -> Result<(), PolicyError> {
    if x.is_finite() && (lo..=hi).contains(&x) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be between {lo} and {hi}, got {x}"),
        ))
    }
}

/// An integer that must be at least `lo`.
fn at_least(field: &'static str, x: u64, lo: u64) -> Result<(), PolicyError> {
    if x >= lo {
        Ok(())
    } else {
        Err(invalid(field, format!("must be at least {lo}, got {x}")))
    }
}

/// Seconds to a `Duration` without panicking: NaN and negatives give zero, overflow saturates.
fn secs(x: f64) -> Duration {
    if x.is_nan() || x <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(x).unwrap_or(Duration::MAX)
    }
}

impl Policy {
    /// Checks every field; the first broken rule comes back as [`PolicyError::Invalid`] naming
    /// the field (as written in a policy file) and the rule.
    ///
    /// # Errors
    ///
    /// `min_workers > max_workers`, `max_workers` of 0 or above [`MAX_WORKERS_LIMIT`], a tick
    /// that is zero, below 1 ms or above 60 s, an SLO that is not a positive finite number, a
    /// negative, NaN or infinite duration, a zero step, sample count or sampling rate, a
    /// fraction outside its range, and strategy parameters outside theirs.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max_workers == 0 {
            return Err(invalid("max_workers", "must be at least 1, got 0".into()));
        }
        if self.max_workers > MAX_WORKERS_LIMIT {
            return Err(invalid(
                "max_workers",
                format!(
                    "must be at most {MAX_WORKERS_LIMIT}, got {}",
                    self.max_workers
                ),
            ));
        }
        if self.min_workers > self.max_workers {
            return Err(invalid(
                "min_workers",
                format!(
                    "must not exceed max_workers ({}), got {}",
                    self.max_workers, self.min_workers
                ),
            ));
        }
        positive("target_p99_wait_ms", self.target_p99_wait_ms)?;
        positive("tick_ms", self.tick_ms)?;
        within("tick_ms", self.tick_ms, 1.0, 60_000.0)?;
        within("tick_jitter", self.tick_jitter, 0.0, 0.5)?;
        non_negative("scale_down_window_s", self.scale_down_window_s)?;
        at_least("max_step_up", self.max_step_up as u64, 1)?;
        at_least("max_step_down", self.max_step_down as u64, 1)?;
        non_negative("keep_alive_s", self.keep_alive_s)?;
        at_least("min_wait_samples", self.min_wait_samples, 1)?;
        at_least("wait_sample_every", u64::from(self.wait_sample_every), 1)?;
        positive("backlog_drain_s", self.backlog_drain_s)?;
        positive("rate_tau_s", self.rate_tau_s)?;
        positive("service_tau_s", self.service_tau_s)?;
        positive("starvation_ms", self.starvation_ms)?;
        positive("cpu_busy_ratio", self.cpu_busy_ratio)?;
        within("cpu_busy_ratio", self.cpu_busy_ratio, 0.0, 1.0)?;
        within("floor_release", self.floor_release, 0.0, 1.0)?;

        let e = &self.erlang;
        at_least("erlang.trim_after", u64::from(e.trim_after), 1)?;
        positive("erlang.trim_factor", e.trim_factor)?;
        if e.trim_factor >= 1.0 {
            return Err(invalid(
                "erlang.trim_factor",
                format!("must be below 1, got {}", e.trim_factor),
            ));
        }
        positive("erlang.trim_floor", e.trim_floor)?;
        within("erlang.trim_floor", e.trim_floor, 0.0, 1.0)?;
        at_least("erlang.relax_after", u64::from(e.relax_after), 1)?;
        if !(e.relax_factor.is_finite() && e.relax_factor > 1.0) {
            return Err(invalid(
                "erlang.relax_factor",
                format!("must be a finite number above 1, got {}", e.relax_factor),
            ));
        }
        within("erlang.hysteresis", e.hysteresis, 0.0, 1.0)?;

        let q = &self.queue_wait;
        within("queue_wait.hold_low", q.hold_low, 0.0, 1.0)?;
        within("queue_wait.hold_high", q.hold_high, q.hold_low, 10.0)?;
        within(
            "queue_wait.max_ratio",
            q.max_ratio,
            q.hold_high.max(1.0),
            100.0,
        )?;

        let h = &self.hill_climb;
        at_least("hill_climb.probe_ticks", u64::from(h.probe_ticks), 1)?;
        at_least("hill_climb.probe_step", h.probe_step as u64, 1)?;
        within("hill_climb.min_gain", h.min_gain, 0.0, 1.0)?;
        non_negative("hill_climb.ceiling_hold_s", h.ceiling_hold_s)?;
        Ok(())
    }

    /// Parses a TOML policy (missing fields take their defaults) and validates it.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Parse`] for bad TOML, a wrong type, an unknown key or strategy, with the
    /// line, column and field; [`PolicyError::Invalid`] from [`Policy::validate`], with the
    /// line where the field was written.
    pub fn from_toml_str(text: &str) -> Result<Policy, PolicyError> {
        if let Some(e) = toml_shape_error(text) {
            return Err(e);
        }
        let policy: Policy = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let (line, column) = line_col(text, offset);
            let field = field_from_message(e.message())
                .map(|name| join_path(&toml_table_at(text, offset), &name))
                .or_else(|| toml_field_at(text, offset));
            PolicyError::Parse {
                format: Format::Toml,
                field,
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        policy
            .validate()
            .map_err(|e| with_line(e, |f| toml_line_of(text, f)))?;
        Ok(policy)
    }

    /// Parses a JSON policy (missing fields take their defaults) and validates it.
    ///
    /// # Errors
    ///
    /// As [`Policy::from_toml_str`].
    pub fn from_json_str(text: &str) -> Result<Policy, PolicyError> {
        if let Some(e) = json_shape_error(text) {
            return Err(e);
        }
        let policy: Policy = serde_json::from_str(text).map_err(|e| {
            let (line, column) = (e.line(), e.column());
            let offset = offset_of(text, line, column);
            // A number too large for an f64 is a bad value, though serde_json classes it as
            // syntax: name its field like any other bad value.
            let data = e.classify() == serde_json::error::Category::Data
                || e.to_string().starts_with("number out of range");
            // A syntax error is about the text, not a field.
            let mut field = if data {
                json_path_at(text, offset)
            } else {
                None
            };
            if let Some(name) = field_from_message(&e.to_string()) {
                // serde_json reports an unknown key just after it; make sure it is named.
                if !field.as_deref().is_some_and(|f| f.ends_with(name.as_str())) {
                    field = Some(join_path(field.as_deref().unwrap_or(""), &name));
                }
            }
            // serde_json reports a bad value where it stopped reading, which may be past the
            // value (a custom error, such as an unknown strategy): point at the key instead.
            let (line, column) = field
                .as_deref()
                .and_then(|f| json_offset_of(text, f))
                .map_or((line, column), |o| line_col(text, o));
            let message = e.to_string();
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_string(),
                None => message,
            };
            PolicyError::Parse {
                format: Format::Json,
                field,
                line,
                column,
                message,
            }
        })?;
        policy
            .validate()
            .map_err(|e| with_line(e, |f| json_line_of(text, f)))?;
        Ok(policy)
    }

    /// Reads and validates a policy file, TOML or JSON by its extension (`.toml`, `.json`).
    ///
    /// # Errors
    ///
    /// [`PolicyError::Io`] if the file cannot be read, [`PolicyError::UnknownFormat`] for
    /// another extension, otherwise as [`Policy::from_toml_str`].
    pub fn from_path(path: &Path) -> Result<Policy, PolicyError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        let format = match ext.as_deref() {
            Some("toml") => Format::Toml,
            Some("json") => Format::Json,
            _ => {
                return Err(PolicyError::UnknownFormat {
                    path: path.to_path_buf(),
                })
            }
        };
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        match format {
            Format::Toml => Policy::from_toml_str(&text),
            Format::Json => Policy::from_json_str(&text),
        }
    }

    /// The policy as TOML text (every field, defaults included).
    pub fn to_toml_string(&self) -> String {
        // Every field is a number, a string or a table of those: serialization cannot fail.
        toml::to_string(self).unwrap_or_default()
    }

    /// The target p99 queue wait (the SLO).
    pub fn target_p99_wait(&self) -> Duration {
        secs(self.target_p99_wait_ms / 1000.0)
    }

    /// The nominal control tick.
    pub fn tick(&self) -> Duration {
        secs(self.tick_ms / 1000.0)
    }

    /// One jittered tick: `tick × (1 + jitter × (2·rand01 − 1))`, so `rand01` uniform in
    /// `[0, 1)` gives a tick uniform in `tick × [1 − jitter, 1 + jitter)`. The caller supplies
    /// the random number; a value outside `[0, 1]` is clamped and NaN counts as 0.5.
    pub fn tick_jittered(&self, rand01: f64) -> Duration {
        let u = if rand01.is_nan() {
            0.5
        } else {
            rand01.clamp(0.0, 1.0)
        };
        let jitter = if self.tick_jitter.is_finite() {
            self.tick_jitter.clamp(0.0, 0.5)
        } else {
            0.0
        };
        secs(self.tick_ms / 1000.0 * (1.0 + jitter * (2.0 * u - 1.0)))
    }

    /// The scale-down stabilization window.
    pub fn scale_down_window(&self) -> Duration {
        secs(self.scale_down_window_s)
    }

    /// How long a surplus idle worker lingers before it exits.
    pub fn keep_alive(&self) -> Duration {
        secs(self.keep_alive_s)
    }

    /// The starvation backstop's delay.
    pub fn starvation(&self) -> Duration {
        secs(self.starvation_ms / 1000.0)
    }
}

// ----- locating fields in policy text (error paths only; may allocate) -----

/// Adds the line where the field of an [`PolicyError::Invalid`] was written.
fn with_line(e: PolicyError, find: impl Fn(&str) -> Option<usize>) -> PolicyError {
    match e {
        PolicyError::Invalid { field, rule, .. } => PolicyError::Invalid {
            field,
            rule,
            line: find(field),
        },
        other => other,
    }
}

/// 1-based (line, column) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = text
        .get(line_start..offset)
        .map_or(offset - line_start, |s| s.chars().count())
        + 1;
    (line, column)
}

/// Byte offset of a 1-based (line, column), clamped to the text.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut start = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col_bytes = l
                .char_indices()
                .nth(column.saturating_sub(1))
                .map_or(l.len(), |(b, _)| b);
            return start + col_bytes;
        }
        start += l.len();
    }
    text.len()
}

/// The parameter tables of a policy. serde's derived visitors also accept a *sequence* for a
/// struct (filling fields in order, past `deny_unknown_fields`), and the toml crate reports
/// a date given for a table as an unknown internal field; so the shape of these tables, and
/// of the document itself, is checked on the untyped value first.
const PARAM_TABLES: [&str; 3] = ["erlang", "queue_wait", "hill_climb"];

/// A parameter table given as something else, in a TOML document that otherwise parses.
fn toml_shape_error(text: &str) -> Option<PolicyError> {
    let doc: toml::Table = text.parse().ok()?;
    PARAM_TABLES.iter().find_map(|&name| {
        let v = doc.get(name)?;
        (!v.is_table()).then(|| PolicyError::Parse {
            format: Format::Toml,
            field: Some(name.to_string()),
            line: toml_line_of(text, name).unwrap_or(1),
            column: 1,
            message: format!("`{name}` must be a table, found {}", v.type_str()),
        })
    })
}

/// A JSON document that is not an object, or a parameter table that is not an object.
fn json_shape_error(text: &str) -> Option<PolicyError> {
    let doc: serde_json::Value = serde_json::from_str(text).ok()?;
    let kind = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    };
    let Some(obj) = doc.as_object() else {
        return Some(PolicyError::Parse {
            format: Format::Json,
            field: None,
            line: 1,
            column: 1,
            message: format!("a policy must be a JSON object, found {}", kind(&doc)),
        });
    };
    PARAM_TABLES.iter().find_map(|&name| {
        let v = obj.get(name)?;
        (!v.is_object()).then(|| {
            let (line, column) = json_offset_of(text, name).map_or((1, 1), |o| line_col(text, o));
            PolicyError::Parse {
                format: Format::Json,
                field: Some(name.to_string()),
                line,
                column,
                message: format!("`{name}` must be an object, found {}", kind(v)),
            }
        })
    })
}

/// The name in the first pair of backticks of messages such as "unknown field `x`, expected …".
fn field_from_message(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next().map(str::to_string)
}

fn join_path(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

/// Strips quotes and spaces from a dotted TOML key.
fn toml_key(raw: &str) -> String {
    raw.split('.')
        .map(|p| p.trim().trim_matches('"').trim_matches('\''))
        .collect::<Vec<_>>()
        .join(".")
}

/// Walks the lines of a TOML text, calling `visit(line_no, byte_start, line, table, key_path)`
/// for each line; `key_path` is set for `key = value` lines.
fn toml_walk(text: &str, mut visit: impl FnMut(usize, usize, &str, &str, Option<&str>) -> bool) {
    let mut table = String::new();
    let mut start = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = raw.trim();
        let mut key = None;
        if line.starts_with('[') {
            table = toml_key(line.trim_start_matches('[').split(']').next().unwrap_or(""));
        } else if !line.starts_with('#') {
            if let Some(eq) = line.find('=') {
                key = Some(join_path(&table, &toml_key(&line[..eq])));
            }
        }
        if visit(i + 1, start, raw, &table, key.as_deref()) {
            return;
        }
        start += raw.len();
    }
}

/// The table a byte offset lies in.
fn toml_table_at(text: &str, offset: usize) -> String {
    let mut found = String::new();
    toml_walk(text, |_, start, raw, table, _| {
        if start > offset {
            return true;
        }
        // A header line names the table it opens only from the next line on.
        if !(raw.trim().starts_with('[') && offset < start + raw.len()) {
            found = table.to_string();
        }
        false
    });
    found
}

/// The dotted key whose value holds a byte offset (the last key at or before it).
fn toml_field_at(text: &str, offset: usize) -> Option<String> {
    let mut found = None;
    toml_walk(text, |_, start, _, _, key| {
        if start > offset {
            return true;
        }
        if let Some(k) = key {
            found = Some(k.to_string());
        }
        false
    });
    found
}

/// The line where a dotted key is set.
fn toml_line_of(text: &str, field: &str) -> Option<usize> {
    let mut found = None;
    toml_walk(text, |line, _, _, _, key| {
        if key == Some(field) {
            found = Some(line);
            return true;
        }
        false
    });
    found
}

/// Walks a JSON text, calling `visit(byte_offset, key_path)` at each object key. Returns the key
/// path open at `stop` (the innermost keys of the enclosing objects).
fn json_walk(text: &str, stop: usize, mut visit: impl FnMut(usize, &str) -> bool) -> String {
    // (is_object, current key)
    let mut stack: Vec<(bool, Option<String>)> = Vec::new();
    let bytes = text.as_bytes();
    let mut expecting_key = false;
    let mut i = 0;
    let path = |stack: &Vec<(bool, Option<String>)>| {
        stack
            .iter()
            .filter_map(|(obj, k)| if *obj { k.as_deref() } else { None })
            .collect::<Vec<_>>()
            .join(".")
    };
    while i < bytes.len() && i < stop {
        match bytes[i] {
            b'{' => {
                stack.push((true, None));
                expecting_key = true;
            }
            b'[' => {
                stack.push((false, None));
                expecting_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expecting_key = false;
            }
            b',' => expecting_key = stack.last().is_some_and(|(obj, _)| *obj),
            b'"' => {
                let begin = i;
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                if expecting_key {
                    if let Some(top) = stack.last_mut() {
                        top.1 = Some(
                            text.get(begin + 1..j.min(text.len()))
                                .unwrap_or("")
                                .to_string(),
                        );
                    }
                    expecting_key = false;
                    if visit(begin, &path(&stack)) {
                        return path(&stack);
                    }
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    path(&stack)
}

/// The key path whose value holds a byte offset.
fn json_path_at(text: &str, offset: usize) -> Option<String> {
    let p = json_walk(text, offset, |_, _| false);
    (!p.is_empty()).then_some(p)
}

/// The byte offset where a dotted key is written.
fn json_offset_of(text: &str, field: &str) -> Option<usize> {
    let mut at = None;
    json_walk(text, usize::MAX, |offset, path| {
        if path == field {
            at = Some(offset);
            return true;
        }
        false
    });
    at
}

/// The line where a dotted key is written.
fn json_line_of(text: &str, field: &str) -> Option<usize> {
    json_offset_of(text, field).map(|o| line_col(text, o).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let p = Policy::default();
        p.validate().unwrap();
        let text = p.to_toml_string();
        assert_eq!(Policy::from_toml_str(&text).unwrap(), p);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(Policy::from_json_str(&json).unwrap(), p);
    }

    #[test]
    fn locators() {
        let t = "a = 1\n[erlang]\ntrim_factor = 2\n";
        assert_eq!(toml_line_of(t, "erlang.trim_factor"), Some(3));
        assert_eq!(
            toml_field_at(t, t.find('2').unwrap()).as_deref(),
            Some("erlang.trim_factor")
        );
        let j = "{\n \"a\": 1,\n \"erlang\": {\"trim_factor\": 2}\n}";
        assert_eq!(json_line_of(j, "erlang.trim_factor"), Some(3));
        assert_eq!(
            json_path_at(j, j.find('2').unwrap()).as_deref(),
            Some("erlang.trim_factor")
        );
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(offset_of("ab\ncd", 2, 2), 4);
    }
}
