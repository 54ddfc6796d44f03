//! The CPU generation path: the permutation of `permutation.rs`, restructured so the
//! compiler vectorises it.
//!
//! Each block of [`BLOCK`] consecutive indices is split into structure-of-arrays
//! `u32` lanes (two per index in a space of at most 2^64 addresses, four beyond),
//! and every step runs as a branch-free loop over the lanes: the Feistel rounds,
//! the cycle-walking passes, the prefix lookup and the byte-swapped write. On
//! x86-64 the same code is compiled again with AVX2 and with AVX-512 enabled and
//! picked at run time.
//!
//! [`fill_parallel`] shares a batch between the calling thread and rayon workers,
//! which claim [`CLAIM`]-sized pieces as they get to them (see its comment for why).
//!
//! The output must equal [`AddressSpace::address`] bit for bit; the tests below and
//! the GPU differential test hold it to that.

use std::cell::RefCell;
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

/// Lanes per structure-of-arrays block; the lane arrays stay in L1.
const BLOCK: usize = 512;

/// Lanes per block of a narrow power-of-two space (no cycle-walking), at most
/// [`BLOCK`].
const SHORT_BLOCK: usize = 256;

/// Up to this many prefixes the lookup compares each lane against every start
/// (vectorised selects) instead of searching.
const LINEAR_PREFIXES: usize = 16;

/// Cycle-walking re-runs the whole block (keeping only the lanes that needed it)
/// while more than `1 / BLEND_RATIO` of its lanes are outside the space; fewer
/// are gathered into a list first. A full pass is pure vector work, while each
/// gathered lane costs scalar loads and stores, so gathering only wins once
/// few lanes are left.
const BLEND_RATIO: usize = 4;

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

thread_local! {
    /// Each thread's block scratch, kept between calls: allocating and zeroing it
    /// per call showed up in profiles of small batches.
    static SCRATCH: RefCell<Option<Box<Scratch>>> = const { RefCell::new(None) };
}

/// Fills `out` on the calling thread.
pub(crate) fn fill_serial(space: &AddressSpace, start: u128, out: &mut [Octets]) {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => dispatch(space, start, out, slot.get_or_insert_with(Scratch::new)),
        // Only reachable by re-entering from inside a fill; a fresh one is correct.
        Err(_) => dispatch(space, start, out, &mut Scratch::new()),
    });
}

fn dispatch(space: &AddressSpace, start: u128, out: &mut [Octets], sc: &mut Scratch) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
            #[allow(unsafe_code)]
            // SAFETY: `fill_avx512` only requires AVX-512F and AVX-512BW, whose
            // presence was just detected at run time; it has no other preconditions.
            unsafe {
                fill_avx512(space, start, out, sc)
            };
            return;
        }
        if std::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: `fill_avx2` only requires AVX2, whose presence was just detected
            // at run time; it has no other preconditions.
            unsafe {
                fill_avx2(space, start, out, sc)
            };
            return;
        }
    }
    fill_blocks(space, start, out, sc);
}

// BW as well as F: the byte swaps of the output are byte shuffles (`vpshufb`),
// which 512-bit registers only have with AVX-512BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn fill_avx512(space: &AddressSpace, start: u128, out: &mut [Octets], sc: &mut Scratch) {
    fill_blocks(space, start, out, sc);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn fill_avx2(space: &AddressSpace, start: u128, out: &mut [Octets], sc: &mut Scratch) {
    fill_blocks(space, start, out, sc);
}

/// Working memory for one block.
struct Scratch {
    /// Narrow lanes (hi, lo) and a spare set for cycle-walking passes.
    narrow: [[u32; BLOCK]; 2],
    narrow_spare: [[u32; BLOCK]; 2],
    /// Wide lanes (hi.hi, hi.lo, lo.hi, lo.lo) and a spare set.
    wide: [[u32; BLOCK]; 4],
    wide_spare: [[u32; BLOCK]; 4],
    flags: [u8; BLOCK],
    pending: [u16; BLOCK],
    /// Positions (narrow: `pos_lo` only).
    pos_hi: [u64; BLOCK],
    pos_lo: [u64; BLOCK],
    /// Address words, before the byte-swapped write.
    addr_hi: [u64; BLOCK],
    addr_lo: [u64; BLOCK],
}

impl Scratch {
    fn new() -> Box<Self> {
        Box::new(Scratch {
            narrow: [[0; BLOCK]; 2],
            narrow_spare: [[0; BLOCK]; 2],
            wide: [[0; BLOCK]; 4],
            wide_spare: [[0; BLOCK]; 4],
            flags: [0; BLOCK],
            pending: [0; BLOCK],
            pos_hi: [0; BLOCK],
            pos_lo: [0; BLOCK],
            addr_hi: [0; BLOCK],
            addr_lo: [0; BLOCK],
        })
    }
}

#[inline(always)]
fn fill_blocks(space: &AddressSpace, start: u128, out: &mut [Octets], sc: &mut Scratch) {
    // Starts in u64 exist exactly for spaces of at most 2^64 indices (the
    // permutation's narrow case), where `s` fits a u64 too.
    let narrow_starts = space.prefix_words().narrow_starts.as_deref();
    // Without walking, a narrow block is one pass over few arrays, and shorter
    // blocks measured faster; the walking and wide kernels prefer long ones.
    let step = if narrow_starts.is_some() && space.permutation().is_power_of_two() {
        SHORT_BLOCK
    } else {
        BLOCK
    };
    for (b, block) in out.chunks_mut(step).enumerate() {
        let s = start + (b * step) as u128;
        match narrow_starts {
            Some(starts) => narrow_block(space, starts, s as u64, block, sc),
            None => wide_block(space, s, block, sc),
        }
    }
}

/// The Feistel network over `W` u32 words per lane, and the test of whether a
/// lane lies past the end of the space (and must walk on).
trait Network<const W: usize> {
    fn rounds(&self, lanes: [&mut [u32]; W]);
    fn outside(&self, lane: [u32; W]) -> bool;
}

/// Spaces of at most 2^64 addresses: halves of at most 32 bits, one word each.
struct Narrow<'a> {
    keys: &'a [[u32; 2]; ROUNDS],
    ma: u32,
    mb: u32,
    /// The halves of the last position, `len - 1`.
    last: [u32; 2],
}

impl Network<2> for Narrow<'_> {
    #[inline(always)]
    fn rounds(&self, [hi, lo]: [&mut [u32]; 2]) {
        for (r, [k0, _]) in self.keys.iter().enumerate() {
            if r % 2 == 0 {
                for (l, h) in lo.iter_mut().zip(hi.iter()) {
                    *l ^= mix32(*h ^ k0) & self.mb;
                }
            } else {
                for (h, l) in hi.iter_mut().zip(lo.iter()) {
                    *h ^= mix32(*l ^ k0) & self.ma;
                }
            }
        }
    }

    #[inline(always)]
    fn outside(&self, [h, l]: [u32; 2]) -> bool {
        // (h, l) > last, lexicographically: h is the high half.
        (h > self.last[0]) | ((h == self.last[0]) & (l > self.last[1]))
    }
}

/// Larger spaces: each half of up to 64 bits is two words.
struct Wide<'a> {
    keys: &'a [[u32; 2]; ROUNDS],
    ma: u64,
    mb: u64,
    /// The halves of the last position, `len - 1`.
    last: [u64; 2],
}

impl Network<4> for Wide<'_> {
    #[inline(always)]
    fn rounds(&self, [hh, hl, lh, ll]: [&mut [u32]; 4]) {
        let (mb_hi, mb_lo) = ((self.mb >> 32) as u32, self.mb as u32);
        let (ma_hi, ma_lo) = ((self.ma >> 32) as u32, self.ma as u32);
        for (r, &[k0, k1]) in self.keys.iter().enumerate() {
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

    #[inline(always)]
    fn outside(&self, [a, b, c, d]: [u32; 4]) -> bool {
        let hi = (u64::from(a) << 32) | u64::from(b);
        let lo = (u64::from(c) << 32) | u64::from(d);
        (hi > self.last[0]) | ((hi == self.last[0]) & (lo > self.last[1]))
    }
}

/// Lanes `0..m` of each word array.
#[inline(always)]
fn lanes<const W: usize>(words: &mut [[u32; BLOCK]; W], m: usize) -> [&mut [u32]; W] {
    words.each_mut().map(|w| &mut w[..m])
}

#[inline(always)]
fn lane<const W: usize>(words: &[[u32; BLOCK]; W], j: usize) -> [u32; W] {
    std::array::from_fn(|i| words[i][j])
}

/// Cycle-walking for lanes `0..m` of a block that has had its first Feistel
/// pass: each lane past the end goes through the network again until it is not.
///
/// While many lanes are outside (up to half in a space just over a power of
/// two), the whole block runs again and each lane keeps the new value only if it
/// was outside: vector work with no per-lane bookkeeping. Once few are left they
/// are gathered into a list that shrinks each pass (each pass at least halves it
/// on average, as `2^k < 2·len`), so the rare long walks cost little.
#[inline(always)]
fn walk<const W: usize, N: Network<W>>(
    net: &N,
    words: &mut [[u32; BLOCK]; W],
    spare: &mut [[u32; BLOCK]; W],
    flags: &mut [u8; BLOCK],
    pending: &mut [u16; BLOCK],
    m: usize,
) {
    // Tells the compiler every lane index is in bounds, so the loops vectorise.
    let m = m.min(BLOCK);
    loop {
        let mut outside = 0;
        for (j, f) in flags[..m].iter_mut().enumerate() {
            *f = u8::from(net.outside(lane(words, j)));
            outside += usize::from(*f);
        }
        if outside == 0 {
            return;
        }
        if outside * BLEND_RATIO <= m {
            break;
        }
        for (t, w) in spare.iter_mut().zip(words.iter()) {
            t[..m].copy_from_slice(&w[..m]);
        }
        net.rounds(lanes(spare, m));
        // A mask instead of `if`: the compiler turned the `if` into a branch per
        // lane, which mispredicts on these random flags.
        for (w, t) in words.iter_mut().zip(spare.iter()) {
            for ((x, &y), &f) in w[..m].iter_mut().zip(&t[..m]).zip(&flags[..m]) {
                let keep_new = 0u32.wrapping_sub(u32::from(f));
                *x = (*x & !keep_new) | (y & keep_new);
            }
        }
    }
    // Collects the few lanes still outside: a store per lane and an add, with no
    // branch on the (random) flags.
    let mut np = 0;
    for (j, &f) in flags[..m].iter().enumerate() {
        pending[np] = j as u16;
        np += usize::from(f);
    }
    while np > 0 {
        // `% BLOCK` (a mask) proves every index in bounds, so these loops have
        // no bounds checks and the gather and scatter can vectorise.
        let np_ = np.min(BLOCK);
        for i in 0..W {
            let (s, w) = (&mut spare[i][..np_], &words[i]);
            for (t, &j) in s.iter_mut().zip(&pending[..np_]) {
                *t = w[usize::from(j) % BLOCK];
            }
        }
        net.rounds(lanes(spare, np_));
        for i in 0..W {
            let (s, w) = (&spare[i][..np_], &mut words[i]);
            for (&t, &j) in s.iter().zip(&pending[..np_]) {
                w[usize::from(j) % BLOCK] = t;
            }
        }
        for (k, f) in flags[..np_].iter_mut().enumerate() {
            *f = u8::from(net.outside(lane(spare, k)));
        }
        let mut next = 0;
        for k in 0..np_ {
            pending[next] = pending[k];
            next += usize::from(flags[k]);
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
    let m = out.len().min(BLOCK);
    let out = &mut out[..m];
    let (lo_bits, mb) = (perm.lo_bits(), mask64(perm.lo_bits()));
    // len <= 2^64 here, so len - 1 fits a u64 and its halves fit u32 each.
    let last = (perm.len() - 1) as u64;
    let net = Narrow {
        keys: perm.keys(),
        ma: mask64(perm.hi_bits()) as u32,
        mb: mb as u32,
        last: [(last >> lo_bits) as u32, (last & mb) as u32],
    };
    let [hi, lo] = lanes(&mut sc.narrow, m);
    // start + m - 1 < len <= 2^64, so the index never wraps.
    for (j, (h, l)) in hi.iter_mut().zip(lo.iter_mut()).enumerate() {
        let x = start + j as u64;
        (*h, *l) = ((x >> lo_bits) as u32, x as u32 & net.mb);
    }
    net.rounds([hi, lo]);
    if !perm.is_power_of_two() {
        walk(
            &net,
            &mut sc.narrow,
            &mut sc.narrow_spare,
            &mut sc.flags,
            &mut sc.pending,
            m,
        );
    }
    let [hi, lo] = &sc.narrow;
    let ys = &mut sc.pos_lo[..m];
    for (y, (&h, &l)) in ys.iter_mut().zip(hi.iter().zip(lo.iter())) {
        *y = (u64::from(h) << lo_bits) | u64::from(l);
    }
    let words = space.prefix_words();
    if starts.len() == 1 {
        // One prefix of at most 2^64 addresses: host bits live in the low word only,
        // so each address is a constant high word plus one byte-swapped u64.
        let net_hi = words.net_hi[0].to_be_bytes();
        let net_lo = words.net_lo[0];
        for (o, y) in out.iter_mut().zip(ys.iter()) {
            o[..8].copy_from_slice(&net_hi);
            o[8..].copy_from_slice(&(net_lo | y).to_be_bytes());
        }
        return;
    }
    let (addr_hi, addr_lo) = (&mut sc.addr_hi[..m], &mut sc.addr_lo[..m]);
    narrow_addresses(words, starts, space.uniform_bits(), ys, addr_hi, addr_lo);
    write_words(out, addr_hi, addr_lo);
}

/// The address words of each position of a space of at most 2^64 addresses: the
/// host part is `y - starts[j]` in the low word of prefix `j`'s network.
#[inline(always)]
fn narrow_addresses(
    words: &PrefixWords,
    starts: &[u64],
    uniform_bits: Option<u32>,
    ys: &[u64],
    addr_hi: &mut [u64],
    addr_lo: &mut [u64],
) {
    if starts.len() <= LINEAR_PREFIXES {
        // Padded to a power of two by repeating the last prefix, so the selects
        // below run a constant number of times and unroll into registers.
        let mut table = Linear {
            starts: [0; LINEAR_PREFIXES],
            net_hi: [0; LINEAR_PREFIXES],
            offset: [0; LINEAR_PREFIXES],
        };
        for k in 0..LINEAR_PREFIXES {
            let j = k.min(starts.len() - 1);
            table.starts[k] = starts[j];
            table.net_hi[k] = words.net_hi[j];
            // The host part is y - start and the network's host bits are zero,
            // so `net | (y - start)` is `y + (net - start)`, wrapping.
            table.offset[k] = words.net_lo[j].wrapping_sub(starts[j]);
        }
        match starts.len() {
            0..=2 => select_linear::<2>(&table, ys, addr_hi, addr_lo),
            3..=4 => select_linear::<4>(&table, ys, addr_hi, addr_lo),
            5..=8 => select_linear::<8>(&table, ys, addr_hi, addr_lo),
            _ => select_linear::<LINEAR_PREFIXES>(&table, ys, addr_hi, addr_lo),
        }
        return;
    }
    let lanes = addr_hi.iter_mut().zip(addr_lo.iter_mut()).zip(ys);
    match uniform_bits {
        // h < 64 here: a narrow space with 64 host bits per prefix has one prefix.
        Some(h) if h < 64 => {
            for ((ah, al), &y) in lanes {
                let j = (y >> h) as usize;
                (*ah, *al) = (words.net_hi[j], words.net_lo[j] | (y & mask64(h)));
            }
        }
        _ => {
            for ((ah, al), &y) in lanes {
                // The last j with starts[j] <= y. The comparisons are unpredictable
                // (the order is random), so the search avoids branches on them.
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
                (*ah, *al) = (words.net_hi[base], words.net_lo[base] | (y - starts[base]));
            }
        }
    }
}

/// Up to [`LINEAR_PREFIXES`] prefixes of a narrow space, padded.
struct Linear {
    starts: [u64; LINEAR_PREFIXES],
    net_hi: [u64; LINEAR_PREFIXES],
    /// `net_lo - start`, wrapping.
    offset: [u64; LINEAR_PREFIXES],
}

/// Every lane against the first `P` starts of `table`, in start order: the last
/// start at or below it wins. The loop over starts is unrolled, so each lane's
/// words stay in registers (selects, no stores per prefix) and the loop over
/// lanes vectorises. `starts[0]` is 0, so the first prefix is the default.
#[inline(always)]
fn select_linear<const P: usize>(
    table: &Linear,
    ys: &[u64],
    addr_hi: &mut [u64],
    addr_lo: &mut [u64],
) {
    let starts: [u64; P] = std::array::from_fn(|k| table.starts[k]);
    let net_hi: [u64; P] = std::array::from_fn(|k| table.net_hi[k]);
    let offset: [u64; P] = std::array::from_fn(|k| table.offset[k]);
    for ((h, l), &y) in addr_hi.iter_mut().zip(addr_lo.iter_mut()).zip(ys) {
        let (mut nh, mut off) = (net_hi[0], offset[0]);
        for k in 1..P {
            let inside = y >= starts[k];
            nh = if inside { net_hi[k] } else { nh };
            off = if inside { offset[k] } else { off };
        }
        (*h, *l) = (nh, y.wrapping_add(off));
    }
}

/// Writes each address from its two words, big-endian.
#[inline(always)]
fn write_words(out: &mut [Octets], addr_hi: &[u64], addr_lo: &[u64]) {
    for (o, (&h, &l)) in out.iter_mut().zip(addr_hi.iter().zip(addr_lo)) {
        o[..8].copy_from_slice(&h.to_be_bytes());
        o[8..].copy_from_slice(&l.to_be_bytes());
    }
}

#[inline(always)]
fn wide_block(space: &AddressSpace, start: u128, out: &mut [Octets], sc: &mut Scratch) {
    let perm = space.permutation();
    let m = out.len().min(BLOCK);
    let out = &mut out[..m];
    let lo_bits = perm.lo_bits();
    let last = perm.len() - 1;
    let net = Wide {
        keys: perm.keys(),
        ma: mask64(perm.hi_bits()),
        mb: mask64(lo_bits),
        // last < 2^bits and the high half has at most 64 bits.
        last: [(last >> lo_bits) as u64, last as u64 & mask64(lo_bits)],
    };
    let [hh, hl, lh, ll] = &mut sc.wide;
    // A block of consecutive indices almost never carries into the high half (at
    // least 2^32 indices per carry), so the halves are a constant and a count.
    let lo = start as u64 & net.mb;
    if u128::from(lo) + m as u128 <= u128::from(net.mb) + 1 {
        let hi = (start >> lo_bits) as u64;
        hh[..m].fill((hi >> 32) as u32);
        hl[..m].fill(hi as u32);
        for (j, (c, d)) in lh[..m].iter_mut().zip(ll[..m].iter_mut()).enumerate() {
            let lo = lo + j as u64;
            (*c, *d) = ((lo >> 32) as u32, lo as u32);
        }
    } else {
        for (j, (((a, b), c), d)) in hh[..m]
            .iter_mut()
            .zip(hl[..m].iter_mut())
            .zip(lh[..m].iter_mut())
            .zip(ll[..m].iter_mut())
            .enumerate()
        {
            let x = start + j as u128;
            let (hi, lo) = ((x >> lo_bits) as u64, x as u64 & net.mb);
            (*a, *b, *c, *d) = ((hi >> 32) as u32, hi as u32, (lo >> 32) as u32, lo as u32);
        }
    }
    net.rounds(lanes(&mut sc.wide, m));
    if !perm.is_power_of_two() {
        walk(
            &net,
            &mut sc.wide,
            &mut sc.wide_spare,
            &mut sc.flags,
            &mut sc.pending,
            m,
        );
    }
    let (pos_hi, pos_lo) = (&mut sc.pos_hi[..m], &mut sc.pos_lo[..m]);
    join_words(&sc.wide, lo_bits, pos_hi, pos_lo);
    write_wide(space, pos_hi, pos_lo, out);
}

/// Lanes `0..m` as (high, low) 64-bit words of `hi·2^lo_bits + lo`, with
/// shifts that vectorise.
#[inline(always)]
fn join_words(words: &[[u32; BLOCK]; 4], lo_bits: u32, pos_hi: &mut [u64], pos_lo: &mut [u64]) {
    let m = pos_hi.len();
    let [hh, hl, lh, ll] = words;
    let lanes = hh[..m]
        .iter()
        .zip(hl[..m].iter())
        .zip(lh[..m].iter().zip(ll[..m].iter()));
    let words = pos_hi.iter_mut().zip(pos_lo.iter_mut());
    // lo_bits is 32..=64 in a wide space: 64 only for more than 2^127 addresses.
    if lo_bits >= 64 {
        for ((ph, pl), ((a, b), (c, d))) in words.zip(lanes) {
            *ph = (u64::from(*a) << 32) | u64::from(*b);
            *pl = (u64::from(*c) << 32) | u64::from(*d);
        }
    } else {
        let (up, down) = (lo_bits, 64 - lo_bits);
        for ((ph, pl), ((a, b), (c, d))) in words.zip(lanes) {
            let hi = (u64::from(*a) << 32) | u64::from(*b);
            let lo = (u64::from(*c) << 32) | u64::from(*d);
            *ph = hi >> down;
            *pl = (hi << up) | lo;
        }
    }
}

/// Writes the address of each wide position, given as (high, low) words: with
/// uniform prefix sizes the prefix index and host part come from shifts and masks
/// of the words, so only the two table loads remain per address.
#[inline(always)]
fn write_wide(space: &AddressSpace, pos_hi: &[u64], pos_lo: &[u64], out: &mut [Octets]) {
    let words = space.prefix_words();
    let (net_hi, net_lo) = (&words.net_hi[..], &words.net_lo[..]);
    // Positions are below len, so each j is in bounds; `min` tells the compiler,
    // which then keeps the loops free of bounds-check branches.
    let top = net_hi.len().min(net_lo.len()).saturating_sub(1);
    let lanes = out.iter_mut().zip(pos_hi.iter().zip(pos_lo.iter()));
    match space.uniform_bits() {
        // Whole /64s: the high word is the prefix index, the low word the host
        // part (the networks' low words are zero).
        Some(64) => {
            for (o, (&ph, &pl)) in lanes {
                o[..8].copy_from_slice(&net_hi[(ph as usize).min(top)].to_be_bytes());
                o[8..].copy_from_slice(&pl.to_be_bytes());
            }
        }
        // h >= 64: the index is in the high word, the host part spans both.
        Some(h) if h >= 64 => {
            let (shift, mask) = (h - 64, mask64(h - 64));
            for (o, (&ph, &pl)) in lanes {
                let j = ((ph >> shift) as usize).min(top);
                o[..8].copy_from_slice(&(net_hi[j] | (ph & mask)).to_be_bytes());
                o[8..].copy_from_slice(&(net_lo[j] | pl).to_be_bytes());
            }
        }
        // 0 < h < 64: the index straddles the words, the host part is low.
        Some(h) if h > 0 => {
            let mask = mask64(h);
            for (o, (&ph, &pl)) in lanes {
                let j = (((ph << (64 - h)) | (pl >> h)) as usize).min(top);
                o[..8].copy_from_slice(&net_hi[j].to_be_bytes());
                o[8..].copy_from_slice(&(net_lo[j] | (pl & mask)).to_be_bytes());
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
    use proptest::prelude::*;

    fn check(prefixes: &[&str], seed: u64, start: u128, count: usize) {
        let space = space(prefixes, seed);
        let count = count.min(usize::try_from(space.len() - start).unwrap_or(usize::MAX));
        let mut fast = vec![[0u8; 16]; count];
        fill_parallel(&space, start, &mut fast);
        let mut generic = vec![[0u8; 16]; count];
        fill_blocks(&space, start, &mut generic, &mut Scratch::new());
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

    /// Prefix sets of several shapes: distinct networks, so always disjoint.
    fn prefix_set() -> impl Strategy<Value = Vec<String>> {
        // Host bits from 0 to 68: narrow and wide spaces, powers of two and
        // sizes just past one (where half the lanes walk).
        proptest::collection::vec(prop_oneof![60u32..=64, 64u32..=128, 120u32..=128], 1..24)
            .prop_map(|lens| {
                lens.iter()
                    .enumerate()
                    .map(|(i, len)| format!("2a00:{i:x}::/{len}"))
                    .collect()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The block kernels and the parallel split equal the scalar reference for
        /// random prefix sets, seeds and ranges, including ranges that end at the
        /// end of the space.
        #[test]
        fn random_spaces_match_the_reference(
            prefixes in prefix_set(),
            seed in any::<u64>(),
            at in 0.0f64..1.0,
            count in 0usize..(MIN_PARALLEL + 3 * BLOCK),
            at_end in any::<bool>(),
        ) {
            let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
            let s = space(&prefixes, seed);
            let count = count.min(usize::try_from(s.len()).unwrap_or(usize::MAX));
            let last_start = s.len() - count as u128;
            let start = if at_end { last_start } else { (last_start as f64 * at) as u128 };
            check(&prefixes, seed, start.min(last_start), count);
        }
    }

    #[test]
    fn walking_edges_match_the_reference() {
        // 2^64 + 1 addresses: the smallest wide space, where almost half of the
        // first Feistel outputs lie outside; 2^64 - 2^k + ...: just under a power.
        check(&["2a00::/64", "2a01::1"], 21, 0, 20_000);
        check(&["2a00::/64", "2a01::/127"], 22, (1 << 64) - 5000, 5002);
        check(&["2a00::/65", "2a01::/66", "2a02::/128"], 23, 0, 20_000);
        check(&["2a00::/100", "2a01::1"], 24, 0, 50_000);
        check(&["2a00::/100", "2a01::1"], 25, (1 << 28) - 50_000, 50_001);
    }
}
