//! Lambda `tag-enforcer`: CloudTrail API calls → missing and wrong tags on new resources fixed.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    guardrail::lambda::run(guardrail::rules::Function::TagEnforcer).await
}
