//! A throw-away LAN for tests: network namespaces on a bridge.
//!
//! Nothing is created in (or sent into) the root namespace: the bridge lives in a
//! namespace of its own and veth ends are created directly inside the lab's
//! namespaces. Dropping the [`Lab`] deletes every namespace it made, and with them
//! their links, even when a test panics. Hosts have no default route, as on a bare
//! LAN segment; tests add the routes they need with [`run`].
//!
//! Used by the netns tests and benchmarks of `p2pnet` and `widescan`; needs root
//! and iproute2 (see [`can_run`]).

use std::fs::File;
use std::process::Command;

use nix::sched::{CloneFlags, setns};

/// True when namespaces can be made here (root, with `ip`); otherwise prints why
/// the test is skipped.
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

/// Runs a command, panicking with its output when it fails.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Enters namespace `ns` on the calling thread: sockets it opens from then on, and
/// threads it spawns, belong to `ns`.
pub fn enter(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {ns}: {e}"));
}

/// Namespaces owned by one test, on one bridge; all deleted on drop.
pub struct Lab {
    tag: String,
    names: Vec<String>,
    switch: String,
}

impl Lab {
    /// A lab with its bridge. Namespace names start with `nl<pid><tag>`, so `tag`
    /// keeps labs of one test process apart.
    pub fn new(tag: &str) -> Lab {
        let mut lab = Lab {
            tag: format!("nl{}{tag}", std::process::id()),
            names: Vec::new(),
            switch: String::new(),
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

    /// The full name of namespace `short` of this lab.
    pub fn ns(&self, short: &str) -> String {
        format!("{}{short}", self.tag)
    }

    /// The prefix of every namespace name of this lab.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    fn add_ns(&mut self, short: &str) -> String {
        let name = self.ns(short);
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

    /// A host named `short` on the bridge: `eth0` with these addresses
    /// (`addr/len`; none for link-local IPv6 only). Returns its namespace.
    pub fn host(&mut self, short: &str, addresses: &[&str]) -> String {
        let name = self.add_ns(short);
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

    /// Makes a host ignore ICMPv6 echo requests (a silent host).
    pub fn silence(&self, ns: &str) {
        run(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv6.icmp.echo_ignore_all=1",
        ]);
    }

    /// Runs `f` on a thread that has entered namespace `ns`.
    pub fn within<T: Send>(&self, ns: &str, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                enter(ns);
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Names of namespaces whose names start with `tag` that still exist.
    pub fn leftovers(tag: &str) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(tag))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// A namespace where [`Blackhole::ROUTED`] is routed through a fake gateway
/// on a bridge with no ports: the kernel routes, resolves the (static)
/// gateway neighbour and transmits every packet sent there, and the bridge,
/// having no port to forward to, frees it and reports success. Unlike a
/// veth pair nothing is received on the way (a receive softirq on the
/// sending core took 30 % of its cycles), and unlike a veth with its peer
/// down nothing is reported dropped. The send benchmarks measure senders
/// into it; nothing leaves it. Deleted on drop.
pub struct Blackhole {
    name: String,
}

impl Blackhole {
    /// The prefix whose packets vanish.
    pub const ROUTED: &'static str = "fd00:5ca7:99::/64";

    /// Makes the namespace `name` (it must not exist).
    pub fn new(name: &str) -> Blackhole {
        let hole = Blackhole {
            name: name.to_owned(),
        };
        let n = hole.name.as_str();
        run(&["ip", "netns", "add", n]);
        run(&["ip", "-n", n, "link", "set", "lo", "up"]);
        run(&["ip", "-n", n, "link", "add", "va", "type", "bridge"]);
        run(&[
            "ip",
            "-n",
            n,
            "addr",
            "add",
            "fd00:5ca7:98::1/64",
            "dev",
            "va",
            "nodad",
        ]);
        run(&["ip", "-n", n, "link", "set", "va", "up"]);
        run(&[
            "ip",
            "-n",
            n,
            "-6",
            "neigh",
            "add",
            "fd00:5ca7:98::2",
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            "va",
            "nud",
            "permanent",
        ]);
        run(&[
            "ip",
            "-n",
            n,
            "-6",
            "route",
            "add",
            Self::ROUTED,
            "via",
            "fd00:5ca7:98::2",
            "dev",
            "va",
        ]);
        hole
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
