//! Fuzz target: any bytes through decode, gate, every function's rules and the alert that would
//! be sent. None may panic, and an alert must always fit in one SNS message.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};

use chrono::{Duration, Utc};
use guardrail::alert::Alert;
use guardrail::apply::Session;
use guardrail::event::decode;
use guardrail::facts::StaticFacts;
use guardrail::plan::Decision;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use libfuzzer_sys::fuzz_target;

/// SNS's limit on a message, which every alert must stay under.
const SNS_MAX_BYTES: usize = 256 * 1024;

static POLICY: LazyLock<Policy> = LazyLock::new(|| Policy::builtin().expect("the built-in policy is valid"));

/// Offline facts answer at once, so one poll finishes the decision; a pending future here
/// would mean a fact source that is not offline, which is a bug in this target.
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("offline facts never wait"),
    }
}

fuzz_target!(|bytes: &[u8]| {
    let facts = StaticFacts {
        default_environment: Some("dev".into()),
        ..StaticFacts::default()
    };
    let session = Session::new("fuzz", "fuzz");
    for event in decode(bytes).into_iter().flatten() {
        // Judge the event just after its own time, so that the freshness gate lets it through
        // to the rules (a stale event is one rejection; the rules are where the work is).
        let now = event.time().map_or_else(Utc::now, |t| t + Duration::seconds(1));
        for function in Function::ALL {
            let decided = ready(guardrail::pipeline::decide(
                function, &POLICY, &facts, &session, &event, now,
            ));
            if let Ok(Ok(Decision::Act { plan })) = decided {
                for applied in [false, true] {
                    let alert = Alert::for_plan(function, &plan, applied, Some("fuzz"), now);
                    let message = alert.sns_message();
                    assert!(message.len() <= SNS_MAX_BYTES, "alert of {} bytes", message.len());
                    let _ = (alert.subject(), alert.text(), alert.attributes());
                }
            }
        }
    }
});
