//! The replay guard: every event acts at most once, however often it is delivered.
//!
//! One record per semantic event key. A delivery *claims* the key before acting:
//! - no record, an expired record, a `Failed` record, or an `InProgress` record whose lease has
//!   run out → claimed (a retry resumes: the record lists the steps already done);
//! - `InProgress` within its lease → another delivery is working on it: do nothing;
//! - `Completed` → a duplicate: do nothing, report the stored summary.
//!
//! The lease runs to the Lambda deadline, so a crashed or timed-out holder's retry can claim.
//! Completion, progress and failure are written only by the holder of the claim.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;

/// The record's states as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum State {
    InProgress,
    Completed,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::InProgress => "InProgress",
            State::Completed => "Completed",
            State::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [State::InProgress, State::Completed, State::Failed]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// A claim attempt.
#[derive(Clone, Debug)]
pub struct ClaimRequest<'a> {
    pub key: &'a str,
    /// Unique per delivery (the Lambda request id).
    pub owner: &'a str,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
    /// When the record may be deleted (DynamoDB TTL).
    pub expires_at: DateTime<Utc>,
}

/// The answer to a claim.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "claim", rename_all = "kebab-case")]
pub enum Claim {
    /// Ours. `attempt` counts deliveries that claimed the key, this one included; `done` lists
    /// the steps earlier attempts finished; `failure_alerted` says an earlier failure was alerted.
    Claimed {
        attempt: u32,
        done: Vec<String>,
        failure_alerted: bool,
    },
    /// Already done; nothing more to do.
    Completed { summary: String },
    /// Another delivery holds the lease.
    InProgress { lease_until: DateTime<Utc> },
}

/// Where replay records live (DynamoDB in Lambda).
pub trait ReplayStore: Send + Sync {
    fn claim(&self, req: &ClaimRequest<'_>) -> impl Future<Output = Result<Claim>> + Send;
    /// Records finished steps. `false` when the claim was lost to another delivery.
    fn progress(&self, key: &str, owner: &str, done: &[String]) -> impl Future<Output = Result<bool>> + Send;
    /// Marks the event done. `false` when the claim was lost to another delivery.
    fn complete(
        &self,
        key: &str,
        owner: &str,
        summary: &str,
        done: &[String],
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Marks the event failed, so a retry may claim it. `false` when the claim was lost.
    fn fail(
        &self,
        key: &str,
        owner: &str,
        error: &str,
        done: &[String],
        alerted: bool,
    ) -> impl Future<Output = Result<bool>> + Send;
}

/// A stored record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub state: State,
    pub owner: String,
    pub lease_until: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub attempts: u32,
    pub done: Vec<String>,
    pub summary: Option<String>,
    pub error: Option<String>,
    pub failure_alerted: bool,
}

impl Record {
    /// Whether a new delivery may claim over this record at `now`.
    pub fn claimable(&self, now: DateTime<Utc>) -> bool {
        self.expires_at < now
            || match self.state {
                State::Failed => true,
                State::InProgress => self.lease_until.is_none_or(|l| l < now),
                State::Completed => false,
            }
    }

    /// The answer to a claim by `owner` that this record does not let through. A claim the
    /// same owner already holds is its own: the answer to its first try was lost and the SDK
    /// tried again, or Lambda retries the same request after the holder died. It carries on.
    pub fn refusal(&self, owner: &str) -> Claim {
        match self.state {
            State::Completed => Claim::Completed {
                summary: self.summary.clone().unwrap_or_default(),
            },
            State::InProgress if self.owner == owner => Claim::Claimed {
                attempt: self.attempts,
                done: self.done.clone(),
                failure_alerted: self.failure_alerted,
            },
            _ => Claim::InProgress {
                lease_until: self.lease_until.unwrap_or_default(),
            },
        }
    }
}

/// An in-process store with the same semantics, for the offline CLI and unit tests.
#[derive(Default)]
pub struct MemoryReplayStore {
    records: Mutex<HashMap<String, Record>>,
}

impl MemoryReplayStore {
    pub fn get(&self, key: &str) -> Option<Record> {
        self.lock().get(key).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, key: &str, owner: &str, f: impl FnOnce(&mut Record)) -> bool {
        match self.lock().get_mut(key) {
            Some(r) if r.owner == owner && r.state == State::InProgress => {
                f(r);
                true
            }
            _ => false,
        }
    }
}

impl ReplayStore for MemoryReplayStore {
    async fn claim(&self, req: &ClaimRequest<'_>) -> Result<Claim> {
        let mut records = self.lock();
        let previous = records.get(req.key);
        if let Some(p) = previous.filter(|p| !p.claimable(req.now)) {
            return Ok(p.refusal(req.owner));
        }
        let (attempts, done, failure_alerted) = previous
            .map(|p| (p.attempts, p.done.clone(), p.failure_alerted))
            .unwrap_or_default();
        records.insert(
            req.key.to_string(),
            Record {
                state: State::InProgress,
                owner: req.owner.to_string(),
                lease_until: Some(req.lease_until),
                expires_at: req.expires_at,
                attempts: attempts + 1,
                done: done.clone(),
                summary: None,
                error: None,
                failure_alerted,
            },
        );
        Ok(Claim::Claimed {
            attempt: attempts + 1,
            done,
            failure_alerted,
        })
    }

    async fn progress(&self, key: &str, owner: &str, done: &[String]) -> Result<bool> {
        Ok(self.update(key, owner, |r| r.done = done.to_vec()))
    }

    async fn complete(&self, key: &str, owner: &str, summary: &str, done: &[String]) -> Result<bool> {
        Ok(self.update(key, owner, |r| {
            r.state = State::Completed;
            r.summary = Some(summary.to_string());
            r.done = done.to_vec();
            r.lease_until = None;
        }))
    }

    async fn fail(&self, key: &str, owner: &str, error: &str, done: &[String], alerted: bool) -> Result<bool> {
        Ok(self.update(key, owner, |r| {
            r.state = State::Failed;
            r.error = Some(error.to_string());
            r.done = done.to_vec();
            r.failure_alerted |= alerted;
            r.lease_until = None;
        }))
    }
}
