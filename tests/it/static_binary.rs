//! The shipped artifact: one static file that needs nothing from the system.
//!
//! The binary under test is the one cargo built for this run; `.cargo/config.toml`
//! makes every build of the crate static, so it is the same kind of file as the
//! release build. These tests read its ELF headers, ask `ldd`, and run it alone in
//! an empty `chroot` (only `/etc/hosts` and `/etc/resolv.conf` beside it, plus the
//! migrations it is to apply) against the real servers, by host name.
//!
//! `chroot` needs root (CAP_SYS_CHROOT), `ldd` must be installed, and the DNS
//! test needs 127.0.0.1:53 and PostgreSQL on loopback. Where one is missing the
//! test skips through `common::unavailable` (components CHROOT, LDD, FAKE_DNS),
//! which fails instead where CI requires them.

use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::common::{Cmd, Component, Dir, Engine, Run, TestDb, bin, engines, unavailable};

/// What the dynamic linker would be asked for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Linkage {
    /// A PT_INTERP program header: the kernel starts `ld.so` first.
    interpreter: Option<String>,
    /// DT_NEEDED entries of the dynamic section (shared libraries).
    needed: usize,
}

/// Reads the program headers (and the dynamic section, when there is one) of
/// a little-endian ELF64 file.
fn linkage(bytes: &[u8]) -> Result<Linkage, String> {
    let u16_at = |at: usize| -> Result<u64, String> {
        bytes
            .get(at..at + 2)
            .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
            .ok_or_else(|| format!("truncated ELF file (offset {at})"))
    };
    let u32_at = |at: usize| -> Result<u64, String> {
        bytes
            .get(at..at + 4)
            .map(|b| u64::from(u32::from_le_bytes(b.try_into().unwrap())))
            .ok_or_else(|| format!("truncated ELF file (offset {at})"))
    };
    let u64_at = |at: usize| -> Result<u64, String> {
        bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .ok_or_else(|| format!("truncated ELF file (offset {at})"))
    };
    let index = |v: u64| usize::try_from(v).map_err(|e| e.to_string());

    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF file".into());
    }
    if bytes.get(4..6) != Some([2u8, 1].as_slice()) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    const PT_DYNAMIC: u64 = 2;
    const PT_INTERP: u64 = 3;
    const DT_NEEDED: u64 = 1;

    let phoff = index(u64_at(0x20)?)?;
    let phentsize = index(u16_at(0x36)?)?;
    let phnum = index(u16_at(0x38)?)?;
    let mut found = Linkage::default();
    for header in (0..phnum).map(|i| phoff + i * phentsize) {
        let kind = u32_at(header)?;
        let offset = index(u64_at(header + 8)?)?;
        let size = index(u64_at(header + 32)?)?;
        match kind {
            PT_INTERP => {
                let path = bytes
                    .get(offset..offset + size)
                    .ok_or("truncated PT_INTERP")?;
                let path = path.split(|b| *b == 0).next().unwrap_or_default();
                found.interpreter = Some(String::from_utf8_lossy(path).into_owned());
            }
            PT_DYNAMIC => {
                // (tag, value) pairs of 8 bytes each, up to DT_NULL.
                for entry in (offset..offset + size).step_by(16) {
                    match u64_at(entry)? {
                        0 => break,
                        DT_NEEDED => found.needed += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

#[test]
fn the_binary_has_no_interpreter_and_needs_no_shared_library() {
    let path = bin();
    let bytes = fs::read(&path).unwrap();
    let found = linkage(&bytes).unwrap();
    assert_eq!(
        found,
        Linkage::default(),
        "{} is dynamically linked; every build must be static \
         (.cargo/config.toml sets the target and `+crt-static`; a CARGO_BUILD_TARGET \
         or RUSTFLAGS override may have dropped it)",
        path.display()
    );

    // The reader is not vacuous: it sees the loader of an ordinary executable.
    for dynamic in ["/bin/sh", "/usr/bin/env"] {
        if let Ok(bytes) = fs::read(dynamic) {
            let other = linkage(&bytes).unwrap();
            if other.interpreter.is_some() {
                assert!(other.needed > 0, "{dynamic}: {other:?}");
                return;
            }
        }
    }
    eprintln!("note: no dynamically linked /bin/sh or /usr/bin/env to cross-check the ELF reader");
}

#[test]
fn ldd_finds_no_dynamic_dependency() {
    let out = match Command::new("ldd").arg(bin()).output() {
        Ok(out) => out,
        Err(e) => {
            return unavailable(
                Component::Ldd,
                &format!("cannot run ldd ({e}); the ELF test covers the same ground"),
            );
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("statically linked") || text.contains("not a dynamic executable"),
        "ldd lists dependencies:\n{text}"
    );
    assert!(!text.contains("=>"), "ldd lists libraries:\n{text}");
}

#[test]
fn no_openssl_in_the_dependency_graph() {
    // The image has no libssl and no CA store: TLS must be rustls, with roots
    // compiled in (tls::RDS_ROOTS_PEM, the web roots) or read from --ca-file.
    let lock = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"))
        .expect("Cargo.lock is committed");
    let forbidden = ["openssl", "openssl-sys", "native-tls"];
    let found: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = "))
        .map(|n| n.trim_matches('"'))
        .filter(|n| forbidden.contains(n))
        .collect();
    assert!(
        found.is_empty(),
        "Cargo.lock pulls in {found:?}: the binary must use rustls, not OpenSSL"
    );
}

/// An empty root for `chroot`: the binary as `/migrator`, the migrations as
/// `/migrations`, and `/etc` holding only what the caller puts there.
struct Jail {
    root: tempfile::TempDir,
}

impl Jail {
    fn new(migrations: &Dir) -> Self {
        let root = tempfile::tempdir().unwrap();
        fs::copy(bin(), root.path().join("migrator")).unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        let target = root.path().join("migrations");
        fs::create_dir(&target).unwrap();
        for entry in fs::read_dir(migrations.path()).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
        }
        Jail { root }
    }

    /// Copies a file of the host's `/etc` (when it exists).
    fn copy_etc(&self, name: &str) {
        let from = Path::new("/etc").join(name);
        if from.exists() {
            fs::copy(&from, self.etc(name)).unwrap();
        }
    }

    fn etc(&self, name: &str) -> PathBuf {
        self.root.path().join("etc").join(name)
    }

    /// Lists every file of the root, to show that nothing else is there.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    out.push(format!("/{}", path.strip_prefix(base).unwrap().display()));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.root.path(), self.root.path(), &mut out);
        out.sort();
        out
    }

    /// `/migrator ARGS` inside the root, with no environment but the database URL.
    fn migrator(&self, url: &str, args: &[&str]) -> Cmd {
        let mut cmd = Command::new(chroot_program().expect("chroot was found before"));
        cmd.arg(self.root.path())
            .arg("/migrator")
            .args(args)
            .env_clear()
            .env("DATABASE_URL", url)
            .env("MIGRATOR_PATH", "/migrations");
        Cmd::wrap(cmd)
    }

    /// Whether this process may chroot at all; says why not when it may not.
    fn permitted(&self) -> bool {
        let refusal = match chroot_program() {
            None => "no chroot program in PATH, /usr/sbin or /sbin".to_string(),
            Some(program) => {
                let probe = Command::new(&program)
                    .arg(self.root.path())
                    .args(["/migrator", "--version"])
                    .env_clear()
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
                let stderr = String::from_utf8_lossy(&probe.stderr).trim().to_string();
                if probe.status.success() {
                    return true;
                }
                if !stderr.contains("Operation not permitted") {
                    panic!("the binary does not run in an empty chroot: {stderr}");
                }
                stderr
            }
        };
        unavailable(
            Component::Chroot,
            &format!(
                "chroot is not permitted here ({refusal}); run the tests as root \
                 to prove the binary runs alone"
            ),
        );
        false
    }
}

/// The `chroot` program, found before the environment is cleared (a child with
/// no PATH would only be looked up in `/bin` and `/usr/bin`).
fn chroot_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("chroot"))
        .find(|program| program.is_file())
}

fn two_migrations() -> Dir {
    Dir::new(&[
        ("1_accounts.sql", "CREATE TABLE accounts (id INT);"),
        ("2_orders.sql", "CREATE TABLE orders (id INT);"),
    ])
}

/// `up`, then `status --output json`, inside the jail.
fn up_and_status(db: &TestDb, jail: &Jail, url: &str) -> Run {
    jail.migrator(url, &["up"])
        .run()
        .code(0)
        .has("applied 2 migration(s)")
        .has("2_orders")
        .has("version none -> 2");
    assert_eq!(db.history(), ["1:applied", "2:applied"]);
    let status = jail.migrator(url, &["status", "--output", "json"]).run();
    let json = status.code(0).json();
    assert_eq!(json["current_version"], 2, "{json}");
    assert_eq!(json["applied"].as_array().unwrap().len(), 2, "{json}");
    assert_eq!(json["pending"].as_array().unwrap().len(), 0, "{json}");
    status
}

engines!(runs_alone_in_an_empty_chroot_by_host_name, |e| {
    let db = TestDb::new(e);
    let jail = Jail::new(&two_migrations());
    jail.copy_etc("hosts");
    jail.copy_etc("resolv.conf");
    if !jail.permitted() {
        return;
    }
    let files = jail.files();
    assert!(
        files.iter().all(|f| f == "/migrator"
            || f == "/etc/hosts"
            || f == "/etc/resolv.conf"
            || f.starts_with("/migrations/")),
        "{files:?}"
    );
    // A local server is addressed as `localhost`, which only /etc/hosts resolves
    // (glibc's built-in `files` source, with no nsswitch.conf to name it).
    let host = match db.host().as_str() {
        "127.0.0.1" | "::1" | "localhost" => "localhost".to_string(),
        other => other.to_string(),
    };
    up_and_status(&db, &jail, &db.url_with_host(&host));
});

/// Answers A queries for one name with 127.0.0.1 on 127.0.0.1:53 (UDP), and
/// every other query with NXDOMAIN; counts the queries for that name.
struct FakeDns {
    stop: Arc<AtomicBool>,
    asked: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDns {
    fn start(name: &'static str) -> std::io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:53")?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, asked) = (stop.clone(), asked.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((len, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Some((reply, ours)) = dns_reply(&buf[..len], name) {
                        if ours {
                            asked.fetch_add(1, Ordering::Relaxed);
                        }
                        let _ = socket.send_to(&reply, from);
                    }
                }
            })
        };
        Ok(FakeDns {
            stop,
            asked,
            thread: Some(thread),
        })
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The reply to one DNS query (header + one question), and whether it asked
/// for `name`. `None` for what is not a query we can read.
fn dns_reply(query: &[u8], name: &str) -> Option<(Vec<u8>, bool)> {
    const TYPE_A: [u8; 2] = [0, 1];
    let header = query.get(..12)?;
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_lowercase());
        at += len;
    }
    let qtype = query.get(at..at + 2)?;
    let question = query.get(12..at + 4)?;
    let ours = labels.join(".") == name;

    let mut reply = Vec::with_capacity(64);
    reply.extend_from_slice(&header[..2]); // the query's id
    // Response, recursion desired and available; NXDOMAIN for other names.
    reply.extend_from_slice(&[0x81, if ours { 0x80 } else { 0x83 }]);
    let answers: u8 = u8::from(ours && qtype == TYPE_A);
    reply.extend_from_slice(&[0, 1, 0, answers, 0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if answers == 1 {
        // Name (pointer to the question), type A, class IN, TTL 60, 4 bytes.
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&[127, 0, 0, 1]);
    }
    Some((reply, ours))
}

#[test]
fn resolves_a_dns_name_in_an_empty_chroot() {
    const NAME: &str = "db.migrator.test";
    let db = TestDb::new(Engine::Pg);
    if !matches!(db.host().as_str(), "127.0.0.1" | "localhost") {
        return unavailable(
            Component::FakeDns,
            &format!(
                "the fake DNS server answers 127.0.0.1, but PostgreSQL is at {}",
                db.host()
            ),
        );
    }
    let jail = Jail::new(&two_migrations());
    jail.copy_etc("hosts");
    fs::write(jail.etc("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
    if !jail.permitted() {
        return;
    }
    let dns = match FakeDns::start(NAME) {
        Ok(dns) => dns,
        Err(e) => {
            return unavailable(
                Component::FakeDns,
                &format!("cannot serve DNS on 127.0.0.1:53 ({e})"),
            );
        }
    };
    up_and_status(&db, &jail, &db.url_with_host(NAME));
    assert!(
        dns.asked.load(Ordering::Relaxed) > 0,
        "{NAME} was resolved without asking the DNS server"
    );
}

#[test]
fn dns_replies_answer_only_the_name_served() {
    // id 0x1234, RD, one question: db.migrator.test A IN.
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["db", "migrator", "test"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let (reply, ours) = dns_reply(&query, "db.migrator.test").unwrap();
    assert!(ours);
    assert_eq!(&reply[..4], &[0x12, 0x34, 0x81, 0x80]);
    assert_eq!(&reply[reply.len() - 4..], &[127, 0, 0, 1]);
    let (reply, ours) = dns_reply(&query, "other.test").unwrap();
    assert!(!ours);
    assert_eq!(reply[3] & 0x0f, 3, "NXDOMAIN");
    assert!(dns_reply(&query[..20], "db.migrator.test").is_none());
}
