//! The quarantine rule: a GuardDuty finding, an agent over its API-call budget, an alarm
//! watching an agent, or a role or user created with a name the naming rule forbids (enforce)
//! → revoke the principal's sessions or isolate it; and the release that undoes exactly what
//! Guardrail did.

use chrono::{DateTime, Utc};

use super::Needs;
use crate::alert::Severity;
use crate::event::json::select_strings;
use crate::event::{AlarmChange, CloudTrailEvent, Event, Finding, Principal, Rejection};
use crate::facts::{Placement, PrincipalFacts, RateCount, RateKey};
use crate::ids::{Region, clip};
use crate::plan::{Action, Decision, Hold, Ignored, Plan, Tag};
use crate::policy::{Mode, NamePattern, Policy, Response, Rule};
use crate::quarantine::{
    PrincipalKind, PrincipalRef, PrincipalState, QUARANTINE_TAG, QuarantineRecord, Release, Trigger, TriggerSource,
    is_isolation_boundary, isolation_boundary_arn,
};
use crate::rules::resources::TagApi;
use crate::waiver::{self, Standing};

/// The role Organizations creates in every account for the management account's use.
const ORGANIZATION_ACCESS_ROLE: &str = "OrganizationAccountAccessRole";

/// What the pipeline found out about a suspect, as [`Needs`] asked.
#[derive(Clone, Debug, Default)]
pub struct Suspect {
    pub principal: Option<PrincipalFacts>,
    /// The call counted and the window's counts (rate trigger).
    pub rate: Option<(RateKey, RateCount)>,
    /// Why an alarm names nothing Guardrail may act on.
    pub problem: Option<String>,
    /// The role or user the call created: its account's place, and its own facts when its name
    /// must be contained ([`misnamed`]) and the caller is not contained instead.
    pub created: Option<(Placement, Option<PrincipalFacts>)>,
}

/// Whether the function has a rule for the event: findings about credentials, calls by IAM
/// roles and users, roles and users created, and alarm state changes.
pub fn handles(event: &Event) -> bool {
    match event {
        Event::Finding(f) => f.access_key.is_some(),
        Event::ApiCall(call) => {
            matches!(
                call.principal,
                Principal::AssumedRole { .. } | Principal::IamUser { .. }
            ) || created_kind(call).is_some()
        }
        Event::Alarm(_) => true,
        _ => false,
    }
}

/// What the rule must know; `Needs::Nothing` when the event alone decides (to ignore it).
pub fn needs(event: &Event, policy: &Policy) -> Result<Needs, Rejection> {
    Ok(match screen(event, policy)? {
        Screen::Ignore(_) => Needs::Nothing,
        Screen::Principal(p) => Needs::Principal(p),
        Screen::Rate(key) => Needs::Rate(key),
        Screen::Created { principal, rate } => Needs::Created { principal, rate },
        Screen::Alarm => Needs::AlarmRole,
    })
}

/// The event's verdict before any read.
enum Screen {
    Ignore(Ignored),
    Principal(PrincipalRef),
    Rate(RateKey),
    Created {
        principal: PrincipalRef,
        rate: Option<RateKey>,
    },
    Alarm,
}

fn screen(event: &Event, policy: &Policy) -> Result<Screen, Rejection> {
    match event {
        Event::Finding(f) => screen_finding(f),
        Event::ApiCall(call) => screen_call(call, policy),
        Event::Alarm(a) if a.state != "ALARM" => Ok(Screen::Ignore(Ignored::AlarmNotFiring {
            state: clip(&a.state, 40),
        })),
        Event::Alarm(_) => Ok(Screen::Alarm),
        _ => Ok(Screen::Ignore(Ignored::NotHandled { event: event.label() })),
    }
}

fn screen_finding(f: &Finding) -> Result<Screen, Rejection> {
    if f.sample {
        return Ok(Screen::Ignore(Ignored::SampleFinding));
    }
    if f.archived {
        return Ok(Screen::Ignore(Ignored::ArchivedFinding));
    }
    let account = f
        .account
        .clone()
        .ok_or(Rejection::MissingField { field: "accountId" })?;
    let key = f.access_key.as_ref().ok_or(Rejection::MissingField {
        field: "resource.accessKeyDetails",
    })?;
    let kind = match key.user_type.as_deref() {
        Some("AssumedRole") => PrincipalKind::Role,
        Some("IAMUser") => PrincipalKind::User,
        other => {
            return Ok(Screen::Ignore(Ignored::NotContainable {
                what: format!(
                    "the finding is about a {} principal",
                    clip(other.unwrap_or("typeless"), 40)
                ),
            }));
        }
    };
    let name = key.user_name.as_deref().ok_or(Rejection::MissingField {
        field: "accessKeyDetails.userName",
    })?;
    PrincipalRef::new(account, kind, name)
        .map(Screen::Principal)
        .ok_or_else(|| Rejection::MalformedRecord {
            detail: format!("accessKeyDetails.userName {:?} is not an IAM name", clip(name, 70)),
        })
}

fn screen_call(call: &CloudTrailEvent, policy: &Policy) -> Result<Screen, Rejection> {
    let rate = screen_rate(call, policy)?;
    let Some((principal, _)) = created_to_check(call, policy) else {
        return Ok(rate);
    };
    Ok(Screen::Created {
        principal,
        rate: match rate {
            Screen::Rate(key) => Some(key),
            _ => None,
        },
    })
}

/// The IAM kind a `CreateRole`/`CreateUser` call made, and the naming rule's key for it.
fn created_kind(call: &CloudTrailEvent) -> Option<(PrincipalKind, &'static str)> {
    match (call.event_source.as_str(), call.event_name.as_str()) {
        ("iam.amazonaws.com", "CreateRole") => Some((PrincipalKind::Role, "iam:role")),
        ("iam.amazonaws.com", "CreateUser") => Some((PrincipalKind::User, "iam:user")),
        _ => None,
    }
}

/// The role or user the call created and the policy's naming rule for its kind, when it has
/// one. Named by the request, in the event's account; its state is read from IAM, not taken
/// from the event.
fn created_to_check<'p>(call: &CloudTrailEvent, policy: &'p Policy) -> Option<(PrincipalRef, &'p NamePattern)> {
    if call.error_code.is_some() {
        return None; // a failed call created nothing
    }
    let (kind, key) = created_kind(call)?;
    let pattern = policy.naming.resources.get(key)?;
    let field = match kind {
        PrincipalKind::Role => "roleName",
        PrincipalKind::User => "userName",
    };
    let name = select_strings(&call.request_parameters, field).first().copied()?;
    Some((PrincipalRef::new(call.account.clone()?, kind, name)?, pattern))
}

/// Whether the role or user a call created must be isolated for its name: `Ok` with the problem
/// when the name breaks the naming rule in an environment whose tag rule is in `enforce` (the
/// tag enforcer marks it `guardrail:violation=naming`; containment is this function's), or why not.
pub fn misnamed(call: &CloudTrailEvent, placement: &Placement, policy: &Policy) -> Result<String, Ignored> {
    let not_handled = || Ignored::NotHandled {
        event: call.event_name.clone(),
    };
    let (principal, pattern) = created_to_check(call, policy).ok_or_else(not_handled)?;
    if let Some(arn) = call.principal.arn().filter(|a| policy.is_exempt(a)) {
        return Err(Ignored::Exempt {
            principal: clip(arn, 200),
        });
    }
    let environment = placement
        .environment
        .as_deref()
        .and_then(|e| policy.environment(e))
        .ok_or_else(|| Ignored::UnmanagedAccount {
            account: placement.account.to_string(),
            ou: placement.ou_name.clone(),
        })?;
    let mode = environment.mode(Rule::Tags);
    if mode != Mode::Enforce {
        return Err(Ignored::NotEnforced {
            rule: Rule::Tags,
            environment: environment.name.clone(),
            mode,
        });
    }
    if pattern.matches(&environment.name, &principal.name) {
        return Err(Ignored::Compliant { checked: 1 });
    }
    let by = call
        .principal
        .arn()
        .map(|a| format!(" by {}", clip(a, 200)))
        .unwrap_or_default();
    Ok(format!(
        "{} {:?} was created{by} with a name that breaks the naming convention: it does not match {}",
        principal.kind.name(),
        principal.name,
        pattern.for_environment(&environment.name)
    ))
}

/// The caller's side of an API call: counted against its budget if it is an agent.
fn screen_rate(call: &CloudTrailEvent, policy: &Policy) -> Result<Screen, Rejection> {
    let Some(arn) = call.principal.arn() else {
        return Ok(Screen::Ignore(Ignored::NotContainable {
            what: "the call names no role or user".into(),
        }));
    };
    let budget = policy.quarantine.rate.as_ref();
    let by_pattern = policy.quarantine.agent_roles.iter().any(|p| p.matches(arn));
    // AWS's own roles cannot carry an agent tag worth a lookup.
    let by_tag = !by_pattern
        && budget.is_some_and(|b| b.tagged_agents)
        && !arn.contains(":role/aws-service-role/")
        && !arn.contains(":role/aws-reserved/");
    if !by_pattern && !by_tag {
        return Ok(Screen::Ignore(Ignored::NotAnAgent {
            principal: clip(arn, 200),
        }));
    }
    let Some(budget) = budget else {
        return Ok(Screen::Ignore(Ignored::NotHandled {
            event: "API calls (quarantine.rate is not set)".into(),
        }));
    };
    if PrincipalRef::from_arn(arn).is_none() {
        return Ok(Screen::Ignore(Ignored::NotContainable {
            what: format!("{} is not an IAM role or user ARN", clip(arn, 200)),
        }));
    }
    let event_id = call
        .event_id
        .clone()
        .ok_or(Rejection::MissingField { field: "eventID" })?;
    let time = call.event_time.ok_or(Rejection::MissingField { field: "eventTime" })?;
    let window = i64::try_from(budget.window.as_secs()).unwrap_or(60).max(1);
    let start = time.timestamp().div_euclid(window) * window;
    Ok(Screen::Rate(RateKey {
        principal_arn: arn.to_string(),
        counted_by_name: budget.per_event.contains_key(&call.event_name),
        event_name: call.event_name.clone(),
        event_id,
        window_start: DateTime::from_timestamp(start, 0).unwrap_or(time),
        window_secs: window,
        by_tag,
    }))
}

/// For a caller the policy recognises only by tag ([`RateKey::by_tag`]): why its call is not
/// counted, given its tags (`None`: the principal no longer exists).
pub fn untagged_caller(key: &RateKey, tags: Option<&[Tag]>, policy: &Policy) -> Option<Ignored> {
    let agent = tags.is_some_and(|t| policy.quarantine.is_agent(&key.principal_arn, t));
    (key.by_tag && !agent).then(|| Ignored::NotAnAgent {
        principal: clip(&key.principal_arn, 200),
    })
}

/// Whether the counts break the budget, and how: `21 RunInstances calls ... (budget 20)`.
pub fn over_budget(key: &RateKey, count: &RateCount, policy: &Policy) -> Option<String> {
    let budget = policy.quarantine.rate.as_ref()?;
    let window = format!(
        "the {}-second window from {}",
        key.window_secs,
        key.window_start.format("%H:%M:%SZ")
    );
    if let Some(limit) = budget
        .per_event
        .get(&key.event_name)
        .filter(|l| count.event_calls > **l)
    {
        return Some(format!(
            "{} {} calls in {window} (budget {limit})",
            count.event_calls, key.event_name
        ));
    }
    (count.calls > budget.calls).then(|| format!("{} calls in {window} (budget {})", count.calls, budget.calls))
}

/// The role an alarm watches, from its tag: a role name or ARN in the alarm's own account.
pub fn alarm_suspect(alarm: &AlarmChange, tag: Option<&str>, policy: &Policy) -> Result<PrincipalRef, String> {
    let key = &policy.quarantine.alarm_tag;
    let value = tag.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| {
        format!(
            "alarm {} has no tag {key} naming the role it watches",
            clip(&alarm.name, 100)
        )
    })?;
    let principal = if value.starts_with("arn:") {
        PrincipalRef::from_arn(value)
    } else {
        PrincipalRef::new(alarm.account.clone(), PrincipalKind::Role, value)
    }
    .ok_or_else(|| {
        format!(
            "the alarm's tag {key} = {:?} is not a role name or ARN",
            clip(value, 100)
        )
    })?;
    if principal.account != alarm.account {
        return Err(format!(
            "the alarm's tag {key} names a principal in account {}; an alarm may only name one in its own account {}",
            principal.account, alarm.account
        ));
    }
    Ok(principal)
}

/// Decides on an event the function handles, from what it needed to know.
pub fn decide(event: &Event, suspect: &Suspect, policy: &Policy) -> Result<Decision, Rejection> {
    if let Screen::Ignore(reason) = screen(event, policy)? {
        return Ok(Decision::Ignore { reason });
    }
    let account = event
        .account()
        .cloned()
        .ok_or(Rejection::MissingField { field: "account" })?;
    if let Some(problem) = &suspect.problem {
        let mut plan = Plan::new(
            Rule::Quarantine,
            Mode::Detect,
            account,
            "an alarm Guardrail cannot act on",
        );
        plan.region = event.region().cloned();
        plan.severity = Severity::Medium;
        if let Event::Alarm(a) = event {
            plan.cause = alarm_detail(a);
            plan.happened = Some(format!(
                "{} in account {}, but Guardrail cannot tell which role to contain.",
                alarm_detail(a),
                a.account
            ));
            plan.violation(a.arn.clone(), problem.clone());
        }
        return Ok(Decision::Act { plan: Box::new(plan) });
    }
    let trigger = match event {
        Event::ApiCall(call) => return Ok(decide_call(event, call, suspect, policy)),
        Event::Finding(f) => Trigger {
            source: TriggerSource::GuardDuty,
            id: f.id.clone(),
            detail: format!("{} (severity {})", clip(&f.finding_type, 120), f.severity),
            at: f.updated_at.unwrap_or_default(),
        },
        Event::Alarm(a) => Trigger {
            source: TriggerSource::Alarm,
            id: a.arn.clone(),
            detail: alarm_detail(a),
            at: a.time.unwrap_or_default(),
        },
        _ => return Ok(super::not_handled(event)),
    };
    let Some(facts) = &suspect.principal else {
        return Ok(super::not_handled(event));
    };
    Ok(contain(event, facts, trigger, Rule::Quarantine, policy))
}

/// An API call: the caller over its budget is contained; otherwise a role or user it created
/// with a forbidden name is isolated.
fn decide_call(event: &Event, call: &CloudTrailEvent, suspect: &Suspect, policy: &Policy) -> Decision {
    let at = |source, detail| Trigger {
        source,
        id: call.event_id.clone().unwrap_or_default(),
        detail,
        at: call.event_time.unwrap_or_default(),
    };
    let naming = suspect
        .created
        .as_ref()
        .map(|(placement, facts)| (misnamed(call, placement, policy), facts));
    if let Some((key, count)) = &suspect.rate {
        if let Some(detail) = over_budget(key, count, policy) {
            let Some(facts) = &suspect.principal else {
                return super::not_handled(event);
            };
            let mut decision = contain(event, facts, at(TriggerSource::Rate, detail), Rule::Quarantine, policy);
            if let (Decision::Act { plan }, Some((Ok(problem), _))) = (&mut decision, &naming) {
                plan.notes.push(format!(
                    "Also, the {problem}. Guardrail contains the caller; isolate or delete what it created by hand."
                ));
            }
            return decision;
        }
        // Within budget: a creation's own verdict says more than the count.
        if naming.is_none() {
            return Decision::Ignore {
                reason: Ignored::WithinBudget {
                    principal: clip(&key.principal_arn, 200),
                    calls: format!("{} call(s) in the window", count.calls),
                },
            };
        }
    }
    match naming {
        Some((Ok(problem), Some(facts))) => {
            contain(event, facts, at(TriggerSource::Naming, problem), Rule::Tags, policy)
        }
        Some((Err(reason), _)) => Decision::Ignore { reason },
        _ => super::not_handled(event),
    }
}

fn alarm_detail(a: &AlarmChange) -> String {
    format!(
        "alarm {} entered ALARM{}",
        clip(&a.name, 100),
        a.reason
            .as_deref()
            .map(|r| format!(": {}", clip(r, 200)))
            .unwrap_or_default()
    )
}

/// Why Guardrail must never contain this principal, if it must not.
fn protected(facts: &PrincipalFacts, arn: &str, policy: &Policy) -> Option<String> {
    let name = &facts.principal.name;
    if facts.management_account.as_ref() == Some(&facts.principal.account) {
        return Some("it is in the organization's management account".into());
    }
    if arn.contains(":role/aws-service-role/") {
        return Some("it is a service-linked role".into());
    }
    if name == ORGANIZATION_ACCESS_ROLE || *name == policy.baseline.bootstrap_role {
        return Some(format!("{name} is how the organization reaches the account"));
    }
    if policy.is_guardrail(arn) {
        return Some("it is one of Guardrail's own roles".into());
    }
    if policy.is_protected(arn) {
        return Some("the policy lists it under principals.protected".into());
    }
    None
}

/// Contains a principal as the environment's mode for `governing` allows: the quarantine rule's
/// for findings, budgets and alarms; the tag rule's for names.
fn contain(event: &Event, facts: &PrincipalFacts, trigger: Trigger, governing: Rule, policy: &Policy) -> Decision {
    let principal = &facts.principal;
    let Some(state) = &facts.state else {
        return Decision::Ignore {
            reason: Ignored::NotContainable {
                what: format!("{principal} no longer exists in account {}", principal.account),
            },
        };
    };
    let agent = policy.quarantine.is_agent(&state.arn, &state.tags);
    let wanted = match event {
        Event::Finding(f) => match policy.quarantine.response_for(&f.finding_type, f.severity, agent) {
            Some(r) => r,
            None => {
                return Decision::Ignore {
                    reason: Ignored::NoFindingRule {
                        finding_type: clip(&f.finding_type, 120),
                        severity: f.severity,
                    },
                };
            }
        },
        _ => Response::Isolate,
    };
    let Some(environment) = facts
        .placement
        .environment
        .as_deref()
        .and_then(|e| policy.environment(e))
    else {
        return Decision::Ignore {
            reason: Ignored::UnmanagedAccount {
                account: principal.account.to_string(),
                ou: facts.placement.ou_name.clone(),
            },
        };
    };
    let mode = environment.mode(governing);
    let response = match mode {
        Mode::Off => {
            return Decision::Ignore {
                reason: Ignored::RuleOff {
                    rule: governing,
                    environment: environment.name.clone(),
                },
            };
        }
        Mode::Detect => None,
        // Containment is for enforce; fix goes no further than revoking sessions.
        Mode::Fix => Some(wanted.min(Response::RevokeSessions)),
        Mode::Enforce => Some(wanted),
    };
    let active = facts.record.as_ref().filter(|r| r.is_active());
    if let (Some(record), Some(response)) = (active, response)
        && record.response >= response
    {
        return Decision::Ignore {
            reason: Ignored::AlreadyQuarantined {
                principal: principal.to_string(),
                response: record.response.name().into(),
            },
        };
    }

    let mut plan = Plan::new(Rule::Quarantine, mode, principal.account.clone(), principal.to_string());
    plan.region = event.region().cloned();
    plan.environment = Some(environment.name.clone());
    plan.cause = trigger.detail.clone();
    plan.severity = match response {
        Some(Response::Isolate) => Severity::Critical,
        _ => Severity::High,
    };
    let what = match trigger.source {
        TriggerSource::GuardDuty => format!("GuardDuty reports {}", trigger.detail),
        TriggerSource::Rate => format!("the agent made {}", trigger.detail),
        _ => trigger.detail.clone(),
    };
    plan.happened = Some(match event {
        Event::Finding(f) => format!(
            "GuardDuty reports {} (severity {}) for {principal} in account {}{}",
            clip(&f.finding_type, 120),
            f.severity,
            principal.account,
            f.title
                .as_deref()
                .map(|t| format!(": {}", clip(t, 200)))
                .unwrap_or_else(|| ".".into())
        ),
        _ => format!("{principal} in account {}: {what}.", principal.account),
    });
    if let Event::Finding(f) = event {
        plan.notes
            .push(format!("The finding in the GuardDuty console: {}", console_link(f)));
    }
    if let Some(reason) = protected(facts, &state.arn, policy) {
        plan.violation(
            state.arn.clone(),
            format!("{what}; Guardrail never quarantines it: {reason}"),
        );
        plan.notes.push(format!(
            "Contain {principal} by hand if the finding is real: it is outside what Guardrail may touch."
        ));
        return Decision::Act { plan: Box::new(plan) };
    }
    plan.fixable_violation(state.arn.clone(), what);
    let Some(response) = response else {
        plan.notes.push(format!(
            "In enforce mode Guardrail would {} {principal}.",
            wanted.name().replace('-', " ")
        ));
        waive(&mut plan, state, governing, facts.read_at, policy);
        return Decision::Act { plan: Box::new(plan) };
    };

    let policy_name = policy.quarantine.inline_policy.clone();
    let issued_before = (response == Response::RevokeSessions).then_some(facts.read_at);
    let finding_key = match event {
        Event::Finding(f) => f.access_key.as_ref().and_then(|k| k.access_key_id.clone()),
        _ => None,
    };
    let deactivate: Vec<String> = state
        .access_keys
        .iter()
        .filter(|k| k.active)
        .filter(|k| {
            response == Response::Isolate
                // Revoking sessions cannot stop a long-term key: the stolen key itself goes.
                || (finding_key.as_deref() == Some(k.id.as_str()) && k.id.starts_with("AKIA"))
        })
        .map(|k| k.id.clone())
        .collect();
    let record = match active {
        // Revoked sessions become an isolation: what was there before stays the prior state.
        Some(old) => QuarantineRecord {
            response,
            revoked_before: old.revoked_before,
            triggers: old.triggers.iter().cloned().chain([trigger]).collect(),
            deactivated_keys: old
                .deactivated_keys
                .iter()
                .chain(&deactivate)
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            version: old.version + 1,
            ..old.clone()
        },
        // A quarantine begun earlier and not finished holds the prior state Guardrail may since
        // have replaced (the boundary): it stays the prior state.
        None => {
            let begun = facts.record.as_ref().filter(|r| r.is_pending());
            let id = trigger.id.clone();
            QuarantineRecord {
                principal: principal.clone(),
                response,
                since: begun.map_or(facts.read_at, |b| b.since),
                revoked_before: issued_before,
                policy_name: policy_name.clone(),
                triggers: begun
                    .map(|b| b.triggers.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|t| t.id != id)
                    .chain([trigger])
                    .collect(),
                prior: begun.map_or_else(|| state.without_guardrail(&policy_name), |b| b.prior.clone()),
                deactivated_keys: deactivate.clone(),
                version: facts.record.as_ref().map_or(1, |r| r.version + 1),
                released: None,
                pending: false,
            }
        }
    };
    let region = plan.region.clone().unwrap_or_else(|| home_region(policy));
    // A role is isolated through its permissions boundary too: an agent can fill its inline
    // policy quota beforehand, but not the one boundary slot Guardrail replaces.
    let isolation = (response == Response::Isolate && principal.kind == PrincipalKind::Role)
        .then(|| isolation_boundary_arn(region.partition(), &principal.account));
    let begin = isolation.is_some() && active.is_none();
    plan.actions = quarantine_actions(record, issued_before, deactivate, region, isolation, begin);
    plan.undo.push(principal.release_command());
    plan.notes.push(format!(
        "Release it, once the cause is understood, with: {}",
        principal.release_command()
    ));
    waive(&mut plan, state, governing, facts.read_at, policy);
    Decision::Act { plan: Box::new(plan) }
}

/// Holds the plan back when the principal carries a waiver for `rule` (the alert still goes
/// out: a finding on a waived role is news); a waiver that does not hold is only noted.
fn waive(plan: &mut Plan, state: &PrincipalState, rule: Rule, at: DateTime<Utc>, policy: &Policy) {
    match waiver::standing(&state.tags, rule, at, policy) {
        Standing::Valid(w) => plan.hold_back(
            Hold::Waived,
            format!(
                "{} exempts {} from the {} rule: nothing was changed. Remove its {} tag to let Guardrail act.",
                w.describe(),
                state.arn,
                rule.name(),
                waiver::WAIVER_TAG
            ),
        ),
        other => plan.notes.extend(other.problem()),
    }
}

/// The actions that put a principal in quarantine as `record` says. The tag comes first: the
/// SCP (`QuarantineStaysUntilReleased`) protects the policies of a principal so tagged, so the
/// deny policy is never in place unprotected, not even for a moment or after a failed tagging
/// call. Isolating a role replaces its permissions boundary (`isolation`) after the deny, and
/// after a pending record (`begin`) has kept the boundary it replaces. The record of the
/// finished quarantine comes last: an active record means everything before it was done.
fn quarantine_actions(
    mut record: QuarantineRecord,
    issued_before: Option<DateTime<Utc>>,
    deactivate: Vec<String>,
    region: Region,
    isolation: Option<String>,
    begin: bool,
) -> Vec<Action> {
    let principal = record.principal.clone();
    let mut actions = vec![
        Action::Tag {
            api: tag_api(principal.kind),
            region,
            resources: vec![principal.name.clone()],
            set: vec![Tag::new(QUARANTINE_TAG, record.tag_value())],
            remove: Vec::new(),
        },
        Action::Deny {
            principal: principal.clone(),
            policy_name: record.policy_name.clone(),
            issued_before,
        },
    ];
    if let Some(boundary) = isolation {
        if begin {
            actions.push(Action::SaveQuarantine {
                record: Box::new(QuarantineRecord {
                    pending: true,
                    ..record.clone()
                }),
            });
            record.version += 1;
        }
        actions.push(Action::SetBoundary {
            principal: principal.clone(),
            boundary: Some(boundary),
        });
    }
    if !deactivate.is_empty() {
        actions.push(Action::SetAccessKeys {
            user: principal,
            keys: deactivate,
            active: false,
        });
    }
    actions.push(Action::SaveQuarantine {
        record: Box::new(record),
    });
    actions
}

fn tag_api(kind: PrincipalKind) -> TagApi {
    match kind {
        PrincipalKind::Role => TagApi::IamRole,
        PrincipalKind::User => TagApi::IamUser,
    }
}

/// IAM is global; tagging calls still need a region to sign for.
fn home_region(policy: &Policy) -> Region {
    policy
        .baseline
        .regions
        .first()
        .cloned()
        .or_else(|| Region::parse("us-east-1"))
        .unwrap_or_else(|| unreachable!("us-east-1 is a region"))
}

/// The finding in the GuardDuty console of the account the finding came through.
pub fn console_link(f: &Finding) -> String {
    let region = f.region.as_ref().map_or("us-east-1", Region::as_str);
    let host = match f.region.as_ref().map(Region::partition) {
        Some("aws-us-gov") => format!("console.amazonaws-us-gov.com/guardduty/home?region={region}"),
        Some("aws-cn") => format!("console.amazonaws.cn/guardduty/home?region={region}"),
        _ => format!("{region}.console.aws.amazon.com/guardduty/home?region={region}"),
    };
    let id: String = f.id.chars().filter(char::is_ascii_alphanumeric).take(64).collect();
    format!("https://{host}#/findings?macros=current&fId={id}")
}

/// Why a release cannot go ahead.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ReleaseRefused(pub String);

/// Plans the release of a principal: remove exactly what Guardrail added, reactivate the keys it
/// deactivated, and record who released it and why. Changes others made meanwhile are reported,
/// not reverted.
pub fn plan_release(
    facts: &PrincipalFacts,
    region: Region,
    by: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Plan, ReleaseRefused> {
    let principal = &facts.principal;
    let record = facts.record.as_ref().filter(|r| r.is_open()).ok_or_else(|| {
        ReleaseRefused(format!(
            "{principal} in account {} is not quarantined{}: nothing to release",
            principal.account,
            match facts.record.as_ref().and_then(|r| r.released.as_ref()) {
                Some(r) => format!(" (released by {} at {})", r.by, r.at.format("%Y-%m-%d %H:%M:%SZ")),
                None => String::new(),
            }
        ))
    })?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ReleaseRefused(
            "give the reason the principal is safe again with --reason".into(),
        ));
    }
    let mut plan = Plan::new(
        Rule::Quarantine,
        Mode::Enforce,
        principal.account.clone(),
        principal.to_string(),
    );
    plan.region = Some(region.clone());
    plan.environment = facts.placement.environment.clone();
    plan.severity = Severity::Medium;
    plan.cause = format!("released by {by}: {}", clip(reason, 300));
    let since = record.since.format("%Y-%m-%d %H:%M:%SZ");
    match &facts.state {
        None => plan
            .notes
            .push(format!("{principal} no longer exists; only the record is closed.")),
        Some(state) => {
            if state.inline_policies.contains(&record.policy_name) {
                plan.actions.push(Action::RemoveDeny {
                    principal: principal.clone(),
                    policy_name: record.policy_name.clone(),
                });
            }
            if state.permissions_boundary.as_deref().is_some_and(is_isolation_boundary) {
                plan.actions.push(Action::SetBoundary {
                    principal: principal.clone(),
                    boundary: record.prior.permissions_boundary.clone(),
                });
            }
            if state.tags.iter().any(|t| t.is(QUARANTINE_TAG)) {
                plan.actions.push(Action::Tag {
                    api: tag_api(principal.kind),
                    region,
                    resources: vec![principal.name.clone()],
                    set: Vec::new(),
                    remove: vec![QUARANTINE_TAG.to_string()],
                });
            }
            let reactivate: Vec<String> = state
                .access_keys
                .iter()
                .filter(|k| !k.active && record.deactivated_keys.contains(&k.id))
                .map(|k| k.id.clone())
                .collect();
            if !reactivate.is_empty() {
                plan.actions.push(Action::SetAccessKeys {
                    user: principal.clone(),
                    keys: reactivate,
                    active: true,
                });
            }
            for change in record.prior.changes_since(state, &record.policy_name) {
                plan.notes
                    .push(format!("Changed while quarantined, left as it is now: {change}"));
            }
        }
    }
    plan.fixable_violation(
        record.prior.arn.clone(),
        format!(
            "quarantined ({}) since {since} after {}",
            record.response.name(),
            record
                .triggers
                .last()
                .map(|t| t.detail.as_str())
                .unwrap_or("an unrecorded trigger")
        ),
    );
    plan.actions.push(Action::SaveQuarantine {
        record: Box::new(QuarantineRecord {
            version: record.version + 1,
            released: Some(Release {
                by: by.to_string(),
                reason: reason.to_string(),
                at,
            }),
            ..record.clone()
        }),
    });
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::event::decode_value;
    use crate::facts::Placement;
    use crate::ids::AccountId;
    use crate::quarantine::{AccessKeyState, PrincipalState};

    const EXFILTRATION: &str = include_str!("../../../events/agent-quarantine/finding-credential-exfiltration.json");
    const ANOMALOUS_USER: &str =
        include_str!("../../../events/agent-quarantine/finding-anomalous-user-pascalcase.json");
    const ALARM: &str = include_str!("../../../events/agent-quarantine/alarm-state-change.json");
    const AGENT_CALL: &str = include_str!("../../../events/agent-quarantine/agent-run-instances.json");
    const CREATE_ROLE: &str = include_str!("../../../events/tag-enforcer/create-role.json");
    const ACCOUNT: &str = "111122223333";

    /// The built-in policy plus a `staging` environment running quarantine in fix mode and an
    /// `audit` one running it in detect mode.
    fn policy() -> Policy {
        let text = format!(
            "{}\n[environments.staging]\nou = \"staging\"\n[environments.staging.modes]\nquarantine = \"fix\"\n[environments.audit]\n[environments.audit.modes]\nquarantine = \"detect\"\n",
            crate::policy::BUILTIN_POLICY
        );
        Policy::from_toml(&text, "test").expect("policy")
    }

    fn event(text: &str, edit: impl FnOnce(&mut Value)) -> Event {
        let mut v: Value = serde_json::from_str(text).expect("JSON");
        edit(&mut v);
        decode_value(v).remove(0).unwrap_or_else(|r| panic!("{r}"))
    }

    fn at(s: &str) -> DateTime<Utc> {
        crate::event::time::parse(s).expect("time")
    }

    fn role(name: &str, path: &str, environment: &str) -> PrincipalFacts {
        let account = AccountId::parse(ACCOUNT).expect("account");
        PrincipalFacts {
            principal: PrincipalRef::new(account.clone(), PrincipalKind::Role, name).expect("name"),
            placement: Placement {
                account,
                ou_id: Some("ou-1".into()),
                ou_name: Some(environment.into()),
                environment: Some(environment.into()),
            },
            management_account: AccountId::parse("123456789012"),
            state: Some(PrincipalState {
                arn: format!("arn:aws:iam::{ACCOUNT}:role{path}{name}"),
                inline_policies: vec!["app-access".into()],
                attached_policies: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
                permissions_boundary: None,
                tags: vec![Tag::new("team", "ml")],
                access_keys: Vec::new(),
            }),
            record: None,
            read_at: at("2026-11-22T09:41:00Z"),
        }
    }

    fn user(name: &str, keys: &[(&str, bool)]) -> PrincipalFacts {
        let mut facts = role(name, "/", "dev");
        facts.principal.kind = PrincipalKind::User;
        if let Some(state) = facts.state.as_mut() {
            state.arn = format!("arn:aws:iam::{ACCOUNT}:user/{name}");
            state.access_keys = keys
                .iter()
                .map(|(id, active)| AccessKeyState {
                    id: id.to_string(),
                    active: *active,
                })
                .collect();
        }
        facts
    }

    fn decide_with(event: &Event, facts: PrincipalFacts) -> Decision {
        let suspect = Suspect {
            principal: Some(facts),
            ..Suspect::default()
        };
        decide(event, &suspect, &policy()).expect("decision")
    }

    fn plan_of(d: Decision) -> Plan {
        match d {
            Decision::Act { plan } => *plan,
            Decision::Ignore { reason } => panic!("ignored: {reason}"),
        }
    }

    fn ignored(d: Decision) -> Ignored {
        match d {
            Decision::Ignore { reason } => reason,
            Decision::Act { plan } => panic!("acted: {:?}", plan.actions),
        }
    }

    /// The record of the finished quarantine (after a pending one, when the plan writes one).
    fn saved(plan: &Plan) -> QuarantineRecord {
        plan.actions
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::SaveQuarantine { record } if !record.pending => Some((**record).clone()),
                _ => None,
            })
            .expect("a record is saved")
    }

    #[test]
    fn a_role_is_isolated_through_its_boundary_too_after_a_record_keeps_the_one_it_replaces() {
        let alarm = event(ALARM, |_| {});
        let mut facts = role("agent-runner", "/", "dev");
        let prior = "arn:aws:iam::111122223333:policy/agent-limits";
        if let Some(s) = facts.state.as_mut() {
            s.permissions_boundary = Some(prior.into());
        }
        let plan = plan_of(decide_with(&alarm, facts.clone()));
        let kinds: Vec<&str> = plan
            .actions
            .iter()
            .map(|a| match a {
                Action::Tag { .. } => "tag",
                Action::Deny { .. } => "deny",
                Action::SaveQuarantine { record } if record.pending => "begin",
                Action::SetBoundary { .. } => "boundary",
                Action::SaveQuarantine { .. } => "record",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["tag", "deny", "begin", "boundary", "record"]);
        let Action::SetBoundary { boundary: Some(b), .. } = &plan.actions[3] else {
            panic!("{:?}", plan.actions[3])
        };
        assert_eq!(b, "arn:aws:iam::111122223333:policy/guardrail-isolate");
        assert_eq!(plan.actions[3].risk(), Some("isolate"));
        let record = saved(&plan);
        assert_eq!(
            (
                record.prior.permissions_boundary.as_deref(),
                record.version,
                record.pending
            ),
            (Some(prior), 2, false)
        );

        // A retry after the boundary went on but before the record: the pending record's prior
        // boundary is kept, not Guardrail's.
        let Action::SaveQuarantine { record: begun } = &plan.actions[2] else {
            panic!("{:?}", plan.actions[2])
        };
        let mut retried = facts.clone();
        retried.record = Some((**begun).clone());
        if let Some(s) = retried.state.as_mut() {
            s.permissions_boundary = Some(b.clone());
            s.inline_policies.push("guardrail-quarantine".into());
            s.tags.push(Tag::new(QUARANTINE_TAG, "isolate"));
        }
        let again = saved(&plan_of(decide_with(&alarm, retried.clone())));
        assert_eq!(again.prior.permissions_boundary.as_deref(), Some(prior));
        assert_eq!((again.version, again.triggers.len()), (begun.version + 2, 1));

        // The release puts the prior boundary back, and reports no change for it.
        retried.record = Some(again);
        let region = Region::parse("us-east-1").expect("region");
        let release = plan_release(
            &retried,
            region,
            "arn:aws:iam::1:role/oncall",
            "fixed",
            at("2026-11-23T00:00:00Z"),
        )
        .expect("release");
        assert!(
            release
                .actions
                .iter()
                .any(|a| matches!(a, Action::SetBoundary { boundary: Some(p), .. } if p == prior)),
            "{:?}",
            release.actions
        );
        assert!(
            !release.notes.iter().any(|n| n.contains("permissions boundary")),
            "{:?}",
            release.notes
        );
        // Users and revoked sessions keep no boundary of Guardrail's.
        let finding = event(EXFILTRATION, |_| {});
        let revoked = plan_of(decide_with(&finding, role("agent-runner", "/", "dev")));
        assert!(!revoked.actions.iter().any(|a| matches!(a, Action::SetBoundary { .. })));
    }

    #[test]
    fn exfiltrated_role_credentials_revoke_sessions_issued_before_the_decision() {
        let finding = event(EXFILTRATION, |_| {});
        assert!(matches!(needs(&finding, &policy()), Ok(Needs::Principal(p)) if p.name == "agent-runner"));
        // A non-agent role: the first line of the table (any principal) applies.
        let plan = plan_of(decide_with(&finding, role("agent-runner", "/apps/", "dev")));
        let read_at = at("2026-11-22T09:41:00Z");
        assert_eq!(plan.severity, Severity::High);
        // The tag that protects the deny policy goes on first (SCP QuarantineStaysUntilReleased).
        assert!(
            matches!(&plan.actions[1], Action::Deny { issued_before: Some(t), policy_name, .. }
            if *t == read_at && policy_name == "guardrail-quarantine")
        );
        assert!(matches!(&plan.actions[0], Action::Tag { api: TagApi::IamRole, set, .. }
            if set[0].key == QUARANTINE_TAG
                && set[0].value == "revoke-sessions 2026-11-22T09:41:00Z guardduty:a4c9e2f07b1d4e6f8a2b3c4d5e6f7081"));
        let record = saved(&plan);
        assert_eq!(
            (record.response, record.version, record.revoked_before),
            (Response::RevokeSessions, 1, Some(read_at))
        );
        assert_eq!(record.prior.inline_policies, ["app-access"]);
        assert!(plan.notes.iter().any(|n| n.contains(
            "https://us-east-1.console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?macros=current&fId=a4c9e2f07b1d4e6f8a2b3c4d5e6f7081"
        )));
        assert_eq!(
            plan.undo,
            [format!(
                "guardrail release --account {ACCOUNT} --role agent-runner --reason \"<why it is safe>\""
            )]
        );
    }

    #[test]
    fn the_finding_table_isolates_agents_and_ignores_what_it_does_not_list() {
        let anomalous = event(ANOMALOUS_USER, |v| {
            v["Type"] = json!("Discovery:IAMUser/AnomalousBehavior")
        });
        // The same finding: an agent user is isolated; anyone else is left to people.
        let mut agent = user(
            "agent-ci",
            &[("AKIAEXAMPLEAGENTCI01", true), ("AKIAEXAMPLEAGENTCI02", true)],
        );
        if let Some(s) = agent.state.as_mut() {
            s.tags.push(Tag::new("guardrail:agent", "true"));
        }
        let plan = plan_of(decide_with(&anomalous, agent));
        assert_eq!(plan.severity, Severity::Critical);
        assert!(matches!(
            &plan.actions[1],
            Action::Deny {
                issued_before: None,
                ..
            }
        ));
        assert!(
            plan.actions
                .iter()
                .any(|a| matches!(a, Action::SetAccessKeys { keys, active: false, .. }
            if keys.len() == 2))
        );
        let person = user("alice", &[("AKIAEXAMPLEALICE0001", true)]);
        assert!(matches!(
            ignored(decide_with(&anomalous, person)),
            Ignored::NoFindingRule { .. }
        ));
        // Severity 7 and above isolates agents whatever the type.
        let severe = event(ANOMALOUS_USER, |v| {
            v["Type"] = json!("Recon:IAMUser/MaliciousIPCaller");
            v["Severity"] = json!(7.5);
        });
        let plan = plan_of(decide_with(&severe, role("agent-runner", "/", "dev")));
        assert_eq!(saved(&plan).response, Response::Isolate);
    }

    #[test]
    fn revoking_a_user_deactivates_only_the_stolen_long_term_key() {
        let finding = event(ANOMALOUS_USER, |v| {
            v["Type"] = json!("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS")
        });
        let plan = plan_of(decide_with(
            &finding,
            user(
                "agent-ci",
                &[("AKIAEXAMPLEAGENTCI01", true), ("AKIAEXAMPLEOTHER0001", true)],
            ),
        ));
        let keys: Vec<&Action> = plan
            .actions
            .iter()
            .filter(|a| matches!(a, Action::SetAccessKeys { .. }))
            .collect();
        assert!(matches!(keys.as_slice(), [Action::SetAccessKeys { keys, .. }] if keys == &["AKIAEXAMPLEAGENTCI01"]));
    }

    #[test]
    fn protected_principals_get_an_alert_and_no_action() {
        let finding = event(EXFILTRATION, |_| {});
        let mut management = role("agent-runner", "/", "dev");
        management.management_account = AccountId::parse(ACCOUNT);
        let cases = [
            (
                role("OrganizationAccountAccessRole", "/", "dev"),
                "how the organization reaches",
            ),
            (
                role(
                    "AWSServiceRoleForSupport",
                    "/aws-service-role/support.amazonaws.com/",
                    "dev",
                ),
                "service-linked",
            ),
            (role("guardrail-agent-quarantine", "/", "dev"), "Guardrail's own"),
            (role("break-glass-admin", "/", "dev"), "principals.protected"),
            (management, "management account"),
        ];
        for (facts, why) in cases {
            let name = facts.principal.name.clone();
            let plan = plan_of(decide_with(&finding, facts));
            assert!(plan.actions.is_empty(), "{name}: {:?}", plan.actions);
            assert!(
                plan.violations.iter().any(|v| !v.fixable && v.problem.contains(why)),
                "{name}: {:?}",
                plan.violations
            );
        }
    }

    #[test]
    fn modes_decide_how_far_guardrail_goes() {
        let alarm = event(ALARM, |_| {});
        // detect: report what enforce would do.
        let plan = plan_of(decide_with(&alarm, role("agent-runner", "/", "audit")));
        assert!(plan.actions.is_empty());
        assert!(
            plan.notes.iter().any(|n| n.contains("would isolate role agent-runner")),
            "{:?}",
            plan.notes
        );
        // fix stops at revoking sessions.
        let plan = plan_of(decide_with(&alarm, role("agent-runner", "/", "staging")));
        assert_eq!(saved(&plan).response, Response::RevokeSessions);
        // enforce isolates.
        let plan = plan_of(decide_with(&alarm, role("agent-runner", "/", "dev")));
        assert_eq!(saved(&plan).response, Response::Isolate);
    }

    #[test]
    fn an_isolated_role_stays_isolated_and_revoked_sessions_escalate_keeping_the_prior_state() {
        let alarm = event(ALARM, |_| {});
        let first = saved(&plan_of(decide_with(&alarm, role("agent-runner", "/", "dev"))));
        let mut isolated = role("agent-runner", "/", "dev");
        isolated.record = Some(first);
        assert!(matches!(
            ignored(decide_with(&alarm, isolated)),
            Ignored::AlreadyQuarantined { .. }
        ));

        let finding = event(EXFILTRATION, |_| {});
        let revoked = saved(&plan_of(decide_with(&finding, role("agent-runner", "/", "dev"))));
        let mut now = role("agent-runner", "/", "dev");
        if let Some(s) = now.state.as_mut() {
            s.inline_policies.push("guardrail-quarantine".into());
            s.tags.push(Tag::new(QUARANTINE_TAG, "revoke-sessions"));
        }
        now.record = Some(revoked.clone());
        let escalated = saved(&plan_of(decide_with(&alarm, now)));
        assert_eq!(escalated.response, Response::Isolate);
        assert_eq!((escalated.version, escalated.since), (2, revoked.since));
        assert_eq!(
            escalated.prior, revoked.prior,
            "Guardrail's own policy never becomes prior state"
        );
        assert_eq!(escalated.triggers.len(), 2);
    }

    #[test]
    fn samples_archived_findings_and_quiet_alarms_are_ignored_unread() {
        let sample = event(EXFILTRATION, |v| {
            v["detail"]["service"]["additionalInfo"]["sample"] = json!(true)
        });
        let archived = event(EXFILTRATION, |v| v["detail"]["service"]["archived"] = json!(true));
        let ok = event(ALARM, |v| v["detail"]["state"]["value"] = json!("OK"));
        let root = event(EXFILTRATION, |v| {
            v["detail"]["resource"]["accessKeyDetails"]["userType"] = json!("Root")
        });
        for e in [sample, archived, ok, root] {
            assert_eq!(needs(&e, &policy()), Ok(Needs::Nothing), "{}", e.label());
            assert!(matches!(
                decide(&e, &Suspect::default(), &policy()),
                Ok(Decision::Ignore { .. })
            ));
        }
        let hostile = event(EXFILTRATION, |v| {
            v["detail"]["resource"]["accessKeyDetails"]["userName"] = json!("../../etc/passwd")
        });
        assert_eq!(
            needs(&hostile, &policy()).map_err(|r| r.code()),
            Err("malformed-record")
        );
    }

    #[test]
    fn the_budget_is_broken_by_the_call_after_the_last_allowed_one() {
        let policy = policy();
        let key = |name: &str| RateKey {
            principal_arn: format!("arn:aws:iam::{ACCOUNT}:role/agents/planner"),
            event_name: name.into(),
            event_id: "e".into(),
            window_start: at("2026-11-22T11:30:00Z"),
            window_secs: 60,
            counted_by_name: policy
                .quarantine
                .rate
                .as_ref()
                .is_some_and(|r| r.per_event.contains_key(name)),
            by_tag: false,
        };
        let count = |calls, event_calls| RateCount { calls, event_calls };
        assert_eq!(over_budget(&key("ListBuckets"), &count(300, 0), &policy), None);
        assert!(over_budget(&key("ListBuckets"), &count(301, 0), &policy).is_some_and(|d| d.contains("301 calls")));
        assert_eq!(over_budget(&key("RunInstances"), &count(20, 20), &policy), None);
        assert!(
            over_budget(&key("RunInstances"), &count(21, 21), &policy)
                .is_some_and(|d| d.starts_with("21 RunInstances calls") && d.contains("budget 20"))
        );
    }

    #[test]
    fn a_caller_recognised_only_by_tag_is_counted_once_its_tags_show_an_agent() {
        let call_by = |arn: &str| {
            event(AGENT_CALL, |v| {
                v["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = json!(arn)
            })
        };
        let builder = format!("arn:aws:iam::{ACCOUNT}:role/apps/builder");
        // By default only agent_roles patterns count: the tag is never looked up.
        assert_eq!(needs(&call_by(&builder), &policy()), Ok(Needs::Nothing));

        let counting = Policy::from_toml(
            &crate::policy::BUILTIN_POLICY.replace("tagged_agents = false", "tagged_agents = true"),
            "test",
        )
        .expect("policy");
        let Ok(Needs::Rate(key)) = needs(&call_by(&builder), &counting) else {
            panic!("a role outside the patterns is a candidate")
        };
        assert!(key.by_tag);
        let tagged = [Tag::new("guardrail:agent", "true")];
        assert_eq!(untagged_caller(&key, Some(&tagged), &counting), None);
        // IAM keeps one tag whatever the case of its key: Guardrail:Agent is the agent tag.
        let spelled = [Tag::new("Guardrail:Agent", "true")];
        assert_eq!(untagged_caller(&key, Some(&spelled), &counting), None);
        for tags in [Some(&[Tag::new("guardrail:agent", "false")][..]), Some(&[][..]), None] {
            assert!(matches!(
                untagged_caller(&key, tags, &counting),
                Some(Ignored::NotAnAgent { .. })
            ));
        }
        // A pattern match needs no tags; AWS's own roles are never looked up.
        let Ok(Needs::Rate(key)) = needs(
            &call_by(&format!("arn:aws:iam::{ACCOUNT}:role/agents/planner")),
            &counting,
        ) else {
            panic!("an agent by pattern")
        };
        assert!(!key.by_tag && untagged_caller(&key, None, &counting).is_none());
        for arn in [
            format!(
                "arn:aws:iam::{ACCOUNT}:role/aws-service-role/ops.apigateway.amazonaws.com/AWSServiceRoleForAPIGateway"
            ),
            format!("arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef"),
        ] {
            assert_eq!(needs(&call_by(&arn), &counting), Ok(Needs::Nothing), "{arn}");
        }
    }

    /// The test policy with a naming rule for roles and users.
    fn naming_policy() -> Policy {
        let text = format!(
            "{}\n[naming.resources]\n\"iam:role\" = \"^{{env}}-[a-z0-9-]{{3,48}}$\"\n\"iam:user\" = \"^{{env}}-[a-z0-9-]{{3,48}}$\"\n",
            crate::policy::BUILTIN_POLICY
        );
        Policy::from_toml(&text, "test").expect("policy")
    }

    fn placed(environment: &str) -> Placement {
        role("x", "/", environment).placement
    }

    #[test]
    fn a_role_created_with_a_forbidden_name_is_isolated_where_the_tag_rule_enforces() {
        let policy = naming_policy();
        let create = |name: &str| {
            event(CREATE_ROLE, |v| {
                v["detail"]["requestParameters"]["roleName"] = json!(name)
            })
        };
        let Event::ApiCall(call) = create("build-helper") else {
            panic!("not a call")
        };
        // The creator is an agent: its call is counted as well; the role is named by the request.
        let Ok(Needs::Created {
            principal,
            rate: Some(_),
        }) = needs(&create("build-helper"), &policy)
        else {
            panic!("a creation to check")
        };
        assert_eq!(
            (principal.kind, principal.name.as_str()),
            (PrincipalKind::Role, "build-helper")
        );
        // Without a naming rule for roles there is nothing to check.
        assert!(matches!(
            needs(&create("build-helper"), &Policy::builtin().expect("policy")),
            Ok(Needs::Rate(_))
        ));

        assert!(misnamed(&call, &placed("agents"), &policy).is_ok_and(|p| p.contains("does not match ^agents-")));
        assert!(matches!(
            misnamed(&call, &placed("dev"), &policy),
            Err(Ignored::NotEnforced {
                rule: Rule::Tags,
                mode: Mode::Fix,
                ..
            })
        ));
        assert!(matches!(
            misnamed(&call, &placed("nowhere"), &policy),
            Err(Ignored::UnmanagedAccount { .. })
        ));
        let Event::ApiCall(good) = create("agents-build-helper") else {
            panic!("not a call")
        };
        assert_eq!(
            misnamed(&good, &placed("agents"), &policy),
            Err(Ignored::Compliant { checked: 1 })
        );

        let facts = role("build-helper", "/", "agents");
        let suspect = Suspect {
            created: Some((facts.placement.clone(), Some(facts))),
            ..Suspect::default()
        };
        let plan = plan_of(decide(&create("build-helper"), &suspect, &policy).expect("decision"));
        assert_eq!(
            (plan.rule, plan.mode, plan.severity),
            (Rule::Quarantine, Mode::Enforce, Severity::Critical)
        );
        assert!(matches!(
            &plan.actions[1],
            Action::Deny {
                issued_before: None,
                ..
            }
        ));
        let record = saved(&plan);
        assert_eq!(record.response, Response::Isolate);
        assert_eq!(record.triggers[0].source, TriggerSource::Naming);
        assert_eq!(record.prior.inline_policies, ["app-access"]);
        // A compliant name, or a creation in fix mode, is left to the tag enforcer's tags.
        let quiet = Suspect {
            created: Some((placed("dev"), None)),
            ..Suspect::default()
        };
        assert!(matches!(
            ignored(decide(&create("build-helper"), &quiet, &policy).expect("decision")),
            Ignored::NotEnforced { .. }
        ));
    }

    #[test]
    fn an_agent_over_budget_is_contained_before_the_role_it_misnamed() {
        let policy = naming_policy();
        let create = event(CREATE_ROLE, |_| {});
        let Ok(Needs::Created { rate: Some(key), .. }) = needs(&create, &policy) else {
            panic!("counted and checked")
        };
        let suspect = Suspect {
            principal: Some(role("agent-runner", "/", "agents")),
            rate: Some((
                key,
                RateCount {
                    calls: 301,
                    event_calls: 0,
                },
            )),
            created: Some((placed("agents"), None)),
            ..Suspect::default()
        };
        let plan = plan_of(decide(&create, &suspect, &policy).expect("decision"));
        assert_eq!(saved(&plan).principal.name, "agent-runner");
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("\"build-helper\" was created") && n.contains("by hand")),
            "{:?}",
            plan.notes
        );
    }

    #[test]
    fn an_alarm_may_name_only_a_role_of_its_own_account() {
        let Event::Alarm(alarm) = event(ALARM, |_| {}) else {
            panic!("not an alarm")
        };
        let policy = policy();
        assert_eq!(
            alarm_suspect(&alarm, Some("agent-runner"), &policy).map(|p| p.name),
            Ok("agent-runner".into())
        );
        let arn = format!("arn:aws:iam::{ACCOUNT}:role/agents/agent-runner");
        assert_eq!(
            alarm_suspect(&alarm, Some(&arn), &policy).map(|p| p.name),
            Ok("agent-runner".into())
        );
        for (tag, why) in [
            (None, "has no tag guardrail:agent-role"),
            (
                Some("arn:aws:iam::444455556666:role/victim"),
                "only name one in its own account",
            ),
            (Some("not a role!"), "is not a role name or ARN"),
        ] {
            let problem = alarm_suspect(&alarm, tag, &policy).expect_err("refused");
            assert!(problem.contains(why), "{problem}");
        }
    }

    #[test]
    fn release_removes_exactly_what_guardrail_added_and_reports_other_changes() {
        let finding = event(ANOMALOUS_USER, |v| v["Severity"] = json!(8));
        let mut before = user(
            "agent-ci",
            &[("AKIAEXAMPLEAGENTCI01", true), ("AKIAEXAMPLEOLD00001", false)],
        );
        if let Some(s) = before.state.as_mut() {
            s.tags.push(Tag::new("guardrail:agent", "yes"));
        }
        let record = saved(&plan_of(decide_with(&finding, before.clone())));
        assert_eq!(record.deactivated_keys, ["AKIAEXAMPLEAGENTCI01"]);

        let mut quarantined = before.clone();
        quarantined.record = Some(record.clone());
        if let Some(s) = quarantined.state.as_mut() {
            s.inline_policies.push("guardrail-quarantine".into());
            s.tags.push(Tag::new(QUARANTINE_TAG, record.tag_value()));
            s.access_keys[0].active = false;
            s.attached_policies.clear(); // an incident responder detached a policy meanwhile
        }
        let region = Region::parse("us-east-1").expect("region");
        let now = at("2026-11-22T12:00:00Z");
        let plan = plan_release(
            &quarantined,
            region.clone(),
            "arn:aws:iam::123456789012:user/oncall",
            "false positive",
            now,
        )
        .expect("release");
        let ids: Vec<String> = plan.actions.iter().map(Action::id).collect();
        assert_eq!(ids.len(), 4, "{ids:?}");
        assert!(
            matches!(&plan.actions[0], Action::RemoveDeny { policy_name, .. } if policy_name == "guardrail-quarantine")
        );
        assert!(
            matches!(&plan.actions[1], Action::Tag { remove, set, .. } if remove == &[QUARANTINE_TAG] && set.is_empty())
        );
        assert!(
            matches!(&plan.actions[2], Action::SetAccessKeys { keys, active: true, .. } if keys == &["AKIAEXAMPLEAGENTCI01"])
        );
        let released = saved(&plan);
        assert_eq!(released.version, record.version + 1);
        assert!(
            released
                .released
                .as_ref()
                .is_some_and(|r| r.by.ends_with("user/oncall") && r.reason == "false positive")
        );
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("managed policy arn:aws:iam::aws:policy/ReadOnlyAccess was removed"))
        );

        let mut done = quarantined.clone();
        done.record = Some(released);
        let refused = plan_release(&done, region.clone(), "me", "again", now).expect_err("nothing to release");
        assert!(
            refused
                .0
                .contains("is not quarantined (released by arn:aws:iam::123456789012:user/oncall"),
            "{refused}"
        );
        assert!(
            plan_release(&quarantined, region, "me", "  ", now).is_err(),
            "a reason is required"
        );
    }

    /// A principal that must never be contained, and the policy that makes it so.
    #[derive(Clone, Debug)]
    enum Untouchable {
        /// Matches the one pattern in `principals.protected`.
        Listed {
            prefix: String,
            suffix: String,
        },
        /// One of Guardrail's roles, with the member roles renamed by `roles.member`.
        Own {
            prefix: String,
            function: usize,
            execution: bool,
        },
        OrganizationAccess,
        ServiceLinked {
            service: String,
        },
        InManagementAccount {
            name: String,
        },
    }

    fn untouchable() -> impl proptest::strategy::Strategy<Value = Untouchable> {
        use proptest::prelude::*;
        prop_oneof![
            ("[a-z]{3,8}", "[a-z0-9-]{0,12}").prop_map(|(prefix, suffix)| Untouchable::Listed { prefix, suffix }),
            ("[a-z]{2,8}", 0..3usize, any::<bool>()).prop_map(|(prefix, function, execution)| Untouchable::Own {
                prefix,
                function,
                execution
            }),
            Just(Untouchable::OrganizationAccess),
            "[a-z]{3,12}".prop_map(|service| Untouchable::ServiceLinked { service }),
            "agent-[a-z0-9]{1,12}".prop_map(|name| Untouchable::InManagementAccount { name }),
        ]
    }

    /// The built-in policy with only `pattern` protected, Guardrail's member roles named
    /// `<member>-{function}`, and no principals.guardrail: what remains is the code's own word.
    fn policy_protecting(pattern: &str, member: &str, more: &str) -> Policy {
        let text = crate::policy::BUILTIN_POLICY
            .replace("guardrail = [\"arn:aws:iam::*:role/guardrail-*\"]", "")
            .replace(
                "member = \"guardrail-{function}\"",
                &format!("member = \"{member}-{{function}}\""),
            );
        let start = text.find("protected = [\n").expect("protected list");
        let end = start + text[start..].find("]\n").expect("end of list") + 2;
        let text = format!("{}protected = [\"{pattern}\"]\n{}{more}", &text[..start], &text[end..]);
        Policy::from_toml(&text, "test").expect("policy")
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the finding, its severity or the policy's table, a protected principal or one
        /// of Guardrail's own is never contained: the plan only says why.
        #[test]
        fn protected_principals_are_never_contained(
            who in untouchable(),
            finding_type in proptest::sample::select(vec![
                "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS".to_string(),
                "Backdoor:IAMUser/AnomalousBehavior".to_string(),
                "PrivilegeEscalation:IAMUser/AnomalousBehavior".to_string(),
                "Recon:IAMUser/MaliciousIPCaller".to_string(),
            ]),
            severity in 0.0f64..10.0,
            trigger in 0..3u8,
        ) {
            let functions = ["tag-enforcer", "agent-quarantine", "account-baseline"];
            let (pattern, member, mut facts) = match &who {
                Untouchable::Listed { prefix, suffix } => (
                    format!("arn:aws:iam::*:role/*{prefix}*"),
                    "guardrail".to_string(),
                    role(&format!("{prefix}{suffix}"), "/agents/", "agents"),
                ),
                Untouchable::Own { prefix, function, execution } => {
                    let name = if *execution {
                        format!("guardrail-{}-lambda", functions[*function])
                    } else {
                        format!("{prefix}-{}", functions[*function])
                    };
                    // At the path the templates give Guardrail's roles: the same name elsewhere is
                    // anyone's (policy::tests).
                    ("arn:aws:iam::*:role/none".into(), prefix.clone(), role(&name, "/", "agents"))
                }
                Untouchable::OrganizationAccess => (
                    "arn:aws:iam::*:role/none".into(),
                    "guardrail".into(),
                    role(ORGANIZATION_ACCESS_ROLE, "/", "agents"),
                ),
                Untouchable::ServiceLinked { service } => (
                    "arn:aws:iam::*:role/none".into(),
                    "guardrail".into(),
                    role(
                        &format!("AWSServiceRoleFor{service}"),
                        &format!("/aws-service-role/{service}.amazonaws.com/"),
                        "agents",
                    ),
                ),
                Untouchable::InManagementAccount { name } => {
                    let mut f = role(name, "/agents/", "agents");
                    f.management_account = Some(f.principal.account.clone());
                    ("arn:aws:iam::*:role/none".into(), "guardrail".into(), f)
                }
            };
            // A naming rule no generated name meets, enforced in `agents`.
            let policy = policy_protecting(&pattern, &member, "\n[naming.resources]\n\"iam:role\" = \"^{env}-zz-[a-z]+$\"\n");
            let name = facts.principal.name.clone();
            if let Some(state) = facts.state.as_mut() {
                state.tags.push(Tag::new("guardrail:agent", "true"));
            }
            let (event, suspect) = match trigger {
                0 => (event(ALARM, |_| {}), Suspect { principal: Some(facts), ..Suspect::default() }),
                1 => (
                    event(EXFILTRATION, |v| {
                        v["detail"]["type"] = json!(finding_type);
                        v["detail"]["severity"] = json!(severity);
                        v["detail"]["resource"]["accessKeyDetails"]["userName"] = json!(name);
                    }),
                    Suspect { principal: Some(facts), ..Suspect::default() },
                ),
                _ => (
                    event(CREATE_ROLE, |v| v["detail"]["requestParameters"]["roleName"] = json!(name)),
                    Suspect { created: Some((facts.placement.clone(), Some(facts))), ..Suspect::default() },
                ),
            };
            match decide(&event, &suspect, &policy) {
                Ok(Decision::Act { plan }) => proptest::prop_assert!(
                    plan.actions.is_empty(),
                    "{who:?} would be touched: {:?}",
                    plan.actions
                ),
                Ok(Decision::Ignore { .. }) | Err(_) => {}
            }
        }
    }
}
