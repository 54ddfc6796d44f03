//! Prints `COUNT` valid announce bodies (`{"record": …}`), one per line,
//! each from its own identity: the load campaign (scripts/load.sh) cycles
//! through them, since its load generator cannot sign.
//!
//! ```text
//! announce_bodies 2000 > bodies.jsonl
//! ```

use std::io::Write;

use anyhow::Context;
use p2pnet::proto::{
    Keypair,
    record::{PeerRecord, SignedRecord},
};

fn main() -> anyhow::Result<()> {
    let count: u32 = std::env::args()
        .nth(1)
        .context("usage: announce_bodies COUNT")?
        .parse()
        .context("COUNT is a number")?;
    let now = server::bootstrap::unix_now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..count {
        let mut seed = [7u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        let keys = Keypair::from_seed(&seed);
        let record = SignedRecord::sign(
            PeerRecord {
                peer: keys.peer_id(),
                network: "p2pnet".into(),
                seq: 1,
                issued_at: now,
                expires_at: now + 3600,
                addresses: vec![format!("127.0.0.1:{}", 10_000 + i % 50_000).parse()?],
            },
            &keys,
        )?;
        writeln!(out, "{}", serde_json::json!({ "record": record.as_str() }))?;
    }
    Ok(())
}
