//! AWS adapters: the one client configuration, role assumption into member accounts, and the
//! implementations of the ports. `aws-sdk-*` types appear only under this module.

mod actuator;
mod approval_table;
mod breaker_table;
mod continuation;
mod directory;
mod facts;
mod inspector;
mod inventory;
mod ledger_table;
mod notifier;
pub mod organization;
mod pause_switch;
mod principals;
mod quarantine_table;
mod replay_store;
mod s3control;
mod sweep_table;
mod tagging;

use std::time::{Duration, SystemTime};

pub use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

pub use actuator::AwsActuator;
pub use approval_table::{ApprovalTable, DEADLINE, PENDING_INDEX, QUEUE};
pub use breaker_table::BreakerTable;
pub use continuation::LambdaContinuation;
pub use directory::AwsDirectory;
pub use facts::AwsFacts;
pub use inspector::AwsInspector;
pub use inventory::Inventory;
pub use ledger_table::LedgerTable;
pub use notifier::SnsNotifier;
pub use pause_switch::SsmSwitch;
pub use principals::AwsPrincipals;
pub use quarantine_table::QuarantineTable;
pub use replay_store::DynamoReplayStore;
pub use s3control::client as s3control_client;
pub use sweep_table::{Save, SweepTable, Taken};

use crate::apply::Session;
use crate::error::{Error, Result};
use crate::ids::{AccountId, Region};
use crate::rules::Function;

/// Retry and timeout settings of every client. The defaults keep a slow AWS call well inside a
/// Lambda timeout of 60 s.
#[derive(Clone, Debug)]
pub struct Tuning {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    pub operation_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(15),
        }
    }
}

/// Applies [`Tuning`] to a loader. The endpoint comes only from the standard
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` settings (the emulator in tests).
pub fn tuned(loader: ConfigLoader, tuning: &Tuning) -> ConfigLoader {
    loader
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(tuning.max_attempts)
                .with_initial_backoff(tuning.initial_backoff),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(tuning.connect_timeout)
                .operation_attempt_timeout(tuning.attempt_timeout)
                .operation_timeout(tuning.operation_timeout)
                .build(),
        )
}

/// The SDK configuration of a function, from its environment.
pub async fn load() -> SdkConfig {
    tuned(aws_config::defaults(BehaviorVersion::latest()), &Tuning::default())
        .load()
        .await
}

/// Error codes that mean "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "ConcurrentModificationException",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerException",
    "RequestTimeout",
    "RequestTimeoutException",
    "SlowDown",
];

/// Whether a conditional DynamoDB write (`PutItem`, `UpdateItem`) was made: `false` when its
/// condition did not hold.
pub(crate) fn written<T, E>(
    result: std::result::Result<T, SdkError<E, HttpResponse>>,
    operation: &'static str,
) -> Result<bool>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(aws_error("dynamodb", operation, e)),
    }
}

/// An item of a table keyed by `pk` alone, read consistently.
pub(crate) async fn get_item(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
) -> Result<Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>> {
    Ok(ddb
        .get_item()
        .table_name(table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.to_string()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| aws_error("dynamodb", "GetItem", e))?
        .item)
}

/// A record kept as JSON in a string attribute of an item (`record`, `progress`); `Corrupt`
/// names `what` when it is missing or does not read back.
pub(crate) fn json_attribute<T: serde::de::DeserializeOwned>(
    item: Option<&std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    attribute: &str,
    what: &'static str,
) -> Result<T> {
    let text = item
        .and_then(|i| i.get(attribute))
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| Error::Corrupt {
            what,
            detail: format!("no {attribute} attribute"),
        })?;
    serde_json::from_str(text).map_err(|e| Error::Corrupt {
        what,
        detail: e.to_string(),
    })
}

/// A DynamoDB number.
pub(crate) fn number(n: i64) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::N(n.to_string())
}

/// Turns an SDK error into [`Error::Aws`], keeping the service's code and message and telling
/// transient failures (throttling, 5xx, timeouts, connection errors) from permanent ones.
pub fn aws_error<E>(service: &'static str, operation: &'static str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (code, message, transient) = match &err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            let status = ctx.raw().status().as_u16();
            let transient = status >= 500 || status == 429 || TRANSIENT_CODES.contains(&code.as_str());
            (code, e.message().unwrap_or_default().to_string(), transient)
        }
        SdkError::TimeoutError(_) => ("Timeout".to_string(), "the call timed out".to_string(), true),
        SdkError::DispatchFailure(f) => ("DispatchFailure".to_string(), format!("{f:?}"), true),
        SdkError::ResponseError(_) => (
            "ResponseError".to_string(),
            "the response could not be read".to_string(),
            true,
        ),
        other => ("ConstructionFailure".to_string(), other.to_string(), false),
    };
    Error::Aws {
        service,
        operation,
        code,
        message: crate::ids::clip(&message, 300),
        transient,
    }
}

/// Reaches member accounts and the management account: assumes the function's role there, once
/// per role per event.
#[derive(Clone, Debug)]
pub struct MemberAccess {
    base: SdkConfig,
    sts: aws_sdk_sts::Client,
    policy: std::sync::Arc<crate::policy::Policy>,
    function: Function,
}

impl MemberAccess {
    pub fn new(base: &SdkConfig, policy: std::sync::Arc<crate::policy::Policy>, function: Function) -> Self {
        MemberAccess {
            base: base.clone(),
            sts: aws_sdk_sts::Client::new(base),
            policy,
            function,
        }
    }

    /// The function's member role in `account` (made there by the member-roles StackSet).
    pub fn role_arn(&self, account: &AccountId, partition: &str) -> String {
        self.policy
            .member_role_arn(partition, account.as_str(), self.function.name())
    }

    /// An SDK configuration acting in `account`, in `region`, through the function's member
    /// role. The baseline falls back to the account's bootstrap role, reached through the
    /// management role, when its member role cannot be assumed: the StackSet reaches a new
    /// account minutes after it exists, and the roles Organizations and Control Tower create
    /// trust only the management account.
    pub async fn config(&self, session: &Session, account: &AccountId, region: &Region) -> Result<SdkConfig> {
        let member = self.role_arn(account, region.partition());
        let refused = session.refused.lock().ok().and_then(|r| r.get(&member).cloned());
        let member_error = match refused {
            Some(e) => e,
            None => match self.credentials(session, &member, None, true).await {
                Ok(c) => return Ok(self.with(c, Some(region))),
                Err(e) if self.function != Function::AccountBaseline || e.is_transient() => return Err(e),
                Err(e) => {
                    let message = e.to_string();
                    if let Ok(mut r) = session.refused.lock() {
                        r.insert(member.clone(), message.clone());
                    }
                    message
                }
            },
        };
        let bootstrap = format!(
            "arn:{}:iam::{account}:role/{}",
            region.partition(),
            self.policy.baseline.bootstrap_role
        );
        let through = self.policy.baseline.management_role.as_deref();
        match self.credentials(session, &bootstrap, through, false).await {
            Ok(c) => Ok(self.with(c, Some(region))),
            Err(Error::Aws {
                code,
                message,
                transient,
                ..
            }) => Err(Error::Aws {
                service: "sts",
                operation: "AssumeRole",
                code,
                message: crate::ids::clip(
                    &format!(
                        "neither the member role ({member_error}) nor the bootstrap role {bootstrap} ({message}) could be assumed; deploy infra/member-roles.yaml to the account"
                    ),
                    600,
                ),
                transient,
            }),
            Err(other) => Err(other),
        }
    }

    /// An SDK configuration for Organizations writes and reads: the policy's management role,
    /// or the function's own credentials.
    pub async fn management(&self, session: &Session) -> Result<SdkConfig> {
        match &self.policy.baseline.management_role {
            Some(role_arn) => Ok(self.with(self.credentials(session, role_arn, None, false).await?, None)),
            None => Ok(self.base.clone()),
        }
    }

    /// The function's own configuration.
    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// Credentials for `role_arn`, assumed directly or from the session of `through`; cached per
    /// role for the event. A session carries the source identity `guardrail` (`source_identity`)
    /// only toward a member role, whose trust policy allows it: the management role starts the
    /// chain to the bootstrap roles, whose trust policies (made by Organizations) do not allow
    /// `sts:SetSourceIdentity`, and a source identity passes down a chain.
    async fn credentials(
        &self,
        session: &Session,
        role_arn: &str,
        through: Option<&str>,
        source_identity: bool,
    ) -> Result<Credentials> {
        let cached = session
            .credentials
            .lock()
            .ok()
            .and_then(|c| c.get(role_arn).cloned())
            .filter(|c| {
                c.expiry()
                    .is_none_or(|e| e > SystemTime::now() + Duration::from_secs(60))
            });
        if let Some(c) = cached {
            return Ok(c);
        }
        let c = match through {
            None => {
                let source = source_identity.then_some(SOURCE_IDENTITY);
                assume_role(&self.sts, role_arn, &session.name, source).await?
            }
            Some(first) => {
                let first = Box::pin(self.credentials(session, first, None, false)).await?;
                let sts = aws_sdk_sts::Client::new(&self.with(first, None));
                assume_role(&sts, role_arn, &session.name, None).await?
            }
        };
        if let Ok(mut cache) = session.credentials.lock() {
            cache.insert(role_arn.to_string(), c.clone());
        }
        Ok(c)
    }

    fn with(&self, credentials: Credentials, region: Option<&Region>) -> SdkConfig {
        let mut builder = self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials));
        if let Some(region) = region {
            builder = builder.region(aws_config::Region::new(region.to_string()));
        }
        builder.build()
    }
}

/// The source identity on Guardrail's sessions, so that their actions are traceable to Guardrail
/// however the session is named.
pub(crate) const SOURCE_IDENTITY: &str = "guardrail";

/// `sts:AssumeRole` for 15 minutes, with the source identity given.
pub(crate) async fn assume_role(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    session_name: &str,
    source_identity: Option<&str>,
) -> Result<Credentials> {
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .set_source_identity(source_identity.map(str::to_string))
        .duration_seconds(900)
        .send()
        .await
        .map_err(|e| aws_error("sts", "AssumeRole", e))?;
    let c = out.credentials().ok_or_else(|| Error::Corrupt {
        what: "AssumeRole response",
        detail: "no credentials".into(),
    })?;
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        SystemTime::try_from(*c.expiration()).ok(),
        "guardrail-assume-role",
    ))
}
