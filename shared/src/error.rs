//! The crate's one error type, and the stable Lambda `errorType` each variant maps to.

use std::fmt;

/// Everything that can go wrong while Guardrail works on an event, short of a rejected input
/// (a [`crate::event::Rejection`] is an outcome, not an error: it is logged and never retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing or invalid configuration; fails the function's init.
    #[error("configuration: {0}")]
    Config(String),

    /// The policy file is invalid; fails the function's init.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),

    /// An AWS call failed. `transient` errors (throttling, 5xx, timeouts after the SDK's own
    /// retries) are worth retrying; the others (access denied, validation) are not.
    #[error("{service} {operation} failed: {code}: {message}")]
    Aws {
        service: &'static str,
        operation: &'static str,
        code: String,
        message: String,
        transient: bool,
    },

    /// Some actions of an event were applied and others failed; the done ones are recorded and
    /// a retry runs only the rest.
    #[error("{failed} of {total} actions failed; first: {first}")]
    Partial { failed: usize, total: usize, first: String },

    /// Data read back from a store did not have the expected shape.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

impl Error {
    /// The stable Lambda `errorType` for this error, for alarms and dead-letter triage.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Config(_) => "Guardrail.Config",
            Error::Policy(_) => "Guardrail.Policy",
            Error::Aws { transient: true, .. } => "Guardrail.Transient",
            Error::Aws { transient: false, .. } => "Guardrail.AwsError",
            Error::Partial { .. } => "Guardrail.Partial",
            Error::Corrupt { .. } => "Guardrail.Corrupt",
        }
    }

    /// Whether a retry of the same work could succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Aws { transient, .. } => *transient,
            Error::Partial { .. } => true,
            _ => false,
        }
    }

    /// Whether a quota refused the call (IAM's `LimitExceeded`: a principal's 50 tags, its
    /// inline policies' size): retrying changes nothing until someone makes room.
    pub fn is_quota(&self) -> bool {
        matches!(self, Error::Aws { code, .. } if code == "LimitExceeded")
    }

    /// Shorthand for a configuration error naming what to fix.
    pub fn config(message: impl fmt::Display) -> Self {
        Error::Config(message.to_string())
    }
}

#[cfg(feature = "aws")]
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.error_type().to_string(),
            error_message: error.to_string(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
