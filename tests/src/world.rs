//! The world a test runs in: an organization with environment OUs and member accounts, and
//! Guardrail's own table, topic and an SQS queue subscribed to the topic to read alerts back.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use serde_json::Value;

use guardrail::rules::Function;

use crate::emulator::{Emulator, REGION};

/// OUs seeded into every organization: the three environments of the shipped policy, and one
/// that no environment names.
pub const OUS: [&str; 4] = ["prod", "dev", "agents", "sandbox"];

/// A seeded organization.
pub struct Org {
    pub root_id: String,
    /// OU name → id.
    pub ous: BTreeMap<String, String>,
    /// OU name → the member account in it.
    pub accounts: BTreeMap<String, String>,
}

impl Org {
    pub fn account(&self, ou: &str) -> &str {
        self.accounts
            .get(ou)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no account in {ou}"))
    }
}

/// Creates the organization, one OU per [`OUS`] entry and one member account in each.
pub async fn seed_org(config: &SdkConfig) -> Org {
    let orgs = aws_sdk_organizations::Client::new(config);
    orgs.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("CreateOrganization");
    let root_id = orgs
        .list_roots()
        .send()
        .await
        .expect("ListRoots")
        .roots()
        .first()
        .and_then(|r| r.id().map(str::to_string))
        .expect("a root");
    let mut ous = BTreeMap::new();
    let mut accounts = BTreeMap::new();
    for name in OUS {
        let ou = orgs
            .create_organizational_unit()
            .parent_id(&root_id)
            .name(name)
            .send()
            .await
            .expect("CreateOrganizationalUnit");
        let ou_id = ou
            .organizational_unit()
            .and_then(|o| o.id())
            .expect("OU id")
            .to_string();
        let account = create_account(config, &format!("{name}-workloads")).await;
        orgs.move_account()
            .account_id(&account)
            .source_parent_id(&root_id)
            .destination_parent_id(&ou_id)
            .send()
            .await
            .expect("MoveAccount");
        ous.insert(name.to_string(), ou_id);
        accounts.insert(name.to_string(), account);
    }
    Org { root_id, ous, accounts }
}

/// Creates a member account (in the root) and returns its id.
pub async fn create_account(config: &SdkConfig, name: &str) -> String {
    let orgs = aws_sdk_organizations::Client::new(config);
    let status = orgs
        .create_account()
        .account_name(name)
        .email(format!("{name}@example.com"))
        .send()
        .await
        .expect("CreateAccount");
    status
        .create_account_status()
        .and_then(|s| s.account_id())
        .expect("moto creates accounts at once")
        .to_string()
}

/// Guardrail's resources in the central account.
pub struct Stack {
    pub table: String,
    /// The audit ledger's table.
    pub ledger: String,
    pub topic_arn: String,
    pub alerts_queue_url: String,
}

/// A table's attribute definition.
fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .expect("attribute")
}

/// A table's or index's key element.
fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("key")
}

/// Creates Guardrail's table as `infra/template.yaml` does: the string partition key `pk` and
/// the sparse index of pending approvals (checked against the template by `tests/infra.rs`);
/// returns its ARN.
pub async fn create_table(config: &SdkConfig, name: &str) -> String {
    use guardrail::aws::{DEADLINE, PENDING_INDEX, QUEUE};
    aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S))
        .attribute_definitions(attribute(QUEUE, ScalarAttributeType::S))
        .attribute_definitions(attribute(DEADLINE, ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(PENDING_INDEX)
                .key_schema(key(QUEUE, KeyType::Hash))
                .key_schema(key(DEADLINE, KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("index"),
        )
        .send()
        .await
        .expect("CreateTable")
        .table_description
        .and_then(|d| d.table_arn)
        .expect("the table's ARN")
}

/// Creates the audit ledger's table as `infra/template.yaml` does: key `account` and `entry`,
/// indexes `by-resource` and `by-day` (checked against the template by `tests/infra.rs`).
pub async fn create_ledger_table(config: &SdkConfig, name: &str) {
    let index = |name: &str, hash: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(hash, KeyType::Hash))
            .key_schema(key("entry", KeyType::Range))
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .expect("index")
    };
    let mut request = aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("account", KeyType::Hash))
        .key_schema(key("entry", KeyType::Range))
        .global_secondary_indexes(index("by-resource", "resource"))
        .global_secondary_indexes(index("by-day", "day"));
    for name in guardrail::ledger::ATTRIBUTES {
        request = request.attribute_definitions(attribute(name, ScalarAttributeType::S));
    }
    request.send().await.expect("CreateTable (ledger)");
}

/// Creates the table (string key `pk`, TTL on `expires_at`), the ledger, the alert topic, and
/// a queue subscribed to it.
pub async fn create_stack(config: &SdkConfig) -> Stack {
    let table = "guardrail".to_string();
    create_table(config, &table).await;
    let ledger = "guardrail-ledger".to_string();
    create_ledger_table(config, &ledger).await;
    let ddb = aws_sdk_dynamodb::Client::new(config);
    ddb.update_time_to_live()
        .table_name(&table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .expect("ttl"),
        )
        .send()
        .await
        .expect("UpdateTimeToLive");

    let sns = aws_sdk_sns::Client::new(config);
    let topic_arn = sns
        .create_topic()
        .name("guardrail-alerts")
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .expect("topic ARN")
        .to_string();
    let sqs = aws_sdk_sqs::Client::new(config);
    let alerts_queue_url = sqs
        .create_queue()
        .queue_name("guardrail-alerts-reader")
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("queue URL")
        .to_string();
    let queue_arn = format!(
        "arn:aws:sqs:{REGION}:{}:guardrail-alerts-reader",
        crate::emulator::MANAGEMENT_ACCOUNT
    );
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("Subscribe");
    Stack {
        table,
        ledger,
        topic_arn,
        alerts_queue_url,
    }
}

/// An alert as an SQS subscriber receives it.
#[derive(Debug, Clone)]
pub struct ReceivedAlert {
    pub subject: String,
    /// The JSON form (SNS delivers the `sqs` entry of the structured message).
    pub body: Value,
    pub attributes: BTreeMap<String, String>,
}

/// Takes every alert waiting in the reader queue.
pub async fn take_alerts(config: &SdkConfig, stack: &Stack) -> Vec<ReceivedAlert> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut alerts = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&stack.alerts_queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = out.messages();
        if messages.is_empty() {
            return alerts;
        }
        for m in messages {
            let envelope: Value = serde_json::from_str(m.body().unwrap_or("{}")).expect("SNS envelope JSON");
            let body: Value = serde_json::from_str(envelope["Message"].as_str().unwrap_or("null")).expect("alert JSON");
            let attributes = envelope["MessageAttributes"]
                .as_object()
                .map(|attrs| {
                    attrs
                        .iter()
                        .map(|(k, v)| (k.clone(), v["Value"].as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            alerts.push(ReceivedAlert {
                subject: envelope["Subject"].as_str().unwrap_or_default().to_string(),
                body,
                attributes,
            });
            if let Some(receipt) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(&stack.alerts_queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
        }
    }
}

/// The role in the management account that account-baseline assumes for Organizations writes,
/// as `infra/management-role.yaml` deploys it.
pub const MANAGEMENT_ROLE: &str = "arn:aws:iam::123456789012:role/guardrail-management";

/// The name of a function's own identity in the central account: its execution role when
/// deployed (`infra/template.yaml`), an IAM user of that name here, so that the emulator's call
/// log tells each function's calls apart.
pub fn execution_identity(function: Function) -> String {
    format!("guardrail-{}-lambda", function.name())
}

/// The whole world of one test.
pub struct World {
    pub emulator: Emulator,
    /// The management account's administrator: the harness's own calls.
    pub config: SdkConfig,
    pub org: Org,
    pub stack: Stack,
    /// Each function's own identity.
    functions: BTreeMap<&'static str, SdkConfig>,
}

impl World {
    pub async fn start() -> World {
        let emulator = Emulator::start();
        let config = emulator.config().await;
        let org = seed_org(&config).await;
        let stack = create_stack(&config).await;
        let mut functions = BTreeMap::new();
        for function in Function::ALL {
            functions.insert(
                function.name(),
                identity(&emulator, &config, &execution_identity(function)).await,
            );
        }
        World {
            emulator,
            config,
            org,
            stack,
            functions,
        }
    }

    /// The SDK configuration a function runs with: its own identity in the central account.
    pub fn function_config(&self, function: Function) -> &SdkConfig {
        self.functions
            .get(function.name())
            .unwrap_or_else(|| unreachable!("every function has an identity"))
    }

    pub async fn alerts(&self) -> Vec<ReceivedAlert> {
        take_alerts(&self.config, &self.stack).await
    }

    /// The configuration of the function's own role (the central account). Organizations writes
    /// go through [`MANAGEMENT_ROLE`] unless the policy names another role, as when deployed.
    pub fn guardrail_config(&self, mut policy: guardrail::policy::Policy) -> guardrail::config::Config {
        if policy.baseline.management_role.is_none() {
            policy.baseline.management_role = Some(MANAGEMENT_ROLE.to_string());
        }
        guardrail::config::Config {
            table: self.stack.table.clone(),
            ledger_table: self.stack.ledger.clone(),
            topic_arn: self.stack.topic_arn.clone(),
            policy,
            policy_origin: "test".into(),
        }
    }

    /// A function's pipeline on this world's table, topic and accounts, as the Lambda wires it.
    pub fn pipeline(&self, function: Function, policy: guardrail::policy::Policy) -> guardrail::lambda::AwsPipeline {
        guardrail::lambda::aws_pipeline(function, self.guardrail_config(policy), self.function_config(function))
    }

    /// A function's sweeps on this world's table, topic and accounts, as the Lambda wires
    /// them; follow-up invocations go to the emulator, which keeps them
    /// ([`Emulator::take_invocations`]).
    pub fn sweeper(&self, function: Function, policy: guardrail::policy::Policy) -> guardrail::sweep::Sweeper {
        guardrail::sweep::Sweeper::new(
            function,
            &self.guardrail_config(policy),
            self.function_config(function),
            &format!("guardrail-{function}"),
        )
    }

    /// The environment a function binary runs with against this world.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let mut env = self.emulator.env();
        env.push(("GUARDRAIL_TABLE".into(), self.stack.table.clone()));
        env.push(("GUARDRAIL_LEDGER_TABLE".into(), self.stack.ledger.clone()));
        env.push(("GUARDRAIL_TOPIC_ARN".into(), self.stack.topic_arn.clone()));
        env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
        env
    }

    /// The audit ledger's entries a query asks for, read as `guardrail audit` reads them.
    pub async fn ledger(&self, query: &guardrail::ledger::Query) -> Vec<guardrail::ledger::Entry> {
        guardrail::aws::LedgerTable::new(&self.config, &self.stack.ledger, 400)
            .query(query, chrono::Utc::now())
            .await
            .expect("query the ledger")
    }

    /// One account's audit ledger entries, newest first.
    pub async fn ledger_of(&self, account: &str) -> Vec<guardrail::ledger::Entry> {
        self.ledger(&guardrail::ledger::Query {
            account: Some(account.to_string()),
            ..Default::default()
        })
        .await
    }

    /// Writes a raw item of the Guardrail table: string attributes only.
    pub async fn put_item(&self, attributes: &[(&str, &str)]) {
        let mut request = aws_sdk_dynamodb::Client::new(&self.config)
            .put_item()
            .table_name(&self.stack.table);
        for (k, v) in attributes {
            request = request.item(*k, aws_sdk_dynamodb::types::AttributeValue::S(v.to_string()));
        }
        request.send().await.expect("PutItem");
    }

    /// Deletes an item of the Guardrail table, as its TTL would.
    pub async fn delete_item(&self, pk: &str) {
        aws_sdk_dynamodb::Client::new(&self.config)
            .delete_item()
            .table_name(&self.stack.table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.to_string()))
            .send()
            .await
            .expect("DeleteItem");
    }

    /// Reads a raw item of the Guardrail table.
    pub async fn item(
        &self,
        pk: &str,
    ) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        aws_sdk_dynamodb::Client::new(&self.config)
            .get_item()
            .table_name(&self.stack.table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.to_string()))
            .send()
            .await
            .expect("GetItem")
            .item
    }
}

/// An IAM user `name` in the management account with an access key, and a configuration that
/// signs with that key.
async fn identity(emulator: &Emulator, config: &SdkConfig, name: &str) -> SdkConfig {
    let iam = aws_sdk_iam::Client::new(config);
    iam.create_user().user_name(name).send().await.expect("CreateUser");
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .expect("CreateAccessKey")
        .access_key
        .expect("an access key");
    emulator
        .config_with(aws_credential_types::Credentials::new(
            key.access_key_id(),
            key.secret_access_key(),
            None,
            None,
            "emulator-function",
        ))
        .await
}
