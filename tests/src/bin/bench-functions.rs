//! `make bench`'s function half: each function binary under a local Lambda Runtime API against
//! the emulator, on the three jobs the Cloud Custodian peer runs (RunInstances → tags, CreateRole
//! → tags, GuardDuty finding → quarantine + SNS). Cold: process start → ready for its first
//! event → first event handled, and peak RSS. Warm: per-event latency and the HTTP requests each
//! event costs, against the fewest the job needs. Fails (exit 1) when a job makes more requests
//! than its budget, so a change that adds calls cannot pass unnoticed.
//!
//! `bench-functions --help` lists its options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guardrail::rules::Function;
use guardrail_tests::World;
use guardrail_tests::agents::{EXFILTRATION, TRUST, agent_role, finding};
use guardrail_tests::events::{fresh, launch, launch_event, load};
use guardrail_tests::runtime::RuntimeApi;
use serde_json::{Value, json};

/// How long a process may take to start, or an event to be handled, before the run fails.
const LIMIT: Duration = Duration::from_secs(60);

/// The jobs both Guardrail and the peer run, with the peer's policy name for each.
#[derive(Clone, Copy, Debug)]
enum Job {
    Ec2Tags,
    RoleTags,
    Quarantine,
}

impl Job {
    const ALL: [Job; 3] = [Job::Ec2Tags, Job::RoleTags, Job::Quarantine];

    fn name(self) -> &'static str {
        match self {
            Job::Ec2Tags => "RunInstances → tags",
            Job::RoleTags => "CreateRole → tags",
            Job::Quarantine => "GuardDuty finding → quarantine + SNS",
        }
    }

    fn peer(self) -> &'static str {
        match self {
            Job::Ec2Tags => "ec2-require-tags",
            Job::RoleTags => "iam-role-require-tags",
            Job::Quarantine => "gd-iam-role-quarantine",
        }
    }

    fn function(self) -> Function {
        match self {
            Job::Ec2Tags | Job::RoleTags => Function::TagEnforcer,
            Job::Quarantine => Function::AgentQuarantine,
        }
    }

    /// The OU of the member account the job runs in.
    fn ou(self) -> &'static str {
        match self {
            Job::Ec2Tags | Job::RoleTags => "dev",
            Job::Quarantine => "agents",
        }
    }

    /// The fewest AWS requests a warm event of this job needs, each with its reason. The first
    /// ones are the job itself (what the peer does too); the rest are what Guardrail promises
    /// on top: acting in the member account, at most once, and an alert.
    fn minimum(self) -> &'static [(&'static str, &'static str)] {
        const GUARANTEES: [(&str, &str); 4] = [
            (
                "sts.AssumeRole",
                "credentials for the member account (the peer acts in its own account)",
            ),
            (
                "dynamodb.UpdateItem",
                "claim the event: at most once (the peer has no replay guard)",
            ),
            ("sns.Publish", "the alert"),
            ("dynamodb.UpdateItem", "record the event done"),
        ];
        match self {
            Job::Ec2Tags => &[
                (
                    "ec2.DescribeVolumes",
                    "the instance's volumes, which the event does not name and which are tagged too (the peer tags the instance only)",
                ),
                (
                    "ec2.CreateTags",
                    "the tags, on the instance, its interfaces and its volumes in one call: the event carries the creation tags, so the instance is not read",
                ),
                GUARANTEES[0],
                GUARANTEES[1],
                GUARANTEES[2],
                GUARANTEES[3],
            ],
            Job::RoleTags => &[
                (
                    "iam.TagRole",
                    "the tags themselves: the event carries the role's creation tags",
                ),
                GUARANTEES[0],
                GUARANTEES[1],
                GUARANTEES[2],
                GUARANTEES[3],
            ],
            Job::Quarantine => &[
                ("iam.GetRole", "the role's tags and state, to record what it was"),
                (
                    "iam.ListRolePolicies",
                    "its inline policies, to record and restore them",
                ),
                (
                    "iam.ListAttachedRolePolicies",
                    "its managed policies, to record and restore them",
                ),
                (
                    "iam.TagRole",
                    "mark the role quarantined, first: the SCP protects the policies of a role so tagged",
                ),
                ("iam.PutRolePolicy", "the containment itself"),
                (
                    "dynamodb.PutItem",
                    "the quarantine record, so release is a deliberate act that restores it",
                ),
                GUARANTEES[0],
                GUARANTEES[1],
                GUARANTEES[2],
                GUARANTEES[3],
            ],
        }
    }

    /// The most requests a warm event may make: the bench fails above it. Raise it only with
    /// a reason written next to [`Job::minimum`]. Above the minimum today:
    /// - the quarantine reads the quarantine record (GetItem, to merge with an earlier one) and
    ///   records progress between its three actions (+3), so that a retry repeats no finished
    ///   step;
    /// - the audit ledger: one conditional `dynamodb.PutItem` per resource of each action, so
    ///   that an entry is written once and never changed (the instance and its interface +2,
    ///   the role +1, the role's containment, tag and record +3). One `TransactWriteItems` per
    ///   event would bring this back to +1;
    /// - the blast-radius breaker: one `dynamodb.UpdateItem` counts the plan's changes before it
    ///   acts (+1), so that a bad policy cannot change a whole account.
    fn budget(self) -> usize {
        match self {
            Job::Ec2Tags => 9,
            Job::RoleTags => 7,
            Job::Quarantine => 17,
        }
    }

    /// A fresh resource in the member account and the event that reports it.
    async fn prepare(self, world: &World, n: usize) -> Value {
        let account = world.org.account(self.ou()).to_string();
        let member = world.emulator.config_as(&account).await;
        match self {
            Job::Ec2Tags => {
                let launched = launch(&member, &[]).await;
                launch_event(&account, &[&launched], &[])
            }
            Job::RoleTags => {
                let name = format!("dev-bench-{n}-{}", guardrail_tests::emulator::unique());
                let iam = aws_sdk_iam::Client::new(&member);
                let role = iam
                    .create_role()
                    .role_name(&name)
                    .assume_role_policy_document(TRUST)
                    .send()
                    .await
                    .expect("CreateRole");
                let role = role.role().expect("role");
                let mut event = fresh(load("tag-enforcer/create-role.json"), &account);
                let d = &mut event["detail"];
                d["requestParameters"]["roleName"] = json!(name);
                d["requestParameters"]["tags"] = json!([]);
                d["responseElements"]["role"]["roleName"] = json!(name);
                d["responseElements"]["role"]["roleId"] = json!(role.role_id());
                d["responseElements"]["role"]["arn"] = json!(role.arn());
                d["responseElements"]["role"]["tags"] = json!([]);
                event
            }
            Job::Quarantine => {
                let name = format!("agent-bench-{n}-{}", guardrail_tests::emulator::unique());
                agent_role(&member, &name, "/agents/", &[("team", "ml")]).await;
                finding(&account, "AssumedRole", &name, EXFILTRATION, 8.0)
            }
        }
    }
}

/// Median, spread and extremes of a sample.
#[derive(Clone, Debug, Default, serde::Serialize)]
struct Stats {
    n: usize,
    median: f64,
    p25: f64,
    p75: f64,
    p95: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(values: &[f64]) -> Stats {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if v.is_empty() {
                return f64::NAN;
            }
            let pos = q * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        };
        Stats {
            n: v.len(),
            median: at(0.5),
            p25: at(0.25),
            p75: at(0.75),
            p95: at(0.95),
            min: v.first().copied().unwrap_or(f64::NAN),
            max: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// What one job measured.
#[derive(Debug, Default, serde::Serialize)]
struct JobResult {
    job: String,
    function: String,
    /// Milliseconds.
    cold_ready_ms: Stats,
    cold_handled_ms: Stats,
    cold_peak_rss_mib: Stats,
    /// CPU time of all the process's threads from start to the first answer: the rest of
    /// `cold_handled_ms` is waiting, mostly for the emulator.
    cold_cpu_ms: Stats,
    cold_requests: Stats,
    warm_ms: Stats,
    warm_requests: Stats,
    /// The requests of one warm event, by `service.Action`.
    warm_calls: BTreeMap<String, usize>,
    minimum: usize,
    budget: usize,
    peer: Option<Peer>,
}

/// The peer's medians for the same job, from `run_peer.sh`'s results.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct Peer {
    cold_handled_ms: f64,
    cold_peak_rss_mib: f64,
    warm_ms: f64,
    warm_requests: f64,
}

impl Peer {
    /// No peer figures: shown as dashes.
    fn unknown() -> Peer {
        Peer {
            cold_handled_ms: f64::NAN,
            cold_peak_rss_mib: f64::NAN,
            warm_ms: f64::NAN,
            warm_requests: f64::NAN,
        }
    }
}

/// The benchmark's options (see the module doc).
#[derive(clap::Parser)]
struct Args {
    /// Where the function binaries are (`target/release` for `make bench`).
    #[arg(long)]
    bin_dir: PathBuf,
    /// Warm events per job, after one warm-up event.
    #[arg(long, default_value_t = 20)]
    warm: usize,
    /// Cold processes per job, one event each.
    #[arg(long, default_value_t = 20)]
    cold: usize,
    /// The peer's `out/results` directory, from `run_peer.sh`.
    #[arg(long)]
    peer: Option<PathBuf>,
    /// Criterion's output directory, for the decide benchmark's medians.
    #[arg(long)]
    criterion: Option<PathBuf>,
    /// The Markdown file whose `<!-- bench -->` section to rewrite (the SVG goes beside it).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// `make package`'s output (`<dir>/<function>/bootstrap.zip`), for the size table.
    #[arg(long)]
    zips: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

fn args() -> Result<Args, String> {
    let a = <Args as clap::Parser>::parse();
    if !a.bin_dir.join("tag-enforcer").exists() {
        return Err(format!(
            "no function binaries in {:?}: build them first (`cargo build --release -p tag-enforcer -p agent-quarantine`) and pass --bin-dir",
            a.bin_dir
        ));
    }
    Ok(a)
}

/// A function process serving a fresh runtime API.
struct Process {
    child: std::process::Child,
    api: RuntimeApi,
    spawned: Instant,
}

impl Process {
    async fn start(binary: &Path, world: &World, log: &Path) -> Process {
        let api = RuntimeApi::start().await;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log");
        let spawned = Instant::now();
        let child = Command::new(binary)
            .env_clear()
            .envs(world.function_env())
            .env("GUARDRAIL_POLICY", bench_policy())
            .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Process { child, api, spawned }
    }

    /// CPU time of all the process's threads so far, in milliseconds (`schedstat`, in ns).
    fn cpu_ms(&self) -> f64 {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id()));
        let ns: u64 = tasks
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        if ns == 0 { f64::NAN } else { ns as f64 / 1e6 }
    }

    /// The process's peak resident set so far, in MiB (`VmHWM`).
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped policy with the blast-radius breaker's limits at their highest: a job puts
/// 40-odd events into one account within minutes, and each must act, as the peer's do.
fn bench_policy() -> &'static str {
    static FILE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let text = guardrail::policy::BUILTIN_POLICY
            .replace("\ntags = 500\n", "\ntags = 1000\n")
            .replace("\nquarantine = 10\n", "\nquarantine = 1000\n");
        let limits = guardrail::policy::Policy::from_toml(&text, "bench")
            .expect("bench policy")
            .safety
            .breaker;
        assert_eq!(
            limits.limit(guardrail::policy::Rule::Quarantine),
            Some(1000),
            "the shipped limits moved"
        );
        let path = std::env::temp_dir().join(format!("guardrail-bench-policy-{}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write the bench policy");
        path.to_string_lossy().into_owned()
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Fails unless the function applied the event.
fn applied(answer: &Result<Value, Value>, job: Job) -> Result<(), String> {
    match answer {
        Ok(v) if v[0]["outcome"] == "applied" => Ok(()),
        other => Err(format!("{}: the event was not applied: {other:?}", job.name())),
    }
}

async fn run_job(job: Job, world: &World, a: &Args, log: &Path) -> Result<JobResult, String> {
    let binary = a.bin_dir.join(job.function().name());
    let mut events = Vec::new();
    for n in 0..(a.cold + a.warm + 1) {
        events.push(job.prepare(world, n).await);
    }
    let mut result = JobResult {
        job: job.name().into(),
        function: job.function().name().into(),
        minimum: job.minimum().len(),
        budget: job.budget(),
        ..JobResult::default()
    };

    let (mut ready, mut handled, mut rss, mut cpu, mut cold_requests) = (vec![], vec![], vec![], vec![], vec![]);
    for (i, event) in events.drain(..a.cold).enumerate() {
        let mark = world.emulator.calls().len();
        let p = Process::start(&binary, world, log).await;
        let at = p
            .api
            .ready(LIMIT)
            .await
            .map_err(|e| format!("{}: {e} (log: {})", job.name(), log.display()))?;
        let answer = p.api.invoke(&event, LIMIT).await?;
        applied(&answer.result, job)?;
        ready.push(ms(at - p.spawned));
        handled.push(ms(answer.answered - p.spawned));
        rss.push(p.peak_rss_mib());
        cpu.push(p.cpu_ms());
        cold_requests.push((world.emulator.calls().len() - mark) as f64);
        progress(job, "cold", i + 1, a.cold);
    }
    result.cold_ready_ms = Stats::of(&ready);
    result.cold_handled_ms = Stats::of(&handled);
    result.cold_peak_rss_mib = Stats::of(&rss);
    result.cold_cpu_ms = Stats::of(&cpu);
    result.cold_requests = Stats::of(&cold_requests);

    let p = Process::start(&binary, world, log).await;
    p.api.ready(LIMIT).await?;
    let mut events = events.into_iter();
    let warmup = events.next().ok_or("no warm-up event")?;
    applied(&p.api.invoke(&warmup, LIMIT).await?.result, job)?;
    let (mut latency, mut requests) = (vec![], vec![]);
    for (i, event) in events.enumerate() {
        let mark = world.emulator.calls().len();
        let answer = p.api.invoke(&event, LIMIT).await?;
        applied(&answer.result, job)?;
        latency.push(ms(answer.answered - answer.delivered));
        let calls = world.emulator.calls_since(mark);
        requests.push(calls.len() as f64);
        if i == 0 {
            for c in calls {
                *result.warm_calls.entry(c).or_default() += 1;
            }
        }
        progress(job, "warm", i + 1, a.warm);
    }
    result.warm_ms = Stats::of(&latency);
    result.warm_requests = Stats::of(&requests);
    result.peer = a.peer.as_deref().and_then(|dir| peer(dir, job));
    Ok(result)
}

/// `cold 3/20` on one line rewritten in a terminal; one line per finished phase in a log.
fn progress(job: Job, phase: &str, done: usize, of: usize) {
    use std::io::IsTerminal;
    let line = format!("  {:<40} {phase} {done}/{of}", job.name());
    if std::io::stderr().is_terminal() {
        eprint!("\r{line}   ");
        if phase == "warm" && done == of {
            eprintln!();
        }
    } else if done == of {
        eprintln!("{line}");
    }
}

/// The peer's medians for a job from `run_peer.sh`'s `out/results`.
fn peer(dir: &Path, job: Job) -> Option<Peer> {
    let read = |name: String| -> Option<Value> { serde_json::from_slice(&std::fs::read(dir.join(name)).ok()?).ok() };
    // Each figure is a summary with its median.
    let median = |v: &Value| v["median"].as_f64().unwrap_or(f64::NAN);
    let warm = read(format!("warm-{}.json", job.peer()))?;
    let cold = read(format!("cold-{}.json", job.peer()))?;
    Some(Peer {
        cold_handled_ms: median(&cold["spawn_to_handled_s"]) * 1000.0,
        cold_peak_rss_mib: median(&cold["maxrss_mib"]),
        warm_ms: median(&warm["wall_s"]) * 1000.0,
        warm_requests: median(&warm["http_requests"]),
    })
}

/// Criterion's median estimates (ns per iteration) for the decide benchmark, if it has run.
fn criterion(dir: &Path) -> Option<Decide> {
    let read = |bench: &str, file: &str| -> Option<Value> {
        let path = dir.join("per input file").join(bench).join("new").join(file);
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    };
    let median = |bench: &str| read(bench, "estimates.json")?["median"]["point_estimate"].as_f64();
    const DECIDE: &str = "decode + gate + plan, every function";
    Some(Decide {
        parse_floor_ns: median("parse floor_ serde_json to Value")?,
        decide_ns: median(DECIDE)?,
        inputs: read(DECIDE, "benchmark.json")?["throughput"]["Elements"].as_u64()?,
    })
}

/// Criterion's medians for one pass over every input, and how many inputs that is.
#[derive(Clone, Copy, serde::Serialize)]
struct Decide {
    parse_floor_ns: f64,
    decide_ns: f64,
    inputs: u64,
}

impl Decide {
    /// Events per second on one core.
    fn per_second(self, ns: f64) -> f64 {
        self.inputs as f64 / (ns / 1e9)
    }
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-functions: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let results = runtime.block_on(async {
        let world = World::start().await;
        let log = std::env::temp_dir().join(format!("guardrail-bench-{}.log", std::process::id()));
        eprintln!(
            "bench-functions: {} cold and {} warm events per job; function log {}",
            a.cold,
            a.warm,
            log.display()
        );
        let mut results = Vec::new();
        for job in Job::ALL {
            match run_job(job, &world, &a, &log).await {
                Ok(r) => results.push(r),
                Err(e) => {
                    eprintln!("\nbench-functions: {e}");
                    std::process::exit(1);
                }
            }
        }
        results
    });
    let decide = a.criterion.as_deref().and_then(criterion);
    let sizes: Vec<Size> = a.zips.as_deref().map(zip_sizes).unwrap_or_default();
    if a.format == Format::Json {
        println!("{}", json!({"jobs": results, "criterion": decide, "sizes": sizes}));
    } else {
        print!("{}", table(&results));
    }
    if let Some(path) = &a.markdown {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let generated = markdown(&results, decide, &sizes);
        let updated = replace_between(&text, &generated)
            .unwrap_or_else(|| format!("{text}\n<!-- bench -->\n{generated}<!-- /bench -->\n"));
        std::fs::write(path, updated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let svg = path.with_file_name("benchmarks.svg");
        std::fs::write(&svg, chart(&results)).unwrap_or_else(|e| panic!("{}: {e}", svg.display()));
        eprintln!("wrote {} and {}", path.display(), svg.display());
    }
    let over: Vec<String> = results
        .iter()
        .filter(|r| r.warm_requests.max > r.budget as f64)
        .map(|r| {
            format!(
                "{}: {} requests per warm event, budget {}",
                r.job, r.warm_requests.max, r.budget
            )
        })
        .collect();
    if !over.is_empty() {
        eprintln!(
            "bench-functions: more calls than budgeted (see Job::minimum):\n  {}",
            over.join("\n  ")
        );
        std::process::exit(1);
    }
}

fn ratio(peer: f64, ours: f64) -> String {
    if peer.is_finite() && ours > 0.0 {
        format!("{:.1}×", peer / ours)
    } else {
        "–".into()
    }
}

fn table(results: &[JobResult]) -> String {
    let mut out = format!(
        "\n{:<40} {:>10} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10}\n",
        "job", "cold ms", "cpu ms", "peer ms", "RSS MiB", "peer MiB", "warm ms", "requests", "peer req"
    );
    for r in results {
        let p = r.peer.clone().unwrap_or_else(Peer::unknown);
        let shown = |v: f64, decimals: usize| {
            if v.is_finite() {
                format!("{v:.decimals$}")
            } else {
                "–".into()
            }
        };
        out += &format!(
            "{:<40} {:>10.1} {:>8.1} {:>10} {:>9.1} {:>9} {:>9.1} {:>9.0} {:>10}\n",
            r.job,
            r.cold_handled_ms.median,
            r.cold_cpu_ms.median,
            shown(p.cold_handled_ms, 0),
            r.cold_peak_rss_mib.median,
            shown(p.cold_peak_rss_mib, 1),
            r.warm_ms.median,
            r.warm_requests.median,
            shown(p.warm_requests, 0)
        );
    }
    out
}

/// US East (N. Virginia) list prices used by the cost model, as published by AWS in 2025.
const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
const DYNAMODB_WRITE: f64 = 0.625 / 1e6;
const SNS_PUBLISH: f64 = 0.50 / 1e6;

/// Dollars for one invocation of `ms` at 128 MB arm64, billed per millisecond.
fn lambda_cost(ms: f64) -> f64 {
    (ms.ceil() / 1000.0) * 0.125 * LAMBDA_ARM_GB_SECOND + LAMBDA_REQUEST
}

/// Dollars per million events of a job.
fn cost_per_million(r: &JobResult) -> f64 {
    let lambda = lambda_cost(r.warm_ms.median);
    let writes = r
        .warm_calls
        .iter()
        .filter(|(c, _)| c.starts_with("dynamodb.") && !c.contains("Get"))
        .map(|(_, n)| *n)
        .sum::<usize>() as f64;
    let publishes = r.warm_calls.get("sns.Publish").copied().unwrap_or(0) as f64;
    (lambda + writes * DYNAMODB_WRITE + publishes * SNS_PUBLISH) * 1e6
}

/// One function's deployment package.
#[derive(serde::Serialize)]
struct Size {
    function: &'static str,
    zip_bytes: u64,
    /// The `bootstrap` inside, from the zip's central directory.
    unzipped_bytes: Option<u64>,
}

/// The packages `make package` built, for the functions that have one.
fn zip_sizes(dir: &Path) -> Vec<Size> {
    Function::ALL
        .iter()
        .filter_map(|f| {
            let bytes = std::fs::read(dir.join(f.name()).join("bootstrap.zip")).ok()?;
            Some(Size {
                function: f.name(),
                zip_bytes: bytes.len() as u64,
                unzipped_bytes: unzipped(&bytes),
            })
        })
        .collect()
}

/// The uncompressed size of a zip's entries, from its central directory (no comment, no zip64).
fn unzipped(zip: &[u8]) -> Option<u64> {
    let u16_at = |i: usize| zip.get(i..i + 2).map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])));
    let u32_at = |i: usize| {
        zip.get(i..i + 4)
            .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
    };
    let end = zip.len().checked_sub(22)?;
    if u32_at(end)? != 0x0605_4b50 {
        return None;
    }
    let (entries, mut at) = (u16_at(end + 10)?, usize::try_from(u32_at(end + 16)?).ok()?);
    let mut total = 0;
    for _ in 0..entries {
        if u32_at(at)? != 0x0201_4b50 {
            return None;
        }
        total += u32_at(at + 24)?;
        let skip = u16_at(at + 28)? + u16_at(at + 30)? + u16_at(at + 32)?;
        at += 46 + usize::try_from(skip).ok()?;
    }
    Some(total)
}

fn markdown(results: &[JobResult], decide: Option<Decide>, sizes: &[Size]) -> String {
    let mut s = format!(
        "Measured {} on this machine ({} cores), one run of `make bench`; function binaries built with the release profile for the host.\n\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    s += "### Cold start (process start → first event handled)\n\n| job | ready for first event, median | handled, median (p25–p75, max) | CPU until handled, median | requests | peak RSS | peer handled | peer RSS | faster | RSS share |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
    for r in results {
        let p = r.peer.clone().unwrap_or_else(Peer::unknown);
        s += &format!(
            "| {} | {:.1} ms | {:.1} ms ({:.1}–{:.1}, {:.1}), n={} | {:.1} ms | {:.0} | {:.1} MiB | {:.0} ms | {:.1} MiB | {} | {} |\n",
            r.job,
            r.cold_ready_ms.median,
            r.cold_handled_ms.median,
            r.cold_handled_ms.p25,
            r.cold_handled_ms.p75,
            r.cold_handled_ms.max,
            r.cold_handled_ms.n,
            r.cold_cpu_ms.median,
            r.cold_requests.median,
            r.cold_peak_rss_mib.median,
            p.cold_handled_ms,
            p.cold_peak_rss_mib,
            ratio(p.cold_handled_ms, r.cold_handled_ms.median),
            if p.cold_peak_rss_mib.is_finite() {
                format!("{:.2}", r.cold_peak_rss_mib.median / p.cold_peak_rss_mib)
            } else {
                "–".into()
            }
        );
    }
    s += "\n### Warm, per event, against the emulator\n\n| job | median | p95 | HTTP requests | peer median | peer requests | minimum | budget |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n";
    for r in results {
        let p = r.peer.clone().unwrap_or_else(Peer::unknown);
        s += &format!(
            "| {} | {:.1} ms | {:.1} ms | {:.0} | {:.1} ms | {:.0} | {} | {} |\n",
            r.job,
            r.warm_ms.median,
            r.warm_ms.p95,
            r.warm_requests.median,
            p.warm_ms,
            p.warm_requests,
            r.minimum,
            r.budget
        );
    }
    s += "\nThe requests of one warm event:\n\n";
    for r in results {
        let calls: Vec<String> = r
            .warm_calls
            .iter()
            .map(|(c, n)| if *n > 1 { format!("{c} ×{n}") } else { c.clone() })
            .collect();
        s += &format!("- {}: {}\n", r.job, calls.join(", "));
    }
    if let Some(d) = decide {
        s += &format!(
            "\n### Decision without network (criterion, `make bench`)\n\nAll {} inputs of `events/` and the corpus, one core: parse floor {:.3} ms ({:.0} events/s), decode + gate + plan through every function {:.3} ms ({:.0} events/s), {:.2}× the floor.\n",
            d.inputs,
            d.parse_floor_ns / 1e6,
            d.per_second(d.parse_floor_ns),
            d.decide_ns / 1e6,
            d.per_second(d.decide_ns),
            d.decide_ns / d.parse_floor_ns
        );
    }
    s += "\n### Cost per million events (arm64, 128 MB, us-east-1 list prices of 2025: Lambda $0.0000133334 per GB-second and $0.20 per million requests, DynamoDB on-demand $0.625 per million writes, SNS $0.50 per million publishes)\n\n| job | Guardrail | peer at its measured time, 128 MB |\n| --- | --- | --- |\n";
    for r in results {
        let peer = r.peer.as_ref().map_or("–".into(), |p| {
            let lambda = lambda_cost(p.warm_ms);
            let sns = if matches!(r.function.as_str(), "agent-quarantine") {
                SNS_PUBLISH
            } else {
                0.0
            };
            format!("${:.2}", (lambda + sns) * 1e6)
        });
        s += &format!("| {} | ${:.2} | {} |\n", r.job, cost_per_million(r), peer);
    }
    if !sizes.is_empty() {
        s += "\n### Size (`make package`: arm64 release zips)\n\n| function | zip | unzipped |\n| --- | --- | --- |\n";
        for z in sizes {
            let unzipped = z
                .unzipped_bytes
                .map_or("–".to_string(), |b| format!("{:.2} MB", b as f64 / 1e6));
            s += &format!(
                "| {} | {:.2} MB ({} B) | {unzipped} |\n",
                z.function,
                z.zip_bytes as f64 / 1e6,
                z.zip_bytes
            );
        }
    }
    s += "\n![ratios against the peer](benchmarks.svg)\n";
    s
}

fn replace_between(text: &str, generated: &str) -> Option<String> {
    let start = text.find("<!-- bench -->")? + "<!-- bench -->".len();
    let end = text.find("<!-- /bench -->")?;
    Some(format!("{}\n{generated}{}", &text[..start], &text[end..]))
}

/// Bars of peer ÷ Guardrail for cold start, peak RSS and warm latency, per job.
fn chart(results: &[JobResult]) -> String {
    let mut bars = Vec::new();
    for r in results {
        if let Some(p) = &r.peer {
            bars.push((
                format!("{}: cold start", r.job),
                p.cold_handled_ms / r.cold_handled_ms.median,
            ));
            bars.push((
                format!("{}: peak RSS", r.job),
                p.cold_peak_rss_mib / r.cold_peak_rss_mib.median,
            ));
            bars.push((format!("{}: warm latency", r.job), p.warm_ms / r.warm_ms.median));
        }
    }
    let max = bars
        .iter()
        .map(|(_, v)| *v)
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max)
        .log10()
        .max(1.0);
    let (width, row) = (760.0, 26.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"10\" y=\"18\" font-size=\"14\">Cloud Custodian ÷ Guardrail (above 1×: Guardrail is faster or smaller; log scale)</text>\n",
        40.0 + row * bars.len() as f64
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let y = 32.0 + row * i as f64;
        let length = if v.is_finite() && *v > 0.0 {
            (v.log10().max(0.02) / max) * 300.0
        } else {
            0.0
        };
        svg += &format!(
            "<text x=\"10\" y=\"{}\">{}</text><rect x=\"390\" y=\"{}\" width=\"{length:.1}\" height=\"16\" fill=\"#3b7dd8\"/><text x=\"{:.1}\" y=\"{}\">{:.1}×</text>\n",
            y + 12.0,
            xml(label),
            y,
            395.0 + length,
            y + 12.0,
            v
        );
    }
    svg + "</svg>\n"
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
