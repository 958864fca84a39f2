//! The Dockerfile's builder stage cannot be built where the tests run (no Docker
//! engine, no registry image), so these tests hold it to what can be checked from
//! the repository: every path it copies exists and is not excluded from the build
//! context, the final stage is `scratch` with `/migrator` as its entrypoint, the
//! `prebuilt` target makes the same image from a binary built outside, nothing is
//! downloaded, and the toolchain image matches `rust-version`. `scripts/image`
//! builds the `prebuilt` target with podman and runs it.

use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The instructions of a Dockerfile: continuation lines joined, comments and
/// blank lines dropped.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// (flags, sources, destination) of a COPY instruction.
fn copy_parts(instruction: &str) -> Option<(Vec<&str>, Vec<&str>, &str)> {
    let rest = instruction.strip_prefix("COPY ")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (flags, paths): (Vec<&str>, Vec<&str>) =
        words.into_iter().partition(|w| w.starts_with("--"));
    let (destination, sources) = paths.split_last()?;
    Some((flags, sources.to_vec(), destination))
}

fn dockerfile() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile exists");
    instructions(&text)
}

/// The instructions of the stage named `name` (`FROM ... AS name` up to the next
/// FROM).
fn stage(all: &[String], name: &str) -> Vec<String> {
    let start = all
        .iter()
        .position(|i| i.starts_with("FROM ") && i.ends_with(&format!(" AS {name}")))
        .unwrap_or_else(|| panic!("no stage {name}"));
    let len = all[start + 1..]
        .iter()
        .position(|i| i.starts_with("FROM "))
        .map_or(all.len() - start, |n| n + 1);
    all[start..start + len].to_vec()
}

/// The instructions that make the image's configuration, in order.
fn config(stage: &[String]) -> Vec<&str> {
    stage
        .iter()
        .map(String::as_str)
        .filter(|i| {
            ["USER ", "ENTRYPOINT ", "CMD "]
                .iter()
                .any(|p| i.starts_with(p))
        })
        .collect()
}

#[test]
fn every_copied_path_exists_and_is_in_the_build_context() {
    let ignored: Vec<String> = std::fs::read_to_string(repo().join(".dockerignore"))
        .expect(".dockerignore exists")
        .lines()
        .map(|l| l.trim().trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let all = dockerfile();
    // The prebuilt target's context is a folder holding the binary, not the repository.
    let prebuilt = stage(&all, "prebuilt");
    let mut checked = 0;
    for instruction in all.iter().filter(|i| !prebuilt.contains(i)) {
        let Some((flags, sources, _)) = copy_parts(instruction) else {
            continue;
        };
        if flags.iter().any(|f| f.starts_with("--from=")) {
            continue;
        }
        for source in sources {
            let source = source.trim_end_matches('/');
            assert!(
                repo().join(source).exists(),
                "the Dockerfile copies {source}, which is not in the repository"
            );
            let first = source.split('/').next().unwrap();
            assert!(
                !ignored.iter().any(|i| i == first),
                "the Dockerfile copies {source}, which .dockerignore excludes"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "found only {checked} copied paths");
}

#[test]
fn the_image_is_scratch_with_the_binary_alone() {
    let all = dockerfile();
    let last_from = all
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .expect("a FROM");
    let last = &all[last_from..];
    assert_eq!(last[0], "FROM scratch", "the final stage");
    assert!(
        last.iter().any(|i| i == r#"ENTRYPOINT ["/migrator"]"#),
        "{last:#?}"
    );
    assert!(last.iter().any(|i| i == "USER 65534:65534"), "{last:#?}");
    let copies: Vec<_> = last.iter().filter_map(|i| copy_parts(i)).collect();
    assert_eq!(
        copies,
        [(vec!["--from=builder"], vec!["/out/migrator"], "/migrator")],
        "the binary is all the image holds (the RDS roots are compiled in)"
    );
    assert!(
        all.iter()
            .any(|i| i.contains("MIGRATOR_EMBED_DIR=") && i.contains("MIGRATIONS_DIR")),
        "MIGRATIONS_DIR is handed to build.rs as MIGRATOR_EMBED_DIR"
    );
}

#[test]
fn the_prebuilt_target_is_the_same_image_from_a_binary_in_the_context() {
    let all = dockerfile();
    let prebuilt = stage(&all, "prebuilt");
    assert_eq!(prebuilt[0], "FROM scratch AS prebuilt");
    let copies: Vec<_> = prebuilt.iter().filter_map(|i| copy_parts(i)).collect();
    assert_eq!(copies, [(vec![], vec!["migrator"], "/migrator")]);
    let last_from = all.iter().rposition(|i| i.starts_with("FROM ")).unwrap();
    assert_eq!(config(&prebuilt), config(&all[last_from..]));
    // Before any stage that starts from a registry image, so that building it
    // never needs one.
    let first_registry = all
        .iter()
        .position(|i| i.starts_with("FROM ") && !i.starts_with("FROM scratch"))
        .expect("the builder stage");
    let prebuilt_at = all.iter().position(|i| *i == prebuilt[0]).unwrap();
    assert!(prebuilt_at < first_registry);
}

#[test]
fn the_build_downloads_nothing() {
    // The RDS roots are compiled in (src/rds-roots.pem, scripts/rds-roots); the
    // only things fetched are the Rust image and the crates of Cargo.lock.
    for instruction in dockerfile() {
        let lower = instruction.to_lowercase();
        for word in ["curl ", "wget ", "http://", "https://", "git clone"] {
            assert!(!lower.contains(word), "fetches something: {instruction}");
        }
        assert!(
            !instruction.starts_with("ADD "),
            "ADD can fetch: {instruction}"
        );
    }
}

#[test]
fn the_builder_uses_the_declared_rust_version() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("Cargo.toml declares rust-version")
        .trim_matches('"');
    let image = dockerfile()
        .into_iter()
        .find_map(|i| i.strip_prefix("ARG RUST_IMAGE=").map(str::to_string))
        .expect("ARG RUST_IMAGE");
    assert!(
        image.starts_with(&format!("rust:{version}.")) || image == format!("rust:{version}"),
        "builder image {image} does not match rust-version {version}"
    );
}

#[test]
fn instructions_join_continuations_and_drop_comments() {
    let text = "# syntax=x\nFROM a AS b\nRUN one \\\n    # inner comment\n    two\n\nCOPY --from=b /x /y\n";
    assert_eq!(
        instructions(text),
        ["FROM a AS b", "RUN one  two", "COPY --from=b /x /y"]
    );
    assert_eq!(
        copy_parts("COPY --from=b /x /y"),
        Some((vec!["--from=b"], vec!["/x"], "/y"))
    );
}
