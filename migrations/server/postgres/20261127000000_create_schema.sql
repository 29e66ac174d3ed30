-- FastChat server schema (PostgreSQL). Envelopes and wrapped keys are opaque client ciphertext.
-- The same tables as the SQLite schema, in PostgreSQL's types.

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT   NOT NULL UNIQUE,
    password_hash TEXT   NOT NULL,            -- argon2id PHC string
    public_key    BYTEA  NOT NULL,
    created_at    BIGINT NOT NULL             -- ms since the Unix epoch
);

-- Only a SHA-256 of each token is kept: a stolen database yields no usable session.
CREATE TABLE sessions (
    token_hash BYTEA  PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE conversations (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT   NOT NULL CHECK (kind IN ('group', 'direct')),
    name       TEXT   UNIQUE,                 -- groups only
    direct_key TEXT   UNIQUE,                 -- direct only: 'lowid:highid'
    created_by BIGINT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    epoch      BIGINT NOT NULL,
    -- The per-conversation counter. Appends lock this row (SELECT ... FOR UPDATE) and write
    -- it back in the same transaction, so concurrent senders on different servers are
    -- serialised and sequence numbers are gap-free and in commit order. (A BIGSERIAL would
    -- not be: a later value can commit first, and a reader's cursor would skip the earlier.)
    last_seq   BIGINT NOT NULL DEFAULT 0,
    CHECK ((kind = 'group') = (name IS NOT NULL)),
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL))
);

-- One row per stretch of membership. A member sees messages with
-- joined_after < seq <= left_after (left_after NULL while still a member).
CREATE TABLE memberships (
    id              BIGSERIAL PRIMARY KEY,
    conversation_id BIGINT  NOT NULL REFERENCES conversations (id),
    user_id         BIGINT  NOT NULL REFERENCES users (id),
    is_admin        BOOLEAN NOT NULL DEFAULT FALSE,
    joined_after    BIGINT  NOT NULL,
    left_after      BIGINT
);
CREATE UNIQUE INDEX memberships_current
    ON memberships (conversation_id, user_id) WHERE left_after IS NULL;
CREATE INDEX memberships_user ON memberships (user_id, conversation_id);

CREATE TABLE messages (
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    seq             BIGINT NOT NULL,
    sender_id       BIGINT NOT NULL REFERENCES users (id),
    client_msg_id   BYTEA  NOT NULL,
    sent_at         BIGINT NOT NULL,
    envelope        BYTEA  NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, sender_id, client_msg_id)
);

CREATE TABLE epochs (
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    epoch           BIGINT NOT NULL,
    changed_by      BIGINT NOT NULL REFERENCES users (id),
    proof           BYTEA  NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, epoch)
);

CREATE TABLE epoch_keys (
    conversation_id BIGINT NOT NULL,
    epoch           BIGINT NOT NULL,
    user_id         BIGINT NOT NULL REFERENCES users (id),
    wrapped         BYTEA  NOT NULL,
    PRIMARY KEY (conversation_id, epoch, user_id),
    FOREIGN KEY (conversation_id, epoch) REFERENCES epochs (conversation_id, epoch)
);

CREATE TABLE acks (
    user_id         BIGINT NOT NULL REFERENCES users (id),
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    seq             BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
