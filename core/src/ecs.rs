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
    pub launch_type: Option<LaunchType>,
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
        Ok(())
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
