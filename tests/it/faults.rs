//! Faults at every point of a run (#18): a link that goes silent ends the run
//! by itself, one SIGTERM ends it within a second even then, and the CI-sized
//! subset of `bench/faults` (cut connections at points spread over a run,
//! silent links, kill -9) leaves no silent partial state and nothing the next
//! `up` cannot finish.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::common::{Cmd, Dir, Engine, TestDb, engines, signal, wait};
use crate::proxy::Proxy;

fn three() -> Dir {
    Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (id INT);\n"),
        (
            "2_b.up.sql",
            "CREATE TABLE b (id INT);\nINSERT INTO b VALUES (1), (2);\n",
        ),
        ("3_c.up.sql", "CREATE TABLE c (id INT);\n"),
    ])
}

/// Messages of a whole uncut `up` through the proxy, in one direction
/// (`"s2c"` or `"c2s"`): the fault points below are fractions of it, so they
/// hold whatever the apply path.
fn messages_of_a_run(engine: Engine, direction: &str) -> u64 {
    let db = TestDb::new(engine);
    let dir = three();
    let proxy = Proxy::start(&db, &[]);
    Cmd::on(&db, &dir, &["up", "--tls", "disable"])
        .env("DATABASE_URL", proxy.url(&db))
        .run()
        .code(0);
    let stats = proxy.settled();
    stats["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c[format!("{direction}_messages").as_str()]
                .as_u64()
                .unwrap()
        })
        .sum()
}

/// History rows applied ⇔ their table exists: no silent partial state.
fn consistent(db: &TestDb) {
    let history = db.history();
    for (v, table) in [(1, "a"), (2, "b"), (3, "c")] {
        let recorded = history.iter().any(|h| h == &format!("{v}:applied"));
        let dirty = history
            .iter()
            .any(|h| h.starts_with(&format!("{v}:")) && !h.ends_with(":applied"));
        assert!(
            dirty || recorded == db.table_exists(table),
            "version {v}: recorded {recorded}, table {table} exists {}; history {history:?}",
            db.table_exists(table)
        );
    }
}

engines!(a_silent_link_ends_the_run_with_exit_1_or_3, |engine| {
    let half = messages_of_a_run(engine, "s2c") / 2;
    let db = TestDb::new(engine);
    let dir = three();
    let after = half.to_string();
    let proxy = Proxy::start(
        &db,
        &[
            "--fault",
            "silent",
            "--direction",
            "s2c",
            "--after-messages",
            &after,
        ],
    );
    let started = Instant::now();
    let run = Cmd::on(&db, &dir, &["up", "--tls", "disable"])
        .env("DATABASE_URL", proxy.url(&db))
        .env("MIGRATOR_LINK_TIMEOUT", "3s")
        .run();
    let took = started.elapsed();
    let code = run.code;
    assert!(matches!(code, 1 | 3), "exit {code}: {}", run.all());
    eprintln!("{engine:?}: silent link, exit {code} after {took:?}");
    assert!(took < Duration::from_secs(60), "ended after {took:?}");
    assert!(run.all().contains("went silent"), "{}", run.all());
    drop(proxy);
    consistent(&db);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
});

engines!(
    one_sigterm_on_a_silent_link_exits_143_within_a_second,
    |engine| {
        let half = messages_of_a_run(engine, "s2c") / 2;
        let db = TestDb::new(engine);
        let dir = three();
        let after = half.to_string();
        let proxy = Proxy::start(
            &db,
            &[
                "--fault",
                "silent",
                "--direction",
                "s2c",
                "--after-messages",
                &after,
            ],
        );
        // The default link timeout (30 s): only the signal can end it in time.
        let mut child = Cmd::on(&db, &dir, &["up", "--tls", "disable"])
            .env("DATABASE_URL", proxy.url(&db))
            .spawn();
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run should be stuck on the silent link"
        );
        let sent = Instant::now();
        signal(&child, "TERM");
        let run = wait(child);
        let took = sent.elapsed();
        run.code(143);
        eprintln!("{engine:?}: exit 143 {took:?} after SIGTERM on a silent link");
        assert!(
            took < Duration::from_secs(1),
            "exited {took:?} after SIGTERM"
        );
        drop(proxy);
        // The old session may still hold the lock until the server notices it is gone.
        Cmd::on(&db, &dir, &["up", "--lock-timeout", "30"])
            .run()
            .code(0);
        assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
    }
);

/// `bench/faults --quick` for one engine: a few dozen faults (resets and
/// silences at points spread over a five-migration run, both directions, and
/// kill -9 at random times), each followed by the state check and the next `up`.
fn sweep(engine: &str) {
    let script = [env!("CARGO_MANIFEST_DIR"), "bench", "faults"]
        .iter()
        .collect::<std::path::PathBuf>();
    let out = Command::new("python3")
        .arg(script)
        .args(["--quick", "--engines", engine, "--bin"])
        .arg(crate::common::bin())
        .output()
        .expect("python3 runs bench/faults");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" 0 silent partial states"), "{text}");
}

#[test]
fn quick_fault_sweep_on_postgres() {
    sweep("pg");
}

#[test]
fn quick_fault_sweep_on_mysql() {
    sweep("my");
}

/// `up --wait` after a connection reset mid-run: the migration in flight is
/// settled from its history row on a new connection, and the run carries on
/// from what is recorded to the end.
#[test]
fn up_wait_carries_on_after_a_lost_connection() {
    let n = messages_of_a_run(Engine::Pg, "c2s");
    let mut settled = 0;
    for k in [n / 2, n * 2 / 3, n * 5 / 6] {
        let db = TestDb::new(Engine::Pg);
        let dir = three();
        let after = k.to_string();
        let proxy = Proxy::start(
            &db,
            &[
                "--fault",
                "reset",
                "--direction",
                "c2s",
                "--after-messages",
                &after,
            ],
        );
        let run = Cmd::on(&db, &dir, &["up", "--tls", "disable", "--wait", "30"])
            .env("DATABASE_URL", proxy.url(&db))
            .run();
        run.code(0);
        assert_eq!(
            db.history(),
            ["1:applied", "2:applied", "3:applied"],
            "K={k}: {}",
            run.all()
        );
        consistent(&db);
        // The new session prepares the capture's statements again: the
        // migrations carried on with are measured, not run twice.
        assert!(
            !run.all().contains("rehearsal capture failed"),
            "K={k}: {}",
            run.all()
        );
        if run.stdout.contains("in doubt, settled: ") {
            settled += 1;
        }
    }
    assert!(settled > 0, "no run had a migration in flight");
}

// Silent from the session's first query on (the lock's message): the watch
// needs the server's answer naming our session, so until that answer the wait
// is bounded by the link timeout itself, not by `--lock-timeout` plus it.
engines!(
    a_link_silent_before_the_lock_answers_ends_within_the_link_timeout,
    |engine| {
        let db = TestDb::new(engine);
        let dir = three();
        // PostgreSQL (trust): client message 1 is the login, 2 the first
        // query. MySQL: the login takes two (the answer to the server's
        // greeting and to its auth switch), the first query is 3.
        let first_query = match engine {
            Engine::Pg => "2",
            Engine::My => "3",
        };
        let proxy = Proxy::start(
            &db,
            &[
                "--fault",
                "silent",
                "--direction",
                "c2s",
                "--after-messages",
                first_query,
            ],
        );
        let started = Instant::now();
        let run = Cmd::on(
            &db,
            &dir,
            &["up", "--tls", "disable", "--lock-timeout", "60"],
        )
        .env("DATABASE_URL", proxy.url(&db))
        .env("MIGRATOR_LINK_TIMEOUT", "3s")
        .run();
        let took = started.elapsed();
        assert!(
            matches!(run.code, 1 | 3),
            "exit {}: {}",
            run.code,
            run.all()
        );
        assert!(run.all().contains("went silent"), "{}", run.all());
        assert!(took < Duration::from_secs(15), "ended after {took:?}");
        drop(proxy);
        Cmd::on(&db, &dir, &["up", "--lock-timeout", "30"])
            .run()
            .code(0);
    }
);

/// A network namespace of the test's own, joined to the root namespace by a
/// veth pair: the binary runs inside it and reaches the servers (bound to
/// 127.0.0.1) through `bench/proxy` listening on the root side's address.
/// [`Netns::cut`] takes the root side down, after which the namespace's
/// packets vanish: no RST, no ICMP (a permanent neighbour entry spares even
/// the local "host unreachable" of a failed ARP), and the session check cannot
/// reach the server either. Unlike `bench/proxy --fault silent`, no kernel
/// answers keepalive probes or acknowledges segments for the server: only the
/// kernel's own timers can end the wait. Removed on drop, also after a panic.
struct Netns {
    name: String,
    root_if: String,
    ns_if: String,
    root_addr: String,
    ns_addr: String,
}

impl Netns {
    /// Panics when `ip netns` cannot be used here: CI runs as root on a
    /// machine where it can, so a skip would only hide a broken setup.
    fn new() -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        // Interface names are at most 15 bytes: 2 + 7 digits + 1 + n + 1.
        let tag = format!("mt{pid}x{n}");
        // A /30 of 10.200.0.0/16, picked by pid and count.
        let block = (pid.wrapping_mul(4).wrapping_add(n) % 16384) * 4;
        let base = format!("10.200.{}.", block / 256);
        let net = Netns {
            name: tag.clone(),
            root_if: format!("{tag}r"),
            ns_if: format!("{tag}n"),
            root_addr: format!("{base}{}", block % 256 + 1),
            ns_addr: format!("{base}{}", block % 256 + 2),
        };
        net.ip(false, &["netns", "add", &net.name]);
        net.ip(
            false,
            &[
                "link",
                "add",
                &net.root_if,
                "type",
                "veth",
                "peer",
                "name",
                &net.ns_if,
            ],
        );
        net.ip(false, &["link", "set", &net.ns_if, "netns", &net.name]);
        let root_cidr = format!("{}/30", net.root_addr);
        let ns_cidr = format!("{}/30", net.ns_addr);
        net.ip(false, &["addr", "add", &root_cidr, "dev", &net.root_if]);
        net.ip(false, &["link", "set", &net.root_if, "up"]);
        net.ip(true, &["addr", "add", &ns_cidr, "dev", &net.ns_if]);
        net.ip(true, &["link", "set", "lo", "up"]);
        net.ip(true, &["link", "set", &net.ns_if, "up"]);
        let mac = std::fs::read_to_string(format!("/sys/class/net/{}/address", net.root_if))
            .expect("the root side of the veth pair has an address");
        net.ip(
            true,
            &[
                "neigh",
                "replace",
                &net.root_addr,
                "lladdr",
                mac.trim(),
                "dev",
                &net.ns_if,
                "nud",
                "permanent",
            ],
        );
        net
    }

    /// `ip ARGS`, inside the namespace or not; panics saying what failed.
    fn ip(&self, inside: bool, args: &[&str]) {
        let mut cmd = Command::new("ip");
        if inside {
            cmd.args(["netns", "exec", &self.name, "ip"]);
        }
        let out = cmd.args(args).output().unwrap_or_else(|e| {
            panic!("cannot run ip (iproute2): {e}; this test needs `ip netns` and root")
        });
        assert!(
            out.status.success(),
            "ip {}: {}; this test needs `ip netns` and root (CI has both)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }

    /// The link goes silent: the root side goes down, nothing tells the client.
    fn cut(&self) {
        self.ip(false, &["link", "set", &self.root_if, "down"]);
    }

    /// `ss -tino` inside the namespace, for the sockets to `port` on the root side.
    fn sockets(&self, port: u16) -> String {
        let dst = format!("{}:{port}", self.root_addr);
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "ss", "-tino", "dst", &dst])
            .output()
            .expect("ss runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The binary with `args`, run inside the namespace against `url`.
    fn migrator(&self, url: &str, dir: &Dir, args: &[&str]) -> Cmd {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name])
            .arg(crate::common::bin())
            .args(args)
            .env_clear()
            .env("DATABASE_URL", url)
            .env("MIGRATOR_PATH", dir.path())
            .stdin(std::process::Stdio::null());
        Cmd::wrap(cmd)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting one end deletes the pair; the namespace goes last.
        let _ = Command::new("ip")
            .args(["link", "del", &self.root_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Whether a session other than the caller's runs the sleep of [`TestDb::sleep_sql`].
fn sleeping(db: &TestDb, secs: u32) -> bool {
    let q = match db.engine {
        Engine::Pg => format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%pg_sleep({secs})%'"
        ),
        Engine::My => format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() \
             AND ID <> CONNECTION_ID() AND COMMAND = 'Query' AND INFO LIKE '%SLEEP({secs})%'"
        ),
    };
    db.try_sql(&q).is_ok_and(|n| n != "0")
}

/// Sessions on the database other than the caller's.
fn other_sessions(db: &TestDb) -> u32 {
    let q = match db.engine {
        Engine::Pg => {
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid()"
        }
        Engine::My => {
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() \
             AND ID <> CONNECTION_ID()"
        }
    };
    db.sql(q).parse().unwrap_or(0)
}

/// The largest keepalive probe count `ss -o` shows in `text` (`timer:(keepalive,1.2sec,N)`).
fn keepalive_probes(text: &str) -> u32 {
    text.match_indices("timer:(keepalive,")
        .filter_map(|(i, _)| {
            let rest = &text[i..];
            let inner = &rest[..rest.find(')')?];
            inner.rsplit(',').next()?.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

// A real silent link (#18): the run's packets vanish while the server sleeps
// in the second migration, so the client waits with nothing unacknowledged
// and the kernel's keepalive probes go unanswered. Nothing else can end it:
// the session check cannot reach the server through the dead link either. The
// kernel aborts the socket once it has heard nothing for the link timeout
// (keepalive probes out, TCP_USER_TIMEOUT elapsed), the run tries to settle on
// a new connection (which cannot connect: --connect-timeout) and exits 3.
// Measured: bench/silent and docs/faults.md.
engines!(
    a_real_silent_link_is_ended_by_the_kernel_keepalive,
    |engine| {
        const LINK: u64 = 3;
        const CONNECT: u64 = 2;
        const SLEEP: u32 = 4;
        let net = Netns::new();
        let db = TestDb::new(engine);
        let second = format!(
            "{};\nCREATE TABLE b (id INT);\nINSERT INTO b VALUES (1), (2);\n",
            db.sleep_sql(SLEEP.into())
        );
        let dir = Dir::new(&[
            ("1_a.up.sql", "CREATE TABLE a (id INT);\n"),
            ("2_b.up.sql", second.as_str()),
            ("3_c.up.sql", "CREATE TABLE c (id INT);\n"),
        ]);
        let proxy = Proxy::start(&db, &["--listen-host", &net.root_addr]);
        let link = format!("{LINK}s");
        let connect = CONNECT.to_string();
        let mut child = net
            .migrator(
                &proxy.url_on(&db, &net.root_addr),
                &dir,
                &[
                    "up",
                    "--tls",
                    "disable",
                    "--link-timeout",
                    &link,
                    "--connect-timeout",
                    &connect,
                ],
            )
            .spawn();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !sleeping(&db, SLEEP) {
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the run never reached the sleep of 2_b: {}",
                    wait(child).all()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        net.cut();
        let cut = Instant::now();
        let mut probes = 0;
        // The link timeout, then the settling's attempts to connect through the
        // dead link (on MySQL two: the driver's, to read the row back, and the
        // engine's), and a margin.
        let limit = Duration::from_secs(LINK + 2 * CONNECT + 4);
        while child.try_wait().unwrap().is_none() && cut.elapsed() < limit + Duration::from_secs(10)
        {
            probes = probes.max(keepalive_probes(&net.sockets(proxy.port())));
            std::thread::sleep(Duration::from_millis(100));
        }
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
        }
        let run = wait(child);
        let took = cut.elapsed();
        eprintln!(
            "{engine:?}: real silent link, exit {} {took:?} after the cut, {probes} keepalive probes",
            run.code
        );
        assert!(
            matches!(run.code, 1 | 3),
            "exit {}: {}",
            run.code,
            run.all()
        );
        assert!(took < limit, "ended {took:?} after the cut: {}", run.all());
        // The kernel ended it: its probes went unanswered, and the session check
        // (which needs the server) did not decide.
        assert!(
            probes >= 1,
            "no keepalive probe was seen on the silent socket"
        );
        assert!(!run.all().contains("went silent"), "{}", run.all());
        run.has("2_b: in doubt");
        drop(proxy);
        // The server ends the sessions the proxy held; the lock goes with them.
        let deadline = Instant::now() + Duration::from_secs(10);
        while other_sessions(&db) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The whole migration had reached the server before the cut: it ran to
        // its end there, recorded, though its answer never arrived.
        consistent(&db);
        assert_eq!(db.history(), ["1:applied", "2:applied"]);
        drop(net);
        Cmd::on(&db, &dir, &["up", "--lock-timeout", "30"])
            .run()
            .code(0);
        assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
    }
);
