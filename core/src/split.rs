//! Splitting one migration script into the statements it contains.
//!
//! A script is cut the way the interactive clients would cut it: `psql` for
//! PostgreSQL, and the `mysql`/`mariadb` client for MySQL and MariaDB (plus the
//! stored-program bodies the MySQL server itself accepts without a
//! `DELIMITER`). goose's `-- +goose StatementBegin` / `-- +goose StatementEnd`
//! regions are honoured on request. The runner uses the result to send
//! statements one at a time, to report a failing statement's line and column
//! in the file, and to reject malformed files before touching a database.
//!
//! Everything here works on the text it is given: the module does no IO, never
//! panics, and runs in time linear in the size of the input.

use std::fmt;
use std::mem;
use std::ops::Range;

use crate::migration::Engine;

/// A piece of the input. Segments cover the input exactly: concatenating the
/// text of every segment, in order, gives back the input byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub kind: SegmentKind,
    pub range: Range<usize>,
}

/// What a [`Segment`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// The text of one statement, exactly as [`Statement::sql`] has it.
    Statement,
    /// Whitespace, comments between statements, terminators (`;` or the
    /// custom delimiter), `DELIMITER` directive lines and goose annotation
    /// lines.
    Gap,
}

/// One statement of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement text: starts at its first token (leading whitespace and
    /// comments belong to the gap before it), ends before its terminator,
    /// trailing whitespace trimmed.
    pub sql: &'a str,
    /// Byte offset of `sql` in the input.
    pub start: usize,
    /// 1-based line of `start`.
    pub line: usize,
    /// 1-based column of `start`, counted in chars.
    pub column: usize,
}

/// Why a script cannot be split, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    /// 1-based line of the offending position.
    pub line: usize,
    /// 1-based column (in chars) of the offending position.
    pub column: usize,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for SplitError {}

/// Cuts `input` into statement and gap segments covering it exactly.
pub fn segments(
    input: &str,
    engine: Engine,
    goose_annotations: bool,
) -> Result<Vec<Segment>, SplitError> {
    Splitter::new(input, engine, goose_annotations).run()
}

/// The statements of `input`, in order, with their positions.
pub fn split(
    input: &str,
    engine: Engine,
    goose_annotations: bool,
) -> Result<Vec<Statement<'_>>, SplitError> {
    let segments = segments(input, engine, goose_annotations)?;
    let mut cursor = LineCursor::new();
    Ok(segments
        .into_iter()
        .filter(|segment| segment.kind == SegmentKind::Statement)
        .map(|segment| {
            let (line, column) = cursor.advance(input.as_bytes(), segment.range.start);
            let sql = input.get(segment.range.clone());
            debug_assert!(sql.is_some(), "segment off a char boundary");
            Statement {
                sql: sql.unwrap_or_default(),
                start: segment.range.start,
                line,
                column,
            }
        })
        .collect())
}

/// 1-based (line, column-in-chars) of a byte offset (offset may equal
/// `input.len()`; larger offsets are clamped to it).
pub fn line_col(input: &str, byte_offset: usize) -> (usize, usize) {
    let bytes = input.as_bytes();
    let prefix = &bytes[..byte_offset.min(bytes.len())];
    let line = 1 + prefix.iter().filter(|&&b| b == b'\n').count();
    let line_start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    let column = 1 + prefix[line_start..]
        .iter()
        .filter(|&&b| !is_continuation(b))
        .count();
    (line, column)
}

/// Byte offset of a 1-based character position, as PostgreSQL reports error
/// positions (clamped to `input.len()`; position 0 is treated as 1).
pub fn char_pos_to_byte(input: &str, char_pos: usize) -> usize {
    input
        .char_indices()
        .nth(char_pos.saturating_sub(1))
        .map_or(input.len(), |(offset, _)| offset)
}

/// Longest `DELIMITER` argument accepted, as in the mysql client.
const MAX_DELIMITER_LEN: usize = 15;

/// Longest piece of the input quoted back in an error message, in chars.
const MAX_QUOTED_CHARS: usize = 40;

/// Whitespace as both servers' lexers see it.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// A UTF-8 continuation byte (never the first byte of a char).
fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// PostgreSQL `ident_start`: letters, `_` and every non-ASCII byte.
fn is_pg_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// PostgreSQL `ident_cont`: also digits and `$`.
fn is_pg_ident_cont(b: u8) -> bool {
    is_pg_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// PostgreSQL `dolq_cont`: a dollar-quote tag character after the first.
fn is_dollar_tag_cont(b: u8) -> bool {
    is_pg_ident_start(b) || b.is_ascii_digit()
}

/// MySQL unquoted identifier (or number) character.
fn is_mysql_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// `end` moved back over trailing whitespace, but not before `start`.
fn trim_end_ws(bytes: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && is_ws(bytes[end - 1]) {
        end -= 1;
    }
    end
}

/// End of the line content starting at or after `pos` (before its `\n`) and
/// the start of the following line (`len` when there is none).
fn line_bounds(bytes: &[u8], pos: usize) -> (usize, usize) {
    match bytes[pos..].iter().position(|&b| b == b'\n') {
        Some(newline) => (pos + newline, pos + newline + 1),
        None => (bytes.len(), bytes.len()),
    }
}

/// At most [`MAX_QUOTED_CHARS`] chars of `text`, for error messages.
fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Case-insensitive keyword test on an optional word.
fn kw(word: Option<&str>, keyword: &str) -> bool {
    word.is_some_and(|w| w.eq_ignore_ascii_case(keyword))
}

/// Case-insensitive membership of an optional word in a keyword list.
fn kw_any(word: Option<&str>, keywords: &[&str]) -> bool {
    word.is_some_and(|w| keywords.iter().any(|k| w.eq_ignore_ascii_case(k)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GooseMark {
    Begin,
    End,
}

/// Recognises a `-- +goose StatementBegin` / `-- +goose StatementEnd` line.
fn goose_mark(line: &[u8]) -> Option<GooseMark> {
    let start = line.iter().position(|&b| !is_ws(b))?;
    let end = trim_end_ws(line, start, line.len());
    let rest = line[start..end].strip_prefix(b"--")?;
    let rest = &rest[rest.iter().position(|&b| !is_ws(b))?..];
    if rest.len() < 6 || !rest[..6].eq_ignore_ascii_case(b"+goose") {
        return None;
    }
    let rest = &rest[6..];
    if !rest.first().is_some_and(|&b| is_ws(b)) {
        return None;
    }
    let rest = &rest[rest.iter().position(|&b| !is_ws(b))?..];
    if rest.eq_ignore_ascii_case(b"StatementBegin") {
        Some(GooseMark::Begin)
    } else if rest.eq_ignore_ascii_case(b"StatementEnd") {
        Some(GooseMark::End)
    } else {
        None
    }
}

/// Incremental byte offset → (line, column) conversion, so that positioning
/// every statement of a large file stays linear.
struct LineCursor {
    offset: usize,
    line: usize,
    column: usize,
}

impl LineCursor {
    fn new() -> Self {
        LineCursor {
            offset: 0,
            line: 1,
            column: 1,
        }
    }

    fn advance(&mut self, bytes: &[u8], target: usize) -> (usize, usize) {
        let target = target.min(bytes.len());
        if target < self.offset {
            *self = LineCursor::new();
        }
        for &b in &bytes[self.offset..target] {
            if b == b'\n' {
                self.line += 1;
                self.column = 1;
            } else if !is_continuation(b) {
                self.column += 1;
            }
        }
        self.offset = target;
        (self.line, self.column)
    }
}

/// A lexical token, as far as statement boundaries care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    /// An unquoted identifier or keyword (in MySQL also a number).
    Word(&'a str),
    /// A single ASCII character that is not part of any other token.
    Punct(u8),
    /// A string, quoted identifier, dollar-quoted body, number, parameter or
    /// MySQL executable comment: text that never ends a statement.
    Opaque,
    /// A comment that is not part of the statement's meaning.
    Comment,
}

impl<'a> Tok<'a> {
    fn word(self) -> Option<&'a str> {
        match self {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }
}

/// The statement currently being read.
struct Current {
    start: usize,
    tracker: Tracker,
}

/// Per-statement state deciding whether a `;` ends the statement.
enum Tracker {
    Pg(PgTracker),
    Mysql(MysqlTracker),
    /// A custom MySQL delimiter is active: it always ends the statement.
    Off,
}

impl Tracker {
    fn feed(&mut self, tok: Tok<'_>, pos: usize) {
        match self {
            Tracker::Pg(t) => t.feed(tok, pos),
            Tracker::Mysql(t) => t.feed(tok, pos),
            Tracker::Off => {}
        }
    }

    fn can_terminate(&self) -> bool {
        match self {
            Tracker::Pg(t) => t.parens.is_empty() && t.body_depth == 0,
            Tracker::Mysql(t) => t.stack.is_empty(),
            Tracker::Off => true,
        }
    }

    /// Why a complete statement cannot be run from a migration file.
    fn refusal(&self) -> Option<String> {
        match self {
            Tracker::Pg(t) => t.refusal(),
            Tracker::Mysql(_) | Tracker::Off => None,
        }
    }

    /// At the end of the input: the position and message of a block or
    /// parenthesis that is still open.
    fn unclosed(&self) -> Option<(usize, String)> {
        match self {
            Tracker::Pg(t) => t.unclosed(),
            Tracker::Mysql(t) => t.unclosed(),
            Tracker::Off => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgHead {
    Start,
    Create,
    CreateOr,
    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
    Routine,
    Copy,
    CopyFrom,
    /// `COPY ... FROM STDIN`: its data would follow in the file.
    CopyStdin,
    Other,
}

/// psql's rules: `;` does not end a statement inside parentheses, nor inside
/// the SQL-standard body (`BEGIN ATOMIC ... END`) of a function or procedure.
struct PgTracker {
    head: PgHead,
    pending_begin: Option<usize>,
    body_depth: usize,
    body_open: usize,
    parens: Vec<usize>,
}

impl PgTracker {
    fn new() -> Self {
        PgTracker {
            head: PgHead::Start,
            pending_begin: None,
            body_depth: 0,
            body_open: 0,
            parens: Vec::new(),
        }
    }

    fn feed(&mut self, tok: Tok<'_>, pos: usize) {
        match tok {
            Tok::Punct(b'(') => self.parens.push(pos),
            Tok::Punct(b')') => {
                self.parens.pop();
            }
            _ => {}
        }
        let word = tok.word();
        self.head = match self.head {
            PgHead::Start if kw(word, "CREATE") => PgHead::Create,
            PgHead::Create if kw(word, "OR") => PgHead::CreateOr,
            PgHead::CreateOr if kw(word, "REPLACE") => PgHead::Create,
            PgHead::Create if kw_any(word, &["FUNCTION", "PROCEDURE"]) => PgHead::Routine,
            PgHead::Start if kw(word, "COPY") => PgHead::Copy,
            PgHead::Copy if kw(word, "FROM") && self.parens.is_empty() => PgHead::CopyFrom,
            PgHead::Copy => PgHead::Copy,
            PgHead::CopyFrom if kw(word, "STDIN") => PgHead::CopyStdin,
            PgHead::CopyStdin => PgHead::CopyStdin,
            PgHead::Routine => {
                self.routine(word, pos);
                PgHead::Routine
            }
            _ => PgHead::Other,
        };
    }

    fn routine(&mut self, word: Option<&str>, pos: usize) {
        if self.body_depth > 0 {
            if kw(word, "CASE") {
                self.body_depth += 1;
            } else if kw(word, "END") {
                self.body_depth -= 1;
            }
            return;
        }
        if let Some(begin) = self.pending_begin.take()
            && kw(word, "ATOMIC")
        {
            self.body_depth = 1;
            self.body_open = begin;
            return;
        }
        if kw(word, "BEGIN") {
            self.pending_begin = Some(pos);
        }
    }

    fn refusal(&self) -> Option<String> {
        (self.head == PgHead::CopyStdin).then(|| {
            "`COPY ... FROM STDIN` needs psql to stream the data lines that follow it, which \
             migration files cannot do; load the rows with INSERT statements (or COPY from a \
             file the server can read)"
                .to_string()
        })
    }

    fn unclosed(&self) -> Option<(usize, String)> {
        if self.body_depth > 0 {
            return Some((
                self.body_open,
                "`BEGIN ATOMIC` body opened here has no matching `END` before the end of the \
                 file; add the missing `END` (a CASE inside the body needs its own `END` too)"
                    .to_string(),
            ));
        }
        self.parens.last().map(|&pos| {
            (
                pos,
                "`(` opened here is never closed, so every `;` after it was taken as part of \
                 the same statement (psql does the same); add the missing `)`"
                    .to_string(),
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MysqlHead {
    Start,
    Begin,
    BeginNot,
    Create,
    CreateOr,
    DefinerEq,
    DefinerUser,
    DefinerAfterUser,
    DefinerHost,
    DefinerHostMore,
    Sql,
    SqlSecurity,
    /// A stored program (or anonymous block): blocks are counted.
    Compound,
    /// Anything else: the first `;` ends it.
    Plain,
}

/// An open block of a stored program.
struct Block {
    pos: usize,
    keyword: &'static str,
    /// A CASE used as an expression (rather than as a statement).
    expr: bool,
}

/// A keyword whose meaning depends on the token after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Begin(usize),
    If { pos: usize, stmt: bool },
    IfNot(usize),
    IfExists(usize),
    Repeat { pos: usize, stmt: bool },
    End,
    For(usize),
    ForVar(usize),
}

/// Keywords after which an expression (not a statement) follows, so that a
/// following `IF(`/`REPEAT(` is the function and a `CASE` is an expression.
#[rustfmt::skip]
const EXPR_KEYWORDS: &[&str] = &[
    "SELECT", "RETURN", "WHEN", "AND", "OR", "NOT", "XOR", "BY", "WHERE", "ON", "HAVING",
    "LIKE", "RLIKE", "REGEXP", "IN", "IS", "BETWEEN", "INTERVAL", "UNTIL", "WHILE", "CASE",
    "DISTINCT", "DISTINCTROW", "ALL", "ANY", "SOME", "DEFAULT", "DIV", "MOD", "ESCAPE",
    "ELSEIF", "IF", "VALUES", "VALUE", "BINARY", "EXISTS", "LIMIT", "OFFSET",
    "HIGH_PRIORITY", "STRAIGHT_JOIN", "SQL_SMALL_RESULT", "SQL_BIG_RESULT",
    "SQL_BUFFER_RESULT", "SQL_NO_CACHE", "SQL_CACHE", "SQL_CALC_FOUND_ROWS",
];

/// Keywords that open or close blocks (never a `FOR` loop variable).
const BLOCK_KEYWORDS: &[&str] = &[
    "BEGIN", "END", "IF", "CASE", "LOOP", "WHILE", "REPEAT", "FOR",
];

/// The MySQL server accepts stored programs (and MariaDB `BEGIN NOT ATOMIC`
/// blocks) whose bodies contain `;`. Without a `DELIMITER`, such a statement
/// ends at the first `;` outside every `BEGIN`/`IF`/`CASE`/`LOOP`/`WHILE`/
/// `REPEAT`/`FOR` block.
struct MysqlTracker {
    head: MysqlHead,
    begin_pos: usize,
    is_event: bool,
    stack: Vec<Block>,
    pending: Pending,
    /// The next token starts a statement (inside a stored program body).
    stmt_ctx: bool,
    /// The previous token was `.` or `@`: the next word is a name.
    after_qualifier: bool,
}

impl MysqlTracker {
    fn new() -> Self {
        MysqlTracker {
            head: MysqlHead::Start,
            begin_pos: 0,
            is_event: false,
            stack: Vec::new(),
            pending: Pending::None,
            stmt_ctx: false,
            after_qualifier: false,
        }
    }

    fn feed(&mut self, tok: Tok<'_>, pos: usize) {
        match self.head {
            MysqlHead::Compound => self.block(tok, pos),
            MysqlHead::Plain => {}
            _ => self.header(tok, pos),
        }
    }

    /// Recognises `CREATE [OR REPLACE] [DEFINER = user] [SQL SECURITY x]
    /// [AGGREGATE] PROCEDURE|FUNCTION|TRIGGER|EVENT` and `BEGIN NOT ATOMIC`.
    fn header(&mut self, tok: Tok<'_>, pos: usize) {
        loop {
            let word = tok.word();
            self.head = match self.head {
                MysqlHead::Start if kw(word, "CREATE") => MysqlHead::Create,
                MysqlHead::Start if kw(word, "BEGIN") => {
                    self.begin_pos = pos;
                    MysqlHead::Begin
                }
                MysqlHead::Begin if kw(word, "NOT") => MysqlHead::BeginNot,
                MysqlHead::BeginNot if kw(word, "ATOMIC") => {
                    self.push(self.begin_pos, "BEGIN", false);
                    self.stmt_ctx = true;
                    MysqlHead::Compound
                }
                MysqlHead::Create if kw(word, "OR") => MysqlHead::CreateOr,
                MysqlHead::CreateOr if kw(word, "REPLACE") => MysqlHead::Create,
                MysqlHead::Create if kw(word, "DEFINER") => MysqlHead::DefinerEq,
                MysqlHead::Create if kw(word, "SQL") => MysqlHead::Sql,
                MysqlHead::Create if kw(word, "AGGREGATE") => MysqlHead::Create,
                MysqlHead::Create if kw_any(word, &["PROCEDURE", "FUNCTION", "TRIGGER"]) => {
                    MysqlHead::Compound
                }
                MysqlHead::Create if kw(word, "EVENT") => {
                    self.is_event = true;
                    MysqlHead::Compound
                }
                MysqlHead::DefinerEq if tok == Tok::Punct(b'=') => MysqlHead::DefinerUser,
                MysqlHead::DefinerUser => MysqlHead::DefinerAfterUser,
                MysqlHead::DefinerAfterUser => match tok {
                    Tok::Punct(b'@') => MysqlHead::DefinerHost,
                    // CURRENT_USER()
                    Tok::Punct(b'(' | b')') => MysqlHead::DefinerAfterUser,
                    _ => {
                        self.head = MysqlHead::Create;
                        continue;
                    }
                },
                MysqlHead::DefinerHost => MysqlHead::DefinerHostMore,
                MysqlHead::DefinerHostMore => match tok {
                    Tok::Punct(b'.') => MysqlHead::DefinerHost,
                    Tok::Word(w) if !w.starts_with(|c: char| c.is_ascii_digit()) => {
                        self.head = MysqlHead::Create;
                        continue;
                    }
                    _ => MysqlHead::DefinerHostMore,
                },
                MysqlHead::Sql if kw(word, "SECURITY") => MysqlHead::SqlSecurity,
                MysqlHead::SqlSecurity if word.is_some() => MysqlHead::Create,
                _ => MysqlHead::Plain,
            };
            return;
        }
    }

    fn push(&mut self, pos: usize, keyword: &'static str, expr: bool) {
        self.stack.push(Block { pos, keyword, expr });
    }

    fn in_case_expr(&self) -> bool {
        self.stack.last().is_some_and(|b| b.expr)
    }

    /// Block counting inside a stored program.
    fn block(&mut self, tok: Tok<'_>, pos: usize) {
        let after_qualifier = self.after_qualifier;
        self.after_qualifier = matches!(tok, Tok::Punct(b'.' | b'@'));
        let stmt = self.stmt_ctx;
        let word = if after_qualifier { None } else { tok.word() };
        let paren = tok == Tok::Punct(b'(');

        let mut swallowed = false;
        match mem::replace(&mut self.pending, Pending::None) {
            Pending::None => {}
            Pending::Begin(p) => {
                if !(kw(word, "WORK") || tok == Tok::Punct(b';')) {
                    self.push(p, "BEGIN", false);
                }
            }
            Pending::If { pos: p, stmt: s } => {
                if paren {
                    // `IF (cond) THEN` statement, or the IF() function.
                    if s {
                        self.push(p, "IF", false);
                    }
                } else if kw(word, "EXISTS") {
                    self.pending = Pending::IfExists(p);
                } else if kw(word, "NOT") {
                    self.pending = Pending::IfNot(p);
                } else {
                    self.push(p, "IF", false);
                }
            }
            Pending::IfNot(p) => {
                if kw(word, "EXISTS") {
                    self.pending = Pending::IfExists(p);
                } else {
                    self.push(p, "IF", false);
                }
            }
            Pending::IfExists(p) => {
                // `IF [NOT] EXISTS (subquery) THEN` is a statement;
                // `IF [NOT] EXISTS name` is a DDL clause.
                if paren {
                    self.push(p, "IF", false);
                }
            }
            Pending::Repeat { pos: p, stmt: s } => {
                if !paren || s {
                    self.push(p, "REPEAT", false);
                }
            }
            Pending::End => {
                swallowed = kw_any(word, &["IF", "CASE", "LOOP", "WHILE", "REPEAT", "FOR"]);
            }
            Pending::For(p) => {
                if word.is_some() && !kw_any(word, BLOCK_KEYWORDS) {
                    self.pending = Pending::ForVar(p);
                }
            }
            Pending::ForVar(p) => {
                // MariaDB `FOR var IN ... DO ... END FOR`.
                if kw(word, "IN") {
                    self.push(p, "FOR", false);
                }
            }
        }

        if !swallowed && let Some(w) = word {
            if w.eq_ignore_ascii_case("BEGIN") {
                self.pending = Pending::Begin(pos);
            } else if w.eq_ignore_ascii_case("IF") {
                self.pending = Pending::If { pos, stmt };
            } else if w.eq_ignore_ascii_case("REPEAT") {
                self.pending = Pending::Repeat { pos, stmt };
            } else if w.eq_ignore_ascii_case("CASE") {
                self.push(pos, "CASE", !stmt);
            } else if w.eq_ignore_ascii_case("LOOP") {
                self.push(pos, "LOOP", false);
            } else if w.eq_ignore_ascii_case("WHILE") {
                self.push(pos, "WHILE", false);
            } else if w.eq_ignore_ascii_case("FOR") {
                self.pending = Pending::For(pos);
            } else if w.eq_ignore_ascii_case("END") {
                self.stack.pop();
                self.pending = Pending::End;
            }
        }

        self.stmt_ctx = match tok {
            Tok::Punct(b';' | b')') | Tok::Opaque => true,
            Tok::Punct(_) | Tok::Comment => false,
            Tok::Word(_) if swallowed => false,
            Tok::Word(_) if word.is_none() => true,
            Tok::Word(w) => {
                if kw_any(Some(w), &["THEN", "ELSE"]) {
                    !self.in_case_expr()
                } else if w.eq_ignore_ascii_case("DO") {
                    match self.stack.last() {
                        Some(b) => matches!(b.keyword, "WHILE" | "FOR"),
                        None => self.is_event,
                    }
                } else {
                    !kw_any(Some(w), EXPR_KEYWORDS)
                }
            }
        };
    }

    fn unclosed(&self) -> Option<(usize, String)> {
        let block = self.stack.last()?;
        let closer = match block.keyword {
            "BEGIN" => "END",
            "CASE" if block.expr => "END",
            "CASE" => "END CASE",
            "IF" => "END IF",
            "LOOP" => "END LOOP",
            "WHILE" => "END WHILE",
            "REPEAT" => "END REPEAT",
            _ => "END FOR",
        };
        Some((
            block.pos,
            format!(
                "`{}` opened here has no matching `{closer}` before the end of the file; add \
                 the missing `{closer}`, or, if the statement is right as written, put it \
                 between a `DELIMITER //` line and a `//` terminator (then `DELIMITER ;`)",
                block.keyword
            ),
        ))
    }
}

/// The splitter proper: one left-to-right pass over the input.
struct Splitter<'a> {
    input: &'a str,
    bytes: &'a [u8],
    engine: Engine,
    goose: bool,
    pos: usize,
    out: Vec<Segment>,
    /// End of the last segment pushed to `out`.
    emitted: usize,
    current: Option<Current>,
    /// MySQL custom delimiter; `None` means `;`.
    delimiter: Option<&'a str>,
}

impl<'a> Splitter<'a> {
    fn new(input: &'a str, engine: Engine, goose: bool) -> Self {
        Splitter {
            input,
            bytes: input.as_bytes(),
            engine,
            goose,
            pos: 0,
            out: Vec::new(),
            emitted: 0,
            current: None,
            delimiter: None,
        }
    }

    fn run(mut self) -> Result<Vec<Segment>, SplitError> {
        let len = self.bytes.len();
        while self.pos < len {
            if self.goose && self.at_line_start() && self.goose_line()? {
                continue;
            }
            let start = self.pos;
            if is_ws(self.bytes[start]) {
                self.pos += 1;
                continue;
            }
            if let Some(delimiter) = self.delimiter
                && self.bytes[start..].starts_with(delimiter.as_bytes())
            {
                self.end_statement(start);
                self.pos = start + delimiter.len();
                continue;
            }
            let (tok, end) = match self.engine {
                Engine::Postgres => self.lex_pg(start)?,
                Engine::Mysql => self.lex_mysql(start)?,
            };
            self.pos = end;
            if tok == Tok::Comment {
                continue;
            }
            let semicolon = tok == Tok::Punct(b';') && self.delimiter.is_none();
            if self.current.is_none() {
                if semicolon {
                    // An empty statement.
                    continue;
                }
                if self.engine == Engine::Mysql
                    && let Tok::Word(w) = tok
                    && w.eq_ignore_ascii_case("DELIMITER")
                {
                    self.delimiter_directive(start, end)?;
                    continue;
                }
                let tracker = match (self.engine, self.delimiter) {
                    (Engine::Postgres, _) => Tracker::Pg(PgTracker::new()),
                    (Engine::Mysql, None) => Tracker::Mysql(MysqlTracker::new()),
                    (Engine::Mysql, Some(_)) => Tracker::Off,
                };
                self.current = Some(Current { start, tracker });
            }
            let Some(current) = self.current.as_mut() else {
                continue;
            };
            current.tracker.feed(tok, start);
            if semicolon && current.tracker.can_terminate() {
                self.check_refusal()?;
                self.end_statement(start);
            }
        }
        if let Some(current) = &self.current
            && let Some((pos, message)) = current.tracker.unclosed()
        {
            return Err(self.error(pos, message));
        }
        self.check_refusal()?;
        self.end_statement(len);
        self.push_gap(len);
        Ok(self.out)
    }

    fn error(&self, pos: usize, message: String) -> SplitError {
        let (line, column) = line_col(self.input, pos);
        SplitError {
            line,
            column,
            message,
        }
    }

    /// Fails if the complete current statement cannot be run.
    fn check_refusal(&self) -> Result<(), SplitError> {
        match &self.current {
            Some(current) => match current.tracker.refusal() {
                Some(message) => Err(self.error(current.start, message)),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    fn at_line_start(&self) -> bool {
        self.pos == 0 || self.bytes[self.pos - 1] == b'\n'
    }

    /// Records everything since the last segment, up to `end`, as gap.
    fn push_gap(&mut self, end: usize) {
        if end <= self.emitted {
            return;
        }
        match self.out.last_mut() {
            Some(last) if last.kind == SegmentKind::Gap && last.range.end == self.emitted => {
                last.range.end = end;
            }
            _ => self.out.push(Segment {
                kind: SegmentKind::Gap,
                range: self.emitted..end,
            }),
        }
        self.emitted = end;
    }

    fn push_statement(&mut self, start: usize, end: usize) {
        self.push_gap(start);
        self.out.push(Segment {
            kind: SegmentKind::Statement,
            range: start..end,
        });
        self.emitted = end;
    }

    /// Ends the current statement (if any) just before `terminator`.
    fn end_statement(&mut self, terminator: usize) {
        if let Some(current) = self.current.take() {
            let end = trim_end_ws(self.bytes, current.start, terminator);
            self.push_statement(current.start, end);
        }
    }

    /// Handles a goose annotation line at `self.pos` (a line start); returns
    /// whether there was one.
    fn goose_line(&mut self) -> Result<bool, SplitError> {
        let bytes = self.bytes;
        let first = self.pos
            + bytes[self.pos..]
                .iter()
                .position(|&b| b == b'\n' || !is_ws(b))
                .unwrap_or(bytes.len() - self.pos);
        if !bytes[first..].starts_with(b"--") {
            return Ok(false);
        }
        let (content_end, next) = line_bounds(bytes, self.pos);
        let Some(mark) = goose_mark(&bytes[self.pos..content_end]) else {
            return Ok(false);
        };
        if mark == GooseMark::End {
            return Err(self.error(
                first,
                "`-- +goose StatementEnd` without an open `-- +goose StatementBegin`; add a \
                 `-- +goose StatementBegin` line before the statement, or remove this line"
                    .to_string(),
            ));
        }
        if let Some(current) = &self.current {
            let (line, _) = line_col(self.input, first);
            return Err(self.error(
                current.start,
                format!(
                    "this statement is not terminated before the `-- +goose StatementBegin` on \
                     line {line}; end it with `;`"
                ),
            ));
        }
        let mut line_start = next;
        let (region_end, after) = loop {
            if line_start >= bytes.len() {
                return Err(self.error(
                    first,
                    "`-- +goose StatementBegin` has no matching `-- +goose StatementEnd`; add a \
                     `-- +goose StatementEnd` line after the statement"
                        .to_string(),
                ));
            }
            let (line_end, following) = line_bounds(bytes, line_start);
            if goose_mark(&bytes[line_start..line_end]) == Some(GooseMark::End) {
                break (line_start, following);
            }
            line_start = following;
        };
        let mut start = next;
        while start < region_end && is_ws(bytes[start]) {
            start += 1;
        }
        let mut end = trim_end_ws(bytes, start, region_end);
        if end > start && bytes[end - 1] == b';' {
            end = trim_end_ws(bytes, start, end - 1);
        }
        if end > start {
            self.push_statement(start, end);
        }
        self.pos = after;
        Ok(true)
    }

    /// Applies a MySQL `DELIMITER` directive whose keyword spans
    /// `keyword..keyword_end`; the rest of its line is consumed.
    fn delimiter_directive(
        &mut self,
        keyword: usize,
        keyword_end: usize,
    ) -> Result<(), SplitError> {
        let bytes = self.bytes;
        let (content_end, next) = line_bounds(bytes, keyword_end);
        let mut start = keyword_end;
        while start < content_end && is_ws(bytes[start]) {
            start += 1;
        }
        let mut end = start;
        while end < content_end && !is_ws(bytes[end]) {
            end += 1;
        }
        if start == end {
            return Err(self.error(
                keyword,
                "DELIMITER needs an argument on the same line: write e.g. `DELIMITER //` before \
                 the block and `DELIMITER ;` after it"
                    .to_string(),
            ));
        }
        let delimiter = &self.input[start..end];
        if delimiter.contains('\\') {
            return Err(self.error(
                start,
                format!(
                    "DELIMITER `{}` contains a backslash, which the mysql client does not \
                     allow; choose another delimiter such as `//` or `$$`",
                    excerpt(delimiter)
                ),
            ));
        }
        if delimiter.len() > MAX_DELIMITER_LEN {
            return Err(self.error(
                start,
                format!(
                    "DELIMITER `{}` is longer than {MAX_DELIMITER_LEN} bytes; choose a short \
                     delimiter such as `//` or `$$`",
                    excerpt(delimiter)
                ),
            ));
        }
        self.delimiter = (delimiter != ";").then_some(delimiter);
        self.pos = next;
        Ok(())
    }

    /// Scans a quoted token whose opening quote is at `quote`; `open` is where
    /// the token starts (before any prefix such as `E`). Doubled quotes always
    /// escape; with `backslash`, a backslash escapes the next byte too.
    fn quoted(
        &self,
        open: usize,
        quote: usize,
        backslash: bool,
        what: &str,
    ) -> Result<usize, SplitError> {
        let bytes = self.bytes;
        let q = bytes[quote];
        let mut i = quote + 1;
        while i < bytes.len() {
            let b = bytes[i];
            if backslash && b == b'\\' {
                i += 2;
            } else if b == q {
                if bytes.get(i + 1) == Some(&q) {
                    i += 2;
                } else {
                    return Ok(i + 1);
                }
            } else {
                i += 1;
            }
        }
        let q = char::from(q);
        let hint = if backslash {
            format!(
                " (a backslash escapes the next character here, so a `\\{q}` does not close it)"
            )
        } else {
            String::new()
        };
        Err(self.error(
            open,
            format!("unterminated {what} (opened here); close it with `{q}`{hint}"),
        ))
    }

    /// Scans one PostgreSQL token starting at `s` (not whitespace).
    fn lex_pg(&self, s: usize) -> Result<(Tok<'a>, usize), SplitError> {
        let bytes = self.bytes;
        let len = bytes.len();
        let b = bytes[s];
        let next = bytes.get(s + 1).copied();
        match b {
            b'-' if next == Some(b'-') => Ok((Tok::Comment, line_bounds(bytes, s).0)),
            b'/' if next == Some(b'*') => Ok((Tok::Comment, self.pg_block_comment(s)?)),
            b'\'' => Ok((Tok::Opaque, self.quoted(s, s, false, "string literal")?)),
            b'"' => Ok((Tok::Opaque, self.quoted(s, s, false, "quoted identifier")?)),
            b'$' => self.pg_dollar(s),
            b'\\' => {
                let end = bytes[s..]
                    .iter()
                    .position(|&c| is_ws(c))
                    .map_or(len, |n| s + n);
                Err(self.error(
                    s,
                    format!(
                        "psql meta-command `{}` is not supported in migration files (they are \
                         sent to the server, not run through psql); remove it or replace it \
                         with plain SQL",
                        excerpt(&self.input[s..end])
                    ),
                ))
            }
            b'0'..=b'9' => {
                let mut end = s + 1;
                while end < len && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                    end += 1;
                }
                Ok((Tok::Opaque, end))
            }
            _ if is_pg_ident_start(b) => {
                let mut end = s + 1;
                while end < len && is_pg_ident_cont(bytes[end]) {
                    end += 1;
                }
                let word = &self.input[s..end];
                match (word, bytes.get(end)) {
                    ("E" | "e", Some(b'\'')) => Ok((
                        Tok::Opaque,
                        self.quoted(s, end, true, "escape string E'...'")?,
                    )),
                    ("B" | "b" | "X" | "x" | "N" | "n", Some(b'\'')) => {
                        Ok((Tok::Opaque, self.quoted(s, end, false, "string literal")?))
                    }
                    ("U" | "u", Some(b'&')) if matches!(bytes.get(end + 1), Some(b'\'' | b'"')) => {
                        let what = if bytes[end + 1] == b'"' {
                            "quoted identifier"
                        } else {
                            "string literal"
                        };
                        Ok((Tok::Opaque, self.quoted(s, end + 1, false, what)?))
                    }
                    _ => Ok((Tok::Word(word), end)),
                }
            }
            _ => Ok((Tok::Punct(b), s + 1)),
        }
    }

    /// Scans a (nesting) PostgreSQL block comment opened at `s`.
    fn pg_block_comment(&self, s: usize) -> Result<usize, SplitError> {
        let bytes = self.bytes;
        let mut depth = 1usize;
        let mut i = s + 2;
        while i + 1 < bytes.len() {
            match (bytes[i], bytes[i + 1]) {
                (b'/', b'*') => {
                    depth += 1;
                    i += 2;
                }
                (b'*', b'/') => {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        return Ok(i);
                    }
                }
                _ => i += 1,
            }
        }
        Err(self.error(
            s,
            "unterminated block comment (opened here); close it with `*/` (block comments nest \
             in PostgreSQL, so every `/*` inside it needs its own `*/`)"
                .to_string(),
        ))
    }

    /// Scans what starts with `$` at `s`: a parameter (`$1`), a dollar-quoted
    /// string (`$$...$$`, `$tag$...$tag$`) or a lone `$`.
    fn pg_dollar(&self, s: usize) -> Result<(Tok<'a>, usize), SplitError> {
        let bytes = self.bytes;
        let len = bytes.len();
        let mut end = s + 1;
        if end < len && bytes[end].is_ascii_digit() {
            while end < len && bytes[end].is_ascii_digit() {
                end += 1;
            }
            return Ok((Tok::Opaque, end));
        }
        if end < len && is_pg_ident_start(bytes[end]) {
            end += 1;
            while end < len && is_dollar_tag_cont(bytes[end]) {
                end += 1;
            }
        }
        if end >= len || bytes[end] != b'$' {
            return Ok((Tok::Punct(b'$'), s + 1));
        }
        let tag = &self.input[s..=end];
        let body = end + 1;
        match self.input[body..].find(tag) {
            Some(offset) => Ok((Tok::Opaque, body + offset + tag.len())),
            None => Err(self.error(
                s,
                format!(
                    "unterminated dollar-quoted string {tag} (opened here); close it with {tag}",
                    tag = excerpt(tag)
                ),
            )),
        }
    }

    /// Scans one MySQL token starting at `s` (not whitespace, not the custom
    /// delimiter).
    fn lex_mysql(&self, s: usize) -> Result<(Tok<'a>, usize), SplitError> {
        let bytes = self.bytes;
        let len = bytes.len();
        let b = bytes[s];
        let next = bytes.get(s + 1).copied();
        match b {
            b'#' => Ok((Tok::Comment, line_bounds(bytes, s).0)),
            b'-' if next == Some(b'-') && bytes.get(s + 2).is_none_or(|&c| c <= b' ') => {
                Ok((Tok::Comment, line_bounds(bytes, s).0))
            }
            b'/' if next == Some(b'*') => {
                let rest = &bytes[s + 2..];
                let executable = rest.starts_with(b"!") || rest.starts_with(b"M!");
                match rest.windows(2).position(|w| w == b"*/") {
                    Some(offset) => {
                        let tok = if executable {
                            Tok::Opaque
                        } else {
                            Tok::Comment
                        };
                        Ok((tok, s + 2 + offset + 2))
                    }
                    None => Err(self.error(
                        s,
                        format!(
                            "unterminated {} (opened here); close it with `*/`",
                            if executable {
                                "executable comment `/*!`"
                            } else {
                                "block comment"
                            }
                        ),
                    )),
                }
            }
            b'\'' => Ok((Tok::Opaque, self.quoted(s, s, true, "string literal")?)),
            b'"' => Ok((
                Tok::Opaque,
                self.quoted(s, s, true, "double-quoted string")?,
            )),
            b'`' => Ok((Tok::Opaque, self.quoted(s, s, false, "quoted identifier")?)),
            _ if is_mysql_word(b) => {
                let delimiter = self.delimiter.map(str::as_bytes);
                let mut end = s + 1;
                while end < len
                    && is_mysql_word(bytes[end])
                    && !delimiter.is_some_and(|d| bytes[end..].starts_with(d))
                {
                    end += 1;
                }
                Ok((Tok::Word(&self.input[s..end]), end))
            }
            _ => Ok((Tok::Punct(b), s + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG: Engine = Engine::Postgres;
    const MY: Engine = Engine::Mysql;

    fn sqls(input: &str, engine: Engine, goose: bool) -> Vec<&str> {
        match split(input, engine, goose) {
            Ok(statements) => statements.iter().map(|s| s.sql).collect(),
            Err(e) => panic!("unexpected error: {e}\ninput:\n{input}"),
        }
    }

    fn pg(input: &str) -> Vec<&str> {
        sqls(input, PG, false)
    }

    fn my(input: &str) -> Vec<&str> {
        sqls(input, MY, false)
    }

    fn err(input: &str, engine: Engine, goose: bool) -> SplitError {
        match split(input, engine, goose) {
            Ok(statements) => panic!("expected an error, got {statements:?}"),
            Err(e) => e,
        }
    }

    /// Checks every invariant the runner relies on; returns the statements.
    fn check_invariants<'a>(
        input: &'a str,
        engine: Engine,
        goose: bool,
    ) -> Option<Vec<Statement<'a>>> {
        let segs = segments(input, engine, goose).ok()?;
        let mut expected_start = 0;
        let mut joined = String::with_capacity(input.len());
        for seg in &segs {
            assert_eq!(
                seg.range.start, expected_start,
                "segments not contiguous: {segs:?} for {input:?}"
            );
            assert!(
                seg.range.end > seg.range.start,
                "empty segment in {segs:?} for {input:?}"
            );
            joined.push_str(&input[seg.range.clone()]);
            expected_start = seg.range.end;
        }
        assert_eq!(
            expected_start,
            input.len(),
            "segments do not reach the end for {input:?}"
        );
        assert_eq!(joined, input);
        let statements = split(input, engine, goose).expect("split agrees with segments");
        let statement_segs: Vec<_> = segs
            .iter()
            .filter(|s| s.kind == SegmentKind::Statement)
            .collect();
        assert_eq!(statement_segs.len(), statements.len());
        for (stmt, seg) in statements.iter().zip(statement_segs) {
            assert!(!stmt.sql.is_empty(), "empty statement for {input:?}");
            assert_eq!(stmt.start, seg.range.start);
            assert_eq!(stmt.sql, &input[stmt.start..stmt.start + stmt.sql.len()]);
            assert_eq!((stmt.line, stmt.column), line_col(input, stmt.start));
            assert!(!stmt.sql.starts_with(|c: char| c.is_ascii_whitespace()));
            assert!(!stmt.sql.ends_with(|c: char| c.is_ascii_whitespace()));
        }
        Some(statements)
    }

    // ---------------------------------------------------------------- basics

    #[test]
    fn simple_multi_statement_file() {
        let input = "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n\n  SELECT 1 ;  \n";
        let expected = vec![
            "CREATE TABLE a (id int)",
            "INSERT INTO a VALUES (1)",
            "SELECT 1",
        ];
        assert_eq!(pg(input), expected);
        assert_eq!(my(input), expected);
    }

    #[test]
    fn final_statement_without_terminator() {
        assert_eq!(pg("SELECT 1;\nSELECT 2\n"), vec!["SELECT 1", "SELECT 2"]);
        assert_eq!(my("SELECT 1;\nSELECT 2"), vec!["SELECT 1", "SELECT 2"]);
    }

    #[test]
    fn empty_and_comment_only_inputs() {
        for engine in [PG, MY] {
            assert!(sqls("", engine, false).is_empty());
            assert!(sqls(" \n\t\n", engine, false).is_empty());
            assert!(sqls(";;;\n; ;", engine, false).is_empty());
            assert!(sqls("-- only a comment\n/* and a block */\n", engine, false).is_empty());
            assert_eq!(
                sqls("SELECT 1;;;SELECT 2;", engine, false),
                vec!["SELECT 1", "SELECT 2"]
            );
        }
        assert!(pg("-- trailing").is_empty());
        assert!(my("# hash comment").is_empty());
    }

    #[test]
    fn leading_comments_belong_to_the_gap() {
        let input = "-- header\n/* block */ SELECT 1; -- tail\n";
        let statements = split(input, PG, false).unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0].sql, "SELECT 1");
        assert_eq!((statements[0].line, statements[0].column), (2, 13));
        let segs = segments(input, PG, false).unwrap();
        assert_eq!(
            segs,
            vec![
                Segment {
                    kind: SegmentKind::Gap,
                    range: 0..22
                },
                Segment {
                    kind: SegmentKind::Statement,
                    range: 22..30
                },
                Segment {
                    kind: SegmentKind::Gap,
                    range: 30..input.len()
                },
            ]
        );
    }

    #[test]
    fn comments_inside_a_statement_stay_in_it() {
        assert_eq!(pg("SELECT 1 -- one\n + 1;"), vec!["SELECT 1 -- one\n + 1"]);
        assert_eq!(pg("SELECT 1 -- one\n;"), vec!["SELECT 1 -- one"]);
    }

    // ------------------------------------------------------------ PostgreSQL

    #[test]
    fn pg_strings_hide_terminators_and_comment_starts() {
        let input = "INSERT INTO t VALUES ('a;b', 'it''s -- not', '/* no', '$$');\nSELECT 2;";
        assert_eq!(
            pg(input),
            vec![
                "INSERT INTO t VALUES ('a;b', 'it''s -- not', '/* no', '$$')",
                "SELECT 2"
            ]
        );
        assert_eq!(
            pg("SELECT \"a;b\"\"c\" FROM t; SELECT 2"),
            vec!["SELECT \"a;b\"\"c\" FROM t", "SELECT 2"]
        );
    }

    #[test]
    fn pg_backslash_is_plain_in_standard_strings() {
        assert_eq!(
            pg(r"SELECT 'C:\'; SELECT 2;"),
            vec![r"SELECT 'C:\'", "SELECT 2"]
        );
    }

    #[test]
    fn pg_escape_strings() {
        let input = r"SELECT E'it\'s; fine', e'\\'; SELECT 2;";
        assert_eq!(pg(input), vec![r"SELECT E'it\'s; fine', e'\\'", "SELECT 2"]);
        // An identifier ending in e is not an escape-string prefix.
        assert_eq!(
            pg(r"SELECT some'\'; SELECT 2;"),
            vec![r"SELECT some'\'", "SELECT 2"]
        );
        assert_eq!(
            pg("SELECT U&'d\\0061t;a', U&\"x;y\"; SELECT 2"),
            vec!["SELECT U&'d\\0061t;a', U&\"x;y\"", "SELECT 2"]
        );
    }

    #[test]
    fn pg_dollar_quotes() {
        let input = "SELECT $$a;b$$; SELECT $fn$ x $$ y; $inner$ z $fn$; SELECT $a$$a$;";
        assert_eq!(
            pg(input),
            vec![
                "SELECT $$a;b$$",
                "SELECT $fn$ x $$ y; $inner$ z $fn$",
                "SELECT $a$$a$"
            ]
        );
        assert_eq!(
            pg("SELECT $é$ ; $é$; SELECT 2"),
            vec!["SELECT $é$ ; $é$", "SELECT 2"]
        );
    }

    #[test]
    fn pg_positional_parameters_and_dollar_identifiers() {
        assert_eq!(
            pg("SELECT $1, $22; SELECT 2"),
            vec!["SELECT $1, $22", "SELECT 2"]
        );
        // `a$b$` is an identifier, not a dollar quote opener.
        assert_eq!(
            pg("SELECT a$b$ FROM t; SELECT 2"),
            vec!["SELECT a$b$ FROM t", "SELECT 2"]
        );
        assert_eq!(pg("SELECT $ ; SELECT 2"), vec!["SELECT $", "SELECT 2"]);
    }

    #[test]
    fn pg_nested_block_comments() {
        let input = "/* outer /* inner; */ still comment; */ SELECT 1; /* a */ /* b /* c */ */";
        assert_eq!(pg(input), vec!["SELECT 1"]);
        // MySQL does not nest: the first `*/` closes the comment.
        assert_eq!(my("/* a /* b */ SELECT 1;"), vec!["SELECT 1"]);
    }

    #[test]
    fn pg_plpgsql_function_and_do_block() {
        let input = "\
CREATE OR REPLACE FUNCTION bump() RETURNS trigger AS $$
BEGIN
  NEW.updated_at := now(); -- keep ; inside
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app') THEN
    CREATE ROLE app;
  END IF;
END
$$;
CREATE TRIGGER t BEFORE UPDATE ON x FOR EACH ROW EXECUTE FUNCTION bump();
";
        let statements = pg(input);
        assert_eq!(statements.len(), 3);
        assert!(statements[0].starts_with("CREATE OR REPLACE FUNCTION"));
        assert!(statements[0].ends_with("$$ LANGUAGE plpgsql"));
        assert!(statements[1].starts_with("DO $$") && statements[1].ends_with("END\n$$"));
        assert!(statements[2].starts_with("CREATE TRIGGER"));
    }

    #[test]
    fn pg_create_index_concurrently() {
        let input = "CREATE INDEX CONCURRENTLY idx_a ON a (b);\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_c ON a (c);";
        assert_eq!(
            pg(input),
            vec![
                "CREATE INDEX CONCURRENTLY idx_a ON a (b)",
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_c ON a (c)"
            ]
        );
    }

    #[test]
    fn pg_begin_atomic_body_with_case() {
        let input = "\
CREATE FUNCTION grade(score int) RETURNS text
LANGUAGE sql
BEGIN /* comment */ ATOMIC
  SELECT CASE WHEN score > 90 THEN 'A' ELSE 'B' END;
  SELECT CASE score WHEN 1 THEN 'x' END;
END;
SELECT grade(95);
create or replace procedure p() begin atomic insert into t values (1); end;
";
        let statements = pg(input);
        assert_eq!(statements.len(), 3, "{statements:#?}");
        assert!(statements[0].ends_with("'x' END;\nEND"));
        assert_eq!(statements[1], "SELECT grade(95)");
        assert_eq!(
            statements[2],
            "create or replace procedure p() begin atomic insert into t values (1); end"
        );
        // BEGIN alone, and BEGIN ATOMIC outside a routine, are ordinary.
        assert_eq!(
            pg("BEGIN; SELECT 1; COMMIT;"),
            vec!["BEGIN", "SELECT 1", "COMMIT"]
        );
        // A CASE outside the body does not nest.
        assert_eq!(
            pg("CREATE FUNCTION f(a int) RETURNS int RETURN CASE WHEN a > 0 THEN 1 END; SELECT 2;"),
            vec![
                "CREATE FUNCTION f(a int) RETURNS int RETURN CASE WHEN a > 0 THEN 1 END",
                "SELECT 2"
            ]
        );
    }

    #[test]
    fn pg_parentheses_hide_semicolons_like_psql() {
        let input = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); SELECT 1;";
        assert_eq!(
            pg(input),
            vec![
                "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))",
                "SELECT 1"
            ]
        );
        let e = err("SELECT 1;\nINSERT INTO t VALUES (1;\nSELECT 2;", PG, false);
        assert_eq!((e.line, e.column), (2, 22));
        assert!(e.message.contains("`(`"), "{}", e.message);
    }

    #[test]
    fn pg_copy_from_stdin_is_rejected() {
        let e = err(
            "SELECT 1;\n  COPY t (a, b) FROM stdin;\n1\t2\n\\.\n",
            PG,
            false,
        );
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.message.contains("COPY ... FROM STDIN"), "{}", e.message);
        assert_eq!(err("copy t from STDIN", PG, false).line, 1);
        assert_eq!(
            pg("COPY (SELECT a FROM t) TO STDOUT; COPY t FROM '/tmp/x.csv';"),
            vec![
                "COPY (SELECT a FROM t) TO STDOUT",
                "COPY t FROM '/tmp/x.csv'"
            ]
        );
    }

    #[test]
    fn pg_unclosed_begin_atomic_is_an_error() {
        let e = err(
            "SELECT 1;\nCREATE PROCEDURE p() BEGIN ATOMIC SELECT 1;",
            PG,
            false,
        );
        assert_eq!((e.line, e.column), (2, 22));
        assert!(e.message.contains("BEGIN ATOMIC"));
    }

    #[test]
    fn pg_meta_commands_are_rejected() {
        let e = err("SELECT 1;\n  \\connect other\nSELECT 2;", PG, false);
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.message.contains("\\connect"), "{}", e.message);
        assert!(e.message.contains("meta-command"));
        let e = err("\\i other.sql", PG, false);
        assert_eq!((e.line, e.column), (1, 1));
        // In strings and comments a backslash is harmless.
        assert_eq!(pg("-- \\connect\nSELECT '\\x';"), vec!["SELECT '\\x'"]);
    }

    #[test]
    fn pg_unterminated_tokens_report_their_opening() {
        let e = err("SELECT 1;\nSELECT 'abc;\n", PG, false);
        assert_eq!((e.line, e.column), (2, 8));
        assert!(e.message.contains("string literal"), "{}", e.message);
        let e = err("SELECT 1;\n  SELECT $fn$ body", PG, false);
        assert_eq!((e.line, e.column), (2, 10));
        assert_eq!(
            e.message,
            "unterminated dollar-quoted string $fn$ (opened here); close it with $fn$"
        );
        let e = err("SELECT 1; /* a /* b */\nSELECT 2;", PG, false);
        assert_eq!((e.line, e.column), (1, 11));
        assert!(e.message.contains("*/"));
        let e = err("SELECT \"abc", PG, false);
        assert_eq!((e.line, e.column), (1, 8));
        let e = err("é SELECT E'abc\\'", PG, false);
        assert_eq!((e.line, e.column), (1, 10));
        assert_eq!(e.to_string(), format!("line 1, column 10: {}", e.message));
    }

    // ----------------------------------------------------------------- MySQL

    #[test]
    fn mysql_procedure_with_nested_blocks_without_delimiter() {
        let input = "\
CREATE PROCEDURE fill(IN n INT)
BEGIN
  DECLARE i INT DEFAULT 0;
  DECLARE done INT DEFAULT 0;
  outer_loop: LOOP
    SET i = i + 1;
    IF i > n THEN
      LEAVE outer_loop;
    ELSEIF i = 3 THEN
      ITERATE outer_loop;
    ELSE
      INSERT INTO t VALUES (i);
    END IF;
  END LOOP outer_loop;
  WHILE i > 0 DO
    SET i = i - 1;
  END WHILE;
  REPEAT
    SET i = i + 1;
  UNTIL i >= n END REPEAT;
  CASE i
    WHEN 1 THEN SELECT 'one';
    ELSE BEGIN
      SELECT 'other';
    END;
  END CASE;
  SET @x = CASE WHEN i > 1 THEN 'a' ELSE 'b' END;
END;
CALL fill(5);
";
        let statements = my(input);
        assert_eq!(statements.len(), 2, "{statements:#?}");
        assert!(statements[0].starts_with("CREATE PROCEDURE fill"));
        assert!(statements[0].ends_with("ELSE 'b' END;\nEND"));
        assert_eq!(statements[1], "CALL fill(5)");
    }

    #[test]
    fn mysql_if_function_and_if_exists_inside_procedure() {
        let input = "\
CREATE PROCEDURE p()
BEGIN
  DROP TABLE IF EXISTS tmp;
  CREATE TABLE IF NOT EXISTS tmp (a INT);
  SELECT IF(a > 1, 'x', 'y'), REPEAT('-', 3) FROM tmp;
  SET @v = IF (1, 2, 3);
  IF (SELECT COUNT(*) FROM tmp) > 0 THEN
    SELECT 1;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE column_name = 'b') THEN
    ALTER TABLE tmp ADD COLUMN b INT;
  END IF;
  IF EXISTS (SELECT 1) THEN SELECT 2; END IF;
END;
SELECT 3;
";
        let statements = my(input);
        assert_eq!(statements.len(), 2, "{statements:#?}");
        assert_eq!(statements[1], "SELECT 3");
    }

    #[test]
    fn mysql_trigger_with_single_statement_body() {
        let input = "\
CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW SET NEW.created = IF(NEW.created IS NULL, NOW(), NEW.created);
CREATE TRIGGER trg2 AFTER INSERT ON t FOR EACH ROW INSERT INTO log VALUES (NEW.id);
CREATE TRIGGER trg3 BEFORE UPDATE ON t FOR EACH ROW IF NEW.a < 0 THEN SET NEW.a = 0; END IF;
SELECT 1;
";
        assert_eq!(
            my(input),
            vec![
                "CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW SET NEW.created = IF(NEW.created IS NULL, NOW(), NEW.created)",
                "CREATE TRIGGER trg2 AFTER INSERT ON t FOR EACH ROW INSERT INTO log VALUES (NEW.id)",
                "CREATE TRIGGER trg3 BEFORE UPDATE ON t FOR EACH ROW IF NEW.a < 0 THEN SET NEW.a = 0; END IF",
                "SELECT 1",
            ]
        );
    }

    #[test]
    fn mysql_definer_and_other_header_forms() {
        let bodies = [
            "CREATE DEFINER=`root`@`localhost` PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
            "CREATE DEFINER = 'app'@'%' FUNCTION f() RETURNS INT DETERMINISTIC BEGIN DECLARE x INT; RETURN 1; END",
            "CREATE OR REPLACE DEFINER=app@localhost SQL SECURITY INVOKER PROCEDURE p() BEGIN SELECT 1; END",
            "CREATE DEFINER=CURRENT_USER() PROCEDURE p() BEGIN SELECT 1; END",
            "CREATE DEFINER=CURRENT_USER TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; END",
            "CREATE DEFINER='a'@127.0.0.1 EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN DELETE FROM x; END",
            "CREATE AGGREGATE FUNCTION IF NOT EXISTS agg(x INT) RETURNS INT BEGIN DECLARE s INT DEFAULT 0; LOOP FETCH GROUP NEXT ROW; SET s = s + x; END LOOP; END",
            "CREATE PROCEDURE IF NOT EXISTS p() BEGIN SELECT 1; END",
            "BEGIN NOT ATOMIC DECLARE x INT; IF x IS NULL THEN SELECT 1; END IF; END",
        ];
        for body in bodies {
            let input = format!("{body};\nSELECT 9;\n");
            assert_eq!(my(&input), vec![body, "SELECT 9"], "for {body}");
        }
        // Plain BEGIN starts a transaction.
        assert_eq!(
            my("BEGIN; INSERT INTO t VALUES (1); COMMIT;"),
            vec!["BEGIN", "INSERT INTO t VALUES (1)", "COMMIT"]
        );
        assert_eq!(my("BEGIN WORK; COMMIT"), vec!["BEGIN WORK", "COMMIT"]);
        // A view is not a stored program.
        assert_eq!(
            my("CREATE DEFINER=`a`@`b` VIEW v AS SELECT 1; SELECT 2"),
            vec!["CREATE DEFINER=`a`@`b` VIEW v AS SELECT 1", "SELECT 2"]
        );
    }

    #[test]
    fn mysql_handlers_cursors_labels_and_for_loops() {
        let input = "\
CREATE PROCEDURE p()
BEGIN
  DECLARE done INT DEFAULT FALSE;
  DECLARE c CURSOR FOR SELECT id FROM t;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = TRUE;
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; END;
  read_loop: LOOP
    FETCH c INTO @id;
    IF done THEN LEAVE read_loop; END IF;
  END LOOP read_loop;
  blk: BEGIN SELECT t.end, @if FROM t; END blk;
  FOR i IN 1..3 DO SELECT i; END FOR;
  CASE WHEN done THEN IF (1) THEN SELECT 1; END IF; ELSE SELECT 2; END CASE;
END;
SELECT 1;
";
        let statements = my(input);
        assert_eq!(statements.len(), 2, "{statements:#?}");
        assert_eq!(statements[1], "SELECT 1");
    }

    #[test]
    fn mysql_unbalanced_blocks_are_reported() {
        let input = "CREATE PROCEDURE p()\nBEGIN\n  IF x THEN SELECT 1;\nEND;\nSELECT 2;\n";
        let e = err(input, MY, false);
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("DELIMITER"), "{}", e.message);
        assert!(e.message.contains("`END`"), "{}", e.message);
    }

    #[test]
    fn mysql_delimiter_blocks() {
        let input = "\
DELIMITER //
CREATE PROCEDURE a()
BEGIN
  SELECT 1; SELECT '//';
END//
delimiter $$
CREATE FUNCTION b() RETURNS INT RETURN 1$$
CREATE TRIGGER c BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.x = 1; END $$
DELIMITER ;
SELECT 2;
DELIMITER ;;
SELECT 3;; SELECT 4;;
DELIMITER ;
";
        assert_eq!(
            my(input),
            vec![
                "CREATE PROCEDURE a()\nBEGIN\n  SELECT 1; SELECT '//';\nEND",
                "CREATE FUNCTION b() RETURNS INT RETURN 1",
                "CREATE TRIGGER c BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.x = 1; END",
                "SELECT 2",
                "SELECT 3",
                "SELECT 4",
            ]
        );
        let segs = segments(input, MY, false).unwrap();
        let gap = &input[segs[0].range.clone()];
        assert_eq!(gap, "DELIMITER //\n");
        // While a custom delimiter is active, `;` is ordinary text and no
        // block counting happens.
        assert_eq!(
            my("DELIMITER //\nSELECT 1; SELECT 2//"),
            vec!["SELECT 1; SELECT 2"]
        );
        assert_eq!(
            my("DELIMITER //\nBEGIN NOT ATOMIC SELECT 1; //"),
            vec!["BEGIN NOT ATOMIC SELECT 1;"]
        );
    }

    #[test]
    fn mysql_delimiter_errors() {
        let e = err("SELECT 1;\nDELIMITER\nSELECT 2;", MY, false);
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("argument"));
        let e = err("DELIMITER \\\\", MY, false);
        assert!(e.message.contains("backslash"));
        let e = err("DELIMITER abcdefghijklmnopqrstuvwxyz", MY, false);
        assert!(e.message.contains("longer"));
    }

    #[test]
    fn mysql_delimiter_only_at_statement_start() {
        // Inside a statement, DELIMITER is just a word.
        assert_eq!(my("SELECT a\nDELIMITER ;"), vec!["SELECT a\nDELIMITER"]);
        // PostgreSQL has no DELIMITER directive.
        assert_eq!(
            pg("DELIMITER //\nSELECT 1;"),
            vec!["DELIMITER //\nSELECT 1"]
        );
    }

    #[test]
    fn mysql_comments() {
        let input = "# hash; comment\nSELECT 1; -- dash; comment\nSELECT 2 --1;\nSELECT 3--\n;SELECT 4 #x;\n/* c; */SELECT 5";
        assert_eq!(
            my(input),
            vec![
                "SELECT 1",
                "SELECT 2 --1",
                "SELECT 3--",
                "SELECT 4 #x;\n/* c; */SELECT 5"
            ]
        );
        // `--x` is not a comment in MySQL: the `;` after it terminates.
        assert_eq!(my("SELECT 5--x;SELECT 6"), vec!["SELECT 5--x", "SELECT 6"]);
        assert_eq!(
            my("SELECT 5 --\tx;\n;SELECT 6"),
            vec!["SELECT 5 --\tx;", "SELECT 6"]
        );
        // `#` is not a comment in PostgreSQL.
        assert_eq!(
            pg("SELECT 1 # 2; SELECT 3"),
            vec!["SELECT 1 # 2", "SELECT 3"]
        );
    }

    #[test]
    fn mysql_executable_comments_are_statements() {
        let input = "/*!40101 SET NAMES utf8 */;\n/*!40014 SET @x = 'a;b' */;\n/*M!100100 SET @y=1 */;\n/* plain */;\n";
        assert_eq!(
            my(input),
            vec![
                "/*!40101 SET NAMES utf8 */",
                "/*!40014 SET @x = 'a;b' */",
                "/*M!100100 SET @y=1 */"
            ]
        );
        assert_eq!(my("SELECT 1 /*!; */ + 1;"), vec!["SELECT 1 /*!; */ + 1"]);
    }

    #[test]
    fn mysql_string_escapes() {
        let input = r#"INSERT INTO t VALUES ('it\'s; ok', 'a''b;', "x\";y", "p""q;", 'back\\');SELECT `we;ird``name` FROM t;"#;
        assert_eq!(
            my(input),
            vec![
                r#"INSERT INTO t VALUES ('it\'s; ok', 'a''b;', "x\";y", "p""q;", 'back\\')"#,
                "SELECT `we;ird``name` FROM t"
            ]
        );
        // Dollars are not quotes in MySQL.
        assert_eq!(my("SELECT $$a; SELECT 2"), vec!["SELECT $$a", "SELECT 2"]);
    }

    #[test]
    fn mysql_unterminated_tokens_report_their_opening() {
        let e = err("SELECT 1;\n\nSELECT 'a\\';", MY, false);
        assert_eq!((e.line, e.column), (3, 8));
        assert!(e.message.contains("backslash"), "{}", e.message);
        let e = err("SELECT `x", MY, false);
        assert_eq!((e.line, e.column), (1, 8));
        let e = err("SELECT 1; /* never closed", MY, false);
        assert_eq!((e.line, e.column), (1, 11));
        let e = err("日本 /*!40101 SET", MY, false);
        assert_eq!((e.line, e.column), (1, 4));
        assert!(e.message.contains("executable"));
    }

    // ----------------------------------------------------------------- goose

    #[test]
    fn goose_regions_on_both_engines() {
        let pg_input = "\
-- +goose Up
CREATE TABLE a (id int);
-- +goose StatementBegin
CREATE FUNCTION f() RETURNS int AS 'select 1; ' LANGUAGE sql;
SELECT 'unterminated here is fine
-- +goose StatementEnd
SELECT 2;
";
        assert_eq!(
            sqls(pg_input, PG, true),
            vec![
                "CREATE TABLE a (id int)",
                "CREATE FUNCTION f() RETURNS int AS 'select 1; ' LANGUAGE sql;\nSELECT 'unterminated here is fine",
                "SELECT 2",
            ]
        );
        let my_input = "\
-- +goose Up
  -- +goose StatementBegin
CREATE PROCEDURE p()
BEGIN
  IF x THEN SELECT 1;
END ;
  -- +goose StatementEnd
-- +goose Down
DROP PROCEDURE p;
";
        assert_eq!(
            sqls(my_input, MY, true),
            vec![
                "CREATE PROCEDURE p()\nBEGIN\n  IF x THEN SELECT 1;\nEND",
                "DROP PROCEDURE p"
            ]
        );
        let segs = segments(my_input, MY, true).unwrap();
        check_invariants(my_input, MY, true).unwrap();
        assert_eq!(segs.len(), 5);
        // Without goose handling the annotations are comments.
        assert_eq!(
            sqls(
                "-- +goose StatementBegin\nSELECT 1;\nSELECT 2;\n-- +goose StatementEnd\n",
                PG,
                false
            ),
            vec!["SELECT 1", "SELECT 2"]
        );
        // Empty regions produce nothing; CRLF works.
        assert!(
            sqls(
                "-- +goose StatementBegin\r\n;\r\n-- +goose StatementEnd\r\n",
                PG,
                true
            )
            .is_empty()
        );
        assert_eq!(
            sqls(
                "-- +goose StatementBegin\r\nSELECT 1;\r\n-- +goose StatementEnd",
                MY,
                true
            ),
            vec!["SELECT 1"]
        );
    }

    #[test]
    fn goose_errors() {
        let e = err("SELECT 1;\n-- +goose StatementBegin\nSELECT 2;\n", PG, true);
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("StatementEnd"));
        let e = err("SELECT 1;\n  -- +goose StatementEnd\n", MY, true);
        assert_eq!((e.line, e.column), (2, 3));
        let e = err(
            "SELECT 1\n-- +goose StatementBegin\nSELECT 2;\n-- +goose StatementEnd\n",
            PG,
            true,
        );
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.message.contains("line 2"));
        // Inside a string, an annotation is just text.
        assert_eq!(
            sqls("SELECT '\n-- +goose StatementEnd\n';", PG, true),
            vec!["SELECT '\n-- +goose StatementEnd\n'"]
        );
    }

    // ------------------------------------------------------------- positions

    #[test]
    fn positions_after_multiline_comments_and_multibyte_text() {
        let input = "/* première\n   ligne */ SELECT 'é;日';\n\t-- 日本語\n  SELECT 2;SELECT 3";
        let statements = split(input, PG, false).unwrap();
        let positions: Vec<_> = statements
            .iter()
            .map(|s| (s.sql, s.line, s.column))
            .collect();
        assert_eq!(
            positions,
            vec![
                ("SELECT 'é;日'", 2, 13),
                ("SELECT 2", 4, 3),
                ("SELECT 3", 4, 12)
            ]
        );
        for s in &statements {
            assert_eq!(&input[s.start..s.start + s.sql.len()], s.sql);
        }
    }

    #[test]
    fn line_col_with_multibyte_text() {
        let input = "aé日\nb𝄞c";
        assert_eq!(line_col(input, 0), (1, 1));
        assert_eq!(line_col(input, 1), (1, 2));
        assert_eq!(line_col(input, 3), (1, 3));
        assert_eq!(line_col(input, 6), (1, 4));
        assert_eq!(line_col(input, 7), (2, 1));
        assert_eq!(line_col(input, 8), (2, 2));
        assert_eq!(line_col(input, 12), (2, 3));
        assert_eq!(line_col(input, input.len()), (2, 4));
        assert_eq!(line_col(input, input.len() + 10), (2, 4));
        assert_eq!(line_col("", 0), (1, 1));
    }

    #[test]
    fn char_pos_to_byte_with_multibyte_text() {
        let input = "é日x𝄞y";
        assert_eq!(char_pos_to_byte(input, 1), 0);
        assert_eq!(char_pos_to_byte(input, 2), 2);
        assert_eq!(char_pos_to_byte(input, 3), 5);
        assert_eq!(char_pos_to_byte(input, 4), 6);
        assert_eq!(char_pos_to_byte(input, 5), 10);
        assert_eq!(char_pos_to_byte(input, 6), input.len());
        assert_eq!(char_pos_to_byte(input, 600), input.len());
        assert_eq!(char_pos_to_byte(input, 0), 0);
        assert_eq!(char_pos_to_byte("", 1), 0);
        // Mapping a server position inside a statement back to the file.
        let file = "-- é\nSELECT 'ü' + x;";
        let statement = split(file, PG, false).unwrap()[0];
        let byte = statement.start + char_pos_to_byte(statement.sql, 14);
        assert_eq!(&file[byte..byte + 1], "x");
        assert_eq!(line_col(file, byte), (2, 14));
    }

    // -------------------------------------------------------------- robustness

    #[test]
    fn large_input_splits_quickly() {
        let chunk = "INSERT INTO t VALUES (1, 'a;b', $$x$$); -- c\n/* d */\n";
        let input = chunk.repeat(60_000);
        let started = std::time::Instant::now();
        assert_eq!(pg(&input).len(), 60_000);
        let my_chunk = "INSERT INTO t VALUES (1, 'a;b', \"x\"); -- c\n/* d */\n";
        let my_input = my_chunk.repeat(60_000);
        assert_eq!(my(&my_input).len(), 60_000);
        let block = "CREATE PROCEDURE p() BEGIN IF a THEN SELECT 1; END IF; END;\n".repeat(20_000);
        assert_eq!(my(&block).len(), 20_000);
        // Generous bound: this is about complexity, not raw speed.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn pathological_inputs_stay_linear() {
        let started = std::time::Instant::now();
        for input in [
            "$a".repeat(200_000),
            "/*".repeat(200_000),
            "$$".repeat(200_001),
            "(".repeat(200_000),
            "BEGIN ".repeat(100_000),
            "CREATE PROCEDURE p() ".to_string() + &"BEGIN IF(".repeat(50_000),
            "\n".repeat(200_000),
            "-- +goose StatementBegin\n".repeat(50_000),
        ] {
            for engine in [PG, MY] {
                for goose in [false, true] {
                    let _ = check_invariants(&input, engine, goose);
                }
            }
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }

    /// xorshift64*: tiny deterministic PRNG for the randomized test.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[rustfmt::skip]
    const PIECES: &[&str] = &[
        ";", "'", "\"", "`", "$$", "$a$", "$1", "--", "-- ", "#", "/*", "*/", "/*!", "\\",
        "E'", "BEGIN", "END", "END IF", "IF", "IF(", "CASE", "LOOP", "REPEAT(",
        "DELIMITER //\n", "DELIMITER ;\n", "//", "CREATE PROCEDURE p() ", "BEGIN ATOMIC",
        "CREATE FUNCTION f() ", "\n", "\r\n", " ", "\t", "é", "日",
        "-- +goose StatementBegin\n", "-- +goose StatementEnd\n", "SELECT", "x", "t1", "(",
        ")", "WHILE", "REPEAT", "END LOOP", "NOT", "EXISTS", "ATOMIC", "''", "@", ".", "=",
        "\\connect", "FOR", "IN", "DO", "THEN", "ELSE", "U&'", "/*M!", "$",
    ];

    #[test]
    fn randomized_inputs_keep_the_invariants() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut ok = 0usize;
        for _ in 0..5_000 {
            let pieces = rng.below(40);
            let mut input = String::new();
            for _ in 0..pieces {
                let piece = PIECES[rng.below(PIECES.len())];
                input.push_str(piece);
                if rng.below(3) == 0 {
                    input.push(' ');
                }
            }
            for engine in [PG, MY] {
                for goose in [false, true] {
                    if check_invariants(&input, engine, goose).is_some() {
                        ok += 1;
                    }
                    // Errors must point inside the input.
                    if let Err(e) = split(&input, engine, goose) {
                        let (last_line, _) = line_col(&input, input.len());
                        assert!(e.line >= 1 && e.line <= last_line && e.column >= 1, "{e:?}");
                        assert!(!e.message.is_empty());
                    }
                }
            }
        }
        // Make sure the generator exercises the success path too.
        assert!(ok > 2_000, "only {ok} inputs split successfully");
    }

    #[test]
    fn randomized_arbitrary_characters_keep_the_invariants() {
        const EXTRA: &[char] = &[
            'é', '日', '𝄞', '\u{a0}', '\u{feff}', '\r', '\n', '\t', '\u{b}',
        ];
        let mut rng = XorShift(0xC0FF_EE12_3456_789B);
        for _ in 0..2_000 {
            let len = rng.below(60);
            let input: String = (0..len)
                .map(|_| {
                    if rng.below(8) == 0 {
                        EXTRA[rng.below(EXTRA.len())]
                    } else {
                        char::from(b' ' + rng.below(95) as u8)
                    }
                })
                .collect();
            for engine in [PG, MY] {
                for goose in [false, true] {
                    let _ = check_invariants(&input, engine, goose);
                }
            }
        }
    }
}
