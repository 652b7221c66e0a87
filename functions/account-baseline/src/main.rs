//! Lambda `account-baseline`: Organizations CreateAccountResult and Control Tower CreateManagedAccount → the new account baselined.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    guardrail::lambda::run(guardrail::rules::Function::AccountBaseline).await
}
