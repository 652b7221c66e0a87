//! The kill switch on SSM Parameter Store: read at most once per [`FRESH`] per container, and
//! written by `guardrail pause` / `guardrail resume`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_ssm::error::ProvideErrorMetadata;

use super::aws_error;
use crate::error::Result;
use crate::pause::{Pause, Switch};

/// How long a container trusts what it read: a pause takes effect everywhere within this.
pub const FRESH: Duration = Duration::from_secs(60);

/// The switch's parameter, as one container sees it.
#[derive(Debug)]
pub struct SsmSwitch {
    ssm: aws_sdk_ssm::Client,
    /// `None`: the policy has no switch; Guardrail is never paused.
    name: Option<String>,
    fresh: Duration,
    memory: Mutex<Option<(Pause, Instant)>>,
}

impl SsmSwitch {
    pub fn new(config: &SdkConfig, name: Option<String>) -> Self {
        SsmSwitch {
            ssm: aws_sdk_ssm::Client::new(config),
            name,
            fresh: FRESH,
            memory: Mutex::new(None),
        }
    }

    /// The same switch, trusting what it read for `fresh` instead of [`FRESH`] (tests).
    pub fn with_fresh(self, fresh: Duration) -> Self {
        SsmSwitch { fresh, ..self }
    }

    /// Writes the switch's value (`guardrail pause` / `resume`).
    pub async fn set(&self, value: &str) -> Result<()> {
        let Some(name) = &self.name else {
            return Err(crate::Error::config(
                "the policy has no kill switch (safety.pause_parameter is empty)",
            ));
        };
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| aws_error("ssm", "PutParameter", e))?;
        Ok(())
    }
}

impl Switch for SsmSwitch {
    /// What the parameter says, from memory when read within `fresh`. A failed read falls back
    /// on the last value read, however old; with none, the event fails and Lambda retries it.
    async fn state(&self) -> Result<Pause> {
        let Some(name) = &self.name else {
            return Ok(Pause::Active);
        };
        let remembered = self.memory.lock().ok().and_then(|m| m.clone());
        if let Some((pause, at)) = &remembered
            && at.elapsed() < self.fresh
        {
            return Ok(pause.clone());
        }
        let read = match self.ssm.get_parameter().name(name).send().await {
            Ok(out) => Ok(Pause::from_value(out.parameter().and_then(|p| p.value()))),
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ParameterNotFound") => Ok(Pause::Active),
            Err(e) => Err(aws_error("ssm", "GetParameter", e)),
        };
        match (read, remembered) {
            (Ok(pause), _) => {
                if let Ok(mut m) = self.memory.lock() {
                    *m = Some((pause.clone(), Instant::now()));
                }
                Ok(pause)
            }
            (Err(e), Some((pause, _))) => {
                tracing::warn!(error = %e, "could not read the kill switch; keeping its last value");
                Ok(pause)
            }
            (Err(e), None) => Err(e),
        }
    }
}
