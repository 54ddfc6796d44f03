//! Running a parsed terminal line: the server's commands and the node's,
//! rendered as transcript lines.

use std::time::SystemTime;

use crate::{
    http::guard::AuthSession,
    node::{NodeService, actions::ActionError, records::unix_ms},
    state::AppState,
    terminal::{Command, ParseError, bootstrap, command},
};

/// Why a line produced an error instead of output.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// It did not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The node refused or failed.
    #[error(transparent)]
    Action(#[from] ActionError),
    /// A node command while the node is off.
    #[error("the peer node is off ([node] enabled = false)")]
    NodeOff,
    /// A bootstrap command while the bootstrap API is off.
    #[error("the bootstrap server is off ([bootstrap] enabled = false)")]
    BootstrapOff,
    /// A bootstrap command refused or failed; the message says why.
    #[error("{0}")]
    Bootstrap(String),
    /// A scan command refused or failed; the message says why.
    #[error("{0}")]
    Scan(String),
}

/// Runs one line for `session`; the lines to show.
pub async fn run(
    state: &AppState,
    session: &AuthSession,
    line: &str,
) -> Result<Vec<String>, RunError> {
    let node = || state.shared.node.as_deref().ok_or(RunError::NodeOff);
    let bootstrap = || state.shared.bootstrap.clone().ok_or(RunError::BootstrapOff);
    Ok(match command::parse(line)? {
        Command::Help(topic) => command::help(topic.as_deref())?,
        Command::Version => vec![format!("p2pnet-server {}", env!("CARGO_PKG_VERSION"))],
        Command::WhoAmI => vec![session.username.clone()],
        Command::Uptime => vec![format!("up {} s", state.shared.started.elapsed().as_secs())],
        Command::Node => node_lines(node()?),
        Command::Peers => peer_lines(node()?),
        Command::Channels => channel_lines(node()?),
        Command::Pending => pending_lines(node()?),
        Command::Discovery => discovery_lines(node()?),
        Command::Routines => routine_lines(node()?),
        Command::Doctor(peer) => {
            let report = node()?.doctor(&peer)?;
            std::iter::once(format!("doctor {}", report.peer_id))
                .chain(report.lines.into_iter().map(|l| format!("  {l}")))
                .collect()
        }
        Command::Action(action) => vec![node()?.run(&session.username, action).await?],
        Command::Bootstrap => bootstrap::status(bootstrap()?.as_ref()).await?,
        Command::BootstrapPeers => bootstrap::peers(bootstrap()?.as_ref()).await?,
        Command::BootstrapHistory => bootstrap::history(bootstrap()?.as_ref()).await?,
        Command::Task(task) => {
            bootstrap::task(&session.username, bootstrap()?.as_ref(), task).await?
        }
        Command::Key(key) => bootstrap::key(state, &session.username, bootstrap()?, key).await?,
        Command::Scan(scan) => {
            super::scan::run(&state.shared.widescan, &session.username, scan).await?
        }
    })
}

/// `Ns ago` for Unix milliseconds.
pub(super) fn ago(ms: i64) -> String {
    let now = unix_ms(SystemTime::now());
    format!("{}s ago", (now - ms).max(0) / 1000)
}

fn node_lines(node: &NodeService) -> Vec<String> {
    let s = node.summary();
    vec![
        format!("id       {}", s.peer_id),
        format!("listen   {}", s.listen.join(", ")),
        format!(
            "channels {} open, {} waiting for approval, {} handshaking",
            s.channels_open, s.channels_pending, s.channels_handshaking
        ),
        format!(
            "peers    {} known, {} pending approval",
            s.known_peers, s.pending_approvals
        ),
        format!(
            "traffic  {} B sent, {} B received",
            s.bytes_sent, s.bytes_received
        ),
        format!(
            "discovery {}",
            if s.discovery.is_some() {
                "on (see `discovery`)"
            } else {
                "off"
            }
        ),
    ]
}

fn peer_lines(node: &NodeService) -> Vec<String> {
    let view = node.peers_view();
    if view.known.is_empty() {
        return vec!["no known peers".into()];
    }
    let mut lines = vec![format!("{} known peers", view.known.len())];
    for p in view.known {
        let mut flags = Vec::new();
        if p.approved {
            flags.push("approved");
        }
        if p.rejected {
            flags.push("rejected");
        }
        if p.blocked {
            flags.push("blocked");
        }
        if p.persistent {
            flags.push("kept");
        }
        let grants: Vec<String> = p
            .grants
            .iter()
            .map(|g| format!("#{} {}", g.id, g.scopes))
            .collect();
        lines.push(format!(
            "{}  {}  [{}]  {}  grants: {}  seen {}",
            p.peer_id,
            p.source,
            flags.join(","),
            p.addresses.join(" "),
            if grants.is_empty() {
                "-".into()
            } else {
                grants.join("; ")
            },
            ago(p.last_seen_ms)
        ));
    }
    lines
}

fn channel_lines(node: &NodeService) -> Vec<String> {
    let view = node.peers_view();
    if view.channels.is_empty() {
        return vec!["no channels".into()];
    }
    view.channels
        .iter()
        .map(|c| {
            format!(
                "#{} {} {} {} {}{} rtt {} sent {} B received {} B since {}",
                c.id,
                c.peer_id.as_deref().unwrap_or("(unauthenticated)"),
                c.direction,
                c.addr,
                c.state,
                if c.scopes.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", c.scopes)
                },
                c.rtt_us.map_or("-".into(), |us| format!(
                    "{}.{} ms",
                    us / 1000,
                    us % 1000 / 100
                )),
                c.bytes_sent,
                c.bytes_received,
                ago(c.since_ms)
            )
        })
        .collect()
}

fn pending_lines(node: &NodeService) -> Vec<String> {
    let view = node.peers_view();
    if view.pending.is_empty() {
        return vec!["nobody is waiting for approval".into()];
    }
    view.pending
        .iter()
        .map(|p| format!("{} from {} waiting {}", p.peer_id, p.addr, ago(p.since_ms)))
        .collect()
}

fn discovery_lines(node: &NodeService) -> Vec<String> {
    let Some(d) = node.summary().discovery else {
        return vec!["discovery is off".into()];
    };
    vec![
        format!(
            "ports      {:?} (broadcasting on {})",
            d.ports, d.broadcast_port
        ),
        format!("listening  {}", d.listening.join(", ")),
        format!("interfaces {}", d.interfaces.join(", ")),
        format!(
            "datagrams  {} sent, {} received, {} dropped, {} refused by the access list",
            d.sent, d.received, d.dropped, d.refused
        ),
        format!(
            "heard      {} peers{}",
            d.heard,
            if d.settled { ", settled" } else { "" }
        ),
    ]
}

fn routine_lines(node: &NodeService) -> Vec<String> {
    node.routines()
        .iter()
        .map(|r| {
            format!(
                "{} every {} s, {}, {} runs{}{}",
                r.name,
                r.interval_secs,
                if r.running { "running" } else { "stopped" },
                r.runs,
                r.last_run_ms
                    .map(|ms| format!(", last {}", ago(ms)))
                    .unwrap_or_default(),
                r.last_error
                    .as_deref()
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}
