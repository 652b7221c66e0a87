//! Hostile input: every sample in `events/` and every file of `../shared/corpus`, made fresh and
//! then mutated (a field removed, nulled, retyped, made huge or deeply nested, an account id
//! replaced, a timestamp moved), goes through decode, gate and every function's rules without a
//! panic, ending in a decision, a named rejection or a stated error; each decision renders as an
//! alert within SNS's limits.

use std::sync::OnceLock;

use chrono::{Duration, SecondsFormat, Utc};
use guardrail::alert::Alert;
use guardrail::apply::Session;
use guardrail::event::decode_value;
use guardrail::facts::StaticFacts;
use guardrail::plan::Decision;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use proptest::prelude::*;
use serde_json::{Value, json};

#[path = "support/samples.rs"]
mod samples;

/// Every sample and corpus file that is JSON, made fresh.
fn seeds() -> &'static Vec<(String, Value)> {
    static SEEDS: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let out = samples::fresh();
        assert!(out.len() > 60, "{} seeds", out.len());
        out
    })
}

/// One step into a JSON value.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                prefix.push(Step::Key(k.clone()));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Remove,
    Null,
    /// A number, a boolean, an array or an object where the value was.
    Retype(u8),
    Huge(usize),
    /// The value wrapped in this many arrays.
    Deep(usize),
    /// Another account id, well formed or not.
    Account(String),
    /// Every timestamp moved by this many seconds (stale or from the future).
    Shift(i64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Remove),
        Just(Mutation::Null),
        (0u8..4).prop_map(Mutation::Retype),
        (10_000usize..300_000).prop_map(Mutation::Huge),
        (2usize..400).prop_map(Mutation::Deep),
        prop_oneof![
            "[0-9]{12}",
            "[0-9]{1,11}",
            "[a-z0-9:/*.-]{0,20}",
            Just("000000000000".to_string())
        ]
        .prop_map(Mutation::Account),
        prop_oneof![-400_000i64..-3_000, 600i64..400_000].prop_map(Mutation::Shift),
    ]
}

fn apply(v: &mut Value, path: &[Step], m: &Mutation) {
    if let Mutation::Shift(secs) = m {
        shift(v, *secs);
        return;
    }
    if let Mutation::Account(id) = m {
        replace_accounts(v, id);
        return;
    }
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = v;
    for step in parents {
        at = match step {
            Step::Key(k) => &mut at[k.as_str()],
            Step::Index(i) => &mut at[*i],
        };
    }
    if let (Mutation::Remove, Step::Key(k)) = (m, last) {
        if let Some(map) = at.as_object_mut() {
            map.remove(k);
        }
        return;
    }
    let target = match last {
        Step::Key(k) => &mut at[k.as_str()],
        Step::Index(i) => &mut at[*i],
    };
    *target = match m {
        Mutation::Remove | Mutation::Null => Value::Null,
        Mutation::Retype(0) => json!(12_345_678_901_234_i64),
        Mutation::Retype(1) => json!(true),
        Mutation::Retype(2) => json!([target.take()]),
        Mutation::Retype(_) => json!({"value": target.take()}),
        Mutation::Huge(n) => json!("A".repeat(*n)),
        Mutation::Deep(n) => {
            let mut inner = target.take();
            for _ in 0..*n {
                inner = json!([inner]);
            }
            inner
        }
        Mutation::Account(_) | Mutation::Shift(_) => unreachable!("handled above"),
    };
}

fn replace_accounts(v: &mut Value, id: &str) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if ["account", "accountId", "recipientAccountId", "AccountId"].contains(&k.as_str())
                    && child.is_string()
                {
                    *child = json!(id);
                } else {
                    replace_accounts(child, id);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| replace_accounts(c, id)),
        _ => {}
    }
}

fn shift(v: &mut Value, secs: i64) {
    let at = (Utc::now() + Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Secs, true);
    samples::set_times(v, &at);
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("runtime"))
}

/// Decode, gate and rules of every function, offline; `Err` says what went wrong.
fn judge(input: Value, policy: &Policy) -> Result<usize, String> {
    let facts = StaticFacts {
        default_environment: Some("agents".into()),
        ..StaticFacts::default()
    };
    let now = Utc::now();
    let mut decided = 0;
    for decoded in decode_value(input) {
        let event = match decoded {
            Ok(event) => event,
            Err(rejection) if !rejection.to_string().is_empty() && !rejection.code().is_empty() => continue,
            Err(rejection) => return Err(format!("a rejection without a reason: {rejection:?}")),
        };
        for function in Function::ALL {
            let session = Session::new(function.name(), "mutant");
            let outcome = runtime().block_on(guardrail::pipeline::decide(
                function, policy, &facts, &session, &event, now,
            ));
            match outcome {
                Ok(Ok(Decision::Act { plan })) => {
                    let alert = Alert::for_plan(function, &plan, false, event.id(), now);
                    if alert.subject().chars().count() > 100 || alert.sns_message().len() > 256 * 1024 {
                        return Err(format!("{function}: an alert beyond SNS's limits: {}", alert.subject()));
                    }
                    decided += 1;
                }
                Ok(Ok(Decision::Ignore { .. })) => decided += 1,
                Ok(Err(rejection)) if !rejection.code().is_empty() => decided += 1,
                Ok(Err(rejection)) => return Err(format!("{function}: an unnamed rejection {rejection:?}")),
                // Offline facts do not know every account or principal: a stated error.
                Err(e) if !e.to_string().is_empty() => decided += 1,
                Err(e) => return Err(format!("{function}: an error without a message {e:?}")),
            }
        }
    }
    Ok(decided)
}

#[test]
fn every_seed_is_judged_before_mutation() {
    let policy = Policy::builtin().expect("policy");
    let decided: usize = seeds()
        .iter()
        .map(|(name, v)| judge(v.clone(), &policy).unwrap_or_else(|e| panic!("{name}: {e}")))
        .sum();
    assert!(decided > 100, "{decided}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn mutated_events_end_in_a_decision_or_a_named_rejection(
        seed in 0usize..10_000,
        at in 0usize..10_000,
        m in mutation(),
    ) {
        let policy = Policy::builtin().expect("policy");
        let (name, original) = &seeds()[seed % seeds().len()];
        let mut value = original.clone();
        let mut all = Vec::new();
        paths(&value, &mut Vec::new(), &mut all);
        let path = if all.is_empty() { Vec::new() } else { all[at % all.len()].clone() };
        apply(&mut value, &path, &m);
        let judged = judge(value, &policy);
        prop_assert!(judged.is_ok(), "{name} {path:?} {m:?}: {:?}", judged.err());
    }
}
