//! Without `CAP_NET_RAW`, every entry point that opens a raw socket returns
//! `Error::RawSocketPermission` instead of panicking.
//!
//! As root the check runs in a child process that first drops to `nobody`
//! (setuid drops every capability); as a normal user it runs directly.
#![allow(unsafe_code)] // geteuid/setuid in the child

use std::time::Duration;

use widescan::{
    Contact, Error, Identity, Listener, ListenerOptions, ProbeCodec, ProbeSender, RunKey, Scan,
    SenderOptions, TargetSet,
};

const CHILD_ENV: &str = "WIDESCAN_PERMISSION_CHILD";

fn codec() -> ProbeCodec {
    ProbeCodec::new(
        RunKey::from_bytes([7; 16]),
        Identity::new(1, 4000, Contact::default()).expect("identity"),
    )
}

fn assert_permission_errors() {
    let err = Listener::start(codec(), ListenerOptions::default())
        .expect_err("listener without CAP_NET_RAW");
    assert!(matches!(err, Error::RawSocketPermission(_)), "{err}");
    assert!(err.to_string().contains("CAP_NET_RAW"), "{err}");

    let targets = TargetSet::builder()
        .prefix("2a00::/120".parse().expect("prefix"))
        .build()
        .expect("targets");
    let err = ProbeSender::open(codec(), &targets, SenderOptions::default())
        .expect_err("sender without CAP_NET_RAW");
    assert!(matches!(err, Error::RawSocketPermission(_)), "{err}");

    let err = Scan::builder(targets, codec().identity().clone())
        .cooldown(Duration::ZERO)
        .build()
        .expect("builds")
        .start()
        .expect_err("scan without CAP_NET_RAW");
    assert!(matches!(err, Error::RawSocketPermission(_)), "{err}");
}

#[test]
fn no_raw_socket_permission_is_a_clear_error() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert_permission_errors();
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "permission_child",
            "--include-ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("spawn child");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains("PERMISSION-CHILD-OK"),
        "child did not run:\n{text}"
    );
}

#[test]
#[ignore = "run by no_raw_socket_permission_is_a_clear_error"]
fn permission_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    // SAFETY: setgid/setuid have no memory-safety preconditions; dropping to
    // nobody (65534) clears every capability of this child process.
    unsafe {
        assert_eq!(libc::setgid(65534), 0);
        assert_eq!(libc::setuid(65534), 0);
    }
    assert_permission_errors();
    println!("PERMISSION-CHILD-OK");
}
