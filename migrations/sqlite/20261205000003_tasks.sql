-- Network tasks, heartbeats and the signing history (SQLite).

-- The last heartbeat each registered peer sent (Unix ms; a newer one is
-- required each time) and the last task it said it applied.
ALTER TABLE bootstrap_peers ADD COLUMN last_heartbeat_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bootstrap_peers ADD COLUMN acked_task INTEGER NOT NULL DEFAULT 0;

-- task_seq numbers the tasks; history_len and history_head are the
-- signing history's length and the hash of its last entry.
ALTER TABLE bootstrap_state ADD COLUMN task_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bootstrap_state ADD COLUMN history_len INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bootstrap_state ADD COLUMN history_head TEXT NOT NULL DEFAULT '';

-- target: '*' or a peer id; task: the exact signed text.
CREATE TABLE bootstrap_tasks (
    seq          INTEGER NOT NULL PRIMARY KEY,
    target       TEXT    NOT NULL,
    task         TEXT    NOT NULL,
    signature    TEXT    NOT NULL,
    expires_at   INTEGER NOT NULL,
    queued_by    TEXT    NOT NULL,
    queued_at_ms INTEGER NOT NULL
);
CREATE INDEX bootstrap_tasks_target ON bootstrap_tasks (target, seq);

-- Every signature the authority issued, append-only and hash-chained:
-- entry_hash covers prev_hash and this entry, so no entry can be changed
-- or removed without breaking every later hash.
-- kind: 'snapshot' | 'task'; digest: SHA-256 (hex) of the signed bytes;
-- signature_digest: SHA-256 of the armored signature without whitespace,
-- to answer "was this signature issued here?".
CREATE TABLE signing_history (
    seq         INTEGER NOT NULL PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    signature   TEXT    NOT NULL,
    signature_digest TEXT NOT NULL,
    prev_hash   TEXT    NOT NULL,
    entry_hash  TEXT    NOT NULL
);
CREATE INDEX signing_history_digest ON signing_history (digest);
CREATE INDEX signing_history_signature ON signing_history (signature_digest);
