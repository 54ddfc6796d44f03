-- The bootstrap server's registry (PostgreSQL): the last record each peer
-- announced, and a version that rises with every change, which becomes
-- the snapshot's sequence number (shared by every instance on one database).

-- record: the peer's self-signed record, its exact text.
-- seq, expires_at: copied out of the record (Unix seconds) for queries.
-- observed_ip: the address the announce came from.
CREATE TABLE bootstrap_peers (
    peer_id         TEXT    NOT NULL PRIMARY KEY,
    record          TEXT    NOT NULL,
    seq             BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    observed_ip     TEXT,
    announced_at_ms BIGINT NOT NULL
);
CREATE INDEX bootstrap_peers_expiry ON bootstrap_peers (expires_at);

-- peer_rows: rows in bootstrap_peers (expired ones until pruned), kept
-- here so the cap is checked without counting the table.
CREATE TABLE bootstrap_state (
    id        BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    version   BIGINT NOT NULL,
    peer_rows BIGINT NOT NULL
);
INSERT INTO bootstrap_state (id, version, peer_rows) VALUES (1, 0, 0);
