//! CPU ≡ GPU: the wgpu path must produce the reference addresses bit for bit.
//!
//! Runs on any wgpu adapter, including lavapipe (Vulkan on llvmpipe from
//! mesa-vulkan-drivers) on CI. Skips, loudly, only when no adapter exists at all.
//!
//! Each check runs in a child process with its own environment: the comparison
//! gets an `XDG_RUNTIME_DIR` (without one, Mesa's Vulkan drivers print
//! "XDG_RUNTIME_DIR is invalid or not set" for every instance), and the
//! no-adapter check hides every Vulkan driver.
#![cfg(feature = "gpu")]

mod common;

use std::ffi::OsStr;

use widescan::generate::{GeneratorOptions, fill_serial};
use widescan::{AddressSpace, Error, Generator, HardwareMode, Octets, TargetSet};

fn space(prefixes: &[&str], seed: u64) -> AddressSpace {
    let targets = TargetSet::builder()
        .parse_prefixes(&prefixes.join(","))
        .and_then(|b| b.test_mode(true).build())
        .expect("targets");
    AddressSpace::new(targets, seed).expect("space")
}

fn gpu(space: AddressSpace, max_batch: usize) -> Option<Generator> {
    match Generator::with_options(
        space,
        GeneratorOptions {
            mode: HardwareMode::Gpu,
            max_gpu_batch: max_batch,
        },
    ) {
        Ok(g) => Some(g),
        Err(Error::GpuUnavailable(why)) => {
            eprintln!(
                "SKIPPED: no wgpu adapter on this machine ({why}); install mesa-vulkan-drivers"
            );
            None
        }
        Err(e) => panic!("GPU setup failed: {e}"),
    }
}

/// Compares `count` addresses from `start` and returns how many were checked.
fn compare(prefixes: &[&str], seed: u64, start: u128, count: usize, max_batch: usize) -> usize {
    let s = space(prefixes, seed);
    let count = count.min(usize::try_from(s.len() - start).unwrap_or(usize::MAX));
    let mut want: Vec<Octets> = vec![[0; 16]; count];
    fill_serial(&s, start, &mut want).expect("cpu");
    let Some(mut g) = gpu(s.clone(), max_batch) else {
        return 0;
    };
    let mut got: Vec<Octets> = vec![[0; 16]; count];
    g.fill(start, &mut got).expect("gpu fill");
    if let Some(i) = (0..count).find(|&i| got[i] != want[i]) {
        panic!(
            "{prefixes:?} seed={seed}: first mismatch at index {}: gpu {} cpu {} (reference {})",
            start + i as u128,
            std::net::Ipv6Addr::from(got[i]),
            std::net::Ipv6Addr::from(want[i]),
            s.address(start + i as u128).expect("in range"),
        );
    }
    count
}

#[test]
fn gpu_matches_cpu_bit_for_bit() {
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
        .unwrap_or_else(|| std::env::temp_dir().into_os_string());
    common::run_child(
        "gpu_matches_cpu_child",
        &[("XDG_RUNTIME_DIR", &runtime_dir)],
    );
}

#[test]
#[ignore = "run by gpu_matches_cpu_bit_for_bit"]
fn gpu_matches_cpu_child() {
    if !common::in_child("gpu_matches_cpu_child") {
        return;
    }
    let mut checked = 0;
    // Narrow, power of two, one prefix: the common /64 scan. 2 M addresses in
    // batches of 512 Ki, so the two readback slots alternate.
    checked += compare(&["2a00:1:2:3::/64"], 0x5eed, 0, 2_000_000, 1 << 19);
    if checked == 0 {
        return;
    }
    // Narrow, cycle-walking, several prefixes of different sizes.
    checked += compare(
        &["2a00::/120", "2a01::/100", "2a02::5", "fd00:5ca7:1::/118"],
        7,
        0,
        1_000_000,
        1 << 20,
    );
    // Every address of a small odd-sized space.
    checked += compare(&["2a00::/125", "2a01::/126", "2a02::1"], 3, 0, 13, 1 << 20);
    // Wide (> 2^64 addresses): many /64s and a /48, near index 2^64.
    checked += compare(
        &["2a00::/64", "2a01::/64", "2a02::/64", "2a03::/48"],
        11,
        (1 << 64) - 300_000,
        600_000,
        1 << 18,
    );
    // Many equal-size prefixes: the CPU's constant-time lookup against the GPU's search.
    let many: Vec<String> = (0..300).map(|i| format!("2a00:{i:x}::/64")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    checked += compare(&many, 13, 299 << 64, 300_000, 1 << 20);
    // Whole global unicast space minus the reserved ranges, deep in the index space.
    let g = TargetSet::builder()
        .prefix("2000::/3".parse().expect("prefix"))
        .build()
        .expect("2000::/3");
    let s = AddressSpace::new(g, 99).expect("space");
    let start = s.len() / 3;
    let mut want: Vec<Octets> = vec![[0; 16]; 300_000];
    fill_serial(&s, start, &mut want).expect("cpu");
    let mut got: Vec<Octets> = vec![[0; 16]; 300_000];
    gpu(s, 1 << 20)
        .expect("adapter")
        .fill(start, &mut got)
        .expect("gpu");
    assert!(got == want, "2000::/3 mismatch");
    checked += got.len();
    // Full 128-bit domain in test mode, at the very end of the index space.
    let s = space(&["::/0"], 1);
    let end = s.len();
    checked += compare(&["::/0"], 1, end - 200_000, 200_000, 1 << 20);
    assert!(checked >= 4_000_000, "checked {checked}");
    eprintln!("GPU and CPU agree on {checked} addresses");
}

#[test]
fn explicit_gpu_mode_without_adapter_is_a_clear_error_and_auto_falls_back() {
    // Only the Vulkan backend, with every Vulkan driver hidden: no adapter.
    let none = OsStr::new("/nonexistent.json");
    common::run_child(
        "no_adapter_child",
        &[
            ("WGPU_BACKEND", OsStr::new("vulkan")),
            ("VK_ICD_FILENAMES", none),
            ("VK_DRIVER_FILES", none),
        ],
    );
}

#[test]
#[ignore = "run by explicit_gpu_mode_without_adapter_is_a_clear_error_and_auto_falls_back"]
fn no_adapter_child() {
    if !common::in_child("no_adapter_child") {
        return;
    }
    let err = Generator::new(space(&["2a00::/120"], 1), HardwareMode::Gpu).expect_err("no adapter");
    assert!(matches!(err, Error::GpuUnavailable(_)), "{err}");
    assert!(err.to_string().contains("GPU unavailable"), "{err}");
    let mut auto = Generator::new(space(&["2a00::/120"], 1), HardwareMode::Auto).expect("auto");
    assert!(
        matches!(
            auto.hardware(),
            widescan::generate::ActiveHardware::Cpu { .. }
        ),
        "{}",
        auto.hardware()
    );
    let mut buf = [[0u8; 16]; 256];
    auto.fill(0, &mut buf).expect("cpu fallback fills");
}
