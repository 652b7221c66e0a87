//! The CPU cost of Guardrail's decision per event, without network: decode, gate and every
//! function's rules (offline facts) over every sample in `events/` and every JSON file of
//! `../shared/corpus`, next to the parsing floor (`serde_json::from_slice::<Value>` of the same
//! bytes). `make bench` runs it; `make test` runs it once as a test (`cargo test --benches`).

use std::path::PathBuf;

use chrono::{SecondsFormat, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use guardrail::apply::Session;
use guardrail::event::decode;
use guardrail::facts::StaticFacts;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use serde_json::Value;

/// Every JSON input, its timestamps moved to now so that the gate lets it through to the rules.
fn inputs() -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = Function::ALL
        .iter()
        .map(|f| root.join("events").join(f.name()))
        .collect();
    dirs.push(root.join("../shared/corpus"));
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("{} is missing", dir.display());
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files.iter().filter(|p| p.extension().is_some_and(|x| x == "json")) {
            let Ok(mut value) = serde_json::from_slice::<Value>(&std::fs::read(file).unwrap_or_default()) else {
                continue;
            };
            freshen(&mut value, &now);
            out.push(value.to_string().into_bytes());
        }
    }
    out
}

fn freshen(v: &mut Value, now: &str) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if ["time", "eventTime", "updatedAt", "createdAt", "timestamp"].contains(&k.as_str())
                    && child.is_string()
                {
                    *child = Value::String(now.to_string());
                } else {
                    freshen(child, now);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| freshen(c, now)),
        _ => {}
    }
}

fn bench(c: &mut Criterion) {
    let inputs = inputs();
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
