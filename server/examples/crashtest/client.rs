//! The writers: the server's own interfaces, as an administrator and as
//! announcing peers use them.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use p2pnet::proto::{
    Keypair,
    record::{PeerRecord, SignedRecord},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use reqwest::{StatusCode, header, redirect::Policy};
use tokio::{sync::Mutex, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    ledger::{Ledger, Write},
    peers::Dialers,
    process::PASSWORD,
};

/// A logged-in administrator.
#[derive(Clone)]
pub(crate) struct Panel {
    base: String,
    client: reqwest::Client,
    cookie: String,
    csrf: String,
    settings_action: String,
}

impl Panel {
    pub(crate) async fn login(addr: SocketAddr) -> anyhow::Result<Self> {
        let base = format!("http://{addr}");
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        let r = client
            .post(format!("{base}/auth/login"))
            .form(&[("username", "admin"), ("password", PASSWORD), ("next", "/")])
            .send()
            .await?;
        if r.status() != StatusCode::SEE_OTHER {
            bail!("login answered {}", r.status());
        }
        let cookie = r
            .headers()
            .get(header::SET_COOKIE)
            .context("no session cookie")?
            .to_str()?
            .split(';')
            .next()
            .unwrap_or_default()
            .to_owned();
        let page = |path: &str| {
            client
                .get(format!("{base}{path}"))
                .header(header::COOKIE, &cookie)
                .send()
        };
        let home = page("/").await?.text().await?;
        let csrf = home
            .split("name=\"csrf-token\" content=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .context("no CSRF token on the panel")?
            .to_owned();
        let settings = page("/settings").await?.text().await?;
        let settings_action = settings
            .split("action=\"")
            .filter_map(|rest| rest.split('"').next())
            .find(|a| a.starts_with("/api/update_settings"))
            .context("no settings form")?
            .to_owned();
        Ok(Self {
            base,
            client,
            cookie,
            csrf,
            settings_action,
        })
    }

    /// Runs one terminal line: its output lines, or the error line.
    pub(crate) async fn terminal(&self, line: &str) -> anyhow::Result<Vec<String>> {
        let r = self
            .client
            .post(format!("{}/api/parser/input", self.base))
            .header(header::COOKIE, &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header(header::ORIGIN, &self.base)
            .json(&serde_json::json!({ "line": line }))
            .send()
            .await?;
        if r.status() != StatusCode::OK {
            bail!("{line}: HTTP {}", r.status());
        }
        let body: serde_json::Value = r.json().await?;
        let mut out = Vec::new();
        for l in body["lines"].as_array().context("no lines")?.iter().skip(1) {
            let text = l["text"].as_str().unwrap_or_default().to_owned();
            if l["kind"] == "error" {
                bail!("{line}: {text}");
            }
            out.push(text);
        }
        Ok(out)
    }

    async fn set_node_name(&self, name: &str) -> anyhow::Result<()> {
        let r = self
            .client
            .post(format!("{}{}", self.base, self.settings_action))
            .header(header::COOKIE, &self.cookie)
            .header(header::ACCEPT, "application/json")
            .form(&[("csrf_token", self.csrf.as_str()), ("node_name", name)])
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("settings: HTTP {}", r.status());
        }
        Ok(())
    }

    async fn announce(&self, keys: &Keypair, seq: i64) -> anyhow::Result<()> {
        let now = server::bootstrap::unix_now();
        let record = SignedRecord::sign(
            PeerRecord {
                peer: keys.peer_id(),
                network: "p2pnet".into(),
                seq: u64::try_from(seq)?,
                issued_at: now,
                expires_at: now + 3600,
                addresses: vec!["127.0.0.1:4000".parse()?],
            },
            keys,
        )?;
        let r = self
            .client
            .put(format!("{}/api/Bootstrap/peers", self.base))
            .json(&serde_json::json!({ "record": record.as_str() }))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("announce: HTTP {}", r.status());
        }
        Ok(())
    }
}

/// Picks a writer's next write (its random source, the ledger, a counter).
type NextWrite = Box<dyn Fn(&mut StdRng, &Ledger, u64) -> Write + Send + Sync>;

/// One writer per kind of write, each sending one write at a time until
/// `stop`.
pub(crate) fn spawn_writers(
    panel: &Panel,
    dialers: &Dialers,
    announcers: &Arc<Vec<Keypair>>,
    ledger: Arc<Mutex<Ledger>>,
    stop: CancellationToken,
    seed: u64,
) -> Vec<JoinHandle<anyhow::Result<()>>> {
    let kinds: [NextWrite; 5] = [
        {
            let subject = dialers.block_subject();
            Box::new(move |rng, ledger, n| {
                // Mostly new network blocks; sometimes lifting one, or
                // blocking or unblocking the peer kept for it.
                if rng.random_bool(0.15) {
                    return Write::Block(subject.clone(), !ledger.blocked(&subject));
                }
                match ledger.a_block(rng) {
                    Some(target) if rng.random_bool(0.3) => Write::Block(target, false),
                    _ => Write::Block(format!("2001:db8:{:x}:{n:x}::/64", seed & 0xffff), true),
                }
            })
        },
        Box::new(move |_, _, n| Write::NodeName(format!("crash-{seed}-{n}"))),
        {
            let announcers = announcers.clone();
            Box::new(move |rng, ledger, _| {
                let keys = &announcers[rng.random_range(0..announcers.len())];
                let peer = keys.peer_id().to_string();
                let seq = ledger.next_seq(&peer);
                Write::Announce(peer, seq)
            })
        },
        Box::new(move |_, _, n| Write::Task(format!("crash-{seed}-task-{n}"))),
        {
            let ids = dialers.ids();
            Box::new(move |rng, ledger, _| {
                let peer = ids[rng.random_range(0..ids.len())].clone();
                if ledger.approved(&peer) {
                    Write::Elevate(peer, rng.random_bool(0.6))
                } else {
                    Write::Approve(peer)
                }
            })
        },
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, next)| {
            let panel = panel.clone();
            let ledger = ledger.clone();
            let stop = stop.clone();
            let announcers = announcers.clone();
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed ^ ((i as u64) << 32));
                let mut n = 0u64;
                while !stop.is_cancelled() {
                    n += 1;
                    let write = next(&mut rng, &*ledger.lock().await, n);
                    ledger.lock().await.pending(&write);
                    let sent = tokio::select! {
                        r = send(&panel, &announcers, &write) => r,
                        () = stop.cancelled() => Err(anyhow::anyhow!("stopped")),
                    };
                    match sent {
                        Ok(()) => ledger.lock().await.acknowledged(&write),
                        Err(e) => {
                            // No answer (the server is down) or a refusal,
                            // which the writes are chosen never to earn.
                            let refused = e.downcast_ref::<reqwest::Error>().is_none()
                                && !stop.is_cancelled();
                            if refused {
                                eprintln!("refused: {e:#}");
                            }
                            ledger.lock().await.unanswered(refused);
                            // The server is down (killed) or refused: no spin.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                Ok(())
            })
        })
        .collect()
}

async fn send(panel: &Panel, announcers: &[Keypair], write: &Write) -> anyhow::Result<()> {
    match write {
        Write::Block(target, true) => panel.terminal(&format!("block {target}")).await.map(drop),
        Write::Block(target, false) => panel.terminal(&format!("unblock {target}")).await.map(drop),
        Write::NodeName(name) => panel.set_node_name(name).await,
        Write::Announce(peer, seq) => {
            let keys = announcers
                .iter()
                .find(|k| &k.peer_id().to_string() == peer)
                .context("announcer")?;
            panel.announce(keys, *seq).await
        }
        Write::Task(text) => panel
            .terminal(&format!("task * message {text}"))
            .await
            .map(drop),
        Write::Approve(peer) => panel.terminal(&format!("approve {peer}")).await.map(drop),
        Write::Elevate(peer, true) => panel.terminal(&format!("elevate {peer}")).await.map(drop),
        Write::Elevate(peer, false) => panel.terminal(&format!("demote {peer}")).await.map(drop),
    }
}
