//! Every `migrator …` command line in README.md and docs/*.md goes through the
//! real argument parser (`migrator::cli::parse_from`, the one the binary uses),
//! and so does the documented ECS task definition's entryPoint joined with its
//! command and with every documented `--command "…"`, as ECS joins them.
//!
//! Command lines are taken from the fenced shell blocks (no language, `sh`,
//! `bash`, `shell`, `console`): a line continued with `\` is one line, a `#`
//! comment is dropped, leading `NAME=value` assignments are skipped, and a
//! quoted word that is itself a command (`hyperfine "… migrator up"`) counts.
//! README's command synopsis (`[--to VERSION]`, `clone|ready|…`, `N | --all`) is
//! expanded: the required words alone, then each optional group and each
//! alternative on its own, with a sample value for each placeholder.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and docs/*.md, in a stable order.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// One command line of a page: where it is, and its text (joined, no comment).
#[derive(Debug, Clone)]
struct Found {
    at: String,
    text: String,
}

/// The lines of the fenced blocks in `languages`, continuation lines joined.
fn block_lines(page: &Path, languages: &[&str]) -> Vec<Found> {
    let text = fs::read_to_string(page).unwrap();
    let name = page.strip_prefix(repo()).unwrap().display().to_string();
    let mut out = Vec::new();
    let mut fence: Option<bool> = None;
    let mut pending: Option<Found> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            fence = match fence {
                None => Some(languages.contains(&lang.trim())),
                Some(_) => None,
            };
            continue;
        }
        if fence != Some(true) {
            continue;
        }
        let mut found = pending.take().unwrap_or(Found {
            at: format!("{name}:{}", i + 1),
            text: String::new(),
        });
        let line = strip_comment(line);
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                found.text.push_str(head);
                found.text.push(' ');
                pending = Some(found);
            }
            None => {
                found.text.push_str(line);
                out.push(found);
            }
        }
    }
    out
}

/// `line` without a shell comment (a `#` at the start of a word, outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return &line[..i],
            _ => {}
        }
        previous = c;
    }
    line
}

fn is_migrator(word: &str) -> bool {
    word.rsplit('/').next() == Some("migrator")
}

/// The `migrator` argument vectors (program name first) of one shell line.
fn commands_of(line: &str) -> Vec<Vec<String>> {
    let Ok(words) = migrator_core::ecs::split_command(line) else {
        return vec![];
    };
    let mut out = Vec::new();
    let mut first = true;
    for (i, word) in words.iter().enumerate() {
        let assignment = first && word.split_once('=').is_some_and(|(n, _)| !n.contains('-'));
        if assignment {
            continue;
        }
        if word.contains(char::is_whitespace) {
            // A quoted command line given to another program.
            if let Ok(inner) = migrator_core::ecs::split_command(word)
                && is_migrator(&inner[0])
            {
                out.push(inner);
            }
        } else if first && is_migrator(word) {
            // Up to a shell operator; a `|` inside a synopsis' `[…]` is not one.
            let mut depth = 0i32;
            let rest = words[i + 1..]
                .iter()
                .take_while(|w| {
                    depth += w.matches('[').count() as i32 - w.matches(']').count() as i32;
                    depth > 0 || !["|", "||", "&&", ";", ">", "2>", "&"].contains(&w.as_str())
                })
                .cloned();
            out.push(std::iter::once(word.clone()).chain(rest).collect());
        }
        first = false;
    }
    out
}

/// A sample value for a placeholder of README's synopsis.
fn sample(placeholder: &str) -> Option<&'static str> {
    Some(match placeholder {
        "VERSION" => "20261101000000",
        "N" => "1",
        "NAME" => "add_users",
        "C" => "deploy",
        "TD" => "shop-migrate",
        "PREFIX" => "app-dev-",
        _ => return None,
    })
}

/// One part of a synopsis: a word (maybe `a|b|c`), or an optional group of
/// alternatives (`[N | --to VERSION | --all]`).
enum Part {
    Word(Vec<String>),
    Optional(Vec<Vec<String>>),
}

fn is_synopsis(words: &[String]) -> bool {
    words.iter().any(|w| {
        w.starts_with('[') || (w.contains('|') && !w.starts_with("--")) || sample(w).is_some()
    })
}

/// Every argument vector a synopsis line stands for (see the module's doc).
fn expand(at: &str, words: &[String]) -> Vec<Vec<String>> {
    let mut parts = Vec::new();
    let mut group: Option<Vec<String>> = None;
    for w in words {
        if let Some(g) = group.as_mut() {
            g.push(w.trim_end_matches(']').to_string());
            if w.ends_with(']') {
                parts.push(optional(group.take().unwrap()));
            }
        } else if let Some(inner) = w.strip_prefix('[') {
            let mut g = vec![inner.trim_end_matches(']').to_string()];
            if w.ends_with(']') {
                parts.push(optional(std::mem::take(&mut g)));
            } else {
                group = Some(g);
            }
        } else {
            parts.push(Part::Word(w.split('|').map(str::to_string).collect()));
        }
    }
    assert!(group.is_none(), "{at}: an unclosed [ in the synopsis");
    let fill = |words: Vec<String>| -> Vec<String> {
        words
            .into_iter()
            .filter(|w| !w.is_empty() && w != "...")
            .map(|w| match sample(&w) {
                Some(v) => v.to_string(),
                None => {
                    assert!(
                        !(w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase())),
                        "{at}: placeholder {w} has no sample value in tests/it/doc_commands.rs"
                    );
                    w
                }
            })
            .collect()
    };
    let base = |choice: Option<(usize, usize)>| -> Vec<String> {
        let mut argv = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            match part {
                Part::Word(alts) => {
                    let pick = match choice {
                        Some((at, alt)) if at == i => alt,
                        _ => 0,
                    };
                    argv.push(alts[pick].clone());
                }
                Part::Optional(alts) => {
                    if let Some((at, alt)) = choice
                        && at == i
                    {
                        argv.extend(alts[alt].iter().cloned());
                    }
                }
            }
        }
        fill(argv)
    };
    let mut out = vec![base(None)];
    for (i, part) in parts.iter().enumerate() {
        let n = match part {
            Part::Word(alts) => alts.len(),
            Part::Optional(alts) => alts.len(),
        };
        let from = usize::from(matches!(part, Part::Word(_)));
        for alt in from..n {
            out.push(base(Some((i, alt))));
        }
    }
    out
}

/// `[a | b c]` as its alternatives; a word `text|json` inside one makes one
/// alternative per value.
fn optional(words: Vec<String>) -> Part {
    let mut alts: Vec<Vec<String>> = vec![vec![]];
    for w in words {
        if w == "|" {
            alts.push(vec![]);
        } else {
            alts.last_mut().unwrap().push(w);
        }
    }
    let mut out = Vec::new();
    for alt in alts {
        let mut variants = vec![vec![]];
        for w in alt {
            let values: Vec<&str> = w.split('|').collect();
            variants = variants
                .into_iter()
                .flat_map(|v: Vec<String>| {
                    values.iter().map(move |value| {
                        let mut v = v.clone();
                        v.push(value.to_string());
                        v
                    })
                })
                .collect();
        }
        out.extend(variants);
    }
    Part::Optional(out)
}

const SHELL: &[&str] = &["", "sh", "bash", "shell", "console"];

/// (where, argv) of every documented command line, synopses expanded.
fn documented() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for page in pages() {
        for found in block_lines(&page, SHELL) {
            for argv in commands_of(&found.text) {
                if is_synopsis(&argv) {
                    for variant in expand(&found.at, &argv) {
                        out.push((format!("{} (synopsis)", found.at), variant));
                    }
                } else {
                    out.push((found.at.clone(), argv));
                }
            }
        }
    }
    out
}

/// Whether the parser takes `argv` (`--help` and `--version`, which clap
/// answers with their text, count as taken).
fn parses(argv: &[String]) -> Result<(), String> {
    let mut full = vec!["migrator".to_string()];
    full.extend(argv.iter().skip(1).cloned());
    match migrator::cli::parse_from(full) {
        Ok(_) => Ok(()),
        Err(e) if !e.starts_with("error:") => Ok(()),
        Err(e) => Err(e),
    }
}

#[test]
fn every_documented_command_line_parses() {
    let all = documented();
    let failures: Vec<String> = all
        .iter()
        .filter_map(|(at, argv)| {
            parses(argv).err().map(|e| {
                format!(
                    "{at}: {}\n  {}",
                    argv.join(" "),
                    e.lines().next().unwrap_or("")
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "documented command lines the parser refuses:\n{}",
        failures.join("\n")
    );
    // The extraction itself: the README's examples and synopsis are all there.
    let at = |prefix: &str| all.iter().filter(|(a, _)| a.starts_with(prefix)).count();
    assert!(at("README.md") >= 30, "{all:#?}");
    assert!(at("docs/connecting.md") >= 2, "{all:#?}");
    assert!(
        all.iter()
            .any(|(_, argv)| argv.len() > 2 && argv[1..3] == ["rotate", "clean"]),
        "the synopsis' alternatives are expanded"
    );
    assert!(
        all.iter()
            .any(|(_, argv)| argv.ends_with(&["--version".to_string()])),
        "a command quoted for another program counts"
    );
}

#[test]
fn the_extraction_finds_what_a_reader_would_run() {
    assert_eq!(
        commands_of("DATABASE_URL=postgres://h/db ./migrator up --to 5 | tee log"),
        [["./migrator", "up", "--to", "5"]]
    );
    assert_eq!(
        commands_of(r#"hyperfine "bin/migrator --version" "bin/migrator up""#),
        [
            vec!["bin/migrator", "--version"],
            vec!["bin/migrator", "up"]
        ]
    );
    assert!(commands_of("cp target/release/migrator \"$ctx/\"").is_empty());
    assert_eq!(strip_comment("migrator up  # apply 'all'"), "migrator up  ");
    assert_eq!(strip_comment("echo '#not' x"), "echo '#not' x");
    let words = |t: &str| migrator_core::ecs::split_command(t).unwrap();
    let variants = expand(
        "t",
        &words("migrator down [N | --to VERSION | --all] [--yes]"),
    );
    let shown: Vec<String> = variants.iter().map(|v| v.join(" ")).collect();
    assert_eq!(
        shown,
        [
            "migrator down",
            "migrator down 1",
            "migrator down --to 20261101000000",
            "migrator down --all",
            "migrator down --yes"
        ]
    );
    // A wrong flag in a documented line is caught.
    assert!(parses(&words("migrator up --no-such-flag")).is_err());
}

/// The migration container of the documented task definition, as ECS runs it:
/// entryPoint, then command (`--command` replaces the command only).
#[test]
fn the_documented_task_definition_runs_with_every_documented_command() {
    let mut definitions = Vec::new();
    for page in pages() {
        let text = fs::read_to_string(&page).unwrap();
        for block in text.split("```json").skip(1) {
            let json = block.split("\n```").next().unwrap_or_default();
            if let Ok(td) = serde_json::from_str::<Value>(json)
                && td.get("containerDefinitions").is_some()
            {
                definitions.push((page.clone(), td));
            }
        }
    }
    assert!(!definitions.is_empty(), "no task definition in the docs");
    let mut overrides: Vec<String> = Vec::new();
    for page in pages() {
        let text = fs::read_to_string(&page).unwrap();
        for piece in text.split("--command \"").skip(1) {
            if let Some((value, _)) = piece.split_once('"')
                && value != "…"
            {
                overrides.push(value.to_string());
            }
        }
    }
    assert!(
        !overrides.is_empty(),
        "no `--command \"…\"` example in the docs"
    );
    let words = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    for (page, td) in &definitions {
        for c in td["containerDefinitions"].as_array().unwrap() {
            let entry = words(&c["entryPoint"]);
            if !entry.first().is_some_and(|w| is_migrator(w)) {
                continue;
            }
            let as_defined = [entry.clone(), words(&c["command"])].concat();
            parses(&as_defined).unwrap_or_else(|e| {
                panic!("{}: {} fails: {e}", page.display(), as_defined.join(" "))
            });
            for o in &overrides {
                let argv = [entry.clone(), migrator_core::ecs::split_command(o).unwrap()].concat();
                parses(&argv).unwrap_or_else(|e| {
                    panic!(
                        "{}: entryPoint {entry:?} with --command \"{o}\" runs `{}`, which \
                         fails: {e}",
                        page.display(),
                        argv.join(" ")
                    )
                });
            }
        }
    }
}
