//! Scan jobs over HTTP without a network: the downloads, the terminal's
//! refusals and the panel's view, over findings written to the store.

use crate::common::server::{Running, client, config, login, terminal};
use reqwest::{StatusCode, header};
use server::store::{NewAudit, NewScanJob, ScanResultRecord};

async fn job_with_findings(s: &Running, findings: usize) -> i64 {
    let id = s
        .store
        .create_scan_job(
            &NewScanJob {
                created_at_ms: 1,
                created_by: "admin".into(),
                spec: "{}".into(),
                range_start: "0".into(),
                range_end: "100000".into(),
            },
            &NewAudit {
                at_ms: 1,
                actor: "admin".into(),
                action: "widescan.start".into(),
                detail: String::new(),
            },
        )
        .await
        .expect("job");
    let rows: Vec<ScanResultRecord> = (0..findings)
        .map(|i| ScanResultRecord {
            id: 0,
            kind: if i == 0 { "peer" } else { "hit" }.into(),
            addr: format!("2a00::{i:x}"),
            instance_id: if i == 0 {
                "00000000000000aa".into()
            } else {
                String::new()
            },
            port: if i == 0 { 4000 } else { 0 },
            contact: if i == 0 {
                "=cmd|' /C calc'!A0".into()
            } else {
                String::new()
            },
            via: if i == 0 {
                "answer".into()
            } else {
                String::new()
            },
            at_ms: 5,
        })
        .collect();
    s.store
        .store_scan_results(id, &rows, 1_000_000)
        .await
        .expect("findings");
    id
}

#[tokio::test]
async fn results_download_as_csv_and_ndjson_behind_the_session() {
    let data = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(data.path(), |_| {})).await;
    let c = client();
    // More than one page of the store (1000 rows a page).
    let id = job_with_findings(&s, 2500).await;
    let path = format!("/api/v1/widescan/jobs/{id}/results.csv");

    let anonymous = c.get(s.url(&path)).send().await.expect("get");
    assert_eq!(
        anonymous.status(),
        StatusCode::UNAUTHORIZED,
        "a session is needed"
    );

    let session = login(&c, &s).await;
    let get = |path: String| {
        let c = c.clone();
        let cookie = session.cookie.clone();
        let url = s.url(&path);
        async move {
            c.get(url)
                .header(header::COOKIE, cookie)
                .header(header::ACCEPT_ENCODING, "gzip")
                .send()
                .await
                .expect("get")
        }
    };
    let csv = get(path).await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(
        csv.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    assert!(
        csv.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .expect("ascii")
            .contains(&format!("scan-{id}-results.csv"))
    );
    // Compressed as it streams (the page asks for gzip).
    assert_eq!(csv.headers()[header::CONTENT_ENCODING], "gzip");
    let gz = csv.bytes().await.expect("body");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
        .expect("gzip");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        2501,
        "a header and every finding, across pages"
    );
    assert_eq!(lines[0], "job,kind,addr,instance_id,port,contact,via,at_ms");
    assert_eq!(
        lines[1],
        format!("{id},peer,2a00::0,00000000000000aa,4000,'=cmd|' /C calc'!A0,answer,5"),
        "a formula from the network is defused"
    );
    assert!(lines[2500].starts_with(&format!("{id},hit,2a00::9c3,")));

    let ndjson = get(format!("/api/v1/widescan/jobs/{id}/results.ndjson")).await;
    assert_eq!(ndjson.status(), StatusCode::OK);
    assert_eq!(
        ndjson.headers()[header::CONTENT_TYPE],
        "application/x-ndjson"
    );
    let gz = ndjson.bytes().await.expect("body");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
        .expect("gzip");
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one object a line"))
        .collect();
    assert_eq!(objects.len(), 2500);
    assert_eq!(objects[0]["kind"], "peer");
    assert_eq!(objects[0]["job"], id);

    for (path, status) in [
        (
            format!("/api/v1/widescan/jobs/{id}/results.xml"),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/widescan/jobs/999/results.csv".into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/widescan/jobs/x/results.csv".into(),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(get(path.clone()).await.status(), status, "{path}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn the_terminal_refuses_bad_scans_by_field_and_stores_nothing() {
    let data = tempfile::tempdir().expect("tempdir");
    let s = Running::start(config(data.path(), |_| {})).await;
    let c = client();
    let session = login(&c, &s).await;
    for (line, expected) in [
        (
            "scan start -p 2001:db8::/64",
            "prefixes: prefix 2001:db8::/64 refused",
        ),
        ("scan start -p fd00:5ca7::/120", "test_mode"),
        (
            "scan start -p 2a00:1450:4001::/120 --rate 0",
            "rate: must be at least 1",
        ),
        (
            "scan start -p 2a00:1450:4001::/120 --rate 99999999999",
            "rate:",
        ),
        (
            "scan start -p 2a00:1450:4001::/120 --hardware tpu",
            "hardware: must be auto, gpu or cpu",
        ),
        (
            "scan start -p 2a00:1450:4001::/128 -x 2a00:1450:4001::/120",
            "no targets",
        ),
        ("scan start -p nonsense", "prefixes: invalid prefix"),
        ("scan start --rate 5", "prefixes: give at least one prefix"),
        ("scan stop 7", "no scan job 7"),
        ("scan resume 7", "no scan job 7"),
        ("scan launch", "`scan` takes"),
    ] {
        let err = terminal(&c, &s, &session, line).await.expect_err(line);
        assert!(err.contains(expected), "{line}: {err}");
    }
    assert!(
        s.store.scan_jobs(10).await.expect("jobs").is_empty(),
        "nothing stored"
    );
    let listed = terminal(&c, &s, &session, "scan list").await.expect("list");
    assert!(listed[0].contains("no scan jobs"), "{listed:?}");
    s.shutdown().await;
}
