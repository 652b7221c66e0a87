//! Timestamps as real events write them: RFC 3339, `+0000` offsets, space-separated and US-style.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Parses the timestamp shapes seen in CloudTrail, GuardDuty and Control Tower events.
/// Values without an offset are UTC, as every AWS service writes them.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 40 {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // "2019-11-12T09:01:07+0000"
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    const NAIVE: &[&str] = &[
        "%Y-%m-%d %H:%M:%S%.f",  // 2024-06-02 20:27:12 (Panther-normalised)
        "%Y-%m-%dT%H:%M:%S%.f",  // no offset at all
        "%b %d, %Y %I:%M:%S %p", // Sep 16, 2020 9:20:50 PM (Organizations service events)
        "%b %d, %Y, %I:%M:%S %p",
    ];
    NAIVE
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seen_shape_parses_to_the_same_instant() {
        let want = parse("2020-09-16T21:20:50Z").expect("rfc3339");
        for s in [
            "2020-09-16T21:20:50+00:00",
            "2020-09-16T21:20:50+0000",
            "2020-09-16 21:20:50",
            "2020-09-16T21:20:50",
            "Sep 16, 2020 9:20:50 PM",
            "2020-09-16T21:20:50.000Z",
        ] {
            assert_eq!(parse(s), Some(want), "{s}");
        }
    }

    #[test]
    fn placeholders_and_garbage_do_not_parse() {
        for s in [
            "",
            "yyyy-mm-ddThh:mm:ssZ",
            "tomorrow",
            "2020-13-40T99:00:00Z",
            &"9".repeat(100),
        ] {
            assert_eq!(parse(s), None, "{s:?}");
        }
    }
}
