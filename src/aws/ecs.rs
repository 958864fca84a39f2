//! The ECS and CloudWatch Logs calls of `migrator ecs run`, behind two small
//! traits: DescribeTaskDefinition, RunTask, DescribeTasks, StopTask, and
//! GetLogEvents.
//!
//! The SDK clients are built from `aws::Sdk::load()`'s configuration (compiled-in
//! trust roots, timeouts, `AWS_ENDPOINT_URL`). Nothing here decides anything or
//! prints anything; StopTask is only ever called by the caller's decision.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride, Failure,
    KeyValuePair, LaunchType, NetworkConfiguration, Task, TaskDefinition, TaskOverride,
};
use aws_types::SdkConfig;

use crate::aws::sdk_error;
use migrator_core::ecs::{self as spec, RunSpec};
use migrator_core::error::{Error, Result};

/// What RunTask is asked for, besides the spec.
pub struct RunRequest<'a> {
    pub spec: &'a RunSpec,
    /// The exact revision that was inspected (never the family alone: the
    /// container we chose must be the one that runs).
    pub task_definition_arn: &'a str,
    pub container: &'a str,
    /// Makes a retried RunTask start one task, not two.
    pub client_token: &'a str,
}

#[allow(async_fn_in_trait)]
pub trait Ecs {
    async fn task_definition(&self, name: &str) -> Result<TaskDefinition>;
    async fn run_task(&self, request: RunRequest<'_>) -> Result<(Vec<Task>, Vec<Failure>)>;
    /// The task; `None` when ECS does not know it.
    async fn describe_task(&self, cluster: &str, task_arn: &str) -> Result<Option<Task>>;
    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> Result<()>;
}

/// One page of a log stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub messages: Vec<String>,
    pub next_token: Option<String>,
}

#[allow(async_fn_in_trait)]
pub trait Logs {
    /// The events after `token` (from the head of the stream without one);
    /// `None` while the stream (or its group) does not exist.
    async fn page(&self, group: &str, stream: &str, token: Option<&str>) -> Result<Option<Page>>;
}

/// ECS through the SDK.
pub struct SdkEcs {
    client: aws_sdk_ecs::Client,
}

impl SdkEcs {
    pub fn new(config: &SdkConfig) -> Self {
        SdkEcs {
            client: aws_sdk_ecs::Client::new(config),
        }
    }
}

fn overrides(spec: &RunSpec, container: &str) -> Option<TaskOverride> {
    if spec.command.is_none() && spec.environment.is_empty() {
        return None;
    }
    let mut c = ContainerOverride::builder().name(container);
    if let Some(command) = &spec.command {
        c = c.set_command(Some(command.clone()));
    }
    for (name, value) in &spec.environment {
        c = c.environment(KeyValuePair::builder().name(name).value(value).build());
    }
    Some(
        TaskOverride::builder()
            .container_overrides(c.build())
            .build(),
    )
}

/// `--capacity-provider-strategy`; `None` when not given (a launch type, or the
/// cluster's default strategy).
fn strategy(spec: &RunSpec) -> Result<Option<Vec<CapacityProviderStrategyItem>>> {
    if spec.capacity_providers.is_empty() {
        return Ok(None);
    }
    spec.capacity_providers
        .iter()
        .map(|p| {
            CapacityProviderStrategyItem::builder()
                .capacity_provider(&p.name)
                .set_weight(p.weight)
                .set_base(p.base)
                .build()
                .map_err(|e| Error::usage(format!("--capacity-provider-strategy: {e}")))
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn network(network: &spec::Network) -> Result<NetworkConfiguration> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(network.subnets.clone()))
        .set_security_groups(
            (!network.security_groups.is_empty()).then(|| network.security_groups.clone()),
        )
        .assign_public_ip(if network.assign_public_ip {
            AssignPublicIp::Enabled
        } else {
            AssignPublicIp::Disabled
        })
        .build()
        .map_err(|e| Error::usage(format!("--subnets: {e}")))?;
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(vpc)
        .build())
}

impl Ecs for SdkEcs {
    async fn task_definition(&self, name: &str) -> Result<TaskDefinition> {
        let out = self
            .client
            .describe_task_definition()
            .task_definition(name)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("describing task definition `{name}`"), e))?;
        out.task_definition()
            .cloned()
            .ok_or_else(|| Error::usage(format!("task definition `{name}` not found")))
    }

    async fn run_task(&self, request: RunRequest<'_>) -> Result<(Vec<Task>, Vec<Failure>)> {
        let spec = request.spec;
        let network = spec.network.as_ref().map(network).transpose()?;
        let out = self
            .client
            .run_task()
            .cluster(&spec.cluster)
            .task_definition(request.task_definition_arn)
            .count(1)
            .started_by("migrator")
            .client_token(request.client_token)
            .set_launch_type(spec.launch_type.map(|l| match l {
                spec::LaunchType::Fargate => LaunchType::Fargate,
                spec::LaunchType::Ec2 => LaunchType::Ec2,
            }))
            .set_capacity_provider_strategy(strategy(spec)?)
            .set_platform_version(spec.platform_version.clone())
            .set_network_configuration(network)
            .set_overrides(overrides(spec, request.container))
            .send()
            .await
            .map_err(|e| {
                sdk_error(
                    &format!(
                        "starting {} on cluster `{}`",
                        request.task_definition_arn, spec.cluster
                    ),
                    e,
                )
            })?;
        Ok((out.tasks().to_vec(), out.failures().to_vec()))
    }

    async fn describe_task(&self, cluster: &str, task_arn: &str) -> Result<Option<Task>> {
        let out = self
            .client
            .describe_tasks()
            .cluster(cluster)
            .tasks(task_arn)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("describing task {task_arn}"), e))?;
        Ok(out
            .tasks()
            .iter()
            .find(|t| t.task_arn() == Some(task_arn))
            .cloned())
    }

    async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> Result<()> {
        self.client
            .stop_task()
            .cluster(cluster)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("stopping task {task_arn}"), e))?;
        Ok(())
    }
}

/// CloudWatch Logs through the SDK, in the log group's region.
pub struct SdkLogs {
    client: aws_sdk_cloudwatchlogs::Client,
}

impl SdkLogs {
    /// `region`: the `awslogs-region` of the container; `None`: the configured one.
    pub fn new(config: &SdkConfig, region: Option<&str>) -> Self {
        let mut builder = aws_sdk_cloudwatchlogs::config::Builder::from(config);
        if let Some(region) = region {
            builder = builder.region(aws_types::region::Region::new(region.to_string()));
        }
        SdkLogs {
            client: aws_sdk_cloudwatchlogs::Client::from_conf(builder.build()),
        }
    }
}

impl Logs for SdkLogs {
    async fn page(&self, group: &str, stream: &str, token: Option<&str>) -> Result<Option<Page>> {
        use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsError;
        let result = self
            .client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.map(str::to_string))
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(Page {
                messages: out
                    .events()
                    .iter()
                    .filter_map(|e| e.message())
                    .map(str::to_string)
                    .collect(),
                next_token: out.next_forward_token().map(str::to_string),
            })),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetLogEventsError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(
                &format!("reading log stream {group}/{stream}"),
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        RunSpec::new("deploy", "shop-migrate", std::time::Duration::from_secs(60))
    }

    #[test]
    fn no_override_unless_asked() {
        assert_eq!(overrides(&spec(), "migrate"), None);
    }

    #[test]
    fn command_and_environment_override_the_migration_container_only() {
        let s = RunSpec {
            command: Some(vec!["migrator".into(), "up".into()]),
            environment: vec![("MIGRATOR_ENV".into(), "staging-1".into())],
            ..spec()
        };
        let o = overrides(&s, "migrate").unwrap();
        let [c] = o.container_overrides() else {
            panic!("{o:?}")
        };
        assert_eq!(c.name(), Some("migrate"));
        assert_eq!(c.command(), ["migrator", "up"]);
        assert_eq!(c.environment()[0].name(), Some("MIGRATOR_ENV"));
        assert_eq!(c.environment()[0].value(), Some("staging-1"));
    }

    #[test]
    fn capacity_provider_strategy_items() {
        assert_eq!(strategy(&spec()).unwrap(), None);
        let s = RunSpec {
            capacity_providers: spec::parse_capacity_providers("FARGATE_SPOT:3,FARGATE:1:1")
                .unwrap(),
            ..spec()
        };
        let items = strategy(&s).unwrap().unwrap();
        assert_eq!(items[0].capacity_provider(), "FARGATE_SPOT");
        assert_eq!((items[0].weight(), items[0].base()), (3, 0));
        assert_eq!(items[1].capacity_provider(), "FARGATE");
        assert_eq!((items[1].weight(), items[1].base()), (1, 1));
    }

    #[test]
    fn awsvpc_network() {
        let n = network(&spec::Network {
            subnets: vec!["subnet-1".into(), "subnet-2".into()],
            security_groups: vec![],
            assign_public_ip: false,
        })
        .unwrap();
        let vpc = n.awsvpc_configuration().unwrap();
        assert_eq!(vpc.subnets(), ["subnet-1", "subnet-2"]);
        assert!(vpc.security_groups().is_empty());
        assert_eq!(vpc.assign_public_ip(), Some(&AssignPublicIp::Disabled));
    }
}
