//! The decisions of the clone rotation, and its safety rule.
//!
//! Pure: given the clusters as DescribeDBClusters listed them (identifier, tags,
//! status, members), the day, the name prefix and the limits, it decides what a
//! step does: which cluster is today's clone, whether to create it, whether a
//! step may start from the clone's lifecycle tag, which clusters to mark aborted
//! and which to delete. No IO, no clock: "today" and "now" are arguments.
//!
//! **The safety rule lives here:** a cluster is ours only when its identifier is
//! exactly `{prefix}YYYYMMDD` (a real date) *and* it carries a `lifecycle` tag
//! with one of our values. Every decision below that names a cluster to change
//! names only clusters that are ours, and the executor checks the rule again,
//! on freshly read tags, right before each call ([`may_touch`]). Nothing here
//! may ever return a cluster that is not ours, whatever its tags say.

use std::fmt;

/// The tag that carries a clone's state.
pub const LIFECYCLE_TAG: &str = "lifecycle";
/// The cluster a clone was made from.
pub const SOURCE_TAG: &str = "migrator:source";
/// The DNS name a connected clone answers to.
pub const DNS_TAG: &str = "migrator:dns-name";
/// On a clone `connect` replaced: when (seconds since the epoch, wall clock) no
/// resolver can still hold the record that pointed at it (INSYNC + TTL).
pub const RELEASED_TAG: &str = "migrator:released-at";
/// Aurora's limit of copy-on-write clones in one clone group.
pub const CLONE_LIMIT: usize = 15;
/// Longest prefix: `{prefix}YYYYMMDD-writer` must fit RDS's 63 characters.
pub const MAX_PREFIX: usize = 63 - 8 - "-writer".len();

/// Where a clone is in the pipeline, as its `lifecycle` tag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lifecycle {
    Created,
    Ready,
    Scrubbed,
    Migrated,
    Connected,
    Aborted,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 6] = [
        Lifecycle::Created,
        Lifecycle::Ready,
        Lifecycle::Scrubbed,
        Lifecycle::Migrated,
        Lifecycle::Connected,
        Lifecycle::Aborted,
    ];

    pub fn parse(value: &str) -> Option<Self> {
        Lifecycle::ALL.into_iter().find(|l| l.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Created => "created",
            Lifecycle::Ready => "ready",
            Lifecycle::Scrubbed => "scrubbed",
            Lifecycle::Migrated => "migrated",
            Lifecycle::Connected => "connected",
            Lifecycle::Aborted => "aborted",
        }
    }

    /// Made, but never connected: such a clone is deleted once older than `--max-age`.
    pub fn before_connect(self) -> bool {
        self < Lifecycle::Connected
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A calendar day (UTC), as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(i64);

const SECS_PER_DAY: i64 = 86_400;

impl Day {
    pub fn from_ymd(y: i64, m: u32, d: u32) -> Option<Day> {
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
            return None;
        }
        let day = Day(crate::date::days_from_civil(y, m, d));
        (day.ymd() == (y, m, d)).then_some(day)
    }

    /// `YYYY-MM-DD` (`--today`).
    pub fn parse(text: &str) -> Option<Day> {
        let t = text.trim();
        let b = t.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        Day::compact(&format!("{}{}{}", &t[0..4], &t[5..7], &t[8..10]))
    }

    /// `YYYYMMDD`, as in a clone's identifier.
    pub fn compact(text: &str) -> Option<Day> {
        if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let y = text[0..4].parse().ok()?;
        let m = text[4..6].parse().ok()?;
        let d = text[6..8].parse().ok()?;
        Day::from_ymd(y, m, d)
    }

    /// The day of a moment given in seconds since the epoch.
    pub fn of_unix(secs: i64) -> Day {
        Day(secs.div_euclid(SECS_PER_DAY))
    }

    /// Midnight UTC at the start of the day, in seconds since the epoch.
    pub fn midnight(self) -> i64 {
        self.0 * SECS_PER_DAY
    }

    pub fn ymd(self) -> (i64, u32, u32) {
        crate::date::civil_from_days(self.0)
    }

    /// `20261122`.
    pub fn to_compact(self) -> String {
        let (y, m, d) = self.ymd();
        format!("{y:04}{m:02}{d:02}")
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// `--max-age`: the shared duration grammar (`2d`, `36h`, `90m`, `1d12h`), except
/// that a bare number is days, as it always was here: read as seconds, an old
/// `--max-age 3` would delete every clone not yet connected. In seconds.
pub fn parse_age(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let age = match t.parse::<u64>() {
        Ok(days) => days
            .checked_mul(SECS_PER_DAY as u64)
            .ok_or_else(|| format!("`{text}` is too long"))?,
        Err(_) => crate::duration::parse(t)?.as_secs(),
    };
    i64::try_from(age).map_err(|_| format!("`{text}` is too long"))
}

/// A validated `--name-prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// RDS identifiers: lowercase letters, digits and hyphens, starting with a
    /// letter, no two hyphens in a row. The prefix must leave room for the date.
    pub fn new(text: &str) -> Result<Prefix, String> {
        let ok_chars = text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if text.is_empty()
            || !ok_chars
            || !text.starts_with(|c: char| c.is_ascii_lowercase())
            || text.contains("--")
        {
            return Err(format!(
                "--name-prefix `{text}`: use lowercase letters, digits and single hyphens, \
                 starting with a letter (e.g. app-dev-)"
            ));
        }
        if text.len() > MAX_PREFIX {
            return Err(format!(
                "--name-prefix `{text}` is longer than {MAX_PREFIX} characters; the clone's \
                 identifiers would not fit RDS's 63"
            ));
        }
        Ok(Prefix(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `{prefix}YYYYMMDD`.
    pub fn clone_id(&self, day: Day) -> String {
        format!("{}{}", self.0, day.to_compact())
    }

    /// The day in a clone's identifier: `Some` only for exactly `{prefix}YYYYMMDD`.
    pub fn day_of(&self, id: &str) -> Option<Day> {
        Day::compact(id.strip_prefix(self.0.as_str())?)
    }
}

/// The writer instance of a clone.
pub fn writer_id(clone_id: &str) -> String {
    format!("{clone_id}-writer")
}

/// One member instance of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub writer: bool,
}

/// A cluster, as DescribeDBClusters tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    pub id: String,
    pub arn: String,
    pub status: String,
    pub tags: Vec<(String, String)>,
    /// ClusterCreateTime, in seconds since the epoch.
    pub created: Option<i64>,
    pub endpoint: Option<String>,
    pub port: Option<u16>,
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub database_name: Option<String>,
    pub master_username: Option<String>,
    pub members: Vec<Member>,
    pub clone_group_id: Option<String>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub parameter_group: Option<String>,
    /// PendingModifiedValues.MasterUserPassword: a new master password is on
    /// its way and not yet in effect.
    pub password_pending: bool,
    /// A plain RDS DB instance (RDS for PostgreSQL/MySQL), not an Aurora
    /// cluster: no members, no writer, the same tags and endpoint.
    pub instance: bool,
}

impl Cluster {
    pub fn tag(&self, key: &str) -> Option<&str> {
        tag(&self.tags, key)
    }

    /// The writer instance: the member flagged writer, else the only member.
    pub fn writer(&self) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.writer)
            .or(match self.members.as_slice() {
                [only] => Some(only),
                _ => None,
            })
            .map(|m| m.id.as_str())
    }
}

/// A cluster's status and its writer instance's (id, status), as a wait for
/// `available` sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    pub status: String,
    pub writer: Option<(String, String)>,
}

impl Readiness {
    /// Cluster and writer both `available`.
    pub fn ready(&self) -> bool {
        self.status == "available" && self.writer.as_ref().is_some_and(|(_, s)| s == "available")
    }

    /// `available, writer w-1 available`: how a wait logs it.
    pub fn describe(&self) -> String {
        match &self.writer {
            Some((id, status)) => format!("{}, writer {id} {status}", self.status),
            None => format!("{}, no writer instance yet", self.status),
        }
    }
}

fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Why a cluster is not ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotOurs {
    /// The identifier is not `{prefix}YYYYMMDD`.
    Name,
    /// No `lifecycle` tag.
    NoTag,
    /// A `lifecycle` tag with a value we never write.
    ForeignTag(String),
}

impl fmt::Display for NotOurs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotOurs::Name => f.write_str("its identifier is not {prefix}YYYYMMDD"),
            NotOurs::NoTag => write!(f, "it carries no `{LIFECYCLE_TAG}` tag"),
            NotOurs::ForeignTag(v) => {
                write!(f, "its `{LIFECYCLE_TAG}` tag is `{v}`, not one of ours")
            }
        }
    }
}

/// **The safety rule**, on an identifier and its tags: the clone's day and
/// lifecycle when the cluster is ours; why not otherwise.
pub fn may_touch(
    id: &str,
    tags: &[(String, String)],
    prefix: &Prefix,
) -> Result<(Day, Lifecycle), NotOurs> {
    let day = prefix.day_of(id).ok_or(NotOurs::Name)?;
    let value = tag(tags, LIFECYCLE_TAG).ok_or(NotOurs::NoTag)?;
    let lifecycle =
        Lifecycle::parse(value).ok_or_else(|| NotOurs::ForeignTag(value.to_string()))?;
    Ok((day, lifecycle))
}

/// [`may_touch`] on a listed cluster.
pub fn ours(c: &Cluster, prefix: &Prefix) -> Result<(Day, Lifecycle), NotOurs> {
    may_touch(&c.id, &c.tags, prefix)
}

/// Today's clone, as found among the clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Today<'a> {
    Missing,
    NotOurs(&'a Cluster, NotOurs),
    Ours(&'a Cluster, Lifecycle),
}

pub fn today<'a>(clusters: &'a [Cluster], prefix: &Prefix, day: Day) -> Today<'a> {
    let id = prefix.clone_id(day);
    match clusters.iter().find(|c| c.id == id) {
        None => Today::Missing,
        Some(c) => match ours(c, prefix) {
            Ok((_, l)) => Today::Ours(c, l),
            Err(why) => Today::NotOurs(c, why),
        },
    }
}

/// What `clone` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClonePlan {
    /// Create the cluster (tagged `created`) and its writer.
    Create { id: String },
    /// Today's clone exists: create nothing, except its writer if a crash left
    /// it without one.
    Exists {
        id: String,
        lifecycle: Lifecycle,
        create_writer: Option<String>,
    },
}

/// Copy-on-write clones already made from `source`: its clone group's other
/// members when RDS names the group, else the clusters we tagged as made from it.
pub fn clones_of(clusters: &[Cluster], source: &Cluster, prefix: &Prefix) -> usize {
    clusters
        .iter()
        .filter(|c| c.id != source.id)
        .filter(|c| match &source.clone_group_id {
            Some(group) => c.clone_group_id.as_ref() == Some(group),
            None => ours(c, prefix).is_ok() && c.tag(SOURCE_TAG) == Some(source.id.as_str()),
        })
        .count()
}

pub fn plan_clone(
    clusters: &[Cluster],
    source: &Cluster,
    prefix: &Prefix,
    day: Day,
    copy_on_write: bool,
) -> Result<ClonePlan, String> {
    if prefix.day_of(&source.id).is_some() {
        return Err(format!(
            "the source cluster `{}` is named like one of the clones ({}YYYYMMDD); pick a \
             prefix that the source's identifier does not match",
            source.id,
            prefix.as_str()
        ));
    }
    match today(clusters, prefix, day) {
        Today::NotOurs(c, why) => Err(format!(
            "a cluster named `{}` already exists and is not ours ({why}); not creating \
             another and not touching it",
            c.id
        )),
        Today::Ours(c, lifecycle) => Ok(ClonePlan::Exists {
            id: c.id.clone(),
            lifecycle,
            create_writer: (!c.instance && c.members.is_empty() && lifecycle != Lifecycle::Aborted)
                .then(|| writer_id(&c.id)),
        }),
        Today::Missing => {
            let made = clones_of(clusters, source, prefix);
            if copy_on_write && made >= CLONE_LIMIT {
                return Err(format!(
                    "`{}` already has {made} copy-on-write clones, Aurora's limit is \
                     {CLONE_LIMIT}; delete some (`migrator rotate clean`) or pass \
                     --from-snapshot",
                    source.id
                ));
            }
            Ok(ClonePlan::Create {
                id: prefix.clone_id(day),
            })
        }
    }
}

/// The steps that act on today's clone once it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Ready,
    Scrub,
    Migrate,
    Connect,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Ready => "ready",
            Step::Scrub => "scrub",
            Step::Migrate => "migrate",
            Step::Connect => "connect",
        }
    }

    /// The lifecycle a clone must be at for the step to start (its first run).
    fn from(self) -> Lifecycle {
        match self {
            Step::Ready => Lifecycle::Created,
            Step::Scrub => Lifecycle::Ready,
            Step::Migrate => Lifecycle::Scrubbed,
            Step::Connect => Lifecycle::Migrated,
        }
    }

    /// The step that brings a clone to `l` (for "run X first").
    fn bringing(l: Lifecycle) -> &'static str {
        match l {
            Lifecycle::Created => "clone",
            Lifecycle::Ready => "ready",
            Lifecycle::Scrubbed => "scrub",
            Lifecycle::Migrated => "migrate",
            Lifecycle::Connected => "connect",
            Lifecycle::Aborted => "connect",
        }
    }
}

/// Whether a step may act on a clone at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Do the step's work.
    Run,
    /// The step already succeeded; nothing to do.
    Done,
    /// The clone is not there yet, or gone past recall.
    Refuse(String),
}

pub fn gate(step: Step, id: &str, at: Lifecycle) -> Gate {
    if at == Lifecycle::Aborted {
        return Gate::Refuse(format!(
            "`{id}` is tagged {LIFECYCLE_TAG}=aborted; `rotate clean` deletes it, no step \
             acts on it"
        ));
    }
    let from = step.from();
    if at < from {
        return Gate::Refuse(format!(
            "`{id}` is at {LIFECYCLE_TAG}={at}; `{}` starts from {from}: run `migrator rotate \
             {}` first",
            step.name(),
            Step::bringing(from)
        ));
    }
    // `up` is re-run on a migrated or connected clone: it applies what is new
    // and, on a re-run, finds nothing to do.
    if at == from || step == Step::Migrate || (step == Step::Connect && at == Lifecycle::Connected)
    {
        Gate::Run
    } else {
        Gate::Done
    }
}

/// The same host name, whatever the case or a trailing dot.
pub fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// What `connect` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectPlan {
    /// UPSERT the record: it does not point at the clone yet.
    pub upsert: bool,
    /// Tag today's clone `connected`.
    pub tag_connected: bool,
    /// Clones previously connected to the name, to tag `aborted`.
    pub abort: Vec<String>,
}

/// `record`: the CNAME's current value, if any.
pub fn plan_connect(
    clusters: &[Cluster],
    prefix: &Prefix,
    clone: &Cluster,
    at: Lifecycle,
    endpoint: &str,
    dns_name: &str,
    record: Option<&str>,
) -> ConnectPlan {
    let abort = clusters
        .iter()
        .filter(|c| c.id != clone.id)
        .filter(|c| matches!(ours(c, prefix), Ok((_, Lifecycle::Connected))))
        .filter(|c| c.tag(DNS_TAG).is_none_or(|n| same_host(n, dns_name)))
        .map(|c| c.id.clone())
        .collect();
    ConnectPlan {
        upsert: !record.is_some_and(|r| same_host(r, endpoint)),
        tag_connected: at != Lifecycle::Connected || clone.tag(DNS_TAG) != Some(dns_name),
        abort,
    }
}

/// Why `clean` deletes a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Aborted,
    /// Never connected, and older than `--max-age`.
    Stale {
        lifecycle: Lifecycle,
        age_secs: i64,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Aborted => write!(f, "{LIFECYCLE_TAG}=aborted"),
            Reason::Stale {
                lifecycle,
                age_secs,
            } => write!(
                f,
                "{LIFECYCLE_TAG}={lifecycle}, never connected, {} old",
                human_age(*age_secs)
            ),
        }
    }
}

fn human_age(secs: i64) -> String {
    if secs % SECS_PER_DAY == 0 {
        format!("{}d", secs / SECS_PER_DAY)
    } else {
        format!("{}h", secs / 3600)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub id: String,
    pub reason: Reason,
}

/// What `clean` deletes: every clone of ours tagged `aborted`, and those never
/// connected whose day began more than `max_age` seconds before `now`. Never a
/// connected clone, never today's clone unless it was aborted, never a cluster
/// that is not ours.
pub fn plan_clean(clusters: &[Cluster], prefix: &Prefix, now: i64, max_age: i64) -> Vec<Deletion> {
    let today = Day::of_unix(now);
    let mut out: Vec<Deletion> = clusters
        .iter()
        .filter_map(|c| {
            let (day, lifecycle) = ours(c, prefix).ok()?;
            let reason = if lifecycle == Lifecycle::Aborted {
                Reason::Aborted
            } else {
                let age_secs = now - day.midnight();
                if !lifecycle.before_connect() || day >= today || age_secs <= max_age {
                    return None;
                }
                Reason::Stale {
                    lifecycle,
                    age_secs,
                }
            };
            Some(Deletion {
                id: c.id.clone(),
                reason,
            })
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Seconds until a clone `connect` replaced may go: a resolver may still hand
/// out the record that pointed at it until its `released-at` tag. `None`: now.
pub fn released_in(c: &Cluster, wall_now: i64) -> Option<i64> {
    let at: i64 = c.tag(RELEASED_TAG)?.parse().ok()?;
    (at > wall_now).then_some(at - wall_now)
}

/// Where a new master password is: `seen` once the change showed (pending, or
/// `resetting-master-credentials`); in effect once it showed and the cluster is
/// `available` with nothing pending. `settled`: no sign came for so long that
/// the change must have been applied between two looks.
pub fn password_in_effect(c: &Cluster, seen: &mut bool, settled: bool) -> bool {
    if c.password_pending || c.status == "resetting-master-credentials" {
        *seen = true;
        return false;
    }
    c.status == "available" && (*seen || settled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_clone_waits_for_its_tag() {
        let mut c = Cluster::default();
        assert_eq!(released_in(&c, 100), None);
        c.tags.push((RELEASED_TAG.into(), "160".into()));
        assert_eq!(released_in(&c, 100), Some(60));
        assert_eq!(released_in(&c, 160), None);
    }

    #[test]
    fn a_password_is_in_effect_only_after_it_showed() {
        let mut seen = false;
        let mut c = Cluster {
            status: "available".into(),
            ..Cluster::default()
        };
        // A stale answer right after ModifyDBCluster: nothing shows yet.
        assert!(!password_in_effect(&c, &mut seen, false));
        c.password_pending = true;
        assert!(!password_in_effect(&c, &mut seen, false));
        c.password_pending = false;
        c.status = "resetting-master-credentials".into();
        assert!(!password_in_effect(&c, &mut seen, false));
        c.status = "available".into();
        assert!(password_in_effect(&c, &mut seen, false));
        let mut never = false;
        assert!(password_in_effect(&c, &mut never, true), "settled");
    }

    #[test]
    fn readiness_needs_cluster_and_writer_available() {
        let mut c = Readiness {
            status: "available".into(),
            ..Readiness::default()
        };
        assert!(!c.ready());
        c.writer = Some(("w".into(), "creating".into()));
        assert!(!c.ready());
        c.writer = Some(("w".into(), "available".into()));
        assert!(c.ready());
        assert_eq!(c.describe(), "available, writer w available");
    }

    fn prefix() -> Prefix {
        Prefix::new("app-dev-").unwrap()
    }

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    fn cluster(id: &str, lifecycle: Option<&str>) -> Cluster {
        Cluster {
            id: id.into(),
            arn: format!("arn:aws:rds:us-east-1:123456789012:cluster:{id}"),
            status: "available".into(),
            tags: lifecycle
                .map(|l| vec![(LIFECYCLE_TAG.to_string(), l.to_string())])
                .unwrap_or_default(),
            members: vec![Member {
                id: writer_id(id),
                writer: true,
            }],
            ..Cluster::default()
        }
    }

    fn source() -> Cluster {
        cluster("prod-db", None)
    }

    #[test]
    fn days_convert_both_ways_and_reject_impossible_dates() {
        let d = day("2026-11-22");
        assert_eq!(d.to_compact(), "20261122");
        assert_eq!(d.to_string(), "2026-11-22");
        assert_eq!(Day::compact("20261122"), Some(d));
        assert_eq!(Day::of_unix(d.midnight()), d);
        assert_eq!(Day::of_unix(d.midnight() + 86_399), d);
        assert_eq!(day("1970-01-01").midnight(), 0);
        assert_eq!(day("2000-03-01").midnight(), 951_868_800);
        assert_eq!(
            day("2024-03-01").midnight() - day("2024-02-28").midnight(),
            2 * 86_400
        );
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-00-10",
            "26-11-22",
            "2026/11/22",
            "",
        ] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
        assert_eq!(Day::compact("2026112"), None);
        assert_eq!(Day::compact("2026112x"), None);
        assert!(Day::compact("20240229").is_some());
        assert!(Day::compact("20230229").is_none());
        // Every day of four years survives the round trip.
        let start = day("2023-01-01");
        for n in 0..(4 * 366) {
            let d = Day(start.0 + n);
            assert_eq!(Day::compact(&d.to_compact()), Some(d));
        }
    }

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("2d"), Ok(2 * 86_400));
        assert_eq!(parse_age("36h"), Ok(36 * 3600));
        assert_eq!(parse_age("90m"), Ok(90 * 60));
        assert_eq!(parse_age("3"), Ok(3 * 86_400));
        assert!(parse_age("2w").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("-1d").is_err());
        assert_eq!(parse_age("0d"), Ok(0), "clean every unconnected clone");
        assert_eq!(parse_age("1d12h"), Ok(36 * 3600));
    }

    #[test]
    fn prefixes_are_valid_rds_identifiers_with_room_for_the_date() {
        assert!(Prefix::new("app-dev-").is_ok());
        assert!(Prefix::new("qa1").is_ok());
        for bad in [
            "", "App-dev-", "1app", "-app", "app--dev", "app_dev", "app dev",
        ] {
            assert!(Prefix::new(bad).is_err(), "{bad}");
        }
        let long = "a".repeat(MAX_PREFIX);
        let p = Prefix::new(&long).unwrap();
        assert_eq!(writer_id(&p.clone_id(day("2026-11-22"))).len(), 63);
        assert!(Prefix::new(&format!("{long}a")).is_err());
    }

    #[test]
    fn identifiers_must_be_exactly_prefix_and_date() {
        let p = prefix();
        assert_eq!(p.day_of("app-dev-20261122"), Some(day("2026-11-22")));
        for other in [
            "app-dev-2026112",
            "app-dev-202611220",
            "app-dev-20261122-old",
            "app-dev-20261322",
            "app-dev-legacy",
            "xapp-dev-20261122",
            "app-qa-20261122",
            "APP-DEV-20261122",
            "prod-db",
        ] {
            assert_eq!(p.day_of(other), None, "{other}");
        }
    }

    /// The safety rule, over every combination of name and tag.
    #[test]
    fn only_prefixed_dated_and_tagged_clusters_are_ours() {
        let p = prefix();
        let names = [
            ("app-dev-20261120", true),
            ("app-dev-legacy", false),
            ("prod-db", false),
            ("other-20261120", false),
            ("app-dev-20261120-copy", false),
        ];
        let mut tags: Vec<Option<&str>> = vec![None, Some("ABORTED"), Some(""), Some("deleted")];
        tags.extend(Lifecycle::ALL.iter().map(|l| Some(l.as_str())));
        for (name, name_ok) in names {
            for t in &tags {
                let c = cluster(name, *t);
                let ours_expected = name_ok && t.and_then(Lifecycle::parse).is_some();
                assert_eq!(ours(&c, &p).is_ok(), ours_expected, "{name} {t:?}");
            }
        }
        let other_key = Cluster {
            tags: vec![("Lifecycle".into(), "aborted".into())],
            ..cluster("app-dev-20261120", None)
        };
        assert_eq!(ours(&other_key, &p), Err(NotOurs::NoTag));
        assert_eq!(
            ours(&cluster("app-dev-20261120", Some("deleted")), &p),
            Err(NotOurs::ForeignTag("deleted".into()))
        );
        assert_eq!(
            ours(&cluster("prod-db", Some("aborted")), &p),
            Err(NotOurs::Name)
        );
    }

    #[test]
    fn clone_creates_todays_once() {
        let p = prefix();
        let d = day("2026-11-22");
        let clusters = vec![source(), cluster("app-dev-20261121", Some("connected"))];
        assert_eq!(
            plan_clone(&clusters, &source(), &p, d, true),
            Ok(ClonePlan::Create {
                id: "app-dev-20261122".into()
            })
        );
        for l in Lifecycle::ALL {
            let mut all = clusters.clone();
            all.push(cluster("app-dev-20261122", Some(l.as_str())));
            assert_eq!(
                plan_clone(&all, &source(), &p, d, true),
                Ok(ClonePlan::Exists {
                    id: "app-dev-20261122".into(),
                    lifecycle: l,
                    create_writer: None
                }),
                "{l}"
            );
        }
    }

    #[test]
    fn clone_finishes_a_writerless_clone_it_made() {
        let p = prefix();
        let mut c = cluster("app-dev-20261122", Some("created"));
        c.members.clear();
        let plan = plan_clone(
            &[source(), c.clone()],
            &source(),
            &p,
            day("2026-11-22"),
            true,
        );
        assert_eq!(
            plan,
            Ok(ClonePlan::Exists {
                id: c.id.clone(),
                lifecycle: Lifecycle::Created,
                create_writer: Some("app-dev-20261122-writer".into())
            })
        );
        c.tags = vec![(LIFECYCLE_TAG.into(), "aborted".into())];
        let plan = plan_clone(&[source(), c], &source(), &p, day("2026-11-22"), true);
        assert!(matches!(
            plan,
            Ok(ClonePlan::Exists {
                create_writer: None,
                ..
            })
        ));
    }

    #[test]
    fn clone_refuses_a_foreign_cluster_with_todays_name() {
        let p = prefix();
        for tags in [None, Some("deleted")] {
            let c = cluster("app-dev-20261122", tags);
            let err =
                plan_clone(&[source(), c], &source(), &p, day("2026-11-22"), true).unwrap_err();
            assert!(err.contains("not ours"), "{err}");
        }
        let named_like_a_clone = cluster("app-dev-20200101", None);
        let err = plan_clone(
            std::slice::from_ref(&named_like_a_clone),
            &named_like_a_clone,
            &p,
            day("2026-11-22"),
            true,
        )
        .unwrap_err();
        assert!(err.contains("named like one of the clones"), "{err}");
    }

    #[test]
    fn clone_respects_aurora_limit_of_fifteen() {
        let p = prefix();
        let d = day("2026-11-22");
        // Counted through the clone group when RDS names it (clones of others too).
        let mut src = source();
        src.clone_group_id = Some("g-1".into());
        let mut clusters = vec![src.clone()];
        for i in 0..14 {
            let mut c = cluster(&format!("someone-else-{i}"), None);
            c.clone_group_id = Some("g-1".into());
            clusters.push(c);
        }
        let mut unrelated = cluster("unrelated", None);
        unrelated.clone_group_id = Some("g-2".into());
        clusters.push(unrelated);
        assert!(plan_clone(&clusters, &src, &p, d, true).is_ok(), "14 made");
        let mut fifteenth = cluster("app-dev-20261121", Some("connected"));
        fifteenth.clone_group_id = Some("g-1".into());
        clusters.push(fifteenth);
        let err = plan_clone(&clusters, &src, &p, d, true).unwrap_err();
        assert!(err.contains("15 copy-on-write clones"), "{err}");
        assert!(
            plan_clone(&clusters, &src, &p, d, false).is_ok(),
            "a snapshot restore is not a clone"
        );
        // Without a clone group, our own tagged clones of this source count.
        let mut ours_only = vec![source()];
        for i in 1..=15 {
            let mut c = cluster(&format!("app-dev-202610{i:02}"), Some("aborted"));
            c.tags.push((SOURCE_TAG.into(), "prod-db".into()));
            ours_only.push(c);
        }
        assert_eq!(clones_of(&ours_only, &source(), &p), 15);
        assert!(plan_clone(&ours_only, &source(), &p, d, true).is_err());
        ours_only.pop();
        assert!(plan_clone(&ours_only, &source(), &p, d, true).is_ok());
    }

    #[test]
    fn steps_start_only_from_their_lifecycle() {
        use Lifecycle::*;
        let table: [(Step, [&str; 6]); 4] = [
            // created ready scrubbed migrated connected aborted
            (
                Step::Ready,
                ["run", "done", "done", "done", "done", "refuse"],
            ),
            (
                Step::Scrub,
                ["refuse", "run", "done", "done", "done", "refuse"],
            ),
            (
                Step::Migrate,
                ["refuse", "refuse", "run", "run", "run", "refuse"],
            ),
            (
                Step::Connect,
                ["refuse", "refuse", "refuse", "run", "run", "refuse"],
            ),
        ];
        for (step, expected) in table {
            for (l, want) in [Created, Ready, Scrubbed, Migrated, Connected, Aborted]
                .into_iter()
                .zip(expected)
            {
                let got = match gate(step, "c", l) {
                    Gate::Run => "run",
                    Gate::Done => "done",
                    Gate::Refuse(_) => "refuse",
                };
                assert_eq!(got, want, "{} at {l}", step.name());
            }
        }
        let Gate::Refuse(why) = gate(Step::Scrub, "c", Created) else {
            panic!()
        };
        assert!(why.contains("migrator rotate ready"), "{why}");
    }

    #[test]
    fn connect_aborts_only_our_previously_connected_clones() {
        let p = prefix();
        let today = cluster("app-dev-20261122", Some("migrated"));
        let mut yesterday = cluster("app-dev-20261121", Some("connected"));
        yesterday
            .tags
            .push((DNS_TAG.into(), "db.dev.internal".into()));
        let mut other_name = cluster("app-dev-20261120", Some("connected"));
        other_name
            .tags
            .push((DNS_TAG.into(), "db.qa.internal".into()));
        let clusters = vec![
            today.clone(),
            yesterday,
            other_name,
            cluster("app-dev-20261119", Some("aborted")),
            cluster("app-dev-20261118", Some("scrubbed")),
            cluster("prod-db", Some("connected")),
            cluster("app-dev-legacy", Some("connected")),
            cluster("app-dev-20261117", None),
        ];
        let plan = plan_connect(
            &clusters,
            &p,
            &today,
            Lifecycle::Migrated,
            "app-dev-20261122.cluster-x.us-east-1.rds.amazonaws.com",
            "db.dev.internal",
            Some("app-dev-20261121.cluster-x.us-east-1.rds.amazonaws.com."),
        );
        assert_eq!(
            plan,
            ConnectPlan {
                upsert: true,
                tag_connected: true,
                abort: vec!["app-dev-20261121".into()]
            }
        );
    }

    #[test]
    fn connect_again_changes_nothing() {
        let p = prefix();
        let mut today = cluster("app-dev-20261122", Some("connected"));
        today.tags.push((DNS_TAG.into(), "db.dev.internal".into()));
        let plan = plan_connect(
            &[today.clone(), cluster("app-dev-20261121", Some("aborted"))],
            &p,
            &today,
            Lifecycle::Connected,
            "app-dev-20261122.cluster-x.rds.amazonaws.com",
            "db.dev.internal",
            Some("APP-DEV-20261122.cluster-x.rds.amazonaws.com."),
        );
        assert_eq!(
            plan,
            ConnectPlan {
                upsert: false,
                tag_connected: false,
                abort: vec![]
            }
        );
    }

    #[test]
    fn clean_deletes_aborted_and_stale_clones_of_ours_only() {
        let p = prefix();
        let now = day("2026-11-22").midnight() + 6 * 3600;
        let two_days = 2 * 86_400;
        let clusters = vec![
            cluster("app-dev-20261122", Some("created")),
            cluster("app-dev-20261121", Some("connected")),
            cluster("app-dev-20261120", Some("aborted")),
            cluster("app-dev-20261119", Some("ready")),
            cluster("app-dev-20261118", Some("connected")),
            cluster("app-dev-20261117", Some("migrated")),
            // Not ours, whatever their tags say.
            cluster("prod-db", Some("aborted")),
            cluster("app-dev-legacy", Some("aborted")),
            cluster("app-dev-20261101", None),
            cluster("app-dev-20261102", Some("Aborted")),
            cluster("other-20261101", Some("aborted")),
        ];
        let got = plan_clean(&clusters, &p, now, two_days);
        assert_eq!(
            got,
            vec![
                Deletion {
                    id: "app-dev-20261117".into(),
                    reason: Reason::Stale {
                        lifecycle: Lifecycle::Migrated,
                        age_secs: 5 * 86_400 + 6 * 3600
                    }
                },
                Deletion {
                    id: "app-dev-20261119".into(),
                    reason: Reason::Stale {
                        lifecycle: Lifecycle::Ready,
                        age_secs: 3 * 86_400 + 6 * 3600
                    }
                },
                Deletion {
                    id: "app-dev-20261120".into(),
                    reason: Reason::Aborted
                },
            ]
        );
        assert_eq!(
            got[0].reason.to_string(),
            "lifecycle=migrated, never connected, 126h old"
        );
    }

    #[test]
    fn clean_never_deletes_todays_clone_unless_aborted() {
        let p = prefix();
        let now = day("2026-11-22").midnight() + 23 * 3600;
        for l in Lifecycle::ALL {
            let c = cluster("app-dev-20261122", Some(l.as_str()));
            let got = plan_clean(&[c], &p, now, 0);
            assert_eq!(got.len(), usize::from(l == Lifecycle::Aborted), "{l}");
        }
    }

    #[test]
    fn nothing_is_ever_planned_on_a_cluster_that_is_not_ours() {
        let p = prefix();
        let d = day("2026-11-22");
        let foreign = [
            cluster("prod-db", Some("aborted")),
            cluster("prod-db", Some("connected")),
            cluster("app-dev-legacy", Some("aborted")),
            cluster("app-dev-20261120", None),
            cluster("app-dev-20261121", Some("gone")),
            cluster("app-dev-20261121x", Some("connected")),
        ];
        let today = cluster("app-dev-20261122", Some("migrated"));
        let mut all = foreign.to_vec();
        all.push(today.clone());
        let clean = plan_clean(&all, &p, d.midnight() + 3600, 0);
        assert!(clean.is_empty(), "{clean:?}");
        let connect = plan_connect(&all, &p, &today, Lifecycle::Migrated, "e", "n", None);
        assert!(connect.abort.is_empty(), "{connect:?}");
        for f in &foreign {
            assert!(may_touch(&f.id, &f.tags, &p).is_err(), "{}", f.id);
        }
    }
}
