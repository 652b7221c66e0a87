//! Lambda wiring shared by the three functions: configuration and clients built once at init,
//! then every invocation through the [`Pipeline`].

use std::sync::Arc;

use aws_config::SdkConfig;
use chrono::{DateTime, Utc};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::aws::{
    ApprovalTable, AwsActuator, AwsDirectory, AwsFacts, AwsInspector, AwsPrincipals, BreakerTable, DynamoReplayStore,
    LedgerTable, MemberAccess, QuarantineTable, SnsNotifier, SsmSwitch,
};
use crate::config::Config;
use crate::error::Result;
use crate::pipeline::{Invocation, Pipeline, Ports};
use crate::rules::Function;
use crate::sweep::{Request, Sweeper};

/// The AWS adapters.
pub struct AwsPorts;

impl Ports for AwsPorts {
    type Store = DynamoReplayStore;
    type Notifier = SnsNotifier;
    type Facts = AwsFacts;
    type Actuator = AwsActuator;
    type Switch = SsmSwitch;
    type Ledger = LedgerTable;
    type Breaker = BreakerTable;
    type Approvals = ApprovalTable;
}

/// A function wired to AWS.
pub type AwsPipeline = Pipeline<AwsPorts>;

/// Wires a function to the table, topic and accounts of `config`.
pub fn aws_pipeline(function: Function, config: Config, sdk: &SdkConfig) -> AwsPipeline {
    let policy = Arc::new(config.policy);
    let access = MemberAccess::new(sdk, policy.clone(), function);
    Pipeline {
        function,
        store: DynamoReplayStore::new(sdk, &config.table),
        notifier: SnsNotifier::new(sdk, &config.topic_arn),
        facts: AwsFacts {
            directory: AwsDirectory::new(function, sdk, &config.table, policy.clone()),
            inspector: AwsInspector::new(access.clone()),
            principals: AwsPrincipals::new(access.clone()),
            table: QuarantineTable::new(sdk, &config.table),
        },
        actuator: AwsActuator::new(access).with_table(QuarantineTable::new(sdk, &config.table)),
        switch: SsmSwitch::new(sdk, policy.safety.pause_parameter.clone()),
        ledger: LedgerTable::new(sdk, &config.ledger_table, policy.safety.ledger_days),
        breaker: BreakerTable::new(sdk, &config.table),
        approvals: ApprovalTable::new(sdk, &config.table),
        policy,
    }
}

/// Handles one invocation: a sweep request when the function sweeps, else events.
pub async fn handle(pipeline: &AwsPipeline, sweeper: Option<&Sweeper>, event: LambdaEvent<Value>) -> Result<Value> {
    let now = Utc::now();
    let deadline = i64::try_from(event.context.deadline)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .filter(|d| *d > now)
        .unwrap_or(now + chrono::Duration::seconds(60));
    let invocation = Invocation {
        request_id: event.context.request_id.clone(),
        now,
        deadline,
    };
    let report = match (sweeper, Request::from_input(&event.payload)) {
        (Some(sweeper), Some(request)) => sweeper.handle(request, &invocation).await,
        _ => pipeline.handle(event.payload, &invocation).await,
    };
    crate::metrics::emit(&report, now);
    report.into_result()
}

/// The whole life of a function: init (a bad configuration or policy fails it, loudly), then
/// the runtime loop.
pub async fn run(function: Function) -> std::result::Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let config = Config::from_env()
        .inspect_err(|e| tracing::error!(function = %function, error = %e, "init failed"))
        .map_err(InitFailed)?;
    tracing::info!(function = %function, policy = %config.policy_origin, "starting");
    let sdk = crate::aws::load().await;
    let sweeper = function.sweeps().then(|| {
        let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| format!("guardrail-{function}"));
        Sweeper::new(function, &config, &sdk, &name)
    });
    let pipeline = aws_pipeline(function, config, &sdk);
    lambda_runtime::run(service_fn(|event| handle(&pipeline, sweeper.as_ref(), event))).await
}

/// An init failure whose `Debug` (what `main` prints when it returns the error) is its sentence.
struct InitFailed(crate::Error);

impl std::fmt::Debug for InitFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (Guardrail error type {})", self.0, self.0.error_type())
    }
}

impl std::fmt::Display for InitFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for InitFailed {}
