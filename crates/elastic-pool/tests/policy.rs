//! Policy loading and validation: defaults, TOML and JSON, and errors that name the field, the
//! rule and the line — never a panic.

use std::time::Duration;

use elastic_pool::policy::{Format, Policy, PolicyError};
use elastic_pool::strategy::StrategyKind;

fn field_of(e: &PolicyError) -> &str {
    e.field()
        .unwrap_or_else(|| panic!("error names no field: {e}"))
}

#[test]
fn defaults_are_the_documented_ones() {
    let p = Policy::default();
    p.validate().unwrap();
    assert_eq!((p.min_workers, p.max_workers), (1, 256));
    assert_eq!(p.target_p99_wait(), Duration::from_millis(20));
    assert_eq!(p.tick(), Duration::from_millis(500));
    assert_eq!(p.tick_jitter, 0.1);
    assert_eq!(p.scale_down_window(), Duration::from_secs(3));
    assert_eq!((p.max_step_up, p.max_step_down), (32, 16));
    assert_eq!(p.keep_alive(), Duration::from_secs(10));
    assert_eq!(p.min_wait_samples, 100);
    assert_eq!(p.wait_sample_every, 8);
    assert_eq!(p.starvation(), Duration::from_millis(500));
    assert_eq!(p.cpu_busy_ratio, 0.95);
    assert_eq!(p.strategy, StrategyKind::Erlang);
    assert_eq!(p.erlang.trim_factor, 0.8);
    assert_eq!(p.erlang.trim_floor, 0.25);
    assert_eq!(p.queue_wait.hold_low, 0.5);
    assert_eq!(p.hill_climb.probe_ticks, 4);
}

#[test]
fn empty_files_give_the_defaults() {
    assert_eq!(Policy::from_toml_str("").unwrap(), Policy::default());
    assert_eq!(
        Policy::from_toml_str("# nothing but a comment\n").unwrap(),
        Policy::default()
    );
    assert_eq!(Policy::from_json_str("{}").unwrap(), Policy::default());
}

#[test]
fn toml_and_json_set_what_they_name() {
    let toml = r#"
min_workers = 2
max_workers = 64
target_p99_wait_ms = 50
tick_ms = 250.0
strategy = "queue-wait"

[queue_wait]
hold_low = 0.4

[erlang]
hysteresis = 0.2
"#;
    let p = Policy::from_toml_str(toml).unwrap();
    assert_eq!((p.min_workers, p.max_workers), (2, 64));
    assert_eq!(p.target_p99_wait(), Duration::from_millis(50));
    assert_eq!(p.tick(), Duration::from_millis(250));
    assert_eq!(p.strategy, StrategyKind::QueueWait);
    assert_eq!(p.queue_wait.hold_low, 0.4);
    assert_eq!(
        p.queue_wait.hold_high, 1.0,
        "unnamed fields keep their defaults"
    );
    assert_eq!(p.erlang.hysteresis, 0.2);
    assert_eq!(p.erlang.trim_after, 3);
    assert_eq!(p.scale_down_window_s, 3.0);

    let json = r#"{
        "min_workers": 2, "max_workers": 64, "target_p99_wait_ms": 50, "tick_ms": 250.0,
        "strategy": "queue-wait",
        "queue_wait": { "hold_low": 0.4 },
        "erlang": { "hysteresis": 0.2 }
    }"#;
    assert_eq!(Policy::from_json_str(json).unwrap(), p);
}

#[test]
fn every_strategy_name_parses() {
    for (name, kind) in [
        ("erlang", StrategyKind::Erlang),
        ("queue-wait", StrategyKind::QueueWait),
        ("hill-climb", StrategyKind::HillClimb),
        ("queue_wait", StrategyKind::QueueWait),
        ("hill_climb", StrategyKind::HillClimb),
    ] {
        let p = Policy::from_toml_str(&format!("strategy = \"{name}\"")).unwrap();
        assert_eq!(p.strategy, kind);
        let p = Policy::from_json_str(&format!("{{\"strategy\": \"{name}\"}}")).unwrap();
        assert_eq!(p.strategy, kind);
    }
    // Written back under its canonical name.
    let p = Policy {
        strategy: StrategyKind::HillClimb,
        ..Policy::default()
    };
    assert!(p.to_toml_string().contains("strategy = \"hill-climb\""));
}

#[test]
fn an_unknown_strategy_is_an_error_naming_strategy_and_its_line() {
    let e = Policy::from_toml_str("min_workers = 1\nstrategy = \"pid\"\n").unwrap_err();
    assert_eq!(field_of(&e), "strategy");
    assert_eq!(e.line(), Some(2));
    assert!(e.to_string().contains("unknown strategy `pid`"), "{e}");

    let e =
        Policy::from_json_str("{\n  \"tick_ms\": 500,\n  \"strategy\": \"pid\"\n}").unwrap_err();
    assert_eq!(field_of(&e), "strategy");
    assert_eq!(e.line(), Some(3));
    assert!(matches!(
        e,
        PolicyError::Parse {
            format: Format::Json,
            ..
        }
    ));
}

#[test]
fn unknown_keys_are_errors() {
    let e = Policy::from_toml_str("min_workers = 1\nmax_wrokers = 8\n").unwrap_err();
    assert_eq!(field_of(&e), "max_wrokers");
    assert_eq!(e.line(), Some(2));

    let e = Policy::from_toml_str("[erlang]\ntrim_factor = 0.5\nbogus = 1\n").unwrap_err();
    assert_eq!(field_of(&e), "erlang.bogus");
    assert_eq!(e.line(), Some(3));

    let e = Policy::from_toml_str("[pid]\nkp = 1\n").unwrap_err();
    assert_eq!(field_of(&e), "pid");

    let e = Policy::from_json_str("{\"erlang\": {\n\"bogus\": 1}}").unwrap_err();
    assert_eq!(field_of(&e), "erlang.bogus");
    assert_eq!(e.line(), Some(2));
}

#[test]
fn wrong_types_name_the_field_and_line() {
    let e = Policy::from_toml_str("\n\ntick_ms = \"fast\"\n").unwrap_err();
    assert_eq!(field_of(&e), "tick_ms");
    assert_eq!(e.line(), Some(3));
    assert!(
        matches!(
            e,
            PolicyError::Parse {
                format: Format::Toml,
                column: 11,
                ..
            }
        ),
        "{e:?}"
    );

    let e = Policy::from_toml_str("min_workers = -1\n").unwrap_err();
    assert_eq!(field_of(&e), "min_workers");

    let e = Policy::from_toml_str("[hill_climb]\nprobe_ticks = 2.5\n").unwrap_err();
    assert_eq!(field_of(&e), "hill_climb.probe_ticks");
    assert_eq!(e.line(), Some(2));

    let e = Policy::from_json_str("{\"max_workers\": \"many\"}").unwrap_err();
    assert_eq!(field_of(&e), "max_workers");
}

#[test]
fn syntax_errors_carry_the_line() {
    let e = Policy::from_toml_str("min_workers = 1\nmax_workers = = 4\n").unwrap_err();
    assert!(matches!(e, PolicyError::Parse { line: 2, .. }), "{e:?}");
    let e = Policy::from_json_str("{\n\"min_workers\": 1,\n}").unwrap_err();
    assert!(matches!(e, PolicyError::Parse { line: 3, .. }), "{e:?}");
}

/// Every rule `validate` enforces, each broken on a default policy: the field it must name.
fn broken() -> Vec<(&'static str, Policy)> {
    let d = Policy::default;
    let mut cases: Vec<(&'static str, Policy)> = vec![
        (
            "min_workers",
            Policy {
                min_workers: 9,
                max_workers: 8,
                ..d()
            },
        ),
        (
            "max_workers",
            Policy {
                max_workers: 0,
                min_workers: 0,
                ..d()
            },
        ),
        (
            "max_workers",
            Policy {
                max_workers: 1 << 20,
                ..d()
            },
        ),
        (
            "target_p99_wait_ms",
            Policy {
                target_p99_wait_ms: 0.0,
                ..d()
            },
        ),
        (
            "target_p99_wait_ms",
            Policy {
                target_p99_wait_ms: -5.0,
                ..d()
            },
        ),
        (
            "target_p99_wait_ms",
            Policy {
                target_p99_wait_ms: f64::NAN,
                ..d()
            },
        ),
        (
            "tick_ms",
            Policy {
                tick_ms: 0.0,
                ..d()
            },
        ),
        (
            "tick_ms",
            Policy {
                tick_ms: -500.0,
                ..d()
            },
        ),
        (
            "tick_ms",
            Policy {
                tick_ms: f64::NAN,
                ..d()
            },
        ),
        (
            "tick_ms",
            Policy {
                tick_ms: f64::INFINITY,
                ..d()
            },
        ),
        (
            "tick_ms",
            Policy {
                tick_ms: 0.01,
                ..d()
            },
        ),
        (
            "tick_jitter",
            Policy {
                tick_jitter: 0.7,
                ..d()
            },
        ),
        (
            "tick_jitter",
            Policy {
                tick_jitter: -0.1,
                ..d()
            },
        ),
        (
            "scale_down_window_s",
            Policy {
                scale_down_window_s: -1.0,
                ..d()
            },
        ),
        (
            "scale_down_window_s",
            Policy {
                scale_down_window_s: f64::INFINITY,
                ..d()
            },
        ),
        (
            "max_step_up",
            Policy {
                max_step_up: 0,
                ..d()
            },
        ),
        (
            "max_step_down",
            Policy {
                max_step_down: 0,
                ..d()
            },
        ),
        (
            "keep_alive_s",
            Policy {
                keep_alive_s: f64::NAN,
                ..d()
            },
        ),
        (
            "keep_alive_s",
            Policy {
                keep_alive_s: -3.0,
                ..d()
            },
        ),
        (
            "min_wait_samples",
            Policy {
                min_wait_samples: 0,
                ..d()
            },
        ),
        (
            "wait_sample_every",
            Policy {
                wait_sample_every: 0,
                ..d()
            },
        ),
        (
            "backlog_drain_s",
            Policy {
                backlog_drain_s: 0.0,
                ..d()
            },
        ),
        (
            "rate_tau_s",
            Policy {
                rate_tau_s: f64::NEG_INFINITY,
                ..d()
            },
        ),
        (
            "service_tau_s",
            Policy {
                service_tau_s: 0.0,
                ..d()
            },
        ),
        (
            "starvation_ms",
            Policy {
                starvation_ms: -1.0,
                ..d()
            },
        ),
        (
            "cpu_busy_ratio",
            Policy {
                cpu_busy_ratio: 1.5,
                ..d()
            },
        ),
        (
            "cpu_busy_ratio",
            Policy {
                cpu_busy_ratio: 0.0,
                ..d()
            },
        ),
        (
            "floor_release",
            Policy {
                floor_release: 2.0,
                ..d()
            },
        ),
    ];
    let mut p = d();
    p.erlang.trim_factor = 1.0;
    cases.push(("erlang.trim_factor", p));
    let mut p = d();
    p.erlang.trim_floor = 0.0;
    cases.push(("erlang.trim_floor", p));
    let mut p = d();
    p.erlang.relax_factor = 0.9;
    cases.push(("erlang.relax_factor", p));
    let mut p = d();
    p.erlang.trim_after = 0;
    cases.push(("erlang.trim_after", p));
    let mut p = d();
    p.erlang.hysteresis = f64::NAN;
    cases.push(("erlang.hysteresis", p));
    let mut p = d();
    p.queue_wait.hold_high = 0.3;
    cases.push(("queue_wait.hold_high", p));
    let mut p = d();
    p.queue_wait.max_ratio = 0.5;
    cases.push(("queue_wait.max_ratio", p));
    let mut p = d();
    p.hill_climb.probe_ticks = 0;
    cases.push(("hill_climb.probe_ticks", p));
    let mut p = d();
    p.hill_climb.min_gain = -0.1;
    cases.push(("hill_climb.min_gain", p));
    cases
}

#[test]
fn validate_names_the_field_and_the_rule() {
    for (field, p) in broken() {
        let e = p.validate().unwrap_err();
        match &e {
            PolicyError::Invalid { field: f, rule, .. } => {
                assert_eq!(*f, field, "{e}");
                assert!(!rule.is_empty());
            }
            other => panic!("{field}: not an Invalid error: {other:?}"),
        }
        assert!(e.to_string().contains(field), "{e}");
    }
}

#[test]
fn invalid_values_in_files_are_rejected_with_field_and_line() {
    for (text, field, line) in [
        ("min_workers = 9\nmax_workers = 8\n", "min_workers", 1),
        ("\ntick_ms = 0\n", "tick_ms", 2),
        ("tick_ms = -500.0\n", "tick_ms", 1),
        ("tick_ms = nan\n", "tick_ms", 1),
        ("x = 1\n", "x", 1),
        ("scale_down_window_s = inf\n", "scale_down_window_s", 1),
        ("target_p99_wait_ms = 0.0\n", "target_p99_wait_ms", 1),
        ("keep_alive_s = -inf\n", "keep_alive_s", 1),
        ("[erlang]\ntrim_factor = 1.5\n", "erlang.trim_factor", 2),
        ("wait_sample_every = 0\n", "wait_sample_every", 1),
    ] {
        let e = Policy::from_toml_str(text).unwrap_err();
        assert_eq!(field_of(&e), field, "{text:?}: {e}");
        assert_eq!(e.line(), Some(line), "{text:?}: {e}");
        assert!(e.to_string().contains(&format!("line {line}")), "{e}");
    }
    let e = Policy::from_json_str("{\n\"tick_ms\": -1}").unwrap_err();
    assert_eq!((field_of(&e), e.line()), ("tick_ms", Some(2)));
    let e = Policy::from_json_str("{\"queue_wait\": {\n\n\"hold_low\": 3}}").unwrap_err();
    assert_eq!((field_of(&e), e.line()), ("queue_wait.hold_low", Some(3)));
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "",
        "=",
        "[",
        "[[erlang]]",
        "strategy = 3",
        "strategy = []",
        "tick_ms = 1e999",
        "min_workers = 99999999999999999999999",
        "\u{0}",
        "{",
        "[]",
        "null",
        "\"x\"",
        "{\"erlang\": []}",
        "{\"min_workers\": -1}",
        "{\"tick_ms\": 1e400}",
        "ω = 1",
        "[erlang\n",
        "tick_ms = 500\ntick_ms = 400\n",
    ];
    for text in inputs {
        let _ = Policy::from_toml_str(text);
        let _ = Policy::from_json_str(text);
    }
    // A crude fuzz over bytes: every prefix of a valid file.
    let good = Policy::default().to_toml_string();
    for end in (0..good.len()).filter(|&i| good.is_char_boundary(i)) {
        let _ = Policy::from_toml_str(&good[..end]);
    }
    let json = serde_json::to_string(&Policy::default()).unwrap();
    for end in 0..json.len() {
        let _ = Policy::from_json_str(&json[..end]);
    }
}

#[test]
fn files_load_by_extension() {
    let dir = std::env::temp_dir().join(format!("elastic-pool-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("p.toml");
    std::fs::write(&toml, "max_workers = 12\n").unwrap();
    assert_eq!(Policy::from_path(&toml).unwrap().max_workers, 12);
    let json = dir.join("p.JSON");
    std::fs::write(&json, "{\"max_workers\": 13}").unwrap();
    assert_eq!(Policy::from_path(&json).unwrap().max_workers, 13);
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "max_workers = 12\nmin_workers = 20\n").unwrap();
    let e = Policy::from_path(&bad).unwrap_err();
    assert_eq!((field_of(&e), e.line()), ("min_workers", Some(2)));
    let yaml = dir.join("p.yaml");
    std::fs::write(&yaml, "max_workers: 1\n").unwrap();
    assert!(matches!(
        Policy::from_path(&yaml),
        Err(PolicyError::UnknownFormat { .. })
    ));
    assert!(matches!(
        Policy::from_path(&dir.join("missing.toml")),
        Err(PolicyError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tick_jitter_spans_plus_minus_ten_percent() {
    let p = Policy::default();
    assert_eq!(p.tick_jittered(0.0), Duration::from_millis(450));
    assert_eq!(p.tick_jittered(0.5), Duration::from_millis(500));
    assert_eq!(p.tick_jittered(1.0), Duration::from_millis(550));
    assert_eq!(p.tick_jittered(f64::NAN), Duration::from_millis(500));
    assert_eq!(p.tick_jittered(7.0), Duration::from_millis(550));
    for i in 0..=100 {
        let t = p.tick_jittered(i as f64 / 100.0);
        assert!(t >= Duration::from_millis(450) && t <= Duration::from_millis(550));
    }
    let steady = Policy {
        tick_jitter: 0.0,
        ..Policy::default()
    };
    assert_eq!(steady.tick_jittered(0.0), Duration::from_millis(500));
    // Out-of-range values never panic in the accessors.
    let odd = Policy {
        tick_ms: f64::NAN,
        keep_alive_s: f64::INFINITY,
        scale_down_window_s: -1.0,
        ..Policy::default()
    };
    assert_eq!(odd.tick(), Duration::ZERO);
    assert_eq!(odd.tick_jittered(0.3), Duration::ZERO);
    assert_eq!(odd.keep_alive(), Duration::MAX);
    assert_eq!(odd.scale_down_window(), Duration::ZERO);
}

#[test]
fn round_trips_through_toml_and_json() {
    let mut p = Policy {
        min_workers: 3,
        max_workers: 40,
        strategy: StrategyKind::HillClimb,
        ..Policy::default()
    };
    p.hill_climb.min_gain = 0.5;
    assert_eq!(Policy::from_toml_str(&p.to_toml_string()).unwrap(), p);
    assert_eq!(
        Policy::from_json_str(&serde_json::to_string_pretty(&p).unwrap()).unwrap(),
        p
    );
}
