//! The kill switch: whether people have paused Guardrail org-wide, and what a pause does to a
//! plan (nothing is changed; the alert says so).

use std::future::Future;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::Result;
use crate::plan::Plan;
use crate::policy::Mode;

/// What the switch says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pause {
    Active,
    /// Every function detects only; `detail` is the switch's value (who, when, why).
    Paused {
        detail: String,
    },
}

impl Pause {
    /// Reads the switch's value: one starting with `paused` (any case) pauses; anything else,
    /// or no parameter, does not.
    pub fn from_value(value: Option<&str>) -> Pause {
        match value.map(str::trim) {
            Some(v) if v.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("paused")) => Pause::Paused {
                detail: crate::ids::clip(v, 300),
            },
            _ => Pause::Active,
        }
    }

    pub fn is_paused(&self) -> bool {
        matches!(self, Pause::Paused { .. })
    }
}

/// The value `guardrail pause` writes.
pub fn paused_value(reason: &str, by: &str, at: DateTime<Utc>) -> String {
    format!(
        "paused by {by} at {}: {}",
        at.to_rfc3339_opts(SecondsFormat::Secs, true),
        reason.trim()
    )
}

/// The value `guardrail resume` writes.
pub fn active_value(by: &str, at: DateTime<Utc>) -> String {
    format!(
        "active since {} (resumed by {by})",
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// Reads the kill switch (an SSM parameter in Lambda; a fixed value in tests).
pub trait Switch: Send + Sync {
    fn state(&self) -> impl Future<Output = Result<Pause>> + Send;
}

/// A switch that never moves: the offline CLI and the unit tests.
impl Switch for Pause {
    async fn state(&self) -> Result<Pause> {
        Ok(self.clone())
    }
}

/// Turns a plan that would change something into one that only reports, saying why.
pub fn hold(plan: &mut Plan, detail: &str) {
    if plan.mode == Mode::Detect && plan.actions.is_empty() {
        return;
    }
    plan.hold_back(
        crate::plan::Hold::Paused,
        format!("Guardrail is paused org-wide ({detail}): nothing was changed; `guardrail resume` lets it act again"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AccountId;
    use crate::plan::Action;
    use crate::policy::Rule;

    #[test]
    fn only_a_value_starting_with_paused_pauses() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z")
            .expect("time")
            .to_utc();
        let value = paused_value(" bad policy push ", "arn:aws:iam::1:role/break-glass-ops", at);
        assert_eq!(
            value,
            "paused by arn:aws:iam::1:role/break-glass-ops at 2026-11-23T08:00:00Z: bad policy push"
        );
        assert!(Pause::from_value(Some(&value)).is_paused());
        assert!(Pause::from_value(Some("PAUSED")).is_paused());
        for active in [
            None,
            Some(""),
            Some("active"),
            Some(active_value("x", at).as_str()),
            Some("pause"),
        ] {
            assert_eq!(Pause::from_value(active), Pause::Active, "{active:?}");
        }
    }

    #[test]
    fn a_held_plan_changes_nothing_and_says_why() {
        let account = AccountId::parse("111122223333").expect("id");
        let mut plan = Plan::new(Rule::Quarantine, Mode::Enforce, account.clone(), "a role");
        plan.actions.push(Action::StopInstances {
            region: crate::ids::Region::parse("us-east-1").expect("region"),
            instances: vec!["i-12345678".into()],
        });
        plan.undo.push("aws iam delete-role-policy ...".into());
        plan.notes
            .push("Release it, once the cause is understood, with: aws iam delete-role-policy ...".into());
        plan.notes
            .push("The finding in the GuardDuty console: https://...".into());
        hold(&mut plan, "paused by me: test");
        assert_eq!(
            plan.notes.len(),
            2,
            "the undo note goes, the others stay: {:?}",
            plan.notes
        );
        assert_eq!(plan.mode, Mode::Detect);
        assert!(plan.actions.is_empty() && plan.undo.is_empty());
        assert!(
            plan.notes[0].contains("paused org-wide (paused by me: test)"),
            "{:?}",
            plan.notes
        );
    }
}
