//! `guardrail redrive --queue URL`: sends each dead-lettered event back through the function it
//! failed in (a synchronous `lambda:Invoke`, so the function's replay guard still decides), and
//! deletes the message once the function has dealt with it for good.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use guardrail::rules::Function;
use serde::Serialize;
use serde_json::Value;

use crate::{Format, unusable};

const COMMAND: &str = "redrive";

#[derive(clap::Args)]
pub struct Args {
    /// The dead-letter queue's URL (`guardrail-<function>-dlq` in infra/template.yaml).
    #[arg(long)]
    queue: String,
    /// The function the events belong to, when the queue and messages do not say.
    #[arg(long)]
    function: Option<String>,
    /// The Lambda function to invoke; `{function}` stands for the Guardrail function's name.
    /// Default: the function named in each dead-letter record, else `guardrail-{function}`.
    #[arg(long)]
    lambda_name: Option<String>,
    /// Stop after this many messages.
    #[arg(long, default_value_t = 1000)]
    max: usize,
    /// Read and show the messages; invoke nothing, delete nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// A dead-letter message, understood.
#[derive(Debug, PartialEq)]
pub struct DeadLetter {
    /// The Guardrail function it belongs to, when known.
    pub function: Option<Function>,
    /// The Lambda function named in the record (`guardrail-tag-enforcer`).
    pub lambda: Option<String>,
    /// The event as the function first received it.
    pub event: Value,
}

/// Reads a dead-letter body: a Lambda `OnFailure` destination record (`requestContext`,
/// `requestPayload`), or an EventBridge rule's dead letter (the event itself, the target in the
/// `TARGET_ARN` attribute). `queue_function` is what the queue's name says.
pub fn read(body: &str, target_arn: Option<&str>, queue_function: Option<Function>) -> Result<DeadLetter, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let (lambda, event) = match (value.get("requestContext"), value.get("requestPayload")) {
        (Some(context), Some(payload)) => (context["functionArn"].as_str().and_then(function_name), payload.clone()),
        _ if value.get("detail-type").is_some() || value.get("Records").is_some() => {
            (target_arn.and_then(function_name), value)
        }
        _ => return Err("neither a Lambda failure record nor an EventBridge event".into()),
    };
    let function = lambda
        .as_deref()
        .and_then(|l| l.strip_prefix("guardrail-"))
        .and_then(Function::from_name)
        .or(queue_function);
    Ok(DeadLetter {
        function,
        lambda,
        event,
    })
}

/// `arn:aws:lambda:us-east-1:111122223333:function:guardrail-tag-enforcer:$LATEST` → its name.
fn function_name(arn: &str) -> Option<String> {
    let (_, rest) = arn.split_once(":function:")?;
    let name = rest.split(':').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// `.../guardrail-tag-enforcer-dlq` → tag-enforcer.
fn queue_function(url: &str) -> Option<Function> {
    let name = url.rsplit('/').next()?;
    Function::from_name(name.strip_prefix("guardrail-")?.strip_suffix("-dlq")?)
}

/// One row of the summary.
#[derive(Serialize)]
struct Row {
    message: String,
    function: String,
    event: String,
    outcome: String,
    detail: String,
}

pub fn run(args: &Args) -> ExitCode {
    let forced = match args.function.as_deref().map(|f| (f, Function::from_name(f))) {
        Some((name, None)) => {
            return unusable(
                COMMAND,
                format!("no function {name:?}; use account-baseline, tag-enforcer or agent-quarantine"),
            );
        }
        Some((_, f)) => f,
        None => None,
    };
    let runtime = match crate::runtime(COMMAND) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(redrive(args, forced))
}

async fn redrive(args: &Args, forced: Option<Function>) -> ExitCode {
    let sdk = guardrail::aws::load().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // An invocation may take as long as the function's timeout.
    let lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::config::Builder::from(&sdk)
            .timeout_config(
                aws_sdk_lambda::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(900))
                    .operation_attempt_timeout(Duration::from_secs(900))
                    .build(),
            )
            .build(),
    );
    let from_queue = forced.or_else(|| queue_function(&args.queue));
    let mut rows = Vec::new();
    let mut failed = false;
    let mut seen = std::collections::HashSet::new();
    while rows.len() < args.max {
        let batch = sqs
            .receive_message()
            .queue_url(&args.queue)
            .max_number_of_messages(10.min(i32::try_from(args.max - rows.len()).unwrap_or(10)))
            .wait_time_seconds(1)
            .visibility_timeout(900)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        let messages = match batch {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                let e = guardrail::aws::aws_error("sqs", "ReceiveMessage", e);
                return unusable(
                    COMMAND,
                    format!("cannot read {}: {e} (check the URL and sqs:ReceiveMessage)", args.queue),
                );
            }
        };
        // A message seen twice means the queue came round again: every message was handled.
        let (fresh, again): (Vec<Message>, Vec<Message>) = messages
            .into_iter()
            .partition(|m| m.message_id().is_some_and(|id| seen.insert(id.to_string())));
        for message in &again {
            release(&sqs, &args.queue, message).await;
        }
        if fresh.is_empty() {
            break;
        }
        for message in fresh {
            let row = one(args, &sqs, &lambda, &message, forced, from_queue, rows.len() + 1).await;
            if row.detail.contains("left in the queue") {
                release(&sqs, &args.queue, &message).await;
            }
            failed |= row.outcome == "failed" || row.outcome == "unreadable";
            rows.push(row);
        }
    }
    print(&rows, args.format);
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// Makes a message left in the queue visible again at once, for the next run or a person, not
/// in 15 minutes.
async fn release(sqs: &aws_sdk_sqs::Client, queue: &str, message: &Message) {
    if let Some(receipt) = message.receipt_handle() {
        let _ = sqs
            .change_message_visibility()
            .queue_url(queue)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await;
    }
}

async fn one(
    args: &Args,
    sqs: &aws_sdk_sqs::Client,
    lambda: &aws_sdk_lambda::Client,
    message: &Message,
    forced: Option<Function>,
    from_queue: Option<Function>,
    n: usize,
) -> Row {
    let id = message.message_id().unwrap_or("?").to_string();
    let target = message
        .message_attributes()
        .and_then(|a| a.get("TARGET_ARN"))
        .and_then(|v| v.string_value());
    let mut row = Row {
        message: id.chars().take(8).collect(),
        function: "?".into(),
        event: "?".into(),
        outcome: "unreadable".into(),
        detail: String::new(),
    };
    let letter = match read(message.body().unwrap_or_default(), target, from_queue) {
        Ok(l) => l,
        Err(why) => {
            row.detail = format!("{why}; left in the queue");
            eprintln!("[{n}] {id}: {}", row.detail);
            return row;
        }
    };
    let Some(function) = forced.or(letter.function) else {
        row.detail = "cannot tell which function it belongs to: run again with --function; left in the queue".into();
        eprintln!("[{n}] {id}: {}", row.detail);
        return row;
    };
    row.function = function.name().into();
    row.event = guardrail::event::decode_value(letter.event.clone())
        .first()
        .map(|d| match d {
            Ok(e) => e.label(),
            Err(r) => format!("unusable ({})", r.code()),
        })
        .unwrap_or_default();
    let name = match (&args.lambda_name, &letter.lambda) {
        (Some(template), _) => template.replace("{function}", function.name()),
        (None, Some(named)) => named.clone(),
        (None, None) => format!("guardrail-{}", function.name()),
    };
    if args.dry_run {
        row.outcome = "would redrive".into();
        row.detail = format!("to {name}");
        eprintln!("[{n}] {id}: {} {} → would invoke {name}", row.function, row.event);
        return row;
    }
    eprint!("[{n}] {id}: {} {} → {name} … ", row.function, row.event);
    let invoked = lambda
        .invoke()
        .function_name(&name)
        .payload(Blob::new(letter.event.to_string()))
        .send()
        .await;
    let out = match invoked {
        Ok(out) => out,
        Err(e) => {
            row.outcome = "failed".into();
            row.detail = format!(
                "{}; left in the queue (check lambda:InvokeFunction on {name})",
                guardrail::aws::aws_error("lambda", "Invoke", e)
            );
            eprintln!("FAILED");
            return row;
        }
    };
    let response: Value = out
        .payload()
        .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
        .unwrap_or(Value::Null);
    if let Some(kind) = out.function_error() {
        row.outcome = "failed".into();
        row.detail = format!(
            "{kind} {}: {}; left in the queue",
            response["errorType"].as_str().unwrap_or("?"),
            guardrail::ids::clip(response["errorMessage"].as_str().unwrap_or(""), 200)
        );
        eprintln!("FAILED");
        return row;
    }
    let outcomes: Vec<&str> = response
        .as_array()
        .map(|events| events.iter().filter_map(|e| e["outcome"].as_str()).collect())
        .unwrap_or_default();
    row.outcome = if outcomes.is_empty() {
        "handled".into()
    } else {
        outcomes.join(",")
    };
    // Handled for good (applied, a duplicate, rejected as unusable...): the letter goes.
    if let Some(receipt) = message.receipt_handle()
        && let Err(e) = sqs
            .delete_message()
            .queue_url(&args.queue)
            .receipt_handle(receipt)
            .send()
            .await
    {
        row.detail = format!(
            "handled, but not deleted: {}",
            guardrail::aws::aws_error("sqs", "DeleteMessage", e)
        );
    }
    eprintln!("{}", row.outcome);
    row
}

fn print(rows: &[Row], format: Format) {
    if format == Format::Json {
        let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
        for r in rows {
            *totals.entry(r.outcome.as_str()).or_default() += 1;
        }
        println!("{}", serde_json::json!({"messages": rows, "totals": totals}));
        return;
    }
    if rows.is_empty() {
        println!("The queue holds no messages.");
        return;
    }
    let width = |f: fn(&Row) -> &str, title: &str| rows.iter().map(|r| f(r).len()).max().unwrap_or(0).max(title.len());
    let w = [
        width(|r| &r.message, "message"),
        width(|r| &r.function, "function"),
        width(|r| &r.event, "event"),
        width(|r| &r.outcome, "outcome"),
    ];
    println!(
        "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  detail",
        "message",
        "function",
        "event",
        "outcome",
        w0 = w[0],
        w1 = w[1],
        w2 = w[2],
        w3 = w[3]
    );
    for r in rows {
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            r.message,
            r.function,
            r.event,
            r.outcome,
            r.detail,
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        );
    }
    let left = rows.iter().filter(|r| r.detail.contains("left in the queue")).count();
    println!(
        "{} message(s): {} redriven, {left} left in the queue",
        rows.len(),
        rows.len() - left
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = include_str!("../../events/tag-enforcer/run-instances.json");

    #[test]
    fn both_dead_letter_shapes_name_their_function_and_event() {
        let record = serde_json::json!({
            "version": "1.0",
            "requestContext": {
                "requestId": "r", "condition": "RetriesExhausted", "approximateInvokeCount": 3,
                "functionArn": "arn:aws:lambda:us-east-1:111122223333:function:guardrail-tag-enforcer:$LATEST"
            },
            "requestPayload": serde_json::from_str::<Value>(EVENT).expect("event"),
            "responsePayload": {"errorType": "Guardrail.Transient"}
        });
        let letter = read(&record.to_string(), None, None).expect("record");
        assert_eq!(letter.function, Some(Function::TagEnforcer));
        assert_eq!(letter.lambda.as_deref(), Some("guardrail-tag-enforcer"));
        assert_eq!(letter.event["detail-type"], "AWS API Call via CloudTrail");

        let target = "arn:aws:lambda:us-east-1:111122223333:function:guardrail-agent-quarantine";
        let letter = read(EVENT, Some(target), None).expect("event");
        assert_eq!(letter.function, Some(Function::AgentQuarantine));
        let letter = read(
            EVENT,
            None,
            queue_function("https://sqs/1/guardrail-account-baseline-dlq"),
        )
        .expect("event");
        assert_eq!(
            (letter.function, letter.lambda),
            (Some(Function::AccountBaseline), None)
        );
        assert!(read("{\"hello\": 1}", None, None).is_err());
        assert!(read("not json", None, None).is_err());
    }
}
