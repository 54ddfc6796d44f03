//! The command-line entry: refusals, dry runs and a quiet stderr (no network).
#![cfg(feature = "cli")]

use std::process::{Command, Output};

use widescan::{AddressSpace, Prefix, TargetSet};

fn widescan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_widescan"))
        .args(args)
        .output()
        .expect("run widescan")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn refuses_to_run_without_prefixes() {
    let o = widescan(&["scan", "--port", "4000"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--prefix"), "{}", stderr(&o));
    let empty = std::env::temp_dir().join(format!("widescan-empty-{}.txt", std::process::id()));
    std::fs::write(&empty, "# nothing here\n").expect("write");
    let o = widescan(&[
        "scan",
        "--port",
        "4000",
        "--prefix-file",
        empty.to_str().expect("utf8"),
    ]);
    let _ = std::fs::remove_file(&empty);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no prefixes"), "{}", stderr(&o));
}

#[test]
fn refuses_bad_and_out_of_policy_input() {
    for (args, needle) in [
        (
            &["scan", "--port", "4000", "-p", "fd00:5ca7:1::/120"][..],
            "outside global unicast",
        ),
        (
            &["scan", "--port", "4000", "-p", "2001:db8::/48"][..],
            "documentation",
        ),
        (
            &["scan", "--port", "4000", "-p", "2a00::/129"][..],
            "between 0 and 128",
        ),
        (
            &["scan", "--port", "4000", "-p", "ff02::1"][..],
            "multicast",
        ),
        (&["scan", "--port", "0", "-p", "2a00::/120"][..], "port"),
        (
            &[
                "scan",
                "--port",
                "4000",
                "-p",
                "2a00::/120",
                "--shard",
                "2/2",
            ][..],
            "shard",
        ),
        (
            &[
                "scan",
                "--port",
                "4000",
                "-p",
                "2a00::/120",
                "--format",
                "xml",
            ][..],
            "format",
        ),
        (
            &[
                "scan",
                "--port",
                "4000",
                "-p",
                "2a00::/120",
                "--contact",
                "\u{1}",
            ][..],
            "contact",
        ),
    ] {
        let o = widescan(args);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn dry_run_prints_the_library_order_and_sends_nothing() {
    let o = widescan(&[
        "scan",
        "--port",
        "4000",
        "-p",
        "2a00:1::/120,2a00:2::/126",
        "--seed",
        "9",
        "--hardware",
        "cpu",
        "--dry-run",
        "--limit",
        "300",
        "--shard",
        "1/2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let targets = TargetSet::builder()
        .prefixes(["2a00:1::/120", "2a00:2::/126"].map(|p| p.parse::<Prefix>().expect("prefix")))
        .build()
        .expect("targets");
    let space = AddressSpace::new(targets, 9).expect("space");
    let want: Vec<String> = (130..260)
        .filter_map(|i| space.address(i))
        .map(|a| a.to_string())
        .collect();
    assert_eq!(got, want);
    assert!(stderr(&o).contains("nothing sent"));
}

/// A run prints only what the user asked for. Opening a Vulkan instance (GPU mode,
/// and Auto, which looks for a hardware adapter) used to add "error:
/// XDG_RUNTIME_DIR is invalid or not set in the environment." twice: Mesa's
/// device-select layer asks libwayland for a display. The environment here is a
/// headless server's, whatever the machine running the test has.
#[test]
fn gpu_and_auto_runs_print_no_vulkan_noise() {
    for hardware in ["gpu", "auto"] {
        let o = Command::new(env!("CARGO_BIN_EXE_widescan"))
            .args(["scan", "--port", "4000", "-p", "2a00::/120", "--dry-run"])
            .args(["--hardware", hardware])
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY")
            .env_remove("NODEVICE_SELECT")
            .env_remove("MESA_VK_DEVICE_SELECT")
            .output()
            .expect("run widescan");
        let err = stderr(&o);
        if !o.status.success() && err.contains("GPU unavailable") {
            eprintln!("SKIPPED --hardware {hardware}: no wgpu adapter here (CI has lavapipe)");
            continue;
        }
        assert!(o.status.success(), "--hardware {hardware}: {err}");
        assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 256);
        let stray: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("widescan: "))
            .collect();
        assert!(
            stray.is_empty(),
            "--hardware {hardware} printed lines of others: {stray:?}"
        );
    }
}
