//! A throw-away LAN: network namespaces on a bridge, and peer networks
//! running inside them.
//!
//! Nothing is created in (or sent into) the root namespace: the bridge
//! lives in a namespace of its own and veth ends are created directly
//! inside the lab's namespaces. Dropping the [`Lab`] deletes every
//! namespace it made (and with them their links), even when a test panics.
//! Hosts have no default route, as on a bare LAN segment.

use std::fs::File;
use std::process::Command;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};
use p2pnet::{PeerId, PeerNetwork, PeerNetworkBuilder};

/// True when namespaces can be made here (root, with `ip`); otherwise
/// prints why the test is skipped.
pub fn can_run(test: &str) -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED {test}: needs root for network namespaces; CI runs it as root");
        return false;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        eprintln!("SKIPPED {test}: the `ip` tool (iproute2) is not installed");
        return false;
    }
    true
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces owned by one test; all deleted on drop.
pub struct Lab {
    tag: String,
    names: Vec<String>,
    switch: String,
    hosts: usize,
}

impl Lab {
    /// A lab with its bridge. `tag` keeps names unique between tests.
    pub fn new(tag: &str) -> Lab {
        let mut lab = Lab {
            tag: format!("p2p{}{tag}", std::process::id()),
            names: Vec::new(),
            switch: String::new(),
            hosts: 0,
        };
        let switch = lab.add_ns("sw");
        run(&[
            "ip",
            "-n",
            &switch,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        run(&["ip", "-n", &switch, "link", "set", "br0", "up"]);
        lab.switch = switch;
        lab
    }

    fn add_ns(&mut self, short: &str) -> String {
        let name = format!("{}{short}", self.tag);
        // Recorded first, so a half-made namespace is still deleted.
        self.names.push(name.clone());
        run(&["ip", "netns", "add", &name]);
        // No duplicate address detection: addresses are usable at once.
        run(&[
            "ip",
            "netns",
            "exec",
            &name,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// A host on the bridge: `eth0` with these addresses (`addr/len`; none
    /// for link-local IPv6 only). Returns its namespace.
    pub fn host(&mut self, addresses: &[String]) -> String {
        self.hosts += 1;
        let short = format!("h{}", self.hosts);
        let name = self.add_ns(&short);
        let port = format!("p{short}");
        run(&[
            "ip",
            "link",
            "add",
            "eth0",
            "netns",
            &name,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &self.switch,
        ]);
        run(&[
            "ip",
            "-n",
            &self.switch,
            "link",
            "set",
            &port,
            "master",
            "br0",
        ]);
        run(&["ip", "-n", &self.switch, "link", "set", &port, "up"]);
        for address in addresses {
            run(&[
                "ip", "-n", &name, "addr", "add", address, "dev", "eth0", "nodad",
            ]);
        }
        run(&["ip", "-n", &name, "link", "set", "eth0", "up"]);
        name
    }

    /// Takes a host's link down or up (the host leaves or rejoins the LAN).
    pub fn set_link(&self, ns: &str, up: bool) {
        run(&[
            "ip",
            "-n",
            ns,
            "link",
            "set",
            "eth0",
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Enters namespace `ns` on the calling thread.
pub fn enter(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {ns}: {e}"));
}

/// A peer network running on its own thread and runtime inside a
/// namespace. Every socket it opens (listener, dials, discovery) belongs to
/// that namespace, blocking-pool threads included. The test thread may
/// read its tables and send through it; dropping it shuts it down.
pub struct NsNode {
    pub network: PeerNetwork,
    pub ns: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl NsNode {
    pub fn start(
        ns: &str,
        builder: impl FnOnce() -> PeerNetworkBuilder + Send + 'static,
    ) -> NsNode {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let name = ns.to_owned();
        let thread = std::thread::spawn(move || {
            enter(&name);
            let name = Arc::new(name);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_start(move || enter(&name))
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let network = builder().start().await.expect("node starts");
                ready_tx.send(network.clone()).expect("test waits");
                let _ = stopped.await;
                network.shutdown().await;
            });
        });
        let network = ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("node started");
        NsNode {
            network,
            ns: ns.to_owned(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn id(&self) -> PeerId {
        self.network.local_peer_id()
    }

    /// Peers this node has an open channel to.
    pub fn open_peers(&self) -> Vec<PeerId> {
        self.network
            .channels()
            .into_iter()
            .filter(|c| matches!(c.state, p2pnet::proto::ChannelState::Open { .. }))
            .filter_map(|c| c.peer)
            .collect()
    }
}

impl Drop for NsNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether every node has an open channel to every other.
pub fn full_mesh(nodes: &[NsNode]) -> bool {
    nodes.iter().all(|node| {
        let open = node.open_peers();
        nodes
            .iter()
            .filter(|other| other.id() != node.id())
            .all(|other| open.contains(&other.id()))
    })
}
