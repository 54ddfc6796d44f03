//! How the runtime reaches the application: the packet handlers and the
//! approval hook, given once to the builder.

use std::sync::Arc;

use p2pnet_proto::TrustLevel;

use crate::approvals::PendingPeer;
use crate::handler::PacketHandlers;

/// An approval hook's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Open the channel at this trust level.
    Approve(TrustLevel),
    /// Refuse the peer.
    Reject,
}

pub(crate) type ApprovalHook = Arc<dyn Fn(&PendingPeer) -> Option<Verdict> + Send + Sync>;

/// The application's side of the runtime.
#[derive(Clone)]
pub(crate) struct ApplicationHooks {
    pub(crate) handlers: PacketHandlers,
    pub(crate) approval: Option<ApprovalHook>,
}

impl ApplicationHooks {
    /// Asks the approval hook, if any; a panicking hook counts as no
    /// answer (the peer then waits for the application).
    pub(crate) fn ask_approval(&self, pending: &PendingPeer) -> Option<Verdict> {
        let hook = self.approval.as_ref()?;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(pending))).unwrap_or_else(
            |panic| {
                let error = crate::handler::panic_message(panic.as_ref());
                tracing::error!(%error, "approval hook panicked");
                None
            },
        )
    }
}
