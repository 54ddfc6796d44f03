//! **widescan**: find live IPv6 hosts and other P2PNet instances inside prefixes you
//! choose, at a rate you choose, safely by default.
//!
//! A scan visits every address of its prefixes exactly once, in a keyed pseudo-random
//! order, sends each an ICMPv6 echo request that carries a discovery payload, and
//! listens for two things: valid echo replies (live hosts, "hits") and other
//! instances' probes or answers ("peers"). Results arrive as [`Event`]s on a
//! bounded channel that the host application consumes.
//!
//! # Safe by default
//!
//! * Nothing is scanned without explicit prefixes.
//! * Outside test mode only `2000::/3` is admitted, minus documentation, Teredo,
//!   ORCHID, benchmarking, 6to4 and other special ranges ([`prefix::RESERVED`]);
//!   multicast, link-local and `::` are always cut out. Test mode
//!   ([`TargetSetBuilder::test_mode`]) exists for namespaces made by tests.
//! * 10 000 probes/s globally and 100/s per /64 unless configured otherwise.
//! * Replies are validated statelessly with a 64-bit keyed MAC: no false hits.
//!   ICMPv6 errors that quote a probe (unreachable, time exceeded, …) are counted
//!   per type ([`ErrorCounts`]), never taken for hits.
//!
//! # Example: generation only (no network)
//!
//! ```
//! use widescan::{AddressSpace, Generator, HardwareMode, Shard, TargetSet};
//!
//! let targets = TargetSet::builder()
//!     .parse_prefixes("2a00:1450:4001::/120, 2a00:1450:4002::/126")?
//!     .build()?;
//! let space = AddressSpace::new(targets, /* seed */ 42)?;
//! assert_eq!(space.len(), 256 + 4);
//!
//! // Shard 1 of 2, generated on the CPU into a preallocated buffer.
//! let range = Shard::new(1, 2)?.range(space.len());
//! let mut generator = Generator::new(space.clone(), HardwareMode::Cpu)?;
//! let mut batch = vec![[0u8; 16]; range.len() as usize];
//! generator.fill(range.start, &mut batch)?;
//!
//! // The batch is a pure function of (prefixes, seed, index range).
//! let third = std::net::Ipv6Addr::from(batch[2]);
//! assert_eq!(space.address(range.start + 2), Some(third));
//! assert!(space.targets().contains(third));
//! # Ok::<(), widescan::Error>(())
//! ```
//!
//! Scanning needs `CAP_NET_RAW`; see [`Scan`] and the `widescan` binary.
//!
//! # Layout
//!
//! * [`prefix`]: prefixes, the policy and the merged [`TargetSet`].
//! * [`permutation`]: the keyed Feistel permutation with cycle-walking (the
//!   reference every generator must match).
//! * [`generate`]: [`AddressSpace`] (prefixes × permutation), shards and resume,
//!   and the [`Generator`] with its rayon CPU path and wgpu GPU path
//!   (`generate/shader.wgsl`).
//! * [`probe`]: the probe wire format, the run-key MAC and the pure classification
//!   of inbound ICMPv6.
//! * [`sender`]: the two transports (raw ICMPv6 socket, or Ethernet frames on an
//!   `AF_PACKET` socket), `sendmmsg` batches, token bucket and per-/64 cap.
//! * [`link`]: the packet transport's interface, source and gateway MAC, from the
//!   kernel's routes and neighbours (`route.rs`: netlink); `frame.rs`: Ethernet and
//!   IPv6 headers and the ICMPv6 checksum.
//! * [`listener`]: the independent receive socket; hits, peers, answers, dedup,
//!   and ICMPv6 error counts.
//! * [`scan`]: the pipeline (generator → bounded queue → sender; listener aside),
//!   progress, stop and resume.
//! * [`output`]: NDJSON and CSV result writers.
//! * `sys`: the only socket `unsafe` (libc `sendmmsg`, `recvmsg`, `ICMP6_FILTER`,
//!   `AF_PACKET` addresses).
//!
//! This crate never installs a tracing subscriber; it emits spans and events for the
//! host application's subscriber.

pub mod error;
pub mod event;
mod frame;
pub mod generate;
pub mod link;
pub mod listener;
pub mod output;
pub mod permutation;
pub mod prefix;
pub mod probe;
mod rate;
mod route;
pub mod scan;
pub mod sender;
mod sys;

pub use error::{Error, Result};

// The README's examples are compiled (and the generation one run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
pub use event::{Event, Peer, PeerVia};
pub use generate::{
    ActiveHardware, AddressSpace, Generator, GeneratorOptions, HardwareMode, IndexRange, Octets,
    Shard,
};
pub use link::{LinkPath, MacAddr};
pub use listener::{ErrorCounts, EventReceiver, Listener, ListenerOptions, ListenerStats};
pub use output::{OutputFormat, ResultWriter};
pub use prefix::{Prefix, TargetSet, TargetSetBuilder};
pub use probe::{Contact, ErrorType, Identity, ProbeCodec, RunKey};
pub use scan::{Phase, Progress, Rates, Scan, ScanBuilder, ScanHandle, ScanReport};
pub use sender::{ProbeSender, SendOutcome, SenderOptions, Transport};
