//! Contenders: our strategies, the oracle, the baselines run in our pool, and the real peers —
//! their names, their parameters and one line on each.

use std::fmt;
use std::time::Duration;

use elastic_pool::strategy::StrategyKind;

use crate::oracle::Oracle;

/// The on-demand baseline's and tokio's thread cap.
pub const ON_DEMAND_MAX: usize = 512;
/// Idle keep-alive of the on-demand baseline and the peers (tokio's default).
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// `tpe`'s default queue bound.
pub const TPE_QUEUE: usize = 100;
/// rusty_pool's core size in the comparison.
pub const RUSTY_CORE: usize = 2;
/// rusty_pool's max size in the comparison.
pub const RUSTY_MAX: usize = 1000;

/// What `compare` runs when `--contenders` is not given.
pub const DEFAULT_CONTENDERS: &str =
    "erlang,queue-wait,hill-climb,oracle,static-peak,on-demand,tpe,tokio-blocking,rusty-pool";

/// Java ThreadPoolExecutor parameters (`tpe` or `tpe:CORE:MAX:QUEUE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TpeParams {
    /// Core threads (default: the oracle's smallest `c*`).
    pub core: Option<usize>,
    /// Most threads (default 512).
    pub max: Option<usize>,
    /// Queue bound (default 100).
    pub queue: Option<usize>,
}

/// One contender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contender {
    /// Our pool with an autoscaling strategy.
    Strategy(StrategyKind),
    /// Our pool held at the clairvoyant Erlang-C size per tick: the yardstick.
    Oracle,
    /// Our pool with a fixed number of workers.
    Static(usize),
    /// Our pool fixed at the oracle's largest size, all the time.
    StaticPeak,
    /// Our pool without a controller: spawn when no worker is idle, up to 512, 10 s keep-alive.
    OnDemand,
    /// Java ThreadPoolExecutor semantics on our pool.
    Tpe(TpeParams),
    /// tokio's `spawn_blocking` (max_blocking_threads 512, keep-alive 10 s).
    TokioBlocking,
    /// rusty_pool (core 2, max 1000, keep-alive 10 s).
    RustyPool,
}

/// Every name `parse` accepts, for error messages and help.
pub const NAMES: &str =
    "erlang, queue-wait, hill-climb, oracle, static:N, static-peak, on-demand, \
tpe[:CORE:MAX:QUEUE], tokio-blocking, rusty-pool";

fn count(s: &str, what: &str, whole: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "contender `{whole}`: {what} must be a whole number of at least 1, got `{s}`"
        )),
    }
}

impl Contender {
    /// Parses a contender name.
    ///
    /// # Errors
    /// A message listing the names it knows.
    pub fn parse(s: &str) -> Result<Contender, String> {
        let name = s.trim();
        if let Some(k) = StrategyKind::from_name(name) {
            return Ok(Contender::Strategy(k));
        }
        match name {
            "oracle" => return Ok(Contender::Oracle),
            "static-peak" => return Ok(Contender::StaticPeak),
            "on-demand" => return Ok(Contender::OnDemand),
            "tpe" => {
                return Ok(Contender::Tpe(TpeParams {
                    core: None,
                    max: None,
                    queue: None,
                }))
            }
            "tokio-blocking" => return Ok(Contender::TokioBlocking),
            "rusty-pool" => return Ok(Contender::RustyPool),
            _ => {}
        }
        if let Some(n) = name.strip_prefix("static:") {
            return Ok(Contender::Static(count(n, "the worker count", name)?));
        }
        if let Some(rest) = name.strip_prefix("tpe:") {
            let parts: Vec<&str> = rest.split(':').collect();
            if parts.len() != 3 {
                return Err(format!(
                    "contender `{name}`: expected tpe:CORE:MAX:QUEUE, e.g. tpe:4:64:100"
                ));
            }
            let core = count(parts[0], "CORE", name)?;
            let max = count(parts[1], "MAX", name)?;
            let queue = count(parts[2], "QUEUE", name)?;
            if core > max {
                return Err(format!(
                    "contender `{name}`: CORE ({core}) exceeds MAX ({max})"
                ));
            }
            return Ok(Contender::Tpe(TpeParams {
                core: Some(core),
                max: Some(max),
                queue: Some(queue),
            }));
        }
        Err(format!(
            "unknown contender `{name}`; expected one of: {NAMES}"
        ))
    }

    /// Parses a comma-separated list; duplicates are refused.
    ///
    /// # Errors
    /// The first bad name, or a duplicate.
    pub fn parse_list(s: &str) -> Result<Vec<Contender>, String> {
        let mut out: Vec<Contender> = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let c = Contender::parse(part)?;
            if out.contains(&c) {
                return Err(format!("contender `{}` is listed twice", part.trim()));
            }
            out.push(c);
        }
        if out.is_empty() {
            return Err(format!("no contender given; expected some of: {NAMES}"));
        }
        Ok(out)
    }

    /// Whether it runs in our pool (as opposed to a peer's).
    pub fn is_ours(&self) -> bool {
        !matches!(self, Contender::TokioBlocking | Contender::RustyPool)
    }

    /// `tpe`'s parameters with defaults filled from the oracle: (core, max, queue).
    pub fn tpe_sizes(p: &TpeParams, oracle: &Oracle) -> (usize, usize, usize) {
        let core = p.core.unwrap_or_else(|| oracle.floor().max(1));
        let max = p.max.unwrap_or(ON_DEMAND_MAX).max(core);
        (core, max, p.queue.unwrap_or(TPE_QUEUE))
    }

    /// One line on what it is, with its sizes resolved against the oracle.
    pub fn describe(&self, oracle: &Oracle) -> String {
        match self {
            Contender::Strategy(k) => format!("our pool, autoscaled by the `{k}` strategy"),
            Contender::Oracle => {
                "our pool held at the clairvoyant Erlang-C size c* per 0.5 s tick".into()
            }
            Contender::Static(n) => format!("our pool, fixed at {n} workers"),
            Contender::StaticPeak => format!(
                "our pool, fixed at the oracle's peak ({} workers)",
                oracle.peak().max(1)
            ),
            Contender::OnDemand => format!(
                "our pool without a controller: spawn when no worker is idle, up to {ON_DEMAND_MAX}, \
                 {} s keep-alive",
                KEEP_ALIVE.as_secs()
            ),
            Contender::Tpe(p) => {
                let (core, max, queue) = Contender::tpe_sizes(p, oracle);
                format!(
                    "ThreadPoolExecutor semantics on our pool: core {core}, max {max}, queue {queue}; \
                     grows past core only when the queue is full, refuses when full at max"
                )
            }
            Contender::TokioBlocking => format!(
                "tokio spawn_blocking, max_blocking_threads {ON_DEMAND_MAX}, keep-alive {} s",
                KEEP_ALIVE.as_secs()
            ),
            Contender::RustyPool => format!(
                "rusty_pool, core {RUSTY_CORE}, max {RUSTY_MAX}, keep-alive {} s",
                KEEP_ALIVE.as_secs()
            ),
        }
    }
}

impl fmt::Display for Contender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contender::Strategy(k) => f.write_str(k.as_str()),
            Contender::Oracle => f.write_str("oracle"),
            Contender::Static(n) => write!(f, "static:{n}"),
            Contender::StaticPeak => f.write_str("static-peak"),
            Contender::OnDemand => f.write_str("on-demand"),
            Contender::Tpe(TpeParams {
                core: Some(c),
                max: Some(m),
                queue: Some(q),
            }) => write!(f, "tpe:{c}:{m}:{q}"),
            Contender::Tpe(_) => f.write_str("tpe"),
            Contender::TokioBlocking => f.write_str("tokio-blocking"),
            Contender::RustyPool => f.write_str("rusty-pool"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in DEFAULT_CONTENDERS
            .split(',')
            .chain(["static:7", "tpe:2:8:50"])
        {
            let c = Contender::parse(name).unwrap();
            assert_eq!(c.to_string(), name);
        }
        assert_eq!(
            Contender::parse("queue_wait").unwrap(),
            Contender::Strategy(StrategyKind::QueueWait)
        );
    }

    #[test]
    fn bad_names_are_explained() {
        for bad in [
            "fifo",
            "static:",
            "static:0",
            "static:x",
            "tpe:1:2",
            "tpe:9:2:5",
        ] {
            let e = Contender::parse(bad).unwrap_err();
            assert!(e.contains(bad.split(':').next().unwrap()), "{e}");
        }
        assert!(Contender::parse("nope")
            .unwrap_err()
            .contains("tokio-blocking"));
        assert!(Contender::parse_list("erlang,erlang").is_err());
        assert!(Contender::parse_list(" , ").is_err());
        assert_eq!(Contender::parse_list("erlang, oracle").unwrap().len(), 2);
    }
}
