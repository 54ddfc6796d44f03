//! The server over a real loopback socket: auth, CSRF, Host allow-list, the
//! terminal API, settings persistence across a restart, and bad input.

use std::{net::SocketAddr, time::Duration};

use crate::common::server::{PASSWORD, Running, client, config, page_html};
use reqwest::{Client, StatusCode, header};

/// Logs in; returns the session cookie pair and the CSRF token from the page.
async fn login(c: &Client, s: &Running) -> (String, String) {
    let r = c
        .post(s.url("/auth/login"))
        .form(&[
            ("username", "admin"),
            ("password", PASSWORD),
            ("next", "/terminal"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/terminal");
    let set_cookie = r.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains("Secure"), "plain HTTP on loopback");
    let cookie = set_cookie.split(';').next().expect("pair").to_owned();
    let html = page_html(c, s, &cookie, "/").await;
    let csrf = html
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf meta tag")
        .to_owned();
    assert_eq!(csrf.len(), 43);
    (cookie, csrf)
}

#[tokio::test]
async fn unauthenticated_requests_are_turned_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();

    let r = c.get(s.url("/healthz")).send().await.expect("healthz");
    assert_eq!(r.status(), StatusCode::OK);

    let r = c.get(s.url("/settings?tab=x")).send().await.expect("page");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[header::LOCATION],
        "/login?next=%2Fsettings%3Ftab%3Dx"
    );

    let r = c
        .get(s.url("/api/parser/output"))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = c.get(s.url("/login")).send().await.expect("login page");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .expect("html")
            .contains("action=\"/auth/login\"")
    );

    // A forged session cookie is just no session.
    let r = c
        .get(s.url("/"))
        .header(header::COOKIE, format!("p2pnet_session={}", "A".repeat(43)))
        .send()
        .await
        .expect("forged");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    s.shutdown().await;
}

#[tokio::test]
async fn host_header_must_be_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |r| {
        r.server.allowed_hosts = vec!["panel.test".into()]
    }))
    .await;
    let c = client();
    for (host, ok) in [
        ("localhost:1", true),
        ("panel.test", true),
        ("evil.example", false),
        ("127.0.0.2", false),
    ] {
        let r = c
            .get(s.url("/healthz"))
            .header(header::HOST, host)
            .send()
            .await
            .expect("req");
        assert_eq!(r.status() == StatusCode::OK, ok, "{host}: {}", r.status());
        if !ok {
            assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn login_logout_and_wrong_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();

    let r = c
        .post(s.url("/auth/login"))
        .form(&[("username", "admin"), ("password", "wrong password!")])
        .send()
        .await
        .expect("bad login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/login?error=invalid");
    assert!(r.headers().get(header::SET_COOKIE).is_none());

    let (cookie, csrf) = login(&c, &s).await;
    // Logged in, /login sends you home.
    let r = c
        .get(s.url("/login"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("login page");
    assert_eq!(r.headers()[header::LOCATION], "/");

    // Logout needs the CSRF token too.
    let r = c
        .post(s.url("/auth/logout"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(s.url("/auth/logout"))
        .header(header::COOKIE, &cookie)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[header::SET_COOKIE]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );
    // The old cookie no longer works.
    let r = c
        .get(s.url("/"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("after logout");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    s.shutdown().await;
}

#[tokio::test]
async fn terminal_round_trip_is_csrf_protected_and_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), |_| {});
    let s = Running::start(cfg).await;
    let c = client();
    let (cookie, csrf) = login(&c, &s).await;
    let input = |line: &str| {
        c.post(s.url("/api/parser/input"))
            .header(header::COOKIE, &cookie)
            .json(&serde_json::json!({ "line": line }))
    };

    // No token, wrong token, foreign origin: refused.
    assert_eq!(
        input("help").send().await.expect("req").status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        input("help")
            .header("x-csrf-token", "x".repeat(43))
            .send()
            .await
            .expect("req")
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = input("help")
        .header("x-csrf-token", &csrf)
        .header(header::ORIGIN, "http://evil.example")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = input("help")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("help");
    assert_eq!(r.status(), StatusCode::OK);
    let out: serde_json::Value = r.json().await.expect("json");
    let texts: Vec<&str> = out["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert_eq!(texts[0], "› help");
    assert!(texts.iter().any(|t| t.contains("whoami")), "{texts:?}");

    let r = input("whoami")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("whoami");
    let out: serde_json::Value = r.json().await.expect("json");
    assert_eq!(out["lines"][1]["text"], "admin");
    assert_eq!(out["lines"][1]["kind"], "output");

    // Garbage: an error line, and the server keeps serving.
    let r = input("rm -rf /\u{1b}")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("garbage");
    let out: serde_json::Value = r.json().await.expect("json");
    assert_eq!(out["lines"][1]["kind"], "error");
    let r = input("frobnicate")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("unknown");
    let out: serde_json::Value = r.json().await.expect("json");
    assert!(
        out["lines"][1]["text"]
            .as_str()
            .expect("text")
            .contains("unknown command")
    );

    // Polling returns the whole transcript, then nothing new.
    let r = c
        .get(s.url("/api/parser/output?after=0"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("poll");
    let out: serde_json::Value = r.json().await.expect("json");
    let next = out["next"].as_u64().expect("next");
    assert!(out["lines"].as_array().expect("lines").len() >= 8);
    let r = c
        .get(s.url(&format!("/api/parser/output?after={next}")))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("poll");
    let out: serde_json::Value = r.json().await.expect("json");
    assert!(out["lines"].as_array().expect("lines").is_empty());
    let r = c
        .get(s.url("/api/parser/output?after=-3"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("bad");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Bad bodies: clear JSON errors.
    let r = c
        .post(s.url("/api/parser/input"))
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"line\": ")
        .send()
        .await
        .expect("malformed");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.expect("json error");
    assert!(
        body["error"]
            .as_str()
            .expect("message")
            .starts_with("malformed JSON"),
        "{body}"
    );
    let r = c
        .post(s.url("/api/parser/input"))
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "line": "x".repeat(2 * 1024 * 1024) }))
        .send()
        .await
        .expect("oversized");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Every accepted input is in the audit log.
    let store = server::store::connect(
        &format!("sqlite://{}/p2pnet.db", dir.path().display()),
        1,
        Duration::from_secs(5),
    )
    .await
    .expect("store");
    let audit = store.recent_audit(50).await.expect("audit");
    let inputs: Vec<&str> = audit
        .iter()
        .filter(|a| a.entry.action == "terminal.input")
        .map(|a| a.entry.detail.as_str())
        .collect();
    assert_eq!(
        inputs,
        vec!["frobnicate", "rm -rf /\\u{1b}", "whoami", "help"]
    );
    assert!(audit.iter().any(|a| a.entry.action == "auth.login"));
    s.shutdown().await;
}

#[tokio::test]
async fn settings_persist_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();
    let (cookie, csrf) = login(&c, &s).await;
    // Find the server function's URL in the settings page (its name has a hash suffix).
    let html = c
        .get(s.url("/settings"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let action = html
        .split("action=\"")
        .map(|rest| rest.split('"').next().unwrap_or_default())
        .find(|a| a.starts_with("/api/update_settings"))
        .expect("settings form action")
        .to_owned();
    let save = |name: &'static str| {
        c.post(s.url(&action))
            .header(header::COOKIE, &cookie)
            .header(header::ACCEPT, "application/json")
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("node_name", name),
                ("accept_inbound_peers", "on"),
            ])
    };
    let r = save("   ").send().await.expect("invalid");
    assert!(!r.status().is_success(), "blank name refused");
    let r = save("renamed-node").send().await.expect("save");
    assert!(r.status().is_success(), "{}", r.status());
    // Without the token the same post is refused.
    let r = c
        .post(s.url(&action))
        .header(header::COOKIE, &cookie)
        .form(&[("node_name", "sneaky")])
        .send()
        .await
        .expect("no token");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    s.shutdown().await;

    let s = Running::start(config(dir.path(), |_| {})).await;
    let (cookie, _) = login(&c, &s).await;
    let html = c
        .get(s.url("/"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("renamed-node"),
        "the saved name is shown after a restart"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_metrics_and_rate_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |r| r.auth.login_attempts_per_minute = 3)).await;
    let c = client();
    let (cookie, _) = login(&c, &s).await;

    let r = c
        .get(s.url("/no/such/page"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("404");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.expect("html").contains("Page not found"));

    let r = c.get(s.url("/robots.txt")).send().await.expect("static");
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "no site built in this test; still no crash"
    );

    // Two more attempts are allowed (one was the login above), then 429.
    for _ in 0..2 {
        let r = c
            .post(s.url("/auth/login"))
            .form(&[("username", "admin"), ("password", "nope")])
            .send()
            .await
            .expect("try");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    let r = c
        .post(s.url("/auth/login"))
        .form(&[("username", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .expect("try");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key(header::RETRY_AFTER));

    let body = c
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        body.contains(
            "p2pnet_http_requests_total{method=\"POST\",route=\"/auth/login\",status=\"429\"} 1"
        ),
        "{body}"
    );
    assert!(
        body.contains("p2pnet_http_request_duration_seconds_bucket"),
        "{body}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_second_server_on_a_taken_port_fails_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let taken = s.addr.to_string();
    let other = tempfile::tempdir().expect("tempdir");
    let err = server::Server::bind(config(other.path(), |r| {
        r.server.listen = vec![taken.clone()]
    }))
    .await
    .err()
    .expect("port taken");
    assert!(
        err.to_string()
            .contains(&format!("cannot listen on {taken}")),
        "{err}"
    );
    s.shutdown().await;
}

/// Opens the server's SQLite database beside it (WAL lets both read).
async fn open_store(dir: &std::path::Path) -> std::sync::Arc<dyn server::store::Store> {
    server::store::connect(
        &format!("sqlite://{}/p2pnet.db", dir.display()),
        1,
        Duration::from_secs(5),
    )
    .await
    .expect("store")
}

/// One failed login (wrong password) as seen through a proxy that sent `xff`.
async fn forwarded_login(c: &Client, s: &Running, xff: &str) -> reqwest::Response {
    c.post(s.url("/auth/login"))
        .header("x-forwarded-for", xff)
        .form(&[("username", "admin"), ("password", "wrong password!")])
        .send()
        .await
        .expect("login attempt")
}

#[tokio::test]
async fn forwarded_for_takes_the_address_the_proxy_appended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |r| {
        r.server.trust_forwarded_for = true;
        r.auth.login_attempts_per_minute = 1;
    }))
    .await;
    let c = client();
    // The client forges the first entry; the trusted proxy appends the real one.
    let r = forwarded_login(&c, &s, "203.0.113.1, 198.51.100.7").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = forwarded_login(&c, &s, "203.0.113.2, 198.51.100.7").await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a rotated first entry must not buy a fresh limiter budget"
    );

    let audit = open_store(dir.path())
        .await
        .recent_audit(50)
        .await
        .expect("audit");
    let failed: Vec<&str> = audit
        .iter()
        .filter(|a| a.entry.action == "auth.login_failed")
        .map(|a| a.entry.detail.as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].contains("from 198.51.100.7"), "{failed:?}");
    assert!(
        audit.iter().all(|a| !a.entry.detail.contains("203.0.113.")),
        "forged entries never reach the audit log: {audit:?}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn metric_labels_stay_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();
    for i in 0..150u32 {
        let noise = blake3::hash(&i.to_le_bytes()).to_hex();
        let method = reqwest::Method::from_bytes(format!("X{}", &noise[..10]).as_bytes())
            .expect("method token");
        let r = c
            .request(
                method,
                s.url(&format!("/{}/{}", &noise[10..20], &noise[20..30])),
            )
            .send()
            .await
            .expect("invented method");
        assert!(r.status().is_client_error(), "{}", r.status());
        let r = c
            .get(s.url(&format!("/pkg/{}", &noise[30..40])))
            .send()
            .await
            .expect("random path");
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let body = c
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let series = body
        .lines()
        .filter(|l| l.starts_with("p2pnet_http_requests_total{"))
        .count();
    assert!(series <= 12, "{series} request series:\n{body}");
    assert!(body.len() < 24 * 1024, "{} bytes:\n{body}", body.len());
    assert!(body.contains("method=\"other\""), "{body}");
    s.shutdown().await;
}

#[tokio::test]
async fn login_limit_counts_an_ipv6_64_as_one_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |r| {
        r.server.trust_forwarded_for = true;
        r.auth.login_attempts_per_minute = 1;
    }))
    .await;
    let c = client();
    let r = forwarded_login(&c, &s, "2001:db8:1:2::1").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = forwarded_login(&c, &s, "2001:db8:1:2:ffff:ffff:ffff:fffe").await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "another address of the same /64 shares the budget"
    );
    let r = forwarded_login(&c, &s, "2001:db8:1:3::1").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the next /64 does not");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_password_checks_are_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |r| r.server.trust_forwarded_for = true)).await;
    // Eight clients at once, each with its own limiter budget: only the cap
    // on concurrent password checks can turn any of them away.
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (c, url) = (client(), s.url("/auth/login"));
        attempts.spawn(async move {
            c.post(url)
                .header("x-forwarded-for", format!("198.51.100.{}", 10 + i))
                .form(&[("username", "admin"), ("password", "wrong password!")])
                .send()
                .await
                .expect("login attempt")
        });
    }
    let responses = attempts.join_all().await;
    let checked = responses
        .iter()
        .filter(|r| r.status() == StatusCode::SEE_OTHER)
        .count();
    let busy: Vec<_> = responses
        .iter()
        .filter(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(checked + busy.len(), responses.len(), "only 303 or 503");
    assert!(checked >= 4, "the first four are always checked: {checked}");
    assert!(
        !busy.is_empty(),
        "eight concurrent Argon2 checks were all admitted"
    );
    for r in busy {
        assert!(r.headers().contains_key(header::RETRY_AFTER));
    }
    s.shutdown().await;
}

#[tokio::test]
async fn refused_logins_are_merged_in_the_audit_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |r| r.auth.login_attempts_per_minute = 2)).await;
    let c = client();
    for i in 0..20 {
        let r = c
            .post(s.url("/auth/login"))
            .form(&[("username", "admin"), ("password", "wrong password!")])
            .send()
            .await
            .expect("attempt");
        let expected = if i < 2 {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(r.status(), expected, "attempt {i}");
    }
    let audit = open_store(dir.path())
        .await
        .recent_audit(100)
        .await
        .expect("audit");
    let refused: Vec<(&str, &str)> = audit
        .iter()
        .filter(|a| a.entry.action.starts_with("auth.login_"))
        .map(|a| (a.entry.action.as_str(), a.entry.detail.as_str()))
        .collect();
    assert_eq!(refused.len(), 2, "one row per source and kind: {refused:?}");
    assert_eq!(refused[0].0, "auth.login_throttled");
    assert!(
        refused[0].1.starts_with("18 attempts from 127.0.0.1"),
        "{refused:?}"
    );
    assert_eq!(refused[1].0, "auth.login_failed");
    assert!(
        refused[1].1.starts_with("2 attempts from 127.0.0.1"),
        "{refused:?}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn login_redirect_is_judged_after_decoding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();
    for next in ["/\t/evil.example", "/%09/evil.example", "/%2F/evil.example"] {
        let r = c
            .post(s.url("/auth/login"))
            .form(&[
                ("username", "admin"),
                ("password", PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(r.headers()[header::LOCATION], "/", "{next:?}");
    }
    s.shutdown().await;
}

/// Sends `GET target` byte for byte (reqwest would normalise dot segments
/// and `%2e` before sending) and returns the status and the whole response.
async fn raw_get(addr: SocketAddr, target: &str, cookie: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let cookie = cookie.map_or_else(String::new, |c| format!("Cookie: {c}\r\n"));
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{cookie}Connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response))
        .await
        .expect("response within 30 s")
        .expect("read response");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line");
    (status, response)
}

#[tokio::test]
async fn ambiguous_paths_are_refused_before_routing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let ambiguous = [
        "/pkg/%2e%2e/settings",
        "/pkg/%2E%2E/settings",
        "/pkg/../settings",
        "/pkg/./../settings",
        "/pkg/..%2Fsettings",
        "/pkg/%2fsettings",
        "/%70kg/x",
        "/pkg/%5C..%5Csettings",
        "/pkg/%25%32%65%25%32%65/settings",
    ];
    for target in ambiguous {
        let (status, response) = raw_get(s.addr, target, None).await;
        assert_eq!(status, 400, "{target}: {response}");
        assert!(!response.contains("csrf-token"), "{target}: a panel page");
    }
    // Canonical paths still behave as before.
    let (status, _) = raw_get(s.addr, "/settings", None).await;
    assert_eq!(status, 303);
    let (status, _) = raw_get(s.addr, "/pkg/p2pnet.js", None).await;
    assert_eq!(status, 404, "no site built in this test");
    let (status, _) = raw_get(s.addr, "/no%20such%20page", None).await;
    assert_eq!(status, 303, "encoded reserved characters are fine");

    // A session does not make an ambiguous path acceptable.
    let (cookie, _) = login(&client(), &s).await;
    let (status, _) = raw_get(s.addr, "/pkg/%2e%2e/settings", Some(&cookie)).await;
    assert_eq!(status, 400);
    s.shutdown().await;
}
