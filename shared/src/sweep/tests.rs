use super::*;

fn t(s: &str) -> DateTime<Utc> {
    crate::event::time::parse(s).unwrap_or_else(|| panic!("{s}"))
}

fn request(body: Value) -> Result<Request, Rejection> {
    Request::from_input(&json!({ INPUT_KEY: body })).unwrap_or_else(|| panic!("not a sweep request"))
}

fn account(n: u64) -> AccountId {
    AccountId::parse(&format!("{n:012}")).unwrap_or_else(|| panic!("{n}"))
}

#[test]
fn a_scheduled_start_reads_back_as_itself() {
    let r = request(json!({
        "name": "daily",
        "time": "2026-11-23T03:00:00Z",
        "accounts": ["111122223333"],
        "ous": ["dev"],
        "dry_run": true
    }));
    let Ok(Request::Start(start)) = &r else { panic!("{r:?}") };
    assert_eq!(start.time, t("2026-11-23T03:00:00Z"));
    assert_eq!(start.accounts, [account(111_122_223_333)]);
    assert_eq!(start.ous, ["dev"]);
    assert!(start.dry_run);
    let request = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(request.id(), "daily@2026-11-23T03:00:00Z");
    assert_eq!(Request::from_input(&request.to_input()), Some(Ok(request.clone())));
    let follow_up = Request::Continue { id: request.id() };
    assert_eq!(Request::from_input(&follow_up.to_input()), Some(Ok(follow_up)));
}

#[test]
fn defaults_cover_every_account_under_the_name_sweep() {
    let r = request(json!({"time": "2026-11-23T03:00:00+01:00"}));
    let Ok(Request::Start(start)) = &r else { panic!("{r:?}") };
    assert_eq!(start.name, "sweep");
    assert!(start.accounts.is_empty() && start.ous.is_empty() && !start.dry_run);
    assert_eq!(r.map(|r| r.id()).ok().as_deref(), Some("sweep@2026-11-23T02:00:00Z"));
}

#[test]
fn events_are_not_sweep_requests() {
    assert_eq!(
        Request::from_input(&json!({"detail-type": "AWS API Call via CloudTrail"})),
        None
    );
    assert_eq!(Request::from_input(&json!([INPUT_KEY])), None);
}

#[test]
fn malformed_requests_are_rejected_with_the_reason() {
    let cases = [
        (json!("daily"), "not an object"),
        (json!({"name": "daily"}), "guardrail-sweep.time"),
        (json!({"time": "yesterday"}), "not a timestamp"),
        (
            json!({"time": "2026-11-23T03:00:00Z", "acounts": []}),
            "unknown key \"acounts\"",
        ),
        (
            json!({"time": "2026-11-23T03:00:00Z", "accounts": ["1111"]}),
            "not a 12-digit",
        ),
        (
            json!({"time": "2026-11-23T03:00:00Z", "accounts": "111122223333"}),
            "not a list",
        ),
        (json!({"time": "2026-11-23T03:00:00Z", "ous": [""]}), "not an OU name"),
        (
            json!({"time": "2026-11-23T03:00:00Z", "ous": vec!["dev"; 51]}),
            "at most 50",
        ),
        (json!({"time": "2026-11-23T03:00:00Z", "dry_run": "yes"}), "dry_run"),
        (json!({"time": "2026-11-23T03:00:00Z", "name": "a b"}), "\"name\""),
        (json!({"continue": "daily"}), "not a sweep id"),
        (
            json!({"continue": "daily@2026-11-23T03:00:00Z", "dry_run": true}),
            "no other keys",
        ),
    ];
    for (body, expected) in cases {
        match request(body.clone()) {
            Ok(r) => panic!("{body} was accepted as {r:?}"),
            Err(e) => assert!(e.to_string().contains(expected), "{body}: {e}"),
        }
    }
}

fn row(n: u64, tally: Tally) -> Row {
    Row {
        account: account(n).to_string(),
        name: format!("acct-{n}"),
        environment: Some("dev".into()),
        rules: BTreeMap::from([("baseline".to_string(), tally)]),
        note: String::new(),
    }
}

#[test]
fn progress_counts_accounts_per_outcome_and_rule_and_lists_only_findings() {
    let mut p = Progress::new(
        "daily@x".into(),
        false,
        t("2026-11-23T03:00:00Z"),
        (1..=4).map(account).collect(),
    );
    p.legs = 2;
    let clean = Tally {
        in_place: 9,
        ..Tally::default()
    };
    p.record(row(1, clean));
    p.record(row(
        2,
        Tally {
            in_place: 7,
            changed: 2,
            ..Tally::default()
        },
    ));
    p.record(row(
        3,
        Tally {
            in_place: 8,
            needs_a_person: 1,
            ..Tally::default()
        },
    ));
    p.record(Row::failed(&account(4), "acct-4", Rule::Baseline, "AccessDenied\nmore"));
    assert_eq!(p.pending(), None);
    assert_eq!(
        p.tally,
        Accounts {
            clean: 1,
            changed: 1,
            to_review: 1,
            failed: 1
        }
    );
    assert_eq!(
        p.totals["baseline"],
        Tally {
            in_place: 24,
            changed: 2,
            would_change: 0,
            needs_a_person: 1,
            failed: 1
        }
    );
    assert_eq!(p.rows.len(), 3, "the clean account is counted, not listed");
    assert_eq!(p.rows[2].note, "AccessDenied");

    let alert = p.summary(Function::AccountBaseline, t("2026-11-23T03:20:00Z"));
    assert_eq!(alert.severity, Severity::High);
    assert_eq!(alert.action, "swept");
    assert_eq!(alert.event_id.as_deref(), Some("daily@x"));
    assert_eq!(alert.why.len(), 3);
    assert!(
        alert.why[0].contains("000000000002 acct-2 [dev]: baseline: 2 changed"),
        "{:?}",
        alert.why
    );
    assert_eq!(
        alert.done,
        ["baseline: 24 in place, 2 changed, 0 would change, 1 need(s) a person, 1 failed"]
    );
    assert!(alert.happened.contains("4 account(s)") && alert.happened.contains("2 invocation(s)"));
    assert!(
        alert
            .subject()
            .contains("swept 4 account(s): 1 changed, 1 to review, 1 failed, 1 in place")
    );
}

#[test]
fn a_sweep_of_thousands_of_accounts_keeps_its_record_and_alert_small() {
    let n = 10_000;
    let mut p = Progress::new(
        "daily@x".into(),
        false,
        t("2026-11-23T03:00:00Z"),
        (1..=n).map(account).collect(),
    );
    for i in 1..=n {
        p.record(row(
            i,
            Tally {
                changed: 1,
                ..Tally::default()
            },
        ));
    }
    assert_eq!(p.rows.len(), MAX_ROWS);
    assert_eq!(p.unlisted, 10_000 - MAX_ROWS);
    let record = serde_json::to_string(&p).unwrap_or_default().len();
    assert!(record < 350 * 1024, "{record} bytes: over DynamoDB's 400 KB item");
    let alert = p.summary(Function::AccountBaseline, t("2026-11-23T05:00:00Z"));
    assert!(serde_json::to_vec(&alert).map_or(0, |v| v.len()) <= 24 * 1024);
    assert!(
        alert.notes.iter().any(|n| n.contains("9800 more account(s)")),
        "{:?}",
        alert.notes
    );
}

#[test]
fn an_all_clean_sweep_is_for_information() {
    let mut p = Progress::new("daily@x".into(), true, t("2026-11-23T03:00:00Z"), vec![account(1)]);
    p.record(row(
        1,
        Tally {
            in_place: 9,
            ..Tally::default()
        },
    ));
    let alert = p.summary(Function::AccountBaseline, t("2026-11-23T03:01:00Z"));
    assert_eq!(alert.severity, Severity::Info);
    assert!(alert.why.is_empty());
    assert_eq!(alert.in_place, ["1 account(s) had everything in place"]);
    assert!(alert.happened.contains("a dry run"));
}

#[test]
fn pace_spaces_writes_at_the_rate_and_lets_the_first_go_at_once() {
    let start = Instant::now();
    let mut pace = Pace::new(2);
    assert_eq!(pace.delay(start, 1), Duration::ZERO);
    // One write booked half a second; the next waits for it.
    assert_eq!(pace.delay(start, 1), Duration::from_millis(500));
    // A teardown of 4 calls starts after both and holds the next back 2 s.
    assert_eq!(pace.delay(start, 4), Duration::from_secs(1));
    assert_eq!(pace.delay(start + Duration::from_secs(1), 1), Duration::from_secs(2));
    // After a quiet spell nothing waits.
    assert_eq!(pace.delay(start + Duration::from_secs(60), 1), Duration::ZERO);
}

#[test]
fn a_sweep_records_what_it_changed_but_not_what_it_leaves_alone_under_a_waiver() {
    use crate::plan::{Action, Plan, Tag, Waived};
    use crate::policy::{Mode, Rule};
    use crate::rules::resources::TagApi;
    let mut plan = Plan::new(Rule::Tags, Mode::Fix, account(111_122_223_333), "2 resources");
    plan.actions.push(Action::Tag {
        api: TagApi::Ec2,
        region: crate::ids::Region::parse("us-east-1").unwrap_or_else(|| panic!("region")),
        resources: vec!["i-1".into()],
        set: vec![Tag::new("Environment", "dev")],
        remove: Vec::new(),
    });
    plan.waived.push(Waived {
        resource: "i-2".into(),
        waiver: "waiver SEC-1 until 2026-12-31".into(),
        problems: "required tag Owner is missing".into(),
    });
    let source = crate::ledger::Source {
        function: crate::rules::Function::TagEnforcer,
        event: "sweep#daily",
        time: t("2026-11-23T03:00:00Z"),
        recorded: t("2026-11-23T03:00:01Z"),
        attempt: 1,
        note: None,
    };
    let steps = [StepRow::new("tag i-1", "done", "")];
    let entries = ledger_entries(Some(&source), &plan, &steps);
    let recorded: Vec<(&str, crate::ledger::Outcome)> =
        entries.iter().map(|e| (e.resource.as_str(), e.outcome)).collect();
    assert_eq!(recorded, [("i-1", crate::ledger::Outcome::Applied)]);
    // The same plan from an event records the waived resource too.
    let from_event = crate::ledger::entries(&source, &plan, &[(&plan.actions[0], crate::ledger::Ran::Applied)]);
    assert!(
        from_event
            .iter()
            .any(|e| e.resource == "i-2" && e.outcome == crate::ledger::Outcome::Waived)
    );
}
