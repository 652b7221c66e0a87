//! The results of a CLI run that changes AWS (`baseline`, `release`, `sweep`), printed as a
//! summary table or JSON; the steps themselves run through [`guardrail::sweep::apply_steps`].

use guardrail::sweep::StepRow;
use serde_json::{Map, Value};

use crate::Format;

/// Prints the result: a headline and a table for people, one JSON object for scripts.
pub fn print(format: Format, mut fields: Map<String, Value>, headline: &str, heading: &str, steps: &[StepRow]) {
    match format {
        Format::Json => {
            fields.insert("result".into(), headline.into());
            fields.insert("steps".into(), serde_json::to_value(steps).unwrap_or_default());
            println!("{}", Value::Object(fields));
        }
        Format::Text => {
            println!("{heading}: {headline}");
            for s in steps {
                let detail = if s.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", s.detail)
                };
                println!("  {:<14}  {}{detail}", s.status, s.step);
            }
        }
    }
}

/// Prints a table: a header line and one line per row, each column as wide as its widest cell
/// (the last column is not padded).
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
