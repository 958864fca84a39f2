//! What `migrator ecs run` is asked to do, as plain data, and the parsers of its
//! flag values (`K=V` pairs, the command line to run in the task).
//!
//! Pure: no IO, no clock, no AWS types. clap calls the parsers; the ECS edge turns
//! a [`RunSpec`] into a RunTask request.

use std::time::Duration;

/// The task to start and how to watch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    pub cluster: String,
    /// Family, `family:revision` or ARN.
    pub task_definition: String,
    /// The migration container; `None`: the task definition's only essential one.
    pub container: Option<String>,
    /// Replaces the migration container's `command` (Docker CMD).
    pub command: Option<Vec<String>>,
    /// Added to (or replacing) the migration container's environment.
    pub environment: Vec<(String, String)>,
    /// `None` (and no capacity provider strategy): the cluster's default
    /// capacity provider strategy.
    pub launch_type: Option<LaunchType>,
    /// Capacity providers to spread the task over (instead of a launch type).
    pub capacity_providers: Vec<CapacityProvider>,
    /// Fargate platform version (`1.4.0`, `LATEST`); `None`: ECS's default.
    pub platform_version: Option<String>,
    /// `awsvpc` networking; `None` leaves the network to the task definition.
    pub network: Option<Network>,
    /// How long to wait for the task to stop before stopping it.
    pub timeout: Duration,
    /// Stream the migration container's CloudWatch log lines to stdout.
    pub logs: bool,
}

impl RunSpec {
    /// A spec with nothing but the required parts: the task definition's own
    /// container, command, environment, launch type and network; logs followed.
    pub fn new(cluster: &str, task_definition: &str, timeout: Duration) -> Self {
        RunSpec {
            cluster: cluster.into(),
            task_definition: task_definition.into(),
            container: None,
            command: None,
            environment: vec![],
            launch_type: None,
            capacity_providers: vec![],
            platform_version: None,
            network: None,
            timeout,
            logs: true,
        }
    }

    /// What clap cannot see: values that came empty from the environment.
    pub fn check(&self) -> Result<(), String> {
        if self.cluster.trim().is_empty() {
            return Err("--cluster (MIGRATOR_ECS_CLUSTER) is empty".to_string());
        }
        if self.task_definition.trim().is_empty() {
            return Err("--task-definition (MIGRATOR_ECS_TASK_DEFINITION) is empty".to_string());
        }
        if let Some(network) = &self.network
            && network.subnets.is_empty()
        {
            return Err("--security-groups and --assign-public-ip need --subnets".to_string());
        }
        if self.launch_type.is_some() && !self.capacity_providers.is_empty() {
            return Err(
                "--launch-type and --capacity-provider-strategy exclude each other (RunTask \
                 takes one or the other): leave one empty"
                    .to_string(),
            );
        }
        if self.launch_type == Some(LaunchType::Ec2) && self.platform_version.is_some() {
            return Err(
                "--platform-version is for Fargate tasks, not --launch-type EC2".to_string(),
            );
        }
        Ok(())
    }
}

/// One item of a capacity provider strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityProvider {
    pub name: String,
    /// Relative share of the tasks; ECS's default is 0 (1 when it is the only one).
    pub weight: Option<i32>,
    /// Tasks placed on this provider first; ECS's default is 0.
    pub base: Option<i32>,
}

/// `--capacity-provider-strategy`: comma-separated `NAME[:WEIGHT[:BASE]]`, e.g.
/// `FARGATE_SPOT:3,FARGATE:1:1`; blank: none (the cluster's default strategy).
pub fn parse_capacity_providers(text: &str) -> Result<Vec<CapacityProvider>, String> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let mut parts = item.split(':');
        let name = parts.next().unwrap_or_default().trim();
        let number = |what: &str, max: i32, part: Option<&str>| -> Result<Option<i32>, String> {
            match part.map(str::trim) {
                None => Ok(None),
                Some(p) => match p.parse::<i32>() {
                    Ok(n) if (0..=max).contains(&n) => Ok(Some(n)),
                    _ => Err(format!(
                        "`{item}`: the {what} must be a whole number from 0 to {max}, not `{p}`"
                    )),
                },
            }
        };
        let weight = number("weight", 1000, parts.next())?;
        let base = number("base", 100_000, parts.next())?;
        if name.is_empty() || parts.next().is_some() {
            return Err(format!(
                "`{item}` is not NAME[:WEIGHT[:BASE]] (e.g. FARGATE_SPOT:3,FARGATE:1:1)"
            ));
        }
        out.push(CapacityProvider {
            name: name.to_string(),
            weight,
            base,
        });
    }
    if out.iter().filter(|p| p.base.is_some_and(|b| b > 0)).count() > 1 {
        return Err("only one capacity provider may have a base above 0".to_string());
    }
    Ok(out)
}

/// The `aws` command that stops `task_arn` (its region read from the ARN), for
/// a user to run when we could not.
pub fn stop_command(cluster: &str, task_arn: &str) -> String {
    let region = task_arn
        .strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(2))
        .filter(|r| !r.is_empty())
        .map(|r| format!(" --region {r}"))
        .unwrap_or_default();
    format!(
        "aws ecs stop-task{region} --cluster {} --task {}",
        shell_word(cluster),
        shell_word(task_arn)
    )
}

/// `word`, quoted for a POSIX shell when it needs to be.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchType {
    Fargate,
    Ec2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
}

/// `NAME=value` (the value may be empty and may contain `=`).
pub fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=value"))?;
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` is not a variable name (letters, digits and _, not starting with a digit)"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// Splits a command line into words the way a POSIX shell would, without
/// expanding anything: whitespace separates words, 'single quotes' keep
/// everything, "double quotes" keep everything but `\"`, `\\`, `\$` and `` \` ``,
/// and a backslash outside quotes keeps the next character.
pub fn split_command(text: &str) -> Result<Vec<String>, String> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = Quote::None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Quote::Single => match c {
                '\'' => quote = Quote::None,
                _ => word.push(c),
            },
            Quote::Double => match c {
                '"' => quote = Quote::None,
                '\\' => match chars.next() {
                    Some(n @ ('"' | '\\' | '$' | '`')) => word.push(n),
                    Some('\n') => {}
                    Some(n) => {
                        word.push('\\');
                        word.push(n);
                    }
                    None => return Err("the command ends inside a double quote".to_string()),
                },
                _ => word.push(c),
            },
            Quote::None => match c {
                '\'' => {
                    quote = Quote::Single;
                    in_word = true;
                }
                '"' => {
                    quote = Quote::Double;
                    in_word = true;
                }
                '\\' => match chars.next() {
                    Some('\n') => {}
                    Some(n) => {
                        word.push(n);
                        in_word = true;
                    }
                    None => return Err("the command ends with a lone backslash".to_string()),
                },
                c if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                _ => {
                    word.push(c);
                    in_word = true;
                }
            },
        }
    }
    match quote {
        Quote::Single => return Err("the command ends inside a single quote".to_string()),
        Quote::Double => return Err("the command ends inside a double quote".to_string()),
        Quote::None => {}
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("the command is empty".to_string());
    }
    Ok(words)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn spec() -> RunSpec {
        RunSpec::new("deploy", "shop-migrate", Duration::from_secs(60))
    }

    #[test]
    fn empty_values_from_the_environment_are_caught() {
        assert_eq!(spec().check(), Ok(()));
        let no_cluster = RunSpec {
            cluster: " ".into(),
            ..spec()
        };
        assert!(no_cluster.check().unwrap_err().contains("--cluster"));
        let groups_only = RunSpec {
            network: Some(Network {
                subnets: vec![],
                security_groups: vec!["sg-1".into()],
                assign_public_ip: false,
            }),
            ..spec()
        };
        assert!(groups_only.check().unwrap_err().contains("need --subnets"));
    }

    #[test]
    fn launch_type_and_capacity_providers_exclude_each_other() {
        let both = RunSpec {
            launch_type: Some(LaunchType::Fargate),
            capacity_providers: parse_capacity_providers("FARGATE_SPOT").unwrap(),
            ..spec()
        };
        assert!(both.check().unwrap_err().contains("exclude each other"));
        let ec2_version = RunSpec {
            launch_type: Some(LaunchType::Ec2),
            platform_version: Some("1.4.0".into()),
            ..spec()
        };
        assert!(ec2_version.check().unwrap_err().contains("Fargate"));
    }

    #[test]
    fn capacity_provider_strategies() {
        let p = |name: &str, weight, base| CapacityProvider {
            name: name.into(),
            weight,
            base,
        };
        assert_eq!(
            parse_capacity_providers("FARGATE_SPOT:3, FARGATE:1:1"),
            Ok(vec![
                p("FARGATE_SPOT", Some(3), None),
                p("FARGATE", Some(1), Some(1))
            ])
        );
        assert_eq!(
            parse_capacity_providers("FARGATE_SPOT"),
            Ok(vec![p("FARGATE_SPOT", None, None)])
        );
        assert_eq!(parse_capacity_providers(" "), Ok(vec![]));
        for bad in ["A:x", ":1", "A:1:2:3", "A:-1", "A:1001", "A:1:1,B:1:2"] {
            assert!(parse_capacity_providers(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_stop_command_names_region_cluster_and_task() {
        assert_eq!(
            stop_command(
                "deploy",
                "arn:aws:ecs:eu-west-1:123456789012:task/deploy/8d1e5c2a9f0b4c3d"
            ),
            "aws ecs stop-task --region eu-west-1 --cluster deploy --task \
             arn:aws:ecs:eu-west-1:123456789012:task/deploy/8d1e5c2a9f0b4c3d"
        );
        assert_eq!(
            stop_command("my cluster", "8d1e5c2a"),
            "aws ecs stop-task --cluster 'my cluster' --task 8d1e5c2a"
        );
    }

    #[test]
    fn env_pairs() {
        assert_eq!(
            parse_env_pair("MIGRATOR_ENV=staging-1"),
            Ok(("MIGRATOR_ENV".into(), "staging-1".into()))
        );
        assert_eq!(parse_env_pair("A="), Ok(("A".into(), String::new())));
        assert_eq!(
            parse_env_pair("OPTS=a=b,c"),
            Ok(("OPTS".into(), "a=b,c".into()))
        );
        for bad in ["A", "=x", "1A=x", "A-B=x", "A B=x"] {
            assert!(parse_env_pair(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn commands_split_like_a_shell_without_expansion() {
        let split = |t: &str| split_command(t).unwrap();
        assert_eq!(
            split("migrator up --to 20261101000000"),
            ["migrator", "up", "--to", "20261101000000"]
        );
        assert_eq!(split("  a   b\tc\n"), ["a", "b", "c"]);
        assert_eq!(
            split("say 'two words' \"and $HOME\""),
            ["say", "two words", "and $HOME"]
        );
        assert_eq!(split(r#"a "q\"uote" 'it\'s"#), ["a", "q\"uote", "it\\s"]);
        assert_eq!(split(r"a\ b c"), ["a b", "c"]);
        assert_eq!(split("''"), [""]);
        assert_eq!(split("x''y"), ["xy"]);
        assert_eq!(split(r#""a\nb""#), [r"a\nb"]);
        for bad in ["", "   ", "'open", "\"open", "trailing\\", "\"x\\"] {
            assert!(split_command(bad).is_err(), "{bad:?} accepted");
        }
    }
}
