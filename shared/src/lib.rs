//! Guardrail's core: everything the Lambda functions and the CLI share.
//!
//! An event travels `event` (decode) → `gate` → `facts` → `rules` (a pure [`plan::Decision`]) →
//! `replay` (claim) → `apply` → `alert` → `replay` (record), driven by [`pipeline::Pipeline`].
//! AWS lives behind small ports; the adapters are in [`aws`].

pub mod alert;
pub mod apply;
pub mod approval;
#[cfg(feature = "aws")]
pub mod aws;
pub mod breaker;
pub mod config;
pub mod error;
pub mod event;
pub mod facts;
pub mod gate;
pub mod ids;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod ledger;
pub mod metrics;
pub mod pause;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod quarantine;
pub mod replay;
pub mod rules;
pub mod sweep;
#[cfg(feature = "aws")]
pub mod telemetry;
pub mod waiver;

pub use error::{Error, Result};
