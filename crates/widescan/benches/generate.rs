//! Addresses generated per second, into preallocated memory only (nothing is sent).
//!
//! `cargo bench -j 1 --bench generate`. GPU cases run on whatever adapter wgpu finds
//! (lavapipe on CI machines) and are skipped when there is none.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use widescan::generate::{GeneratorOptions, fill_serial};
use widescan::{AddressSpace, Generator, HardwareMode, Prefix, TargetSet};

fn space(prefixes: &[&str]) -> AddressSpace {
    let targets = TargetSet::builder()
        .prefixes(
            prefixes
                .iter()
                .map(|s| s.parse::<Prefix>().expect("prefix")),
        )
        .build()
        .expect("targets");
    AddressSpace::new(targets, 0x5eed).expect("space")
}

/// (name, prefixes): a power-of-two /64, an arbitrary-size mixed set, and a wide
/// (> 2^64 addresses) set of many /64s.
fn shapes() -> Vec<(&'static str, AddressSpace)> {
    let many: Vec<String> = (0..1000).map(|i| format!("2a00:{i:x}::/64")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    vec![
        ("one_64", space(&["2a00:1450:4001:81c::/64"])),
        (
            "mixed_arbitrary",
            space(&["2a00:1::/120", "2a00:2::/100", "2a00:3::/70", "2a00:4::5"]),
        ),
        ("wide_1000x64", space(&many)),
    ]
}

fn cpu(c: &mut Criterion) {
    // 64 Ki addresses = 1 MiB: the scan pipeline's default batch.
    let n = 1 << 16;
    let mut group = c.benchmark_group("generate_cpu");
    group.throughput(Throughput::Elements(n as u64));
    group.measurement_time(Duration::from_secs(4));
    for (name, s) in shapes() {
        let mut buf = vec![[0u8; 16]; n];
        let mut g = Generator::new(s.clone(), HardwareMode::Cpu).expect("cpu");
        let mut start = 0u128;
        group.bench_function(format!("{name}/all_cores"), |b| {
            b.iter(|| {
                g.fill(start, &mut buf).expect("fill");
                start = (start + n as u128) % (s.len() - n as u128);
                black_box(&buf);
            })
        });
        let mut start = 0u128;
        group.bench_function(format!("{name}/one_core"), |b| {
            b.iter(|| {
                fill_serial(&s, start, &mut buf).expect("fill");
                start = (start + n as u128) % (s.len() - n as u128);
                black_box(&buf);
            })
        });
    }
    group.finish();
}

fn gpu(c: &mut Criterion) {
    let n = 1 << 20;
    let mut group = c.benchmark_group("generate_gpu");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for (name, s) in shapes() {
        let mut g = match Generator::with_options(
            s.clone(),
            GeneratorOptions {
                mode: HardwareMode::Gpu,
                max_gpu_batch: 1 << 18,
            },
        ) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("SKIPPED generate_gpu: {e}");
                return;
            }
        };
        eprintln!("generate_gpu on {}", g.hardware());
        let mut buf = vec![[0u8; 16]; n];
        let mut start = 0u128;
        group.bench_function(name, |b| {
            b.iter(|| {
                g.fill(start, &mut buf).expect("fill");
                start = (start + n as u128) % (s.len() - n as u128);
                black_box(&buf);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, cpu, gpu);
criterion_main!(benches);
