//! Helpers shared by the integration tests: root checks and tests that need a
//! process of their own. The network lab is the `netns-lab` crate.
// Each test binary uses a different part.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::process::Command;

/// Names the test a child process started by [`run_child`] is for.
const CHILD_ENV: &str = "WIDESCAN_TEST_CHILD";

/// Whether this process runs as root.
#[allow(unsafe_code)] // geteuid
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs the `#[ignore]`d test `name` of this test binary alone in a child process
/// with extra environment variables, and asserts that it ran and passed. The
/// environment and the credentials are process-wide, so a test that changes them
/// needs a process of its own. The child's output is printed (and so shown with
/// `--nocapture` or when the test fails).
pub(crate) fn run_child(name: &str, envs: &[(&str, &OsStr)]) {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args(["--exact", name, "--include-ignored", "--nocapture"])
        .env(CHILD_ENV, name)
        .envs(envs.iter().copied())
        .output()
        .expect("spawn the child test");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    eprint!("{text}");
    assert!(out.status.success(), "child test {name} failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "child test {name} did not run:\n{text}"
    );
}

/// Whether this process is the child [`run_child`] started for `name`. A child
/// test returns at once otherwise, so `--include-ignored` never runs it in the
/// wrong environment (or, as root, drops the whole test process's privileges).
pub(crate) fn in_child(name: &str) -> bool {
    std::env::var_os(CHILD_ENV).is_some_and(|v| v == name)
}
