//! Target generation: a pure function of (prefixes, seed, index range).
//!
//! [`AddressSpace`] joins a [`TargetSet`] and a [`Permutation`]: index `i` of the scan
//! is the address at concatenated position `perm(i)` of the target set. The scalar
//! [`AddressSpace::address`] is the reference; [`Generator`] fills batches with the
//! vectorised rayon path (`cpu`) or the wgpu compute path (`gpu`), which must produce
//! bit-identical batches.
//!
//! Resume and sharding fall out of the design: a checkpoint is just the next index,
//! and shard `k` of `n` is the contiguous index slice `[k·N/n, (k+1)·N/n)`. Because the
//! permutation scrambles indices, a contiguous slice is still a random sample of every
//! prefix.

pub(crate) mod cpu;
#[cfg(feature = "gpu")]
pub(crate) mod gpu;

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::permutation::Permutation;
use crate::prefix::TargetSet;

/// One address in network byte order, the unit every batch is made of.
pub type Octets = [u8; 16];

/// The permuted target space of a scan.
#[derive(Clone, Debug)]
pub struct AddressSpace {
    targets: TargetSet,
    perm: Permutation,
    seed: u64,
    /// Network address of each prefix, parallel to `targets.starts()`.
    networks: Vec<u128>,
    /// When every prefix has the same number of host bits, prefix `j` starts at
    /// `j << uniform_bits` and the lookup needs no search.
    uniform_bits: Option<u32>,
    /// The prefix table in 64-bit words, for the CPU path.
    words: PrefixWords,
}

/// The prefix table split into 64-bit words, so the CPU path computes addresses
/// with `u64` lane arithmetic that vectorises instead of `u128` per address.
///
/// A network's host bits are zero, so an address is `(net_hi[j] | host_hi,
/// net_lo[j] | host_lo)`. When the space holds at most 2^64 addresses every
/// position and start fits a `u64` and no prefix has more than 64 host bits, so
/// `starts` is kept too and the host part is simply `pos - starts[j]`.
#[derive(Clone, Debug)]
pub(crate) struct PrefixWords {
    pub(crate) net_hi: Vec<u64>,
    pub(crate) net_lo: Vec<u64>,
    /// `starts` as `u64`, for spaces of at most 2^64 addresses.
    pub(crate) narrow_starts: Option<Vec<u64>>,
}

impl PrefixWords {
    fn new(targets: &TargetSet, networks: &[u128]) -> Self {
        PrefixWords {
            net_hi: networks.iter().map(|&n| (n >> 64) as u64).collect(),
            net_lo: networks.iter().map(|&n| n as u64).collect(),
            // starts[j] < total <= 2^64, so each fits.
            narrow_starts: (targets.total() <= 1u128 << 64)
                .then(|| targets.starts().iter().map(|&s| s as u64).collect()),
        }
    }
}

impl AddressSpace {
    /// Permutes `targets` with the order keyed by `seed`.
    pub fn new(targets: TargetSet, seed: u64) -> Result<Self> {
        let perm = Permutation::new(targets.total(), seed)?;
        let networks: Vec<u128> = targets
            .prefixes()
            .iter()
            .map(|p| p.network_u128())
            .collect();
        let first = targets.prefixes()[0].host_bits();
        let uniform_bits = targets
            .prefixes()
            .iter()
            .all(|p| p.host_bits() == first)
            // 128 host bits means one prefix, ::/0, which test mode never keeps whole.
            .then_some(first)
            .filter(|&h| h < 128);
        let words = PrefixWords::new(&targets, &networks);
        Ok(AddressSpace {
            targets,
            perm,
            seed,
            networks,
            uniform_bits,
            words,
        })
    }

    /// The targets.
    pub fn targets(&self) -> &TargetSet {
        &self.targets
    }

    /// The permutation.
    pub fn permutation(&self) -> &Permutation {
        &self.perm
    }

    /// The seed that keys the order.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Number of addresses (`targets().total()`).
    pub fn len(&self) -> u128 {
        self.targets.total()
    }

    /// Always false: a target set is never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The whole index range `[0, len())`.
    pub fn full_range(&self) -> IndexRange {
        IndexRange {
            start: 0,
            end: self.len(),
        }
    }

    /// The address scanned at `index` (the scalar reference), or `None` past the end.
    pub fn address(&self, index: u128) -> Option<Ipv6Addr> {
        (index < self.len()).then(|| Ipv6Addr::from(self.address_u128(index)))
    }

    /// The index at which `addr` is scanned, or `None` if it is not a target.
    pub fn index_of(&self, addr: Ipv6Addr) -> Option<u128> {
        let a = u128::from(addr);
        let j = self.networks.partition_point(|&n| n <= a).checked_sub(1)?;
        let prefix = self.targets.prefixes()[j];
        if !prefix.contains(addr) {
            return None;
        }
        let pos = self.targets.starts()[j] + (a - self.networks[j]);
        Some(self.perm.invert(pos))
    }

    #[inline]
    pub(crate) fn address_u128(&self, index: u128) -> u128 {
        self.locate(self.perm.apply(index))
    }

    /// Concatenated position to address.
    #[inline(always)]
    pub(crate) fn locate(&self, pos: u128) -> u128 {
        if let Some(h) = self.uniform_bits {
            // pos < len = networks.len() << h, so the index is in bounds.
            let j = (pos >> h) as usize;
            return self.networks[j] | (pos & ((1u128 << h) - 1));
        }
        self.locate_search(pos)
    }

    /// The general lookup, for prefixes of different sizes.
    #[inline(always)]
    pub(crate) fn locate_search(&self, pos: u128) -> u128 {
        let starts = self.targets.starts();
        // The last j with starts[j] <= pos. The comparisons are unpredictable (the
        // order is random), so both ways avoid branches on them.
        let base = if starts.len() <= 8 {
            starts[1..].iter().map(|&s| usize::from(s <= pos)).sum()
        } else {
            let mut base = 0usize;
            let mut len = starts.len();
            while len > 1 {
                let half = len / 2;
                base =
                    std::hint::select_unpredictable(starts[base + half] <= pos, base + half, base);
                len -= half;
            }
            base
        };
        self.networks[base] | (pos - starts[base])
    }

    /// The GPU path uploads this table; the CPU path walks it in place.
    #[cfg(feature = "gpu")]
    pub(crate) fn networks(&self) -> &[u128] {
        &self.networks
    }

    pub(crate) fn uniform_bits(&self) -> Option<u32> {
        self.uniform_bits
    }

    pub(crate) fn prefix_words(&self) -> &PrefixWords {
        &self.words
    }

    /// Checks that `[start, start + count)` lies inside the space.
    pub(crate) fn check_span(&self, start: u128, count: usize) -> Result<()> {
        let end = start
            .checked_add(count as u128)
            .ok_or_else(|| Error::InvalidRange("index range overflows".into()))?;
        if end > self.len() {
            return Err(Error::InvalidRange(format!(
                "indices {start}..{end} exceed the target space of {} addresses",
                self.len()
            )));
        }
        Ok(())
    }
}

/// A half-open range of scan indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexRange {
    /// First index.
    pub start: u128,
    /// One past the last index.
    pub end: u128,
}

impl IndexRange {
    /// Number of indices.
    pub fn len(&self) -> u128 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same range starting at a checkpoint (an index inside it or at its end).
    pub fn resume_from(&self, checkpoint: u128) -> Result<IndexRange> {
        if checkpoint < self.start || checkpoint > self.end {
            return Err(Error::InvalidRange(format!(
                "checkpoint {checkpoint} is outside {}..{}",
                self.start, self.end
            )));
        }
        Ok(IndexRange {
            start: checkpoint,
            end: self.end,
        })
    }
}

/// Shard `index` of `count` (0-based, like ZMap's `--shard`/`--shards`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// The single shard that covers everything.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; fails unless `index < count`.
    pub fn new(index: u32, count: u32) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(Error::InvalidRange(format!(
                "shard {index}/{count}: need 0 <= index < count"
            )));
        }
        Ok(Shard { index, count })
    }

    /// Shard number (0-based).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Number of shards.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// This shard's slice of `[0, total)`. Slices of all shards are disjoint and
    /// their union is `[0, total)`; they differ in size by at most one.
    pub fn range(&self, total: u128) -> IndexRange {
        let at = |k: u32| -> u128 {
            let (n, k) = (u128::from(self.count), u128::from(k));
            // floor(total * k / n) without overflowing: total = q*n + r.
            (total / n) * k + (total % n) * k / n
        };
        IndexRange {
            start: at(self.index),
            end: at(self.index + 1),
        }
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// Parses `k/n`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidRange(format!("shard {s:?}: expected k/n with 0 <= k < n"));
        let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
        Shard::new(k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Where addresses are generated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HardwareMode {
    /// rayon on every core: the reference path.
    Cpu,
    /// wgpu compute on any adapter, software ones included; an error when no
    /// adapter exists.
    Gpu,
    /// A hardware GPU when one exists, otherwise the CPU. Software adapters
    /// (llvmpipe/lavapipe) are skipped because the CPU path is faster than them.
    #[default]
    Auto,
}

impl FromStr for HardwareMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(HardwareMode::Cpu),
            "gpu" => Ok(HardwareMode::Gpu),
            "auto" => Ok(HardwareMode::Auto),
            other => Err(Error::InvalidConfig(format!(
                "hardware mode {other:?}: expected gpu, cpu or auto"
            ))),
        }
    }
}

/// The hardware a [`Generator`] ended up on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActiveHardware {
    /// rayon with this many threads.
    Cpu {
        /// rayon worker threads.
        threads: usize,
    },
    /// A wgpu adapter.
    Gpu {
        /// Adapter name and backend, e.g. `llvmpipe (…) / Vulkan`.
        adapter: String,
    },
}

impl fmt::Display for ActiveHardware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActiveHardware::Cpu { threads } => write!(f, "CPU ({threads} threads)"),
            ActiveHardware::Gpu { adapter } => write!(f, "GPU {adapter}"),
        }
    }
}

/// Generation options.
#[derive(Clone, Copy, Debug)]
pub struct GeneratorOptions {
    /// CPU, GPU or either.
    pub mode: HardwareMode,
    /// Largest batch (addresses) the GPU path allocates buffers for; bigger
    /// `fill` calls are split. Bounds GPU memory at about `32 × max_batch` bytes
    /// (output buffer plus readback buffer).
    pub max_gpu_batch: usize,
}

impl Default for GeneratorOptions {
    fn default() -> Self {
        GeneratorOptions {
            mode: HardwareMode::Auto,
            max_gpu_batch: 1 << 20,
        }
    }
}

/// Fills batches of addresses for an [`AddressSpace`].
pub struct Generator {
    space: AddressSpace,
    backend: Backend,
}

enum Backend {
    Cpu,
    #[cfg(feature = "gpu")]
    Gpu(Box<gpu::GpuGenerator>),
}

impl fmt::Debug for Generator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("hardware", &self.hardware())
            .field("len", &self.space.len())
            .finish()
    }
}

impl Generator {
    /// A generator on the hardware `mode` selects (see [`HardwareMode`]).
    pub fn new(space: AddressSpace, mode: HardwareMode) -> Result<Self> {
        Self::with_options(
            space,
            GeneratorOptions {
                mode,
                ..GeneratorOptions::default()
            },
        )
    }

    /// A generator with explicit options.
    pub fn with_options(space: AddressSpace, options: GeneratorOptions) -> Result<Self> {
        if options.max_gpu_batch == 0 {
            return Err(Error::InvalidConfig(
                "max_gpu_batch must be positive".into(),
            ));
        }
        let backend = match options.mode {
            HardwareMode::Cpu => Backend::Cpu,
            HardwareMode::Gpu => Self::gpu_backend(&space, options.max_gpu_batch, false)?,
            HardwareMode::Auto => match Self::gpu_backend(&space, options.max_gpu_batch, true) {
                Ok(b) => b,
                Err(e) => {
                    tracing::info!(reason = %e, "no GPU for generation; using the CPU path");
                    Backend::Cpu
                }
            },
        };
        Ok(Generator { space, backend })
    }

    #[cfg(feature = "gpu")]
    fn gpu_backend(space: &AddressSpace, max_batch: usize, hardware_only: bool) -> Result<Backend> {
        Ok(Backend::Gpu(Box::new(gpu::GpuGenerator::new(
            space,
            max_batch,
            hardware_only,
        )?)))
    }

    #[cfg(not(feature = "gpu"))]
    fn gpu_backend(
        _space: &AddressSpace,
        _max_batch: usize,
        _hardware_only: bool,
    ) -> Result<Backend> {
        Err(Error::GpuUnavailable(
            "widescan was built without the `gpu` feature".into(),
        ))
    }

    /// The space being generated.
    pub fn space(&self) -> &AddressSpace {
        &self.space
    }

    /// Which hardware generates.
    pub fn hardware(&self) -> ActiveHardware {
        match &self.backend {
            Backend::Cpu => ActiveHardware::Cpu {
                threads: rayon::current_num_threads(),
            },
            #[cfg(feature = "gpu")]
            Backend::Gpu(g) => ActiveHardware::Gpu {
                adapter: g.adapter_name().to_string(),
            },
        }
    }

    /// Writes the addresses of indices `start..start + out.len()` into `out`.
    pub fn fill(&mut self, start: u128, out: &mut [Octets]) -> Result<()> {
        self.space.check_span(start, out.len())?;
        match &mut self.backend {
            Backend::Cpu => {
                cpu::fill_parallel(&self.space, start, out);
                Ok(())
            }
            #[cfg(feature = "gpu")]
            Backend::Gpu(g) => g.fill(&self.space, start, out),
        }
    }
}

/// Fills `out` with the CPU path on the calling thread only (no rayon). For callers
/// that bring their own threads, and for single-core benchmarks.
pub fn fill_serial(space: &AddressSpace, start: u128, out: &mut [Octets]) -> Result<()> {
    space.check_span(start, out.len())?;
    cpu::fill_serial(space, start, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefix::Prefix;

    /// A test-mode space over `prefixes`; `cpu.rs`'s tests use it too.
    pub(super) fn space(prefixes: &[&str], seed: u64) -> AddressSpace {
        let targets = TargetSet::builder()
            .prefixes(
                prefixes
                    .iter()
                    .map(|s| s.parse::<Prefix>().expect("prefix")),
            )
            .test_mode(true)
            .build()
            .expect("targets");
        AddressSpace::new(targets, seed).expect("space")
    }

    #[test]
    fn every_address_is_inside_a_prefix_exactly_once() {
        let s = space(
            &["2a00::/126", "2a01::/125", "fd00:5ca7:1::/120", "2a02::1"],
            3,
        );
        let n = usize::try_from(s.len()).expect("small");
        assert_eq!(n, 4 + 8 + 256 + 1);
        let mut seen = std::collections::HashSet::new();
        for i in 0..s.len() {
            let a = s.address(i).expect("in range");
            assert!(s.targets().contains(a), "{a}");
            assert!(seen.insert(a), "{a} twice");
            assert_eq!(s.index_of(a), Some(i));
        }
        assert_eq!(seen.len(), n);
        assert_eq!(s.address(s.len()), None);
        assert_eq!(s.index_of("2a03::1".parse().expect("addr")), None);
    }

    #[test]
    fn shards_are_disjoint_and_cover_everything() {
        for total in [1u128, 2, 7, 1000, u128::MAX - 5] {
            for n in [1u32, 2, 3, 7, 64] {
                let mut next = 0u128;
                for k in 0..n {
                    let r = Shard::new(k, n).expect("shard").range(total);
                    assert_eq!(r.start, next, "total={total} {k}/{n}");
                    next = r.end;
                }
                assert_eq!(next, total);
            }
        }
    }

    #[test]
    fn shard_union_equals_whole_scan_and_resume_continues() {
        let s = space(&["2a00::/118", "2a01::/120"], 11);
        let whole: Vec<Ipv6Addr> = (0..s.len()).filter_map(|i| s.address(i)).collect();
        let mut union = Vec::new();
        for k in 0..3 {
            let r = Shard::new(k, 3).expect("shard").range(s.len());
            // Stop half way and resume from the checkpoint.
            let mid = r.start + r.len() / 2;
            let resumed = r.resume_from(mid).expect("resume");
            union.extend((r.start..mid).filter_map(|i| s.address(i)));
            union.extend((resumed.start..resumed.end).filter_map(|i| s.address(i)));
        }
        assert_eq!(union, whole);
        let mut sorted = union.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), whole.len());
    }

    #[test]
    fn bad_shards_ranges_and_modes_are_errors() {
        for bad in ["3/3", "0/0", "x/2", "1", "-1/2", "1/2/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!("2/5".parse::<Shard>().expect("shard").to_string(), "2/5");
        assert!("fpga".parse::<HardwareMode>().is_err());
        assert_eq!(
            "GPU".parse::<HardwareMode>().expect("mode"),
            HardwareMode::Gpu
        );
        let r = IndexRange { start: 10, end: 20 };
        assert!(r.resume_from(9).is_err());
        assert!(r.resume_from(21).is_err());
        assert!(r.resume_from(20).expect("end").is_empty());
        let s = space(&["2a00::/120"], 1);
        let mut g = Generator::new(s, HardwareMode::Cpu).expect("cpu");
        let mut buf = [[0u8; 16]; 8];
        assert!(g.fill(250, &mut buf).is_err());
        assert!(g.fill(u128::MAX - 2, &mut buf).is_err());
        assert!(g.fill(248, &mut buf).is_ok());
        assert!(g.fill(256, &mut []).is_ok());
        assert!(
            Generator::with_options(
                space(&["2a00::/120"], 1),
                GeneratorOptions {
                    mode: HardwareMode::Cpu,
                    max_gpu_batch: 0
                }
            )
            .is_err()
        );
    }
}
