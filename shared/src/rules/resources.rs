//! The table of taggable resource types: which CloudTrail event creates them, how to read their
//! ids and creation-time tags from the event, and which tagging call applies. A resource type is
//! one entry here.

use serde_json::Value;

use crate::event::json::items;
use crate::event::{CloudTrailEvent, Rejection};
use crate::ids::clip;
use crate::plan::Tag;

/// How tags are written for a resource type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagApi {
    /// EC2 `CreateTags` (many resources, one call).
    Ec2,
}

/// A resource created by an API call, as the event describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Created {
    pub id: String,
    /// Tags the resource was created with.
    pub tags: Vec<Tag>,
}

/// One taggable resource type.
pub struct ResourceType {
    pub event_source: &'static str,
    pub event_name: &'static str,
    /// Human name, singular: `EC2 instance`.
    pub noun: &'static str,
    pub api: TagApi,
    /// Reads the created resources from the event, without calling AWS.
    pub created: fn(&CloudTrailEvent) -> Result<Vec<Created>, Rejection>,
}

/// Every resource type the tag enforcer knows.
pub static RESOURCE_TYPES: &[ResourceType] = &[ResourceType {
    event_source: "ec2.amazonaws.com",
    event_name: "RunInstances",
    noun: "EC2 instance",
    api: TagApi::Ec2,
    created: run_instances,
}];

/// The entry for an event, if the enforcer handles it.
pub fn lookup(event_source: &str, event_name: &str) -> Option<&'static ResourceType> {
    RESOURCE_TYPES
        .iter()
        .find(|r| r.event_source == event_source && r.event_name == event_name)
}

/// `RunInstances`: instances from `responseElements.instancesSet`, their tags from each item's
/// `tagSet`, else from the request's instance `tagSpecificationSet`.
fn run_instances(call: &CloudTrailEvent) -> Result<Vec<Created>, Rejection> {
    let instances = items(&call.response_elements["instancesSet"]);
    if instances.is_empty() {
        return Err(Rejection::MissingField {
            field: "responseElements.instancesSet",
        });
    }
    let requested: Vec<Tag> = items(&call.request_parameters["tagSpecificationSet"])
        .iter()
        .filter(|spec| spec["resourceType"] == "instance")
        .flat_map(|spec| tags_of(&spec["tags"]))
        .collect();
    instances
        .iter()
        .map(|item| {
            let id = item["instanceId"].as_str().unwrap_or_default();
            if !is_ec2_id(id, "i-") {
                return Err(Rejection::MalformedRecord {
                    detail: format!("instanceId {:?} is not an EC2 instance id", clip(id, 40)),
                });
            }
            let own = tags_of(&item["tagSet"]);
            Ok(Created {
                id: id.to_string(),
                tags: if own.is_empty() {
                    requested.clone()
                } else {
                    own
                },
            })
        })
        .collect()
}

/// Tags from a CloudTrail tag list, in either `{"items": [...]}` or `[...]` form and with
/// `key`/`Key` spellings.
fn tags_of(v: &Value) -> Vec<Tag> {
    items(v)
        .iter()
        .filter_map(|t| {
            let key = t.get("key").or_else(|| t.get("Key"))?.as_str()?;
            let value = t
                .get("value")
                .or_else(|| t.get("Value"))
                .and_then(Value::as_str)
                .unwrap_or("");
            Some(Tag::new(key, value))
        })
        .collect()
}

/// `i-0123456789abcdef0` and the 8-hex-digit form of older ids.
fn is_ec2_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_ids_are_checked() {
        assert!(is_ec2_id("i-0f7c711dc84bedda0", "i-"));
        assert!(is_ec2_id("i-12345678", "i-"));
        for bad in [
            "i-",
            "i-xyz",
            "vol-12345678",
            "i-12345678; rm",
            "i-0f7c711dc84bedda00",
        ] {
            assert!(!is_ec2_id(bad, "i-"), "{bad}");
        }
    }
}
