//! Which environment a trigger selects and whether its gates let the run go on. Pure: no I/O, so every gate is unit-tested.

use std::time::Duration;

use crate::config::{pattern_matches, Environment, PipelineFile};

/// What the operator asked for on the command line (or through action inputs).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--env NAME`.
    pub env: Option<String>,
    /// `--confirm PHRASE`.
    pub confirm: Option<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--review-delay DURATION`: replaces every `review-delay` step's duration.
    pub review_delay: Option<Duration>,
}

/// The GitHub context of the run (the CLI reads it from the runner's environment).
#[derive(Debug, Clone, Default)]
pub struct GitHubEvent {
    /// `GITHUB_EVENT_NAME`; None outside GitHub Actions.
    pub name: Option<String>,
    /// `GITHUB_REF`: `refs/heads/…` or `refs/tags/…`.
    pub git_ref: Option<String>,
    /// The event payload (`GITHUB_EVENT_PATH`), `Null` when absent.
    pub payload: serde_json::Value,
    /// Action inputs: `INPUT_ENVIRONMENT`, `INPUT_CONFIRM`, `INPUT_DRY-RUN` (not trimmed).
    pub input_environment: Option<String>,
    pub input_confirm: Option<String>,
    pub input_dry_run: Option<String>,
}

impl GitHubEvent {
    /// A `workflow_dispatch` input from the payload (values are strings there).
    fn dispatch_input(&self, name: &str) -> Option<String> {
        match self.payload.get("inputs")?.get(name)? {
            serde_json::Value::String(s) if s.is_empty() => None,
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            v => Some(v.to_string()),
        }
    }
}

/// The outcome of environment selection and gates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Run {
        env: String,
        trigger: String,
        dry_run: bool,
    },
    /// Nothing to do for this event (exit 0, with a notice saying why).
    Skip { trigger: String, reason: String },
    /// A safety gate said no (exit 3, nothing touched); `env`: the environment refused.
    Refuse {
        trigger: String,
        env: Option<String>,
        reason: String,
    },
    /// The request itself is wrong (exit 2).
    Usage(String),
}

/// `vMAJOR.MINOR.PATCH` with optional `-prerelease` and `+build`, as semver 2.0.0
/// defines them (no leading zeros, exactly three numbers).
pub fn is_semver_tag(tag: &str) -> bool {
    tag.strip_prefix('v')
        .is_some_and(|rest| semver::Version::parse(rest).is_ok())
}

/// Whether a tag pattern asks for a semantic version (`v*.*.*`).
fn semver_pattern(p: &str) -> bool {
    p.contains("*.*.*")
}

fn parse_bool(what: &str, v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        other => Err(format!("{what} is `{other}`: use true or false")),
    }
}

/// Choose the environment and check the gates. Pure: no I/O.
pub fn decide(file: &PipelineFile, req: &Request, gh: &GitHubEvent) -> Decision {
    let flag_env = req.env.clone().or_else(|| gh.input_environment.clone());
    if let Some(e) = &flag_env {
        if file.environment(e).is_none() {
            return Decision::Usage(unknown_env(file, e));
        }
    }
    let input_dry = match gh
        .input_dry_run
        .as_deref()
        .map(|v| parse_bool("the dry-run input", v))
        .transpose()
    {
        Ok(v) => v,
        Err(e) => return Decision::Usage(e),
    };
    match gh.name.as_deref() {
        None => {
            let Some(env) = flag_env else {
                return Decision::Usage(format!(
                    "which environment? Pass --env NAME (one of: {}); in GitHub Actions the event chooses",
                    file.names().join(", ")
                ));
            };
            let trigger = format!("--env {env}");
            let e = file.environment(&env).expect("checked");
            if let Some(phrase) = e.confirm_phrase(&env) {
                if req.confirm.as_deref() != Some(phrase.as_str()) {
                    return Decision::Refuse {
                        trigger,
                        env: Some(env.to_string()),
                        reason: format!(
                            "environment {env} needs its confirmation phrase: pass --confirm {phrase}"
                        ),
                    };
                }
            }
            Decision::Run {
                env,
                trigger,
                dry_run: req.dry_run || input_dry == Some(true),
            }
        }
        Some("push") => decide_push(file, req, gh, flag_env, input_dry),
        Some("workflow_dispatch") => decide_dispatch(file, req, gh, flag_env, input_dry),
        Some(other) => {
            let trigger = format!("{other} event");
            match flag_env {
                None => Decision::Skip {
                    trigger,
                    reason: format!(
                        "the `{other}` event selects no environment: environments are chosen by a push (on.branches, on.tags) or by workflow_dispatch"
                    ),
                },
                Some(env) => Decision::Refuse {
                    trigger,
                    env: Some(env.to_string()),
                    reason: format!(
                        "environment {env} runs only on a push it lists in on.branches/on.tags or on workflow_dispatch, not on `{other}`"
                    ),
                },
            }
        }
    }
}

fn unknown_env(file: &PipelineFile, e: &str) -> String {
    let names = file.names();
    let hint = crate::config::did_you_mean(e, &names)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    format!(
        "no environment `{e}` in the pipeline file{hint}; environments: {}",
        names.join(", ")
    )
}

fn decide_push(
    file: &PipelineFile,
    req: &Request,
    gh: &GitHubEvent,
    flag_env: Option<String>,
    input_dry: Option<bool>,
) -> Decision {
    let git_ref = gh.git_ref.clone().unwrap_or_default();
    let dry_run = req.dry_run || input_dry == Some(true);
    let deleted = gh.payload.get("deleted").and_then(|v| v.as_bool()) == Some(true);
    let (kind, name) = if let Some(b) = git_ref.strip_prefix("refs/heads/") {
        ("branch", b.to_string())
    } else if let Some(t) = git_ref.strip_prefix("refs/tags/") {
        ("tag", t.to_string())
    } else {
        return Decision::Skip {
            trigger: format!("push of {git_ref}"),
            reason: format!("the pushed ref `{git_ref}` is neither a branch nor a tag"),
        };
    };
    let trigger = format!("push to {kind} {name}");
    if deleted {
        return Decision::Skip {
            trigger,
            reason: format!("the {kind} {name} was deleted: nothing to migrate"),
        };
    }
    // A version-like tag that is not a valid semantic version (v1.2, v1.2.3.4, v01.2.3)
    // is refused when an environment deploys on semantic-version tags: it is almost
    // certainly a release pushed with a typo, not an unrelated tag.
    if kind == "tag"
        && !is_semver_tag(&name)
        && name
            .strip_prefix('v')
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    {
        if let Some((n, p)) = file.environments.iter().find_map(|(n, e)| {
            e.on.tags
                .iter()
                .find(|p| semver_pattern(p) && name.starts_with(p.split('*').next().unwrap_or("")))
                .map(|p| (n, p))
        }) {
            return Decision::Refuse {
                trigger,
                env: Some(n.to_string()),
                reason: format!(
                    "tag {name} looks like a release for environment {n} (`{p}`) but is not a semantic version \
                     (vMAJOR.MINOR.PATCH, no leading zeros, e.g. v1.2.3): refusing to migrate {n}"
                ),
            };
        }
    }
    let mut matched: Vec<(&str, &Environment)> = Vec::new();
    for (n, e) in &file.environments {
        let patterns = if kind == "branch" {
            &e.on.branches
        } else {
            &e.on.tags
        };
        if let Some(p) = patterns.iter().find(|p| pattern_matches(p, &name)) {
            if kind == "tag" && semver_pattern(p) && !is_semver_tag(&name) {
                return Decision::Refuse {
                    trigger,
                    env: Some(n.to_string()),
                    reason: format!(
                        "tag {name} matches `{p}` for environment {n} but is not a semantic version \
                         (vMAJOR.MINOR.PATCH, no leading zeros, e.g. v1.2.3): refusing to migrate {n}"
                    ),
                };
            }
            matched.push((n, e));
        }
    }
    match (flag_env, matched.as_slice()) {
        (Some(env), _) => {
            if matched.iter().any(|(n, _)| *n == env) {
                Decision::Run {
                    env,
                    trigger,
                    dry_run,
                }
            } else {
                Decision::Refuse {
                    trigger,
                    env: Some(env.to_string()),
                    reason: format!(
                        "environment {env} does not run on a push to {kind} {name} (its on.{} do not match): \
                         refusing to migrate it from an unexpected ref",
                        if kind == "branch" { "branches" } else { "tags" }
                    ),
                }
            }
        }
        (None, []) => Decision::Skip {
            trigger,
            reason: format!(
                "no environment's on.{} matches {kind} {name}",
                if kind == "branch" { "branches" } else { "tags" }
            ),
        },
        (None, [(n, _)]) => Decision::Run {
            env: n.to_string(),
            trigger,
            dry_run,
        },
        (None, many) => Decision::Usage(format!(
            "the push to {kind} {name} matches several environments ({}): pass --env to choose",
            many.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn decide_dispatch(
    file: &PipelineFile,
    req: &Request,
    gh: &GitHubEvent,
    flag_env: Option<String>,
    input_dry: Option<bool>,
) -> Decision {
    let chosen = gh.dispatch_input("environment");
    let trigger = format!(
        "workflow_dispatch{}",
        gh.payload
            .get("sender")
            .and_then(|s| s.get("login"))
            .and_then(|l| l.as_str())
            .map(|l| format!(" by {l}"))
            .unwrap_or_default()
    );
    let env = match (chosen, flag_env) {
        (Some(a), Some(b)) if a != b => {
            return Decision::Refuse {
                trigger,
                env: Some(a.to_string()),
                reason: format!(
                "the dispatch chose environment {a} but the action was given {b}: they must agree"
            ),
            }
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => {
            return Decision::Skip {
                trigger,
                reason: "the dispatch chose no environment (input `environment` is empty)".into(),
            }
        }
    };
    let Some(e) = file.environment(&env) else {
        return Decision::Usage(unknown_env(file, &env));
    };
    let Some(phrase) = e.confirm_phrase(&env) else {
        return Decision::Refuse {
            trigger,
            env: Some(env.to_string()),
            reason: format!(
                "environment {env} does not accept manual runs: add `on: {{ dispatch: {{ confirm: PHRASE }} }}` to it"
            ),
        };
    };
    let typed = gh
        .dispatch_input("confirm")
        .or_else(|| gh.input_confirm.clone())
        .or_else(|| req.confirm.clone());
    match typed {
        Some(t) if t == phrase => {}
        Some(_) => {
            return Decision::Refuse {
                trigger,
                env: Some(env.to_string()),
                reason: format!(
                    "the confirmation typed for {env} does not match its phrase exactly (expected `{phrase}`)"
                ),
            }
        }
        None => {
            return Decision::Refuse {
                trigger,
                env: Some(env.to_string()),
                reason: format!("a manual run of {env} needs the confirmation phrase `{phrase}` in the `confirm` input"),
            }
        }
    }
    let dry_run = match gh.dispatch_input("dry_run") {
        Some(v) => match parse_bool("the dry_run input", &v) {
            Ok(b) => b,
            Err(e) => return Decision::Usage(e),
        },
        // A manual run writes only when the operator turns dry_run off.
        None => input_dry.unwrap_or(true),
    } || req.dry_run;
    Decision::Run {
        env,
        trigger,
        dry_run,
    }
}
