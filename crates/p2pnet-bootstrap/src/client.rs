//! The bootstrap client: announces this node's signed record to bootstrap
//! servers, fetches their lists, checks them (`verify.rs`), and hands the
//! peers to the node, which gates them like any discovered peer.
//!
//! One task per client runs rounds over the servers: announce (when
//! asked to), fetch, verify, persist the trust state, learn and dial the
//! peers, and, from an authority it trusts, collect the network tasks
//! queued for this node with a signed heartbeat and apply those
//! [`check_task`](crate::task::check_task) accepts, in order, once each.
//! Every task applied or refused is a [`BootstrapEvent`]. The next round comes after the smallest `Reannounce-After` the
//! servers gave (or the fetch interval), with ±10 % jitter; a failed
//! round backs off exponentially up to the interval. Any mirror serving
//! the same signed bytes is as good as a server: nothing here trusts the
//! transport. Requests speak plain HTTP (put a TLS proxy in front for
//! privacy); the authority's signature, not the channel, is what a client
//! trusts.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use p2pnet::{GrantRequest, PeerNetwork};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use p2pnet::proto::record::SignedRecord;

use crate::{
    authority::{AuthorityError, PinnedAuthority},
    snapshot::ListedPeer,
    task::{SignedTask, TaskAction, check_task},
    verify::{self, AuthorityDoc, BootstrapPolicy, PeersResponse, TrustState, Verified},
};

/// Longest response body read, in bytes.
const MAX_RESPONSE_LEN: usize = crate::snapshot::MAX_SNAPSHOT_LEN + 64 * 1024;
/// Most dials one round starts.
const MAX_DIALS_PER_ROUND: usize = 16;
/// Events kept for a subscriber that reads slowly.
const EVENT_BUFFER: usize = 64;

/// What the client did with a network task; for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootstrapEvent {
    /// A task was checked and applied.
    TaskApplied {
        /// Its sequence.
        seq: u64,
        /// Its kind (`block_peer`, `ping`, ...).
        kind: &'static str,
    },
    /// A task was refused: forged, replayed, expired, not for this node,
    /// unknown, or it failed.
    TaskRefused {
        /// The server it came from.
        server: String,
        /// Why.
        reason: String,
    },
    /// A `message` task: the authority's words for the operator.
    Message {
        /// Its sequence.
        seq: u64,
        /// The text.
        text: String,
    },
}

/// How the client runs.
#[derive(Debug, Clone)]
pub struct BootstrapClientConfig {
    /// Base URLs of the servers, e.g. `http://bootstrap.example.org:3000`.
    pub servers: Vec<String>,
    /// Which servers to believe.
    pub policy: BootstrapPolicy,
    /// Where the trust state (pin, sequences) is kept across restarts;
    /// `None` keeps it in memory only.
    pub state_file: Option<PathBuf>,
    /// Announce this node's record (off: only fetch).
    pub announce: bool,
    /// The addresses to announce; empty means the node's listening port
    /// with an unspecified IP, which the server fills in with the address
    /// it sees.
    pub addresses: Vec<SocketAddr>,
    /// How long an announced record holds.
    pub record_lifetime: Duration,
    /// How often the lists are fetched at most.
    pub fetch_interval: Duration,
    /// Clock difference tolerated.
    pub max_clock_skew: Duration,
    /// Dial the peers the lists name (they are gated like inbound ones).
    pub dial: bool,
    /// Per-request time limit.
    pub request_timeout: Duration,
}

impl Default for BootstrapClientConfig {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            policy: BootstrapPolicy::default(),
            state_file: None,
            announce: true,
            addresses: Vec::new(),
            record_lifetime: Duration::from_secs(3600),
            fetch_interval: Duration::from_secs(300),
            max_clock_skew: Duration::from_secs(300),
            dial: true,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// What the client last did, for a status page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStatus {
    /// Rounds completed.
    pub rounds: u64,
    /// Peers learned from lists so far.
    pub peers_learned: u64,
    /// The last list's sequence, per server.
    pub last_seq: Vec<(String, u64)>,
    /// The last error, per server (cleared by a success).
    pub errors: Vec<(String, String)>,
    /// The pinned authority's fingerprint.
    pub pinned: Option<String>,
}

/// A running client; dropping it does not stop it, [`stop`](Self::stop) does.
pub struct BootstrapClient {
    cancel: CancellationToken,
    status: watch::Receiver<ClientStatus>,
    events: broadcast::Sender<BootstrapEvent>,
    task: tokio::task::JoinHandle<()>,
}

/// Why the client could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No server to ask.
    #[error("no bootstrap server configured")]
    NoServers,
    /// A server URL is not `http://host[:port]`.
    #[error("bootstrap server {0:?} is not an http:// URL")]
    BadUrl(String),
    /// The trust state file could not be read.
    #[error("bootstrap trust state {path}: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
}

impl BootstrapClient {
    /// Starts the client for `network`.
    pub fn start(network: PeerNetwork, config: BootstrapClientConfig) -> Result<Self, ClientError> {
        if config.servers.is_empty() {
            return Err(ClientError::NoServers);
        }
        for server in &config.servers {
            if !server.starts_with("http://") || server.len() <= "http://".len() {
                return Err(ClientError::BadUrl(server.clone()));
            }
        }
        let state = match &config.state_file {
            Some(path) => load_state(path)?,
            None => TrustState::default(),
        };
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let cancel = CancellationToken::new();
        let (status_tx, status) = watch::channel(ClientStatus {
            pinned: state.pin.as_ref().map(|p| p.fingerprint.clone()),
            ..ClientStatus::default()
        });
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let runner = Runner {
            network,
            config: Arc::new(config),
            http,
            state,
            status: status_tx,
            events: events.clone(),
        };
        let task = tokio::spawn(runner.run(cancel.clone()));
        Ok(Self {
            cancel,
            status,
            events,
            task,
        })
    }

    /// What it last did.
    pub fn status(&self) -> ClientStatus {
        self.status.borrow().clone()
    }

    /// The events from now on (a slow reader loses the oldest beyond
    /// 64 and is told it lagged).
    pub fn events(&self) -> broadcast::Receiver<BootstrapEvent> {
        self.events.subscribe()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<ClientStatus> {
        self.status.clone()
    }

    /// Stops the client and waits for its task.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

struct Runner {
    network: PeerNetwork,
    config: Arc<BootstrapClientConfig>,
    http: reqwest::Client,
    state: TrustState,
    status: watch::Sender<ClientStatus>,
    events: broadcast::Sender<BootstrapEvent>,
}

impl Runner {
    async fn run(mut self, cancel: CancellationToken) {
        let mut backoff = Duration::from_secs(2);
        loop {
            let next = self.round().await;
            let wait = match next {
                Some(after) => {
                    backoff = Duration::from_secs(2);
                    after
                }
                None => {
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.config.fetch_interval);
                    wait
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(jitter(wait)) => {}
            }
        }
    }

    /// One round over every server; the wait until the next, or `None`
    /// when every server failed.
    async fn round(&mut self) -> Option<Duration> {
        let mut next = self.config.fetch_interval;
        let mut any_ok = false;
        // One record a round, announced to every server: signed, and its
        // sequence persisted, once.
        let record = if self.config.announce {
            Some(self.sign_own_record())
        } else {
            None
        };
        let servers = self.config.servers.clone();
        for server in &servers {
            let result = match &record {
                Some(Err(e)) => Err(e.clone()),
                Some(Ok(record)) => self.serve_one(server, Some(record)).await,
                None => self.serve_one(server, None).await,
            };
            match result {
                Ok(reannounce) => {
                    any_ok = true;
                    if let Some(after) = reannounce {
                        next = next.min(after);
                    }
                    self.status
                        .send_modify(|s| s.errors.retain(|(url, _)| url != server));
                }
                Err(e) => {
                    tracing::warn!(server = %server, error = %e, "bootstrap round failed");
                    self.status.send_modify(|s| {
                        s.errors.retain(|(url, _)| url != server);
                        s.errors.push((server.clone(), e));
                    });
                }
            }
        }
        self.status.send_modify(|s| s.rounds += 1);
        any_ok.then_some(next)
    }

    /// Announces `record` (if any) to and fetches from one server; the
    /// server's `Reannounce-After`, if it gave one.
    async fn serve_one(
        &mut self,
        server: &str,
        record: Option<&SignedRecord>,
    ) -> Result<Option<Duration>, String> {
        let reannounce = match record {
            Some(record) => self.announce(server, record).await?,
            None => None,
        };
        let response: PeersResponse = self
            .get_json(&format!("{server}/api/v1/bootstrap/peers"))
            .await?;
        let now = SystemTime::now();
        let skew = self.config.max_clock_skew.as_secs();
        let network = self.network.network_name().to_owned();
        let mut state = self.state.clone();
        let mut result = verify::verify(
            &self.config.policy,
            &mut state,
            server,
            &response,
            None,
            &network,
            now,
            skew,
        );
        if matches!(
            result,
            Err(verify::VerifyError::NeedAuthority
                | verify::VerifyError::Authority(AuthorityError::SignedByOtherKey { .. }))
        ) {
            // A first pin, or another key (perhaps a rotation the pinned key
            // signed): fetch the certificate and its rotations.
            let doc: AuthorityDoc = self
                .get_json(&format!("{server}/api/v1/bootstrap/authority"))
                .await?;
            state = self.state.clone();
            result = verify::verify(
                &self.config.policy,
                &mut state,
                server,
                &response,
                Some(&doc),
                &network,
                now,
                skew,
            );
        }
        let verified = result.map_err(|e| e.to_string())?;
        if state != self.state {
            self.persist(&state)?;
            self.state = state;
        }
        let pinned = self.state.pin.as_ref().map(|p| p.fingerprint.clone());
        if response.mode == "authority" && self.config.announce {
            self.collect_tasks(server).await?;
        }
        let Verified::New(parsed) = verified else {
            self.status.send_modify(|s| s.pinned = pinned);
            return Ok(reannounce);
        };
        if !parsed.refused.is_empty() {
            tracing::debug!(
                server,
                refused = parsed.refused.len(),
                "bootstrap records refused"
            );
        }
        let seq = parsed.snapshot.seq;
        let learned = self.learn(&parsed.peers).await;
        self.status.send_modify(|s| {
            s.pinned = pinned;
            s.peers_learned += learned;
            s.last_seq.retain(|(url, _)| url != server);
            s.last_seq.push((server.to_owned(), seq));
        });
        Ok(reannounce)
    }

    /// This node's record for the round, its sequence persisted.
    fn sign_own_record(&mut self) -> Result<SignedRecord, String> {
        let addresses = if self.config.addresses.is_empty() {
            let port = self
                .network
                .local_addr()
                .map(|a| a.port())
                .ok_or("the node does not listen: nothing to announce")?;
            vec![SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port)]
        } else {
            self.config.addresses.clone()
        };
        let at = SystemTime::now();
        let now = crate::unix_secs(at);
        // Rises across restarts: the clock in ms, or one more than the last.
        let seq = crate::unix_ms(at).max(self.state.record_seq + 1);
        let record = self
            .network
            .sign_record(
                seq,
                now,
                now + self.config.record_lifetime.as_secs(),
                addresses,
            )
            .map_err(|e| e.to_string())?;
        let mut state = self.state.clone();
        state.record_seq = seq;
        self.persist(&state)?;
        self.state = state;
        Ok(record)
    }

    /// Announces `record` to `server`; its `Reannounce-After`.
    async fn announce(
        &self,
        server: &str,
        record: &SignedRecord,
    ) -> Result<Option<Duration>, String> {
        let response = self
            .http
            .post(format!("{server}/api/v1/bootstrap/announce"))
            .json(&serde_json::json!({ "record": record.as_str() }))
            .send()
            .await
            .map_err(|e| format!("announce: {e}"))?;
        let status = response.status();
        let after = response
            .headers()
            .get("reannounce-after")
            .or_else(|| response.headers().get("retry-after"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!(
                "announce refused ({status}): {}",
                body.chars().take(200).collect::<String>()
            ));
        }
        Ok(after)
    }

    /// Sends a signed heartbeat to `server` and applies the tasks it
    /// returns that the pinned authority signed for this node.
    async fn collect_tasks(&mut self, server: &str) -> Result<(), String> {
        let Some(pin) = &self.state.pin else {
            return Ok(()); // tasks are only taken from a pinned authority
        };
        let authority = PinnedAuthority::from_armored(&pin.certificate)
            .map_err(|e| e.to_string())?
            .with_rotation_seq(pin.rotation_seq);
        let heartbeat = self
            .network
            .sign_heartbeat(crate::unix_ms(SystemTime::now()), self.state.last_task)
            .map_err(|e| e.to_string())?;
        let response = self
            .http
            .post(format!("{server}/api/v1/bootstrap/heartbeat"))
            .json(&serde_json::json!({ "heartbeat": heartbeat.as_str() }))
            .send()
            .await
            .map_err(|e| format!("heartbeat: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("heartbeat refused ({})", response.status()));
        }
        #[derive(serde::Deserialize)]
        struct Tasks {
            tasks: Vec<SignedTask>,
        }
        let Tasks { tasks } = response
            .json()
            .await
            .map_err(|e| format!("heartbeat: {e}"))?;
        let me = self.network.local_peer_id();
        let network = self.network.network_name().to_owned();
        for signed in tasks {
            let checked = check_task(
                &signed,
                &authority,
                &network,
                me,
                self.state.last_task,
                SystemTime::now(),
            );
            let task = match checked {
                Ok(task) => task,
                Err(e) => {
                    tracing::warn!(server, error = %e, "bootstrap task refused");
                    let _ = self.events.send(BootstrapEvent::TaskRefused {
                        server: server.to_owned(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            // Applied or failed, it is done: a task is never run twice.
            let mut state = self.state.clone();
            state.last_task = task.seq;
            self.persist(&state)?;
            self.state = state;
            match apply(&self.network, &task.action).await {
                Ok(()) => {
                    tracing::info!(
                        seq = task.seq,
                        kind = task.action.kind(),
                        "bootstrap task applied"
                    );
                    if let TaskAction::Message { text } = &task.action {
                        let _ = self.events.send(BootstrapEvent::Message {
                            seq: task.seq,
                            text: text.clone(),
                        });
                    }
                    let _ = self.events.send(BootstrapEvent::TaskApplied {
                        seq: task.seq,
                        kind: task.action.kind(),
                    });
                }
                Err(reason) => {
                    let _ = self.events.send(BootstrapEvent::TaskRefused {
                        server: server.to_owned(),
                        reason: format!("task {} failed: {reason}", task.seq),
                    });
                }
            }
        }
        Ok(())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_LEN {
                return Err(format!(
                    "GET {url}: the response is larger than {MAX_RESPONSE_LEN} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: {e}"))
    }

    /// Hands the listed peers to the node and dials some; how many were new
    /// to it.
    async fn learn(&self, peers: &[ListedPeer]) -> u64 {
        let me = self.network.local_peer_id();
        let mut learned = 0;
        let mut dials = Vec::new();
        for listed in peers {
            let record = listed.record.record();
            if record.peer == me {
                continue;
            }
            let addrs: Vec<SocketAddr> = record
                .addresses
                .iter()
                .filter_map(|a| resolve(*a, listed.observed_ip))
                .collect();
            let known = self.network.known_peer(&record.peer).is_some();
            if self.network.learn_listed(record.peer, &addrs) && !known {
                learned += 1;
            }
            if self.config.dial
                && self.network.channel(&record.peer).is_none()
                && dials.len() < MAX_DIALS_PER_ROUND
                && let Some(addr) = addrs.first()
            {
                dials.push((record.peer, *addr));
            }
        }
        for (peer, addr) in dials {
            let network = self.network.clone();
            tokio::spawn(async move {
                if let Err(e) = network.dial_listed(peer, addr).await {
                    tracing::debug!(%peer, %addr, error = %e, "dialling a listed peer failed");
                }
            });
        }
        learned
    }

    fn persist(&self, state: &TrustState) -> Result<(), String> {
        let Some(path) = &self.config.state_file else {
            return Ok(());
        };
        save_state(path, state).map_err(|e| format!("saving {}: {e}", path.display()))
    }
}

/// Carries out one checked task through the network's API.
async fn apply(network: &PeerNetwork, action: &TaskAction) -> Result<(), String> {
    match action {
        TaskAction::BlockPeer { peer } => network.block_peer(*peer),
        TaskAction::BlockNetwork { cidr } => {
            network.block_network(cidr.parse().map_err(|_| format!("bad CIDR {cidr}"))?);
        }
        TaskAction::Disconnect { peer } => {
            if network.channel(peer).is_some() {
                network.disconnect(*peer).await.map_err(|e| e.to_string())?;
            }
        }
        TaskAction::Authorize {
            peer,
            scopes,
            ttl_secs,
        } => {
            let mut request = GrantRequest::new(scopes.parse().map_err(|e| format!("{e}"))?)
                .granted_by("bootstrap authority");
            if let Some(secs) = ttl_secs {
                request = request.lasting(Duration::from_secs(*secs));
            }
            network
                .grant(*peer, request)
                .await
                .map_err(|e| e.to_string())?;
        }
        TaskAction::Revoke { peer } => network.demote(*peer).await.map_err(|e| e.to_string())?,
        TaskAction::Message { .. } | TaskAction::Ping => {}
    }
    Ok(())
}

/// A listed address made usable: an unspecified IP becomes the one the
/// server saw; none if neither says where.
fn resolve(addr: SocketAddr, observed: Option<IpAddr>) -> Option<SocketAddr> {
    if addr.ip().is_unspecified() {
        observed.map(|ip| SocketAddr::new(ip, addr.port()))
    } else {
        Some(addr)
    }
}

fn jitter(wait: Duration) -> Duration {
    let spread = wait.as_millis() / 10;
    let nanos = u128::from(
        SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    );
    let offset = if spread == 0 { 0 } else { nanos % (2 * spread) };
    let millis = (wait.as_millis() + offset).saturating_sub(spread);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

fn load_state(path: &std::path::Path) -> Result<TrustState, ClientError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| ClientError::State {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrustState::default()),
        Err(e) => Err(ClientError::State {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Writes the state atomically: a synced temporary file renamed over it.
fn save_state(path: &std::path::Path, state: &TrustState) -> std::io::Result<()> {
    use std::io::Write;
    let text = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&text)?;
        file.sync_all()?;
    }
    std::fs::rename(&temp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_take_the_observed_ip() {
        let observed = Some("198.51.100.4".parse().unwrap());
        assert_eq!(
            resolve("0.0.0.0:4000".parse().unwrap(), observed),
            Some("198.51.100.4:4000".parse().unwrap())
        );
        assert_eq!(resolve("0.0.0.0:4000".parse().unwrap(), None), None);
        assert_eq!(
            resolve("203.0.113.9:4000".parse().unwrap(), observed),
            Some("203.0.113.9:4000".parse().unwrap())
        );
    }

    #[test]
    fn jitter_stays_within_a_tenth() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(100));
            assert!(
                j >= Duration::from_secs(90) && j <= Duration::from_secs(110),
                "{j:?}"
            );
        }
    }

    #[test]
    fn the_state_survives_a_save_and_a_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/trust.json");
        let mut state = TrustState {
            record_seq: 42,
            ..TrustState::default()
        };
        state.trustless_seq.insert("http://a".into(), 7);
        save_state(&path, &state).unwrap();
        assert_eq!(load_state(&path).unwrap(), state);
        std::fs::write(&path, "{ broken").unwrap();
        assert!(matches!(load_state(&path), Err(ClientError::State { .. })));
    }
}
