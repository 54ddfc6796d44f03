//! IPv6 prefixes, the scan policy, and the merged target set.
//!
//! A [`TargetSet`] is what the generator permutes: a sorted list of disjoint prefixes
//! plus the cumulative index at which each one starts. It is built only through
//! [`TargetSetBuilder`], which applies the policy:
//!
//! * by default every prefix must lie inside `2000::/3` (global unicast);
//! * built-in special-purpose ranges ([`RESERVED`]) are refused when a prefix lies
//!   wholly inside one and cut out when a prefix merely overlaps one;
//! * [`ALWAYS_BLOCKED`] ranges (unspecified, link-local, multicast) are cut out even in
//!   test mode, because probing them is never meaningful for a unicast scan;
//! * user exclusions are cut out;
//! * test mode, which must be enabled explicitly, lifts the `2000::/3` rule and the
//!   [`RESERVED`] list so tests can scan ULA prefixes inside network namespaces they
//!   create.
//!
//! The same policy, without prefixes, is an [`AddressPolicy`]: it says whether one
//! address may be sent to at all. The listener uses it for the sources of other
//! instances' probes, because answering a probe sends to its (possibly forged)
//! source.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Upper bound on the number of disjoint prefixes a target set may hold after merging
/// and exclusion. The table is binary-searched per address and uploaded to the GPU.
pub const MAX_PREFIXES: usize = 1 << 20;

/// An IPv6 prefix in canonical form: host bits are zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    network: u128,
    len: u8,
}

impl Prefix {
    /// Builds a prefix; fails when `len > 128` or when `addr` has host bits set.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self> {
        let input = format!("{addr}/{len}");
        if len > 128 {
            return Err(Error::InvalidPrefix {
                input,
                reason: "length must be between 0 and 128".into(),
            });
        }
        let network = u128::from(addr);
        let canonical = network & net_mask(len);
        if canonical != network {
            return Err(Error::InvalidPrefix {
                input,
                reason: format!(
                    "host bits are set; did you mean {}/{len}?",
                    Ipv6Addr::from(canonical)
                ),
            });
        }
        Ok(Prefix { network, len })
    }

    /// Const constructor for tables; the caller guarantees canonical form.
    const fn from_parts(network: u128, len: u8) -> Self {
        Prefix { network, len }
    }

    /// The network address.
    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.network)
    }

    /// The prefix length, 0 to 128.
    #[allow(clippy::len_without_is_empty)] // a prefix is never empty
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Number of host bits (`128 - len`).
    pub fn host_bits(&self) -> u32 {
        128 - u32::from(self.len)
    }

    /// Number of addresses, or `None` for `::/0` (2^128 does not fit a `u128`).
    pub fn size(&self) -> Option<u128> {
        1u128.checked_shl(self.host_bits())
    }

    /// Whether `addr` lies inside this prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & net_mask(self.len) == self.network
    }

    /// Whether `other` lies wholly inside this prefix.
    pub fn covers(&self, other: &Prefix) -> bool {
        other.len >= self.len && other.network & net_mask(self.len) == self.network
    }

    /// Whether the two prefixes share any address (for CIDR blocks: one covers the
    /// other).
    pub fn overlaps(&self, other: &Prefix) -> bool {
        self.covers(other) || other.covers(self)
    }

    pub(crate) fn network_u128(&self) -> u128 {
        self.network
    }

    fn last(&self) -> u128 {
        self.network | !net_mask(self.len)
    }

    /// The other half of this prefix's parent (`None` for `::/0`).
    fn sibling(&self) -> Option<Prefix> {
        if self.len == 0 {
            return None;
        }
        let bit = 1u128 << (128 - u32::from(self.len));
        Some(Prefix::from_parts(self.network ^ bit, self.len))
    }

    /// This prefix minus `hole`, as disjoint prefixes in address order.
    fn subtract(&self, hole: &Prefix) -> Vec<Prefix> {
        if !self.overlaps(hole) {
            return vec![*self];
        }
        if hole.covers(self) {
            return Vec::new();
        }
        // `self` strictly covers `hole`: walk from `hole` up to `self`, keeping the
        // sibling at each level. Those siblings tile `self \ hole` exactly.
        let mut pieces = Vec::with_capacity(usize::from(hole.len - self.len));
        let mut cur = *hole;
        while cur.len > self.len {
            if let Some(s) = cur.sibling() {
                pieces.push(s);
            }
            cur = Prefix::from_parts(cur.network & net_mask(cur.len - 1), cur.len - 1);
        }
        pieces.sort();
        pieces
    }
}

fn net_mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.len)
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Prefix {
    type Err = Error;

    /// Parses `addr/len`; a bare address means `/128`.
    fn from_str(s: &str) -> Result<Self> {
        let text = s.trim();
        let bad = |reason: &str| Error::InvalidPrefix {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let (addr_text, len) = match text.split_once('/') {
            Some((a, l)) => {
                if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("length after '/' must be a number from 0 to 128"));
                }
                let len: u16 = l
                    .parse()
                    .map_err(|_| bad("length after '/' must be a number from 0 to 128"))?;
                if len > 128 {
                    return Err(bad("length must be between 0 and 128"));
                }
                (a, len as u8)
            }
            None => (text, 128),
        };
        if addr_text.contains('%') {
            return Err(bad(
                "zone identifiers (%iface) are not allowed in scan prefixes",
            ));
        }
        let addr: Ipv6Addr = addr_text
            .parse()
            .map_err(|_| bad("not an IPv6 address (IPv4 is not supported)"))?;
        Prefix::new(addr, len).map_err(|e| match e {
            Error::InvalidPrefix { reason, .. } => Error::InvalidPrefix {
                input: s.to_string(),
                reason,
            },
            other => other,
        })
    }
}

/// Parses a prefix list: one or more prefixes per line, separated by whitespace or
/// commas; `#` starts a comment. Errors name the line.
pub fn parse_prefix_list(text: &str) -> Result<Vec<Prefix>> {
    let mut out = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for word in line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
        {
            let p = word.parse::<Prefix>().map_err(|e| match e {
                Error::InvalidPrefix { input, reason } => Error::InvalidPrefix {
                    input,
                    reason: format!("line {}: {reason}", no + 1),
                },
                other => other,
            })?;
            out.push(p);
        }
    }
    Ok(out)
}

/// A named special-purpose range.
#[derive(Clone, Copy, Debug)]
pub struct SpecialRange {
    /// The range.
    pub prefix: Prefix,
    /// What it is, for error messages.
    pub name: &'static str,
}

const fn special(network: u128, len: u8, name: &'static str) -> SpecialRange {
    SpecialRange {
        prefix: Prefix::from_parts(network, len),
        name,
    }
}

/// The only range scanned outside test mode: global unicast.
pub const GLOBAL_UNICAST: Prefix = Prefix::from_parts(0x2000 << 112, 3);

/// Special-purpose ranges inside `2000::/3` refused outside test mode (IANA IPv6
/// Special-Purpose Address Registry, plus 6to4). More specific entries come first so
/// refusal messages name the most specific range.
pub const RESERVED: &[SpecialRange] = &[
    special(0x2001_0000 << 96, 32, "Teredo 2001::/32 (RFC 4380)"),
    special(0x2001_0002 << 96, 48, "benchmarking 2001:2::/48 (RFC 5180)"),
    special(0x2001_0010 << 96, 28, "ORCHID 2001:10::/28 (RFC 4843)"),
    special(0x2001_0020 << 96, 28, "ORCHIDv2 2001:20::/28 (RFC 7343)"),
    special(
        0x2001_0000 << 96,
        23,
        "IETF protocol assignments 2001::/23 (RFC 2928)",
    ),
    special(
        0x2001_0db8 << 96,
        32,
        "documentation 2001:db8::/32 (RFC 3849)",
    ),
    special(
        0x2002 << 112,
        16,
        "6to4 2002::/16 (RFC 3056; embeds IPv4 hosts)",
    ),
    special(
        0x2620_004f_8000 << 80,
        48,
        "AS112 direct delegation 2620:4f:8000::/48 (RFC 7534)",
    ),
    special(0x3fff << 112, 20, "documentation 3fff::/20 (RFC 9637)"),
];

/// Ranges cut out even in test mode.
pub const ALWAYS_BLOCKED: &[SpecialRange] = &[
    special(0, 128, "unspecified ::/128"),
    special(0xfe80 << 112, 10, "link-local fe80::/10 (needs a zone)"),
    special(0xff << 120, 8, "multicast ff00::/8"),
];

/// Well-known ranges outside `2000::/3`, used only to explain refusals.
const OUTSIDE_NAMES: &[SpecialRange] = &[
    special(1, 128, "loopback ::1/128"),
    special(0xffff << 32, 96, "IPv4-mapped ::ffff:0:0/96"),
    special(0x0064_ff9b << 96, 96, "NAT64 64:ff9b::/96"),
    special(0x0100 << 112, 64, "discard-only 100::/64"),
    special(0xfc << 120, 7, "unique local fc00::/7"),
    special(0xfec0 << 112, 10, "site-local fec0::/10 (deprecated)"),
];

/// The merged, policy-checked set of prefixes a scan covers.
///
/// Index space: the prefixes are concatenated in address order; index `i` belongs to
/// the prefix `j` with `starts[j] <= i < starts[j + 1]`, at host offset
/// `i - starts[j]`. The generator permutes this whole space at once, so every prefix
/// is visited in proportion to its size and interleaved with the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSet {
    prefixes: Vec<Prefix>,
    starts: Vec<u128>,
    total: u128,
    policy: AddressPolicy,
}

impl TargetSet {
    /// Starts a builder; see [`TargetSetBuilder`].
    pub fn builder() -> TargetSetBuilder {
        TargetSetBuilder::default()
    }

    /// The disjoint prefixes, in address order.
    pub fn prefixes(&self) -> &[Prefix] {
        &self.prefixes
    }

    /// Index at which each prefix starts in the concatenated index space.
    pub fn starts(&self) -> &[u128] {
        &self.starts
    }

    /// Number of addresses covered (always at least 1 and below 2^128).
    pub fn total(&self) -> u128 {
        self.total
    }

    /// Whether this set was built in test mode.
    pub fn is_test_mode(&self) -> bool {
        self.policy.test_mode
    }

    /// The policy this set was built under (test mode and user exclusions), for
    /// addresses outside the set: a scan answers other instances' probes only from
    /// sources it admits.
    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// Whether `addr` is a target of this set.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        self.prefix_of(addr).is_some()
    }

    /// The prefix of this set that holds `addr`, if any (a binary search: the
    /// prefixes are disjoint and sorted).
    pub fn prefix_of(&self, addr: Ipv6Addr) -> Option<&Prefix> {
        let a = u128::from(addr);
        let j = self.prefixes.partition_point(|p| p.network <= a);
        self.prefixes[..j].last().filter(|p| p.contains(addr))
    }

    /// The address at concatenated index `index` (not permuted), or `None` past the
    /// end.
    pub fn address_at(&self, index: u128) -> Option<Ipv6Addr> {
        if index >= self.total {
            return None;
        }
        let j = self.starts.partition_point(|&s| s <= index) - 1;
        Some(Ipv6Addr::from(
            self.prefixes[j].network | (index - self.starts[j]),
        ))
    }
}

/// Builds a [`TargetSet`]; nothing is scanned unless prefixes are given explicitly.
#[derive(Clone, Debug, Default)]
pub struct TargetSetBuilder {
    prefixes: Vec<Prefix>,
    excludes: Vec<Prefix>,
    test_mode: bool,
}

impl TargetSetBuilder {
    /// Adds one prefix.
    pub fn prefix(mut self, p: Prefix) -> Self {
        self.prefixes.push(p);
        self
    }

    /// Adds several prefixes.
    pub fn prefixes<I: IntoIterator<Item = Prefix>>(mut self, ps: I) -> Self {
        self.prefixes.extend(ps);
        self
    }

    /// Parses and adds prefixes from a list (see [`parse_prefix_list`]).
    pub fn parse_prefixes(mut self, text: &str) -> Result<Self> {
        self.prefixes.extend(parse_prefix_list(text)?);
        Ok(self)
    }

    /// Excludes a range from the scan (a user block list entry).
    pub fn exclude(mut self, p: Prefix) -> Self {
        self.excludes.push(p);
        self
    }

    /// Excludes several ranges.
    pub fn excludes<I: IntoIterator<Item = Prefix>>(mut self, ps: I) -> Self {
        self.excludes.extend(ps);
        self
    }

    /// Test mode admits ranges outside `2000::/3` and the [`RESERVED`] ranges. Only
    /// for networks the caller owns, such as namespaces created by tests.
    pub fn test_mode(mut self, enabled: bool) -> Self {
        self.test_mode = enabled;
        self
    }

    /// Applies the policy, merges overlaps and cuts out exclusions.
    pub fn build(self) -> Result<TargetSet> {
        if self.prefixes.is_empty() {
            return Err(Error::EmptyTargetSet(
                "no prefixes given; widescan never chooses targets on its own".into(),
            ));
        }
        for p in &self.prefixes {
            self.check_policy(p)?;
        }
        let mut set = merge(self.prefixes);
        let mut holes: Vec<Prefix> = ALWAYS_BLOCKED.iter().map(|r| r.prefix).collect();
        if !self.test_mode {
            holes.extend(RESERVED.iter().map(|r| r.prefix));
        }
        holes.extend(self.excludes.iter().copied());
        for hole in merge(holes) {
            let mut next = Vec::with_capacity(set.len());
            for p in &set {
                if p.overlaps(&hole) {
                    tracing::debug!(prefix = %p, excluded = %hole, "cutting excluded range");
                }
                next.extend(p.subtract(&hole));
                if next.len() > MAX_PREFIXES {
                    return Err(Error::InvalidConfig(format!(
                        "more than {MAX_PREFIXES} disjoint prefixes after exclusions"
                    )));
                }
            }
            set = next;
        }
        let set = merge(set);
        let policy = AddressPolicy {
            test_mode: self.test_mode,
            excludes: merge(self.excludes),
        };
        if set.is_empty() {
            return Err(Error::EmptyTargetSet(
                "every prefix was removed by the exclusions".into(),
            ));
        }
        let mut starts = Vec::with_capacity(set.len());
        let mut total: u128 = 0;
        for p in &set {
            starts.push(total);
            let size = p.size().ok_or(Error::TargetSpaceTooLarge)?;
            total = total.checked_add(size).ok_or(Error::TargetSpaceTooLarge)?;
        }
        Ok(TargetSet {
            prefixes: set,
            starts,
            total,
            policy,
        })
    }

    fn check_policy(&self, p: &Prefix) -> Result<()> {
        let refuse = |reason: String| Error::PrefixRefused {
            prefix: p.to_string(),
            reason,
        };
        if let Some(r) = ALWAYS_BLOCKED.iter().find(|r| r.prefix.covers(p)) {
            return Err(refuse(format!("lies inside {}", r.name)));
        }
        if self.test_mode {
            return Ok(());
        }
        if !GLOBAL_UNICAST.covers(p) {
            let what = OUTSIDE_NAMES
                .iter()
                .find(|r| r.prefix.overlaps(p))
                .map(|r| format!(" ({})", r.name))
                .unwrap_or_default();
            return Err(refuse(format!(
                "outside global unicast 2000::/3{what}; test mode admits other ranges, \
                 only for networks you own"
            )));
        }
        if let Some(r) = RESERVED.iter().find(|r| r.prefix.covers(p)) {
            return Err(refuse(format!("lies inside reserved {}", r.name)));
        }
        Ok(())
    }
}

/// The scan policy for single addresses: whether an address may be sent to at all.
///
/// The default admits only global unicast (`2000::/3`) minus [`RESERVED`]; test mode
/// admits everything but [`ALWAYS_BLOCKED`]; exclusions are refused either way. This
/// is what a [`TargetSetBuilder`] applies to prefixes, and what
/// [`TargetSet::policy`] hands on. The listener answers other instances' probes only
/// from sources its policy admits: an answer goes to the probe's source, which
/// anyone can forge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    test_mode: bool,
    /// Merged: sorted and disjoint, so a lookup is a binary search.
    excludes: Vec<Prefix>,
}

impl AddressPolicy {
    /// Test mode lifts the `2000::/3` rule and the [`RESERVED`] list (as
    /// [`TargetSetBuilder::test_mode`] does). Only for networks the caller owns.
    pub fn test_mode(mut self, enabled: bool) -> Self {
        self.test_mode = enabled;
        self
    }

    /// Refuses a range (a user block list entry).
    pub fn exclude(self, p: Prefix) -> Self {
        self.excludes([p])
    }

    /// Refuses several ranges.
    pub fn excludes<I: IntoIterator<Item = Prefix>>(mut self, ps: I) -> Self {
        let mut all = std::mem::take(&mut self.excludes);
        all.extend(ps);
        self.excludes = merge(all);
        self
    }

    /// Whether this policy is in test mode.
    pub fn is_test_mode(&self) -> bool {
        self.test_mode
    }

    /// Whether `addr` may be sent to.
    pub fn admits(&self, addr: Ipv6Addr) -> bool {
        self.refusal(addr).is_none()
    }

    /// Why `addr` may not be sent to, or `None` when it may.
    pub fn refusal(&self, addr: Ipv6Addr) -> Option<&'static str> {
        if let Some(r) = ALWAYS_BLOCKED.iter().find(|r| r.prefix.contains(addr)) {
            return Some(r.name);
        }
        if !self.test_mode {
            if !GLOBAL_UNICAST.contains(addr) {
                return Some("outside global unicast 2000::/3");
            }
            if let Some(r) = RESERVED.iter().find(|r| r.prefix.contains(addr)) {
                return Some(r.name);
            }
        }
        let a = u128::from(addr);
        let j = self.excludes.partition_point(|p| p.network <= a);
        self.excludes[..j]
            .last()
            .filter(|p| p.contains(addr))
            .map(|_| "excluded")
    }
}

/// Sorts, drops covered prefixes and joins sibling pairs.
fn merge(mut ps: Vec<Prefix>) -> Vec<Prefix> {
    ps.sort_by_key(|p| (p.network, p.len));
    let mut out: Vec<Prefix> = Vec::with_capacity(ps.len());
    for p in ps {
        if out.last().is_some_and(|last| last.covers(&p)) {
            continue;
        }
        out.push(p);
        // Join with the previous prefix while the two are the halves of one parent.
        while out.len() >= 2 {
            let b = out[out.len() - 1];
            let a = out[out.len() - 2];
            if a.len == b.len && a.len > 0 && a.sibling() == Some(b) && a.network < b.network {
                out.truncate(out.len() - 2);
                out.push(Prefix::from_parts(a.network, a.len - 1));
            } else {
                break;
            }
        }
    }
    debug_assert!(out.windows(2).all(|w| w[0].last() < w[1].network));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().expect("test prefix")
    }

    #[test]
    fn parses_all_lengths() {
        for len in 0..=128u8 {
            let q: Prefix = format!("::/{len}").parse().expect("parse");
            assert_eq!(q.len(), len);
            assert_eq!(q.host_bits(), 128 - u32::from(len));
        }
        assert_eq!(p("2001:db8::1").len(), 128);
        assert_eq!(p(" 2a00::/12 ").to_string(), "2a00::/12");
        assert_eq!(p("::/0").size(), None);
        assert_eq!(p("2a00::/120").size(), Some(256));
    }

    #[test]
    fn rejects_malformed_prefixes() {
        for bad in [
            "",
            "/",
            "2001:db8::/",
            "2001:db8::/129",
            "2001:db8::/-1",
            "2001:db8::/+3",
            "2001:db8::/1000",
            "2001:db8::/3x",
            "2001:db8:::/32",
            "10.0.0.0/8",
            "fe80::1%eth0/128",
            "2001:db8::1/32",
            "hello",
            "2001:db8::/32/4",
        ] {
            let err = bad.parse::<Prefix>().expect_err(bad);
            assert!(matches!(err, Error::InvalidPrefix { .. }), "{bad}: {err}");
        }
        let err = "2001:db8::1/32".parse::<Prefix>().expect_err("host bits");
        assert!(
            err.to_string().contains("did you mean 2001:db8::/32"),
            "{err}"
        );
    }

    #[test]
    fn parses_lists_with_comments_and_line_numbers() {
        let list = "# targets\n2a00:1::/64, 2a00:2::/64\n\n 2a00:3::/64 # third\n";
        assert_eq!(parse_prefix_list(list).expect("list").len(), 3);
        let err = parse_prefix_list("2a00::/64\nnope\n").expect_err("bad line");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn merges_overlaps_and_siblings() {
        let set = TargetSet::builder()
            .prefixes([
                p("2a00:0:0:1::/64"),
                p("2a00:0:0:1::/80"),
                p("2a00::/64"),
                p("2a00:0:0:1:1::/80"),
                p("2a00:0:0:5::/64"),
            ])
            .build()
            .expect("build");
        assert_eq!(set.prefixes(), &[p("2a00::/63"), p("2a00:0:0:5::/64")]);
        assert_eq!(set.starts(), &[0, 1 << 65]);
        assert_eq!(set.total(), (1 << 65) + (1 << 64));
    }

    #[test]
    fn refuses_outside_global_unicast_by_default() {
        for bad in [
            "fd00:5ca7:1::/64",
            "::1",
            "::/0",
            "4000::/2",
            "64:ff9b::/96",
        ] {
            let err = TargetSet::builder().prefix(p(bad)).build().expect_err(bad);
            assert!(matches!(err, Error::PrefixRefused { .. }), "{bad}: {err}");
        }
        let err = TargetSet::builder()
            .prefix(p("fd00:5ca7:1::/64"))
            .build()
            .expect_err("ula");
        assert!(err.to_string().contains("unique local"), "{err}");
    }

    #[test]
    fn refuses_reserved_ranges_with_their_names() {
        for (bad, name) in [
            ("2001:db8:1::/48", "documentation 2001:db8"),
            ("3fff:1::/32", "documentation 3fff"),
            ("2001::/32", "Teredo"),
            ("2001:2::/56", "benchmarking"),
            ("2001:10::/32", "ORCHID 2001:10"),
            ("2001:20::/32", "ORCHIDv2"),
            ("2002:c000:0204::/48", "6to4"),
        ] {
            let err = TargetSet::builder().prefix(p(bad)).build().expect_err(bad);
            assert!(err.to_string().contains(name), "{bad}: {err}");
        }
    }

    #[test]
    fn always_blocked_even_in_test_mode() {
        for bad in ["ff02::1", "fe80::/64", "::/128"] {
            let err = TargetSet::builder()
                .prefix(p(bad))
                .test_mode(true)
                .build()
                .expect_err(bad);
            assert!(matches!(err, Error::PrefixRefused { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn cuts_reserved_ranges_out_of_wider_prefixes() {
        let set = TargetSet::builder()
            .prefix(GLOBAL_UNICAST)
            .build()
            .expect("2000::/3");
        for r in RESERVED {
            assert!(!set.contains(r.prefix.network()), "{}", r.name);
        }
        assert!(set.contains("2a00:1450::1".parse().expect("addr")));
        assert!(set.contains("2001:200::1".parse().expect("addr")));
        let reserved: u128 = merge(RESERVED.iter().map(|r| r.prefix).collect())
            .iter()
            .map(|r| r.size().unwrap_or(0))
            .sum();
        assert_eq!(set.total(), (1u128 << 125) - reserved);
    }

    #[test]
    fn test_mode_admits_ula_and_whole_space() {
        let set = TargetSet::builder()
            .prefix(p("fd00:5ca7:1::/120"))
            .test_mode(true)
            .build()
            .expect("ula in test mode");
        assert_eq!(set.total(), 256);
        assert!(set.is_test_mode());
        let all = TargetSet::builder()
            .prefix(p("::/0"))
            .test_mode(true)
            .build()
            .expect("::/0 in test mode");
        let blocked: u128 = ALWAYS_BLOCKED
            .iter()
            .map(|r| r.prefix.size().unwrap_or(0))
            .sum();
        assert_eq!(all.total(), u128::MAX - blocked + 1);
        assert!(!all.contains(Ipv6Addr::UNSPECIFIED));
        assert!(all.contains(Ipv6Addr::LOCALHOST));
    }

    #[test]
    fn user_exclusions_cut_and_empty_is_an_error() {
        let set = TargetSet::builder()
            .prefix(p("2a00::/120"))
            .exclude(p("2a00::80/121"))
            .exclude(p("2a00::7/128"))
            .build()
            .expect("build");
        assert_eq!(set.total(), 127);
        assert!(!set.contains("2a00::7".parse().expect("addr")));
        assert!(!set.contains("2a00::80".parse().expect("addr")));
        let err = TargetSet::builder()
            .prefix(p("2a00::/120"))
            .exclude(p("2a00::/64"))
            .build()
            .expect_err("all excluded");
        assert!(matches!(err, Error::EmptyTargetSet(_)), "{err}");
        let err = TargetSet::builder().build().expect_err("nothing");
        assert!(matches!(err, Error::EmptyTargetSet(_)), "{err}");
    }

    #[test]
    fn subtract_tiles_the_remainder() {
        let whole = p("2a00::/120");
        let hole = p("2a00::37/128");
        let pieces = whole.subtract(&hole);
        let total: u128 = pieces.iter().map(|q| q.size().unwrap_or(0)).sum();
        assert_eq!(total, 255);
        for a in 0..256u128 {
            let addr = Ipv6Addr::from(whole.network_u128() | a);
            let inside = pieces.iter().filter(|q| q.contains(addr)).count();
            assert_eq!(inside, usize::from(a != 0x37), "{addr}");
        }
    }

    #[test]
    fn address_policy_matches_the_prefix_policy() {
        let a = |s: &str| s.parse::<Ipv6Addr>().expect("addr");
        let global = AddressPolicy::default();
        assert!(global.admits(a("2a00:1450::1")));
        for (bad, why) in [
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2002:c000:204::1", "6to4"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::", "unspecified"),
            ("::1", "outside global unicast"),
            ("fd00:5ca7:1::1", "outside global unicast"),
            ("::ffff:192.0.2.1", "outside global unicast"),
        ] {
            let got = global.refusal(a(bad));
            assert!(got.is_some_and(|r| r.contains(why)), "{bad}: {got:?}");
        }
        let test = AddressPolicy::default()
            .test_mode(true)
            .exclude(p("fd00:5ca7:9::/48"));
        assert!(test.is_test_mode());
        for ok in ["fd00:5ca7:1::1", "::1", "2001:db8::1"] {
            assert!(test.admits(a(ok)), "{ok}");
        }
        for bad in ["fe80::1", "ff02::1", "::", "fd00:5ca7:9::1"] {
            assert!(!test.admits(a(bad)), "{bad}");
        }
        assert_eq!(test.refusal(a("fd00:5ca7:9:1::1")), Some("excluded"));

        // A target set hands on the policy it was built under.
        let set = TargetSet::builder()
            .prefix(p("2a00::/120"))
            .exclude(p("2a00:1::/64"))
            .build()
            .expect("build");
        assert_eq!(
            set.policy(),
            &AddressPolicy::default().exclude(p("2a00:1::/64"))
        );
        assert!(!set.policy().admits(a("2a00:1::5")));
        assert!(
            set.policy().admits(a("2a00:2::5")),
            "outside the set, admitted"
        );
    }

    #[test]
    fn address_at_walks_the_concatenation() {
        let set = TargetSet::builder()
            .prefixes([p("2a00::/127"), p("2a01::/126")])
            .build()
            .expect("build");
        let addrs: Vec<String> = (0..6)
            .filter_map(|i| set.address_at(i))
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            addrs,
            [
                "2a00::", "2a00::1", "2a01::", "2a01::1", "2a01::2", "2a01::3"
            ]
        );
        assert_eq!(set.address_at(6), None);
    }
}
