//! The documentation holds together: README stays a front page (at most 400
//! lines, the manual in docs/), and every relative link in README.md,
//! ARCHITECTURE.md, docs/*.md, the Dockerfile and buildspec.yml names a file
//! that exists, and for `page.md#anchor` a heading of that page.
//!
//! Links are Markdown links `[text](target)` and reference definitions
//! `[name]: target` outside code (fenced blocks and `code spans`), and, in the
//! Dockerfile and buildspec.yml, bare mentions such as
//! `docs/packaging.md#the-amazon-rds-roots`, read from the repository root.
//! `http(s)://`, `mailto:` and other external targets are not checked. Anchors
//! follow GitHub's slugs: lowercase, a space becomes `-`, punctuation other than
//! `-` and `_` is dropped, and a repeated heading gets `-1`, `-2`, ….

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// How a file's links are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Markdown: `[text](target)` and `[name]: target`, relative to the file.
    Markdown,
    /// Dockerfile, YAML: bare `path/to/page.md[#anchor]` mentions, relative to
    /// the repository root.
    Bare,
}

/// A link target as written, and the line (1-based) it is on.
#[derive(Debug, PartialEq, Eq)]
struct Link {
    line: usize,
    target: String,
}

/// `line` with every code span's content (and its backticks) blanked out.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut open: Option<usize> = None;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '`' {
            let run = chars[i..].iter().take_while(|&&c| c == '`').count();
            match open {
                None => open = Some(run),
                Some(n) if n == run => open = None,
                Some(_) => {}
            }
            out.extend(std::iter::repeat_n(' ', run));
            i += run;
            continue;
        }
        out.push(if open.is_some() { ' ' } else { chars[i] });
        i += 1;
    }
    out
}

/// Whether `line` opens or closes a fenced code block.
fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// The link targets of a Markdown text, outside code.
fn markdown_links(text: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut in_fence = false;
    for (n, raw) in text.lines().enumerate() {
        if is_fence(raw) {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let line = without_code_spans(raw);
        let line_no = n + 1;
        // Reference definition: `[name]: target "title"`.
        let trimmed = line.trim_start();
        if trimmed.starts_with('[')
            && let Some(end) = trimmed.find(']')
            && let Some(after) = trimmed[end + 1..].strip_prefix(':')
            && let Some(target) = after.split_whitespace().next()
        {
            links.push(Link {
                line: line_no,
                target: target.trim_matches(['<', '>']).to_string(),
            });
            continue;
        }
        // Inline links: `](target)`, `](<target>)`, `](target "title")`.
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let mut depth = 0usize;
            let mut end = after.len();
            for (i, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => {
                        end = i;
                        break;
                    }
                    ')' => depth -= 1,
                    _ => {}
                }
            }
            let inside = after[..end].trim();
            let target = match inside.strip_prefix('<') {
                Some(angled) => angled.split('>').next().unwrap_or(""),
                None => inside.split_whitespace().next().unwrap_or(""),
            };
            links.push(Link {
                line: line_no,
                target: target.to_string(),
            });
            rest = &after[end.min(after.len())..];
        }
    }
    links
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

fn is_anchor_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

/// Bare mentions of Markdown pages (`docs/page.md`, `README.md#exit-codes`).
fn bare_links(text: &str) -> Vec<Link> {
    let mut links = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(found) = line[from..].find(".md") {
            let dot = from + found;
            let end = dot + 3;
            from = end;
            if line[end..].chars().next().is_some_and(is_path_char) {
                continue; // `.mdx`, `.md.bak`, …
            }
            let start = line[..dot]
                .char_indices()
                .rev()
                .take_while(|&(_, c)| is_path_char(c))
                .last()
                .map_or(dot, |(i, _)| i);
            let path = &line[start..end];
            if start == dot || path.starts_with("//") || line[..start].ends_with(':') {
                continue; // no name, or part of a URL
            }
            let mut target = path.to_string();
            if let Some(anchor) = line[end..].strip_prefix('#') {
                let len = anchor
                    .char_indices()
                    .find(|&(_, c)| !is_anchor_char(c))
                    .map_or(anchor.len(), |(i, _)| i);
                target.push('#');
                target.push_str(&anchor[..len]);
                from = end + 1 + len;
            }
            links.push(Link {
                line: n + 1,
                target,
            });
        }
    }
    links
}

/// GitHub's anchor for a heading's text.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The anchors of a Markdown page's ATX headings, outside code blocks.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = HashSet::new();
    let mut in_fence = false;
    for line in text.lines() {
        if is_fence(line) {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || line.starts_with("    ") {
            continue;
        }
        let t = line.trim_start();
        let level = t.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&level) || !t[level..].starts_with(' ') {
            continue;
        }
        let base = slug(t[level..].trim().trim_end_matches('#'));
        let count = seen.entry(base.clone()).or_insert(0);
        out.insert(if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    out
}

/// `path` with `.` and `..` resolved, or `None` when it climbs above its start.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

/// The dead links of `text`, the content of `file` (relative to `root`): one
/// line each, `file:line: target: why`. Returns how many links were checked too.
fn dead_links(root: &Path, file: &Path, text: &str, kind: Kind) -> (Vec<String>, usize) {
    let links = match kind {
        Kind::Markdown => markdown_links(text),
        Kind::Bare => bare_links(text),
    };
    let mut dead = Vec::new();
    let mut checked = 0;
    for Link { line, target } in links {
        if is_external(&target) {
            continue;
        }
        checked += 1;
        let fail = |why: &str| format!("{}:{line}: {target}: {why}", file.display());
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let relative = if path.is_empty() {
            Some(file.to_path_buf())
        } else if let Some(from_root) = path.strip_prefix('/') {
            normalize(Path::new(from_root))
        } else {
            let base = match kind {
                Kind::Markdown => file.parent().unwrap_or(Path::new("")),
                Kind::Bare => Path::new(""),
            };
            normalize(&base.join(path))
        };
        let Some(relative) = relative else {
            dead.push(fail("leaves the repository"));
            continue;
        };
        let full = root.join(&relative);
        if !path.is_empty() && !full.exists() {
            dead.push(fail("no such file"));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        if full.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let page = if path.is_empty() {
            text.to_string()
        } else {
            fs::read_to_string(&full).unwrap_or_default()
        };
        if !anchors(&page).contains(anchor) {
            dead.push(fail(&format!(
                "no heading with the anchor #{anchor} in {}",
                relative.display()
            )));
        }
    }
    (dead, checked)
}

/// The Markdown pages of docs/, relative to the repository root, sorted.
fn docs_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = fs::read_dir(repo().join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .map(|path| Path::new("docs").join(path.file_name().expect("a file name")))
        .collect();
    pages.sort();
    pages
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut files = vec![
        (PathBuf::from("README.md"), Kind::Markdown),
        (PathBuf::from("ARCHITECTURE.md"), Kind::Markdown),
    ];
    files.extend(docs_pages().into_iter().map(|page| (page, Kind::Markdown)));
    files.push((PathBuf::from("Dockerfile"), Kind::Bare));
    files.push((PathBuf::from("buildspec.yml"), Kind::Bare));

    let mut dead = Vec::new();
    let mut checked = 0;
    for (file, kind) in &files {
        let text = fs::read_to_string(repo().join(file))
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let (found, count) = dead_links(repo(), file, &text, *kind);
        dead.extend(found);
        checked += count;
    }
    assert!(
        dead.is_empty(),
        "dead links ({} of {checked}):\n{}",
        dead.len(),
        dead.join("\n")
    );
    // README alone links every docs/ page: an extractor that finds nothing fails here.
    assert!(checked >= 20, "only {checked} relative links found");
}

#[test]
fn readme_is_a_front_page_and_the_manual_is_in_docs() {
    let readme = fs::read_to_string(repo().join("README.md")).expect("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 400, "README.md has {lines} lines (at most 400)");
    let pages = docs_pages();
    assert!(
        pages.len() >= 3,
        "docs/ has {} pages: {pages:?}",
        pages.len()
    );
}

#[test]
fn docs_link_check_finds_dead_links_in_markdown() {
    let text = "\
# A heading, with `code`

[fine](README.md) and [also fine](#a-heading-with-code) and [web](https://example.org/gone.md)
[gone](docs/no-such-page.md) and [bad anchor](README.md#no-such-heading)
[up and out](../outside.md) and [missing here](#not-a-heading)
[ref]: <docs/also-missing.md>

```sh
[in a code block](nowhere.md)
```
`[in a code span](nowhere.md)`
";
    let (dead, checked) = dead_links(repo(), Path::new("docs/example.md"), text, Kind::Markdown);
    assert_eq!(checked, 7, "{dead:?}");
    // Relative to docs/: README.md there does not exist either.
    let expected = [
        "docs/example.md:3: README.md: no such file",
        "docs/example.md:4: docs/no-such-page.md: no such file",
        "docs/example.md:4: README.md#no-such-heading: no such file",
        "docs/example.md:5: ../outside.md: no such file",
        "docs/example.md:5: #not-a-heading: no heading with the anchor #not-a-heading in docs/example.md",
        "docs/example.md:6: docs/also-missing.md: no such file",
    ];
    assert_eq!(dead, expected);

    // The same links from the root, where README.md exists but its heading does not.
    let (dead, _) = dead_links(repo(), Path::new("NOTES.md"), text, Kind::Markdown);
    assert!(
        dead.iter().all(|d| !d.contains(": README.md: ")),
        "{dead:?}"
    );
    assert!(
        dead.iter()
            .any(|d| d.contains("no heading with the anchor #no-such-heading in README.md")),
        "{dead:?}"
    );
}

#[test]
fn docs_link_check_finds_dead_bare_mentions() {
    let text = "\
# see docs/static.md for how, and README.md#exit-codes for the codes
# (docs/packaging.md#no-such-section); https://example.org/page.md is not ours
# notes.mdx is not a page
";
    let (dead, checked) = dead_links(repo(), Path::new("Dockerfile"), text, Kind::Bare);
    assert_eq!(checked, 3, "{dead:?}");
    assert_eq!(
        dead,
        [
            "Dockerfile:1: docs/static.md: no such file",
            "Dockerfile:2: docs/packaging.md#no-such-section: \
             no heading with the anchor #no-such-section in docs/packaging.md",
        ]
    );
}

#[test]
fn docs_anchors_follow_github_slugs() {
    assert_eq!(slug("Exit codes"), "exit-codes");
    assert_eq!(
        slug("History table: `migrator_history`"),
        "history-table-migrator_history"
    );
    assert_eq!(
        slug("Run report (`--output json`, `--report FILE`)"),
        "run-report---output-json---report-file"
    );
    assert_eq!(
        slug("Packaging: one static binary, a scratch image"),
        "packaging-one-static-binary-a-scratch-image"
    );
    let page = "# Notes\n## Notes\n```\n# not a heading\n```\n#not-one-either\n";
    let found = anchors(page);
    let expected: HashSet<String> = ["notes", "notes-1"].map(String::from).into();
    assert_eq!(found, expected);
}

/// README's exit-code table lists exactly the codes `Error::exit_status` gives
/// (`ExitStatus::FIXED`), and says that `ecs run` passes a container's code through.
#[test]
fn readme_exit_code_table_matches_the_code() {
    let readme = fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme
        .split("\n## Exit codes")
        .nth(1)
        .expect("README has an `## Exit codes` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let documented: Vec<u8> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|rest| rest.split(" |").next()?.trim().parse().ok())
        .collect();
    let mut actual: Vec<u8> = migrator_core::error::ExitStatus::FIXED
        .iter()
        .map(|s| s.code())
        .collect();
    actual.sort_unstable();
    assert_eq!(
        documented, actual,
        "README's exit-code table and ExitStatus::FIXED differ"
    );
    assert!(
        section.contains("passes the migration\ncontainer's own code through")
            || section.contains("passes the migration container's own code through"),
        "README no longer says that `ecs run` passes the container's code through"
    );
}
