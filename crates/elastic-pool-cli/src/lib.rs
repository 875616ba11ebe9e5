//! The `elastic-pool` command as a library: load traces, generate open-loop schedules, run
//! contenders on real threads or in virtual time, and score them against the Erlang-C oracle.
//!
//! The binary (`src/main.rs`) only parses arguments and calls [`app`].

pub mod app;
pub mod contender;
pub mod generator;
pub mod oracle;
pub mod output;
pub mod plot;
pub mod pools;
pub mod report;
pub mod runner;
pub mod score;
pub mod soak;
pub mod task;
pub mod timeline;
pub mod trace;
pub mod virtual_sim;
