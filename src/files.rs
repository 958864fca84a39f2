//! Where migration files come from: a folder on disk ([`read_dir`]) or the
//! files embedded into the binary at build time ([`embedded`]).
//!
//! The thin IO edge of [`migrator_core::source`]: it only turns files into
//! [`Entry`] values. It must never interpret file names or contents (that is
//! `source::parse`'s job), never panic on a read error (errors become
//! [`Problem`]s), and never write anything but `new`'s files, which it never
//! overwrites.

use migrator_core::source::{Entry, Problem, SourceError};

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

// Defines `static EMBEDDED: &[(&str, &[u8])]`; written by build.rs, empty
// unless MIGRATOR_EMBED_DIR was set at build time.
include!(concat!(env!("OUT_DIR"), "/embedded_migrations.rs"));

/// Reads a migrations folder: every regular file, in subfolders too (diesel's
/// one folder per migration; refinery walks its folder recursively), as
/// Entries with paths relative to `dir` (`/`-separated), sorted by path.
/// Which nested files count is `source::parse`'s decision.
///
/// Symbolic links are followed (a Kubernetes ConfigMap mount is made of
/// them). Hidden names (starting with `.`) are skipped, files and folders
/// alike; folders deeper than [`MAX_DEPTH`] are not read (a link loop ends
/// there). Read errors become [`SourceError`] problems naming the path; every
/// error is collected.
pub fn read_dir(dir: &Path) -> Result<Vec<Entry>, SourceError> {
    let top = fs::read_dir(dir).map_err(|err| {
        SourceError::from(Problem {
            path: dir.display().to_string(),
            line: None,
            message: format!("cannot read the migrations folder: {err}"),
            hint: "check that the folder exists and is readable".to_string(),
        })
    })?;
    let mut files = Vec::new();
    let mut problems = Vec::new();
    walk(top, "", 0, &mut files, &mut problems);
    let mut entries = Vec::with_capacity(files.len());
    for result in read_all(&files) {
        match result {
            Ok(entry) => entries.push(entry),
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        problems.sort();
        return Err(SourceError { problems });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// How many folders deep [`read_dir`] goes.
pub const MAX_DEPTH: usize = 8;

/// Collects the files under `dir` (listed as `prefix` + name), recursively.
fn walk(
    dir: fs::ReadDir,
    prefix: &str,
    depth: usize,
    files: &mut Vec<(String, PathBuf)>,
    problems: &mut Vec<Problem>,
) {
    for (name, path, file_type) in list(dir, prefix, problems) {
        match kind(&path, file_type) {
            Ok(Kind::File) => files.push((name, path)),
            Ok(Kind::Dir) if depth < MAX_DEPTH => match fs::read_dir(&path) {
                Ok(sub) => walk(sub, &format!("{name}/"), depth + 1, files, problems),
                Err(err) => problems.push(read_problem(&prefix_dir(&name), &err)),
            },
            Ok(_) => {}
            Err(err) => problems.push(read_problem(&name, &err)),
        }
    }
}

/// Reads the files on every core: a folder of thousands of small files is
/// dominated by the kernel's open/read/close, and those run in parallel.
fn read_all(files: &[(String, PathBuf)]) -> Vec<Result<Entry, Problem>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let read_part = |part: &[(String, PathBuf)]| {
        let mut scratch = Vec::new();
        part.iter()
            .map(|(name, path)| read_file(name, path, &mut scratch))
            .collect::<Vec<_>>()
    };
    if threads < 2 || files.len() < 256 {
        return read_part(files);
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || read_part(part)))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("file reader thread"))
            .collect()
    })
}

/// The migrations embedded at build time (empty when none were).
pub fn embedded() -> Vec<Entry> {
    EMBEDDED
        .iter()
        .map(|(path, contents)| Entry {
            path: (*path).to_string(),
            contents: contents.to_vec(),
        })
        .collect()
}

/// The non-hidden children of a folder, as (`prefix` + name, full path).
/// The file type comes from the directory listing where the filesystem gives it
/// (no `stat` per file); links and unknown types are resolved by [`kind`].
fn list(
    dir: fs::ReadDir,
    prefix: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(String, PathBuf, Option<fs::FileType>)> {
    let mut children = Vec::new();
    for child in dir {
        let child = match child {
            Ok(child) => child,
            Err(err) => {
                problems.push(read_problem(
                    &prefix_dir(prefix.trim_end_matches('/')),
                    &err,
                ));
                continue;
            }
        };
        match child.file_name().into_string() {
            Ok(name) if name.starts_with('.') => {}
            Ok(name) => children.push((
                format!("{prefix}{name}"),
                child.path(),
                child.file_type().ok(),
            )),
            Err(raw) => problems.push(Problem {
                path: format!("{prefix}{}", raw.to_string_lossy()),
                line: None,
                message: "the file name is not valid UTF-8".to_string(),
                hint: "rename it".to_string(),
            }),
        }
    }
    children
}

enum Kind {
    File,
    Dir,
    Other,
}

/// What a listed path is, following symbolic links (a ConfigMap mount is links).
fn kind(path: &Path, listed: Option<fs::FileType>) -> std::io::Result<Kind> {
    let of = |t: fs::FileType| {
        if t.is_file() {
            Kind::File
        } else if t.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        }
    };
    match listed {
        Some(t) if t.is_file() || t.is_dir() => Ok(of(t)),
        _ => fs::metadata(path).map(|m| of(m.file_type())),
    }
}

fn read_file(name: &str, path: &Path, scratch: &mut Vec<u8>) -> Result<Entry, Problem> {
    read_small(path, scratch)
        .map(|contents| Entry {
            path: name.to_string(),
            contents,
        })
        .map_err(|err| read_problem(name, &err))
}

/// Reads a whole file through `scratch` (kept between calls), in one `read` for
/// the usual small migration: a short read of a regular file is its end, so no
/// `stat` for the size and no second `read` to see end-of-file. The result is
/// allocated at its exact size.
fn read_small(path: &Path, scratch: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    const FIRST: usize = 64 * 1024;
    if scratch.len() < FIRST {
        scratch.resize(FIRST, 0);
    }
    let mut file = fs::File::open(path)?;
    let mut filled = 0;
    loop {
        match file.read(&mut scratch[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled < scratch.len() {
                    break;
                }
                let grown = scratch.len() * 2;
                scratch.resize(grown, 0);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(scratch[..filled].to_vec())
}

/// `name/`, or `.` for the migrations folder itself.
fn prefix_dir(name: &str) -> String {
    if name.is_empty() {
        ".".to_string()
    } else {
        format!("{name}/")
    }
}

fn read_problem(path: &str, err: &std::io::Error) -> Problem {
    Problem {
        path: path.to_string(),
        line: None,
        message: format!("cannot read: {err}"),
        hint: "check that it exists and is readable".to_string(),
    }
}

/// Writes the files of a new migration into `dir` (created when missing), at
/// a version none of `existing` has.
pub fn write_new(
    dir: &Path,
    format: migrator_core::migration::Format,
    name: &str,
    existing: &[migrator_core::migration::Migration],
    sequential: bool,
) -> migrator_core::error::Result<Vec<String>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let version = migrator_core::scaffold::version(existing, now, sequential);
    let planned = migrator_core::scaffold::files(format, name, &version)?;
    let io = |path: &Path, e: std::io::Error| {
        migrator_core::error::Error::usage(format!("cannot write {}: {e}", path.display()))
    };
    let mut written = Vec::new();
    for (rel, contents) in planned {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, contents.as_bytes()))
            .map_err(|e| io(&path, e))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use migrator_core::migration::Format;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// A temporary folder, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(label: &str) -> Self {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let path = std::env::temp_dir().join(format!(
                "migrator-source-{label}-{}-{nanos}",
                std::process::id()
            ));
            fs::create_dir(&path).expect("create temp dir");
            TempDir(path)
        }

        fn write(&self, relative: &str, contents: &[u8]) {
            let path = self.0.join(relative);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).expect("create folder");
            }
            fs::write(path, contents).expect("write file");
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn read_dir_reads_large_files_whole_and_many_files_in_parallel() {
        let dir = TempDir::new("large");
        let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        dir.write("1_big.up.sql", &big);
        for v in 2..400 {
            dir.write(&format!("{v}_m.up.sql"), format!("SELECT {v};").as_bytes());
        }
        let entries = read_dir(&dir.0).expect("read_dir");
        assert_eq!(entries.len(), 399);
        let first = entries.iter().find(|e| e.path == "1_big.up.sql").unwrap();
        assert_eq!(first.contents, big);
        let e = entries.iter().find(|e| e.path == "399_m.up.sql").unwrap();
        assert_eq!(e.contents, b"SELECT 399;");
        assert!(e.contents.capacity() < 1024, "exact-size allocations");
    }

    #[test]
    fn read_dir_reads_subfolders_at_every_depth() {
        let dir = TempDir::new("read");
        dir.write(
            "00000000000000_diesel_initial_setup/up.sql",
            b"SELECT 0;\r\n",
        );
        dir.write("00000000000000_diesel_initial_setup/down.sql", b"SELECT 0;");
        dir.write("2021-01-01-000000_users/up.sql", b"CREATE TABLE users ();");
        dir.write(
            "2021-01-01-000000_users/metadata.toml",
            b"run_in_transaction = false\n",
        );
        dir.write("2021-01-01-000000_users/deeper/ignored.sql", b"x");
        dir.write("README.md", b"notes");
        dir.write(".gitkeep", b"");
        dir.write(".git/config", b"x");
        dir.write("2021-01-01-000000_users/.swp", b"x");

        let entries = read_dir(&dir.0).expect("read_dir");
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "00000000000000_diesel_initial_setup/down.sql",
                "00000000000000_diesel_initial_setup/up.sql",
                "2021-01-01-000000_users/deeper/ignored.sql",
                "2021-01-01-000000_users/metadata.toml",
                "2021-01-01-000000_users/up.sql",
                "README.md",
            ]
        );
        assert_eq!(entries[1].contents, b"SELECT 0;\r\n");

        let parsed = migrator_core::source::parse(&entries).expect("parse");
        assert_eq!(parsed.format, Some(Format::Diesel));
        assert_eq!(parsed.migrations.len(), 2);
        assert_eq!(parsed.migrations[0].up.sql, "SELECT 0;\n");
        assert_eq!(parsed.migrations[1].version, 20_210_101_000_000);
        assert!(!parsed.migrations[1].transactional);
        assert_eq!(
            parsed.ignored,
            ["2021-01-01-000000_users/deeper/ignored.sql", "README.md"]
        );
    }

    #[test]
    fn read_dir_of_an_empty_folder_is_empty() {
        let dir = TempDir::new("empty");
        assert_eq!(read_dir(&dir.0), Ok(Vec::new()));
    }

    #[test]
    fn read_dir_of_a_missing_folder_names_it() {
        let dir = TempDir::new("missing");
        let missing = dir.0.join("nope");
        let err = read_dir(&missing).expect_err("missing folder");
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].path, missing.display().to_string());
        assert!(
            err.to_string()
                .contains("cannot read the migrations folder")
        );
    }

    #[cfg(unix)]
    #[test]
    fn read_dir_follows_symlinks_and_reports_broken_ones() {
        let dir = TempDir::new("links");
        dir.write("..data/1_a.up.sql", b"SELECT 1;");
        std::os::unix::fs::symlink("..data/1_a.up.sql", dir.0.join("1_a.up.sql")).expect("symlink");
        let entries = read_dir(&dir.0).expect("read_dir");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].path, "1_a.up.sql");
        assert_eq!(entries[0].contents, b"SELECT 1;");

        std::os::unix::fs::symlink("..data/gone.sql", dir.0.join("2_b.up.sql")).expect("symlink");
        let err = read_dir(&dir.0).expect_err("broken link");
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].path, "2_b.up.sql");
    }

    #[test]
    fn embedded_matches_the_build_time_folder() {
        match option_env!("MIGRATOR_EMBED_DIR") {
            None | Some("") => assert!(embedded().is_empty()),
            Some(dir) => {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
                assert_eq!(embedded(), read_dir(&dir).expect("embedded folder"));
            }
        }
    }
}
