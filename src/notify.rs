//! Notifications: a run's outcome sent to a webhook (`notify:` of an environment in
//! pgrollout.yml) — Slack's incoming-webhook message or pgrollout's own JSON — with the
//! environment, status, applied versions, the failing file:line and error, and the run's
//! URL. Secrets are masked in the body. Sending is bounded (a timeout per attempt, a
//! few retries with backoff) and never fails the run: a notification that cannot be
//! delivered is a warning.
//!
//! The facts come from the run's own events: a [`Recorder`] wraps the run's reporter
//! and keeps what a notification needs, so every path (a pipeline run, a dashboard
//! action) is described the same way.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::{Notify, NotifyFormat};
use crate::report::{redact, Direction, Event, Level, Mode, Reporter};

/// A webhook ready to be called.
#[derive(Clone)]
pub struct Webhook {
    url: String,
    pub format: NotifyFormat,
    pub on_success: bool,
    pub timeout: Duration,
    pub retries: u32,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook({}, {:?})", self.host(), self.format)
    }
}

/// Most attempts after the first, whatever the file says: a dead receiver must not hold
/// up a pipeline for long.
pub const MAX_RETRIES: u32 = 5;

impl Webhook {
    /// The webhook of `notify:`, its URL read from the variable it names.
    pub fn from_config(
        n: &Notify,
        env: &str,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Webhook, String> {
        let url = var(&n.webhook_url_env)
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                format!(
                    "environments.{env}.notify: {} is not set, so no notification will be sent",
                    n.webhook_url_env
                )
            })?;
        let parsed = url::Url::parse(&url).map_err(|e| {
            format!(
                "environments.{env}.notify: {} is not a URL ({e})",
                n.webhook_url_env
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "environments.{env}.notify: {} must be an http:// or https:// URL",
                n.webhook_url_env
            ));
        }
        Ok(Webhook {
            url,
            format: n.format,
            on_success: n.on_success,
            timeout: n.timeout.unwrap_or(Duration::from_secs(10)),
            retries: n.retries.unwrap_or(2).min(MAX_RETRIES),
        })
    }

    /// Where it goes, for messages: the host only (a webhook URL's path is its secret).
    pub fn host(&self) -> String {
        url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "the webhook".into())
    }
}

/// Where and why a run failed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Failure {
    pub version: Option<String>,
    /// `file:line:col` of the failing statement, when known.
    pub location: Option<String>,
    pub error: String,
}

/// What a notification says, gathered from the run's events.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub applied: Vec<String>,
    pub rolled_back: Vec<String>,
    pub failure: Option<Failure>,
    /// Secrets the run learned (database URLs read at run time).
    pub secrets: Vec<String>,
}

/// A reporter in front of another: passes every event on and keeps the [`Facts`].
pub struct Recorder<'r> {
    pub inner: &'r mut dyn Reporter,
    pub facts: Facts,
}

impl<'r> Recorder<'r> {
    pub fn new(inner: &'r mut dyn Reporter) -> Recorder<'r> {
        Recorder {
            inner,
            facts: Facts::default(),
        }
    }
}

impl Reporter for Recorder<'_> {
    fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::SectionFinished {
                direction,
                version,
                name,
                mode,
                ..
            } if *mode != Mode::Rehearsal => {
                let v = format!("{version} {name}");
                match direction {
                    Direction::Up => self.facts.applied.push(v),
                    Direction::Down => self.facts.rolled_back.push(v),
                }
            }
            Event::SectionFailed {
                version,
                location,
                message,
                ..
            } => {
                self.facts.failure = Some(Failure {
                    version: Some(version.to_string()),
                    location: location.map(|l| l.to_string()),
                    error: message.to_string(),
                })
            }
            Event::Diagnostic {
                level: Level::Error,
                location,
                message,
            } if self.facts.failure.is_none() => {
                self.facts.failure = Some(Failure {
                    version: None,
                    location: location.map(|l| l.to_string()),
                    error: message.to_string(),
                })
            }
            Event::Secret { value } => self.facts.secrets.push(value.to_string()),
            _ => {}
        }
        self.inner.event(event);
    }

    fn finish(&mut self) {
        self.inner.finish();
    }
}

/// One notification.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    pub environment: &'a str,
    /// success, failed, dry-run, cancelled…
    pub status: &'a str,
    pub succeeded: bool,
    /// apply, rollback, dry-run, pipeline.
    pub action: &'a str,
    pub run_id: &'a str,
    pub actor: &'a str,
    pub run_url: Option<&'a str>,
    /// The run's own message when it failed without a failing migration.
    pub message: Option<&'a str>,
    pub facts: &'a Facts,
}

/// The body to send, secrets masked.
pub fn body(format: NotifyFormat, n: &Notice, secrets: &[String]) -> String {
    let failure = n.facts.failure.clone().or_else(|| {
        (!n.succeeded).then(|| Failure {
            error: n.message.unwrap_or("the run failed").to_string(),
            ..Failure::default()
        })
    });
    let v = match format {
        NotifyFormat::Json => json!({
            "pgrollout": env!("CARGO_PKG_VERSION"),
            "format_version": 1,
            "environment": n.environment,
            "status": n.status,
            "action": n.action,
            "run_id": n.run_id,
            "actor": n.actor,
            "applied": n.facts.applied,
            "rolled_back": n.facts.rolled_back,
            "failure": failure,
            "run_url": n.run_url,
        }),
        NotifyFormat::Slack => slack(n, failure.as_ref()),
    };
    redact(&v.to_string(), secrets)
}

/// Slack's mrkdwn: `&`, `<` and `>` are its only control characters.
fn mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack(n: &Notice, failure: Option<&Failure>) -> Value {
    let icon = if n.succeeded {
        ":white_check_mark:"
    } else {
        ":x:"
    };
    let mut text = format!(
        "{icon} pgrollout {} on *{}*: *{}* (run {} by {})",
        mrkdwn(n.action),
        mrkdwn(n.environment),
        mrkdwn(n.status),
        mrkdwn(n.run_id),
        mrkdwn(n.actor)
    );
    if !n.facts.applied.is_empty() {
        text.push_str(&format!(
            "\nApplied: {}",
            mrkdwn(&n.facts.applied.join(", "))
        ));
    }
    if !n.facts.rolled_back.is_empty() {
        text.push_str(&format!(
            "\nRolled back: {}",
            mrkdwn(&n.facts.rolled_back.join(", "))
        ));
    }
    if let Some(f) = failure {
        text.push_str(&format!(
            "\nFailed{}: ```{}```",
            f.location
                .as_deref()
                .map(|l| format!(" at `{}`", mrkdwn(l)))
                .unwrap_or_default(),
            mrkdwn(&f.error).replace("```", "'''")
        ));
    }
    if let Some(u) = n.run_url {
        text.push_str(&format!("\n<{}|Run log>", mrkdwn(u)));
    }
    json!({ "text": text })
}

/// Send `n` if the webhook wants it (failures always, successes with `on_success`).
/// Retries network errors, 429 and 5xx answers with a growing pause; anything left
/// undelivered is a warning through `reporter`.
pub fn send(hook: &Webhook, n: &Notice, secrets: &[String], reporter: &mut dyn Reporter) {
    if n.succeeded && !hook.on_success {
        return;
    }
    let mut secrets = secrets.to_vec();
    secrets.extend(n.facts.secrets.iter().cloned());
    secrets.push(hook.url.clone());
    let payload = body(hook.format, n, &secrets);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(hook.timeout))
        .http_status_as_error(false)
        .tls_config(
            // The system's CA store, as the PostgreSQL connections use (a company CA works).
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::NativeTls)
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .user_agent(format!("pgrollout/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut last = String::new();
    for attempt in 0..=hook.retries {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(250 << (attempt - 1).min(4)));
        }
        match agent
            .post(&hook.url)
            .header("Content-Type", "application/json")
            .send(payload.as_bytes())
        {
            Ok(r) if r.status().is_success() => {
                reporter.event(&Event::Info {
                    message: &format!("notified {} ({})", hook.host(), n.status),
                });
                return;
            }
            Ok(r) => {
                last = format!("it answered HTTP {}", r.status().as_u16());
                let retry = r.status().is_server_error() || r.status().as_u16() == 429;
                if !retry {
                    break;
                }
            }
            Err(e) => last = redact(&e.to_string(), &secrets),
        }
    }
    reporter.event(&Event::Diagnostic {
        level: Level::Warning,
        location: None,
        message: &format!(
            "the notification to {} was not delivered ({last}); the run itself is not affected",
            hook.host()
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_the_facts_and_mask_secrets() {
        let facts = Facts {
            applied: vec!["1 a".into()],
            failure: Some(Failure {
                version: Some("2".into()),
                location: Some("migrations/2_b.sql:3:1".into()),
                error: "password hunter2 <b>".into(),
            }),
            ..Facts::default()
        };
        let n = Notice {
            environment: "staging",
            status: "failed",
            succeeded: false,
            action: "apply",
            run_id: "r1",
            actor: "alice",
            run_url: Some("https://github.com/o/r/actions/runs/7"),
            message: None,
            facts: &facts,
        };
        let secrets = vec!["hunter2".to_string()];
        let j: Value = serde_json::from_str(&body(NotifyFormat::Json, &n, &secrets)).unwrap();
        assert_eq!(j["failure"]["location"], "migrations/2_b.sql:3:1");
        assert_eq!(j["applied"][0], "1 a");
        assert_eq!(j["failure"]["error"], "password *** <b>");
        let s: Value = serde_json::from_str(&body(NotifyFormat::Slack, &n, &secrets)).unwrap();
        let text = s["text"].as_str().unwrap();
        assert!(text.contains("*** &lt;b&gt;"), "{text}");
        assert!(text.contains("migrations/2_b.sql:3:1"), "{text}");
        assert!(!text.contains("hunter2"));
    }
}
