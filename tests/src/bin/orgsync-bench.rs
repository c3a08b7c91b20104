//! `orgsync-bench`: measures orgsync against the floor of reading the same entries with
//! `ldapsearch`, in the same run, on the same machine. Run it through `bench/run.sh`, which builds
//! release binaries first.
//!
//! For each size N it generates N users and N/50 groups of 50 members (every tenth group nests
//! the next one), loads them offline with `slapadd` into a private slapd, and measures with GNU
//! `time -v` (wall, CPU, peak RSS; medians of `--runs`):
//! - the floor: paged `ldapsearch` of users and of groups with the attributes orgsync reads,
//!   alternating with `orgsync test --json` (`--pairs` times; the ratio is the median of the
//!   pairs' ratios, so the host's slow spells weigh on both alike);
//! - a first `orgsync sync` into the emulated organization server (whose own handling time is
//!   reported, so orgsync's share can be judged), then an unchanged second sync with a full read.
//!
//! The slapd runs the `syncprov` overlay, so orgsync's syncs read incrementally (RFC 4533). A
//! second table measures that: the bytes on the wire of a full read and of an unchanged
//! incremental poll (through a counting TCP proxy), the poll's wall time, and a sync after 10
//! user changes and 2 membership changes.
//!
//! With `--daemon` it also measures an idle `orgsyncd` (RSS, CPU and context switches over
//! `--idle-seconds`) and the latency of `GET /v1/status` at a fixed request rate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use testkit::cli::{Installation, binary};
use testkit::measure::{Usage, machine, median, median_f64, timed};
use testkit::orgserver::{OrgServer, OrgServerOptions};
use testkit::slapd::{Slapd, SlapdOptions};

/// Benchmarks orgsync against raw ldapsearch on generated directories.
#[derive(Parser, Debug)]
struct Args {
    /// Directory sizes (users), comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,50000")]
    sizes: Vec<usize>,
    /// Repetitions per measurement (the median is reported)
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Alternating floor / `orgsync test` pairs (cheap, and the noisiest comparison)
    #[arg(long, default_value_t = 9)]
    pairs: usize,
    /// Also measure the idle daemon and the control API's latency
    #[arg(long)]
    daemon: bool,
    /// Seconds of idle daemon to observe
    #[arg(long, default_value_t = 60)]
    idle_seconds: u64,
    /// Requests per second for the status latency measurement
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Write the markdown report here too
    #[arg(long)]
    out: Option<PathBuf>,
    /// Measure nothing: serve a generated directory of this many users and an orgsync
    /// installation pointed at it until Ctrl-C, for profiling by hand
    #[arg(long, value_name = "USERS")]
    serve: Option<usize>,
}

const PAGE: usize = 500;
const GROUP_SIZE: usize = 50;

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Some(n) = args.serve {
        runtime.block_on(serve(n));
        return;
    }
    let mut report = String::new();
    let _ = writeln!(report, "{}\n", machine());
    // The daemon first, while the bench process is fresh: its latency figures include this
    // process's own scheduling, which the size runs leave busier.
    let daemon = args
        .daemon
        .then(|| runtime.block_on(measure_daemon(args.idle_seconds, args.rate)));
    let mut full_rows = String::new();
    let mut incremental_rows = String::new();
    for &n in &args.sizes {
        eprintln!("== {n} users");
        let (full, incremental) = runtime.block_on(measure_size(n, args.runs, args.pairs));
        eprintln!("{full}\n{incremental}");
        let _ = writeln!(full_rows, "{full}");
        let _ = writeln!(incremental_rows, "{incremental}");
    }
    let _ = writeln!(
        report,
        "| users | groups | floor wall | `test` wall | ratio (median of pairs) | `test` CPU | `test` peak RSS | 1st `sync` wall | server import time | ratio to floor+server | 2nd `sync` (full read) wall | 2nd sync imports |"
    );
    let _ = writeln!(
        report,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    report += &full_rows;
    let _ = writeln!(
        report,
        "\n| users | full read: bytes | unchanged incremental poll: wall | bytes | bytes ratio | sync after 10 user + 2 membership changes: wall | members sent | groups sent |"
    );
    let _ = writeln!(report, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    report += &incremental_rows;
    if let Some(text) = daemon {
        let _ = writeln!(report, "\n{text}");
    }
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).expect("write the report");
    }
}

/// The generated directory as LDIF (with the base entries), written to `path`.
fn generate(path: &Path, suffix: &str, n: usize) {
    let mut out = String::with_capacity(n * 250);
    let _ = write!(
        out,
        "dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: example\n\n\
         dn: ou=people,{suffix}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{suffix}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for i in 0..n {
        let _ = write!(
            out,
            "dn: uid=u{i:07},ou=people,{suffix}\nobjectClass: inetOrgPerson\nuid: u{i:07}\ncn: User {i}\nsn: {i}\nmail: u{i:07}@example.org\n\n"
        );
    }
    let groups = n.div_ceil(GROUP_SIZE);
    for g in 0..groups {
        let _ = write!(
            out,
            "dn: cn=g{g:05},ou=groups,{suffix}\nobjectClass: groupOfNames\ncn: g{g:05}\n"
        );
        for i in (g * GROUP_SIZE)..((g + 1) * GROUP_SIZE).min(n) {
            let _ = writeln!(out, "member: uid=u{i:07},ou=people,{suffix}");
        }
        if g % 10 == 0 && g + 1 < groups {
            let _ = writeln!(out, "member: cn=g{:05},ou=groups,{suffix}", g + 1);
        }
        out.push('\n');
    }
    std::fs::write(path, out).expect("write the LDIF");
}

fn installation(slapd: &Slapd, server: &OrgServer) -> Installation {
    let mut inst = Installation::new();
    inst.use_slapd(slapd);
    inst.set("ldap.page_size", &PAGE.to_string());
    inst.set("sync.large_import", "true");
    inst.set("server.url", &server.base_url());
    inst.set_env("ORGSYNC_LDAP_BIND_PASSWORD", slapd.admin_password());
    inst.run(&["login", &server.client_id(), &server.client_secret()])
        .ok();
    inst
}

fn orgsync_timed(inst: &Installation, args: &[&str]) -> Usage {
    let mut command = inst.command("/usr/bin/time");
    command.arg("-v").arg(binary("orgsync")).args(args);
    timed(command)
}

/// A TCP proxy on loopback that counts the bytes passing through it in both directions.
struct CountingProxy {
    port: u16,
    bytes: Arc<AtomicU64>,
    open: Arc<AtomicUsize>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl CountingProxy {
    async fn start(upstream: u16) -> CountingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let bytes = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (counted, opened) = (bytes.clone(), open.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (counted, opened) = (counted.clone(), opened.clone());
                opened.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                        && let Ok((up, down)) =
                            tokio::io::copy_bidirectional(&mut client, &mut server).await
                    {
                        counted.fetch_add(up + down, Ordering::SeqCst);
                    }
                    opened.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        CountingProxy {
            port,
            bytes,
            open,
            accepting,
        }
    }

    /// The bytes counted so far, once every connection has closed.
    async fn settled_bytes(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.bytes.load(Ordering::SeqCst)
    }
}

/// 10 user changes (4 hires, 3 leavers, 3 renamed) and 2 membership changes, distinct per `run`.
/// The leavers are members of the last group, which changes with them.
fn change_directory(slapd: &Slapd, n: usize, run: usize) {
    let suffix = slapd.suffix();
    let person = |i: usize| format!("uid=u{i:07},ou=people,{suffix}");
    let mut adds = String::new();
    for k in 0..4 {
        let uid = format!("new{run}x{k}");
        let _ = write!(
            adds,
            "dn: uid={uid},ou=people,{suffix}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {uid}@example.org\n\n"
        );
    }
    slapd.add_ldif(&adds);
    // Users from the end of the directory (so the last group changes too), distinct per run.
    let base = n - 1 - run * 10;
    let mut changes = String::new();
    for k in 0..3 {
        let _ = write!(changes, "dn: {}\nchangetype: delete\n\n", person(base - k));
    }
    for k in 3..6 {
        let _ = write!(
            changes,
            "dn: {}\nchangetype: modify\nreplace: cn\ncn: Renamed {run}\n\n",
            person(base - k)
        );
    }
    let _ = write!(
        changes,
        "dn: cn=g00000,ou=groups,{suffix}\nchangetype: modify\ndelete: member\nmember: {}\n\n",
        person(run)
    );
    let _ = write!(
        changes,
        "dn: cn=g00001,ou=groups,{suffix}\nchangetype: modify\nadd: member\nmember: uid=new{run}x0,ou=people,{suffix}\n\n"
    );
    slapd.modify_ldif(&changes);
}

/// How many members and groups the last accepted import request carried.
fn last_import_size(server: &OrgServer) -> (usize, usize) {
    let last = server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/organization/import") && r.status == 200)
        .expect("an accepted import");
    let body: serde_json::Value = serde_json::from_str(&last.body).expect("JSON import body");
    let count = |key: &str| body[key].as_array().map_or(0, Vec::len);
    (count("members"), count("groups"))
}

/// A private slapd holding the generated directory of `n` users.
fn directory(n: usize) -> Slapd {
    let dir = tempfile::tempdir().expect("temp dir");
    let ldif = dir.path().join("directory.ldif");
    generate(&ldif, "dc=example,dc=org", n);
    Slapd::start(SlapdOptions {
        tls: false,
        syncprov: true,
        preload_ldif: Some(ldif),
        ..SlapdOptions::default()
    })
}

/// `--serve`: the directory, an organization server and an installation, until Ctrl-C.
async fn serve(n: usize) {
    let slapd = directory(n);
    let server = OrgServer::start(OrgServerOptions::default()).await;
    let inst = installation(&slapd, &server);
    println!(
        "Serving {n} users at {}. In another shell:\n\n  export ORGSYNC_CONFIG={} ORGSYNC_DATA_DIR={} ORGSYNC_LDAP_BIND_PASSWORD={}\n  {} test --json\n\nCtrl-C stops.",
        slapd.url(),
        inst.config_file().display(),
        inst.data_dir().display(),
        slapd.admin_password(),
        binary("orgsync").display(),
    );
    let _ = tokio::signal::ctrl_c().await;
}

async fn measure_size(n: usize, runs: usize, pairs: usize) -> (String, String) {
    let suffix = "dc=example,dc=org";
    let slapd = directory(n);
    let proxy = CountingProxy::start(slapd.port()).await;

    // The floor: the same two paged searches orgsync makes, with the same attributes, one
    // after the other.
    let search = |base: &str, filter: &str, attrs: &str| {
        format!(
            "LDAPCONF=/dev/null ldapsearch -x -LLL -H {} -D {} -w {} -b {base},{suffix} -E pr={PAGE}/noprompt '{filter}' {attrs} >/dev/null",
            slapd.url(),
            slapd.admin_dn(),
            slapd.admin_password()
        )
    };
    let floor_script = format!(
        "{} && {}",
        search(
            "ou=people",
            "(objectClass=inetOrgPerson)",
            "entryUUID mail uid"
        ),
        search(
            "ou=groups",
            "(objectClass=groupOfNames)",
            "cn entryUUID member"
        )
    );
    let probe_server = OrgServer::start(OrgServerOptions::default()).await;
    let inst = installation(&slapd, &probe_server);
    // Floor and `test` alternate, so a slow spell of the host weighs on both alike; the ratio
    // is the median of the pairs' ratios.
    let (mut floors, mut tests, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..pairs {
        let mut command = Command::new("/usr/bin/time");
        command.args(["-v", "sh", "-c", &floor_script]);
        let floor = timed(command);
        let test = orgsync_timed(&inst, &["test", "--json"]);
        ratios.push(test.wall / floor.wall);
        floors.push(floor);
        tests.push(test);
    }
    let floor = median(floors);
    let test = median(tests);
    let ratio = median_f64(ratios);

    let mut first = Vec::new();
    let mut server_times = Vec::new();
    let mut second = Vec::new();
    let mut second_imports = 0;
    let mut full_bytes = Vec::new();
    let mut poll = Vec::new();
    let mut poll_bytes = Vec::new();
    let mut changed = Vec::new();
    let mut sent = (0, 0);
    for run in 0..runs {
        let server = OrgServer::start(OrgServerOptions::default()).await;
        let inst = installation(&slapd, &server);
        inst.set("ldap.port", &proxy.port.to_string());
        first.push(orgsync_timed(&inst, &["sync"]));
        server_times.push(server.import_time().as_secs_f64());

        // An unchanged sync that reads everything, as without change tracking (the
        // reconciliation is not due: the first sync just sent everything).
        inst.set("ldap.incremental", "false");
        let before = server.import_count();
        let bytes = proxy.settled_bytes().await;
        second.push(orgsync_timed(&inst, &["sync"]));
        full_bytes.push((proxy.settled_bytes().await - bytes) as f64);
        second_imports = second_imports.max(server.import_count() - before);

        // Incremental polls: unchanged, then after a few changes. Turning change tracking back
        // on reads in full once more (the settings changed), which stores the copy to poll from.
        inst.set("ldap.incremental", "true");
        orgsync_timed(&inst, &["sync"]);
        let before = server.import_count();
        let bytes = proxy.settled_bytes().await;
        poll.push(orgsync_timed(&inst, &["sync"]));
        poll_bytes.push((proxy.settled_bytes().await - bytes) as f64);
        assert_eq!(
            server.import_count(),
            before,
            "an unchanged poll sent an import"
        );
        change_directory(&slapd, n, run);
        changed.push(orgsync_timed(&inst, &["sync"]));
        sent = last_import_size(&server);
    }
    let full_bytes = median_f64(full_bytes);
    let poll_bytes = median_f64(poll_bytes);
    let poll = median(poll);
    let changed = median(changed);
    let incremental = format!(
        "| {n} | {:.0} KiB | {:.0} ms | {poll_bytes:.0} B | {:.3}% | {:.0} ms | {} | {} |",
        full_bytes / 1024.0,
        poll.wall * 1000.0,
        poll_bytes * 100.0 / full_bytes,
        changed.wall * 1000.0,
        sent.0,
        sent.1,
    );
    let first = median(first);
    let server_time = median_f64(server_times);
    let second = median(second);
    let groups = n.div_ceil(GROUP_SIZE);
    let full = format!(
        "| {n} | {groups} | {:.2} s | {:.2} s | {:.2}× | {:.2} s | {:.0} MiB | {:.2} s | {:.2} s | {:.2}× | {:.2} s | {second_imports} |",
        floor.wall,
        test.wall,
        ratio,
        test.cpu,
        test.rss_mib,
        first.wall,
        server_time,
        first.wall / (floor.wall + server_time),
        second.wall,
    );
    (full, incremental)
}

fn proc_status(pid: u32) -> BTreeMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// utime + stime of a process in clock ticks, and its threads' context switches.
fn proc_cpu_and_switches(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = fields
        .get(11)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    let mut switches = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            for line in status.lines() {
                if let Some(v) = line
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    switches += v.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    (ticks, switches)
}

async fn measure_daemon(idle_seconds: u64, rate: u64) -> String {
    let l = testkit::ldif::Ldif::new("dc=example,dc=org");
    // With syncprov, so the idle daemon holds its persistent search open as in production.
    let slapd = Slapd::start(SlapdOptions {
        tls: false,
        syncprov: true,
        ..SlapdOptions::default()
    });
    slapd.add_ldif(&(l.base() + &l.person("a", "A A", Some("a@example.org"))));
    let server = OrgServer::start(OrgServerOptions::default()).await;
    let inst = installation(&slapd, &server);
    inst.set("daemon.port", "0");
    inst.set("sync.interval_minutes", "60");
    let mut child = inst
        .command(binary("orgsyncd"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start orgsyncd");
    let pid = child.id();
    let client = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(client)) =
                orgsync_proto::client::Client::discover(&inst.data_dir()).await
            {
                break client;
            }
            assert!(Instant::now() < deadline, "orgsyncd did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    client
        .sync(false)
        .await
        .expect("a first sync through the daemon");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, switches0) = proc_cpu_and_switches(pid);
    eprintln!("observing the idle daemon for {idle_seconds} s");
    tokio::time::sleep(Duration::from_secs(idle_seconds)).await;
    let (cpu1, switches1) = proc_cpu_and_switches(pid);
    let status = proc_status(pid);
    let rss = status.get("VmRSS").cloned().unwrap_or_default();
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let idle_cpu = (cpu1 - cpu0) as f64 / ticks_per_second;

    // Fixed-rate load: one request every 1/rate s for 10 s, each timed on its own.
    let total = rate * 10;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut ticker = tokio::time::interval(interval);
    let mut tasks = Vec::with_capacity(total as usize);
    for _ in 0..total {
        ticker.tick().await;
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            client.status().await.map(|_| started.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(latency)) => latencies.push(latency.as_secs_f64() * 1000.0),
            _ => errors += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];

    // A pushed change: from the LDAP add to the new member in the organization.
    let mut pushed = Vec::new();
    for k in 0..3 {
        let uid = format!("pushed{k}");
        let email = format!("{uid}@example.org");
        slapd.add_ldif(&l.person(&uid, &uid, Some(&email)));
        let added = Instant::now();
        while !server.managed_emails().contains(&email) {
            assert!(
                added.elapsed() < Duration::from_secs(60),
                "a pushed change did not arrive"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pushed.push(added.elapsed().as_secs_f64());
    }
    let _ = child.kill();
    let _ = child.wait();
    format!(
        "Daemon: idle RSS {rss} after one sync; over {idle_seconds} s idle: {idle_cpu:.2} s CPU, {} context switches (all threads).\n\n\
         `GET /v1/status` at {rate} requests/s for 10 s ({} requests, {errors} errors): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms.\n\n\
         A directory change pushed to the daemon (refreshAndPersist, 2 s debounce) reached the organization in {:.2} s (median of 3; max {:.2} s).",
        switches1 - switches0,
        latencies.len(),
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or(0.0),
        median_f64(pushed.clone()),
        pushed.iter().copied().fold(0.0, f64::max),
    )
}
