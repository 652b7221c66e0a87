//! The tag rule: new resources carry the required tags with allowed values and spellings, names
//! follow the convention, and tags changed afterwards by anyone but Guardrail do not drift.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::alert::Severity;
use crate::event::json::select_strings;
use crate::event::{CloudTrailEvent, Rejection};
use crate::facts::Placement;
use crate::ids::{AccountId, Region, clip};
use crate::plan::{Action, Decision, Ignored, Plan, Tag, Violation, Waived, same_key};
use crate::policy::{ENVIRONMENT_TAG, Environment, Mode, OWNER_TAG, Policy, Rule};
use crate::waiver::{self, Standing, WAIVER_TAG};

use super::resources::{self, Created, Found, NameSource, ResourceType, TagApi, TagChange};

/// Longest tag value AWS accepts.
const MAX_TAG_VALUE: usize = 256;
/// The tag marking a resource whose name breaks the convention and cannot be changed.
pub const VIOLATION_TAG: &str = "guardrail:violation";
/// Derived from the caller's role or user ARN.
pub const CREATED_BY_TAG: &str = "CreatedBy";
/// Derived from the event's time.
pub const CREATED_AT_TAG: &str = "CreatedAt";

/// What the rule knows about the event, whatever the resource.
struct Context<'a> {
    policy: &'a Policy,
    account: AccountId,
    environment: &'a Environment,
    mode: Mode,
    region: Region,
    owner: Option<String>,
    created_by: Option<String>,
    created_at: Option<String>,
    /// The ARN, with its path, of the role or user the call created.
    created_principal: Option<String>,
    /// What the derived values come from, for the alert: the event, or a sweep's listing.
    derives_from: &'static str,
    /// When waivers are judged: the event's time, or the sweep's.
    at: DateTime<Utc>,
    /// Whether the caller may set waivers; `None` for a sweep, which cannot tell who set a tag
    /// (the SCP decides that).
    sets_waivers: Option<bool>,
}

impl Context<'_> {
    /// The ARN of the role or user `id` when the policy protects it: protected principals are
    /// never modified, tags included (an Environment tag on a break-glass role is someone's
    /// deliberate choice, and Guardrail's own roles are the StackSet's).
    fn protected_principal(&self, api: TagApi, id: &str) -> Option<String> {
        let kind = match api {
            TagApi::IamRole => "role",
            TagApi::IamUser => "user",
            _ => return None,
        };
        // A creation event gives the ARN with its path; otherwise the name is all there is.
        let arn = self
            .created_principal
            .clone()
            .filter(|arn| arn.rsplit('/').next() == Some(id))
            .unwrap_or_else(|| format!("arn:{}:iam::{}:{kind}/{id}", self.region.partition(), self.account));
        self.policy.is_protected(&arn).then_some(arn)
    }

    /// A value Guardrail can put on a resource that lacks the key.
    fn derived(&self, key: &str) -> Option<String> {
        match key {
            ENVIRONMENT_TAG => Some(self.environment.name.clone()),
            OWNER_TAG => self.owner.clone(),
            CREATED_BY_TAG => self.created_by.clone(),
            CREATED_AT_TAG => self.created_at.clone(),
            _ => self.environment.tag_defaults.get(key).cloned(),
        }
    }
}

/// The tags one resource needs changed.
#[derive(Default)]
struct Changes {
    /// Key → (new value, the value it replaces).
    set: BTreeMap<String, (String, Option<String>)>,
    /// Misspelled keys removed, with their values.
    remove: BTreeMap<String, String>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// The values the change replaces, for the ledger.
    fn before(&self) -> BTreeMap<String, Option<String>> {
        self.set
            .iter()
            .map(|(k, (_, previous))| (k.clone(), previous.clone()))
            .chain(self.remove.iter().map(|(k, v)| (k.clone(), Some(v.clone()))))
            .collect()
    }
}

/// The environment and mode the account gives the rule, or why the rule does not run.
fn context<'a>(
    call: &CloudTrailEvent,
    placement: &Placement,
    policy: &'a Policy,
) -> Result<Result<Context<'a>, Ignored>, Rejection> {
    let account = call
        .account
        .as_ref()
        .ok_or(Rejection::MissingField { field: "account" })?;
    let region = call
        .region
        .clone()
        .ok_or(Rejection::MissingField { field: "awsRegion" })?;
    if let Some(arn) = call.principal.arn().filter(|a| policy.is_exempt(a)) {
        return Ok(Err(Ignored::Exempt {
            principal: arn.to_string(),
        }));
    }
    let (environment, mode) = match managed(account, placement, policy) {
        Ok(found) => found,
        Err(reason) => return Ok(Err(reason)),
    };
    Ok(Ok(Context {
        policy,
        account: account.clone(),
        environment,
        mode,
        region,
        owner: call.principal.owner().map(tag_value),
        created_by: call.principal.arn().or(call.principal.owner()).map(tag_value),
        created_at: call
            .event_time
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        created_principal: created_principal(call),
        derives_from: "the event",
        at: call.event_time.unwrap_or_default(),
        sets_waivers: Some(call.principal.arn().is_some_and(|a| policy.safety.waivers.may_set(a))),
    }))
}

/// The account's environment and the tag rule's mode there, or why the rule does not run.
pub fn managed<'a>(
    account: &AccountId,
    placement: &Placement,
    policy: &'a Policy,
) -> Result<(&'a Environment, Mode), Ignored> {
    let Some(environment) = placement.environment.as_deref().and_then(|e| policy.environment(e)) else {
        return Err(Ignored::UnmanagedAccount {
            account: account.to_string(),
            ou: placement.ou_name.clone(),
        });
    };
    let mode = environment.mode(Rule::Tags);
    if mode == Mode::Off {
        return Err(Ignored::RuleOff {
            rule: Rule::Tags,
            environment: environment.name.clone(),
        });
    }
    Ok((environment, mode))
}

/// The ARN (with its path) of the role or user a `CreateRole`/`CreateUser` call made, when it
/// names the account the event happened in.
fn created_principal(call: &CloudTrailEvent) -> Option<String> {
    let key = match call.event_name.as_str() {
        "CreateRole" => "role",
        "CreateUser" => "user",
        _ => return None,
    };
    let arn = select_strings(&call.response_elements, &format!("{key}.arn"))
        .first()?
        .to_string();
    let principal = crate::quarantine::PrincipalRef::from_arn(&arn)?;
    (Some(&principal.account) == call.account.as_ref()).then_some(arn)
}

/// Plans the tags and names of the resources an API call created.
pub fn plan_created(call: &CloudTrailEvent, placement: &Placement, policy: &Policy) -> Result<Decision, Rejection> {
    let cx = match context(call, placement, policy)? {
        Ok(cx) => cx,
        Err(reason) => return Ok(Decision::Ignore { reason }),
    };
    let mut violations = Vec::new();
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    let mut containment = Vec::new();
    let mut notes = Vec::new();
    let mut checked = 0;
    let mut untouched = Vec::new();
    let mut waived = Vec::new();
    let mut nouns: Vec<(&str, usize)> = Vec::new();
    for rt in resources::for_event(&call.event_source, &call.event_name) {
        let created = resources::created(rt, call)?;
        if created.is_empty() {
            continue;
        }
        nouns.push((rt.noun, created.len()));
        for resource in &created {
            checked += 1;
            if let Some(arn) = cx.protected_principal(rt.api, &resource.id) {
                untouched.push(arn);
                continue;
            }
            let mut findings = Findings::default();
            let changes = check(&cx, rt, resource, &mut findings, &mut waived);
            violations.extend(findings.violations);
            containment.extend(findings.containment);
            notes.extend(findings.notes);
            group(&mut groups, rt.api, &resource.id, changes);
        }
    }
    if violations.is_empty() && waived.is_empty() {
        return Ok(Decision::Ignore {
            reason: left_alone(untouched).unwrap_or(Ignored::Compliant { checked }),
        });
    }
    // "1 EC2 instance and 2 related resource(s)": the first kind, and a count of the others.
    let mut subject = nouns
        .first()
        .map(|(noun, n)| format!("{n} {}", plural(noun, *n)))
        .unwrap_or_default();
    let related: usize = nouns.iter().skip(1).map(|(_, n)| n).sum();
    if related > 0 {
        subject.push_str(&format!(" and {related} related resource(s)"));
    }
    let mut plan = finish(
        &cx,
        call.principal.describe(),
        format!("{subject} created by {}", call.event_name),
        violations,
        groups,
    );
    if cx.mode == Mode::Enforce {
        plan.actions.extend(containment);
    }
    plan.notes.extend(notes);
    plan.notes.extend(untouched.iter().map(|arn| protected_note(arn)));
    add_waived(&mut plan, waived);
    Ok(Decision::Act { plan: Box::new(plan) })
}

/// Lists the resources a waiver exempts, for the ledger and for the alert's reader.
fn add_waived(plan: &mut Plan, waived: Vec<Waived>) {
    plan.notes.extend(
        waived
            .iter()
            .map(|w| format!("{} is left alone under {}: {}", w.resource, w.waiver, w.problems)),
    );
    plan.waived = waived;
}

fn protected_note(arn: &str) -> String {
    format!("{arn} is a protected principal: left as it is")
}

/// Why an event changes nothing when each resource it names is a protected principal.
fn left_alone(untouched: Vec<String>) -> Option<Ignored> {
    untouched
        .into_iter()
        .next()
        .map(|principal| Ignored::Protected { principal })
}

/// Plans the revert of a tag change made after creation.
pub fn plan_change(
    call: &CloudTrailEvent,
    change: &TagChange,
    placement: &Placement,
    policy: &Policy,
) -> Result<Decision, Rejection> {
    let cx = match context(call, placement, policy)? {
        Ok(cx) => cx,
        Err(reason) => return Ok(Decision::Ignore { reason }),
    };
    let changed = resources::changed(change, call)?;
    let who = call.principal.describe();
    let mut violations = Vec::new();
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    let mut untouched = Vec::new();
    let mut waived = Vec::new();
    for resource in &changed.resources {
        if let Some(arn) = cx.protected_principal(change.api, resource) {
            untouched.push(arn);
            continue;
        }
        let mut changes = Changes::default();
        // The waiver first: one a setter sets exempts the rest of the same call.
        let standing = waiver_of(&cx, resource, &changed.set, &mut changes, &mut violations);
        let mut found = Vec::new();
        for tag in &changed.set {
            let key = cx.policy.tags.canonical(&tag.key).unwrap_or(&tag.key);
            if same_key(key, WAIVER_TAG) {
                continue;
            }
            if key == ENVIRONMENT_TAG {
                // A differently spelled key counts too: IAM matches tag keys in conditions
                // without regard to case.
                if tag.key != ENVIRONMENT_TAG {
                    changes.remove.insert(tag.key.clone(), tag.value.clone());
                }
                if tag.value != cx.environment.name || tag.key != ENVIRONMENT_TAG {
                    found.push(fixable(
                        resource,
                        format!(
                            "{who} set tag {}={:?} but the account is in environment {}",
                            tag.key,
                            clip(&tag.value, 64),
                            cx.environment.name
                        ),
                    ));
                    changes
                        .set
                        .insert(ENVIRONMENT_TAG.into(), (cx.environment.name.clone(), None));
                }
            } else if cx.policy.tags.is_protected(key) && !change.replaces_set {
                found.push(report(
                    resource,
                    format!(
                        "{who} changed protected tag {key} to {:?}; Guardrail cannot know the value it replaced",
                        clip(&tag.value, 64)
                    ),
                ));
            } else if let Some(why) = cx.policy.tags.disallowed(key, &tag.value) {
                value_violation(&cx, resource, key, &tag.value, &why, &mut changes, &mut found);
            }
        }
        // Anyone may end a waiver early: that only lets the rules act again.
        for key in changed.removed.iter().filter(|k| !same_key(k, WAIVER_TAG)) {
            if key == ENVIRONMENT_TAG {
                found.push(fixable(resource, format!("{who} removed tag {ENVIRONMENT_TAG}")));
                changes
                    .set
                    .insert(ENVIRONMENT_TAG.into(), (cx.environment.name.clone(), None));
            } else if cx.policy.tags.is_protected(key) {
                found.push(report(
                    resource,
                    format!("{who} removed protected tag {key}; Guardrail cannot know its value, set it back by hand"),
                ));
            }
        }
        if let Standing::Valid(w) = standing {
            waived.extend(exempt(resource, &w, &found));
            continue;
        }
        violations.append(&mut found);
        group(&mut groups, change.api, resource, changes);
    }
    if violations.is_empty() && waived.is_empty() {
        return Ok(Decision::Ignore {
            reason: left_alone(untouched).unwrap_or(Ignored::Compliant {
                checked: changed.resources.len(),
            }),
        });
    }
    let n = changed.resources.len();
    let subject = format!("a tag change on {n} resource(s) by {}", call.event_name);
    let mut plan = finish(&cx, call.principal.describe(), subject, violations, groups);
    // Drift on a protected tag is someone working around a control.
    plan.severity = Severity::High;
    plan.notes.extend(untouched.iter().map(|arn| protected_note(arn)));
    add_waived(&mut plan, waived);
    Ok(Decision::Act { plan: Box::new(plan) })
}

/// Plans the tags and names of resources a sweep listed in one region of an account (IAM in
/// the first of `baseline.regions`), as their creation would have: a wrong or missing
/// Environment, a misspelled key, a disallowed value and a wrong EC2 name are fixed per mode. No
/// creation event says who made them, so a missing Owner (or any key only an event gives) needs
/// a person; nothing is contained (a sweep never stops an instance); a tag already there is not
/// written again, so a second sweep writes nothing.
pub fn plan_listed(
    account: &AccountId,
    region: &Region,
    placement: &Placement,
    listed: &[Found],
    policy: &Policy,
    cause: &str,
    at: DateTime<Utc>,
) -> Decision {
    let (environment, mode) = match managed(account, placement, policy) {
        Ok(found) => found,
        Err(reason) => return Decision::Ignore { reason },
    };
    let cx = Context {
        policy,
        account: account.clone(),
        environment,
        mode,
        region: region.clone(),
        owner: None,
        created_by: None,
        created_at: None,
        created_principal: None,
        derives_from: "a sweep (only its creation event could tell)",
        at,
        sets_waivers: None,
    };
    let mut violations = Vec::new();
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    let mut untouched = Vec::new();
    let mut compliant = Vec::new();
    let mut waived = Vec::new();
    for Found { rt, resource, arn } in listed {
        if matches!(rt.api, TagApi::IamRole | TagApi::IamUser) && policy.is_protected(arn) {
            untouched.push(arn.clone());
            continue;
        }
        // A sweep contains nothing: no containment, and so no note about it.
        let mut findings = Findings::default();
        let exempted = waived.len();
        let mut changes = check(&cx, rt, resource, &mut findings, &mut waived);
        if findings.violations.is_empty() && waived.len() == exempted {
            compliant.push(resource.id.clone());
        }
        violations.append(&mut findings.violations);
        changes
            .set
            .retain(|key, (value, _)| !resource.tags.iter().any(|t| t.key == *key && t.value == *value));
        group(&mut groups, rt.api, &resource.id, changes);
    }
    if violations.is_empty() && waived.is_empty() {
        return Decision::Ignore {
            reason: Ignored::Compliant {
                checked: listed.len() - untouched.len(),
            },
        };
    }
    let subject = format!("{} resource(s) listed in {region}", listed.len());
    let mut plan = finish(&cx, cause.to_string(), subject, violations, groups);
    plan.in_place = compliant;
    plan.notes.extend(untouched.iter().map(|arn| protected_note(arn)));
    add_waived(&mut plan, waived);
    Decision::Act { plan: Box::new(plan) }
}

/// The API, the tags to set and the keys to remove that a group of resources shares.
type GroupKey = (TagApi, Vec<Tag>, Vec<String>);

/// Resources needing the same change, and what each change replaces.
#[derive(Default)]
struct Group {
    resources: Vec<String>,
    previous: Vec<Changes>,
}

/// Puts a resource that needs `changes` into the group of resources needing the same.
fn group(groups: &mut BTreeMap<GroupKey, Group>, api: TagApi, resource: &str, changes: Changes) {
    if changes.is_empty() {
        return;
    }
    let set: Vec<Tag> = changes.set.iter().map(|(k, (v, _))| Tag::new(k, v)).collect();
    let remove: Vec<String> = changes.remove.keys().cloned().collect();
    let group = groups.entry((api, set, remove)).or_default();
    group.resources.push(resource.to_string());
    group.previous.push(changes);
}

fn finish(
    cx: &Context<'_>,
    cause: String,
    subject: String,
    violations: Vec<Violation>,
    groups: BTreeMap<GroupKey, Group>,
) -> Plan {
    let abac = violations.iter().any(|v| v.problem.contains(ENVIRONMENT_TAG));
    let mut plan = Plan::new(Rule::Tags, cx.mode, cx.account.clone(), subject);
    // A wrong Environment is an attempt to win ABAC access; the rest is hygiene.
    plan.severity = if abac { Severity::High } else { Severity::Low };
    plan.environment = Some(cx.environment.name.clone());
    plan.region = Some(cx.region.clone());
    plan.cause = cause;
    plan.violations = violations;
    if cx.mode.fixes() {
        for ((api, set, remove), group) in with_volumes_merged(groups) {
            plan.undo.push(undo_for(api, &cx.region, &group));
            // As many calls as the API needs: the Tagging API takes 20 ARNs at a time.
            let size = resources::batch(api);
            for (n, resources) in group.resources.chunks(size).enumerate() {
                plan.actions.push(Action::Tag {
                    api,
                    region: cx.region.clone(),
                    resources: resources.to_vec(),
                    set: set.clone(),
                    remove: remove.clone(),
                });
                // `previous` lists the resources' changes in their order (a merged volumes
                // group's come after them).
                let previous = group.previous.iter().skip(n * size);
                plan.record_before(resources.iter().zip(previous).map(|(r, c)| (r.clone(), c.before())));
            }
        }
    }
    plan
}

/// Instances and their volumes needing the same change become one `CreateTags` call, when the
/// volumes' group names exactly the instances of the EC2 group.
fn with_volumes_merged(mut groups: BTreeMap<GroupKey, Group>) -> BTreeMap<GroupKey, Group> {
    let volume_keys: Vec<GroupKey> = groups
        .keys()
        .filter(|(api, ..)| *api == TagApi::Ec2VolumesOf)
        .cloned()
        .collect();
    for (_, set, remove) in volume_keys {
        let ec2_key = (TagApi::Ec2, set.clone(), remove.clone());
        let volumes_key = (TagApi::Ec2VolumesOf, set.clone(), remove.clone());
        let same_instances = match (groups.get(&ec2_key), groups.get(&volumes_key)) {
            (Some(ec2), Some(volumes)) => {
                let instances: BTreeSet<&String> = ec2.resources.iter().filter(|r| r.starts_with("i-")).collect();
                instances == volumes.resources.iter().collect()
            }
            _ => false,
        };
        if !same_instances {
            continue;
        }
        if let (Some(mut merged), Some(volumes)) = (groups.remove(&ec2_key), groups.remove(&volumes_key)) {
            merged.previous.extend(volumes.previous);
            groups.insert((TagApi::Ec2AndVolumes, set, remove), merged);
        }
    }
    groups
}

fn fixable(resource: &str, problem: String) -> Violation {
    Violation {
        resource: resource.to_string(),
        problem,
        fixable: true,
    }
}

fn report(resource: &str, problem: String) -> Violation {
    Violation {
        resource: resource.to_string(),
        problem,
        fixable: false,
    }
}

/// What checking one resource found.
#[derive(Default)]
struct Findings {
    violations: Vec<Violation>,
    /// Actions containing a resource whose name cannot be changed (enforce mode).
    containment: Vec<Action>,
    notes: Vec<String>,
}

/// The tag changes one resource needs, into `findings` its violations and (in enforce mode)
/// its containment; nothing, when a waiver exempts it (then `waived` says what it would have
/// been, if anything).
fn check(
    cx: &Context<'_>,
    rt: &ResourceType,
    resource: &Created,
    findings: &mut Findings,
    waived: &mut Vec<Waived>,
) -> Changes {
    let mut changes = Changes::default();
    let standing = waiver_of(cx, &resource.id, &resource.tags, &mut changes, &mut findings.violations);
    let mut found = Findings::default();
    tag_changes(cx, &resource.id, &resource.tags, &mut changes, &mut found.violations);
    naming(cx, rt, resource, &mut changes, &mut found);
    if let Standing::Valid(w) = standing {
        waived.extend(exempt(&resource.id, &w, &found.violations));
        return Changes::default();
    }
    findings.violations.append(&mut found.violations);
    findings.containment.append(&mut found.containment);
    findings.notes.append(&mut found.notes);
    changes
}

/// The standing of the waiver among a resource's tags (as created, or as a tag call set them).
/// A waiver the caller may not set is removed, and one that does not hold is reported.
fn waiver_of(
    cx: &Context<'_>,
    resource: &str,
    tags: &[Tag],
    changes: &mut Changes,
    violations: &mut Vec<Violation>,
) -> Standing {
    let Some(tag) = tags.iter().find(|t| t.is(WAIVER_TAG)) else {
        return Standing::None;
    };
    if cx.sets_waivers == Some(false) {
        violations.push(fixable(
            resource,
            format!(
                "{}={:?} was set by a principal the policy does not name as a waiver setter; removed",
                tag.key,
                clip(&tag.value, 64)
            ),
        ));
        changes.remove.insert(tag.key.clone(), tag.value.clone());
        return Standing::None;
    }
    let standing = waiver::standing(tags, Rule::Tags, cx.at, cx.policy);
    if let Some(problem) = standing.problem() {
        violations.push(report(resource, problem));
    }
    standing
}

/// The ledger's record of what a waiver exempted a resource from; `None` when it had nothing
/// wrong anyway.
fn exempt(resource: &str, waiver: &waiver::Waiver, violations: &[Violation]) -> Option<Waived> {
    (!violations.is_empty()).then(|| Waived {
        resource: resource.to_string(),
        waiver: waiver.describe(),
        problems: violations
            .iter()
            .map(|v| v.problem.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// Spelling, required keys and allowed values of one resource's tags.
fn tag_changes(cx: &Context<'_>, resource: &str, tags: &[Tag], changes: &mut Changes, violations: &mut Vec<Violation>) {
    let rules = &cx.policy.tags;
    // Keys spelled differently from the policy's are renamed, keeping their value.
    let mut effective: BTreeMap<String, String> = BTreeMap::new();
    for t in tags {
        if rules.canonical(&t.key).is_none() {
            effective.insert(t.key.clone(), t.value.clone());
        }
    }
    for t in tags {
        let Some(canonical) = rules.canonical(&t.key) else {
            continue;
        };
        changes.remove.insert(t.key.clone(), t.value.clone());
        if effective.contains_key(canonical) {
            violations.push(fixable(
                resource,
                format!("tag {} duplicates {canonical} and is removed", t.key),
            ));
        } else {
            violations.push(fixable(
                resource,
                format!("tag {} is spelled {canonical} here and is renamed", t.key),
            ));
            effective.insert(canonical.to_string(), t.value.clone());
            changes.set.insert(canonical.to_string(), (t.value.clone(), None));
        }
    }
    for key in &rules.required {
        let have = effective.get(key).cloned();
        let derived = cx.derived(key);
        match (have, derived) {
            (Some(have), Some(want)) if key == ENVIRONMENT_TAG && have != want => {
                violations.push(fixable(
                    resource,
                    format!(
                        "tag {key} is {:?} but the account is in environment {want}",
                        clip(&have, 64)
                    ),
                ));
                changes.set.insert(key.clone(), (want.clone(), Some(have)));
                effective.insert(key.clone(), want);
            }
            (Some(_), _) => {}
            (None, Some(want)) => {
                violations.push(fixable(resource, format!("required tag {key} is missing")));
                changes.set.insert(key.clone(), (want.clone(), None));
                effective.insert(key.clone(), want);
            }
            (None, None) => violations.push(report(
                resource,
                format!(
                    "required tag {key} is missing and cannot be derived from {}; set it by hand",
                    cx.derives_from
                ),
            )),
        }
    }
    for (key, value) in effective.clone() {
        if key == ENVIRONMENT_TAG {
            continue;
        }
        if let Some(why) = rules.disallowed(&key, &value) {
            value_violation(cx, resource, &key, &value, &why, changes, violations);
        }
    }
}

/// A value the policy does not allow: replaced by the environment's default when it has one.
fn value_violation(
    cx: &Context<'_>,
    resource: &str,
    key: &str,
    value: &str,
    why: &str,
    changes: &mut Changes,
    violations: &mut Vec<Violation>,
) {
    let problem = format!("tag {key} is {:?}: {why}", clip(value, 64));
    match cx.environment.tag_defaults.get(key) {
        Some(default) => {
            violations.push(fixable(
                resource,
                format!("{problem}; set to the environment's default {default:?}"),
            ));
            changes
                .set
                .insert(key.to_string(), (default.clone(), Some(value.to_string())));
        }
        None => violations.push(report(resource, problem)),
    }
}

/// The naming convention for the resource's kind.
fn naming(cx: &Context<'_>, rt: &ResourceType, resource: &Created, changes: &mut Changes, found: &mut Findings) {
    let Some(pattern) = cx.policy.naming.resources.get(rt.kind) else {
        return;
    };
    let env = &cx.environment.name;
    let name = match rt.name {
        NameSource::Tag => changes
            .set
            .get("Name")
            .map(|(v, _)| v.clone())
            .or_else(|| resource.name.clone()),
        _ => resource.name.clone(),
    };
    if name.as_deref().is_some_and(|n| pattern.matches(env, n)) {
        return;
    }
    let shown = name
        .as_deref()
        .map_or("no name".to_string(), |n| format!("name {:?}", clip(n, 80)));
    let expected = pattern.for_environment(env);
    let proposal = conforming_name(cx, name.as_deref(), &resource.id).filter(|p| pattern.matches(env, p));
    match (rt.name, &proposal) {
        (NameSource::Tag, Some(p)) => {
            found.violations.push(fixable(
                &resource.id,
                format!("{shown} does not match {expected}; renamed {p}"),
            ));
            let previous = name.clone();
            changes.set.insert("Name".into(), (p.clone(), previous));
        }
        _ => {
            let example = proposal.map(|p| format!(", for example {p}")).unwrap_or_default();
            found.violations.push(report(
                &resource.id,
                format!(
                    "{shown} does not match {expected}{example}; {} names cannot be changed, so it is marked {VIOLATION_TAG}=naming",
                    rt.noun
                ),
            ));
            changes.set.insert(VIOLATION_TAG.into(), ("naming".into(), None));
        }
    }
    if cx.mode == Mode::Enforce {
        match rt.kind {
            "ec2:instance" => found.containment.push(Action::StopInstances {
                region: cx.region.clone(),
                instances: vec![resource.id.clone()],
            }),
            // Containment of principals is agent-quarantine's, which receives the same event.
            "iam:role" | "iam:user" => found.notes.push(format!(
                "In enforce mode agent-quarantine isolates {} {}; `guardrail release` lets it go again, for instance once a conforming replacement exists.",
                rt.noun, resource.id
            )),
            _ => {}
        }
    }
}

/// `<env>-<name>` made of lowercase letters, digits and hyphens, without another environment's
/// prefix; from the resource id when there is no name.
fn conforming_name(cx: &Context<'_>, name: Option<&str>, id: &str) -> Option<String> {
    let base = name.unwrap_or_else(|| id.split_once('-').map_or(id, |(_, rest)| rest));
    let mut slug = String::new();
    for c in base.to_lowercase().chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (slug.is_empty() || slug.ends_with('-'))) {
            slug.push(c);
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = cx
        .policy
        .environments
        .iter()
        .find_map(|e| slug.strip_prefix(&format!("{}-", e.name.to_lowercase())))
        .unwrap_or(slug);
    (!slug.is_empty()).then(|| format!("{}-{slug}", cx.environment.name))
}

/// The commands that undo one group's change.
fn undo_for(api: TagApi, region: &Region, group: &Group) -> String {
    let mut added: Vec<&str> = Vec::new();
    let mut restored: Vec<(String, String)> = Vec::new();
    for changes in &group.previous {
        for (key, (_, previous)) in &changes.set {
            match previous {
                None if !added.contains(&key.as_str()) => added.push(key),
                Some(old) if !restored.iter().any(|(k, _)| k == key) => restored.push((key.clone(), old.clone())),
                _ => {}
            }
        }
        for (key, old) in &changes.remove {
            if !restored.iter().any(|(k, _)| k == key) {
                restored.push((key.clone(), old.clone()));
            }
        }
    }
    let ids = group.resources.iter().map(|r| shell_quote(r)).collect::<Vec<_>>();
    let mut commands = Vec::new();
    if !added.is_empty() {
        let keys: Vec<String> = added.iter().map(|k| shell_quote(k)).collect();
        commands.push(untag_command(api, region, &ids, &keys));
    }
    if !restored.is_empty() {
        commands.push(tag_command(api, region, &ids, &restored));
    }
    commands.join(" && ")
}

/// The `--resources` of an EC2 tag command: the ids, and the volumes of instances looked up
/// when the command runs (the plan knows the instances, not their volumes).
fn ec2_targets(api: TagApi, region: &Region, ids: &[String]) -> String {
    let instances: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| api == TagApi::Ec2VolumesOf || id.trim_matches('\'').starts_with("i-"))
        .collect();
    let volumes = format!(
        "$(aws ec2 describe-volumes --region {region} --filters Name=attachment.instance-id,Values={} --query 'Volumes[].VolumeId' --output text)",
        instances.join(",")
    );
    match api {
        TagApi::Ec2VolumesOf => volumes,
        TagApi::Ec2AndVolumes => format!("{} {volumes}", ids.join(" ")),
        _ => ids.join(" "),
    }
}

fn untag_command(api: TagApi, region: &Region, ids: &[String], keys: &[String]) -> String {
    let each = |cmd: &dyn Fn(&String) -> String| ids.iter().map(cmd).collect::<Vec<_>>().join(" && ");
    let keys_spaced = keys.join(" ");
    match api {
        TagApi::Ec2 | TagApi::Ec2VolumesOf | TagApi::Ec2AndVolumes => format!(
            "aws ec2 delete-tags --region {region} --resources {} --tags {}",
            ec2_targets(api, region, ids),
            keys.iter().map(|k| format!("Key={k}")).collect::<Vec<_>>().join(" ")
        ),
        TagApi::IamRole => each(&|id| format!("aws iam untag-role --role-name {id} --tag-keys {keys_spaced}")),
        TagApi::IamUser => each(&|id| format!("aws iam untag-user --user-name {id} --tag-keys {keys_spaced}")),
        TagApi::IamPolicy => each(&|id| format!("aws iam untag-policy --policy-arn {id} --tag-keys {keys_spaced}")),
        TagApi::Sns => {
            each(&|id| format!("aws sns untag-resource --region {region} --resource-arn {id} --tag-keys {keys_spaced}"))
        }
        TagApi::DynamoDb => each(&|id| {
            format!("aws dynamodb untag-resource --region {region} --resource-arn {id} --tag-keys {keys_spaced}")
        }),
        TagApi::Sqs => {
            each(&|id| format!("aws sqs untag-queue --region {region} --queue-url {id} --tag-keys {keys_spaced}"))
        }
        TagApi::Kms => {
            each(&|id| format!("aws kms untag-resource --region {region} --key-id {id} --tag-keys {keys_spaced}"))
        }
        TagApi::Tagging => format!(
            "aws resourcegroupstaggingapi untag-resources --region {region} --resource-arn-list {} --tag-keys {keys_spaced}",
            ids.join(" ")
        ),
    }
}

fn tag_command(api: TagApi, region: &Region, ids: &[String], tags: &[(String, String)]) -> String {
    let each = |cmd: &dyn Fn(&String) -> String| ids.iter().map(cmd).collect::<Vec<_>>().join(" && ");
    let key_value = |k: &str, v: &str| shell_quote(&format!("Key={k},Value={v}"));
    let pairs = tags.iter().map(|(k, v)| key_value(k, v)).collect::<Vec<_>>().join(" ");
    match api {
        TagApi::Ec2 | TagApi::Ec2VolumesOf | TagApi::Ec2AndVolumes => format!(
            "aws ec2 create-tags --region {region} --resources {} --tags {pairs}",
            ec2_targets(api, region, ids)
        ),
        TagApi::IamRole => each(&|id| format!("aws iam tag-role --role-name {id} --tags {pairs}")),
        TagApi::IamUser => each(&|id| format!("aws iam tag-user --user-name {id} --tags {pairs}")),
        TagApi::IamPolicy => each(&|id| format!("aws iam tag-policy --policy-arn {id} --tags {pairs}")),
        TagApi::Sns => each(&|id| format!("aws sns tag-resource --region {region} --resource-arn {id} --tags {pairs}")),
        TagApi::DynamoDb => {
            each(&|id| format!("aws dynamodb tag-resource --region {region} --resource-arn {id} --tags {pairs}"))
        }
        TagApi::Kms => {
            let kms = tags
                .iter()
                .map(|(k, v)| shell_quote(&format!("TagKey={k},TagValue={v}")))
                .collect::<Vec<_>>()
                .join(" ");
            each(&|id| format!("aws kms tag-resource --region {region} --key-id {id} --tags {kms}"))
        }
        TagApi::Sqs | TagApi::Tagging => {
            let map = tags
                .iter()
                .map(|(k, v)| shell_quote(&format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(",");
            match api {
                TagApi::Sqs => each(&|id| format!("aws sqs tag-queue --region {region} --queue-url {id} --tags {map}")),
                _ => format!(
                    "aws resourcegroupstaggingapi tag-resources --region {region} --resource-arn-list {} --tags {map}",
                    ids.join(" ")
                ),
            }
        }
    }
}

/// A tag value every service accepts: letters, digits, spaces and `_ . : / = + - @`, at most
/// 256 characters. Anything else in a principal's name becomes `_`.
pub fn tag_value(s: &str) -> String {
    s.chars()
        .take(MAX_TAG_VALUE)
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Quotes a word for a POSIX shell, so an undo command built from event values is safe to paste.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:/=+-@,%".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn plural(noun: &str, n: usize) -> String {
    if n == 1 {
        noun.to_string()
    } else if let Some(set) = noun.strip_prefix("set of ") {
        format!("sets of {set}")
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, decode};
    use crate::ids::AccountId;

    fn call(sample: &str) -> CloudTrailEvent {
        match decode(sample.as_bytes()).remove(0) {
            Ok(Event::ApiCall(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    fn dev(account: &str) -> Placement {
        Placement {
            account: AccountId::parse(account).expect("id"),
            ou_id: None,
            ou_name: Some("dev".into()),
            environment: Some("dev".into()),
        }
    }

    fn plan_of(decision: Decision) -> Plan {
        match decision {
            Decision::Act { plan } => *plan,
            Decision::Ignore { reason } => panic!("{reason}"),
        }
    }

    /// The plan for a tag call made in a dev account under the built-in policy.
    fn decide_change(c: &CloudTrailEvent) -> Plan {
        let policy = Policy::builtin().expect("policy");
        let change = resources::change_for(&c.event_source, &c.event_name).expect("a tag change");
        plan_of(plan_change(c, change, &dev("111122223333"), &policy).expect("decision"))
    }

    /// The tag keys a plan's tag actions remove.
    fn removed_keys(plan: &Plan) -> Vec<&String> {
        plan.actions
            .iter()
            .flat_map(|a| match a {
                Action::Tag { remove, .. } => remove.iter().collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// A sample with its role renamed everywhere it is named.
    fn for_role(sample: &str, name: &str) -> CloudTrailEvent {
        let mut v: serde_json::Value = serde_json::from_str(sample).expect("JSON");
        let d = &mut v["detail"];
        let account = d["recipientAccountId"].as_str().unwrap_or_default().to_string();
        d["requestParameters"]["roleName"] = name.into();
        if d["responseElements"]["role"].is_object() {
            d["responseElements"]["role"]["roleName"] = name.into();
            d["responseElements"]["role"]["arn"] = format!("arn:aws:iam::{account}:role/{name}").into();
        }
        call(&v.to_string())
    }

    #[test]
    fn protected_principals_are_neither_tagged_nor_reverted() {
        let policy = Policy::builtin().expect("policy");
        let created = include_str!("../../../events/tag-enforcer/create-role.json");
        let untagged = include_str!("../../../events/tag-enforcer/untag-role.json");
        for name in [
            "break-glass-oncall",
            "guardrail-tag-enforcer",
            "OrganizationAccountAccessRole",
        ] {
            for sample in [created, untagged] {
                let c = for_role(sample, name);
                let place = dev(c.account.as_ref().map(AccountId::as_str).unwrap_or_default());
                let decision = match c.event_name.as_str() {
                    "CreateRole" => plan_created(&c, &place, &policy),
                    _ => {
                        let change = resources::change_for(&c.event_source, &c.event_name).expect("a tag change");
                        plan_change(&c, change, &place, &policy)
                    }
                };
                assert!(
                    matches!(&decision, Ok(Decision::Ignore { reason: Ignored::Protected { principal } }) if principal.ends_with(&format!("role/{name}"))),
                    "{name} {}: {decision:?}",
                    c.event_name
                );
            }
        }
        // Anyone else's role is fixed as usual.
        let c = for_role(created, "build-helper");
        let place = dev(c.account.as_ref().map(AccountId::as_str).unwrap_or_default());
        assert!(
            !plan_of(plan_created(&c, &place, &policy).expect("decision"))
                .actions
                .is_empty()
        );
    }

    /// A sample's call made by `issuer` with `tags` in place of its own.
    fn tagged_by(sample: &str, issuer: &str, tags: serde_json::Value) -> CloudTrailEvent {
        let mut v: serde_json::Value = serde_json::from_str(sample).expect("JSON");
        let d = &mut v["detail"];
        d["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = issuer.into();
        if d["requestParameters"]["tagSet"].is_object() {
            d["requestParameters"]["tagSet"]["items"] = tags;
        } else {
            d["requestParameters"]["tags"] = tags;
        }
        call(&v.to_string())
    }

    const SETTER: &str = "arn:aws:iam::111122223333:role/security-waivers/alice";
    const AGENT: &str = "arn:aws:iam::111122223333:role/agents/agent-runner";

    fn with_waiver(waiver: &str) -> serde_json::Value {
        serde_json::json!([{"key": "Environment", "value": "prod"}, {"key": WAIVER_TAG, "value": waiver}])
    }

    #[test]
    fn a_waiver_a_setter_sets_exempts_the_resource_and_anyone_elses_is_removed() {
        let policy = Policy::builtin().expect("policy");
        let created = include_str!("../../../events/tag-enforcer/create-role.json");
        // The event is of 2026-11-22.
        let valid = with_waiver("rules=tags+quarantine until=2026-12-31 ticket=SEC-9");
        let decide = |c: &CloudTrailEvent| plan_of(plan_created(c, &dev("111122223333"), &policy).expect("decision"));

        let waived = decide(&tagged_by(created, SETTER, valid.clone()));
        assert!(waived.actions.is_empty() && waived.violations.is_empty(), "{waived:?}");
        let [w] = waived.waived.as_slice() else {
            panic!("{:?}", waived.waived)
        };
        assert_eq!(
            (w.resource.as_str(), w.waiver.as_str()),
            ("build-helper", "waiver SEC-9 until 2026-12-31")
        );
        assert!(w.problems.contains("tag Environment is \"prod\""), "{}", w.problems);

        let forged = decide(&tagged_by(created, AGENT, valid));
        assert!(forged.waived.is_empty());
        assert!(
            forged
                .violations
                .iter()
                .any(|v| v.fixable && v.problem.contains("not name as a waiver setter")),
            "{:?}",
            forged.violations
        );
        let [Action::Tag { set, remove, .. }] = forged.actions.as_slice() else {
            panic!("{:?}", forged.actions)
        };
        assert_eq!(remove, &[WAIVER_TAG.to_string()]);
        assert!(set.contains(&Tag::new(ENVIRONMENT_TAG, "dev")), "{set:?}");

        // Past its last day the waiver is reported and the rule applies.
        let expired = decide(&tagged_by(
            created,
            SETTER,
            with_waiver("rules=tags until=2026-11-21 ticket=SEC-9"),
        ));
        assert!(expired.waived.is_empty());
        assert!(
            expired
                .violations
                .iter()
                .any(|v| !v.fixable && v.problem.contains("waiver SEC-9 until 2026-11-21 expired")),
            "{:?}",
            expired.violations
        );
        assert!(!expired.actions.is_empty());
        // A waiver for the quarantine rule only does not exempt from the tag rule.
        let other = decide(&tagged_by(
            created,
            SETTER,
            with_waiver("rules=quarantine until=2026-12-31 ticket=SEC-9"),
        ));
        assert!(other.waived.is_empty() && !other.actions.is_empty(), "{other:?}");
    }

    #[test]
    fn a_tag_call_setting_a_waiver_is_reverted_unless_a_setter_made_it() {
        let policy = Policy::builtin().expect("policy");
        let sample = include_str!("../../../events/tag-enforcer/create-tags.json");
        let valid = with_waiver("rules=tags until=2026-12-31 ticket=SEC-9");
        let by_setter = decide_change(&tagged_by(sample, SETTER, valid.clone()));
        assert!(
            by_setter.actions.is_empty() && by_setter.violations.is_empty(),
            "{by_setter:?}"
        );
        assert_eq!(by_setter.waived.len(), 1);
        let by_agent = decide_change(&tagged_by(sample, AGENT, valid));
        assert!(by_agent.waived.is_empty());
        assert_eq!(removed_keys(&by_agent), [WAIVER_TAG]);
        // Removing a waiver is never drift.
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/tag-enforcer/delete-tags.json")).expect("JSON");
        v["detail"]["requestParameters"]["tagSet"]["items"] = serde_json::json!([{"key": WAIVER_TAG}]);
        let ended = call(&v.to_string());
        let change = resources::change_for(&ended.event_source, &ended.event_name).expect("a tag change");
        assert!(matches!(
            plan_change(&ended, change, &dev("111122223333"), &policy),
            Ok(Decision::Ignore {
                reason: Ignored::Compliant { .. }
            })
        ));
    }

    #[test]
    fn every_action_of_a_plan_has_its_own_id() {
        // Instances and their volumes are tagged by id: the same ids, different calls.
        let policy = Policy::builtin().expect("policy");
        let c = call(include_str!("../../../events/tag-enforcer/run-instances.json"));
        let plan = plan_of(plan_created(&c, &dev("111122223333"), &policy).expect("decision"));
        let mut ids: Vec<String> = plan.actions.iter().map(Action::id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "{:?}", plan.actions);
        assert_eq!(plan.undo.len(), plan.actions.len());
    }

    #[test]
    fn an_instance_and_its_volumes_needing_the_same_tags_take_one_call() {
        let policy = Policy::builtin().expect("policy");
        let sample: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/tag-enforcer/run-instances.json")).expect("JSON");
        let launched = |volume_tags: serde_json::Value| {
            let mut v = sample.clone();
            v["detail"]["requestParameters"]["tagSpecificationSet"] =
                serde_json::json!({"items": [{"resourceType": "volume", "tags": volume_tags}]});
            for i in v["detail"]["responseElements"]["instancesSet"]["items"]
                .as_array_mut()
                .expect("instances")
            {
                i.as_object_mut().map(|o| o.remove("tagSet"));
            }
            plan_of(plan_created(&call(&v.to_string()), &dev("111122223333"), &policy).expect("decision"))
        };
        let same = launched(serde_json::json!([]));
        let [Action::Tag { api, resources, .. }] = same.actions.as_slice() else {
            panic!("{:?}", same.actions)
        };
        assert_eq!(*api, TagApi::Ec2AndVolumes);
        assert!(resources.iter().any(|r| r.starts_with("i-")), "{resources:?}");
        assert!(
            same.undo[0].contains("aws ec2 delete-tags")
                && same.undo[0].contains(
                    "$(aws ec2 describe-volumes --region us-east-1 --filters Name=attachment.instance-id,Values=i-"
                ),
            "{}",
            same.undo[0]
        );
        // Volumes requested with tags of their own need a change of their own.
        let apart = launched(serde_json::json!([{"key": "Environment", "value": "dev"}]));
        let apis: Vec<TagApi> = apart
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Tag { api, .. } => Some(*api),
                _ => None,
            })
            .collect();
        assert_eq!(apis, [TagApi::Ec2, TagApi::Ec2VolumesOf]);
    }

    #[test]
    fn conforming_names_drop_another_environments_prefix() {
        let policy = Policy::builtin().expect("policy");
        let cx = Context {
            policy: &policy,
            account: AccountId::parse("111122223333").expect("id"),
            environment: policy.environment("dev").expect("dev"),
            mode: Mode::Fix,
            region: Region::parse("us-east-1").expect("region"),
            owner: None,
            created_by: None,
            created_at: None,
            created_principal: None,
            derives_from: "the event",
            at: Utc::now(),
            sets_waivers: None,
        };
        assert_eq!(
            conforming_name(&cx, Some("Prod Cache #2"), "i-1").as_deref(),
            Some("dev-cache-2")
        );
        assert_eq!(
            conforming_name(&cx, Some("build_cache"), "i-1").as_deref(),
            Some("dev-build-cache")
        );
        assert_eq!(
            conforming_name(&cx, None, "i-0a1b2c3d").as_deref(),
            Some("dev-0a1b2c3d")
        );
        assert_eq!(conforming_name(&cx, Some("!!!"), "i-1"), None);
    }

    #[test]
    fn undo_restores_renamed_keys_and_removes_added_ones() {
        let policy = Policy::builtin().expect("policy");
        let c = call(include_str!("../../../events/tag-enforcer/tag-queue.json"));
        let change = resources::change_for(&c.event_source, &c.event_name).expect("a tag change");
        let plan = plan_of(plan_change(&c, change, &dev("111122223333"), &policy).expect("decision"));
        assert_eq!(plan.undo.len(), 1);
        assert!(
            plan.undo[0].contains("untag-queue") && plan.undo[0].contains("--tag-keys Environment"),
            "{}",
            plan.undo[0]
        );
        assert!(plan.undo[0].contains("--tags environment=prod"), "{}", plan.undo[0]);
    }

    #[test]
    fn tag_values_keep_arns_and_drop_the_rest() {
        assert_eq!(
            tag_value("arn:aws:sts::1:assumed-role/Dev/alice@example.com"),
            "arn:aws:sts::1:assumed-role/Dev/alice@example.com"
        );
        assert_eq!(tag_value("a$(b)\n"), "a__b__");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }

    #[test]
    fn shell_quote_makes_hostile_values_inert() {
        assert_eq!(shell_quote("Key=Owner"), "Key=Owner");
        assert_eq!(shell_quote("$(rm -rf ~)"), "'$(rm -rf ~)'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    /// What a sweep lists: the ARN and the tags as they are.
    fn found(arn: &str, tags: &[(&str, &str)]) -> Found {
        let listed = resources::Listed {
            arn: arn.to_string(),
            tags: tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect(),
        };
        resources::from_listed(&listed, "111122223333").unwrap_or_else(|| panic!("{arn}"))
    }

    fn sweep_policy() -> Policy {
        crate::rules::baseline::tests::policy(|t| {
            t.replace(
                "[naming]\n",
                "[naming.resources]\n\"ec2:instance\" = \"^{env}-[a-z0-9-]{3,48}$\"\n\"iam:role\" = \"^{env}-[A-Za-z0-9-]{3,48}$\"\n\n[naming]\n",
            )
        })
    }

    fn us_east_1() -> Region {
        Region::parse("us-east-1").expect("region")
    }

    #[test]
    fn a_sweep_fixes_exactly_what_it_can_leaves_owners_to_a_person_and_rewrites_nothing_in_place() {
        let policy = sweep_policy();
        let account = AccountId::parse("111122223333").expect("id");
        let bucket = "arn:aws:s3:::dev-reports";
        let topic = "arn:aws:sns:us-east-1:111122223333:dev-alerts";
        let listed = [
            // Compliant.
            found(
                "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0",
                &[("Environment", "dev"), ("Owner", "alice"), ("Name", "dev-web")],
            ),
            // Labelled prod to win ABAC access: corrected.
            found(bucket, &[("Environment", "prod"), ("Owner", "bob")]),
            // A misspelled key: renamed.
            found(topic, &[("env", "dev"), ("Owner", "carol")]),
            // No Owner, and no event to take one from: a person's job.
            found("arn:aws:iam::111122223333:role/dev-builder", &[("Environment", "dev")]),
            // Misnamed and already marked: reported again, not written again.
            found(
                "arn:aws:iam::111122223333:role/runner",
                &[("Environment", "dev"), ("Owner", "dave"), (VIOLATION_TAG, "naming")],
            ),
            // Protected: not even looked at.
            found(
                "arn:aws:iam::111122223333:role/aws-service-role/ops.amazonaws.com/AWSServiceRoleForOps",
                &[],
            ),
        ];
        let plan = plan_of(plan_listed(
            &account,
            &us_east_1(),
            &dev("111122223333"),
            &listed,
            &policy,
            "sweep s@t",
            Utc::now(),
        ));
        assert_eq!(plan.in_place, ["i-0123456789abcdef0"]);
        assert_eq!(plan.cause, "sweep s@t");
        let actions: Vec<String> = plan.actions.iter().map(ToString::to_string).collect();
        assert_eq!(plan.actions.len(), 2, "{actions:?}");
        let tagged = |api: TagApi, id: &str, set: &[Tag], remove: &[&str]| {
            plan.actions.iter().any(|a| {
                matches!(a, Action::Tag { api: a_api, resources, set: s, remove: r, .. }
                    if *a_api == api && resources == &[id.to_string()] && s == set && r.iter().map(String::as_str).eq(remove.iter().copied()))
            })
        };
        assert!(
            tagged(TagApi::Tagging, bucket, &[Tag::new("Environment", "dev")], &[]),
            "{actions:?}"
        );
        assert!(
            tagged(TagApi::Sns, topic, &[Tag::new("Environment", "dev")], &["env"]),
            "{actions:?}"
        );
        let by_resource = |id: &str| -> Vec<(bool, &str)> {
            plan.violations
                .iter()
                .filter(|v| v.resource == id)
                .map(|v| (v.fixable, v.problem.as_str()))
                .collect()
        };
        let builder = by_resource("dev-builder");
        assert!(
            matches!(builder.as_slice(), [(false, p)] if p.contains("Owner is missing") && p.contains("only its creation event")),
            "{builder:?}"
        );
        let runner = by_resource("runner");
        assert!(
            matches!(runner.as_slice(), [(false, p)] if p.contains("does not match")),
            "{runner:?}"
        );
        assert!(
            plan.notes.iter().any(|n| n.contains("AWSServiceRoleForOps")),
            "{:?}",
            plan.notes
        );
        assert_eq!(plan.severity, Severity::High, "a wrong Environment is an ABAC attempt");
    }

    #[test]
    fn a_sweep_writes_at_most_twenty_arns_per_tagging_call_and_nothing_in_detect_mode() {
        let account = AccountId::parse("111122223333").expect("id");
        let listed: Vec<Found> = (0..45)
            .map(|i| found(&format!("arn:aws:s3:::dev-bucket-{i}"), &[("Owner", "ops")]))
            .collect();
        let plan = plan_of(plan_listed(
            &account,
            &us_east_1(),
            &dev("111122223333"),
            &listed,
            &sweep_policy(),
            "sweep",
            Utc::now(),
        ));
        let sizes: Vec<usize> = plan
            .actions
            .iter()
            .map(|a| match a {
                Action::Tag { resources, .. } => resources.len(),
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(sizes, [20, 20, 5]);

        let detect = crate::rules::baseline::tests::policy(|t| t.replace("tags = \"fix\"", "tags = \"detect\""));
        let plan = plan_of(plan_listed(
            &account,
            &us_east_1(),
            &dev("111122223333"),
            &listed,
            &detect,
            "sweep",
            Utc::now(),
        ));
        assert_eq!(plan.mode, Mode::Detect);
        assert!(plan.actions.is_empty());
        assert_eq!(plan.violations.len(), 45);
    }

    #[test]
    fn a_sweep_of_an_account_outside_every_environment_changes_nothing() {
        let account = AccountId::parse("111122223333").expect("id");
        let sandbox = Placement {
            environment: None,
            ..dev("111122223333")
        };
        let listed = [found("arn:aws:s3:::anything", &[])];
        let decision = plan_listed(
            &account,
            &us_east_1(),
            &sandbox,
            &listed,
            &sweep_policy(),
            "sweep",
            Utc::now(),
        );
        assert!(
            matches!(
                decision,
                Decision::Ignore {
                    reason: Ignored::UnmanagedAccount { .. }
                }
            ),
            "{decision:?}"
        );
    }

    /// A tag call's decision in a dev account under the built-in policy.
    #[test]
    fn guardrails_keys_count_in_any_case_as_iam_and_the_scps_take_them() {
        // A waiver spelled otherwise, set by anyone but a setter, is removed by its own spelling.
        let sample = include_str!("../../../events/tag-enforcer/create-tags.json");
        let spelled = serde_json::json!([{"key": "Environment", "value": "prod"}, {"key": "Guardrail:Waiver", "value": "rules=tags until=2026-12-31 ticket=X"}]);
        let forged = decide_change(&tagged_by(sample, AGENT, spelled.clone()));
        assert!(forged.waived.is_empty());
        assert_eq!(removed_keys(&forged), ["Guardrail:Waiver"], "{forged:?}");
        // The same spelling from a setter is a waiver.
        assert_eq!(decide_change(&tagged_by(sample, SETTER, spelled)).waived.len(), 1);
        // Removing the quarantine tag in capitals is drift on a protected tag, reported.
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/tag-enforcer/untag-role.json")).expect("JSON");
        v["detail"]["requestParameters"]["tagKeys"] = serde_json::json!(["Guardrail:Quarantine"]);
        let untagged = decide_change(&call(&v.to_string()));
        assert!(
            untagged
                .violations
                .iter()
                .any(|v| !v.fixable && v.problem.contains("removed protected tag Guardrail:Quarantine")),
            "{:?}",
            untagged.violations
        );
        assert_eq!(untagged.severity, Severity::High);
    }

    #[test]
    fn a_bucket_waiver_set_with_put_bucket_tagging_is_removed_unless_a_setter_set_it() {
        let sample = include_str!("../../../events/tag-enforcer/put-bucket-tagging.json");
        let by_agent = decide_change(&call(sample));
        let [
            Action::Tag {
                api: TagApi::Tagging,
                resources,
                remove,
                set,
                ..
            },
        ] = by_agent.actions.as_slice()
        else {
            panic!("{:?}", by_agent.actions)
        };
        assert_eq!(resources, &["arn:aws:s3:::dev-build-cache-111122223333"]);
        assert_eq!(remove, &[WAIVER_TAG.to_string()]);
        assert!(set.is_empty(), "Environment=dev is right: {set:?}");
        // The call re-sends the tags it keeps: Owner among them is no change to report.
        assert_eq!(by_agent.violations.len(), 1, "{:?}", by_agent.violations);
        let mut v: serde_json::Value = serde_json::from_str(sample).expect("JSON");
        v["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = SETTER.into();
        v["detail"]["requestParameters"]["Tagging"]["TagSet"]["Tag"][0]["Value"] = "prod".into();
        let by_setter = decide_change(&call(&v.to_string()));
        assert!(
            by_setter.actions.is_empty() && by_setter.waived.len() == 1,
            "{by_setter:?}"
        );
        // A set of one tag arrives as one object, not a list.
        v["detail"]["requestParameters"]["Tagging"]["TagSet"]["Tag"] =
            serde_json::json!({"Key": "Environment", "Value": "prod"});
        let relabelled = decide_change(&call(&v.to_string()));
        assert!(
            relabelled
                .actions
                .iter()
                .any(|a| matches!(a, Action::Tag { set, .. } if set.contains(&Tag::new(ENVIRONMENT_TAG, "dev")))),
            "{relabelled:?}"
        );
    }
}
