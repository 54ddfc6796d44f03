//! The bootstrap server's commands: `bootstrap`, `bootstrap peers`,
//! `bootstrap history`, `task` and `key list|export|rotate|gen`, rendered
//! as transcript lines.
//!
//! `key rotate` and `key gen` change the key files: they run on the
//! blocking pool, one at a time, and each is audited with what it did
//! (the line itself is audited before it runs, as every line is).

use std::{
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};

use p2pnet_bootstrap::authority::{AuthorityKey, KEY_FILE, user_id_for};

use super::{KeyCommand, RunError, TaskCommand, run::ago};
use crate::{
    bootstrap::{BootstrapService, Mode, unix_now},
    state::{AppState, now_ms},
    store::NewAudit,
};

/// Key changes run one at a time: two rotations at once would each
/// certify a successor of the same key, and the files would disagree.
static KEY_CHANGES: Mutex<()> = Mutex::new(());

/// Characters of a peer id `bootstrap peers` shows (any unambiguous
/// prefix names a peer elsewhere in the terminal).
const SHORT_ID: usize = 16;

/// `bootstrap`: the service in figures.
pub(super) async fn status(service: &BootstrapService) -> Result<Vec<String>, RunError> {
    let view = service.view().await.map_err(failed)?;
    Ok(vec![
        format!("mode      {}", view.mode),
        format!("network   {}", view.network),
        format!("peers     {} registered", view.registered),
        format!(
            "snapshot  seq {}, issued {} (Unix {}), lists {} peers",
            view.snapshot_seq,
            ago(secs_to_ms(view.snapshot_issued_at)),
            view.snapshot_issued_at,
            view.snapshot_peers
        ),
        format!(
            "authority {}",
            view.fingerprint
                .unwrap_or_else(|| "none (trustless mode: the list is not signed)".into())
        ),
    ])
}

/// `bootstrap peers`: one line per registered peer.
pub(super) async fn peers(service: &BootstrapService) -> Result<Vec<String>, RunError> {
    let view = service.view().await.map_err(failed)?;
    if view.peers.is_empty() {
        return Ok(vec!["no peers are registered".into()]);
    }
    let now = unix_now();
    let mut lines = vec![format!("{} registered peers", view.registered)];
    for p in &view.peers {
        let short: String = p.peer_id.chars().take(SHORT_ID).collect();
        lines.push(format!(
            "{short}…  {}  observed {}  seq {}  expires in {} s  announced {}",
            p.addresses.join(" "),
            p.observed_ip.as_deref().unwrap_or("-"),
            p.seq,
            p.expires_at.saturating_sub(now),
            ago(p.announced_at_ms)
        ));
    }
    let hidden = view.registered.saturating_sub(view.peers.len() as u64);
    if hidden > 0 {
        lines.push(format!(
            "… and {hidden} more (the {} latest announces are shown)",
            view.peers.len()
        ));
    }
    Ok(lines)
}

/// `key list|export|rotate|gen`.
pub(super) async fn key(
    state: &AppState,
    actor: &str,
    service: Arc<BootstrapService>,
    command: KeyCommand,
) -> Result<Vec<String>, RunError> {
    let keys_dir = state.shared.config.keys_dir.clone();
    match command {
        KeyCommand::List => Ok(list(&service, &keys_dir)),
        KeyCommand::Export => {
            let authority = service.authority().ok_or_else(trustless)?;
            Ok(authority
                .key
                .certificate_armored()
                .lines()
                .map(str::to_owned)
                .collect())
        }
        KeyCommand::Rotate => {
            let (old, new, seq) = blocking(move || {
                let _one = KEY_CHANGES.lock().unwrap_or_else(PoisonError::into_inner);
                let old = service.authority().ok_or_else(|| trustless().to_string())?;
                let next = service.rotate_authority(&keys_dir)?;
                let seq = next.rotations.last().map_or(0, |r| r.seq);
                Ok((old.key.fingerprint(), next.key.fingerprint(), seq))
            })
            .await?;
            audit(
                state,
                actor,
                "bootstrap.key_rotate",
                format!("{old} → {new}"),
            )
            .await;
            Ok(vec![
                format!("authority key rotated (rotation #{seq}): {old} → {new}"),
                "the next snapshot is signed with the new key; pinned clients follow the rotation"
                    .into(),
            ])
        }
        KeyCommand::Gen => {
            let config = service.config().clone();
            let mode = config.mode;
            let (fingerprint, path) = blocking(move || {
                let _one = KEY_CHANGES.lock().unwrap_or_else(PoisonError::into_inner);
                let path = keys_dir.join(KEY_FILE);
                if BootstrapService::has_key_file(&keys_dir) {
                    return Err(format!(
                        "an authority key exists already ({}); use `key rotate` to replace it",
                        path.display()
                    ));
                }
                let key = AuthorityKey::load_or_create(
                    &keys_dir,
                    config.passphrase.as_ref(),
                    &user_id_for(&config.network),
                    config.allow_unencrypted_key,
                )
                .map_err(|e| e.to_string())?;
                Ok((key.fingerprint(), path))
            })
            .await?;
            audit(state, actor, "bootstrap.key_gen", fingerprint.clone()).await;
            let mut lines = vec![format!(
                "authority key created: {fingerprint} in {}",
                path.display()
            )];
            if mode == Mode::Trustless {
                lines.push(
                    "it signs nothing yet: set [bootstrap] mode = \"authority\" and restart".into(),
                );
            }
            Ok(lines)
        }
    }
}

/// `key list`: the mode, the key in use and its rotations.
fn list(service: &BootstrapService, keys_dir: &Path) -> Vec<String> {
    let mode = service.config().mode;
    let mut lines = vec![format!("mode      {}", mode.as_str())];
    let Some(authority) = service.authority() else {
        lines.push("key       none in use (trustless mode: the list is not signed)".into());
        let path = keys_dir.join(KEY_FILE);
        lines.push(if BootstrapService::has_key_file(keys_dir) {
            format!(
                "key file  {} exists (used once mode = \"authority\")",
                path.display()
            )
        } else {
            format!(
                "key file  none at {} (`key gen` creates one)",
                path.display()
            )
        });
        return lines;
    };
    lines.push(format!("key       {}", authority.key.fingerprint()));
    if authority.rotations.is_empty() {
        lines.push("rotations none".into());
    } else {
        lines.push(format!("rotations {}", authority.rotations.len()));
        lines.extend(
            authority
                .rotations
                .iter()
                .map(|r| format!("  #{} {} → {}", r.seq, r.old_fingerprint, r.new_fingerprint)),
        );
    }
    lines
}

/// Runs a key change on the blocking pool (key generation and synced
/// file writes).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, RunError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RunError::Bootstrap(format!("the key change failed: {e}")))?
        .map_err(RunError::Bootstrap)
}

/// Records what a key change did. The change is made and cannot be
/// undone, so a failed write is logged rather than reported as the
/// command's failure (its input line is in the audit log already).
async fn audit(state: &AppState, actor: &str, action: &str, detail: String) {
    let entry = NewAudit {
        at_ms: now_ms(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        detail,
    };
    if let Err(e) = state.shared.store.append_audit(&entry).await {
        tracing::error!(error = %e, action, "a bootstrap key change was not audited");
    }
}

fn trustless() -> RunError {
    RunError::Bootstrap("this server runs in trustless mode: it has no authority key".into())
}

/// Signatures `bootstrap history` shows.
const HISTORY_SHOWN: i64 = 20;
/// Tasks `task list` shows.
const TASKS_SHOWN: i64 = 20;

/// Signatures `bootstrap history` checks the chain over (the whole
/// history is `GET /api/v1/bootstrap/history`).
const HISTORY_CHECKED: i64 = 10_000;

/// `bootstrap history`: the latest signatures, and the chain's check over
/// the latest [`HISTORY_CHECKED`].
pub(super) async fn history(service: &BootstrapService) -> Result<Vec<String>, RunError> {
    let mut all = service
        .latest_signatures(HISTORY_CHECKED)
        .await
        .map_err(store_failed)?;
    all.reverse();
    if all.is_empty() {
        return Ok(vec!["no signature issued yet".into()]);
    }
    let chain = match crate::store::verify_chain(&all) {
        Ok(()) => format!("{} signatures checked, the chain holds", all.len()),
        Err(seq) => format!(
            "{} signatures checked; THE CHAIN BREAKS AT ENTRY {seq}",
            all.len()
        ),
    };
    let mut lines = vec![chain];
    let skip = all
        .len()
        .saturating_sub(usize::try_from(HISTORY_SHOWN).unwrap_or(20));
    for e in &all[skip..] {
        lines.push(format!(
            "#{} {} {} sha256 {} by {}",
            e.seq,
            ago(e.at_ms),
            e.kind,
            e.digest,
            e.fingerprint
        ));
    }
    Ok(lines)
}

/// `task list` and `task TARGET ACTION`.
pub(super) async fn task(
    actor: &str,
    service: &BootstrapService,
    command: TaskCommand,
) -> Result<Vec<String>, RunError> {
    match command {
        TaskCommand::List => {
            let tasks = service
                .recent_tasks(TASKS_SHOWN)
                .await
                .map_err(store_failed)?;
            if tasks.is_empty() {
                return Ok(vec!["no task queued".into()]);
            }
            let now = unix_now();
            Ok(tasks
                .iter()
                .map(|t| {
                    let kind = serde_json::from_str::<p2pnet_bootstrap::task::Task>(&t.task)
                        .map_or_else(|_| "?".to_owned(), |task| task.action.kind().to_owned());
                    let target: String = t.target.chars().take(SHORT_ID).collect();
                    let left = u64::try_from(t.expires_at).unwrap_or(0).saturating_sub(now);
                    format!(
                        "#{} for {target} {kind}, queued by {} {}, {}",
                        t.seq,
                        t.queued_by,
                        ago(t.queued_at_ms),
                        if left == 0 {
                            "expired".to_owned()
                        } else {
                            format!("expires in {left} s")
                        }
                    )
                })
                .collect())
        }
        TaskCommand::Queue { target, action } => {
            let task = service
                .queue_task_line(actor, &target, &action)
                .await
                .map_err(|e| match e {
                    crate::bootstrap::tasks::QueueError::Store(store) => store_failed(store),
                    other => RunError::Bootstrap(other.to_string()),
                })?;
            Ok(vec![format!(
                "task {} queued: {} for {}, signed, until {}",
                task.seq,
                task.action.kind(),
                match task.target {
                    p2pnet_bootstrap::task::TaskTarget::All => "every peer".to_owned(),
                    p2pnet_bootstrap::task::TaskTarget::Peer(peer) => peer.to_string(),
                },
                task.expires_at
            )])
        }
    }
}

fn store_failed(e: crate::store::StoreError) -> RunError {
    tracing::error!(error = %e, "a bootstrap command failed");
    RunError::Bootstrap("the bootstrap registry is unavailable; see the server log".into())
}

fn failed(e: crate::bootstrap::ServeError) -> RunError {
    tracing::error!(error = %e, "the bootstrap view failed");
    RunError::Bootstrap("the bootstrap registry is unavailable; see the server log".into())
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}
