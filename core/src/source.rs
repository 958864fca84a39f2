//! Turns the files of a migrations folder into [`Migration`]s.
//!
//! The input is a list of [`Entry`] values (a path relative to the migrations
//! folder and the raw bytes); the output is the migrations sorted by version,
//! the detected [`Format`], and the paths that matched no format. Every
//! problem found is collected, so one run reports all of them.
//!
//! This module is pure. It must never touch the filesystem, read the
//! environment, talk to a database or print anything: reading files is the
//! job of `source::read_dir` / `source::embedded`, reporting is the caller's.
//!
//! Formats, told apart by file name and, for `{version}_{name}.sql`, by
//! content:
//!
//! * golang-migrate / sqlx: `{v}_{name}.up.sql` + optional `{v}_{name}.down.sql`,
//!   or up-only `{v}_{name}.sql` (a `.sql` file with no dbmate/goose markers).
//! * refinery: `V{v}__{name}.sql` (`U{v}__` and `.rs` migrations are refused).
//! * diesel: `{v}_{name}/up.sql`, optional `down.sql` and `metadata.toml`.
//! * dbmate: `{v}_{name}.sql` with `-- migrate:up` / `-- migrate:down` lines.
//! * goose: `{v}_{name}.sql` with `-- +goose Up` / `-- +goose Down` lines.
//!
//! A migration runs outside a transaction (`transactional = false`) when its
//! up SQL starts with `-- no-transaction` (first non-blank line) or has a line
//! `-- refinery:noTransaction` or `-- morph:nontransactional`; when a goose
//! file has `-- +goose NO TRANSACTION`; when a dbmate up marker carries
//! `transaction:false`; or when a diesel `metadata.toml` says
//! `run_in_transaction = false`. [`Migration`] has a single flag for both
//! halves, so a dbmate `-- migrate:down transaction:false` on its own does not
//! make the migration non-transactional: only the up marker decides.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::migration::{Format, MAX_VERSION, Migration, Order, Script, Version};

/// One file of a migrations folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the migrations folder, `/`-separated:
    /// `1_init.up.sql`, `2021-01-01-000000_init/up.sql`.
    pub path: String,
    pub contents: Vec<u8>,
}

/// What a migrations folder holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The one format the folder uses; `None` when it holds no migration.
    pub format: Option<Format>,
    /// Sorted by version, ascending; versions are unique.
    pub migrations: Vec<Migration>,
    /// Paths that match no format (worth a warning, not an error), sorted.
    pub ignored: Vec<String>,
}

/// One thing wrong with the migration files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The file (or `folder/`) concerned, relative to the migrations folder.
    pub path: String,
    /// 1-based line in that file, when the problem is on one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl Problem {
    fn new(path: &str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Problem {
            path: path.to_string(),
            line: None,
            message: message.into(),
            hint: hint.into(),
        }
    }

    fn at(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.hint.is_empty() {
            write!(f, " ({})", self.hint)?;
        }
        Ok(())
    }
}

/// Everything wrong with a set of migration files; displayed one problem a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.problems))]
pub struct SourceError {
    pub problems: Vec<Problem>,
}

impl From<Problem> for SourceError {
    fn from(problem: Problem) -> Self {
        SourceError {
            problems: vec![problem],
        }
    }
}

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Strips a leading UTF-8 byte-order mark and turns `\r\n` into `\n`.
pub fn normalize(bytes: &str) -> String {
    bytes
        .strip_prefix('\u{feff}')
        .unwrap_or(bytes)
        .replace("\r\n", "\n")
}

/// Lowercase hex SHA-256 of the (already normalised) up SQL.
pub fn checksum(normalized_up_sql: &str) -> String {
    let digest = Sha256::digest(normalized_up_sql.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A version written as ASCII digits (leading zeros allowed). `None` when `s`
/// is empty, holds anything but digits, or is above [`MAX_VERSION`].
pub fn parse_version(s: &str) -> Option<Version> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|v| *v <= MAX_VERSION)
}

/// Turns the files of a migrations folder into migrations sorted by version,
/// or reports every problem found.
pub fn parse(entries: &[Entry]) -> Result<Parsed, SourceError> {
    let mut problems = Vec::new();
    let mut ignored = Vec::new();
    let mut files = Vec::new();

    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));

    for entry in sorted {
        match classify(&entry.path) {
            Class::Skip => {}
            Class::Ignore => ignored.push(entry.path.clone()),
            Class::Bad(problem) => problems.push(problem),
            Class::Named(key) => {
                let text = decode(&entry.path, &entry.contents, &mut problems);
                if let Some(file) = resolve(&entry.path, key, text, &mut problems) {
                    files.push(file);
                }
            }
        }
    }

    let format = detect_format(&files, &mut problems);

    let mut units = Vec::new();
    build_golang_migrate(&files, &mut units, &mut problems);
    build_single_files(&files, &mut units, &mut problems);
    build_diesel(&files, &mut units, &mut problems);
    check_unique_versions(&mut units, &mut problems);
    for m in units.iter().filter_map(|u| u.migration.as_ref()) {
        for script in std::iter::once(&m.up).chain(&m.down) {
            problems.extend(misplaced_marker(script));
        }
    }

    if !problems.is_empty() {
        problems.sort();
        problems.dedup();
        return Err(SourceError { problems });
    }
    let mut migrations: Vec<Migration> = units.into_iter().filter_map(|u| u.migration).collect();
    let order = Order::of(&migrations);
    migrations.sort_by(|a, b| order.cmp(a.version, b.version));
    Ok(Parsed {
        format: if migrations.is_empty() { None } else { format },
        migrations,
        ignored,
    })
}

// ---------------------------------------------------------------------------
// File names

/// What a path says about its file.
enum Class<'a> {
    /// Hidden: not reported at all.
    Skip,
    /// Matches no format.
    Ignore,
    /// Looks like a migration but its name is wrong.
    Bad(Problem),
    Named(Key<'a>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key<'a> {
    /// A top-level file named with a version.
    Top {
        version: Version,
        name: &'a str,
        kind: NameKind,
    },
    /// A file of a diesel migration folder.
    Diesel { folder: &'a str, file: DieselFile },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameKind {
    /// `{v}_{name}.up.sql`
    Up,
    /// `{v}_{name}.down.sql`
    Down,
    /// `{v}_{name}.sql`: up-only, dbmate or goose, decided by content.
    Sql,
    /// `V{v}__{name}.sql`
    Refinery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum DieselFile {
    Up,
    Down,
    Metadata,
}

fn classify(path: &str) -> Class<'_> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.iter().any(|part| part.starts_with('.')) {
        return Class::Skip;
    }
    match parts.as_slice() {
        [file] => classify_top(path, file),
        [folder, file @ ("up.sql" | "down.sql" | "metadata.toml")] if !folder.is_empty() => {
            let file = match *file {
                "up.sql" => DieselFile::Up,
                "down.sql" => DieselFile::Down,
                _ => DieselFile::Metadata,
            };
            Class::Named(Key::Diesel { folder, file })
        }
        [.., file] => classify_nested(path, file),
        [] => Class::Ignore,
    }
}

/// A file in a subfolder that is not part of a diesel folder. refinery walks its
/// folder recursively, so its files count wherever they are; the other tools
/// read the top level only, so a migration-like file below it is an error
/// rather than a silent no-op.
fn classify_nested<'a>(path: &str, file: &'a str) -> Class<'a> {
    match classify_top(path, file) {
        refinery @ Class::Named(Key::Top {
            kind: NameKind::Refinery,
            ..
        }) => refinery,
        Class::Named(_) => Class::Bad(Problem::new(
            path,
            "a migration file in a subfolder: only refinery reads subfolders (diesel: one folder \
             per migration holding up.sql), so this file would never run",
            "move it to the top level of the migrations folder",
        )),
        Class::Ignore if matches!(file, "up.sql" | "down.sql") => Class::Bad(Problem::new(
            path,
            "a diesel migration folder inside another folder: diesel reads only the top level",
            "move the folder to the top level of the migrations folder",
        )),
        other => other,
    }
}

fn classify_top<'a>(path: &str, file: &'a str) -> Class<'a> {
    if let Some(stem) = file.strip_suffix(".up.sql") {
        return versioned(path, stem, NameKind::Up);
    }
    if let Some(stem) = file.strip_suffix(".down.sql") {
        return versioned(path, stem, NameKind::Down);
    }
    let Some((stem, ext)) = file.rsplit_once('.') else {
        return Class::Ignore;
    };
    let refinery = stem
        .strip_prefix('V')
        .map(|rest| (false, rest))
        .or_else(|| stem.strip_prefix('U').map(|rest| (true, rest)))
        .filter(|(_, rest)| rest.starts_with(|c: char| c.is_ascii_digit() || c == '_'));
    if let Some((unversioned, rest)) = refinery {
        if unversioned && (ext == "sql" || ext == "rs") {
            return Class::Bad(Problem::new(
                path,
                "refinery unversioned migrations (U{version}__{name}) are not supported",
                format!(
                    "rename it to V{rest}.sql to make it a versioned migration, or move it out of the folder"
                ),
            ));
        }
        if ext == "rs" {
            return Class::Bad(Problem::new(
                path,
                "refinery Rust migrations (.rs) are not supported",
                format!("rewrite it as SQL in V{rest}.sql, or move it out of the folder"),
            ));
        }
        if ext == "sql" {
            return versioned(path, rest, NameKind::Refinery);
        }
        return Class::Ignore;
    }
    if ext == "sql" && stem.starts_with(|c: char| c.is_ascii_digit() || c == '_') {
        return versioned(path, stem, NameKind::Sql);
    }
    Class::Ignore
}

/// A valid name for a file whose stem lacks the separator: `001-init` →
/// `001_init` in the example's form; `{name}` left for the user when the stem
/// has no version and name to split.
fn suggested(stem: &str, example: &str) -> String {
    let digits = stem.len() - stem.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let name: String = stem[digits..]
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if digits == 0 || name.is_empty() {
        return example.replace("{version}", stem);
    }
    example
        .replace("{version}", &stem[..digits])
        .replace("{name}", &name.to_ascii_lowercase())
}

/// Splits `{version}{sep}{name}` and checks the version.
fn versioned<'a>(path: &str, stem: &'a str, kind: NameKind) -> Class<'a> {
    let (sep, example) = match kind {
        NameKind::Up => ("_", "{version}_{name}.up.sql"),
        NameKind::Down => ("_", "{version}_{name}.down.sql"),
        NameKind::Sql => ("_", "{version}_{name}.sql"),
        NameKind::Refinery => ("__", "V{version}__{name}.sql"),
    };
    let Some((text, name)) = stem.split_once(sep) else {
        let message = format!("the file name does not follow {example}");
        let hint = match kind {
            NameKind::Refinery if stem.contains('_') => format!(
                "refinery needs two underscores after the version: rename it to V{}.sql",
                stem.replacen('_', "__", 1)
            ),
            _ => format!("rename it to {}", suggested(stem, example)),
        };
        return Class::Bad(Problem::new(path, message, hint));
    };
    match parse_version(text) {
        Some(version) => Class::Named(Key::Top {
            version,
            name,
            kind,
        }),
        None => Class::Bad(version_problem(path, text, example)),
    }
}

fn version_problem(path: &str, text: &str, example: &str) -> Problem {
    if text.is_empty() {
        Problem::new(
            path,
            "the version is empty",
            format!("name it {example}, the version being a number"),
        )
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        Problem::new(
            path,
            format!(
                "version {text} is too large (the largest is {MAX_VERSION}, where PostgreSQL's \
                 bigint stops)"
            ),
            "use a smaller version number",
        )
    } else {
        Problem::new(
            path,
            format!("version `{text}` is not a number"),
            format!("name it {example}, the version being digits only"),
        )
    }
}

// ---------------------------------------------------------------------------
// Contents

/// Decodes and normalises a file; reports (and returns `None` for) invalid UTF-8.
fn decode(path: &str, bytes: &[u8], problems: &mut Vec<Problem>) -> Option<String> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(normalize(text)),
        Err(err) => {
            let offset = err.valid_up_to();
            let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
            let utf16 = bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]);
            let hint = if utf16 {
                "save the file as UTF-8 (it looks like UTF-16)"
            } else {
                "save the file as UTF-8"
            };
            problems.push(
                Problem::new(
                    path,
                    format!(
                        "the file is not valid UTF-8 (byte 0x{:02x} at byte offset {offset})",
                        bytes[offset]
                    ),
                    hint,
                )
                .at(line),
            );
            None
        }
    }
}

/// A file whose name matched a format.
struct File<'a> {
    path: &'a str,
    key: Key<'a>,
    kind: Kind,
    /// Normalised text; `None` when it was not UTF-8 (already reported).
    text: Option<String>,
}

/// What a file turned out to be once its content was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    GolangUp,
    GolangDown,
    /// `{v}_{name}.sql` that is not UTF-8: an up file of unknown format.
    Unreadable,
    Refinery,
    Dbmate,
    Goose,
    Diesel,
}

impl Kind {
    fn format(self) -> Option<Format> {
        match self {
            Kind::GolangUp | Kind::GolangDown => Some(Format::GolangMigrate),
            Kind::Unreadable => None,
            Kind::Refinery => Some(Format::Refinery),
            Kind::Dbmate => Some(Format::Dbmate),
            Kind::Goose => Some(Format::Goose),
            Kind::Diesel => Some(Format::Diesel),
        }
    }
}

fn resolve<'a>(
    path: &'a str,
    key: Key<'a>,
    text: Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<File<'a>> {
    let kind = match key {
        Key::Diesel { .. } => Kind::Diesel,
        Key::Top { kind, .. } => match kind {
            NameKind::Up => Kind::GolangUp,
            NameKind::Down => Kind::GolangDown,
            NameKind::Refinery => Kind::Refinery,
            NameKind::Sql => match &text {
                None => Kind::Unreadable,
                Some(text) => {
                    let dbmate = text.lines().any(|l| dbmate_marker(l).is_some());
                    let goose = text.lines().any(|l| goose_annotation(l).is_some());
                    match (dbmate, goose) {
                        (true, true) => {
                            problems.push(Problem::new(
                                path,
                                "the file has both dbmate (`-- migrate:`) and goose (`-- +goose`) markers",
                                "keep the markers of one tool only",
                            ));
                            return None;
                        }
                        (true, false) => Kind::Dbmate,
                        (false, true) => Kind::Goose,
                        (false, false) => Kind::GolangUp,
                    }
                }
            },
        },
    };
    Some(File {
        path,
        key,
        kind,
        text,
    })
}

fn detect_format(files: &[File<'_>], problems: &mut Vec<Problem>) -> Option<Format> {
    let mut seen: Vec<(Format, &str)> = Vec::new();
    for file in files {
        if let Some(format) = file.kind.format()
            && !seen.iter().any(|(f, _)| *f == format)
        {
            seen.push((format, file.path));
        }
    }
    match seen.as_slice() {
        [] => None,
        [(format, _)] => Some(*format),
        [(_, first), ..] => {
            let list: Vec<String> = seen
                .iter()
                .map(|(format, path)| format!("{path} ({format})"))
                .collect();
            problems.push(Problem::new(
                first,
                format!("the folder mixes migration formats: {}", list.join(", ")),
                "use one format per folder: convert the other files or move them elsewhere",
            ));
            None
        }
    }
}

// ---------------------------------------------------------------------------
// Migrations

/// A would-be migration, before versions are checked for uniqueness.
struct Unit<'a> {
    version: Version,
    /// The file (or `folder/`) that names it in messages.
    path: &'a str,
    /// `None` when a file could not be read or a section is broken
    /// (already reported).
    migration: Option<Migration>,
}

fn whole(path: &str, sql: &str) -> Script {
    Script {
        path: path.to_string(),
        sql: sql.to_string(),
        first_line: 1,
        goose_annotations: false,
    }
}

fn migration(
    format: Format,
    version: Version,
    name: &str,
    up: Script,
    down: Option<Script>,
    no_tx: bool,
) -> Migration {
    let transactional = !no_tx && !has_no_transaction_marker(&up.sql);
    Migration {
        version,
        name: name.to_string(),
        checksum: checksum(&up.sql),
        up,
        down,
        transactional,
        format,
    }
}

fn top_key<'a>(file: &File<'a>) -> Option<(Version, &'a str)> {
    match file.key {
        Key::Top { version, name, .. } => Some((version, name)),
        Key::Diesel { .. } => None,
    }
}

/// golang-migrate / sqlx: pairs `.up.sql` (or `.sql`) and `.down.sql` files by version.
fn build_golang_migrate<'a>(
    files: &[File<'a>],
    units: &mut Vec<Unit<'a>>,
    problems: &mut Vec<Problem>,
) {
    let mut by_version: BTreeMap<Version, (Vec<&File<'a>>, Vec<&File<'a>>)> = BTreeMap::new();
    for file in files {
        let Some((version, _)) = top_key(file) else {
            continue;
        };
        match file.kind {
            Kind::GolangUp | Kind::Unreadable => {
                by_version.entry(version).or_default().0.push(file)
            }
            Kind::GolangDown => by_version.entry(version).or_default().1.push(file),
            _ => {}
        }
    }
    for (version, (ups, downs)) in by_version {
        let paths = |list: &[&File<'_>]| list.iter().map(|f| f.path).collect::<Vec<_>>().join(", ");
        let Some(&up) = ups.first() else {
            for down in &downs {
                let up_path = down.path.replace(".down.sql", ".up.sql");
                problems.push(Problem::new(
                    down.path,
                    "down migration without its up migration",
                    format!("add {up_path} or delete the down file"),
                ));
            }
            continue;
        };
        let mut ok = true;
        if ups.len() > 1 {
            ok = false;
            let same_name = ups
                .iter()
                .all(|f| top_key(f).map(|k| k.1) == top_key(up).map(|k| k.1));
            let full = ups.iter().find(|f| f.path.ends_with(".up.sql"));
            let only = ups.iter().find(|f| !f.path.ends_with(".up.sql"));
            let (message, hint) = match (full, only) {
                (Some(full), Some(only)) if same_name && ups.len() == 2 => (
                    format!("two up files for version {version}: {}", paths(&ups)),
                    format!(
                        "delete one of them: {} is the up-only form of {}",
                        only.path, full.path
                    ),
                ),
                _ => (
                    format!(
                        "version {version} is used by more than one migration: {}",
                        paths(&ups)
                    ),
                    "rename one of them so that every version is unique".to_string(),
                ),
            };
            problems.push(Problem::new(up.path, message, hint));
        }
        if downs.len() > 1 {
            ok = false;
            problems.push(Problem::new(
                downs[0].path,
                format!(
                    "version {version} has more than one down file: {}",
                    paths(&downs)
                ),
                "delete or rename all but one",
            ));
        }
        let up_name = top_key(up).map(|k| k.1);
        if ups.len() == 1
            && let Some(down) = downs.first()
            && top_key(down).map(|k| k.1) != up_name
        {
            ok = false;
            let stem = up
                .path
                .strip_suffix(".up.sql")
                .or_else(|| up.path.strip_suffix(".sql"))
                .unwrap_or(up.path);
            problems.push(Problem::new(
                down.path,
                format!(
                    "the down file's name does not match its up file {}",
                    up.path
                ),
                format!("rename it to {stem}.down.sql"),
            ));
        }
        if !ok {
            continue;
        }
        let built = (|| {
            let (_, name) = top_key(up)?;
            let up_script = whole(up.path, up.text.as_deref()?);
            let down_script = match downs.first() {
                Some(down) => Some(whole(down.path, down.text.as_deref()?)),
                None => None,
            };
            Some(migration(
                Format::GolangMigrate,
                version,
                name,
                up_script,
                down_script,
                false,
            ))
        })();
        units.push(Unit {
            version,
            path: up.path,
            migration: built,
        });
    }
}

/// refinery, dbmate and goose: one file per migration.
fn build_single_files<'a>(
    files: &[File<'a>],
    units: &mut Vec<Unit<'a>>,
    problems: &mut Vec<Problem>,
) {
    for file in files {
        let Some((version, name)) = top_key(file) else {
            continue;
        };
        let built = match (file.kind, file.text.as_deref()) {
            (Kind::Refinery | Kind::Dbmate | Kind::Goose, None) => None,
            (Kind::Refinery, Some(text)) => Some(migration(
                Format::Refinery,
                version,
                name,
                whole(file.path, text),
                None,
                false,
            )),
            (Kind::Dbmate, Some(text)) => build_dbmate(file.path, version, name, text, problems),
            (Kind::Goose, Some(text)) => build_goose(file.path, version, name, text, problems),
            _ => continue,
        };
        units.push(Unit {
            version,
            path: file.path,
            migration: built,
        });
    }
}

fn build_dbmate(
    path: &str,
    version: Version,
    name: &str,
    text: &str,
    problems: &mut Vec<Problem>,
) -> Option<Migration> {
    let markers = Markers {
        up: "-- migrate:up",
        down: "-- migrate:down",
        find: dbmate_marker,
    };
    let (up, down) = split_sections(path, text, &markers, problems)?;
    let no_tx = up
        .options
        .split_whitespace()
        .any(|o| o == "transaction:false");
    let to_script = |s: Section| Script {
        path: path.to_string(),
        sql: s.sql,
        first_line: s.first_line,
        goose_annotations: false,
    };
    Some(migration(
        Format::Dbmate,
        version,
        name,
        to_script(up),
        down.map(to_script),
        no_tx,
    ))
}

fn build_goose(
    path: &str,
    version: Version,
    name: &str,
    text: &str,
    problems: &mut Vec<Problem>,
) -> Option<Migration> {
    let markers = Markers {
        up: "-- +goose Up",
        down: "-- +goose Down",
        find: goose_marker,
    };
    let (up, down) = split_sections(path, text, &markers, problems)?;
    let no_tx = text
        .lines()
        .any(|l| goose_annotation(l).as_deref() == Some("no transaction"));
    let to_script = |s: Section| Script {
        path: path.to_string(),
        sql: s.sql,
        first_line: s.first_line,
        goose_annotations: true,
    };
    Some(migration(
        Format::Goose,
        version,
        name,
        to_script(up),
        down.map(to_script),
        no_tx,
    ))
}

/// diesel: one folder per migration.
fn build_diesel<'a>(files: &[File<'a>], units: &mut Vec<Unit<'a>>, problems: &mut Vec<Problem>) {
    let mut folders: BTreeMap<&'a str, BTreeMap<DieselFile, &File<'a>>> = BTreeMap::new();
    for file in files {
        if let Key::Diesel {
            folder,
            file: which,
        } = file.key
        {
            folders.entry(folder).or_default().insert(which, file);
        }
    }
    for (folder, parts) in folders {
        let Some(first) = parts.values().next() else {
            continue;
        };
        // Problems about the folder are reported on its first file, which
        // always exists; the message names the folder.
        let folder_path = first.path;
        let (text, name) = folder.split_once('_').unwrap_or((folder, ""));
        let digits = text.replace('-', "");
        let version = if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            parse_version(&digits)
        } else {
            None
        };
        let Some(version) = version else {
            let mut problem = version_problem(folder_path, &digits, "{version}_{name}/up.sql");
            if !text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                problem.message = format!("diesel folder `{folder}` does not start with a version");
                problem.hint = format!(
                    "name the folder {{version}}_{{name}}, e.g. 2024-01-01-000000_{folder}"
                );
            } else {
                problem.message = format!("diesel folder `{folder}`: {}", problem.message);
            }
            problems.push(problem);
            continue;
        };
        let Some(up) = parts.get(&DieselFile::Up) else {
            problems.push(Problem::new(
                folder_path,
                format!("diesel folder `{folder}` has no up.sql"),
                format!("add {folder}/up.sql or delete the folder"),
            ));
            continue;
        };
        let built = (|| {
            let up_script = whole(up.path, up.text.as_deref()?);
            let down_script = match parts.get(&DieselFile::Down) {
                Some(down) => Some(whole(down.path, down.text.as_deref()?)),
                None => None,
            };
            let no_tx = match parts.get(&DieselFile::Metadata) {
                Some(meta) => !run_in_transaction(meta.path, meta.text.as_deref()?, problems)?,
                None => false,
            };
            Some(migration(
                Format::Diesel,
                version,
                name,
                up_script,
                down_script,
                no_tx,
            ))
        })();
        units.push(Unit {
            version,
            path: up.path,
            migration: built,
        });
    }
}

/// The `run_in_transaction` key of a diesel `metadata.toml` (default `true`);
/// `None` when its value is neither `true` nor `false` (reported).
fn run_in_transaction(path: &str, text: &str, problems: &mut Vec<Problem>) -> Option<bool> {
    let mut result = true;
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            // Keys under a table header are not diesel's top-level key.
            break;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "run_in_transaction" {
            continue;
        }
        match value.trim() {
            "true" => result = true,
            "false" => result = false,
            other => {
                problems.push(
                    Problem::new(
                        path,
                        format!("run_in_transaction must be true or false, not `{other}`"),
                        "write `run_in_transaction = false` or remove the line",
                    )
                    .at(index + 1),
                );
                return None;
            }
        }
    }
    Some(result)
}

fn check_unique_versions(units: &mut [Unit<'_>], problems: &mut Vec<Problem>) {
    units.sort_by(|a, b| a.version.cmp(&b.version).then(a.path.cmp(b.path)));
    for group in units.chunk_by(|a, b| a.version == b.version) {
        if group.len() > 1 {
            let paths: Vec<&str> = group.iter().map(|u| u.path).collect();
            problems.push(Problem::new(
                group[0].path,
                format!(
                    "version {} is used by more than one migration: {}",
                    group[0].version,
                    paths.join(", ")
                ),
                "rename one of them so that every version is unique",
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// Sections (dbmate, goose)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Up,
    Down,
}

struct Markers {
    /// How the markers are written, for messages.
    up: &'static str,
    down: &'static str,
    /// Recognises a marker line; returns its direction and options.
    find: fn(&str) -> Option<(Dir, String)>,
}

struct Section {
    sql: String,
    first_line: usize,
    options: String,
}

/// `-- migrate:up [options]` / `-- migrate:down [options]` (leading blanks
/// allowed, any blanks after `--`).
fn dbmate_marker(line: &str) -> Option<(Dir, String)> {
    let rest = line
        .trim_start()
        .strip_prefix("--")?
        .trim_start()
        .strip_prefix("migrate:")?;
    let (word, options) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let dir = match word {
        "up" => Dir::Up,
        "down" => Dir::Down,
        _ => return None,
    };
    Some((dir, options.trim().to_string()))
}

/// The annotation of a `-- +goose ...` line, lowercased with single spaces
/// (`"up"`, `"no transaction"`, `"statementbegin"`).
fn goose_annotation(line: &str) -> Option<String> {
    let rest = line
        .trim()
        .strip_prefix("--")?
        .trim_start()
        .strip_prefix("+goose")?;
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(
        rest.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase(),
    )
}

fn goose_marker(line: &str) -> Option<(Dir, String)> {
    match goose_annotation(line)?.as_str() {
        "up" => Some((Dir::Up, String::new())),
        "down" => Some((Dir::Down, String::new())),
        _ => None,
    }
}

/// Cuts a file into its up section and optional down section. A section runs
/// from the line after its marker up to (not including) the next marker line.
/// A blank down section counts as no down.
fn split_sections(
    path: &str,
    text: &str,
    markers: &Markers,
    problems: &mut Vec<Problem>,
) -> Option<(Section, Option<Section>)> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let found: Vec<(usize, Dir, String)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| (markers.find)(line).map(|(dir, options)| (i, dir, options)))
        .collect();
    let ups: Vec<&(usize, Dir, String)> = found.iter().filter(|m| m.1 == Dir::Up).collect();
    let downs: Vec<&(usize, Dir, String)> = found.iter().filter(|m| m.1 == Dir::Down).collect();
    let before = problems.len();

    if ups.is_empty() {
        problems.push(Problem::new(
            path,
            format!("the up section is missing: no `{}` line", markers.up),
            format!("add a `{}` line above the up SQL", markers.up),
        ));
    }
    if let Some(extra) = ups.get(1) {
        problems.push(
            Problem::new(
                path,
                format!("a second `{}` line", markers.up),
                "keep one up section per file",
            )
            .at(extra.0 + 1),
        );
    }
    if let Some(extra) = downs.get(1) {
        problems.push(
            Problem::new(
                path,
                format!("a second `{}` line", markers.down),
                "keep one down section per file",
            )
            .at(extra.0 + 1),
        );
    }
    if let (Some(up), Some(down)) = (ups.first(), downs.first())
        && down.0 < up.0
    {
        problems.push(
            Problem::new(
                path,
                format!("`{}` comes before `{}`", markers.down, markers.up),
                "put the up section first",
            )
            .at(down.0 + 1),
        );
    }
    let start = found.first().map_or(lines.len(), |m| m.0);
    if let Some(index) = lines[..start].iter().position(|line| is_code(line))
        && !ups.is_empty()
    {
        problems.push(
            Problem::new(
                path,
                format!("SQL before the `{}` line would never run", markers.up),
                "move it into a section or delete it",
            )
            .at(index + 1),
        );
    }
    if problems.len() != before {
        return None;
    }

    let section = |marker: &(usize, Dir, String)| {
        let end = found
            .iter()
            .map(|m| m.0)
            .find(|&i| i > marker.0)
            .unwrap_or(lines.len());
        Section {
            sql: lines[marker.0 + 1..end].concat(),
            first_line: marker.0 + 2,
            options: marker.2.clone(),
        }
    };
    let up = section(ups[0]);
    let down = downs
        .first()
        .map(|m| section(m))
        .filter(|s| !s.sql.trim().is_empty());
    Some((up, down))
}

/// A line that is neither blank nor a `--` comment.
fn is_code(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && !line.starts_with("--")
}

/// The text of a `--` comment line, trimmed.
fn comment(line: &str) -> Option<&str> {
    line.trim().strip_prefix("--").map(str::trim)
}

/// A `-- no-transaction` line that is not the script's first non-blank line:
/// it would be silently ignored, and the migration run in a transaction.
fn misplaced_marker(script: &Script) -> Option<Problem> {
    let mut lines = script
        .sql
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    lines.next();
    let (index, _) = lines.find(|(_, line)| {
        comment(line).is_some_and(|c| c.eq_ignore_ascii_case("no-transaction"))
    })?;
    Some(
        Problem::new(
            &script.path,
            "`-- no-transaction` is recognized only as the first line of the script; here it \
             would be ignored and the migration run in a transaction",
            "move it to the first line (before any SQL or other comment)",
        )
        .at(script.first_line + index),
    )
}

/// `-- no-transaction` as the first non-blank line (sqlx), or a line
/// `-- refinery:noTransaction` or `-- morph:nontransactional` anywhere.
fn has_no_transaction_marker(sql: &str) -> bool {
    let first = sql.lines().find(|line| !line.trim().is_empty());
    if first
        .and_then(comment)
        .is_some_and(|c| c.eq_ignore_ascii_case("no-transaction"))
    {
        return true;
    }
    sql.lines().filter_map(comment).any(|c| {
        c.eq_ignore_ascii_case("refinery:noTransaction")
            || c.eq_ignore_ascii_case("morph:nontransactional")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, contents: &str) -> Entry {
        Entry {
            path: path.to_string(),
            contents: contents.as_bytes().to_vec(),
        }
    }

    fn ok(entries: &[Entry]) -> Parsed {
        match parse(entries) {
            Ok(parsed) => parsed,
            Err(err) => panic!("unexpected problems:\n{err}"),
        }
    }

    fn err(entries: &[Entry]) -> SourceError {
        match parse(entries) {
            Ok(parsed) => panic!("expected problems, got {parsed:?}"),
            Err(err) => err,
        }
    }

    /// The single problem whose path is `path`.
    fn problem_for<'a>(err: &'a SourceError, path: &str) -> &'a Problem {
        let found: Vec<&Problem> = err.problems.iter().filter(|p| p.path == path).collect();
        assert_eq!(found.len(), 1, "problems for {path}: {err}");
        found[0]
    }

    fn versions(parsed: &Parsed) -> Vec<Version> {
        parsed.migrations.iter().map(|m| m.version).collect()
    }

    // --- helpers --------------------------------------------------------

    #[test]
    fn parse_version_is_numeric_and_never_overflows() {
        assert_eq!(parse_version("1"), Some(1));
        assert_eq!(parse_version("0001"), Some(1));
        assert_eq!(parse_version("20261122005600"), Some(20_261_122_005_600));
        // PostgreSQL's bigint, not u64, is the limit.
        assert_eq!(parse_version("9223372036854775807"), Some(MAX_VERSION));
        assert_eq!(parse_version("9223372036854775808"), None);
        assert_eq!(parse_version("18446744073709551616"), None);
        assert_eq!(parse_version("99999999999999999999999999"), None);
        assert_eq!(parse_version(""), None);
        assert_eq!(parse_version("+1"), None);
        assert_eq!(parse_version("1a"), None);
        assert_eq!(parse_version(" 1"), None);
        assert_eq!(parse_version("١"), None);
    }

    #[test]
    fn normalize_strips_bom_and_crlf() {
        assert_eq!(normalize("\u{feff}a\r\nb\r\n"), "a\nb\n");
        assert_eq!(normalize("a\rb"), "a\rb");
        assert_eq!(normalize("x\u{feff}"), "x\u{feff}");
    }

    #[test]
    fn checksum_is_lowercase_hex_sha256() {
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            checksum("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn display_lists_every_problem_on_its_own_line() {
        let err = SourceError {
            problems: vec![
                Problem::new("a.sql", "bad", "fix it").at(3),
                Problem::new("b.sql", "worse", ""),
            ],
        };
        assert_eq!(err.to_string(), "a.sql:3: bad (fix it)\nb.sql: worse");
    }

    // --- formats ----------------------------------------------------------

    #[test]
    fn empty_list_is_ok() {
        let parsed = ok(&[]);
        assert_eq!(parsed.format, None);
        assert!(parsed.migrations.is_empty());
        assert!(parsed.ignored.is_empty());
    }

    #[test]
    fn golang_migrate_up_down_and_up_only() {
        let parsed = ok(&[
            entry("2_add_users.down.sql", "DROP TABLE users;\n"),
            entry("1_init.up.sql", "CREATE TABLE t (id int);\n"),
            entry("1_init.down.sql", "DROP TABLE t;\n"),
            entry("2_add_users.up.sql", "CREATE TABLE users (id int);\n"),
            entry("3_seed.sql", "INSERT INTO t VALUES (1);\n"),
        ]);
        assert_eq!(parsed.format, Some(Format::GolangMigrate));
        assert_eq!(versions(&parsed), [1, 2, 3]);
        let m = &parsed.migrations[0];
        assert_eq!(m.name, "init");
        assert_eq!(m.label(), "1_init");
        assert_eq!(m.up.path, "1_init.up.sql");
        assert_eq!(m.up.sql, "CREATE TABLE t (id int);\n");
        assert_eq!(m.up.first_line, 1);
        assert!(!m.up.goose_annotations);
        assert_eq!(m.checksum, checksum("CREATE TABLE t (id int);\n"));
        assert!(m.transactional);
        let down = m.down.as_ref().expect("down");
        assert_eq!(down.path, "1_init.down.sql");
        assert_eq!(down.sql, "DROP TABLE t;\n");
        assert_eq!(parsed.migrations[1].name, "add_users");
        let seed = &parsed.migrations[2];
        assert_eq!(
            (seed.name.as_str(), seed.up.path.as_str()),
            ("seed", "3_seed.sql")
        );
        assert_eq!(seed.down, None);
    }

    #[test]
    fn refinery_files() {
        let parsed = ok(&[
            entry("V1__init.sql", "CREATE TABLE t (id int);"),
            entry("V2__add_users.sql", "CREATE TABLE u (id int);"),
            entry("V10__more.sql", "SELECT 1;"),
        ]);
        assert_eq!(parsed.format, Some(Format::Refinery));
        assert_eq!(versions(&parsed), [1, 2, 10]);
        assert_eq!(parsed.migrations[1].name, "add_users");
        assert_eq!(parsed.migrations[1].up.path, "V2__add_users.sql");
        assert_eq!(parsed.migrations[1].down, None);
        assert_eq!(
            parsed.migrations[0].checksum,
            checksum("CREATE TABLE t (id int);")
        );
    }

    #[test]
    fn refinery_unversioned_and_rust_migrations_are_refused() {
        let err = err(&[
            entry("V1__init.sql", "SELECT 1;"),
            entry("U2__repeat.sql", "SELECT 2;"),
            entry("V3__code.rs", "fn migration() -> String { String::new() }"),
            entry("V4_single.sql", "SELECT 4;"),
        ]);
        assert_eq!(err.problems.len(), 3, "{err}");
        assert!(
            problem_for(&err, "U2__repeat.sql")
                .message
                .contains("not supported")
        );
        assert!(
            problem_for(&err, "V3__code.rs")
                .message
                .contains("not supported")
        );
        let single = problem_for(&err, "V4_single.sql");
        assert!(single.hint.contains("V4__single.sql"), "{single}");
    }

    #[test]
    fn diesel_folders() {
        let parsed = ok(&[
            entry("00000000000000_diesel_initial_setup/up.sql", "SELECT 0;"),
            entry("00000000000000_diesel_initial_setup/down.sql", "SELECT 0;"),
            entry(
                "2021-01-01-000000_create_users/up.sql",
                "CREATE TABLE users ();",
            ),
            entry(
                "2021-01-01-000000_create_users/down.sql",
                "DROP TABLE users;",
            ),
            entry(
                "2021-02-01-000000_index/metadata.toml",
                "# no transaction for CONCURRENTLY\nrun_in_transaction = false\n",
            ),
            entry(
                "2021-02-01-000000_index/up.sql",
                "CREATE INDEX CONCURRENTLY i ON users (id);",
            ),
            entry("2021-03-01-000000_plain/up.sql", "SELECT 3;"),
            entry(
                "2021-03-01-000000_plain/metadata.toml",
                "run_in_transaction = true\n",
            ),
            entry("2021-03-01-000000_plain/README.md", "notes"),
        ]);
        assert_eq!(parsed.format, Some(Format::Diesel));
        assert_eq!(
            versions(&parsed),
            [
                0,
                20_210_101_000_000,
                20_210_201_000_000,
                20_210_301_000_000
            ]
        );
        let [initial, users, index, plain] = parsed.migrations.as_slice() else {
            panic!("four migrations");
        };
        assert_eq!(initial.name, "diesel_initial_setup");
        assert_eq!(users.name, "create_users");
        assert_eq!(users.up.path, "2021-01-01-000000_create_users/up.sql");
        assert_eq!(
            users.down.as_ref().map(|d| d.path.as_str()),
            Some("2021-01-01-000000_create_users/down.sql")
        );
        assert!(users.transactional);
        assert!(!index.transactional);
        assert_eq!(index.down, None);
        assert!(plain.transactional);
        assert_eq!(parsed.ignored, ["2021-03-01-000000_plain/README.md"]);
    }

    #[test]
    fn diesel_problems() {
        let err = err(&[
            entry("2021-01-01-000000_no_up/down.sql", "SELECT 1;"),
            entry("2021-01-02-000000_bad_meta/up.sql", "SELECT 1;"),
            entry(
                "2021-01-02-000000_bad_meta/metadata.toml",
                "\nrun_in_transaction = maybe\n",
            ),
            entry("seeds/up.sql", "SELECT 1;"),
        ]);
        assert_eq!(err.problems.len(), 3, "{err}");
        let no_up = problem_for(&err, "2021-01-01-000000_no_up/down.sql");
        assert!(no_up.message.contains("no up.sql"), "{no_up}");
        assert!(
            no_up.hint.contains("2021-01-01-000000_no_up/up.sql"),
            "{no_up}"
        );
        let meta = problem_for(&err, "2021-01-02-000000_bad_meta/metadata.toml");
        assert_eq!(meta.line, Some(2));
        let seeds = problem_for(&err, "seeds/up.sql");
        assert!(seeds.message.contains("`seeds`"), "{seeds}");
    }

    #[test]
    fn dbmate_sections() {
        let text = "-- a comment\n\
                    -- migrate:up\n\
                    CREATE TABLE t (id int);\n\
                    \n\
                    -- migrate:down\n\
                    DROP TABLE t;\n";
        let parsed = ok(&[entry("20240101000000_init.sql", text)]);
        assert_eq!(parsed.format, Some(Format::Dbmate));
        let m = &parsed.migrations[0];
        assert_eq!((m.version, m.name.as_str()), (20_240_101_000_000, "init"));
        assert_eq!(m.up.path, "20240101000000_init.sql");
        assert_eq!(m.up.sql, "CREATE TABLE t (id int);\n\n");
        assert_eq!(m.up.first_line, 3);
        assert!(!m.up.goose_annotations);
        let down = m.down.as_ref().expect("down");
        assert_eq!(down.sql, "DROP TABLE t;\n");
        assert_eq!(down.first_line, 6);
        assert_eq!(m.checksum, checksum("CREATE TABLE t (id int);\n\n"));
        assert!(m.transactional);
    }

    #[test]
    fn dbmate_empty_or_missing_down_is_no_down() {
        let parsed = ok(&[
            entry(
                "1_a.sql",
                "-- migrate:up\nSELECT 1;\n-- migrate:down\n\n  \n",
            ),
            entry("2_b.sql", "-- migrate:up\nSELECT 2;\n"),
            entry("3_c.sql", "-- migrate:up\nSELECT 3;\n-- migrate:down"),
        ]);
        assert_eq!(versions(&parsed), [1, 2, 3]);
        assert!(parsed.migrations.iter().all(|m| m.down.is_none()));
        assert_eq!(parsed.migrations[0].up.sql, "SELECT 1;\n");
    }

    #[test]
    fn dbmate_transaction_option() {
        let parsed = ok(&[
            entry(
                "1_idx.sql",
                "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (id);\n-- migrate:down\nDROP INDEX i;\n",
            ),
            entry(
                "2_down_only.sql",
                "-- migrate:up\nSELECT 1;\n-- migrate:down transaction:false\nSELECT 2;\n",
            ),
        ]);
        assert!(!parsed.migrations[0].transactional);
        assert!(
            parsed.migrations[1].transactional,
            "only the up marker decides"
        );
    }

    #[test]
    fn goose_sections() {
        let text = "-- +goose Up\n\
                    -- +goose StatementBegin\n\
                    CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\
                    -- +goose StatementEnd\n\
                    \n\
                    -- +goose Down\n\
                    DROP FUNCTION f();\n";
        let parsed = ok(&[
            entry("00001_func.sql", text),
            entry(
                "00002_lower.sql",
                "\n-- +goose up\nSELECT 1;\n--  +goose   DOWN\nSELECT 2;\n",
            ),
        ]);
        assert_eq!(parsed.format, Some(Format::Goose));
        let [func, lower] = parsed.migrations.as_slice() else {
            panic!("two migrations");
        };
        assert_eq!((func.version, func.name.as_str()), (1, "func"));
        assert!(
            func.up
                .sql
                .starts_with("-- +goose StatementBegin\nCREATE FUNCTION")
        );
        assert!(func.up.sql.ends_with("-- +goose StatementEnd\n\n"));
        assert_eq!(func.up.first_line, 2);
        assert!(func.up.goose_annotations);
        let down = func.down.as_ref().expect("down");
        assert_eq!(
            (down.sql.as_str(), down.first_line),
            ("DROP FUNCTION f();\n", 7)
        );
        assert!(down.goose_annotations);
        assert!(func.transactional);
        assert_eq!(
            (lower.up.sql.as_str(), lower.up.first_line),
            ("SELECT 1;\n", 3)
        );
        assert_eq!(lower.down.as_ref().map(|d| d.first_line), Some(5));
    }

    #[test]
    fn goose_no_transaction() {
        let parsed = ok(&[
            entry(
                "1_idx.sql",
                "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (id);\n",
            ),
            entry("2_plain.sql", "-- +goose Up\nSELECT 1;\n"),
        ]);
        assert!(!parsed.migrations[0].transactional);
        assert_eq!(parsed.migrations[0].up.first_line, 3);
        assert!(parsed.migrations[1].transactional);
    }

    #[test]
    fn sql_file_format_is_decided_by_content() {
        let plain = ok(&[entry("1_a.sql", "-- migrate is a word\nSELECT 1;\n")]);
        assert_eq!(plain.format, Some(Format::GolangMigrate));
        let dbmate = ok(&[entry("1_a.sql", "-- migrate:up\nSELECT 1;\n")]);
        assert_eq!(dbmate.format, Some(Format::Dbmate));
        let goose = ok(&[entry("1_a.sql", "-- +goose Up\nSELECT 1;\n")]);
        assert_eq!(goose.format, Some(Format::Goose));
        let both = err(&[entry("1_a.sql", "-- +goose Up\n-- migrate:up\nSELECT 1;\n")]);
        assert!(problem_for(&both, "1_a.sql").message.contains("both"));
    }

    // --- ordering, normalisation, markers ----------------------------------

    #[test]
    fn diesel_versions_sort_as_diesel_sorts_them() {
        let parsed = ok(&[
            entry("2026-01-20-162913_y/up.sql", "SELECT 2;"),
            entry("2025-11-19-091444-0000_x/up.sql", "SELECT 1;"),
        ]);
        assert_eq!(
            versions(&parsed),
            [202_511_190_914_440_000, 20_260_120_162_913]
        );
    }

    #[test]
    fn versions_sort_as_numbers() {
        let parsed = ok(&[
            entry("10_ten.up.sql", ""),
            entry("9_nine.up.sql", ""),
            entry("20261122005600_stamp.up.sql", ""),
            entry("0100_hundred.up.sql", ""),
            entry("20251231235959_earlier.up.sql", ""),
        ]);
        assert_eq!(
            versions(&parsed),
            [9, 10, 100, 20_251_231_235_959, 20_261_122_005_600]
        );
        assert_eq!(parsed.migrations[2].name, "hundred");
    }

    #[test]
    fn crlf_and_bom_do_not_change_the_checksum() {
        let lf = "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n";
        let crlf = lf.replace('\n', "\r\n");
        let bom = format!("\u{feff}{crlf}");
        let sums: Vec<String> = [lf.to_string(), crlf, bom]
            .iter()
            .map(|text| ok(&[entry("1_a.sql", text)]).migrations[0].checksum.clone())
            .collect();
        assert_eq!(sums, [checksum(lf), checksum(lf), checksum(lf)]);
        let parsed = ok(&[entry(
            "1_a.sql",
            &format!("\u{feff}{}", lf.replace('\n', "\r\n")),
        )]);
        assert_eq!(parsed.migrations[0].up.sql, lf);
    }

    #[test]
    fn crlf_dbmate_sections_keep_line_numbers() {
        let text = "\u{feff}-- migrate:up\r\nSELECT 1;\r\n-- migrate:down\r\nSELECT 2;\r\n";
        let parsed = ok(&[entry("1_a.sql", text)]);
        let m = &parsed.migrations[0];
        assert_eq!((m.up.sql.as_str(), m.up.first_line), ("SELECT 1;\n", 2));
        assert_eq!(m.checksum, checksum("SELECT 1;\n"));
        assert_eq!(m.down.as_ref().map(|d| d.first_line), Some(4));
    }

    #[test]
    fn no_transaction_markers() {
        let parsed = ok(&[
            entry(
                "1_sqlx.sql",
                "\n  \n-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (id);\n",
            ),
            entry(
                "3_refinery.sql",
                "SELECT 1;\n-- refinery:noTransaction\nSELECT 2;\n",
            ),
            entry(
                "4_morph.up.sql",
                "-- comment\n-- morph:nontransactional\nSELECT 1;\n",
            ),
            entry("5_plain.up.sql", "SELECT '-- no-transaction';\n"),
        ]);
        let flags: Vec<bool> = parsed.migrations.iter().map(|m| m.transactional).collect();
        assert_eq!(flags, [false, false, false, true]);
        // Anywhere but the first line it would be ignored: an error naming the line.
        let e = err(&[entry("2_late.sql", "SELECT 1;\n-- no-transaction\n")]);
        assert_eq!(
            (e.problems[0].path.as_str(), e.problems[0].line),
            ("2_late.sql", Some(2))
        );
        assert!(e.problems[0].message.contains("first line"), "{e}");
        let e = err(&[entry(
            "3_s.sql",
            "-- migrate:up\nSELECT 1;\n-- no-transaction\n-- migrate:down\n",
        )]);
        assert_eq!(e.problems[0].line, Some(3), "{e}");
    }

    #[test]
    fn no_transaction_markers_in_other_formats() {
        let refinery = ok(&[entry("V1__a.sql", "-- refinery:noTransaction\nSELECT 1;")]);
        assert!(!refinery.migrations[0].transactional);
        let dbmate = ok(&[entry(
            "1_a.sql",
            "-- migrate:up\n-- no-transaction\nSELECT 1;\n",
        )]);
        assert!(!dbmate.migrations[0].transactional);
        let diesel = ok(&[entry("1_a/up.sql", "-- morph:nontransactional\nSELECT 1;")]);
        assert!(!diesel.migrations[0].transactional);
    }

    #[test]
    fn refinery_reads_subfolders_and_the_other_formats_refuse_nested_migrations() {
        let parsed = ok(&[
            entry("V1__a.sql", "SELECT 1;"),
            entry("V1-2/V2__add_cars.sql", "SELECT 2;"),
            entry("later/deeper/V3__c.sql", "SELECT 3;"),
            entry("later/notes.md", "x"),
        ]);
        assert_eq!(parsed.format, Some(Format::Refinery));
        assert_eq!(versions(&parsed), [1, 2, 3]);
        assert_eq!(parsed.migrations[1].up.path, "V1-2/V2__add_cars.sql");
        assert_eq!(parsed.ignored, ["later/notes.md"]);

        for nested in [
            "old/3_c.up.sql",
            "old/20200101000000_c.sql",
            "x/2021-01-01-000000_a/up.sql",
        ] {
            let e = err(&[entry("1_a.up.sql", "SELECT 1;"), entry(nested, "SELECT 3;")]);
            assert_eq!(e.problems.len(), 1, "{nested}: {e}");
            assert_eq!(e.problems[0].path, nested);
            assert!(e.problems[0].hint.contains("top level"), "{e}");
        }
    }

    #[test]
    fn ignored_and_hidden_files() {
        let parsed = ok(&[
            entry("1_a.up.sql", "SELECT 1;"),
            entry("README.md", "docs"),
            entry("schema.sql", "-- dump"),
            entry("notes.txt", "x"),
            entry("helpers/functions.sql", "x"),
            entry("a/b/c.sql", "x"),
            entry(".gitkeep", ""),
            entry(".DS_Store", "\u{0}\u{1}"),
            entry(".hidden/up.sql", "x"),
            entry("2_b/.swp", "x"),
            entry("binary.bin", "\u{ff}"),
        ]);
        assert_eq!(versions(&parsed), [1]);
        assert_eq!(
            parsed.ignored,
            [
                "README.md",
                "a/b/c.sql",
                "binary.bin",
                "helpers/functions.sql",
                "notes.txt",
                "schema.sql"
            ]
        );
        let only_ignored = ok(&[entry("README.md", "docs")]);
        assert_eq!((only_ignored.format, only_ignored.ignored.len()), (None, 1));
    }

    #[test]
    fn invalid_utf8_outside_migrations_is_just_ignored() {
        let parsed = ok(&[Entry {
            path: "logo.png".to_string(),
            contents: vec![0x89, b'P', b'N', b'G', 0xff],
        }]);
        assert_eq!(parsed.ignored, ["logo.png"]);
    }

    // --- problems ----------------------------------------------------------

    #[test]
    fn duplicate_versions_with_different_names() {
        let err = err(&[
            entry("1_a.sql", "SELECT 1;"),
            entry("01_b.sql", "SELECT 2;"),
        ]);
        assert_eq!(err.problems.len(), 1, "{err}");
        let p = &err.problems[0];
        assert!(
            p.message.contains("01_b.sql") && p.message.contains("1_a.sql"),
            "{p}"
        );
        assert!(p.hint.contains("rename"), "{p}");
    }

    #[test]
    fn duplicate_versions_in_every_format() {
        let cases: [(&[Entry], &str); 4] = [
            (
                &[
                    entry("V1__a.sql", "SELECT 1;"),
                    entry("V001__b.sql", "SELECT 2;"),
                ],
                "V001__b.sql, V1__a.sql",
            ),
            (
                &[
                    entry("2021-01-01_a/up.sql", "SELECT 1;"),
                    entry("2021-01-01_b/up.sql", "SELECT 2;"),
                ],
                "2021-01-01_a/up.sql, 2021-01-01_b/up.sql",
            ),
            (
                &[
                    entry("5_a.sql", "-- migrate:up\nSELECT 1;\n"),
                    entry("005_b.sql", "-- migrate:up\nSELECT 2;\n"),
                ],
                "005_b.sql, 5_a.sql",
            ),
            (
                &[
                    entry("5_a.sql", "-- +goose Up\nSELECT 1;\n"),
                    entry("05_a.sql", "-- +goose Up\nSELECT 1;\n"),
                ],
                "05_a.sql, 5_a.sql",
            ),
        ];
        for (entries, named) in cases {
            let problems = err(entries);
            assert_eq!(problems.problems.len(), 1, "{problems}");
            let p = &problems.problems[0];
            assert!(p.message.contains(named), "{p}");
            assert!(p.hint.contains("rename"), "{p}");
        }
    }

    #[test]
    fn down_without_up() {
        let err = err(&[
            entry("1_a.up.sql", "SELECT 1;"),
            entry("3_x.down.sql", "SELECT 3;"),
        ]);
        let p = problem_for(&err, "3_x.down.sql");
        assert!(p.message.contains("without its up"), "{p}");
        assert_eq!(p.hint, "add 3_x.up.sql or delete the down file");
        assert_eq!(
            suggested("001-init", "{version}_{name}.sql"),
            "001_init.sql"
        );
        assert_eq!(
            suggested("2 Add users", "{version}_{name}.up.sql"),
            "2_add_users.up.sql"
        );
        assert_eq!(suggested("7", "{version}_{name}.sql"), "7_{name}.sql");
    }

    #[test]
    fn down_name_must_match_up() {
        let err = err(&[
            entry("1_a.up.sql", "SELECT 1;"),
            entry("1_b.down.sql", "SELECT 1;"),
        ]);
        let p = problem_for(&err, "1_b.down.sql");
        assert!(p.message.contains("1_a.up.sql"), "{p}");
        assert!(p.hint.contains("1_a.down.sql"), "{p}");
    }

    #[test]
    fn two_up_files_for_one_version() {
        let err = err(&[
            entry("1_a.up.sql", "SELECT 1;"),
            entry("1_a.sql", "SELECT 1;"),
            entry("1_a.down.sql", "SELECT 1;"),
        ]);
        assert_eq!(err.problems.len(), 1, "{err}");
        let p = &err.problems[0];
        assert!(p.message.contains("two up files"), "{p}");
        assert!(
            p.hint.contains("1_a.sql is the up-only form of 1_a.up.sql"),
            "{p}"
        );
        assert!(
            p.message.contains("1_a.sql") && p.message.contains("1_a.up.sql"),
            "{p}"
        );
    }

    #[test]
    fn invalid_utf8_names_offset_and_line() {
        let mut contents = b"SELECT 1;\nSELECT '".to_vec();
        contents.push(0xe9);
        contents.extend_from_slice(b"';\n");
        let err = err(&[
            Entry {
                path: "1_a.up.sql".to_string(),
                contents,
            },
            Entry {
                path: "2_b.sql".to_string(),
                contents: vec![0xff, 0xfe, b'S', 0],
            },
        ]);
        assert_eq!(err.problems.len(), 2, "{err}");
        let p = problem_for(&err, "1_a.up.sql");
        assert_eq!(p.line, Some(2));
        assert!(p.message.contains("offset 18"), "{p}");
        assert_eq!(p.hint, "save the file as UTF-8");
        assert!(p.to_string().starts_with("1_a.up.sql:2: "), "{p}");
        let utf16 = problem_for(&err, "2_b.sql");
        assert!(utf16.hint.contains("UTF-16"), "{utf16}");
    }

    #[test]
    fn bad_versions() {
        let err = err(&[
            entry("_empty.up.sql", ""),
            entry("V__empty.sql", ""),
            entry("99999999999999999999_big.sql", ""),
            entry("1a_letters.up.sql", ""),
            entry("7.up.sql", ""),
            entry("2021-01-01-000000-0000000000000000_huge/up.sql", ""),
        ]);
        assert_eq!(err.problems.len(), 6, "{err}");
        assert!(problem_for(&err, "_empty.up.sql").message.contains("empty"));
        assert!(problem_for(&err, "V__empty.sql").message.contains("empty"));
        assert!(
            problem_for(&err, "99999999999999999999_big.sql")
                .message
                .contains("too large")
        );
        assert!(
            problem_for(&err, "1a_letters.up.sql")
                .message
                .contains("not a number")
        );
        assert!(
            problem_for(&err, "7.up.sql")
                .hint
                .contains("7_{name}.up.sql")
        );
        let huge = problem_for(&err, "2021-01-01-000000-0000000000000000_huge/up.sql");
        assert!(huge.message.contains("too large"), "{huge}");
    }

    #[test]
    fn mixed_formats_name_one_file_of_each() {
        let err = err(&[
            entry("1_a.up.sql", "SELECT 1;"),
            entry("2_b.up.sql", "SELECT 1;"),
            entry("3_c.sql", "-- migrate:up\nSELECT 1;\n"),
            entry("V4__d.sql", "SELECT 1;"),
            entry("2021-01-01_e/up.sql", "SELECT 1;"),
        ]);
        assert_eq!(err.problems.len(), 1, "{err}");
        let p = &err.problems[0];
        assert!(
            p.message.contains("1_a.up.sql (golang-migrate/sqlx)"),
            "{p}"
        );
        assert!(p.message.contains("3_c.sql (dbmate)"), "{p}");
        assert!(p.message.contains("V4__d.sql (refinery)"), "{p}");
        assert!(p.message.contains("2021-01-01_e/up.sql (diesel)"), "{p}");
        assert!(!p.message.contains("2_b.up.sql"), "{p}");
    }

    #[test]
    fn dbmate_without_up_section() {
        let err = err(&[entry("1_a.sql", "SELECT 0;\n-- migrate:down\nSELECT 1;\n")]);
        assert_eq!(err.problems.len(), 1, "{err}");
        let p = problem_for(&err, "1_a.sql");
        assert!(p.message.contains("up section is missing"), "{p}");
        assert!(p.hint.contains("-- migrate:up"), "{p}");
    }

    #[test]
    fn goose_down_before_up() {
        let err = err(&[entry(
            "1_a.sql",
            "-- +goose Down\nDROP TABLE t;\n-- +goose Up\nCREATE TABLE t ();\n",
        )]);
        let p = problem_for(&err, "1_a.sql");
        assert_eq!(p.line, Some(1));
        assert!(p.message.contains("before"), "{p}");
    }

    #[test]
    fn section_marker_problems() {
        let err = err(&[
            entry(
                "1_a.sql",
                "-- +goose Up\nSELECT 1;\n-- +goose Up\nSELECT 2;\n",
            ),
            entry(
                "2_b.sql",
                "CREATE TABLE lost ();\n-- +goose Up\nSELECT 1;\n",
            ),
            entry(
                "3_c.sql",
                "-- +goose StatementBegin\nSELECT 1;\n-- +goose StatementEnd\n",
            ),
        ]);
        assert_eq!(err.problems.len(), 3, "{err}");
        assert_eq!(problem_for(&err, "1_a.sql").line, Some(3));
        let lost = problem_for(&err, "2_b.sql");
        assert_eq!(lost.line, Some(1));
        assert!(lost.message.contains("never run"), "{lost}");
        assert!(
            problem_for(&err, "3_c.sql")
                .message
                .contains("-- +goose Up")
        );
    }

    #[test]
    fn all_problems_are_collected_in_one_pass() {
        let err = err(&[
            entry("1_a.sql", "SELECT 1;"),
            entry("01_b.sql", "SELECT 2;"),
            entry("3_x.down.sql", "SELECT 3;"),
            entry("4_y.up.sql", "SELECT 4;"),
            entry("4_y.sql", "SELECT 4;"),
            entry("_z.up.sql", ""),
            entry("99999999999999999999_big.up.sql", ""),
            Entry {
                path: "5_bad.up.sql".to_string(),
                contents: vec![b'a', 0xc3],
            },
            entry("U6__u.sql", ""),
        ]);
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "01_b.sql",
                "3_x.down.sql",
                "4_y.sql",
                "5_bad.up.sql",
                "99999999999999999999_big.up.sql",
                "U6__u.sql",
                "_z.up.sql",
            ],
            "{err}"
        );
        assert_eq!(err.to_string().lines().count(), 7);
    }

    #[test]
    fn unreadable_file_does_not_cause_follow_up_problems() {
        let not_utf8 = |path: &str| Entry {
            path: path.to_string(),
            contents: vec![0xff],
        };
        for entries in [
            vec![not_utf8("1_a.up.sql"), entry("1_a.down.sql", "SELECT 1;")],
            vec![not_utf8("1_a.sql"), entry("1_a.down.sql", "SELECT 1;")],
            vec![not_utf8("1_a/up.sql"), entry("1_a/down.sql", "SELECT 1;")],
            vec![
                not_utf8("1_a/metadata.toml"),
                entry("1_a/up.sql", "SELECT 1;"),
            ],
        ] {
            let err = err(&entries);
            assert_eq!(err.problems.len(), 1, "{err}");
            assert!(err.problems[0].message.contains("UTF-8"), "{err}");
        }
    }
}
