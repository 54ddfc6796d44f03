//! `GET /api/live` over real HTTP: a second p2pnet node's arrival shows
//! up live, the recent events serve a late subscriber, a client that never
//! reads stays bounded, the stream cap answers 503, a request without a
//! session is refused, and streams end when the server shuts down.

use std::time::Duration;

use crate::common::server::{Running, Session, client, config, login, terminal};
use app::api::{LAGGED, LiveEvent, TRAFFIC};
use p2pnet::PeerNetwork;
use reqwest::{Client, StatusCode, header};
use server::node::live::{CLIENT_BUFFER, Draft, MAX_STREAMS, MAX_TEXT_CHARS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(20);

/// One open stream, parsed into events as its chunks arrive.
struct Stream {
    response: reqwest::Response,
    pending: String,
}

impl Stream {
    async fn open(c: &Client, s: &Running, session: &Session, query: &str) -> Self {
        let response = request(c, s, session, query).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        Self {
            response,
            pending: String::new(),
        }
    }

    /// The next event, `None` once the stream ended; panics after `WAIT`.
    async fn next(&mut self) -> Option<LiveEvent> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(end) = self.pending.find("\n\n") {
                    let block: String = self.pending.drain(..end + 2).collect();
                    if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                        return Some(serde_json::from_str(data).expect("a LiveEvent"));
                    }
                    continue; // a keep-alive comment
                }
                match self.response.chunk().await {
                    Ok(Some(bytes)) => self.pending.push_str(&String::from_utf8_lossy(&bytes)),
                    Ok(None) | Err(_) => return None,
                }
            }
        })
        .await
        .expect("an event within the wait")
    }

    /// Reads until an event matches; the events before it are returned too.
    async fn until(&mut self, what: &str, hit: impl Fn(&LiveEvent) -> bool) -> Vec<LiveEvent> {
        let mut seen = Vec::new();
        loop {
            let event = self
                .next()
                .await
                .unwrap_or_else(|| panic!("stream ended before {what}: {seen:#?}"));
            let done = hit(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
}

async fn request(c: &Client, s: &Running, session: &Session, query: &str) -> reqwest::Response {
    c.get(s.url(&format!("/api/live{query}")))
        .header(header::COOKIE, &session.cookie)
        .send()
        .await
        .expect("request")
}

async fn peer_node() -> PeerNetwork {
    PeerNetwork::builder()
        .listen_ip("127.0.0.1".parse().unwrap())
        .start()
        .await
        .expect("peer node")
}

fn note(text: String) -> Draft {
    Draft {
        kind: "test.note",
        peer: None,
        text,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_connecting_is_seen_live_and_by_a_late_subscriber() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();
    let session = login(&c, &s).await;
    let mut live = Stream::open(&c, &s, &session, "").await;

    // Traffic samples come once a second, whatever else happens.
    let traffic = live.until("traffic", |e| e.kind == TRAFFIC).await;
    assert!(traffic.last().unwrap().traffic.is_some());

    let friend = peer_node().await;
    let friend_id = friend.local_peer_id().to_string();
    friend.connect(s.node_addr()).await.expect("connect");
    let seen = live
        .until("approval.requested", |e| e.kind == "approval.requested")
        .await;
    let approval = seen.last().unwrap();
    assert_eq!(approval.peer.as_deref(), Some(friend_id.as_str()));
    assert!(approval.text.contains("waits for approval"), "{approval:?}");
    // Sequence numbers increase by one, traffic included.
    assert!(
        seen.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "{seen:#?}"
    );

    // Approving opens the channel; the message sent meanwhile was held and
    // is delivered now.
    friend
        .send_message(s.node.as_ref().unwrap().network().local_peer_id(), "hi")
        .await
        .expect("send");
    terminal(&c, &s, &session, &format!("approve {}", &friend_id[..10]))
        .await
        .expect("approve");
    live.until("channel.opened", |e| e.kind == "channel.opened")
        .await;
    let message = live
        .until("message.received", |e| e.kind == "message.received")
        .await;
    assert!(
        message.last().unwrap().text.ends_with(": hi"),
        "{message:?}"
    );

    // A subscriber that comes later gets the kept events (not traffic).
    let mut late = Stream::open(&c, &s, &session, "").await;
    let replay = late
        .until("the approval, replayed", |e| e.seq == approval.seq)
        .await;
    assert!(replay.iter().all(|e| e.kind != TRAFFIC), "{replay:#?}");

    // A reconnecting one resumes after its cursor...
    let mut resumed = Stream::open(&c, &s, &session, &format!("?after={}", approval.seq)).await;
    let first = resumed.next().await.expect("an event");
    assert!(
        first.seq > approval.seq && first.kind != LAGGED,
        "{first:?}"
    );
    // ...also by the browser's Last-Event-ID header...
    let response = c
        .get(s.url("/api/live"))
        .header(header::COOKIE, &session.cookie)
        .header("last-event-id", approval.seq.to_string())
        .send()
        .await
        .expect("request");
    let mut by_header = Stream {
        response,
        pending: String::new(),
    };
    assert!(by_header.next().await.expect("an event").seq > approval.seq);
    // ...and one from another server run is told to start over.
    let mut stale = Stream::open(&c, &s, &session, "?after=999999999").await;
    assert_eq!(stale.next().await.expect("an event").kind, LAGGED);

    friend.shutdown().await;
    s.shutdown().await;
}

/// A client sends its request and then never reads: the server must
/// neither buffer the feed for it nor slow down for it. What it can still
/// read afterwards is bounded by the socket buffers and the feed's ring,
/// far below what was published, and it is told that it lagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_stays_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();
    let session = login(&c, &s).await;
    let feed = s.node.as_ref().unwrap().live().clone();

    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut stalled = socket.connect(s.addr).await.expect("connect");
    stalled
        .write_all(
            format!(
                "GET /api/live HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\n\r\n",
                s.addr, session.cookie
            )
            .as_bytes(),
        )
        .await
        .expect("request");
    let mut head = [0u8; 512];
    let n = stalled.read(&mut head).await.expect("response head");
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );
    let mut reader = Stream::open(&c, &s, &session, "").await;

    // About 45 MB of events, while the stalled client reads nothing.
    let text = "x".repeat(MAX_TEXT_CHARS);
    let events = 100_000;
    let mut published = 0usize;
    for i in 0..events {
        let event = note(format!("{i} {text}"));
        published += event.text.len() + 100;
        feed.publish(event);
        if i % 10_000 == 0 {
            assert!(feed.stats().queued <= CLIENT_BUFFER, "{:?}", feed.stats());
        }
    }
    let marker = feed.publish(note("the end".into()));

    // A reading client keeps up (it may lag: it is told, then goes on).
    let seen = reader.until("the marker", |e| e.seq == marker).await;
    assert!(seen.len() < events, "it was not sent the whole flood");
    assert!(seen.iter().any(|e| e.kind == LAGGED), "and it was told");
    // The server still answers.
    let health = c.get(s.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);
    assert!(feed.stats().queued <= CLIENT_BUFFER, "{:?}", feed.stats());

    // Now the stalled client reads everything it was sent, up to the marker.
    let mut received = Vec::new();
    let needle = format!("id: {marker}\n");
    tokio::time::timeout(WAIT, async {
        let mut buf = vec![0u8; 64 * 1024];
        while !String::from_utf8_lossy(&received).contains(&needle) {
            let n = stalled.read(&mut buf).await.expect("read");
            assert!(n > 0, "the stream ended early");
            received.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the stalled client reaches the marker");
    let received_text = String::from_utf8_lossy(&received);
    assert!(
        received.len() < published / 4,
        "held {} of {published} bytes for a client that did not read",
        received.len()
    );
    assert!(
        received_text.contains("\"kind\":\"lagged\""),
        "it is told it lagged"
    );
    drop(stalled);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_cap_answers_503_and_frees_slots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();
    let session = login(&c, &s).await;
    let feed = s.node.as_ref().unwrap().live().clone();

    let mut open = Vec::new();
    for _ in 0..MAX_STREAMS {
        open.push(Stream::open(&c, &s, &session, "").await);
    }
    let refused = request(&c, &s, &session, "").await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()[header::RETRY_AFTER], "5");
    let body: serde_json::Value = refused.json().await.expect("json");
    assert!(
        body["error"].as_str().unwrap_or_default().contains("open"),
        "{body}"
    );

    // A client that goes away frees its slot once the server writes to it.
    drop(open.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        feed.publish(note("wake the writers".into()));
        let r = request(&c, &s, &session, "").await;
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no slot was freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);
    s.shutdown().await;
}

#[tokio::test]
async fn a_request_without_a_session_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();
    let r = c.get(s.url("/api/live")).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(s.url("/api/live"))
        .header(header::COOKIE, "p2pnet_session=forged")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    s.shutdown().await;
}

#[tokio::test]
async fn without_a_node_there_is_no_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |raw| raw.node.enabled = false)).await;
    let c = client();
    let session = login(&c, &s).await;
    let r = request(&c, &s, &session, "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_end_when_the_server_shuts_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(dir.path(), |_| {})).await;
    let c = client();
    let session = login(&c, &s).await;
    let mut live = Stream::open(&c, &s, &session, "").await;
    live.until("traffic", |e| e.kind == TRAFFIC).await;
    // `shutdown` fails the test unless the server stops within 15 s, which
    // the graceful drain would not while a stream stayed open.
    let started = tokio::time::Instant::now();
    s.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    while let Some(event) = live.next().await {
        assert_eq!(event.kind, TRAFFIC, "only what was in flight");
    }
}
