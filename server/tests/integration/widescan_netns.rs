//! Scan jobs end to end, inside network namespaces this test creates and
//! deletes (root only; CI runs it as root): the server runs in the
//! scanner's namespace with test mode on.
//!
//! ```text
//!   scanner ::1  (the server: its node and its scan jobs)
//!   live    ::10, ::20
//!   silent  ::30  (echo_ignore_all)
//!   peer    ::40  (a p2pnet node and a widescan listener announcing it)
//! ```
//!
//! One job is interrupted by a server shutdown, resumed by the next start,
//! stopped by the administrator and resumed again: it completes, every
//! target host received exactly one probe, the hits are exactly the live
//! hosts, and the instance found is a known peer of the node with source
//! `widescan`.

use std::{
    collections::BTreeSet,
    net::Ipv6Addr,
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::common::server::{Running, config};
use netns_lab::{Lab, can_run, enter};
use p2pnet::{PeerId, PeerNetwork, PeerSource};
use server::store::{ScanJobRecord, Store};
use server::widescan::ScanRequest;
use widescan::{
    Contact, Identity, Listener, ListenerOptions, ProbeCodec, RunKey, prefix::AddressPolicy,
};

const PREFIX: &str = "fd00:5ca7:2::/120";
const PEER_INSTANCE: u64 = 0xbbbb_0002;

/// Another instance in `ns`: a p2pnet node listening on every address and
/// a widescan listener that answers probes with the node's port.
struct PeerInstance {
    id: PeerId,
    port: u16,
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl PeerInstance {
    fn start(ns: &str) -> Self {
        let ns = ns.to_owned();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            enter(&ns);
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async move {
                let dir = tempfile::tempdir().expect("tempdir");
                let network = PeerNetwork::builder()
                    .identity_file(dir.path().join("peer.key"))
                    .listen_ip("::".parse().expect("ip"))
                    .port(0)
                    .start()
                    .await
                    .expect("peer node");
                let port = network.local_addr().expect("listening").port();
                let codec = ProbeCodec::new(
                    RunKey::random().expect("key"),
                    Identity::new(
                        PEER_INSTANCE,
                        port,
                        Contact::new("peer-instance").expect("c"),
                    )
                    .expect("identity"),
                );
                let options = ListenerOptions {
                    answer_policy: Some(AddressPolicy::default().test_mode(true)),
                    ..ListenerOptions::default()
                };
                let (listener, _events) = Listener::start(codec, options).expect("listener");
                ready_tx
                    .send((network.local_peer_id(), port))
                    .expect("ready");
                tokio::task::spawn_blocking(move || stopped.recv())
                    .await
                    .expect("wait")
                    .ok();
                listener.stop();
                let _ = listener.join();
                network.shutdown().await;
            });
        });
        let (id, port) = ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the peer instance starts");
        Self {
            id,
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for PeerInstance {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn a(s: &str) -> Ipv6Addr {
    s.parse().expect("address")
}

/// Echo requests namespace `ns` received (its kernel's ICMPv6 counter).
fn echoes_received(ns: &str) -> u64 {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "cat", "/proc/net/snmp6"])
        .output()
        .expect("snmp6");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Icmp6InEchos"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Icmp6InEchos")
}

async fn job(store: &dyn Store, id: i64) -> ScanJobRecord {
    store.scan_job(id).await.expect("read").expect("the job")
}

/// Waits until the stored job satisfies `done`.
async fn until(
    store: &dyn Store,
    id: i64,
    what: &str,
    done: impl Fn(&ScanJobRecord) -> bool,
) -> ScanJobRecord {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = job(store, id).await;
        if done(&row) {
            return row;
        }
        assert!(Instant::now() < deadline, "{what}: {row:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn checkpoint(row: &ScanJobRecord) -> u128 {
    row.checkpoint.parse().expect("decimal")
}

#[test]
fn scan_jobs_survive_restarts_and_find_hosts_and_peers() {
    if !can_run("scan_jobs_survive_restarts_and_find_hosts_and_peers") {
        return;
    }
    let tag;
    {
        let mut lab = Lab::new("j");
        tag = lab.tag().to_owned();
        let scanner = lab.host("s", &["fd00:5ca7:2::1/64"]);
        let targets = [
            lab.host("t1", &["fd00:5ca7:2::10/64"]),
            lab.host("t2", &["fd00:5ca7:2::20/64"]),
            lab.host("t3", &["fd00:5ca7:2::30/64"]),
            lab.host("t4", &["fd00:5ca7:2::40/64"]),
        ];
        lab.silence(&targets[2]);
        let peer = PeerInstance::start(&targets[3]);
        // The listener's answer budget fills in its first moments.
        std::thread::sleep(Duration::from_millis(500));
        lab.within(&scanner, || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(scenario(&peer, &targets));
        });
        drop(peer);
    }
    assert!(
        Lab::leftovers(&tag).is_empty(),
        "namespaces left behind: {:?}",
        Lab::leftovers(&tag)
    );
}

async fn scenario(peer: &PeerInstance, targets: &[String]) {
    let before: Vec<u64> = targets.iter().map(|ns| echoes_received(ns)).collect();
    let data = tempfile::tempdir().expect("tempdir");
    let settings = |raw: &mut server::config::RawConfig| {
        raw.widescan.test_mode = true;
        raw.widescan.cooldown_secs = 1;
        raw.widescan.max_jobs = 1;
    };
    let server = Running::start(config(data.path(), settings)).await;
    let store = server.store.clone();
    let service = server.widescan();
    let request = ScanRequest {
        prefixes: PREFIX.into(),
        excludes: "fd00:5ca7:2::1/128".into(),
        rate: "20".into(),
        hardware: "cpu".into(),
        seed: "7".into(),
        ..ScanRequest::default()
    };
    let id = service.start("admin", &request).await.expect("job starts");
    let total = 255u128;
    // One job at a time here: another is refused, and nothing is stored.
    let busy = service.start("admin", &request).await.expect_err("no slot");
    assert!(
        matches!(busy, server::widescan::ScanError::Busy(1)),
        "{busy}"
    );
    assert_eq!(store.scan_jobs(10).await.expect("jobs").len(), 1);

    // 1. The server stops mid-scan: the job is interrupted at an exact
    //    checkpoint.
    until(store.as_ref(), id, "first probes", |r| checkpoint(r) >= 30).await;
    server.shutdown().await;
    // The server closed its store: read the file as the next start will.
    let url = config(data.path(), settings).database_url;
    let reopened = server::store::connect(&url, 1, Duration::from_secs(5))
        .await
        .expect("store");
    let interrupted = job(reopened.as_ref(), id).await;
    reopened.close().await;
    assert_eq!(interrupted.state, "interrupted");
    let first = checkpoint(&interrupted);
    assert!(first > 0 && first < total, "{interrupted:?}");
    assert_eq!(
        interrupted.sent as u128, first,
        "one probe per index handled"
    );

    // 2. The next start resumes it; the administrator stops it.
    let server = Running::start(config(data.path(), settings)).await;
    let store = server.store.clone();
    let service = server.widescan();
    let resumed = until(store.as_ref(), id, "resumed", |r| {
        r.runs == 2 && r.state == "running"
    })
    .await;
    assert!(checkpoint(&resumed) >= first);
    until(store.as_ref(), id, "more probes", |r| {
        checkpoint(r) >= first + 30
    })
    .await;
    service.stop("admin", id).await.expect("stops");
    let stopped = until(store.as_ref(), id, "stopped", |r| r.state == "stopped").await;
    let second = checkpoint(&stopped);
    assert!(second > first && second < total, "{stopped:?}");
    assert_eq!(stopped.sent as u128, second);
    assert!(
        service.stop("admin", id).await.is_err(),
        "a stopped job is not running"
    );

    // 3. Resumed by hand, it completes.
    service.resume("admin", id).await.expect("resumes");
    assert!(service.resume("admin", id).await.is_err(), "not twice");
    let done = until(store.as_ref(), id, "completed", |r| r.state == "completed").await;
    assert_eq!(checkpoint(&done), total);
    assert_eq!(
        done.sent, 255,
        "the union of the runs covers the space once"
    );
    assert_eq!(done.runs, 3);
    assert_eq!(done.error, None);
    assert!(done.adapter.starts_with("CPU"), "{}", done.adapter);
    assert!(done.generated_per_sec > 0);
    // Every target host received exactly one probe over the three runs.
    for (ns, before) in targets.iter().zip(before) {
        assert_eq!(
            echoes_received(ns) - before,
            1,
            "echo requests received by {ns}"
        );
    }

    // The hits are exactly the live hosts (the silent one is not).
    let results = store
        .scan_results_after(id, 0, 1000)
        .await
        .expect("results");
    let hits: BTreeSet<Ipv6Addr> = results
        .iter()
        .filter(|r| r.kind == "hit")
        .map(|r| a(&r.addr))
        .collect();
    assert_eq!(
        hits,
        ["fd00:5ca7:2::10", "fd00:5ca7:2::20", "fd00:5ca7:2::40"]
            .map(a)
            .into()
    );
    assert_eq!(done.hits, 3);
    // The other instance, with its node's port.
    let peers: Vec<_> = results.iter().filter(|r| r.kind == "peer").collect();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0].addr, "fd00:5ca7:2::40");
    assert_eq!(peers[0].port, i64::from(peer.port));
    assert_eq!(peers[0].instance_id, format!("{PEER_INSTANCE:016x}"));
    assert_eq!(peers[0].contact, "peer-instance");

    // The node dialled it: a known peer with source widescan, kept across
    // the restarts.
    let node = server.node.clone().expect("node");
    let known = node.network().known_peer(&peer.id).expect("a known peer");
    assert_eq!(known.source, PeerSource::Widescan);
    assert!(!known.approved, "found is not approved");

    // A second job finds it again; the trust policy gates the channel the
    // node opens like any discovered peer's: it waits for approval.
    let again = ScanRequest {
        prefixes: "fd00:5ca7:2::40/128".into(),
        hardware: "cpu".into(),
        ..ScanRequest::default()
    };
    let second = service.start("admin", &again).await.expect("second job");
    until(store.as_ref(), second, "second job", |r| {
        r.state == "completed"
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !node
        .network()
        .pending_approvals()
        .iter()
        .any(|p| p.peer == peer.id)
    {
        assert!(
            Instant::now() < deadline,
            "not waiting for approval: {:?}",
            node.network().channels()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}

/// The server binary, run in namespace `ns` (behind `wrapper`, e.g.
/// `setpriv …`), printing to a pipe that a thread keeps reading.
struct ServerInNs {
    child: std::process::Child,
    base: String,
    /// What it wrote to stderr so far.
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ServerInNs {
    fn start(ns: &str, wrapper: &[&str], env: &[(&str, &str)], data: &std::path::Path) -> Self {
        use std::{io::BufRead, process::Stdio};
        let mut command = std::process::Command::new("ip");
        command
            .args(["netns", "exec", ns])
            .args(wrapper)
            .arg(env!("CARGO_BIN_EXE_p2pnet-server"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env(
                "P2PNET_AUTH__ADMIN_PASSWORD",
                crate::common::server::PASSWORD,
            )
            .env("P2PNET_NODE__LISTEN", "127.0.0.1:0")
            .env("P2PNET_NODE__DISCOVERY__ENABLED", "false")
            .env("P2PNET_WIDESCAN__TEST_MODE", "true")
            .env("P2PNET_LOG__FILTER", "warn")
            .envs(env.iter().copied())
            // A headless machine: no session variables for Vulkan's layers.
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("NODEVICE_SELECT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("server starts");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let errors = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in errors.lines().map_while(Result::ok) {
                eprintln!("server: {line}");
                let mut all = kept
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                all.push_str(&line);
                all.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the server prints its address")
                .expect("utf-8");
            if let Some(rest) = line.trim().strip_prefix("Control panel: ") {
                break rest.trim_end_matches('/').to_owned();
            }
        };
        // Keep reading: a full pipe would block the server's next write.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            base,
            stderr,
        }
    }

    /// SIGTERM, and how it exited.
    fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("server exits")
    }
}

/// A logged-in terminal on a server at `base`.
struct Terminal {
    client: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Terminal {
    async fn login(base: &str) -> Result<Self, String> {
        use reqwest::header;
        let client = crate::common::server::client();
        let r = client
            .post(format!("{base}/auth/login"))
            .form(&[
                ("username", "admin"),
                ("password", crate::common::server::PASSWORD),
                ("next", "/"),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let cookie = r.headers()[header::SET_COOKIE]
            .to_str()
            .map_err(|e| e.to_string())?
            .split(';')
            .next()
            .unwrap_or_default()
            .to_owned();
        let html = client
            .get(format!("{base}/"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let csrf = html
            .split("name=\"csrf-token\" content=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or("no CSRF token")?
            .to_owned();
        Ok(Self {
            client,
            base: base.to_owned(),
            cookie,
            csrf,
        })
    }

    /// Runs `line`; its lines as JSON text.
    async fn run(&self, line: &str) -> Result<String, String> {
        let body: serde_json::Value = self
            .client
            .post(format!("{}/api/parser/input", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header(reqwest::header::ORIGIN, &self.base)
            .json(&serde_json::json!({ "line": line }))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        Ok(body["lines"].to_string())
    }

    /// Waits until `scan show ID` contains `what`; its text.
    async fn until_shown(&self, id: u32, what: &str) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let shown = self.run(&format!("scan show {id}")).await?;
            if shown.contains(what) {
                return Ok(shown);
            }
            if Instant::now() > deadline {
                return Err(format!("never {what}: {shown}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs `scenario` against a server in namespace `ns` from a thread there.
fn against<F: std::future::Future<Output = Result<(), String>>>(
    lab: &Lab,
    ns: &str,
    server: ServerInNs,
    scenario: impl FnOnce(String) -> F + Send,
) {
    let base = server.base.clone();
    let stderr = server.stderr.clone();
    let outcome = lab.within(ns, || {
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(scenario(base))
    });
    let status = server.stop();
    outcome.unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "the server stops cleanly: {status}");
    // Only what was asked for: no stray lines from Vulkan's layers.
    let stderr = stderr
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
}

/// The server binary without `CAP_NET_RAW` (an unprivileged user, every
/// capability dropped), in a namespace of its own: a scan job fails at
/// once and says why, and the server keeps serving.
#[test]
fn without_cap_net_raw_a_job_fails_at_once_with_the_reason() {
    if !can_run("without_cap_net_raw_a_job_fails_at_once_with_the_reason") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let mut lab = Lab::new("c");
    let ns = lab.host("s", &["fd00:5ca7:3::1/64"]);
    let data = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let unprivileged = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
    ];
    let server = ServerInNs::start(&ns, &unprivileged, &[], data.path());
    against(&lab, &ns, server, |base| async move {
        let t = Terminal::login(&base).await?;
        let started = t
            .run("scan start -p fd00:5ca7:3::/120 --hardware cpu")
            .await?;
        if !started.contains("scan job 1 started") {
            return Err(format!("not started: {started}"));
        }
        let shown = t.until_shown(1, "failed").await?;
        if !shown.contains("CAP_NET_RAW") {
            return Err(format!("no reason given: {shown}"));
        }
        // The server still answers, and says so in the list.
        let listed = t.run("scan list").await?;
        if !listed.contains("failed") {
            return Err(format!("the list does not say so: {listed}"));
        }
        Ok(())
    });
}

/// No GPU (every Vulkan driver hidden): an explicit `gpu` job is refused at
/// its field and nothing is stored; `auto` runs on the CPU.
#[test]
fn without_a_gpu_the_hardware_field_is_refused_and_auto_uses_the_cpu() {
    if !can_run("without_a_gpu_the_hardware_field_is_refused_and_auto_uses_the_cpu") {
        return;
    }
    let mut lab = Lab::new("g");
    let ns = lab.host("s", &["fd00:5ca7:5::1/64"]);
    let data = tempfile::tempdir().expect("tempdir");
    let no_gpu = [
        ("WGPU_BACKEND", "vulkan"),
        ("VK_ICD_FILENAMES", "/nonexistent.json"),
        ("VK_DRIVER_FILES", "/nonexistent.json"),
        ("P2PNET_WIDESCAN__COOLDOWN_SECS", "0"),
    ];
    let server = ServerInNs::start(&ns, &[], &no_gpu, data.path());
    against(&lab, &ns, server, |base| async move {
        let t = Terminal::login(&base).await?;
        let refused = t
            .run("scan start -p fd00:5ca7:5::/120 -x fd00:5ca7:5::1/128 --hardware gpu")
            .await?;
        if !(refused.contains("hardware: GPU unavailable")
            && refused.contains("choose auto or cpu"))
        {
            return Err(format!("not refused at its field: {refused}"));
        }
        let listed = t.run("scan list").await?;
        if !listed.contains("no scan jobs") {
            return Err(format!("something was stored: {listed}"));
        }
        let started = t
            .run("scan start -p fd00:5ca7:5::/120 -x fd00:5ca7:5::1/128 --hardware auto")
            .await?;
        if !started.contains("scan job 1 started") {
            return Err(format!("auto did not start: {started}"));
        }
        let shown = t.until_shown(1, "completed").await?;
        if !shown.contains("adapter   CPU") {
            return Err(format!("auto did not fall back to the CPU: {shown}"));
        }
        Ok(())
    });
}

/// A GPU job (lavapipe where there is no hardware GPU) on a headless
/// machine: the server's output carries no stray Vulkan layer lines (the
/// check is in `against`).
#[test]
fn a_gpu_job_prints_no_vulkan_noise() {
    if !can_run("a_gpu_job_prints_no_vulkan_noise") {
        return;
    }
    let mut lab = Lab::new("v");
    let ns = lab.host("s", &["fd00:5ca7:6::1/64"]);
    let data = tempfile::tempdir().expect("tempdir");
    let server = ServerInNs::start(
        &ns,
        &[],
        &[("P2PNET_WIDESCAN__COOLDOWN_SECS", "0")],
        data.path(),
    );
    against(&lab, &ns, server, |base| async move {
        let t = Terminal::login(&base).await?;
        let started = t
            .run("scan start -p fd00:5ca7:6::/120 -x fd00:5ca7:6::1/128 --hardware gpu")
            .await?;
        if started.contains("GPU unavailable") {
            eprintln!("SKIPPED a_gpu_job_prints_no_vulkan_noise: no Vulkan adapter here");
            return Ok(());
        }
        if !started.contains("scan job 1 started") {
            return Err(format!("not started: {started}"));
        }
        let shown = t.until_shown(1, "completed").await?;
        if !shown.contains("adapter   GPU") {
            return Err(format!("not on the GPU: {shown}"));
        }
        Ok(())
    });
}
