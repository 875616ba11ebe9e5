#!/usr/bin/env bash
# Runs every test of the workspace with every feature (the Prometheus test installs
# Debian's prometheus package itself when it is missing): the unit, integration and doc
# tests, then the loom
# models of the lock-free protocols (they need `--cfg loom`, so they build into their own
# target folder and do not invalidate the normal build).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-features

echo "== soak (60 s; docs/RELIABILITY.md) =="
cargo run -q -p elastic-pool-cli -- soak --duration 60s

echo "== loom models (cfg(loom), release) =="
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
    cargo test -p elastic-pool --release --test loom_sleep --test loom_gate --test loom_sample_log
