//! The account directory: account → OU → environment, kept in DynamoDB and cached in the
//! container, so Organizations (throttled per organization) is asked only on a miss.
//!
//! Each function that reads the directory keeps its own records (`account#<function>#<id>`) and
//! reads no other's, so one function's role cannot steer another's decisions by writing a false
//! environment. account-baseline, which places accounts, writes its placement into every
//! reader's records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_organizations::error::ProvideErrorMetadata;
use aws_sdk_organizations::types::ParentType;
use chrono::{DateTime, SecondsFormat, Utc};

use super::{assume_role, aws_error};
use crate::error::Result;
use crate::facts::{Membership, Placement};
use crate::ids::AccountId;
use crate::policy::Policy;
use crate::rules::Function;

/// How long a directory record in the table is trusted before Organizations is asked again.
const RECORD_FRESH: chrono::Duration = chrono::Duration::hours(24);
/// How long a container trusts what it looked up.
const MEMORY_FRESH: Duration = Duration::from_secs(15 * 60);
/// Organizations nests OUs at most five deep.
const MAX_DEPTH: usize = 6;

/// The functions that read the directory, each from its own records.
const READERS: [Function; 2] = [Function::TagEnforcer, Function::AgentQuarantine];

/// Directory records under `pk = account#<function>#<id>`.
#[derive(Debug)]
pub struct AwsDirectory {
    /// Whose records this container reads and fills.
    function: Function,
    ddb: aws_sdk_dynamodb::Client,
    /// `None`: no records, Organizations every time (the CLI, which has no table).
    table: Option<String>,
    base: SdkConfig,
    policy: Arc<Policy>,
    memory: Mutex<HashMap<AccountId, (Membership, Instant)>>,
    organizations_credentials: Mutex<Option<Credentials>>,
    /// The organization's management account, once asked (it never changes).
    management: Mutex<Option<Option<AccountId>>>,
}

impl AwsDirectory {
    pub fn new(function: Function, config: &SdkConfig, table: impl Into<String>, policy: Arc<Policy>) -> Self {
        AwsDirectory {
            function,
            ddb: aws_sdk_dynamodb::Client::new(config),
            table: Some(table.into()),
            base: config.clone(),
            policy,
            memory: Mutex::new(HashMap::new()),
            organizations_credentials: Mutex::new(None),
            management: Mutex::new(None),
        }
    }

    /// A directory without records: every lookup asks Organizations (once per container).
    pub fn without_table(function: Function, config: &SdkConfig, policy: Arc<Policy>) -> Self {
        AwsDirectory {
            table: None,
            ..AwsDirectory::new(function, config, "", policy)
        }
    }

    /// The key of `reader`'s record of `account`.
    fn pk(reader: Function, account: &AccountId) -> AttributeValue {
        AttributeValue::S(format!("account#{}#{account}", reader.name()))
    }

    async fn read_record(&self, account: &AccountId) -> Result<Option<Placement>> {
        let Some(table) = &self.table else {
            return Ok(None);
        };
        let out = self
            .ddb
            .get_item()
            .table_name(table)
            .key("pk", Self::pk(self.function, account))
            .send()
            .await
            .map_err(|e| aws_error("dynamodb", "GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let fresh = s("resolved_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .is_some_and(|t| Utc::now().signed_duration_since(t) < RECORD_FRESH);
        if !fresh {
            return Ok(None);
        }
        Ok(Some(Placement {
            account: account.clone(),
            ou_id: s("ou_id"),
            ou_name: s("ou_name"),
            environment: s("environment").filter(|e| self.policy.environment(e).is_some()),
        }))
    }

    async fn save(&self, reader: Function, p: &Placement) -> Result<()> {
        let Some(table) = &self.table else {
            return Ok(());
        };
        let now = Utc::now();
        let mut request = self
            .ddb
            .put_item()
            .table_name(table)
            .item("pk", Self::pk(reader, &p.account))
            .item(
                "resolved_at",
                AttributeValue::S(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
            )
            .item(
                "expires_at",
                AttributeValue::N((now + RECORD_FRESH * 7).timestamp().to_string()),
            );
        for (k, v) in [
            ("ou_id", &p.ou_id),
            ("ou_name", &p.ou_name),
            ("environment", &p.environment),
        ] {
            if let Some(v) = v {
                request = request.item(k, AttributeValue::S(v.clone()));
            }
        }
        request.send().await.map_err(|e| aws_error("dynamodb", "PutItem", e))?;
        Ok(())
    }

    async fn organizations(&self) -> Result<aws_sdk_organizations::Client> {
        Ok(aws_sdk_organizations::Client::new(&self.organizations_config().await?))
    }

    /// How this function reads Organizations: through `roles.organizations` when the policy
    /// names it, else with its own credentials (a delegated administrator).
    pub async fn organizations_config(&self) -> Result<SdkConfig> {
        let Some(role_arn) = &self.policy.organizations_role else {
            return Ok(self.base.clone());
        };
        let cached = self
            .organizations_credentials
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|c| {
                c.expiry()
                    .is_none_or(|e| e > std::time::SystemTime::now() + Duration::from_secs(60))
            });
        let credentials = match cached {
            Some(c) => c,
            None => {
                let sts = aws_sdk_sts::Client::new(&self.base);
                let c = assume_role(&sts, role_arn, "guardrail-directory", Some(super::SOURCE_IDENTITY)).await?;
                if let Ok(mut slot) = self.organizations_credentials.lock() {
                    *slot = Some(c.clone());
                }
                c
            }
        };
        Ok(self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build())
    }

    /// Walks up from the account until an OU the policy names, or the root.
    async fn ask_organizations(&self, account: &AccountId) -> Result<Membership> {
        let orgs = self.organizations().await?;
        let mut child = account.to_string();
        let mut first_ou: Option<(String, String)> = None;
        for _ in 0..MAX_DEPTH {
            let parents = match orgs.list_parents().child_id(&child).send().await {
                Ok(out) => out.parents.unwrap_or_default(),
                // AWS answers ChildNotFoundException; moto answers AccountNotFoundException.
                Err(e)
                    if e.as_service_error()
                        .and_then(|s| s.code())
                        .is_some_and(is_unknown_account) =>
                {
                    return Ok(Membership::Outsider);
                }
                Err(e) => return Err(aws_error("organizations", "ListParents", e)),
            };
            let Some(parent) = parents.into_iter().next() else {
                break;
            };
            let Some(id) = parent.id else { break };
            if parent.r#type != Some(ParentType::OrganizationalUnit) {
                break; // the root
            }
            let ou = orgs
                .describe_organizational_unit()
                .organizational_unit_id(&id)
                .send()
                .await
                .map_err(|e| aws_error("organizations", "DescribeOrganizationalUnit", e))?;
            let name = ou.organizational_unit.and_then(|o| o.name).unwrap_or_default();
            if let Some(env) = self.policy.environment_for_ou(&name) {
                return Ok(Membership::Member(Placement {
                    account: account.clone(),
                    ou_id: Some(id),
                    ou_name: Some(name),
                    environment: Some(env.name.clone()),
                }));
            }
            first_ou.get_or_insert((id.clone(), name));
            child = id;
        }
        let (ou_id, ou_name) = first_ou.unzip();
        Ok(Membership::Member(Placement {
            account: account.clone(),
            ou_id,
            ou_name,
            environment: None,
        }))
    }
}

fn is_unknown_account(code: &str) -> bool {
    matches!(code, "ChildNotFoundException" | "AccountNotFoundException")
}

impl AwsDirectory {
    /// Where the account sits: from memory, the table, or (on a miss) Organizations.
    #[tracing::instrument(skip(self), fields(account = %account))]
    pub async fn lookup(&self, account: &AccountId) -> Result<Membership> {
        let remembered = self.memory.lock().ok().and_then(|m| {
            m.get(account)
                .filter(|(_, at)| at.elapsed() < MEMORY_FRESH)
                .map(|(p, _)| p.clone())
        });
        if let Some(m) = remembered {
            return Ok(m);
        }
        let membership = match self.read_record(account).await? {
            Some(p) => Membership::Member(p),
            None => {
                let m = self.ask_organizations(account).await?;
                if let Membership::Member(p) = &m {
                    self.save(self.function, p).await?;
                }
                m
            }
        };
        if let Ok(mut memory) = self.memory.lock() {
            memory.insert(account.clone(), (membership.clone(), Instant::now()));
        }
        Ok(membership)
    }

    /// The organization's management account, asked once per container.
    pub async fn management_account(&self) -> Result<Option<AccountId>> {
        if let Some(known) = self.management.lock().ok().and_then(|m| m.clone()) {
            return Ok(known);
        }
        let id = super::organization::management_account(&self.organizations().await?).await?;
        if let Ok(mut m) = self.management.lock() {
            *m = Some(id.clone());
        }
        Ok(id)
    }

    /// Records where an account now is (the baseline just placed it), for every reader.
    pub async fn remember(&self, placement: &Placement) -> Result<()> {
        for reader in READERS {
            self.save(reader, placement).await?;
        }
        if let Ok(mut memory) = self.memory.lock() {
            memory.insert(
                placement.account.clone(),
                (Membership::Member(placement.clone()), Instant::now()),
            );
        }
        Ok(())
    }
}
