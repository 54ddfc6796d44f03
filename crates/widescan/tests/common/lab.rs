//! A throwaway network lab: namespaces, veth pairs and a bridge that exist only
//! while a [`Lab`] lives. Nothing is created in (or sent into) the root namespace:
//! veth ends are created directly inside the lab's namespaces and the bridge lives
//! in a namespace of its own. Dropping the lab deletes every namespace it made,
//! which also deletes their interfaces, even when the test panics.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;

use super::{is_root, run};

/// True when the test can build namespaces (root with `ip` available); otherwise
/// prints why it is skipping.
pub(crate) fn can_run(test: &str) -> bool {
    if !is_root() {
        eprintln!(
            "SKIPPED {test}: needs root (network namespaces and raw sockets); CI runs it as root"
        );
        return false;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        eprintln!("SKIPPED {test}: the `ip` tool (iproute2) is not installed");
        return false;
    }
    true
}

/// Namespaces owned by one test; all deleted on drop.
pub(crate) struct Lab {
    tag: String,
    names: Vec<String>,
    bridge: Option<String>,
}

impl Lab {
    /// A lab whose namespace names start with `ws<pid><tag>`.
    pub(crate) fn new(tag: &str) -> Lab {
        Lab {
            tag: format!("ws{}{tag}", std::process::id()),
            names: Vec::new(),
            bridge: None,
        }
    }

    /// Full name of a namespace of this lab.
    pub(crate) fn ns(&self, short: &str) -> String {
        format!("{}{short}", self.tag)
    }

    fn add_ns(&mut self, short: &str) -> String {
        let name = self.ns(short);
        // Record first so a half-made namespace is still deleted.
        self.names.push(name.clone());
        run(&["ip", "netns", "add", &name]);
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

    /// A bridge in its own namespace, for hosts to plug into.
    pub(crate) fn bridge(&mut self) {
        let sw = self.add_ns("sw");
        run(&[
            "ip",
            "-n",
            &sw,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        run(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        self.bridge = Some(sw);
    }

    /// A host namespace with `eth0` on the bridge and the given address (`addr/len`).
    pub(crate) fn host(&mut self, short: &str, addr_with_len: &str) -> String {
        let sw = self.bridge.clone().expect("call bridge() first");
        let name = self.add_ns(short);
        let port = format!("p{short}");
        run(&[
            "ip", "link", "add", "eth0", "netns", &name, "type", "veth", "peer", "name", &port,
            "netns", &sw,
        ]);
        run(&["ip", "-n", &sw, "link", "set", &port, "master", "br0"]);
        run(&["ip", "-n", &sw, "link", "set", &port, "up"]);
        run(&[
            "ip",
            "-n",
            &name,
            "addr",
            "add",
            addr_with_len,
            "dev",
            "eth0",
            "nodad",
        ]);
        run(&["ip", "-n", &name, "link", "set", "eth0", "up"]);
        name
    }

    /// Makes a host ignore echo requests (a silent host).
    pub(crate) fn silence(&self, ns: &str) {
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

    /// Runs `f` on a thread that has entered namespace `ns`. Sockets opened there
    /// belong to `ns`, and threads it spawns start in `ns`.
    #[allow(unsafe_code)] // setns
    pub(crate) fn within<T: Send>(&self, ns: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{ns}");
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                // SAFETY: `file` is an open namespace file; setns only changes this
                // thread's network namespace.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Names of this lab's namespaces that still exist.
    pub(crate) fn leftovers(tag_prefix: &str) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(tag_prefix))
            .map(str::to_string)
            .collect()
    }

    /// The tag all namespace names start with.
    pub(crate) fn tag(&self) -> &str {
        &self.tag
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}
