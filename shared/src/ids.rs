//! Identifiers validated at the edge: account ids and region names taken from untrusted events.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A 12-digit AWS account id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct AccountId(String);

impl AccountId {
    /// Accepts exactly twelve ASCII digits, nothing else.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())).then(|| AccountId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS region name such as `us-east-1` or `us-gov-west-1`.
///
/// The region ends up in the host name of every SDK call, so only the shape AWS uses is accepted:
/// lowercase words separated by single hyphens, the last one a number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Region(String);

impl Region {
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('-').collect();
        let (last, words) = parts.split_last()?;
        let shaped = s.len() <= 32
            && (2..=4).contains(&words.len())
            && words
                .iter()
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
            && !last.is_empty()
            && last.len() <= 2
            && last.bytes().all(|b| b.is_ascii_digit());
        shaped.then(|| Region(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The partition the region belongs to, for building ARNs.
    pub fn partition(&self) -> &'static str {
        if self.0.starts_with("cn-") {
            "aws-cn"
        } else if self.0.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<AccountId> for String {
    fn from(a: AccountId) -> String {
        a.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        AccountId::parse(&s).ok_or_else(|| format!("{} is not a 12-digit account id", clip(&s, 20)))
    }
}

impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}

impl TryFrom<String> for Region {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Region::parse(&s).ok_or_else(|| format!("{} is not a region name", clip(&s, 40)))
    }
}

/// Whether `s` can be an IAM role, user or policy name: 1–64 of letters, digits and `+=,.@_-`.
pub fn is_iam_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// Shortens and escapes an untrusted string for a log line, an alert or an error message:
/// control characters become `\u{..}` escapes and anything past `max` characters is cut.
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_exactly_twelve_digits() {
        assert!(AccountId::parse("123456789012").is_some());
        for bad in [
            "12345678901",
            "1234567890123",
            "12345678901a",
            "",
            "XXXXXXXXXXXX",
            " 23456789012",
        ] {
            assert!(AccountId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn regions_have_the_aws_shape() {
        for good in [
            "us-east-1",
            "eu-west-2",
            "us-gov-west-1",
            "ap-southeast-4",
            "cn-north-1",
        ] {
            assert!(Region::parse(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "us-east-1.evil.com",
            "us_east_1",
            "us--east-1",
            "east-1",
            "us-east-123",
        ] {
            assert!(Region::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            Region::parse("us-gov-west-1").map(|r| r.partition()),
            Some("aws-us-gov")
        );
    }

    #[test]
    fn clip_escapes_and_cuts() {
        assert_eq!(clip("a\nb", 10), "a\\nb");
        assert_eq!(clip("abcdef", 3), "abc…");
    }
}
