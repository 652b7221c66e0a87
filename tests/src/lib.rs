//! Test harness for Guardrail's integration and end-to-end tests: a private AWS emulator (moto
//! server) per test, an organization seeded into it, Guardrail's stack, and readers for what the
//! functions wrote.

pub mod agents;
pub mod emulator;
pub mod events;
pub mod faults;
pub mod infra;
pub mod lambda;
pub mod runtime;
pub mod world;

pub use emulator::Emulator;
pub use world::World;

use guardrail::pipeline::{Invocation, Outcome, Report};

/// A Lambda invocation happening now, with a minute to run and a new request id.
pub fn invocation() -> Invocation {
    let now = chrono::Utc::now();
    Invocation {
        request_id: events::event_id(),
        now,
        deadline: now + chrono::Duration::seconds(60),
    }
}

/// The outcome of each event of a report, for matching.
pub fn outcomes(report: &Report) -> Vec<&Outcome> {
    report.events.iter().map(|e| &e.outcome).collect()
}
