//! The file-transfer sub-protocol's side in the actor: offers, consent,
//! chunks read from and written to disk (`transfer_io.rs`), completion and
//! cancellation.

use p2pnet_proto::packet::{
    DataTransmission, FileCancel, FileMessage, FileOffer, Packet, TransferId,
};
use p2pnet_proto::transfer::{FileSender, max_chunk_size_for_frame};
use p2pnet_proto::{ChannelState, PacketKind, PeerId, Scopes};
use tokio::sync::oneshot;

use super::Actor;
use crate::error::Error;
use crate::event::{NetworkEvent, TransferDirection};
use crate::handler::{FileDecision, FileOfferInfo, panic_message};
use crate::transfer_io::{Incoming, Outgoing, PreparedFile};

impl Actor {
    /// The largest file this peer may offer: the node's limit, or its
    /// grants' cap if lower.
    fn file_size_cap(&self) -> u64 {
        let granted = self
            .channel
            .permissions()
            .filter(|p| p.scopes.contains(Scopes::FILE))
            .and_then(|p| p.max_file_size);
        granted.map_or(self.ctx.config.max_file_size, |cap| {
            cap.min(self.ctx.config.max_file_size)
        })
    }

    /// Cancels, on both sides, the transfers the channel's grants no
    /// longer cover (FILE revoked or expired, or a cap lowered below an
    /// incoming file's size). Cancel messages always pass the gate.
    pub(super) fn wind_down_transfers(&mut self, peer: PeerId) {
        let reason = "the grant that covered it was revoked or expired";
        if !self.scopes().contains(Scopes::FILE) {
            for (id, mut outgoing) in std::mem::take(&mut self.outgoing) {
                let cancel = outgoing.sender.cancel(Some(reason.into()));
                self.send_file_message(FileMessage::Cancel(cancel));
                self.emit_failed(peer, id, TransferDirection::Outgoing, reason.into());
            }
        }
        let cap = if self.scopes().contains(Scopes::FILE) {
            self.file_size_cap()
        } else {
            0
        };
        let over: Vec<TransferId> = self
            .incoming
            .iter()
            .filter(|(_, incoming)| incoming.receiver.offer().size > cap)
            .map(|(id, _)| *id)
            .collect();
        for id in over {
            let Some(mut incoming) = self.incoming.remove(&id) else {
                continue;
            };
            let cancel = incoming.receiver.cancel(Some(reason.into()));
            self.send_file_message(FileMessage::Cancel(cancel));
            // The partial file stays for a resume once granted again; its
            // flush must land before the failure is reported.
            let events = self.ctx.events.clone();
            self.ctx.tracker.spawn(async move {
                incoming.suspend().await;
                events.emit(NetworkEvent::TransferFailed {
                    peer,
                    transfer: id,
                    direction: TransferDirection::Incoming,
                    reason: reason.into(),
                });
            });
        }
    }

    pub(super) fn send_file_message(&mut self, message: FileMessage) {
        self.send_or_hold(Packet::DataTransmission(DataTransmission::File(message)));
    }

    pub(super) fn start_outgoing(
        &mut self,
        file: PreparedFile,
        reply: oneshot::Sender<Result<TransferId, Error>>,
    ) {
        let max_frame = self
            .channel
            .remote_hello()
            .map_or(p2pnet_proto::codec::MIN_MAX_FRAME_SIZE, |hello| {
                hello.max_frame_size
            });
        let chunk_size =
            max_chunk_size_for_frame(max_frame).min(p2pnet_proto::packet::DEFAULT_CHUNK_SIZE);
        let id = self.ctx.transfers.next_id();
        let sender = match FileSender::new(id, file.name.clone(), file.size, chunk_size, file.hash)
        {
            Ok(sender) => sender,
            Err(err) => {
                let _ = reply.send(Err(err.into()));
                return;
            }
        };
        let offer = FileMessage::Offer(sender.offer().clone());
        let packet = Packet::DataTransmission(DataTransmission::File(offer));
        if let Err(err) = self.channel.send(packet) {
            let _ = reply.send(Err(err.into()));
            return;
        }
        tracing::info!(transfer = %id, size = file.size, "file offered");
        self.outgoing.insert(id, Outgoing::new(file, sender));
        let _ = reply.send(Ok(id));
    }

    pub(super) async fn on_file_message(&mut self, peer: PeerId, message: FileMessage) {
        let id = message.transfer_id();
        match message {
            FileMessage::Offer(offer) => self.on_offer(peer, offer).await,
            FileMessage::Accept(accept) => {
                let Some(outgoing) = self.outgoing.get_mut(&id) else {
                    return;
                };
                if let Err(err) = outgoing.sender.handle_accept(&accept) {
                    let cancel = outgoing.sender.cancel(Some(err.to_string()));
                    self.fail_outgoing(peer, id, err.to_string());
                    self.send_file_message(FileMessage::Cancel(cancel));
                } else if accept.resume_from > 0 {
                    tracing::info!(transfer = %id, from = accept.resume_from, "peer resumes the transfer");
                }
            }
            FileMessage::Reject(reject) => {
                self.fail_outgoing(peer, id, format!("rejected: {}", reject.reason));
            }
            FileMessage::Cancel(cancel) => self.on_cancel(peer, cancel).await,
            FileMessage::Chunk(chunk) => {
                let Some(incoming) = self.incoming.get_mut(&id) else {
                    tracing::debug!(transfer = %id, "chunk for an unknown transfer");
                    return;
                };
                match incoming.write(&chunk).await {
                    Ok(()) => {
                        let progress = incoming.receiver.progress();
                        if incoming.progress.due(progress.transferred) {
                            self.ctx.events.emit(NetworkEvent::TransferProgress {
                                peer,
                                transfer: id,
                                direction: TransferDirection::Incoming,
                                transferred: progress.transferred,
                                total: progress.total,
                            });
                        }
                    }
                    Err(reason) => {
                        if let Some(mut incoming) = self.incoming.remove(&id) {
                            let cancel = incoming.receiver.cancel(Some(reason.clone()));
                            self.send_file_message(FileMessage::Cancel(cancel));
                            incoming.suspend().await;
                        }
                        self.emit_failed(peer, id, TransferDirection::Incoming, reason);
                    }
                }
            }
            FileMessage::Done(done) => {
                let Some(incoming) = self.incoming.remove(&id) else {
                    return;
                };
                let resumed_from = incoming.resumed_from;
                match incoming.finish(&done).await {
                    Ok((path, hash)) => {
                        tracing::info!(transfer = %id, path = %path.display(), "file received and verified");
                        self.ctx.events.emit(NetworkEvent::TransferCompleted {
                            peer,
                            transfer: id,
                            direction: TransferDirection::Incoming,
                            path,
                            hash,
                            resumed_from,
                        });
                    }
                    Err(reason) => self.emit_failed(peer, id, TransferDirection::Incoming, reason),
                }
            }
        }
    }

    async fn on_offer(&mut self, peer: PeerId, offer: FileOffer) {
        let id = offer.transfer_id;
        let refuse = |reason: &str| {
            FileMessage::Reject(p2pnet_proto::packet::FileReject {
                transfer_id: id,
                reason: reason.to_owned(),
            })
        };
        let config = &self.ctx.config;
        let Some(dir) = config.download_dir.clone() else {
            self.send_file_message(refuse("this peer does not accept files"));
            return;
        };
        if self.incoming.contains_key(&id) {
            self.send_file_message(refuse("duplicate transfer id"));
            return;
        }
        if self.incoming.len() >= config.limits.max_incoming_transfers {
            self.send_file_message(refuse("too many concurrent transfers"));
            return;
        }
        let max = self.file_size_cap();
        if offer.size > max {
            let reason = format!("file too large ({} bytes, limit {max})", offer.size);
            self.send_file_message(refuse(&reason));
            return;
        }
        let info = FileOfferInfo {
            name: offer.name.as_str().to_owned(),
            size: offer.size,
            hash: offer.hash,
        };
        let handlers = self.ctx.hooks.handlers.clone();
        let ctx = self.context(peer);
        let decision = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handlers.file_offer.decide(&ctx, &info)
        }))
        .unwrap_or_else(|panic| {
            let error = panic_message(panic.as_ref());
            tracing::error!(%error, "file offer handler panicked");
            self.ctx.events.emit(NetworkEvent::HandlerFailed {
                peer,
                kind: PacketKind::DataTransmission,
                error,
            });
            FileDecision::Reject("the receiver failed to decide".into())
        });
        drop(ctx);
        if let FileDecision::Reject(reason) = decision {
            self.send_file_message(refuse(&reason));
            return;
        }
        match Incoming::start(&dir, &peer, offer, max, &self.ctx.partials).await {
            Ok((incoming, accept)) => {
                tracing::info!(transfer = %id, resume_from = accept.resume_from, "file accepted");
                self.incoming.insert(id, incoming);
                self.send_file_message(FileMessage::Accept(accept));
            }
            Err(reason) => {
                tracing::warn!(transfer = %id, %reason, "cannot receive the offered file");
                self.send_file_message(refuse(&reason));
            }
        }
    }

    async fn on_cancel(&mut self, peer: PeerId, cancel: FileCancel) {
        let id = cancel.transfer_id;
        let reason = format!(
            "cancelled by the peer: {}",
            cancel.reason.as_deref().unwrap_or("no reason given")
        );
        if self.outgoing.contains_key(&id) {
            self.fail_outgoing(peer, id, reason);
        } else if let Some(incoming) = self.incoming.remove(&id) {
            // The partial file stays: a later offer of the same content resumes it.
            incoming.suspend().await;
            self.emit_failed(peer, id, TransferDirection::Incoming, reason);
        }
    }

    fn fail_outgoing(&mut self, peer: PeerId, id: TransferId, reason: String) {
        if self.outgoing.remove(&id).is_some() {
            self.emit_failed(peer, id, TransferDirection::Outgoing, reason);
        }
    }

    pub(super) fn emit_failed(
        &self,
        peer: PeerId,
        id: TransferId,
        direction: TransferDirection,
        reason: String,
    ) {
        tracing::warn!(transfer = %id, ?direction, %reason, "transfer failed");
        self.ctx.events.emit(NetworkEvent::TransferFailed {
            peer,
            transfer: id,
            direction,
            reason,
        });
    }

    /// Reads and queues file chunks while the channel has room, one chunk
    /// per transfer in turn. Returns whether anything was queued.
    pub(super) async fn pump_transfers(&mut self) -> bool {
        let Some(peer) = self.peer else { return false };
        if self.outgoing.is_empty() || !matches!(self.channel.state(), ChannelState::Open { .. }) {
            return false;
        }
        let mut progressed = false;
        let ids: Vec<TransferId> = self.outgoing.keys().copied().collect();
        for id in ids {
            if !self.has_room() {
                break;
            }
            let Some(outgoing) = self.outgoing.get_mut(&id) else {
                continue;
            };
            let chunk = match Box::pin(outgoing.next_chunk()).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    if let Ok(done) = outgoing.sender.done() {
                        let path = outgoing.path.clone();
                        let hash = outgoing.sender.offer().hash;
                        self.outgoing.remove(&id);
                        self.send_file_message(FileMessage::Done(done));
                        self.ctx.transfers.completed_send(peer, &path);
                        self.ctx.events.emit(NetworkEvent::TransferCompleted {
                            peer,
                            transfer: id,
                            direction: TransferDirection::Outgoing,
                            path,
                            hash,
                            resumed_from: 0,
                        });
                        progressed = true;
                    }
                    continue;
                }
                Err(err) => {
                    let cancel = outgoing
                        .sender
                        .cancel(Some("the sender cannot read the file".into()));
                    self.send_file_message(FileMessage::Cancel(cancel));
                    self.fail_outgoing(peer, id, err.to_string());
                    progressed = true;
                    continue;
                }
            };
            let progress = outgoing.sender.progress();
            let report = outgoing.progress.due(progress.transferred);
            let packet =
                Packet::DataTransmission(DataTransmission::File(FileMessage::Chunk(chunk)));
            if let Err(err) = self.channel.send(packet) {
                // Not permitted any more (demoted) or closed: give up; a
                // later channel re-offers it.
                self.fail_outgoing(peer, id, err.to_string());
                continue;
            }
            progressed = true;
            if report {
                self.ctx.events.emit(NetworkEvent::TransferProgress {
                    peer,
                    transfer: id,
                    direction: TransferDirection::Outgoing,
                    transferred: progress.transferred,
                    total: progress.total,
                });
            }
        }
        progressed
    }
}
