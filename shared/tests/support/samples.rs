//! The JSON inputs the mutation test and the decide benchmark run over: every sample in
//! `events/` and every JSON file of `../shared/corpus`, with their timestamps moved to now so
//! that the gate lets them through to the rules. (Included with `#[path]`: tests and benches
//! share no crate of their own.)

use std::path::PathBuf;

use chrono::{SecondsFormat, Utc};
use guardrail::rules::Function;
use serde_json::Value;

/// The keys holding an event's time, in the shapes Guardrail decodes.
const TIME_KEYS: [&str; 6] = ["time", "eventTime", "updatedAt", "createdAt", "timestamp", "UpdatedAt"];

/// Each JSON input with its file name, made fresh. The corpus's deliberately broken files are
/// left out: they are the decoder tests' job.
pub fn fresh() -> Vec<(String, Value)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = Function::ALL
        .iter()
        .map(|f| root.join("events").join(f.name()))
        .collect();
    dirs.push(root.join("../shared/corpus"));
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut out = Vec::new();
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let Ok(mut value) = serde_json::from_slice::<Value>(&std::fs::read(&file).expect("read")) else {
                continue;
            };
            set_times(&mut value, &now);
            out.push((file.display().to_string(), value));
        }
    }
    out
}

/// Sets every timestamp of `v` to `at`.
pub fn set_times(v: &mut Value, at: &str) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if TIME_KEYS.contains(&k.as_str()) && child.is_string() {
                    *child = Value::String(at.to_string());
                } else {
                    set_times(child, at);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| set_times(c, at)),
        _ => {}
    }
}
