//! The apply port: carry out a planned [`Action`] for an account (in the region the action names).

#[cfg(feature = "aws")]
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use crate::error::Result;
use crate::ids::AccountId;
use crate::plan::Action;

/// The context of one event's actions: the role session name they run under (it names the
/// function and the event, so CloudTrail shows why Guardrail acted), and the credentials assumed
/// for it, which live no longer than the event.
pub struct Session {
    pub name: String,
    #[cfg(feature = "aws")]
    pub(crate) credentials: Mutex<HashMap<String, aws_credential_types::Credentials>>,
    /// Roles that refused to be assumed for this event, with the error: not asked again.
    #[cfg(feature = "aws")]
    pub(crate) refused: Mutex<HashMap<String, String>>,
}

impl Session {
    /// `guardrail-<function>-<event id>`, cut to the 64 characters STS allows and limited to
    /// the characters it allows.
    pub fn new(function: &str, event_id: &str) -> Self {
        let raw = format!("guardrail-{function}-{event_id}");
        let name = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .take(64)
            .collect();
        Session {
            name,
            #[cfg(feature = "aws")]
            credentials: Mutex::new(HashMap::new()),
            #[cfg(feature = "aws")]
            refused: Mutex::new(HashMap::new()),
        }
    }
}

/// Carries out actions (AWS in Lambda; a log of calls in the CLI and tests).
pub trait Actuator: Send + Sync {
    fn apply(&self, session: &Session, account: &AccountId, action: &Action)
    -> impl Future<Output = Result<()>> + Send;
}

/// Records actions instead of making them: the offline CLI's `--dry-run` world and unit tests.
#[derive(Default)]
pub struct RecordingActuator {
    applied: Mutex<Vec<(AccountId, Action)>>,
}

impl RecordingActuator {
    pub fn applied(&self) -> Vec<(AccountId, Action)> {
        self.applied.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl Actuator for RecordingActuator {
    async fn apply(&self, _session: &Session, account: &AccountId, action: &Action) -> Result<()> {
        if let Ok(mut a) = self.applied.lock() {
            a.push((account.clone(), action.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_sts_rules() {
        let s = Session::new("tag-enforcer", "3b2f0e5c-1d2a-4c4b-9f00-6a1d2c3e4f5a");
        assert_eq!(s.name, "guardrail-tag-enforcer-3b2f0e5c-1d2a-4c4b-9f00-6a1d2c3e4f5a");
        let hostile = Session::new("tag-enforcer", &format!("a b/c\n{}", "x".repeat(100)));
        assert!(hostile.name.len() <= 64);
        assert!(
            hostile.name.starts_with("guardrail-tag-enforcer-a-b-c-"),
            "{}",
            hostile.name
        );
    }
}
