//! A real server on loopback for a test: its embedded node listens on a
//! loopback port of the OS's choice, with LAN discovery off (tests send
//! nothing beyond loopback).

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use reqwest::{Client, StatusCode, header, redirect::Policy};
use server::{
    Server,
    config::{Config, RawConfig},
    node::NodeService,
};
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "integration-test-password";

/// A test configuration over `data`; `tweak` changes the rest.
pub fn config(data: &Path, tweak: impl FnOnce(&mut RawConfig)) -> Config {
    let mut raw = RawConfig::default();
    raw.server.listen = vec!["127.0.0.1:0".into()];
    raw.server.data_dir = data.to_path_buf();
    raw.server.site_root = data.join("site");
    raw.auth.admin_password = PASSWORD.into();
    raw.log.filter = "warn".into();
    raw.node.listen = "127.0.0.1:0".into();
    raw.node.discovery.enabled = false;
    tweak(&mut raw);
    Config::validate(raw).expect("valid test config")
}

/// A server serving in the background.
pub struct Running {
    pub addr: SocketAddr,
    pub node: Option<Arc<NodeService>>,
    bootstrap: Option<Arc<server::bootstrap::BootstrapService>>,
    #[allow(dead_code)] // not every test binary uses it
    pub store: Arc<dyn server::store::Store>,
    widescan: Arc<server::widescan::WidescanService>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn start(config: Config) -> Self {
        let server = Server::bind(config).await.expect("bind");
        let addr = server.local_addrs()[0];
        let node = server.node();
        let bootstrap = server.bootstrap();
        let store = server.store();
        let widescan = server.widescan();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move { server.serve(token).await.expect("serve") });
        Self {
            addr,
            node,
            bootstrap,
            store,
            widescan,
            stop,
            task,
        }
    }

    /// The bootstrap service (enabled by default).
    #[allow(dead_code)] // not every test binary uses it
    pub fn bootstrap(&self) -> &server::bootstrap::BootstrapService {
        self.bootstrap.as_deref().expect("[bootstrap] enabled")
    }

    /// The scan jobs.
    #[allow(dead_code)] // not every test binary uses it
    pub fn widescan(&self) -> Arc<server::widescan::WidescanService> {
        self.widescan.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The node's peer address.
    pub fn node_addr(&self) -> SocketAddr {
        self.node
            .as_ref()
            .and_then(|n| n.network().local_addr())
            .expect("the node listens")
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("server stops within 15 s")
            .expect("server task");
    }
}

pub fn client() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// A logged-in session: cookie and CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub async fn login(c: &Client, s: &Running) -> Session {
    let r = c
        .post(s.url("/auth/login"))
        .form(&[("username", "admin"), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let html = page_html(c, s, &cookie, "/").await;
    let csrf = html
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf meta tag")
        .to_owned();
    Session { cookie, csrf }
}

/// Runs one terminal line; the output lines, or the error line as `Err`.
pub async fn terminal(
    c: &Client,
    s: &Running,
    session: &Session,
    line: &str,
) -> Result<Vec<String>, String> {
    let r = c
        .post(s.url("/api/parser/input"))
        .header(header::COOKIE, &session.cookie)
        .header("x-csrf-token", &session.csrf)
        .header(header::ORIGIN, s.url(""))
        .json(&serde_json::json!({ "line": line }))
        .send()
        .await
        .expect("terminal");
    assert_eq!(r.status(), StatusCode::OK, "{line}");
    let body: serde_json::Value = r.json().await.expect("json");
    let lines = body["lines"].as_array().expect("lines");
    let mut out = Vec::new();
    for l in lines.iter().skip(1) {
        let text = l["text"].as_str().unwrap_or_default().to_owned();
        if l["kind"] == "error" {
            return Err(text);
        }
        out.push(text);
    }
    Ok(out)
}

/// The URL of a server function whose form is on `page` (its name carries
/// a hash suffix), e.g. `("/settings", "/api/update_settings")`.
pub async fn form_action(
    c: &Client,
    s: &Running,
    session: &Session,
    page: &str,
    prefix: &str,
) -> String {
    page_html(c, s, &session.cookie, page)
        .await
        .split("action=\"")
        .map(|rest| rest.split('"').next().unwrap_or_default())
        .find(|a| a.starts_with(prefix))
        .unwrap_or_else(|| panic!("no form posting to {prefix} on {page}"))
        .to_owned()
}

/// `GET path` without a session, its body as JSON.
#[allow(dead_code)] // not every test binary uses it
pub async fn get_json(c: &Client, s: &Running, path: &str) -> serde_json::Value {
    c.get(s.url(path))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("a JSON body")
}

/// A panel page's HTML, with the session `cookie`.
pub async fn page_html(c: &Client, s: &Running, cookie: &str, page: &str) -> String {
    c.get(s.url(page))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html")
}
