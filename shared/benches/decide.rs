//! The CPU cost of Guardrail's decision per event, without network: decode, gate and every
//! function's rules (offline facts) over every sample in `events/` and every JSON file of
//! `../shared/corpus`, next to the parsing floor (`serde_json::from_slice::<Value>` of the same
//! bytes). `make bench` runs it; `make test` runs it once as a test (`make bench-quick`).

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use guardrail::apply::Session;
use guardrail::event::decode;
use guardrail::facts::StaticFacts;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use serde_json::Value;

#[path = "../tests/support/samples.rs"]
mod samples;

fn bench(c: &mut Criterion) {
    let inputs: Vec<Vec<u8>> = samples::fresh()
        .into_iter()
        .map(|(_, v)| v.to_string().into_bytes())
        .collect();
    let bytes: usize = inputs.iter().map(Vec::len).sum();
    let policy = Policy::builtin().expect("policy");
    let facts = StaticFacts {
        default_environment: Some("dev".into()),
        ..StaticFacts::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let session = Session::new("bench", "bench");
    let now = Utc::now();

    let mut group = c.benchmark_group("per input file");
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function("parse floor: serde_json to Value", |b| {
        b.iter(|| {
            for input in &inputs {
                std::hint::black_box(serde_json::from_slice::<Value>(input).ok());
            }
        })
    });
    group.bench_function("decode + gate + plan, every function", |b| {
        b.iter(|| {
            for input in &inputs {
                for event in decode(input).into_iter().flatten() {
                    for function in Function::ALL {
                        let decided = runtime.block_on(guardrail::pipeline::decide(
                            function, &policy, &facts, &session, &event, now,
                        ));
                        std::hint::black_box(decided.ok());
                    }
                }
            }
        })
    });
    group.finish();
    eprintln!("{} inputs, {bytes} bytes", inputs.len());
}

criterion_group!(benches, bench);
criterion_main!(benches);
