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
const EXPR_KEYWORDS: &[&str] = &[
    "SELECT",
    "RETURN",
    "WHEN",
    "AND",
    "OR",
    "NOT",
    "XOR",
    "BY",
    "WHERE",
    "ON",
    "HAVING",
    "LIKE",
    "RLIKE",
    "REGEXP",
    "IN",
    "IS",
    "BETWEEN",
    "INTERVAL",
    "UNTIL",
    "WHILE",
    "CASE",
    "DISTINCT",
    "DISTINCTROW",
    "ALL",
    "ANY",
    "SOME",
    "DEFAULT",
    "DIV",
    "MOD",
    "ESCAPE",
    "ELSEIF",
    "IF",
    "VALUES",
    "VALUE",
    "BINARY",
    "EXISTS",
    "LIMIT",
    "OFFSET",
    "HIGH_PRIORITY",
    "STRAIGHT_JOIN",
    "SQL_SMALL_RESULT",
    "SQL_BIG_RESULT",
    "SQL_BUFFER_RESULT",
    "SQL_NO_CACHE",
    "SQL_CACHE",
    "SQL_CALC_FOUND_ROWS",
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
            if let Some(current) = self.current.as_mut() {
                current.tracker.feed(tok, start);
                if semicolon && current.tracker.can_terminate() {
                    self.end_statement(start);
                }
            }
        }
        if let Some(current) = &self.current
            && let Some((pos, message)) = current.tracker.unclosed()
        {
            return Err(self.error(pos, message));
        }
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
