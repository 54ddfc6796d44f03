//! The CPU generation path: the permutation of `permutation.rs`, restructured so the
//! compiler vectorises it.
//!
//! Each block of [`BLOCK`] consecutive indices is split into structure-of-arrays
//! halves (`u32` lanes), every Feistel round runs as one branch-free loop over the
//! lanes, and only the rare cycle-walking steps and the prefix lookup run per
//! address. On x86-64 the same code is compiled a second time with AVX2 enabled and
//! picked at run time (8 `u32` multiplies per instruction instead of SSE2's
//! emulated 4). [`fill_parallel`] shares a batch between the calling thread and
//! rayon workers, which claim [`CLAIM`]-sized pieces as they get to them.
//!
//! The output must equal [`AddressSpace::address`] bit for bit; the tests below and
//! the GPU differential test hold it to that.

use std::sync::{Mutex, PoisonError};

use super::{AddressSpace, Octets, PrefixWords};
use crate::permutation::{ROUNDS, mask64, mix32, round_wide};

/// Addresses per piece of a parallel batch: about 2 µs of work on the fastest
/// shape, so the lock taken per piece is noise, while a 64 Ki batch still has 16
/// pieces to balance between threads that start at different times.
const CLAIM: usize = 1 << 12;

/// Batches below this stay on the calling thread: waking a sleeping worker costs
/// tens of microseconds on a VM, as much as generating this many addresses.
const MIN_PARALLEL: usize = 4 * CLAIM;

/// Lanes per structure-of-arrays block; 4 × 512 × 4 bytes of lanes stay in L1.
const BLOCK: usize = 512;

/// Up to this many prefixes the lookup compares each lane against every start
/// (vectorised selects) instead of searching.
const LINEAR_PREFIXES: usize = 16;

/// Fills `out` on the calling thread and the rayon workers.
///
/// Measured (issue 12): handing a 64 Ki batch to rayon as `par_chunks_mut` tasks
/// while the caller slept made two cores slower than one. The caller, a thread
/// outside the pool, blocked on a latch, so each batch cost about five context
/// switches (two workers woken, the caller woken at the end), and the three
/// threads shared two cores. Here the caller works too, and the pieces are
/// claimed dynamically: a worker that wakes late finds less to do instead of
/// holding up the batch, and only a batch too small to split stays serial.
pub(crate) fn fill_parallel(space: &AddressSpace, start: u128, out: &mut [Octets]) {
    let threads = rayon::current_num_threads();
    if threads <= 1 || out.len() < MIN_PARALLEL {
        fill_serial(space, start, out);
        return;
    }
    let helpers = (out.len() / CLAIM).min(threads) - 1;
    let pieces = Mutex::new(out.chunks_mut(CLAIM).enumerate());
    let work = || {
        loop {
            // A panic inside `fill_serial` reaches the caller through the scope;
            // the iterator itself is still sound, so a poisoned lock is taken over.
            let next = pieces.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some((c, piece)) = next else { break };
            fill_serial(space, start + (c * CLAIM) as u128, piece);
        }
    };
    rayon::in_place_scope(|s| {
        for _ in 0..helpers {
            s.spawn(|_| work());
        }
        work();
    });
}

/// Fills `out` on the calling thread.
pub(crate) fn fill_serial(space: &AddressSpace, start: u128, out: &mut [Octets]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            #[allow(unsafe_code)]
            // SAFETY: `fill_avx512` only requires AVX-512F, whose presence was just
            // detected at run time; it has no other preconditions.
            unsafe {
                fill_avx512(space, start, out)
            };
            return;
        }
        if std::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: `fill_avx2` only requires AVX2, whose presence was just detected
            // at run time; it has no other preconditions.
            unsafe {
                fill_avx2(space, start, out)
            };
            return;
        }
    }
    fill_blocks(space, start, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fill_avx512(space: &AddressSpace, start: u128, out: &mut [Octets]) {
    fill_blocks(space, start, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fill_avx2(space: &AddressSpace, start: u128, out: &mut [Octets]) {
    fill_blocks(space, start, out);
}

/// Per-thread working memory for one `fill_blocks` call: allocated (and zeroed)
/// once per call rather than per block, because zeroing showed up in profiles.
struct Scratch {
    words: [[u32; BLOCK]; 4],
    y64: [u64; BLOCK],
    t64: [u64; BLOCK],
    y128: [u128; BLOCK],
    t128: [u128; BLOCK],
    pending: [u16; BLOCK],
    prefix: [u32; BLOCK],
    /// Wide positions as (high, low) 64-bit words.
    pos_hi: [u64; BLOCK],
    pos_lo: [u64; BLOCK],
}

#[inline(always)]
fn fill_blocks(space: &AddressSpace, start: u128, out: &mut [Octets]) {
    let mut sc = Box::new(Scratch {
        words: [[0; BLOCK]; 4],
        y64: [0; BLOCK],
        t64: [0; BLOCK],
        y128: [0; BLOCK],
        t128: [0; BLOCK],
        pending: [0; BLOCK],
        prefix: [0; BLOCK],
        pos_hi: [0; BLOCK],
        pos_lo: [0; BLOCK],
    });
    // Starts in u64 exist exactly for spaces of at most 2^64 indices (the
    // permutation's narrow case), where `s` fits a u64 too.
    let narrow_starts = space.prefix_words().narrow_starts.as_deref();
    for (b, block) in out.chunks_mut(BLOCK).enumerate() {
        let s = start + (b * BLOCK) as u128;
        match narrow_starts {
            Some(starts) => narrow_block(space, starts, s as u64, block, &mut sc),
            None => wide_block(space, s, block, &mut sc),
        }
    }
}

/// One pass of the Feistel network over a slice of lanes.
trait Lanes<T> {
    fn apply(&mut self, ys: &mut [T]);
}

/// Feistel over spaces of at most 2^64 addresses: halves of at most 32 bits.
struct Narrow<'a> {
    hi: &'a mut [u32; BLOCK],
    lo: &'a mut [u32; BLOCK],
    keys: &'a [[u32; 2]; ROUNDS],
    lo_bits: u32,
    ma: u32,
    mb: u32,
}

impl Lanes<u64> for Narrow<'_> {
    #[inline(always)]
    fn apply(&mut self, ys: &mut [u64]) {
        let m = ys.len();
        let (hi, lo) = (&mut self.hi[..m], &mut self.lo[..m]);
        for ((h, l), y) in hi.iter_mut().zip(lo.iter_mut()).zip(ys.iter()) {
            *l = *y as u32 & self.mb;
            *h = (*y >> self.lo_bits) as u32;
        }
        narrow_rounds(hi, lo, self.keys, self.ma, self.mb);
        for ((h, l), y) in hi.iter().zip(lo.iter()).zip(ys.iter_mut()) {
            *y = (u64::from(*h) << self.lo_bits) | u64::from(*l);
        }
    }
}

/// Feistel over larger spaces: each half of up to 64 bits is two u32 lanes.
struct Wide<'a> {
    words: &'a mut [[u32; BLOCK]; 4],
    keys: &'a [[u32; 2]; ROUNDS],
    lo_bits: u32,
    ma: u64,
    mb: u64,
}

impl Wide<'_> {
    /// Loads lanes `0..m` with the halves of `xs`.
    #[inline(always)]
    fn split(&mut self, xs: &[u128]) {
        let m = xs.len();
        let [hh, hl, lh, ll] = &mut *self.words;
        for (x, ((a, b), (c, d))) in xs.iter().zip(
            hh[..m]
                .iter_mut()
                .zip(hl[..m].iter_mut())
                .zip(lh[..m].iter_mut().zip(ll[..m].iter_mut())),
        ) {
            let lo = (*x as u64) & self.mb;
            let hi = (*x >> self.lo_bits) as u64;
            (*a, *b, *c, *d) = ((hi >> 32) as u32, hi as u32, (lo >> 32) as u32, lo as u32);
        }
    }

    /// Loads lanes `0..m` with the consecutive values `hi·2^lo_bits + lo + j`;
    /// `lo + m - 1` must stay within the low half.
    #[inline(always)]
    fn split_run(&mut self, hi: u64, lo: u64, m: usize) {
        let [hh, hl, lh, ll] = &mut *self.words;
        hh[..m].fill((hi >> 32) as u32);
        hl[..m].fill(hi as u32);
        for (j, (c, d)) in lh[..m].iter_mut().zip(ll[..m].iter_mut()).enumerate() {
            let lo = lo + j as u64;
            (*c, *d) = ((lo >> 32) as u32, lo as u32);
        }
    }

    #[inline(always)]
    fn rounds(&mut self, m: usize) {
        let [hh, hl, lh, ll] = &mut *self.words;
        wide_rounds(
            [&mut hh[..m], &mut hl[..m], &mut lh[..m], &mut ll[..m]],
            self.keys,
            self.ma,
            self.mb,
        );
    }

    /// Lanes `0..m` as (high, low) 64-bit words of `hi·2^lo_bits + lo`, with
    /// shifts that vectorise.
    #[inline(always)]
    fn join_words(&self, pos_hi: &mut [u64], pos_lo: &mut [u64]) {
        let m = pos_hi.len();
        let [hh, hl, lh, ll] = &*self.words;
        let lanes = hh[..m]
            .iter()
            .zip(hl[..m].iter())
            .zip(lh[..m].iter().zip(ll[..m].iter()));
        let words = pos_hi.iter_mut().zip(pos_lo.iter_mut());
        // lo_bits is 32..=64 in a wide space: 64 only for more than 2^127 addresses.
        if self.lo_bits >= 64 {
            for ((ph, pl), ((a, b), (c, d))) in words.zip(lanes) {
                *ph = (u64::from(*a) << 32) | u64::from(*b);
                *pl = (u64::from(*c) << 32) | u64::from(*d);
            }
        } else {
            let (up, down) = (self.lo_bits, 64 - self.lo_bits);
            for ((ph, pl), ((a, b), (c, d))) in words.zip(lanes) {
                let hi = (u64::from(*a) << 32) | u64::from(*b);
                let lo = (u64::from(*c) << 32) | u64::from(*d);
                *ph = hi >> down;
                *pl = (hi << up) | lo;
            }
        }
    }
}

impl Lanes<u128> for Wide<'_> {
    #[inline(always)]
    fn apply(&mut self, ys: &mut [u128]) {
        self.split(ys);
        self.rounds(ys.len());
        let [hh, hl, lh, ll] = &*self.words;
        for (y, ((a, b), (c, d))) in ys
            .iter_mut()
            .zip(hh.iter().zip(hl.iter()).zip(lh.iter().zip(ll.iter())))
        {
            let hi = (u64::from(*a) << 32) | u64::from(*b);
            let lo = (u64::from(*c) << 32) | u64::from(*d);
            *y = (u128::from(hi) << self.lo_bits) | u128::from(lo);
        }
    }
}

/// The Feistel rounds over narrow lanes.
#[inline(always)]
fn narrow_rounds(hi: &mut [u32], lo: &mut [u32], keys: &[[u32; 2]; ROUNDS], ma: u32, mb: u32) {
    for (r, [k0, _]) in keys.iter().enumerate() {
        if r % 2 == 0 {
            for (l, h) in lo.iter_mut().zip(hi.iter()) {
                *l ^= mix32(*h ^ k0) & mb;
            }
        } else {
            for (h, l) in hi.iter_mut().zip(lo.iter()) {
                *h ^= mix32(*l ^ k0) & ma;
            }
        }
    }
}

/// The Feistel rounds over wide lanes: each half is (high word, low word).
#[inline(always)]
fn wide_rounds(lanes: [&mut [u32]; 4], keys: &[[u32; 2]; ROUNDS], ma: u64, mb: u64) {
    let [hh, hl, lh, ll] = lanes;
    let (mb_hi, mb_lo) = ((mb >> 32) as u32, mb as u32);
    let (ma_hi, ma_lo) = ((ma >> 32) as u32, ma as u32);
    for (r, &[k0, k1]) in keys.iter().enumerate() {
        if r % 2 == 0 {
            for ((a, b), (c, d)) in hh
                .iter()
                .zip(hl.iter())
                .zip(lh.iter_mut().zip(ll.iter_mut()))
            {
                let (fh, fl) = round_wide(*a, *b, k0, k1);
                *c ^= fh & mb_hi;
                *d ^= fl & mb_lo;
            }
        } else {
            for ((a, b), (c, d)) in hh
                .iter_mut()
                .zip(hl.iter_mut())
                .zip(lh.iter().zip(ll.iter()))
            {
                let (fh, fl) = round_wide(*c, *d, k0, k1);
                *a ^= fh & ma_hi;
                *b ^= fl & ma_lo;
            }
        }
    }
}

/// Cycle-walking for a whole block at once: the lanes still above `last` are
/// compacted into a list and pushed through the Feistel network again, in
/// vectorised passes, until none is left. Each pass at least halves the list on
/// average (`2^k < 2·len`), so the total work is about twice one pass.
#[inline(always)]
fn walk<T: Copy + PartialOrd, K: Lanes<T>>(
    ys: &mut [T],
    last: T,
    feistel: &mut K,
    pending: &mut [u16; BLOCK],
    tmp: &mut [T; BLOCK],
) {
    let mut np = 0;
    for (j, &y) in ys.iter().enumerate() {
        pending[np] = j as u16;
        np += usize::from(y > last);
    }
    while np > 0 {
        for (t, &j) in tmp.iter_mut().zip(&pending[..np]) {
            *t = ys[usize::from(j)];
        }
        feistel.apply(&mut tmp[..np]);
        let mut next = 0;
        for t in 0..np {
            let j = pending[t];
            let y = tmp[t];
            ys[usize::from(j)] = y;
            pending[next] = j;
            next += usize::from(y > last);
        }
        np = next;
    }
}

#[inline(always)]
fn narrow_block(
    space: &AddressSpace,
    starts: &[u64],
    start: u64,
    out: &mut [Octets],
    sc: &mut Scratch,
) {
    let perm = space.permutation();
    let n = out.len().min(BLOCK);
    let [w0, w1, _, _] = &mut sc.words;
    let mut feistel = Narrow {
        hi: w0,
        lo: w1,
        keys: perm.keys(),
        lo_bits: perm.lo_bits(),
        ma: mask64(perm.hi_bits()) as u32,
        mb: mask64(perm.lo_bits()) as u32,
    };
    let ys = &mut sc.y64[..n];
    for (j, y) in ys.iter_mut().enumerate() {
        *y = start + j as u64;
    }
    feistel.apply(ys);
    let networks = space.networks();
    if perm.is_power_of_two() && networks.len() == 1 {
        // The common case (one prefix of at most 2^64 addresses): host bits live in
        // the low 64 bits only, so each address is a constant high word plus one
        // byte-swapped u64. This loop vectorises.
        let net_hi = ((networks[0] >> 64) as u64).to_be_bytes();
        let net_lo = networks[0] as u64;
        for (o, y) in out.iter_mut().zip(ys.iter()) {
            o[..8].copy_from_slice(&net_hi);
            o[8..].copy_from_slice(&(net_lo | y).to_be_bytes());
        }
        return;
    }
    if !perm.is_power_of_two() {
        // len <= 2^64 here, so len - 1 fits a u64.
        let last = (perm.len() - 1) as u64;
        walk(ys, last, &mut feistel, &mut sc.pending, &mut sc.t64);
    }
    write_narrow(
        space.prefix_words(),
        starts,
        space.uniform_bits(),
        ys,
        out,
        &mut sc.prefix,
    );
}

/// Writes the address of each position of a space of at most 2^64 addresses, in
/// `u64` words: the
/// prefix of each lane is found first, in passes that vectorise (a shift for
/// uniform prefix sizes, a count of the starts at or below it for up to
/// [`LINEAR_PREFIXES`] prefixes, a branch-free binary search beyond), then each
/// address is two words.
#[inline(always)]
fn write_narrow(
    words: &PrefixWords,
    starts: &[u64],
    uniform_bits: Option<u32>,
    ys: &[u64],
    out: &mut [Octets],
    prefix: &mut [u32; BLOCK],
) {
    let prefix = &mut prefix[..ys.len()];
    match uniform_bits {
        // h < 64 here: a narrow space with 64 host bits per prefix has one prefix.
        Some(h) if h < 64 => {
            for (p, &y) in prefix.iter_mut().zip(ys) {
                *p = (y >> h) as u32;
            }
        }
        _ if starts.len() <= LINEAR_PREFIXES => {
            prefix.fill(0);
            for &s in &starts[1..] {
                for (p, &y) in prefix.iter_mut().zip(ys) {
                    *p += u32::from(y >= s);
                }
            }
        }
        _ => {
            for (p, &y) in prefix.iter_mut().zip(ys) {
                let mut base = 0usize;
                let mut len = starts.len();
                while len > 1 {
                    let half = len / 2;
                    base = std::hint::select_unpredictable(
                        starts[base + half] <= y,
                        base + half,
                        base,
                    );
                    len -= half;
                }
                *p = base as u32;
            }
        }
    }
    for ((o, &y), &p) in out.iter_mut().zip(ys).zip(prefix.iter()) {
        let j = p as usize;
        o[..8].copy_from_slice(&words.net_hi[j].to_be_bytes());
        o[8..].copy_from_slice(&(words.net_lo[j] | (y - starts[j])).to_be_bytes());
    }
}

#[inline(always)]
fn wide_block(space: &AddressSpace, start: u128, out: &mut [Octets], sc: &mut Scratch) {
    let perm = space.permutation();
    let n = out.len().min(BLOCK);
    let mut feistel = Wide {
        words: &mut sc.words,
        keys: perm.keys(),
        lo_bits: perm.lo_bits(),
        ma: mask64(perm.hi_bits()),
        mb: mask64(perm.lo_bits()),
    };
    // A block of consecutive indices almost never carries into the high half (at
    // least 2^32 indices per carry), so the halves are a constant and a count.
    let lo = start as u64 & feistel.mb;
    if u128::from(lo) + n as u128 <= u128::from(feistel.mb) + 1 {
        feistel.split_run((start >> feistel.lo_bits) as u64, lo, n);
    } else {
        let xs = &mut sc.y128[..n];
        for (j, x) in xs.iter_mut().enumerate() {
            *x = start + j as u128;
        }
        feistel.split(xs);
    }
    feistel.rounds(n);
    let (pos_hi, pos_lo) = (&mut sc.pos_hi[..n], &mut sc.pos_lo[..n]);
    feistel.join_words(pos_hi, pos_lo);
    if !perm.is_power_of_two() {
        // Cycle-walking, on u128 positions: few lanes need it.
        let ys = &mut sc.y128[..n];
        for (y, (h, l)) in ys.iter_mut().zip(pos_hi.iter().zip(pos_lo.iter())) {
            *y = (u128::from(*h) << 64) | u128::from(*l);
        }
        walk(
            ys,
            perm.len() - 1,
            &mut feistel,
            &mut sc.pending,
            &mut sc.t128,
        );
        for (y, (h, l)) in ys.iter().zip(pos_hi.iter_mut().zip(pos_lo.iter_mut())) {
            (*h, *l) = ((*y >> 64) as u64, *y as u64);
        }
    }
    write_wide(space, pos_hi, pos_lo, out);
}

/// Writes the address of each wide position, given as (high, low) words: with
/// uniform prefix sizes the prefix index and host part come from shifts and masks
/// of the words, so only the two table loads remain per address.
#[inline(always)]
fn write_wide(space: &AddressSpace, pos_hi: &[u64], pos_lo: &[u64], out: &mut [Octets]) {
    let words = space.prefix_words();
    let lanes = out.iter_mut().zip(pos_hi.iter().zip(pos_lo.iter()));
    match space.uniform_bits() {
        // h >= 64: the index is in the high word, the host part spans both.
        Some(h) if h >= 64 => {
            let (shift, mask) = (h - 64, mask64(h - 64));
            for (o, (&ph, &pl)) in lanes {
                let j = (ph >> shift) as usize;
                o[..8].copy_from_slice(&(words.net_hi[j] | (ph & mask)).to_be_bytes());
                o[8..].copy_from_slice(&(words.net_lo[j] | pl).to_be_bytes());
            }
        }
        // 0 < h < 64: the index straddles the words, the host part is low.
        Some(h) if h > 0 => {
            let mask = mask64(h);
            for (o, (&ph, &pl)) in lanes {
                let j = ((ph << (64 - h)) | (pl >> h)) as usize;
                o[..8].copy_from_slice(&words.net_hi[j].to_be_bytes());
                o[8..].copy_from_slice(&(words.net_lo[j] | (pl & mask)).to_be_bytes());
            }
        }
        _ => {
            for (o, (&ph, &pl)) in lanes {
                let pos = (u128::from(ph) << 64) | u128::from(pl);
                *o = space.locate_search(pos).to_be_bytes();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::tests::space;

    fn check(prefixes: &[&str], seed: u64, start: u128, count: usize) {
        let space = space(prefixes, seed);
        let count = count.min(usize::try_from(space.len() - start).unwrap_or(usize::MAX));
        let mut fast = vec![[0u8; 16]; count];
        fill_parallel(&space, start, &mut fast);
        let mut generic = vec![[0u8; 16]; count];
        fill_blocks(&space, start, &mut generic);
        for (j, (f, g)) in fast.iter().zip(&generic).enumerate() {
            // The reference: scalar permutation and the general prefix search.
            let pos = space.permutation().apply(start + j as u128);
            let want = space.locate_search(pos).to_be_bytes();
            assert_eq!(space.address_u128(start + j as u128).to_be_bytes(), want);
            assert_eq!(
                *f,
                want,
                "{prefixes:?} seed={seed} index={}",
                start + j as u128
            );
            assert_eq!(*g, want);
        }
    }

    #[test]
    fn matches_the_reference_on_every_shape() {
        // narrow, power of two, one prefix
        check(&["2a00::/64"], 1, 0, 70_000);
        check(&["2a00::/64"], 2, u128::from(u64::MAX) - 1000, 5000);
        check(&["2a00::/120"], 3, 0, 256);
        check(&["2a00::/128"], 3, 0, 1);
        // narrow, arbitrary size, several prefixes
        check(&["2a00::/120", "2a01::/125", "2a02::7"], 4, 0, 300);
        check(&["2a00::/80", "2a01::/70"], 5, 12345, 40_000);
        // wide: more than 2^64 addresses
        check(&["2a00::/63"], 6, 0, 20_000);
        check(&["2a00::/64", "2a01::/64", "2a02::/64"], 7, 99, 20_000);
        check(&["2000::/3"], 8, 1 << 100, 20_000);
        // wide with uniform prefixes of fewer than 64 host bits, and wide uneven
        let quarters = [
            "2a00:0:0:1::/66",
            "2a00:0:0:3::/66",
            "2a00:0:0:5::/66",
            "2a00:0:0:7::/66",
            "2a00:0:0:9::/66",
        ];
        check(&quarters, 15, 0, 20_000);
        check(&quarters, 16, (1 << 64) - 3000, 20_000);
        check(
            &["2a00::/63", "2a01::/70", "2a02::/100"],
            17,
            1 << 62,
            20_000,
        );
        // uniform prefix sizes (the O(1) lookup), narrow and wide
        check(&["2a00::/120", "2a01::/120", "2a02::/120"], 10, 0, 768);
        let many: Vec<String> = (0..1000).map(|i| format!("2a00:{i:x}::/64")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        check(&many, 11, 999 << 64, 20_000);
        check(&many[..5], 12, 3 << 64, 20_000);
        check(&["::/0"], 9, u128::MAX - (1 << 121) - 3000, 5000);
        // narrow, more prefixes than the linear lookup takes, of different sizes
        let uneven: Vec<String> = (0..40)
            .map(|i| format!("2a00:{i:x}::/{}", 100 + i % 7))
            .collect();
        let uneven: Vec<&str> = uneven.iter().map(String::as_str).collect();
        check(&uneven, 13, 0, 50_000);
        check(&uneven[..LINEAR_PREFIXES], 14, 7, 50_000);
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let space = space(&["2a00::/100"], 77);
        let mut whole = vec![[0u8; 16]; 3 * CLAIM + MIN_PARALLEL + 17];
        fill_parallel(&space, 5, &mut whole);
        let mut pieces = vec![[0u8; 16]; whole.len()];
        let (a, b) = pieces.split_at_mut(BLOCK + 3);
        fill_serial(&space, 5, a);
        fill_parallel(&space, 5 + (BLOCK + 3) as u128, b);
        assert_eq!(whole, pieces);
    }
}
