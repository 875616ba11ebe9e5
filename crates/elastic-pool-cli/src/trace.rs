//! Load traces: the TOML trace format, the built-in traces, validation, and the true rate λ(t).
//!
//! A trace is a list of phases, each with a duration, a rate shape (constant, linear ramp, sine
//! or on/off) and a task description (sleep, spin or mixed, with a service-time distribution).
//! The format is documented in `docs/TRACES.md`; the built-in traces are TOML files in this
//! crate's `traces/` folder, embedded at build time. Unknown keys are errors, and every error
//! names the field and, where it can be told, the line.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Default SLO: p99 queue wait, milliseconds.
pub const DEFAULT_SLO_MS: f64 = 20.0;
/// Default warm-up excluded from scores, seconds.
pub const DEFAULT_WARMUP_S: f64 = 10.0;
/// Default mean service time, milliseconds.
pub const DEFAULT_MEAN_MS: f64 = 50.0;
/// Default share of spin tasks in a `mixed` task.
pub const DEFAULT_SPIN_FRACTION: f64 = 0.2;
/// Longest trace accepted, seconds (one day).
pub const MAX_DURATION_S: f64 = 86_400.0;
/// Most tasks a trace may be expected to generate (the schedule is precomputed in memory).
pub const MAX_EXPECTED_TASKS: f64 = 20_000_000.0;
/// Longest mean service time accepted, milliseconds.
pub const MAX_MEAN_MS: f64 = 60_000.0;

/// How a task spends its service time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TaskKind {
    /// Sleeps (blocking I/O): holds a worker, uses no CPU.
    Sleep,
    /// Spins on a core for its service time, measured on the thread CPU clock.
    Spin,
    /// Each task spins with probability `spin_fraction`, otherwise sleeps.
    Mixed {
        /// Share of spin tasks, 0..=1.
        spin_fraction: f64,
    },
}

impl TaskKind {
    /// The name used in trace files.
    pub fn name(&self) -> &'static str {
        match self {
            TaskKind::Sleep => "sleep",
            TaskKind::Spin => "spin",
            TaskKind::Mixed { .. } => "mixed",
        }
    }

    /// Share of tasks that spin on a core.
    pub fn spin_share(&self) -> f64 {
        match self {
            TaskKind::Sleep => 0.0,
            TaskKind::Spin => 1.0,
            TaskKind::Mixed { spin_fraction } => *spin_fraction,
        }
    }
}

/// Service-time distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    /// Every task takes exactly the mean.
    Constant,
    /// Exponential with the given mean (cv² = 1): what the Erlang-C oracle assumes.
    Exponential,
    /// Lognormal with the given mean and squared coefficient of variation.
    Lognormal {
        /// Squared coefficient of variation (variance / mean²), > 0.
        cv2: f64,
    },
}

impl Dist {
    /// The name used in trace files.
    pub fn name(&self) -> &'static str {
        match self {
            Dist::Constant => "constant",
            Dist::Exponential => "exponential",
            Dist::Lognormal { .. } => "lognormal",
        }
    }
}

/// What one phase's tasks do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskSpec {
    /// Sleep, spin or mixed.
    pub kind: TaskKind,
    /// Mean service time, seconds.
    pub mean_s: f64,
    /// Service-time distribution.
    pub dist: Dist,
}

impl TaskSpec {
    /// A one-line description, e.g. `sleep 50 ms exponential`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} {} ms {}",
            self.kind.name(),
            fmt_num(self.mean_s * 1e3),
            self.dist.name()
        );
        if let Dist::Lognormal { cv2 } = self.dist {
            s.push_str(&format!(" (cv² {})", fmt_num(cv2)));
        }
        if let TaskKind::Mixed { spin_fraction } = self.kind {
            s.push_str(&format!(", {}% spin", fmt_num(spin_fraction * 100.0)));
        }
        s
    }
}

/// The shape of a phase's arrival rate, tasks per second. Phase-local time `t` starts at 0 at
/// the beginning of the phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// A constant rate.
    Constant(f64),
    /// Linear from `from` at the phase start to `to` at its end.
    Ramp {
        /// Rate at the start of the phase.
        from: f64,
        /// Rate at the end of the phase.
        to: f64,
    },
    /// `base + amplitude·sin(2πt/period_s)`.
    Sine {
        /// Mean rate.
        base: f64,
        /// Amplitude (at most `base`).
        amplitude: f64,
        /// Period, seconds.
        period_s: f64,
    },
    /// `high` for the first `high_s` seconds of every `period_s`, `low` otherwise.
    OnOff {
        /// Rate while on.
        high: f64,
        /// Rate while off.
        low: f64,
        /// Seconds on, at the start of every period.
        high_s: f64,
        /// Period, seconds.
        period_s: f64,
    },
}

impl Rate {
    /// λ at phase-local time `t` of a phase lasting `dur` seconds.
    pub fn at(&self, t: f64, dur: f64) -> f64 {
        match *self {
            Rate::Constant(r) => r,
            Rate::Ramp { from, to } => {
                let f = if dur > 0.0 {
                    (t / dur).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                from + (to - from) * f
            }
            Rate::Sine {
                base,
                amplitude,
                period_s,
            } => (base + amplitude * (std::f64::consts::TAU * t / period_s).sin()).max(0.0),
            Rate::OnOff {
                high,
                low,
                high_s,
                period_s,
            } => {
                if t.rem_euclid(period_s) < high_s {
                    high
                } else {
                    low
                }
            }
        }
    }

    /// The largest λ over phase-local `[t0, t1]` (exact for every shape).
    pub fn max_over(&self, t0: f64, t1: f64, dur: f64) -> f64 {
        match *self {
            Rate::Constant(r) => r,
            Rate::Ramp { .. } => self.at(t0, dur).max(self.at(t1, dur)),
            Rate::Sine {
                base,
                amplitude,
                period_s,
            } => {
                // A crest sits at t = period·(k + 1/4).
                let k = (t0 / period_s - 0.25).ceil();
                let crest = period_s * (k + 0.25);
                if crest <= t1 {
                    base + amplitude
                } else {
                    self.at(t0, dur).max(self.at(t1, dur))
                }
            }
            Rate::OnOff {
                high,
                low,
                high_s,
                period_s,
            } => {
                // On during [k·period, k·period + high_s): on anywhere in [t0, t1] if the
                // interval reaches into such a window.
                let start_of_period = (t0 / period_s).floor() * period_s;
                let on = t0 - start_of_period < high_s || start_of_period + period_s <= t1;
                if on {
                    high.max(low)
                } else {
                    low
                }
            }
        }
    }

    /// The largest λ anywhere in a phase lasting `dur`.
    pub fn peak(&self, dur: f64) -> f64 {
        self.max_over(0.0, dur, dur)
    }

    fn scaled(&self, k: f64) -> Rate {
        match *self {
            Rate::Constant(r) => Rate::Constant(r * k),
            Rate::Ramp { from, to } => Rate::Ramp {
                from: from * k,
                to: to * k,
            },
            Rate::Sine {
                base,
                amplitude,
                period_s,
            } => Rate::Sine {
                base: base * k,
                amplitude: amplitude * k,
                period_s,
            },
            Rate::OnOff {
                high,
                low,
                high_s,
                period_s,
            } => Rate::OnOff {
                high: high * k,
                low: low * k,
                high_s,
                period_s,
            },
        }
    }

    fn time_compressed(&self, f: f64) -> Rate {
        match *self {
            Rate::Sine {
                base,
                amplitude,
                period_s,
            } => Rate::Sine {
                base,
                amplitude,
                period_s: period_s / f,
            },
            Rate::OnOff {
                high,
                low,
                high_s,
                period_s,
            } => Rate::OnOff {
                high,
                low,
                high_s: high_s / f,
                period_s: period_s / f,
            },
            other => other,
        }
    }

    /// A short description, e.g. `20/s`, `5→400/s`.
    pub fn describe(&self) -> String {
        match *self {
            Rate::Constant(r) => format!("{}/s", fmt_num(r)),
            Rate::Ramp { from, to } => format!("{}→{}/s", fmt_num(from), fmt_num(to)),
            Rate::Sine {
                base,
                amplitude,
                period_s,
            } => format!(
                "{}±{}/s sine, period {} s",
                fmt_num(base),
                fmt_num(amplitude),
                fmt_num(period_s)
            ),
            Rate::OnOff {
                high,
                low,
                high_s,
                period_s,
            } => format!(
                "{}/s for {} s in every {} s, else {}/s",
                fmt_num(high),
                fmt_num(high_s),
                fmt_num(period_s),
                fmt_num(low)
            ),
        }
    }
}

/// Formats a number without trailing zeros (`20`, `0.5`, `2.25`).
pub fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// One phase of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// Start, seconds since the trace start.
    pub start_s: f64,
    /// Length, seconds.
    pub duration_s: f64,
    /// Arrival-rate shape.
    pub rate: Rate,
    /// What the phase's tasks do.
    pub task: TaskSpec,
}

impl Phase {
    /// End, seconds since the trace start.
    pub fn end_s(&self) -> f64 {
        self.start_s + self.duration_s
    }
}

/// A validated load trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// Name (the built-in's name, or the file's `name`).
    pub name: String,
    /// SLO: p99 queue wait, seconds.
    pub slo_s: f64,
    /// Warm-up excluded from scores, seconds.
    pub warmup_s: f64,
    /// The phases, back to back.
    pub phases: Vec<Phase>,
    /// Time compression applied (`--speed`), 1 for none.
    pub speed: f64,
}

/// A rate jump at a phase boundary: where recovery time is measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// When, seconds since the trace start.
    pub at_s: f64,
    /// Rate just before.
    pub from: f64,
    /// Rate just after.
    pub to: f64,
}

/// A step counts for recovery time when the rate at least doubles...
pub const STEP_FACTOR: f64 = 2.0;
/// ...to a rate that fills the 100-task windows recovery is judged on.
pub const STEP_MIN_RATE: f64 = 100.0;

impl Trace {
    /// Total length, seconds.
    pub fn duration_s(&self) -> f64 {
        self.phases.last().map_or(0.0, Phase::end_s)
    }

    /// The phase in force at `t` (the last one from its end on).
    pub fn phase_at(&self, t: f64) -> &Phase {
        self.phases
            .iter()
            .find(|p| t < p.end_s())
            .unwrap_or_else(|| self.phases.last().expect("a trace has at least one phase"))
    }

    /// The true arrival rate λ(t), tasks per second (0 outside the trace).
    pub fn rate_at(&self, t: f64) -> f64 {
        if t < 0.0 || t >= self.duration_s() {
            return 0.0;
        }
        let p = self.phase_at(t);
        p.rate.at(t - p.start_s, p.duration_s)
    }

    /// The phases overlapping `[t0, t1)`, each with the largest λ over the overlap.
    pub fn max_rates(&self, t0: f64, t1: f64) -> impl Iterator<Item = (&Phase, f64)> {
        self.phases
            .iter()
            .filter(move |p| p.start_s < t1 && p.end_s() > t0)
            .map(move |p| {
                let a = (t0 - p.start_s).max(0.0);
                let b = (t1 - p.start_s).min(p.duration_s);
                (p, p.rate.max_over(a, b, p.duration_s))
            })
    }

    /// The largest λ over `[t0, t1)`.
    pub fn max_rate(&self, t0: f64, t1: f64) -> f64 {
        self.max_rates(t0, t1).map(|(_, r)| r).fold(0.0, f64::max)
    }

    /// `∫ f(t, phase, λ(t)) dt` over `[t0, t1)`, midpoint rule on 1 ms steps.
    pub fn integrate(&self, t0: f64, t1: f64, f: impl Fn(&Phase, f64) -> f64) -> f64 {
        let t1 = t1.min(self.duration_s());
        if t1 <= t0 {
            return 0.0;
        }
        let n = (((t1 - t0) / 0.001).ceil() as usize).max(1);
        let h = (t1 - t0) / n as f64;
        (0..n)
            .map(|i| {
                let t = t0 + (i as f64 + 0.5) * h;
                let p = self.phase_at(t);
                f(p, p.rate.at(t - p.start_s, p.duration_s))
            })
            .sum::<f64>()
            * h
    }

    /// Expected number of arrivals over `[t0, t1)`.
    pub fn expected_arrivals(&self, t0: f64, t1: f64) -> f64 {
        self.integrate(t0, t1, |_, r| r)
    }

    /// The rate jumps recovery time is measured after (see [`STEP_FACTOR`]).
    pub fn steps(&self) -> Vec<Step> {
        self.phases
            .windows(2)
            .filter_map(|w| {
                let from = w[0].rate.at(w[0].duration_s, w[0].duration_s);
                let to = w[1].rate.at(0.0, w[1].duration_s);
                let at_s = w[1].start_s;
                (at_s >= self.warmup_s && to >= STEP_MIN_RATE && to >= STEP_FACTOR * from)
                    .then_some(Step { at_s, from, to })
            })
            .collect()
    }

    /// Whether any phase has tasks that spin on a core.
    pub fn has_spin(&self) -> bool {
        self.phases.iter().any(|p| p.task.kind.spin_share() > 0.0)
    }

    /// The trace played `f` times faster: durations, periods and the warm-up divided by `f`;
    /// rates, service times and the SLO unchanged.
    pub fn compressed(&self, f: f64) -> Trace {
        let mut start = 0.0;
        let phases = self
            .phases
            .iter()
            .map(|p| {
                let q = Phase {
                    start_s: start,
                    duration_s: p.duration_s / f,
                    rate: p.rate.time_compressed(f),
                    task: p.task,
                };
                start += q.duration_s;
                q
            })
            .collect();
        Trace {
            name: self.name.clone(),
            slo_s: self.slo_s,
            warmup_s: self.warmup_s / f,
            phases,
            speed: self.speed * f,
        }
    }

    /// A one-line description of the phases.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for p in &self.phases {
            parts.push(format!(
                "{} s at {}",
                fmt_num(p.duration_s),
                p.rate.describe()
            ));
        }
        let mut tasks: Vec<String> = self.phases.iter().map(|p| p.task.describe()).collect();
        tasks.dedup();
        format!(
            "{}; {} tasks; SLO p99 wait {} ms",
            parts.join(", "),
            tasks.join(" / "),
            fmt_num(self.slo_s * 1e3)
        )
    }
}

/// A built-in trace.
#[derive(Clone, Copy, Debug)]
pub struct BuiltIn {
    /// Its name.
    pub name: &'static str,
    /// One line on what it tests.
    pub summary: &'static str,
    /// The TOML source (in `traces/`).
    pub toml: &'static str,
    /// The file's rates are per core: multiplied by the machine's CPU count at load.
    pub per_core: bool,
}

/// Every built-in trace, in the order `elastic-pool traces` lists them.
pub const BUILT_INS: &[BuiltIn] = &[
    BuiltIn {
        name: "step",
        summary: "20 → 200 → 20 tasks/s (30 s, 60 s, 60 s): a tenfold step up and back down",
        toml: include_str!("../traces/step.toml"),
        per_core: false,
    },
    BuiltIn {
        name: "spike",
        summary: "40/s with a 5 s burst at 400/s at t = 30 s (80 s)",
        toml: include_str!("../traces/spike.toml"),
        per_core: false,
    },
    BuiltIn {
        name: "ramp",
        summary: "a linear climb from 5 to 400 tasks/s over 120 s",
        toml: include_str!("../traces/ramp.toml"),
        per_core: false,
    },
    BuiltIn {
        name: "diurnal",
        summary: "120·(1 + 0.8·sin(2πt/60)) tasks/s for 120 s",
        toml: include_str!("../traces/diurnal.toml"),
        per_core: false,
    },
    BuiltIn {
        name: "onoff",
        summary: "300/s for 2 s in every 10 s, 20/s otherwise (120 s)",
        toml: include_str!("../traces/onoff.toml"),
        per_core: false,
    },
    BuiltIn {
        name: "cpu-overload",
        summary: "4 ms CPU spin tasks at 0.5 → 1.3 → 0.5 × what the cores can serve (70 s)",
        toml: include_str!("../traces/cpu-overload.toml"),
        per_core: true,
    },
    BuiltIn {
        name: "mixed",
        summary: "80% sleep, 20% spin tasks (mean 30 ms), 40 → 120 → 40 tasks/s (90 s)",
        toml: include_str!("../traces/mixed.toml"),
        per_core: false,
    },
    BuiltIn {
        name: "heavy-tail",
        summary: "lognormal sleep tasks (mean 50 ms, cv² = 4), 60 → 160 → 60 tasks/s (120 s)",
        toml: include_str!("../traces/heavy-tail.toml"),
        per_core: false,
    },
];

impl BuiltIn {
    /// Looks a built-in up by name.
    pub fn find(name: &str) -> Option<&'static BuiltIn> {
        BUILT_INS.iter().find(|b| b.name == name)
    }

    /// The parsed trace, rates scaled to `ncpu` cores when the file is per core.
    ///
    /// # Panics
    /// If the embedded file is invalid: a build defect that the unit tests catch.
    pub fn load(&self, ncpu: usize) -> Trace {
        let mut t = parse_str(self.toml, Path::new(self.name))
            .unwrap_or_else(|e| panic!("built-in trace `{}` is invalid: {e}", self.name));
        if self.per_core {
            for p in &mut t.phases {
                p.rate = p.rate.scaled(ncpu as f64);
            }
        }
        t
    }
}

/// Why a trace could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Neither a built-in name nor an existing file.
    #[error("unknown trace `{name}`: not a built-in ({known}) and no such file")]
    Unknown {
        /// What was asked for.
        name: String,
        /// The built-in names.
        known: String,
    },
    /// The file could not be read.
    #[error("cannot read trace file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, a wrong type, a missing or unknown key.
    #[error(
        "trace file {}: line {line}, column {column}{}: {message}",
        path.display(),
        field.as_deref().map(|f| format!(", field `{f}`")).unwrap_or_default()
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The field, when it can be told (`phase[2].rate`).
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A value that parses but is impossible (a negative rate, a zero duration...).
    #[error(
        "trace file {}{}: `{field}` {rule}",
        path.display(),
        line.map(|l| format!(", line {l}")).unwrap_or_default()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line where the field is written, when known.
        line: Option<usize>,
        /// The field (`phase[1].duration_s`).
        field: String,
        /// The rule broken, with the value found.
        rule: String,
    },
}

impl TraceError {
    /// The field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            TraceError::Parse { field, .. } => field.as_deref(),
            TraceError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The 1-based line the error is about, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            TraceError::Parse { line, .. } => Some(*line),
            TraceError::Invalid { line, .. } => *line,
            _ => None,
        }
    }
}

/// Loads a built-in trace by name, or else a trace file by path.
///
/// # Errors
/// [`TraceError::Unknown`] when `spec` is neither; otherwise as [`parse_file`].
pub fn load(spec: &str, ncpu: usize) -> Result<Trace, TraceError> {
    if let Some(b) = BuiltIn::find(spec) {
        return Ok(b.load(ncpu));
    }
    let path = Path::new(spec);
    if path.exists() {
        return parse_file(path);
    }
    Err(TraceError::Unknown {
        name: spec.to_string(),
        known: BUILT_INS
            .iter()
            .map(|b| b.name)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Reads and validates a trace file.
///
/// # Errors
/// [`TraceError::Io`], [`TraceError::Parse`] or [`TraceError::Invalid`].
pub fn parse_file(path: &Path) -> Result<Trace, TraceError> {
    let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, path)
}

// ---------------------------------------------------------------------------------------------
// The file format.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceFile {
    name: Option<String>,
    slo_p99_wait_ms: Option<f64>,
    warmup_s: Option<f64>,
    task: Option<TaskFile>,
    #[serde(default)]
    phase: Vec<PhaseFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseFile {
    duration_s: f64,
    rate: Rate,
    task: Option<TaskFile>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    kind: Option<KindName>,
    mean_ms: Option<f64>,
    dist: Option<DistName>,
    cv2: Option<f64>,
    spin_fraction: Option<f64>,
}

impl TaskFile {
    /// `self`'s fields over `base`'s.
    fn over(&self, base: &TaskFile) -> TaskFile {
        TaskFile {
            kind: self.kind.or(base.kind),
            mean_ms: self.mean_ms.or(base.mean_ms),
            dist: self.dist.or(base.dist),
            cv2: self.cv2.or(base.cv2),
            spin_fraction: self.spin_fraction.or(base.spin_fraction),
        }
    }
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum KindName {
    Sleep,
    Spin,
    Mixed,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DistName {
    Constant,
    Exponential,
    Lognormal,
}

const RATE_KEYS: &[&str] = &[
    "from",
    "to",
    "base",
    "amplitude",
    "period_s",
    "high",
    "low",
    "high_s",
];

struct RateVisitor;

impl<'de> Visitor<'de> for RateVisitor {
    type Value = Rate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a rate in tasks/s: a number, or a table { from, to }, \
             { base, amplitude, period_s } or { high, low, high_s, period_s }",
        )
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
        Ok(Rate::Constant(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
        Ok(Rate::Constant(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rate, E> {
        Ok(Rate::Constant(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Rate, A::Error> {
        let mut vals: [Option<f64>; 8] = [None; 8];
        while let Some(key) = map.next_key::<String>()? {
            let i = RATE_KEYS
                .iter()
                .position(|k| *k == key)
                .ok_or_else(|| de::Error::unknown_field(&key, RATE_KEYS))?;
            if vals[i].is_some() {
                return Err(de::Error::duplicate_field(RATE_KEYS[i]));
            }
            vals[i] = Some(map.next_value::<f64>()?);
        }
        let [from, to, base, amplitude, period_s, high, low, high_s] = vals;
        let given: Vec<&str> = RATE_KEYS
            .iter()
            .zip(vals.iter())
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| *k)
            .collect();
        let shape =
            |keys: &[&str]| given.len() == keys.len() && keys.iter().all(|k| given.contains(k));
        if shape(&["from", "to"]) {
            Ok(Rate::Ramp {
                from: from.unwrap_or_default(),
                to: to.unwrap_or_default(),
            })
        } else if shape(&["base", "amplitude", "period_s"]) {
            Ok(Rate::Sine {
                base: base.unwrap_or_default(),
                amplitude: amplitude.unwrap_or_default(),
                period_s: period_s.unwrap_or_default(),
            })
        } else if shape(&["high", "low", "high_s", "period_s"]) {
            Ok(Rate::OnOff {
                high: high.unwrap_or_default(),
                low: low.unwrap_or_default(),
                high_s: high_s.unwrap_or_default(),
                period_s: period_s.unwrap_or_default(),
            })
        } else {
            Err(de::Error::custom(format!(
                "a rate table has keys {{ from, to }} (ramp), {{ base, amplitude, period_s }} \
                 (sine) or {{ high, low, high_s, period_s }} (on/off); got {{ {} }}",
                given.join(", ")
            )))
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        d.deserialize_any(RateVisitor)
    }
}

/// Parses and validates trace text; `path` names it in errors.
///
/// # Errors
/// [`TraceError::Parse`] or [`TraceError::Invalid`].
pub fn parse_str(text: &str, path: &Path) -> Result<Trace, TraceError> {
    let file: TraceFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let (line, column) = line_col(text, offset);
        let message = e.message().trim().to_string();
        let section = section_at(text, offset);
        let field = unknown_field_name(&message)
            .map(|k| join(&section, &k))
            .or_else(|| key_on_line(text, offset).map(|k| join(&section, &k)))
            .or_else(|| (!section.is_empty()).then_some(section.clone()));
        TraceError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            field,
            message,
        }
    })?;
    build(file, text, path)
}

fn build(file: TraceFile, text: &str, path: &Path) -> Result<Trace, TraceError> {
    let invalid = |loc: Loc, rule: String| TraceError::Invalid {
        path: path.to_path_buf(),
        line: locate(text, &loc),
        field: loc.name(),
        rule,
    };
    let name = match file.name {
        Some(n) if n.trim().is_empty() => {
            return Err(invalid(Loc::Top("name"), "must not be empty".into()))
        }
        Some(n) => n,
        None => path
            .file_stem()
            .map_or_else(|| "trace".to_string(), |s| s.to_string_lossy().into_owned()),
    };
    let slo_ms = file.slo_p99_wait_ms.unwrap_or(DEFAULT_SLO_MS);
    if !(slo_ms.is_finite() && slo_ms > 0.0) {
        return Err(invalid(
            Loc::Top("slo_p99_wait_ms"),
            format!("must be a positive number of milliseconds, got {}", slo_ms),
        ));
    }
    let warmup_s = file.warmup_s.unwrap_or(DEFAULT_WARMUP_S);
    if !(warmup_s.is_finite() && warmup_s >= 0.0) {
        return Err(invalid(
            Loc::Top("warmup_s"),
            format!("must be zero or a positive number of seconds, got {warmup_s}"),
        ));
    }
    if file.phase.is_empty() {
        return Err(TraceError::Invalid {
            path: path.to_path_buf(),
            line: None,
            field: "phase".into(),
            rule: "is missing: a trace needs at least one [[phase]]".into(),
        });
    }
    let base_task = file.task.clone().unwrap_or_default();
    if let Some(t) = &file.task {
        check_task(&t.over(&TaskFile::default()), |key, rule| {
            invalid(Loc::Task(key), rule)
        })?;
    }
    let mut phases = Vec::with_capacity(file.phase.len());
    let mut start = 0.0;
    for (i, p) in file.phase.iter().enumerate() {
        let n = i + 1;
        if !(p.duration_s.is_finite() && p.duration_s > 0.0) {
            return Err(invalid(
                Loc::Phase(n, "duration_s"),
                format!("must be a positive number of seconds, got {}", p.duration_s),
            ));
        }
        check_rate(&p.rate).map_err(|(key, rule)| invalid(Loc::PhaseRate(n, key), rule))?;
        let merged = p.task.clone().unwrap_or_default().over(&base_task);
        let task = check_task(&merged, |key, rule| {
            if p.task.as_ref().is_some_and(|t| t.has(key)) {
                invalid(Loc::PhaseTask(n, key), rule)
            } else {
                invalid(Loc::Task(key), rule)
            }
        })?;
        phases.push(Phase {
            start_s: start,
            duration_s: p.duration_s,
            rate: p.rate,
            task,
        });
        start += p.duration_s;
    }
    let trace = Trace {
        name,
        slo_s: slo_ms / 1e3,
        warmup_s,
        phases,
        speed: 1.0,
    };
    let dur = trace.duration_s();
    if dur > MAX_DURATION_S {
        return Err(TraceError::Invalid {
            path: path.to_path_buf(),
            line: None,
            field: "phase".into(),
            rule: format!(
                "durations add up to {} s; at most {} s (one day) is accepted",
                fmt_num(dur),
                fmt_num(MAX_DURATION_S)
            ),
        });
    }
    if warmup_s >= dur {
        return Err(invalid(
            Loc::Top("warmup_s"),
            format!(
                "must be shorter than the trace ({} s), got {}",
                fmt_num(dur),
                fmt_num(warmup_s)
            ),
        ));
    }
    let expected = trace.expected_arrivals(0.0, dur);
    if trace
        .phases
        .iter()
        .all(|p| p.rate.peak(p.duration_s) == 0.0)
    {
        return Err(TraceError::Invalid {
            path: path.to_path_buf(),
            line: None,
            field: "phase".into(),
            rule: "every rate is zero: the trace would submit no task".into(),
        });
    }
    if expected > MAX_EXPECTED_TASKS {
        return Err(TraceError::Invalid {
            path: path.to_path_buf(),
            line: None,
            field: "phase".into(),
            rule: format!(
                "the trace would generate about {expected:.0} tasks; at most {MAX_EXPECTED_TASKS:.0} \
                 are accepted"
            ),
        });
    }
    Ok(trace)
}

impl TaskFile {
    fn has(&self, key: &str) -> bool {
        match key {
            "kind" => self.kind.is_some(),
            "mean_ms" => self.mean_ms.is_some(),
            "dist" => self.dist.is_some(),
            "cv2" => self.cv2.is_some(),
            "spin_fraction" => self.spin_fraction.is_some(),
            _ => false,
        }
    }
}

fn check_task(
    t: &TaskFile,
    invalid: impl Fn(&'static str, String) -> TraceError,
) -> Result<TaskSpec, TraceError> {
    let mean_ms = t.mean_ms.unwrap_or(DEFAULT_MEAN_MS);
    if !(mean_ms.is_finite() && mean_ms > 0.0 && mean_ms <= MAX_MEAN_MS) {
        return Err(invalid(
            "mean_ms",
            format!("must be above 0 and at most {MAX_MEAN_MS} ms, got {mean_ms}"),
        ));
    }
    let dist = match t.dist.unwrap_or(DistName::Exponential) {
        DistName::Constant => Dist::Constant,
        DistName::Exponential => Dist::Exponential,
        DistName::Lognormal => match t.cv2 {
            Some(cv2) if cv2.is_finite() && cv2 > 0.0 && cv2 <= 1000.0 => Dist::Lognormal { cv2 },
            Some(cv2) => {
                return Err(invalid(
                    "cv2",
                    format!("must be above 0 and at most 1000, got {cv2}"),
                ))
            }
            None => {
                return Err(invalid(
                    "cv2",
                    "is required with dist = \"lognormal\"".to_string(),
                ))
            }
        },
    };
    let kind = match t.kind.unwrap_or(KindName::Sleep) {
        KindName::Sleep => TaskKind::Sleep,
        KindName::Spin => TaskKind::Spin,
        KindName::Mixed => {
            let f = t.spin_fraction.unwrap_or(DEFAULT_SPIN_FRACTION);
            if !(0.0..=1.0).contains(&f) {
                return Err(invalid(
                    "spin_fraction",
                    format!("must be between 0 and 1, got {f}"),
                ));
            }
            TaskKind::Mixed { spin_fraction: f }
        }
    };
    Ok(TaskSpec {
        kind,
        mean_s: mean_ms / 1e3,
        dist,
    })
}

fn check_rate(r: &Rate) -> Result<(), (&'static str, String)> {
    let rate = |key: &'static str, v: f64| {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err((
                key,
                format!("must be zero or a positive number of tasks/s, got {v}"),
            ))
        }
    };
    let period = |key: &'static str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(())
        } else {
            Err((
                key,
                format!("must be a positive number of seconds, got {v}"),
            ))
        }
    };
    match *r {
        Rate::Constant(v) => rate("", v),
        Rate::Ramp { from, to } => {
            rate("from", from)?;
            rate("to", to)
        }
        Rate::Sine {
            base,
            amplitude,
            period_s,
        } => {
            rate("base", base)?;
            rate("amplitude", amplitude)?;
            period("period_s", period_s)?;
            if amplitude > base {
                return Err((
                    "amplitude",
                    format!(
                        "must not exceed base ({base}), or the rate would go negative; got {amplitude}"
                    ),
                ));
            }
            Ok(())
        }
        Rate::OnOff {
            high,
            low,
            high_s,
            period_s,
        } => {
            rate("high", high)?;
            rate("low", low)?;
            period("high_s", high_s)?;
            period("period_s", period_s)?;
            if high_s > period_s {
                return Err((
                    "high_s",
                    format!("must not exceed period_s ({period_s}), got {high_s}"),
                ));
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Locating fields in the text, for error messages.

/// Where a field lives in a trace file.
enum Loc {
    Top(&'static str),
    Task(&'static str),
    Phase(usize, &'static str),
    /// A key of the phase's rate table, or "" for the rate itself.
    PhaseRate(usize, &'static str),
    PhaseTask(usize, &'static str),
}

impl Loc {
    fn name(&self) -> String {
        match self {
            Loc::Top(k) => (*k).to_string(),
            Loc::Task(k) => format!("task.{k}"),
            Loc::Phase(i, k) => format!("phase[{i}].{k}"),
            Loc::PhaseRate(i, "") => format!("phase[{i}].rate"),
            Loc::PhaseRate(i, k) => format!("phase[{i}].rate.{k}"),
            Loc::PhaseTask(i, k) => format!("phase[{i}].task.{k}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Section {
    Top,
    Task,
    Phase(usize),
    PhaseTask(usize),
    Other(String),
}

/// The table header in force on each line.
fn sections(text: &str) -> Vec<Section> {
    let mut cur = Section::Top;
    let mut phases = 0;
    text.lines()
        .map(|l| {
            let t = strip_comment(l).trim();
            if let Some(h) = t.strip_prefix("[[").and_then(|h| h.strip_suffix("]]")) {
                if h.trim() == "phase" {
                    phases += 1;
                    cur = Section::Phase(phases);
                } else {
                    cur = Section::Other(h.trim().to_string());
                }
            } else if let Some(h) = t.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                cur = match h.trim() {
                    "task" => Section::Task,
                    "phase.task" if phases > 0 => Section::PhaseTask(phases),
                    other => Section::Other(other.to_string()),
                };
            }
            cur.clone()
        })
        .collect()
}

fn strip_comment(l: &str) -> &str {
    // Good enough for locating keys: trace files have no '#' inside strings.
    l.split('#').next().unwrap_or("")
}

/// The key assigned on a line (`key = ...`), if any.
fn line_key(l: &str) -> Option<&str> {
    let t = strip_comment(l).trim();
    let (k, _) = t.split_once('=')?;
    let k = k.trim();
    (!k.is_empty() && !k.starts_with('[')).then_some(k)
}

/// The 1-based line where a field is written.
fn locate(text: &str, loc: &Loc) -> Option<usize> {
    let secs = sections(text);
    let lines: Vec<&str> = text.lines().collect();
    let find = |sec: &Section, key: &str| {
        lines
            .iter()
            .zip(&secs)
            .position(|(l, s)| s == sec && line_key(l) == Some(key))
            .map(|i| i + 1)
    };
    match loc {
        Loc::Top(k) => find(&Section::Top, k),
        Loc::Task(k) => find(&Section::Task, k).or_else(|| find(&Section::Top, "task")),
        Loc::Phase(i, k) => find(&Section::Phase(*i), k),
        Loc::PhaseRate(i, _) => find(&Section::Phase(*i), "rate"),
        Loc::PhaseTask(i, k) => {
            find(&Section::PhaseTask(*i), k).or_else(|| find(&Section::Phase(*i), "task"))
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The table path at a byte offset (`phase[2]`, `task`, or "" at the top).
fn section_at(text: &str, offset: usize) -> String {
    let (line, _) = line_col(text, offset);
    let secs = sections(text);
    let sec = secs
        .get(line.saturating_sub(1))
        .cloned()
        .unwrap_or(Section::Top);
    // Inside an inline table (`rate = { ... }`, `task = { ... }`) the key of the line is the
    // table.
    let inline = text
        .lines()
        .nth(line.saturating_sub(1))
        .and_then(line_key)
        .filter(|k| {
            let l = text.lines().nth(line - 1).unwrap_or("");
            l.contains('{') && (*k == "rate" || *k == "task")
        });
    let base = match sec {
        Section::Top => String::new(),
        Section::Task => "task".into(),
        Section::Phase(i) => format!("phase[{i}]"),
        Section::PhaseTask(i) => format!("phase[{i}].task"),
        Section::Other(h) => h,
    };
    match inline {
        Some(k) => join(&base, k),
        None => base,
    }
}

fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let (line, _) = line_col(text, offset);
    let l = text.lines().nth(line.saturating_sub(1))?;
    let k = line_key(l)?;
    // For one of the format's inline tables (`rate`, `task`) the section already names it;
    // any other key given an inline table is itself the field in error.
    let inline_table = l.contains('{') && (k == "rate" || k == "task");
    (!inline_table).then(|| k.to_string())
}

fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else if base.ends_with(key) {
        base.to_string()
    } else {
        format!("{base}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
name = "step"
slo_p99_wait_ms = 20.0
warmup_s = 10
[task]                      # default task for every phase
kind = "sleep"              # sleep | spin | mixed
mean_ms = 50.0
dist = "exponential"        # constant | exponential | lognormal
cv2 = 4.0                   # lognormal only: squared coefficient of variation
spin_fraction = 0.2         # mixed only
[[phase]]
duration_s = 30
rate = 20                                           # constant, tasks/s
[[phase]]
duration_s = 60
rate = { from = 20, to = 200 }                      # linear ramp
[[phase]]
duration_s = 60
rate = { base = 120, amplitude = 96, period_s = 60 } # sine
[[phase]]
duration_s = 60
rate = { high = 300, low = 20, high_s = 2, period_s = 10 }   # on/off
task = { kind = "spin", mean_ms = 3, dist = "constant" }     # per-phase override
"#;

    fn parse(text: &str) -> Result<Trace, TraceError> {
        parse_str(text, Path::new("t.toml"))
    }

    #[test]
    fn the_documented_example_parses() {
        let t = parse(EXAMPLE).unwrap();
        assert_eq!(t.name, "step");
        assert_eq!(t.slo_s, 0.020);
        assert_eq!(t.warmup_s, 10.0);
        assert_eq!(t.phases.len(), 4);
        assert_eq!(t.duration_s(), 210.0);
        assert_eq!(t.phases[0].rate, Rate::Constant(20.0));
        assert_eq!(
            t.phases[1].rate,
            Rate::Ramp {
                from: 20.0,
                to: 200.0
            }
        );
        assert_eq!(t.phases[3].start_s, 150.0);
        assert_eq!(t.phases[0].task.kind, TaskKind::Sleep);
        assert_eq!(t.phases[0].task.dist, Dist::Exponential);
        assert_eq!(t.phases[3].task.kind, TaskKind::Spin);
        assert_eq!(t.phases[3].task.mean_s, 0.003);
        assert_eq!(t.phases[3].task.dist, Dist::Constant);
        // λ(t) follows each shape.
        assert_eq!(t.rate_at(10.0), 20.0);
        assert!((t.rate_at(60.0) - 110.0).abs() < 1e-9);
        assert!((t.rate_at(90.0 + 15.0) - 216.0).abs() < 1e-9);
        assert_eq!(t.rate_at(151.0), 300.0);
        assert_eq!(t.rate_at(153.0), 20.0);
        assert_eq!(t.rate_at(500.0), 0.0);
    }

    #[test]
    fn every_built_in_loads_and_fits_in_150_seconds() {
        for b in BUILT_INS {
            let t = b.load(2);
            assert_eq!(t.name, b.name);
            assert!(t.duration_s() <= 150.0, "{}", b.name);
            assert_eq!(t.slo_s, 0.020);
            assert_eq!(t.warmup_s, 10.0);
        }
        let step = BuiltIn::find("step").unwrap().load(2);
        assert_eq!(step.rate_at(29.9), 20.0);
        assert_eq!(step.rate_at(30.0), 200.0);
        assert_eq!(step.rate_at(90.0), 20.0);
        assert_eq!(step.steps().len(), 1);
        let cpu1 = BuiltIn::find("cpu-overload").unwrap().load(1);
        let cpu4 = BuiltIn::find("cpu-overload").unwrap().load(4);
        assert_eq!(cpu4.rate_at(25.0), 4.0 * cpu1.rate_at(25.0));
        assert!(cpu1.rate_at(25.0) * cpu1.phases[1].task.mean_s > 1.0);
        let mixed = BuiltIn::find("mixed").unwrap().load(2);
        assert_eq!(
            mixed.phases[0].task.kind,
            TaskKind::Mixed { spin_fraction: 0.2 }
        );
        let ht = BuiltIn::find("heavy-tail").unwrap().load(2);
        assert_eq!(ht.phases[0].task.dist, Dist::Lognormal { cv2: 4.0 });
    }

    #[test]
    fn max_rate_is_exact_for_each_shape() {
        let sine = Rate::Sine {
            base: 120.0,
            amplitude: 96.0,
            period_s: 60.0,
        };
        assert_eq!(sine.max_over(14.0, 16.0, 120.0), 216.0);
        assert!((sine.max_over(0.0, 1.0, 120.0) - sine.at(1.0, 120.0)).abs() < 1e-12);
        let onoff = Rate::OnOff {
            high: 300.0,
            low: 20.0,
            high_s: 2.0,
            period_s: 10.0,
        };
        assert_eq!(onoff.max_over(2.5, 9.5, 60.0), 20.0);
        assert_eq!(onoff.max_over(9.5, 10.0, 60.0), 300.0);
        assert_eq!(onoff.max_over(11.5, 12.5, 60.0), 300.0);
        let ramp = Rate::Ramp {
            from: 5.0,
            to: 400.0,
        };
        assert!((ramp.max_over(0.0, 60.0, 120.0) - 202.5).abs() < 1e-9);
    }

    #[test]
    fn defaults_fill_what_a_file_leaves_out() {
        let t = parse("[[phase]]\nduration_s = 20\nrate = 10\n").unwrap();
        assert_eq!(t.name, "t");
        assert_eq!(t.slo_s, 0.020);
        assert_eq!(t.warmup_s, DEFAULT_WARMUP_S);
        assert_eq!(t.phases[0].task.mean_s, 0.050);
        assert_eq!(t.phases[0].task.kind, TaskKind::Sleep);
        assert_eq!(t.phases[0].task.dist, Dist::Exponential);
    }

    fn err(text: &str) -> TraceError {
        parse(text).expect_err("must be rejected")
    }

    #[test]
    fn bad_files_name_the_field_and_line() {
        // Unknown top-level key.
        let e = err("name = \"x\"\nbogus = 1\n[[phase]]\nduration_s = 5\nrate = 1\n");
        assert_eq!(e.field(), Some("bogus"));
        assert_eq!(e.line(), Some(2));
        // Unknown key in a phase.
        let e = err("warmup_s = 0\n[[phase]]\nduration_s = 5\nrate = 1\nspeed = 2\n");
        assert_eq!(e.field(), Some("phase[1].speed"), "{e}");
        assert_eq!(e.line(), Some(5));
        // Unknown key in an inline rate table.
        let e = err("warmup_s = 0\n[[phase]]\nduration_s = 5\nrate = { from = 1, too = 2 }\n");
        assert_eq!(e.field(), Some("phase[1].rate.too"), "{e}");
        assert_eq!(e.line(), Some(4));
        // A rate table of no known shape.
        let e = err("warmup_s = 0\n[[phase]]\nduration_s = 5\nrate = { from = 1 }\n");
        assert_eq!(e.line(), Some(4));
        assert!(e.to_string().contains("ramp"), "{e}");
        // Wrong type.
        let e = err("slo_p99_wait_ms = \"fast\"\n[[phase]]\nduration_s = 5\nrate = 1\n");
        assert_eq!(e.field(), Some("slo_p99_wait_ms"));
        assert_eq!(e.line(), Some(1));
        // Unknown enum value.
        let e = err("[task]\nkind = \"io\"\n[[phase]]\nduration_s = 5\nrate = 1\n");
        assert_eq!(e.field(), Some("task.kind"), "{e}");
        assert_eq!(e.line(), Some(2));
        // Missing field.
        let e = err("[[phase]]\nrate = 1\n");
        assert!(e.to_string().contains("duration_s"), "{e}");
        // Not TOML at all.
        let e = err("name = \n");
        assert_eq!(e.line(), Some(1));
    }

    #[test]
    fn impossible_values_are_rejected_with_field_and_line() {
        let e = err("warmup_s = 0\n[[phase]]\nduration_s = 5\nrate = -3\n");
        assert_eq!(e.field(), Some("phase[1].rate"));
        assert_eq!(e.line(), Some(4));
        let e = err("warmup_s = 0\n[[phase]]\nduration_s = 5\nrate = 1\n[[phase]]\nduration_s = 0\nrate = 1\n");
        assert_eq!(e.field(), Some("phase[2].duration_s"));
        assert_eq!(e.line(), Some(6));
        let e = err("slo_p99_wait_ms = 0\n[[phase]]\nduration_s = 5\nrate = 1\n");
        assert_eq!(e.field(), Some("slo_p99_wait_ms"));
        assert_eq!(e.line(), Some(1));
        let e = err("warmup_s = 0\n[[phase]]\nduration_s = 5\nrate = { base = 10, amplitude = 20, period_s = 5 }\n");
        assert_eq!(e.field(), Some("phase[1].rate.amplitude"));
        let e = err("warmup_s = 10\n[[phase]]\nduration_s = 5\nrate = 1\n");
        assert_eq!(e.field(), Some("warmup_s"));
        let e = err(
            "warmup_s = 0\n[task]\ndist = \"lognormal\"\n[[phase]]\nduration_s = 5\nrate = 1\n",
        );
        assert_eq!(e.field(), Some("task.cv2"));
        let e = err("warmup_s = 0\n[[phase]]\nduration_s = 5\nrate = 1\ntask = { mean_ms = -1 }\n");
        assert_eq!(e.field(), Some("phase[1].task.mean_ms"));
        assert_eq!(e.line(), Some(5));
        let e = err("warmup_s = 0\n[[phase]]\nduration_s = 5\nrate = 0\n");
        assert!(e.to_string().contains("no task"), "{e}");
        let e = err("name = \"x\"\n");
        assert_eq!(e.field(), Some("phase"));
        let e = err("warmup_s = 0\n[[phase]]\nduration_s = nan\nrate = 1\n");
        assert_eq!(e.field(), Some("phase[1].duration_s"));
    }

    #[test]
    fn unknown_names_list_the_built_ins() {
        let e = load("no-such-trace", 2).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("no-such-trace") && msg.contains("spike"),
            "{msg}"
        );
    }

    #[test]
    fn compression_divides_time_only() {
        let t = BuiltIn::find("onoff").unwrap().load(2).compressed(10.0);
        assert_eq!(t.duration_s(), 12.0);
        assert_eq!(t.warmup_s, 1.0);
        assert_eq!(t.rate_at(0.1), 300.0);
        assert_eq!(t.rate_at(0.3), 20.0);
        assert_eq!(t.phases[0].task.mean_s, 0.050);
        assert_eq!(t.speed, 10.0);
    }
}
