//! Lambda `agent-quarantine`: GuardDuty findings, agents' API-call rates and alarms → roles and users
//! quarantined.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    guardrail::lambda::run(guardrail::rules::Function::AgentQuarantine).await
}
