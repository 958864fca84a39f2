//! Where the run happens: CodeBuild's environment variables and the ECS task
//! metadata endpoint, for the report's `context` and the Slack message.
//!
//! [`context_from_env`] is the IO (environment variables, two GETs to the
//! metadata endpoint); the rest is pure and unit-tested. Context is a nicety:
//! reading it must never fail a run nor delay it by more than
//! [`METADATA_TIMEOUT`]. Failures are logged at debug level and ignored.

use std::time::Duration;

use serde_json::Value;

use migrator_core::report::Context;

/// The most the metadata endpoint may take, both requests together.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// The context of this process: CodeBuild variables, and the ECS task and log
/// stream when `ECS_CONTAINER_METADATA_URI_V4` is set.
pub async fn context_from_env() -> Context {
    let var = |name: &str| std::env::var(name).ok();
    let mut ctx = from_vars(var);
    if let Some(uri) = var("ECS_CONTAINER_METADATA_URI_V4").filter(|u| !u.trim().is_empty()) {
        let fetched = tokio::time::timeout(METADATA_TIMEOUT, ecs_metadata(uri.trim())).await;
        match fetched {
            Ok((task, container)) => apply_ecs(&mut ctx, task.as_ref(), container.as_ref()),
            Err(_) => tracing::debug!(
                "the ECS task metadata endpoint did not answer within {} s; no task context",
                METADATA_TIMEOUT.as_secs()
            ),
        }
    }
    ctx
}

/// `GET ${URI}/task` and `GET ${URI}`, at once.
async fn ecs_metadata(uri: &str) -> (Option<Value>, Option<Value>) {
    let client = match reqwest::Client::builder()
        // The endpoint is link-local: never through a proxy, never over TLS (so no
        // trust store is needed, and none is looked for in the image).
        .no_proxy()
        .tls_certs_only(std::iter::empty())
        .timeout(METADATA_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %super::slack::describe(e), "no HTTP client for ECS metadata");
            return (None, None);
        }
    };
    let base = uri.trim_end_matches('/');
    let task_url = format!("{base}/task");
    tokio::join!(get_json(&client, &task_url), get_json(&client, base))
}

async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    let answer = async {
        let response = client.get(url).send().await?.error_for_status()?;
        response.text().await
    };
    match answer.await {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::debug!(error = %e, "ECS metadata is not JSON");
                None
            }
        },
        Err(e) => {
            tracing::debug!(error = %super::slack::describe(e), "cannot read ECS metadata");
            None
        }
    }
}

/// The CodeBuild part of the context, from environment variables.
pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Context {
    let get = |name: &str| {
        var(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    Context {
        build_id: get("CODEBUILD_BUILD_ID"),
        build_url: get("CODEBUILD_BUILD_URL"),
        commit: get("CODEBUILD_RESOLVED_SOURCE_VERSION"),
        ..Context::default()
    }
}

/// Adds the task ARN (from `${URI}/task`) and the awslogs group and stream
/// (from `${URI}`, the container's `LogOptions`), with a console link.
pub fn apply_ecs(ctx: &mut Context, task: Option<&Value>, container: Option<&Value>) {
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let Some(task) = task {
        ctx.task_arn = text(task.get("TaskARN"));
    }
    if let Some(options) = container.and_then(|c| c.get("LogOptions")) {
        ctx.log_group = text(options.get("awslogs-group"));
        ctx.log_stream = text(options.get("awslogs-stream"));
        let region = text(options.get("awslogs-region"));
        if let (Some(region), Some(group), Some(stream)) = (region, &ctx.log_group, &ctx.log_stream)
        {
            ctx.log_url = log_url(&region, group, stream);
        }
    }
}

/// The CloudWatch console page of one log stream; `None` for a region name
/// that is not one.
pub fn log_url(region: &str, group: &str, stream: &str) -> Option<String> {
    let valid = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return None;
    }
    let host = if region.starts_with("cn-") {
        "console.amazonaws.cn".to_string()
    } else if region.starts_with("us-gov-") {
        "console.amazonaws-us-gov.com".to_string()
    } else {
        format!("{region}.console.aws.amazon.com")
    };
    Some(format!(
        "https://{host}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}/log-events/{}",
        console_escape(group),
        console_escape(stream)
    ))
}

/// The console's fragment encoding: percent-encode, then write `%` as `$25`.
fn console_escape(s: &str) -> String {
    migrator_core::conn::percent_encode(s).replace('%', "$25")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codebuild_variables_blank_ones_ignored() {
        let ctx = from_vars(|name| match name {
            "CODEBUILD_BUILD_ID" => Some("deploy:1234".into()),
            "CODEBUILD_RESOLVED_SOURCE_VERSION" => Some(" abc123 ".into()),
            "CODEBUILD_BUILD_URL" => Some("".into()),
            _ => None,
        });
        assert_eq!(ctx.build_id.as_deref(), Some("deploy:1234"));
        assert_eq!(ctx.commit.as_deref(), Some("abc123"));
        assert_eq!(ctx.build_url, None);
        assert!(from_vars(|_| None).is_empty());
    }

    #[test]
    fn ecs_metadata_gives_task_and_log_stream() {
        let task =
            json!({"TaskARN": "arn:aws:ecs:eu-west-1:123456789012:task/main/abc", "Family": "m"});
        let container = json!({
            "LogDriver": "awslogs",
            "LogOptions": {
                "awslogs-group": "/ecs/migrator",
                "awslogs-region": "eu-west-1",
                "awslogs-stream": "ecs/migrator/abc"
            }
        });
        let mut ctx = Context::default();
        apply_ecs(&mut ctx, Some(&task), Some(&container));
        assert_eq!(
            ctx.task_arn.as_deref(),
            Some("arn:aws:ecs:eu-west-1:123456789012:task/main/abc")
        );
        assert_eq!(ctx.log_stream.as_deref(), Some("ecs/migrator/abc"));
        assert_eq!(
            ctx.log_url.as_deref(),
            Some(
                "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1\
                 #logsV2:log-groups/log-group/$252Fecs$252Fmigrator/log-events/ecs$252Fmigrator$252Fabc"
            )
        );
    }

    #[test]
    fn partial_or_odd_metadata_gives_what_it_can() {
        let mut ctx = Context::default();
        apply_ecs(
            &mut ctx,
            Some(&json!({"TaskARN": 5})),
            Some(&json!({"LogDriver": "json-file"})),
        );
        assert!(ctx.is_empty());
        let container = json!({"LogOptions": {"awslogs-group": "g", "awslogs-stream": "s"}});
        apply_ecs(&mut ctx, None, Some(&container));
        assert_eq!((ctx.log_group.as_deref(), ctx.log_url), (Some("g"), None));
        assert_eq!(log_url("eu-west-1#x", "g", "s"), None);
        assert!(
            log_url("cn-north-1", "g", "s")
                .unwrap()
                .starts_with("https://console.amazonaws.cn/")
        );
    }
}
