-- The embedded node's persistent state (SQLite): what the administrator
-- decided about peers, their grants, and the access list.

-- proven: the addresses a connection or the administrator proved (JSON array).
-- decision: 'undecided' | 'approved' | 'rejected'.
-- grants: a JSON array of grants (id, scopes, cap, expiry, who, when).
ALTER TABLE known_peers ADD COLUMN proven     TEXT    NOT NULL DEFAULT '[]';
ALTER TABLE known_peers ADD COLUMN decision   TEXT    NOT NULL DEFAULT 'undecided';
ALTER TABLE known_peers ADD COLUMN persistent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE known_peers ADD COLUMN grants     TEXT    NOT NULL DEFAULT '[]';

-- kind: 'block' | 'allow'; target: a peer id or a network (CIDR).
CREATE TABLE access_list (
    kind          TEXT    NOT NULL,
    target        TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, target)
);
