//! Without `CAP_NET_RAW`, every entry point that opens a raw socket returns
//! `Error::RawSocketPermission` instead of panicking.
//!
//! As root the check runs in a child process that first drops to `nobody`
//! (setuid drops every capability); as a normal user it runs directly.

mod common;

use std::time::Duration;

use widescan::{
    Contact, Error, Identity, Listener, ListenerOptions, ProbeCodec, ProbeSender, RunKey, Scan,
    SenderOptions, TargetSet,
};

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
    if common::is_root() {
        common::run_child("permission_child", &[]);
    } else {
        assert_permission_errors();
    }
}

#[test]
#[ignore = "run by no_raw_socket_permission_is_a_clear_error"]
fn permission_child() {
    if !common::in_child("permission_child") {
        return;
    }
    drop_to_nobody();
    assert_permission_errors();
}

/// Becomes `nobody` (65534): setuid away from root clears every capability of this
/// process, so it is only ever called in a child.
#[allow(unsafe_code)] // setgid, setuid
fn drop_to_nobody() {
    // SAFETY: setgid/setuid have no memory-safety preconditions; they change only
    // this process's credentials.
    unsafe {
        assert_eq!(libc::setgid(65534), 0);
        assert_eq!(libc::setuid(65534), 0);
    }
}
