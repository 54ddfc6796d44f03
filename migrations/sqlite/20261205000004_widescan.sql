-- Widescan jobs and what they found (SQLite).

-- spec: the validated request as JSON (prefixes, excludes, rates,
-- hardware, transport, seed, shard, contact, ...); range_start,
-- range_end and checkpoint are scan indices in decimal text (they may
-- exceed 64 bits). checkpoint: the first index not yet handed to the
-- kernel; a resumed run starts there. state: running | stopping |
-- stopped | interrupted | completed | failed. The counters add up every
-- run of the job (send_ms: time spent sending); hits and peers count the
-- stored results.
CREATE TABLE scan_jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at_ms     INTEGER NOT NULL,
    created_by        TEXT    NOT NULL,
    spec              TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    error             TEXT,
    range_start       TEXT    NOT NULL,
    range_end         TEXT    NOT NULL,
    checkpoint        TEXT    NOT NULL,
    sent              INTEGER NOT NULL DEFAULT 0,
    received          INTEGER NOT NULL DEFAULT 0,
    send_errors       INTEGER NOT NULL DEFAULT 0,
    send_ms           INTEGER NOT NULL DEFAULT 0,
    hits              INTEGER NOT NULL DEFAULT 0,
    peers             INTEGER NOT NULL DEFAULT 0,
    results_dropped   INTEGER NOT NULL DEFAULT 0,
    runs              INTEGER NOT NULL DEFAULT 0,
    adapter           TEXT    NOT NULL DEFAULT '',
    generated_per_sec INTEGER NOT NULL DEFAULT 0,
    updated_at_ms     INTEGER NOT NULL
);
CREATE INDEX scan_jobs_state ON scan_jobs (state);

-- kind: 'hit' | 'peer'; instance_id: 16 hex digits for a peer, '' for a
-- hit. One row per distinct finding, whatever the runs.
CREATE TABLE scan_results (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      INTEGER NOT NULL REFERENCES scan_jobs (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    addr        TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    port        INTEGER NOT NULL,
    contact     TEXT    NOT NULL,
    via         TEXT    NOT NULL,
    at_ms       INTEGER NOT NULL,
    UNIQUE (job_id, kind, addr, instance_id)
);
