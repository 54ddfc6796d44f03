//! Channel-level tests on a virtual clock, using the [`util::Pair`] harness.

mod channel;
mod gating;
mod grants;
mod handshake;
mod util;

/// The runtime moves channels into tasks and shares keys and configs.
#[test]
fn core_types_are_send_and_sync_where_needed() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<crate::Channel>();
    send_sync::<crate::Keypair>();
    send_sync::<crate::ChannelConfig>();
    send_sync::<crate::IncomingPeerTrustPolicy>();
    send_sync::<crate::transfer::FileReceiver>();
    send_sync::<crate::Error>();
}
