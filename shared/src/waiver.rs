//! Waivers: a `guardrail:waiver` tag that exempts one resource or principal from named rules
//! until a date, set only by the principals the policy names.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::ids::clip;
use crate::plan::Tag;
use crate::policy::{Policy, Rule};

/// The tag holding a waiver, on the resource or principal it exempts.
pub const WAIVER_TAG: &str = "guardrail:waiver";
/// Longest ticket reference a waiver may carry.
const MAX_TICKET: usize = 64;

/// A waiver as its tag states it: `rules=tags+quarantine until=2026-12-31 ticket=SEC-123`.
/// (IAM tag values allow letters, digits, spaces and `_.:/=+-@`, so the parts are separated by
/// spaces and the rules by `+`.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Waiver {
    pub rules: Vec<Rule>,
    /// The last day (UTC) the waiver holds.
    pub until: NaiveDate,
    pub ticket: String,
}

/// What a resource's tags mean for one rule at one time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// No waiver names the rule.
    None,
    /// The rule leaves the resource alone.
    Valid(Waiver),
    /// Past its last day: ignored, and reported so that someone renews or removes it.
    Expired(Waiver),
    /// A tag Guardrail does not honour, and why: ignored, and reported.
    Invalid(String),
}

impl Waiver {
    /// Reads a waiver tag's value; the error says what is wrong with it.
    pub fn parse(value: &str) -> Result<Waiver, String> {
        let (mut rules, mut until, mut ticket) = (None, None, None);
        for part in value.split_whitespace() {
            let Some((key, text)) = part.split_once('=') else {
                return Err(format!("{:?} is not key=value", clip(part, 40)));
            };
            let slot = match key {
                "rules" => &mut rules,
                "until" => &mut until,
                "ticket" => &mut ticket,
                other => {
                    return Err(format!(
                        "unknown part {:?} (a waiver has rules=, until= and ticket=)",
                        clip(other, 40)
                    ));
                }
            };
            if slot.replace(text).is_some() {
                return Err(format!("{key}= is given twice"));
            }
        }
        let rules = rules
            .ok_or("rules= is missing (for example rules=tags+quarantine)")?
            .split('+')
            .map(|name| {
                Rule::ALL
                    .into_iter()
                    .find(|r| r.name() == name)
                    .ok_or_else(|| format!("unknown rule {:?} in rules=", clip(name, 40)))
            })
            .collect::<Result<Vec<Rule>, String>>()?;
        let until = until.ok_or("until= is missing (the last day, YYYY-MM-DD)")?;
        let until = NaiveDate::parse_from_str(until, "%Y-%m-%d")
            .map_err(|_| format!("until={:?} is not a date (YYYY-MM-DD)", clip(until, 40)))?;
        let ticket = ticket.ok_or("ticket= is missing (the change or risk ticket approving it)")?;
        let well_formed = ticket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@".contains(c));
        if ticket.is_empty() || ticket.len() > MAX_TICKET || !well_formed {
            return Err(format!(
                "ticket={:?} is not a ticket reference (1-{MAX_TICKET} letters, digits and -_.:/@)",
                clip(ticket, 40)
            ));
        }
        Ok(Waiver {
            rules,
            until,
            ticket: ticket.to_string(),
        })
    }

    /// `waiver SEC-123 until 2026-12-31`.
    pub fn describe(&self) -> String {
        format!("waiver {} until {}", self.ticket, self.until)
    }
}

/// The standing of the waiver among `tags` for `rule` at `at`. A waiver further ahead than the
/// policy's `max_days`, or any waiver when the policy names no setters, is not honoured.
pub fn standing(tags: &[Tag], rule: Rule, at: DateTime<Utc>, policy: &Policy) -> Standing {
    let Some(tag) = tags.iter().find(|t| t.is(WAIVER_TAG)) else {
        return Standing::None;
    };
    let waivers = &policy.safety.waivers;
    if waivers.setters.is_empty() {
        return Standing::Invalid(format!(
            "{WAIVER_TAG} is ignored: the policy names no waiver setters (safety.waivers.setters)"
        ));
    }
    let waiver = match Waiver::parse(&tag.value) {
        Ok(w) => w,
        Err(why) => return Standing::Invalid(format!("{WAIVER_TAG} is ignored: {why}")),
    };
    if !waiver.rules.contains(&rule) {
        return Standing::None;
    }
    let today = at.date_naive();
    if waiver.until < today {
        return Standing::Expired(waiver);
    }
    if (waiver.until - today).num_days() > i64::from(waivers.max_days) {
        return Standing::Invalid(format!(
            "{WAIVER_TAG} is ignored: {} is more than the policy's {} days away (safety.waivers.max_days)",
            waiver.until, waivers.max_days
        ));
    }
    Standing::Valid(waiver)
}

impl Standing {
    /// The line a report gives a waiver that does not hold, `None` for no waiver or a valid one.
    pub fn problem(&self) -> Option<String> {
        match self {
            Standing::Expired(w) => Some(format!(
                "{} expired: the rule applies again; renew the waiver or remove {WAIVER_TAG}",
                w.describe()
            )),
            Standing::Invalid(why) => Some(why.clone()),
            Standing::None | Standing::Valid(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: &str) -> DateTime<Utc> {
        format!("{day}T12:00:00Z").parse().expect("a time")
    }

    fn policy(setters: &str, max_days: u32) -> Policy {
        let text = crate::policy::BUILTIN_POLICY
            .replace(
                r#"setters = ["arn:aws:iam::*:role/security-waivers/*"]"#,
                &format!("setters = [{setters}]"),
            )
            .replace("max_days = 90", &format!("max_days = {max_days}"));
        Policy::from_toml(&text, "test").expect("the test policy")
    }

    fn waived(value: &str) -> Vec<Tag> {
        vec![Tag::new("Name", "x"), Tag::new(WAIVER_TAG, value)]
    }

    #[test]
    fn a_waiver_reads_its_rules_last_day_and_ticket() {
        let w = Waiver::parse("rules=tags+quarantine until=2026-12-31 ticket=SEC-123").expect("a waiver");
        assert_eq!(w.rules, [Rule::Tags, Rule::Quarantine]);
        assert_eq!(w.until.to_string(), "2026-12-31");
        assert_eq!(w.describe(), "waiver SEC-123 until 2026-12-31");
        for (bad, why) in [
            ("rules=tags until=2026-12-31", "ticket= is missing"),
            ("rules=tags ticket=A-1", "until= is missing"),
            ("until=2026-12-31 ticket=A-1", "rules= is missing"),
            ("rules=tags+tag until=2026-12-31 ticket=A-1", "unknown rule \"tag\""),
            ("rules=tags until=31.12.2026 ticket=A-1", "is not a date"),
            ("rules=tags until=2026-12-31 ticket=A;1", "is not a ticket reference"),
            (
                "rules=tags rules=quarantine until=2026-12-31 ticket=A-1",
                "rules= is given twice",
            ),
            ("rules=tags until=2026-12-31 ticket=A-1 by=me", "unknown part \"by\""),
            ("forever", "is not key=value"),
        ] {
            let e = Waiver::parse(bad).expect_err("not a waiver");
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_waiver_holds_through_its_last_day_for_the_rules_it_names_only() {
        let p = policy("\"arn:aws:iam::*:role/security-waivers/*\"", 90);
        let tags = waived("rules=tags until=2026-12-31 ticket=SEC-1");
        let valid = standing(&tags, Rule::Tags, at("2026-12-31"), &p);
        assert!(matches!(valid, Standing::Valid(_)), "{valid:?}");
        assert_eq!(valid.problem(), None);
        let expired = standing(&tags, Rule::Tags, at("2027-01-01"), &p);
        assert!(matches!(expired, Standing::Expired(_)), "{expired:?}");
        assert!(
            expired
                .problem()
                .expect("a problem")
                .contains("waiver SEC-1 until 2026-12-31 expired")
        );
        assert_eq!(standing(&tags, Rule::Quarantine, at("2026-12-01"), &p), Standing::None);
        assert_eq!(
            standing(&[Tag::new("Name", "x")], Rule::Tags, at("2026-12-01"), &p),
            Standing::None
        );
    }

    #[test]
    fn a_waiver_too_far_ahead_or_with_nobody_to_set_it_is_not_honoured() {
        let tags = waived("rules=tags until=2027-06-30 ticket=SEC-1");
        let strict = policy("\"arn:aws:iam::*:role/security-waivers/*\"", 30);
        let far = standing(&tags, Rule::Tags, at("2027-05-01"), &strict);
        assert!(
            far.problem()
                .expect("a problem")
                .contains("more than the policy's 30 days away"),
            "{far:?}"
        );
        assert!(matches!(
            standing(&tags, Rule::Tags, at("2027-06-01"), &strict),
            Standing::Valid(_)
        ));
        let nobody = policy("", 30);
        let off = standing(&tags, Rule::Tags, at("2027-06-01"), &nobody);
        assert!(
            off.problem().expect("a problem").contains("names no waiver setters"),
            "{off:?}"
        );
        let garbled = standing(&waived("until=2027-06-30"), Rule::Tags, at("2027-06-01"), &strict);
        assert!(
            garbled.problem().expect("a problem").contains("rules= is missing"),
            "{garbled:?}"
        );
    }
}
