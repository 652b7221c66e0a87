//! Test harness for Guardrail's integration and end-to-end tests: a private AWS emulator (moto
//! server) per test, an organization seeded into it, Guardrail's stack, and readers for what the
//! functions wrote.

pub mod emulator;
pub mod events;
pub mod lambda;
pub mod world;

pub use emulator::Emulator;
pub use world::World;
