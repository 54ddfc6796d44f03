//! The keyed permutation that orders a scan.
//!
//! # Design
//!
//! The target space `[0, n)` (see [`TargetSet`](crate::TargetSet)) is permuted by a
//! keyed Feistel network over the smallest power-of-two domain `[0, 2^k)` that holds
//! it, with **cycle-walking** for non-power-of-two `n`: `y = F(i)`; while `y >= n`,
//! `y = F(y)`. Because `F` is a bijection on `[0, 2^k)`, cycle-walking restricted to
//! `[0, n)` is a bijection on `[0, n)`; since `2^k < 2n`, the expected number of extra
//! steps is below one.
//!
//! The Feistel network is *unbalanced and alternating*: `x` is split into a high half
//! of `a = k - k/2` bits and a low half of `b = k/2` bits, and [`ROUNDS`] rounds
//! alternately do `lo ^= f(hi)` and `hi ^= f(lo)` (each truncated to the half's
//! width). Every round is invertible whatever `f` is, so any `k` from 0 to 128 works
//! without padding.
//!
//! The round function uses only 32-bit operations so the WGSL shader (which has no
//! 64-bit integers) computes the exact same bits:
//!
//! * `k <= 64` (halves of at most 32 bits): `f(v) = mix32(v ^ k0)`;
//! * `k > 64` (halves of up to 64 bits): with `t0 = mix32(v_lo ^ k0)`,
//!   `t1 = mix32(v_hi ^ k1 ^ t0)`, `f(v) = t1 << 32 | mix32(t0 ^ t1 ^ k1)`.
//!
//! `mix32` is Chris Wellons' *lowbias32* integer hash. The round keys come from a
//! SplitMix64 stream seeded with the scan seed. This is a scrambler, not a cipher: the
//! order spreads load across networks and makes scans reproducible; the security
//! boundary of a scan is the probe MAC, not the order.
//!
//! Everything here is the scalar **reference**; `generate::cpu` vectorises it and
//! `generate::gpu` ports it to WGSL, and both are tested against this file.

use crate::error::{Error, Result};

/// Feistel rounds. Four rounds of a good round function give a pseudo-random
/// permutation (Luby–Rackoff); more would only slow the GPU and CPU kernels down.
pub const ROUNDS: usize = 4;

/// A keyed bijection on `[0, n)` for any `1 <= n <= 2^128 - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permutation {
    n: u128,
    bits: u32,
    lo_bits: u32,
    hi_bits: u32,
    keys: [[u32; 2]; ROUNDS],
}

impl Permutation {
    /// A permutation of `[0, n)` keyed by `seed`. Fails for `n == 0`.
    pub fn new(n: u128, seed: u64) -> Result<Self> {
        if n == 0 {
            return Err(Error::InvalidRange(
                "permutation over an empty domain".into(),
            ));
        }
        // Smallest k with 2^k >= n.
        let bits = 128 - (n - 1).leading_zeros();
        let lo_bits = bits / 2;
        let mut state = seed;
        let mut keys = [[0u32; 2]; ROUNDS];
        for k in &mut keys {
            let v = splitmix64(&mut state);
            *k = [v as u32, (v >> 32) as u32];
        }
        Ok(Permutation {
            n,
            bits,
            lo_bits,
            hi_bits: bits - lo_bits,
            keys,
        })
    }

    /// Size of the permuted range.
    pub fn len(&self) -> u128 {
        self.n
    }

    /// Always false: a permutation covers at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bits of the power-of-two Feistel domain (`2^bits >= len()`).
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Whether `len()` is a power of two, so no cycle-walking ever happens.
    pub fn is_power_of_two(&self) -> bool {
        self.n.is_power_of_two()
    }

    /// Whether the round function works on 32-bit halves (`bits() <= 64`).
    pub fn is_narrow(&self) -> bool {
        self.bits <= 64
    }

    pub(crate) fn lo_bits(&self) -> u32 {
        self.lo_bits
    }

    pub(crate) fn hi_bits(&self) -> u32 {
        self.hi_bits
    }

    pub(crate) fn keys(&self) -> &[[u32; 2]; ROUNDS] {
        &self.keys
    }

    /// The image of `i`; `i` must be below `len()` (checked in debug builds only, as
    /// this is the per-address hot path; callers validate ranges up front).
    #[inline]
    pub fn apply(&self, i: u128) -> u128 {
        debug_assert!(i < self.n);
        let mut y = self.feistel(i);
        while y >= self.n {
            y = self.feistel(y);
        }
        y
    }

    /// The preimage of `y` (`apply(invert(y)) == y`).
    pub fn invert(&self, y: u128) -> u128 {
        debug_assert!(y < self.n);
        let mut x = self.feistel_inverse(y);
        while x >= self.n {
            x = self.feistel_inverse(x);
        }
        x
    }

    /// One pass of the Feistel network over `[0, 2^bits)`.
    #[inline]
    pub(crate) fn feistel(&self, x: u128) -> u128 {
        let (mut hi, mut lo) = self.split(x);
        for r in 0..ROUNDS {
            if r % 2 == 0 {
                lo ^= self.round(r, hi) & mask64(self.lo_bits);
            } else {
                hi ^= self.round(r, lo) & mask64(self.hi_bits);
            }
        }
        self.join(hi, lo)
    }

    fn feistel_inverse(&self, y: u128) -> u128 {
        let (mut hi, mut lo) = self.split(y);
        for r in (0..ROUNDS).rev() {
            if r % 2 == 0 {
                lo ^= self.round(r, hi) & mask64(self.lo_bits);
            } else {
                hi ^= self.round(r, lo) & mask64(self.hi_bits);
            }
        }
        self.join(hi, lo)
    }

    #[inline]
    fn split(&self, x: u128) -> (u64, u64) {
        let lo = (x & u128::from(mask64(self.lo_bits))) as u64;
        // lo_bits <= 64 and bits <= 128, so the high half fits 64 bits.
        let hi = (x >> self.lo_bits) as u64;
        (hi, lo)
    }

    #[inline]
    fn join(&self, hi: u64, lo: u64) -> u128 {
        (u128::from(hi) << self.lo_bits) | u128::from(lo)
    }

    #[inline]
    fn round(&self, r: usize, v: u64) -> u64 {
        let [k0, k1] = self.keys[r];
        if self.is_narrow() {
            u64::from(mix32(v as u32 ^ k0))
        } else {
            let (hi, lo) = round_wide((v >> 32) as u32, v as u32, k0, k1);
            (u64::from(hi) << 32) | u64::from(lo)
        }
    }
}

/// The wide round function on a 64-bit half given as (high word, low word).
#[inline(always)]
pub(crate) fn round_wide(v_hi: u32, v_lo: u32, k0: u32, k1: u32) -> (u32, u32) {
    let t0 = mix32(v_lo ^ k0);
    let t1 = mix32(v_hi ^ k1 ^ t0);
    (t1, mix32(t0 ^ t1 ^ k1))
}

/// lowbias32 (Chris Wellons, hash-prospector): a 32-bit bijective integer hash with
/// low bias, built from shifts, xors and two multiplies.
#[inline(always)]
pub(crate) fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Mask of the low `bits` bits, `bits <= 64`.
#[inline(always)]
pub(crate) fn mask64(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_bijection(n: u128, seed: u64) {
        let p = Permutation::new(n, seed).expect("perm");
        let len = usize::try_from(n).expect("small");
        let mut seen = vec![false; len];
        for i in 0..n {
            let y = p.apply(i);
            assert!(y < n, "n={n} i={i} -> {y}");
            let slot = &mut seen[usize::try_from(y).expect("small")];
            assert!(!*slot, "n={n}: {y} produced twice");
            *slot = true;
            assert_eq!(p.invert(y), i, "n={n}");
        }
        assert!(seen.iter().all(|&s| s), "n={n}: not all covered");
    }

    #[test]
    fn bijective_and_covering_on_small_domains() {
        for n in [1u128, 2, 3, 7, 256, 1000, 1 << 16] {
            for seed in [0, 1, 0xdead_beef] {
                check_bijection(n, seed);
            }
        }
        for n in 1..=70u128 {
            check_bijection(n, 42);
        }
    }

    #[test]
    fn feistel_is_a_bijection_on_the_full_domain_for_every_width() {
        for bits in 0..=128u32 {
            let n = if bits == 128 {
                u128::MAX
            } else {
                1u128 << bits
            };
            let p = Permutation::new(n, 7).expect("perm");
            for x in [0u128, 1, 2, 0x1234_5678_9abc, u128::MAX >> 1, u128::MAX] {
                let x = if bits == 128 {
                    x
                } else {
                    x & ((1u128 << bits) - 1)
                };
                let y = p.feistel(x);
                if bits < 128 {
                    assert!(y >> bits == 0, "bits={bits}");
                }
                assert_eq!(p.feistel_inverse(y), x, "bits={bits}");
            }
        }
    }

    #[test]
    fn huge_domains_apply_and_invert() {
        for n in [
            u128::MAX,
            1 << 127,
            (1 << 125) - 12345,
            (1 << 64) + 1,
            1 << 64,
            3 << 70,
        ] {
            let p = Permutation::new(n, 99).expect("perm");
            for i in [0, 1, n / 2, n - 1] {
                let y = p.apply(i);
                assert!(y < n);
                assert_eq!(p.invert(y), i);
            }
        }
    }

    #[test]
    fn seed_changes_the_order_and_is_deterministic() {
        let a = Permutation::new(1 << 20, 1).expect("perm");
        let b = Permutation::new(1 << 20, 2).expect("perm");
        let a2 = Permutation::new(1 << 20, 1).expect("perm");
        let same = (0..1000u128).filter(|&i| a.apply(i) == b.apply(i)).count();
        assert!(same < 5, "{same} fixed points shared across seeds");
        assert!((0..1000u128).all(|i| a.apply(i) == a2.apply(i)));
    }

    #[test]
    fn empty_domain_is_an_error() {
        assert!(matches!(
            Permutation::new(0, 1),
            Err(Error::InvalidRange(_))
        ));
    }

    #[test]
    fn order_looks_scrambled() {
        // Consecutive indices must not map to consecutive outputs in a /64.
        let p = Permutation::new(1 << 64, 5).expect("perm");
        let adjacent = (0..10_000u128)
            .filter(|&i| p.apply(i).abs_diff(p.apply(i + 1)) < 1 << 32)
            .count();
        assert!(adjacent < 10, "{adjacent} near-adjacent outputs");
    }
}
