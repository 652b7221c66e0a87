//! Lambda `agent-quarantine`: GuardDuty findings and agent API-call rates → runaway roles quarantined.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    guardrail::lambda::run(guardrail::rules::Function::AgentQuarantine).await
}
