//! elastic-pool: an autoscaling worker pool (crate docs are filled in with the pool core).

pub mod erlang;
pub mod ewma;
pub mod histogram;
pub mod policy;
pub mod scaler;
pub mod strategy;
