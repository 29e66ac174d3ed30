-- FastChat server schema (SQLite). Envelopes and wrapped keys are opaque client ciphertext.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,            -- argon2id PHC string
    public_key    BLOB    NOT NULL,
    created_at    INTEGER NOT NULL             -- ms since the Unix epoch
);

-- Only a SHA-256 of each token is kept: a stolen database yields no usable session.
CREATE TABLE sessions (
    token_hash BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE conversations (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('group', 'direct')),
    name       TEXT    UNIQUE,                 -- groups only
    direct_key TEXT    UNIQUE,                 -- direct only: 'lowid:highid'
    created_by INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    -- The per-conversation counter: a send takes last_seq + 1 and writes it back in the
    -- same transaction, so sequence numbers are gap-free and in commit order.
    last_seq   INTEGER NOT NULL DEFAULT 0,
    CHECK ((kind = 'group') = (name IS NOT NULL)),
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL))
);

-- One row per stretch of membership. A member sees messages with
-- joined_after < seq <= left_after (left_after NULL while still a member).
CREATE TABLE memberships (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    user_id         INTEGER NOT NULL REFERENCES users (id),
    is_admin        INTEGER NOT NULL DEFAULT 0,
    joined_after    INTEGER NOT NULL,
    left_after      INTEGER
);
CREATE UNIQUE INDEX memberships_current
    ON memberships (conversation_id, user_id) WHERE left_after IS NULL;
CREATE INDEX memberships_user ON memberships (user_id, conversation_id);

CREATE TABLE messages (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL,
    sender_id       INTEGER NOT NULL REFERENCES users (id),
    client_msg_id   BLOB    NOT NULL,
    sent_at         INTEGER NOT NULL,
    envelope        BLOB    NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, sender_id, client_msg_id)
);

-- Every epoch of a conversation: who started it and their signature over the change.
CREATE TABLE epochs (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    epoch           INTEGER NOT NULL,
    changed_by      INTEGER NOT NULL REFERENCES users (id),
    proof           BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, epoch)
);

-- The epoch's conversation key, wrapped for each member of that epoch.
CREATE TABLE epoch_keys (
    conversation_id INTEGER NOT NULL,
    epoch           INTEGER NOT NULL,
    user_id         INTEGER NOT NULL REFERENCES users (id),
    wrapped         BLOB    NOT NULL,
    PRIMARY KEY (conversation_id, epoch, user_id),
    FOREIGN KEY (conversation_id, epoch) REFERENCES epochs (conversation_id, epoch)
);

-- How far each member has read each conversation.
CREATE TABLE acks (
    user_id         INTEGER NOT NULL REFERENCES users (id),
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
