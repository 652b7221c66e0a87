//! The table of taggable resource types: which CloudTrail event creates them, where the event
//! holds their ids, creation tags and names, and which tagging call applies; and the table of
//! tag-changing events watched for drift. A resource type is one entry here.

use serde::Serialize;
use serde_json::Value;

use crate::event::json::{items, select, select_strings};
use crate::event::{CloudTrailEvent, Rejection};
use crate::ids::clip;
use crate::plan::Tag;

/// How tags are written: the service's own call where Guardrail has its SDK, the Resource Groups
/// Tagging API for the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagApi {
    /// EC2 `CreateTags`/`DeleteTags` on resource ids.
    Ec2,
    /// The volumes attached to these instances (the event lists the instances, not the volumes).
    Ec2VolumesOf,
    /// These ids and the volumes attached to those that are instances, in one `CreateTags`: an
    /// instance and its volumes needing the same change.
    Ec2AndVolumes,
    IamRole,
    IamUser,
    IamPolicy,
    Sns,
    DynamoDb,
    Sqs,
    Kms,
    /// Resource Groups Tagging API `TagResources` on ARNs.
    Tagging,
}

impl TagApi {
    /// A stable short name, for action ids.
    pub fn name(self) -> &'static str {
        match self {
            TagApi::Ec2 => "ec2",
            TagApi::Ec2VolumesOf => "ec2-volumes-of",
            TagApi::Ec2AndVolumes => "ec2-and-volumes",
            TagApi::IamRole => "iam-role",
            TagApi::IamUser => "iam-user",
            TagApi::IamPolicy => "iam-policy",
            TagApi::Sns => "sns",
            TagApi::DynamoDb => "dynamodb",
            TagApi::Sqs => "sqs",
            TagApi::Kms => "kms",
            TagApi::Tagging => "tagging",
        }
    }
}

/// Where a resource's name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameSource {
    /// No name to check.
    None,
    /// The `Name` tag (EC2): a wrong name can be fixed.
    Tag,
    /// A field of the event: the name is fixed at creation.
    Path(&'static str),
}

/// One taggable resource type.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    pub event_source: &'static str,
    pub event_name: &'static str,
    /// `ec2:instance`, `iam:role`: the key of naming patterns in the policy.
    pub kind: &'static str,
    /// Human name, singular: `EC2 instance`.
    pub noun: &'static str,
    pub api: TagApi,
    /// Paths to the resources' ids (or ARNs, names, URLs: what `api` takes).
    pub ids: &'static [&'static str],
    /// Paths to the tags the resources were created with.
    pub tags: &'static [&'static str],
    pub name: NameSource,
    /// Turns an id into an ARN for the Tagging API (`{partition}`, `{id}`).
    pub arn: Option<&'static str>,
    /// Whether an event without such resources is fine (network interfaces of `RunInstances`).
    pub optional: bool,
}

const fn ec2(
    event_name: &'static str,
    kind: &'static str,
    noun: &'static str,
    ids: &'static [&'static str],
    tags: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        event_source: "ec2.amazonaws.com",
        event_name,
        kind,
        noun,
        api: TagApi::Ec2,
        ids,
        tags,
        name: NameSource::Tag,
        arn: None,
        optional: false,
    }
}

#[allow(clippy::too_many_arguments)]
const fn other(
    event_source: &'static str,
    event_name: &'static str,
    kind: &'static str,
    noun: &'static str,
    api: TagApi,
    ids: &'static [&'static str],
    tags: &'static [&'static str],
    name: NameSource,
) -> ResourceType {
    ResourceType {
        event_source,
        event_name,
        kind,
        noun,
        api,
        ids,
        tags,
        name,
        arn: None,
        optional: false,
    }
}

/// Every resource type the tag enforcer knows.
pub static RESOURCE_TYPES: &[ResourceType] = &[
    ec2(
        "RunInstances",
        "ec2:instance",
        "EC2 instance",
        &["responseElements.instancesSet[].instanceId"],
        &[
            "requestParameters.tagSpecificationSet[resourceType=instance].tags",
            "responseElements.instancesSet[].tagSet",
        ],
    ),
    ResourceType {
        optional: true,
        ..ec2(
            "RunInstances",
            "ec2:network-interface",
            "EC2 network interface",
            &["responseElements.instancesSet[].networkInterfaceSet[].networkInterfaceId"],
            &["requestParameters.tagSpecificationSet[resourceType=network-interface].tags"],
        )
    },
    ResourceType {
        api: TagApi::Ec2VolumesOf,
        optional: true,
        ..ec2(
            "RunInstances",
            "ec2:volume",
            "set of EBS volumes attached to the instance",
            &["responseElements.instancesSet[].instanceId"],
            &["requestParameters.tagSpecificationSet[resourceType=volume].tags"],
        )
    },
    ec2(
        "CreateVolume",
        "ec2:volume",
        "EBS volume",
        &["responseElements.volumeId"],
        &[
            "requestParameters.tagSpecificationSet[resourceType=volume].tags",
            "responseElements.tagSet",
        ],
    ),
    ec2(
        "CreateSnapshot",
        "ec2:snapshot",
        "EBS snapshot",
        &["responseElements.snapshotId"],
        &[
            "requestParameters.tagSpecificationSet[resourceType=snapshot].tags",
            "responseElements.tagSet",
        ],
    ),
    ec2(
        "CreateSnapshots",
        "ec2:snapshot",
        "EBS snapshot",
        &[
            "responseElements.snapshotSet[].snapshotId",
            "responseElements.CreateSnapshotsResponse.snapshotSet[].snapshotId",
        ],
        &["requestParameters.tagSpecificationSet[resourceType=snapshot].tags"],
    ),
    ec2(
        "CreateImage",
        "ec2:image",
        "AMI",
        &["responseElements.imageId"],
        &["requestParameters.tagSpecificationSet[resourceType=image].tags"],
    ),
    ec2(
        "CreateSecurityGroup",
        "ec2:security-group",
        "security group",
        &["responseElements.groupId"],
        &[
            "requestParameters.tagSpecificationSet[resourceType=security-group].tags",
            "responseElements.tagSet",
        ],
    ),
    ec2(
        "CreateVpc",
        "ec2:vpc",
        "VPC",
        &["responseElements.vpc.vpcId"],
        &[
            "requestParameters.tagSpecificationSet[resourceType=vpc].tags",
            "responseElements.vpc.tagSet",
        ],
    ),
    ec2(
        "CreateSubnet",
        "ec2:subnet",
        "subnet",
        &["responseElements.subnet.subnetId"],
        &[
            "requestParameters.tagSpecificationSet[resourceType=subnet].tags",
            "responseElements.subnet.tagSet",
        ],
    ),
    ec2(
        "CreateLaunchTemplate",
        "ec2:launch-template",
        "launch template",
        &[
            "responseElements.launchTemplate.launchTemplateId",
            "responseElements.CreateLaunchTemplateResponse.launchTemplate.launchTemplateId",
        ],
        &[
            "requestParameters.tagSpecificationSet[resourceType=launch-template].tags",
            "requestParameters.CreateLaunchTemplateRequest.TagSpecification[ResourceType=launch-template].Tag",
            "responseElements.CreateLaunchTemplateResponse.launchTemplate.tagSet",
        ],
    ),
    other(
        "iam.amazonaws.com",
        "CreateRole",
        "iam:role",
        "IAM role",
        TagApi::IamRole,
        &["responseElements.role.roleName", "requestParameters.roleName"],
        &["responseElements.role.tags", "requestParameters.tags"],
        NameSource::Path("requestParameters.roleName"),
    ),
    other(
        "iam.amazonaws.com",
        "CreateUser",
        "iam:user",
        "IAM user",
        TagApi::IamUser,
        &["responseElements.user.userName", "requestParameters.userName"],
        &["responseElements.user.tags", "requestParameters.tags"],
        NameSource::Path("requestParameters.userName"),
    ),
    other(
        "iam.amazonaws.com",
        "CreatePolicy",
        "iam:policy",
        "IAM policy",
        TagApi::IamPolicy,
        &["responseElements.policy.arn"],
        &["responseElements.policy.tags", "requestParameters.tags"],
        NameSource::Path("requestParameters.policyName"),
    ),
    other(
        "sns.amazonaws.com",
        "CreateTopic",
        "sns:topic",
        "SNS topic",
        TagApi::Sns,
        &["responseElements.topicArn"],
        &["requestParameters.tags"],
        NameSource::Path("requestParameters.name"),
    ),
    other(
        "dynamodb.amazonaws.com",
        "CreateTable",
        "dynamodb:table",
        "DynamoDB table",
        TagApi::DynamoDb,
        &["responseElements.tableDescription.tableArn"],
        &["requestParameters.tags"],
        NameSource::Path("requestParameters.tableName"),
    ),
    ResourceType {
        arn: Some("arn:{partition}:s3:::{id}"),
        ..other(
            "s3.amazonaws.com",
            "CreateBucket",
            "s3:bucket",
            "S3 bucket",
            TagApi::Tagging,
            &["requestParameters.bucketName"],
            &[],
            NameSource::Path("requestParameters.bucketName"),
        )
    },
    other(
        "lambda.amazonaws.com",
        "CreateFunction20150331",
        "lambda:function",
        "Lambda function",
        TagApi::Tagging,
        &["responseElements.functionArn"],
        &["requestParameters.tags"],
        NameSource::Path("requestParameters.functionName"),
    ),
    other(
        "sqs.amazonaws.com",
        "CreateQueue",
        "sqs:queue",
        "SQS queue",
        TagApi::Sqs,
        &["responseElements.queueUrl"],
        &["requestParameters.tags"],
        NameSource::Path("requestParameters.queueName"),
    ),
    other(
        "kms.amazonaws.com",
        "CreateKey",
        "kms:key",
        "KMS key",
        TagApi::Kms,
        &["responseElements.keyMetadata.arn", "responseElements.keyMetadata.keyId"],
        &["requestParameters.tags"],
        NameSource::None,
    ),
];

/// The entries for an event: several for `RunInstances` (instances, their interfaces and volumes).
pub fn for_event<'a>(event_source: &'a str, event_name: &'a str) -> impl Iterator<Item = &'static ResourceType> + 'a {
    RESOURCE_TYPES
        .iter()
        .filter(move |r| r.event_source == event_source && r.event_name == event_name)
}

/// Resource kinds that have a name a naming pattern can check.
pub fn named_kinds() -> Vec<&'static str> {
    let mut kinds: Vec<&str> = Vec::new();
    for r in RESOURCE_TYPES {
        if r.name != NameSource::None && r.api != TagApi::Ec2VolumesOf && !kinds.contains(&r.kind) {
            kinds.push(r.kind);
        }
    }
    kinds
}

/// An event that changes tags after creation.
pub struct TagChange {
    pub event_source: &'static str,
    pub event_name: &'static str,
    pub api: TagApi,
    pub ids: &'static [&'static str],
    /// Paths to the tags set (absent for removals).
    pub set: &'static [&'static str],
    /// Paths to the keys removed (absent for additions).
    pub removed: &'static [&'static str],
    /// Turns an id into an ARN for the Tagging API (`{partition}`, `{id}`).
    pub arn: Option<&'static str>,
    /// Whether the call replaces the whole tag set: it re-sends every tag it keeps, so a
    /// protected key among them is not a change.
    pub replaces_set: bool,
}

const fn change(
    event_source: &'static str,
    event_name: &'static str,
    api: TagApi,
    ids: &'static [&'static str],
    set: &'static [&'static str],
    removed: &'static [&'static str],
) -> TagChange {
    TagChange {
        event_source,
        event_name,
        api,
        ids,
        set,
        removed,
        arn: None,
        replaces_set: false,
    }
}

/// Every tag-changing event the drift rule watches.
pub static TAG_CHANGES: &[TagChange] = &[
    change(
        "ec2.amazonaws.com",
        "CreateTags",
        TagApi::Ec2,
        &["requestParameters.resourcesSet[].resourceId"],
        &["requestParameters.tagSet"],
        &[],
    ),
    change(
        "ec2.amazonaws.com",
        "DeleteTags",
        TagApi::Ec2,
        &["requestParameters.resourcesSet[].resourceId"],
        &[],
        &["requestParameters.tagSet[].key"],
    ),
    change(
        "iam.amazonaws.com",
        "TagRole",
        TagApi::IamRole,
        &["requestParameters.roleName"],
        &["requestParameters.tags"],
        &[],
    ),
    change(
        "iam.amazonaws.com",
        "UntagRole",
        TagApi::IamRole,
        &["requestParameters.roleName"],
        &[],
        &["requestParameters.tagKeys[]"],
    ),
    change(
        "iam.amazonaws.com",
        "TagUser",
        TagApi::IamUser,
        &["requestParameters.userName"],
        &["requestParameters.tags"],
        &[],
    ),
    change(
        "iam.amazonaws.com",
        "UntagUser",
        TagApi::IamUser,
        &["requestParameters.userName"],
        &[],
        &["requestParameters.tagKeys[]"],
    ),
    change(
        "iam.amazonaws.com",
        "TagPolicy",
        TagApi::IamPolicy,
        &["requestParameters.policyArn"],
        &["requestParameters.tags"],
        &[],
    ),
    change(
        "iam.amazonaws.com",
        "UntagPolicy",
        TagApi::IamPolicy,
        &["requestParameters.policyArn"],
        &[],
        &["requestParameters.tagKeys[]"],
    ),
    change(
        "sns.amazonaws.com",
        "TagResource",
        TagApi::Sns,
        &["requestParameters.resourceArn"],
        &["requestParameters.tags"],
        &[],
    ),
    change(
        "sns.amazonaws.com",
        "UntagResource",
        TagApi::Sns,
        &["requestParameters.resourceArn"],
        &[],
        &["requestParameters.tagKeys[]"],
    ),
    change(
        "dynamodb.amazonaws.com",
        "TagResource",
        TagApi::DynamoDb,
        &["requestParameters.resourceArn"],
        &["requestParameters.tags"],
        &[],
    ),
    change(
        "dynamodb.amazonaws.com",
        "UntagResource",
        TagApi::DynamoDb,
        &["requestParameters.resourceArn"],
        &[],
        &["requestParameters.tagKeys[]"],
    ),
    change(
        "kms.amazonaws.com",
        "TagResource",
        TagApi::Kms,
        &["requestParameters.keyId"],
        &["requestParameters.tags"],
        &[],
    ),
    change(
        "kms.amazonaws.com",
        "UntagResource",
        TagApi::Kms,
        &["requestParameters.keyId"],
        &[],
        &["requestParameters.tagKeys[]"],
    ),
    change(
        "sqs.amazonaws.com",
        "TagQueue",
        TagApi::Sqs,
        &["requestParameters.queueUrl"],
        &["requestParameters.tags"],
        &[],
    ),
    change(
        "sqs.amazonaws.com",
        "UntagQueue",
        TagApi::Sqs,
        &["requestParameters.queueUrl"],
        &[],
        &["requestParameters.tagKeys[]"],
    ),
    change(
        "lambda.amazonaws.com",
        "TagResource20170331v2",
        TagApi::Tagging,
        &["requestParameters.resource"],
        &["requestParameters.tags"],
        &[],
    ),
    change(
        "lambda.amazonaws.com",
        "UntagResource20170331v2",
        TagApi::Tagging,
        &["requestParameters.resource"],
        &[],
        &["requestParameters.tagKeys[]"],
    ),
    change(
        "tagging.amazonaws.com",
        "TagResources",
        TagApi::Tagging,
        &["requestParameters.resourceARNList[]"],
        &["requestParameters.tags"],
        &[],
    ),
    change(
        "tagging.amazonaws.com",
        "UntagResources",
        TagApi::Tagging,
        &["requestParameters.resourceARNList[]"],
        &[],
        &["requestParameters.tagKeys[]"],
    ),
    // S3's own call replaces a bucket's whole tag set. AWS authorizes it without aws:TagKeys
    // (Service Authorization Reference, Amazon S3), so no SCP can keep a waiver off a bucket:
    // this is where a waiver set by anyone but a setter is caught and removed. The keys it drops
    // are not in the event; the daily sweep finds a bucket that lost a required tag.
    TagChange {
        arn: Some("arn:{partition}:s3:::{id}"),
        replaces_set: true,
        ..change(
            "s3.amazonaws.com",
            "PutBucketTagging",
            TagApi::Tagging,
            &["requestParameters.bucketName"],
            &["requestParameters.Tagging.TagSet.Tag"],
            &[],
        )
    },
];

/// The drift entry for an event.
pub fn change_for(event_source: &str, event_name: &str) -> Option<&'static TagChange> {
    TAG_CHANGES
        .iter()
        .find(|c| c.event_source == event_source && c.event_name == event_name)
}

/// A resource as the event that created it describes it, or as a sweep listed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Created {
    /// What the tagging call takes: an id, name, ARN or queue URL.
    pub id: String,
    pub name: Option<String>,
    /// Tags the resource was created with (an event) or has now (a sweep).
    pub tags: Vec<Tag>,
}

/// Reads the resources an event created, checking every id against what its tagging call takes.
pub fn created(rt: &ResourceType, call: &CloudTrailEvent) -> Result<Vec<Created>, Rejection> {
    let record = call_record(call);
    let ids = first_strings(&record, rt.ids);
    if ids.is_empty() && !rt.optional {
        return Err(Rejection::MissingField { field: rt.ids[0] });
    }
    let tags = tags_at(&record, rt.tags);
    ids.into_iter()
        .map(|id| {
            let id = checked_id(rt.api, id, call)?;
            let name = match rt.name {
                NameSource::None => None,
                NameSource::Tag => tags.iter().find(|t| t.key == "Name").map(|t| t.value.clone()),
                NameSource::Path(p) => select_strings(&record, p).first().map(|s| s.to_string()),
            };
            let id = as_arn(rt.arn, id, call);
            Ok(Created {
                id,
                name,
                tags: tags.clone(),
            })
        })
        .collect()
}

/// An id made an ARN by the table's template (`arn:{partition}:s3:::{id}`), if it has one.
fn as_arn(template: Option<&str>, id: String, call: &CloudTrailEvent) -> String {
    match template {
        Some(template) => template
            .replace("{partition}", call.region.as_ref().map_or("aws", |r| r.partition()))
            .replace("{id}", &id),
        None => id,
    }
}

/// The Resource Groups Tagging API's `ResourceTypeFilters` that list the table's kinds (IAM
/// aside, which that API does not list): EC2 kinds one by one, other services whole.
pub fn listed_types() -> Vec<&'static str> {
    let mut filters: Vec<&'static str> = Vec::new();
    for r in RESOURCE_TYPES {
        let (service, _) = r.kind.split_once(':').unwrap_or((r.kind, ""));
        let filter = if service == "ec2" { r.kind } else { service };
        if service != "iam" && !filters.contains(&filter) {
            filters.push(filter);
        }
    }
    filters
}

/// The most resources one tagging action names: the Tagging API takes 20 ARNs a call; the
/// others take one resource a call (IAM, SNS, ...) or many (EC2), kept to 100 so that a sweep's
/// pacing stays fine-grained.
pub const fn batch(api: TagApi) -> usize {
    match api {
        TagApi::Tagging => 20,
        _ => 100,
    }
}

/// A resource a sweep listed: its ARN and its tags as they are now.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub arn: String,
    pub tags: Vec<Tag>,
}

/// A listed resource the table knows.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub rt: &'static ResourceType,
    pub resource: Created,
    /// Its ARN, with the path of a role or user (protected principals are matched on it).
    pub arn: String,
}

/// A listed resource as the table knows it: its entry and what its tagging call takes, read
/// from the ARN. `None` for a kind the table does not know (route tables, Lambda versions, KMS
/// aliases), a malformed ARN, or an ARN of another account than `account`.
pub fn from_listed(listed: &Listed, account: &str) -> Option<Found> {
    let arn = listed.arn.as_str();
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, owner, resource] = parts.as_slice() else {
        return None;
    };
    if *prefix != "arn" || arn.chars().any(char::is_whitespace) || !(owner.is_empty() || *owner == account) {
        return None;
    }
    let simple = |name: &str| !name.is_empty() && !name.contains(['/', ':']);
    let by_arn = |kind: &str, name: Option<&str>| Some((kind.to_string(), arn.to_string(), name.map(str::to_string)));
    let (kind, id, name) = match *service {
        "ec2" => {
            let (ty, id) = resource.split_once('/')?;
            ec2_shaped(id).then(|| (format!("ec2:{ty}"), id.to_string(), None))?
        }
        "iam" => {
            let (ty, path_name) = resource.split_once('/')?;
            let name = path_name.rsplit('/').next().unwrap_or_default();
            match ty {
                "role" | "user" if iam_shaped(name) => (format!("iam:{ty}"), name.to_string(), Some(name.to_string())),
                "policy" if iam_shaped(name) => by_arn("iam:policy", Some(name))?,
                _ => return None,
            }
        }
        "sns" if simple(resource) => by_arn("sns:topic", Some(resource))?,
        "sqs" if simple(resource) => {
            let domain = if *partition == "aws-cn" {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            let url = format!("https://sqs.{region}.{domain}/{owner}/{resource}");
            ("sqs:queue".to_string(), url, Some(resource.to_string()))
        }
        "dynamodb" => by_arn(
            "dynamodb:table",
            Some(resource.strip_prefix("table/").filter(|n| simple(n))?),
        )?,
        "kms" => {
            resource.strip_prefix("key/").filter(|k| simple(k))?;
            by_arn("kms:key", None)?
        }
        "s3" if simple(resource) => by_arn("s3:bucket", Some(resource))?,
        "lambda" => by_arn(
            "lambda:function",
            Some(resource.strip_prefix("function:").filter(|n| simple(n))?),
        )?,
        _ => return None,
    };
    let rt = RESOURCE_TYPES
        .iter()
        .find(|r| r.kind == kind && r.api != TagApi::Ec2VolumesOf)?;
    let name = match rt.name {
        NameSource::None => None,
        NameSource::Tag => listed.tags.iter().find(|t| t.key == "Name").map(|t| t.value.clone()),
        NameSource::Path(_) => name,
    };
    Some(Found {
        rt,
        resource: Created {
            id,
            name,
            tags: listed.tags.clone(),
        },
        arn: arn.to_string(),
    })
}

/// An EC2 resource id: a short lowercase prefix, a dash, 8 or 17 hex digits.
fn ec2_shaped(id: &str) -> bool {
    let Some((prefix, hex)) = id.split_once('-') else {
        return false;
    };
    !prefix.is_empty()
        && prefix.len() <= 8
        && prefix.bytes().all(|b| b.is_ascii_lowercase())
        && matches!(hex.len(), 8 | 17)
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An IAM role, user or policy name.
fn iam_shaped(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// What a tag-change event did: to which resources, which tags it set and which keys it removed.
#[derive(Clone, Debug, PartialEq)]
pub struct Changed {
    pub resources: Vec<String>,
    pub set: Vec<Tag>,
    pub removed: Vec<String>,
}

pub fn changed(change: &TagChange, call: &CloudTrailEvent) -> Result<Changed, Rejection> {
    let record = call_record(call);
    let ids = first_strings(&record, change.ids);
    if ids.is_empty() {
        return Err(Rejection::MissingField { field: change.ids[0] });
    }
    let resources = ids
        .into_iter()
        .map(|id| Ok(as_arn(change.arn, checked_id(change.api, id, call)?, call)))
        .collect::<Result<_, Rejection>>()?;
    let removed = change
        .removed
        .iter()
        .flat_map(|p| select_strings(&record, p))
        .map(str::to_string)
        .collect();
    Ok(Changed {
        resources,
        set: tags_at(&record, change.set),
        removed,
    })
}

/// The parts of the record the paths start from.
fn call_record(call: &CloudTrailEvent) -> Value {
    serde_json::json!({
        "requestParameters": call.request_parameters,
        "responseElements": call.response_elements,
    })
}

/// The strings at the first path that has any, each once.
fn first_strings<'a>(record: &'a Value, paths: &[&str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = paths
        .iter()
        .map(|p| select_strings(record, p))
        .find(|found| !found.is_empty())
        .unwrap_or_default();
    out.dedup();
    out
}

/// Tags from every path, in any of the shapes AWS logs them: `[{key, value}]`, `[{Key, Value}]`,
/// `[{tagKey, tagValue}]`, `{"items": [...]}` or a plain map. The first occurrence of a key wins.
pub fn tags_at(record: &Value, paths: &[&str]) -> Vec<Tag> {
    let mut out: Vec<Tag> = Vec::new();
    for value in paths.iter().flat_map(|p| select(record, p)) {
        for tag in tags_of(value) {
            if !out.iter().any(|t| t.key == tag.key) {
                out.push(tag);
            }
        }
    }
    out
}

fn tags_of(v: &Value) -> Vec<Tag> {
    // One tag alone, as S3's XML turns into JSON when a set holds a single `<Tag>`.
    if let Some(map) = v.as_object()
        && map.len() <= 2
        && let Some(Value::String(key)) = map.get("Key")
    {
        let value = map.get("Value").and_then(Value::as_str).unwrap_or("");
        if map.len() == 1 || map.contains_key("Value") {
            return vec![Tag::new(key, value)];
        }
    }
    if let Some(map) = v
        .as_object()
        .filter(|m| !m.contains_key("items") && !m.contains_key("item"))
    {
        return map
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| Tag::new(k, v)))
            .collect();
    }
    items(v)
        .iter()
        .filter_map(|t| {
            let key = ["key", "Key", "tagKey", "TagKey"]
                .iter()
                .find_map(|k| t.get(*k))?
                .as_str()?;
            let value = ["value", "Value", "tagValue", "TagValue"]
                .iter()
                .find_map(|k| t.get(*k))
                .and_then(Value::as_str)
                .unwrap_or("");
            Some(Tag::new(key, value))
        })
        .collect()
}

/// An id taken from an untrusted event, checked for the shape its tagging call takes, and for
/// belonging to the event's account where the id says which account it is in.
fn checked_id(api: TagApi, id: &str, call: &CloudTrailEvent) -> Result<String, Rejection> {
    let bad = |why: &str| Rejection::MalformedRecord {
        detail: format!("resource id {:?} {why}", clip(id, 80)),
    };
    let account = call.account.as_ref().map(|a| a.as_str()).unwrap_or_default();
    match api {
        TagApi::Ec2 | TagApi::Ec2VolumesOf | TagApi::Ec2AndVolumes => {
            if !ec2_shaped(id) {
                return Err(bad("is not an EC2 id"));
            }
        }
        TagApi::IamRole | TagApi::IamUser => {
            if !iam_shaped(id) {
                return Err(bad("is not an IAM name"));
            }
        }
        TagApi::Sqs => {
            let path = id
                .strip_prefix("https://")
                .or_else(|| id.strip_prefix("http://"))
                .and_then(|rest| rest.split_once('/'))
                .map(|(_, path)| path)
                .ok_or_else(|| bad("is not a queue URL"))?;
            match path.split_once('/') {
                Some((owner, name)) if owner == account && !name.is_empty() && !name.contains('/') => {}
                _ => return Err(bad("is not a queue URL of the event's account")),
            }
        }
        TagApi::Kms if !id.starts_with("arn:") => {
            if !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return Err(bad("is not a KMS key id"));
            }
        }
        TagApi::Tagging if !id.starts_with("arn:") => {
            // S3 bucket names, turned into ARNs by the table.
            let shaped = (3..=63).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
            if !shaped {
                return Err(bad("is not a bucket name"));
            }
        }
        TagApi::IamPolicy | TagApi::Sns | TagApi::DynamoDb | TagApi::Kms | TagApi::Tagging => {
            let parts: Vec<&str> = id.splitn(6, ':').collect();
            let [arn, _partition, _service, _region, owner, resource] = parts.as_slice() else {
                return Err(bad("is not an ARN"));
            };
            if *arn != "arn" || resource.is_empty() || id.chars().any(char::is_whitespace) {
                return Err(bad("is not an ARN"));
            }
            if !owner.is_empty() && *owner != account {
                return Err(bad("belongs to another account than the event's"));
            }
        }
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(record: Value) -> CloudTrailEvent {
        let mut r = json!({"eventSource": "x.amazonaws.com", "eventName": "X", "eventTime": "2026-01-01T00:00:00Z",
                           "awsRegion": "us-east-1", "recipientAccountId": "111122223333"});
        if let (Some(base), Some(extra)) = (r.as_object_mut(), record.as_object()) {
            base.extend(extra.clone());
        }
        match crate::event::decode_value(r).remove(0) {
            Ok(crate::event::Event::ApiCall(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ids_are_checked_for_their_shape_and_account() {
        let c = call(json!({}));
        assert!(checked_id(TagApi::Ec2, "i-0f7c711dc84bedda0", &c).is_ok());
        assert!(checked_id(TagApi::Ec2, "vol-12345678", &c).is_ok());
        assert!(checked_id(TagApi::Ec2, "i-xyz", &c).is_err());
        assert!(checked_id(TagApi::Ec2, "i-12345678; rm", &c).is_err());
        assert!(checked_id(TagApi::Sns, "arn:aws:sns:us-east-1:111122223333:alerts", &c).is_ok());
        assert!(checked_id(TagApi::Sns, "arn:aws:sns:us-east-1:999999999999:alerts", &c).is_err());
        assert!(checked_id(TagApi::Sqs, "https://sqs.us-east-1.amazonaws.com/111122223333/jobs", &c).is_ok());
        assert!(checked_id(TagApi::Sqs, "https://evil.example/999999999999/jobs", &c).is_err());
        assert!(checked_id(TagApi::IamRole, "agent-runner", &c).is_ok());
        assert!(checked_id(TagApi::IamRole, "agent runner", &c).is_err());
        assert!(checked_id(TagApi::Tagging, "my-bucket.logs", &c).is_ok());
        assert!(checked_id(TagApi::Tagging, "Bad_Bucket", &c).is_err());
        assert!(checked_id(TagApi::Tagging, "arn:aws:s3:::my-bucket", &c).is_ok());
    }

    #[test]
    fn tags_are_read_in_every_logged_shape() {
        let v = json!({
            "a": [{"key": "k1", "value": "v1"}],
            "b": {"items": [{"Key": "k2", "Value": "v2"}]},
            "c": [{"tagKey": "k3", "tagValue": "v3"}],
            "d": {"k4": "v4", "k1": "other"}
        });
        let keys: Vec<String> = tags_at(&v, &["a", "b", "c", "d"])
            .into_iter()
            .map(|t| format!("{}={}", t.key, t.value))
            .collect();
        assert_eq!(keys, ["k1=v1", "k2=v2", "k3=v3", "k4=v4"]);
    }

    fn listed(arn: &str, tags: &[(&str, &str)]) -> Option<(&'static str, Created)> {
        let listed = Listed {
            arn: arn.to_string(),
            tags: tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect(),
        };
        from_listed(&listed, "111122223333").map(|f| (f.rt.kind, f.resource))
    }

    #[test]
    fn listed_arns_give_the_kind_and_what_the_tagging_call_takes() {
        let cases = [
            (
                "arn:aws:ec2:us-east-1:111122223333:instance/i-0f7c711dc84bedda0",
                "ec2:instance",
                "i-0f7c711dc84bedda0",
                Some("web"),
            ),
            (
                "arn:aws:ec2:us-east-1::snapshot/snap-12345678",
                "ec2:snapshot",
                "snap-12345678",
                Some("web"),
            ),
            (
                "arn:aws:iam::111122223333:role/agents/runner-1",
                "iam:role",
                "runner-1",
                Some("runner-1"),
            ),
            (
                "arn:aws:iam::111122223333:user/alice",
                "iam:user",
                "alice",
                Some("alice"),
            ),
            (
                "arn:aws:sns:us-east-1:111122223333:alerts",
                "sns:topic",
                "arn:aws:sns:us-east-1:111122223333:alerts",
                Some("alerts"),
            ),
            (
                "arn:aws:sqs:us-west-2:111122223333:jobs",
                "sqs:queue",
                "https://sqs.us-west-2.amazonaws.com/111122223333/jobs",
                Some("jobs"),
            ),
            (
                "arn:aws-cn:sqs:cn-north-1:111122223333:jobs",
                "sqs:queue",
                "https://sqs.cn-north-1.amazonaws.com.cn/111122223333/jobs",
                Some("jobs"),
            ),
            (
                "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
                "dynamodb:table",
                "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
                Some("orders"),
            ),
            (
                "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "kms:key",
                "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                None,
            ),
            (
                "arn:aws:s3:::my-bucket",
                "s3:bucket",
                "arn:aws:s3:::my-bucket",
                Some("my-bucket"),
            ),
            (
                "arn:aws:lambda:us-east-1:111122223333:function:resize",
                "lambda:function",
                "arn:aws:lambda:us-east-1:111122223333:function:resize",
                Some("resize"),
            ),
        ];
        for (arn, kind, id, name) in cases {
            let (k, c) = listed(arn, &[("Name", "web")]).unwrap_or_else(|| panic!("{arn}"));
            assert_eq!((k, c.id.as_str(), c.name.as_deref()), (kind, id, name), "{arn}");
            assert_eq!(c.tags, vec![Tag::new("Name", "web")]);
        }
    }

    #[test]
    fn listed_arns_the_table_does_not_know_or_of_another_account_are_left_out() {
        for arn in [
            "arn:aws:ec2:us-east-1:111122223333:route-table/rtb-12345678",
            "arn:aws:ec2:us-east-1:999999999999:instance/i-12345678",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-xyz",
            "arn:aws:lambda:us-east-1:111122223333:function:resize:3",
            "arn:aws:kms:us-east-1:111122223333:alias/aws/ebs",
            "arn:aws:dynamodb:us-east-1:111122223333:table/orders/backup/01",
            "arn:aws:s3:::my-bucket/key",
            "arn:aws:iam::111122223333:role/bad name",
            "arn:aws:rds:us-east-1:111122223333:db:main",
            "not-an-arn",
        ] {
            assert_eq!(listed(arn, &[]), None, "{arn}");
        }
    }

    #[test]
    fn the_listing_filters_cover_every_kind_but_iam() {
        let filters = listed_types();
        for r in RESOURCE_TYPES.iter().filter(|r| !r.kind.starts_with("iam:")) {
            let service = r.kind.split(':').next().unwrap_or_default();
            assert!(filters.contains(&r.kind) || filters.contains(&service), "{}", r.kind);
        }
        assert!(!filters.iter().any(|f| f.starts_with("iam")));
        assert!(filters.contains(&"ec2:instance") && !filters.contains(&"ec2"));
    }

    #[test]
    fn every_named_kind_is_listed_once() {
        let kinds = named_kinds();
        assert!(kinds.contains(&"ec2:instance") && kinds.contains(&"iam:role") && kinds.contains(&"s3:bucket"));
        assert!(!kinds.contains(&"kms:key"));
        let mut sorted = kinds.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), kinds.len());
    }
}
