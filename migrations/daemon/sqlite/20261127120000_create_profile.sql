-- The daemon's local store for one profile: the account's session, pinned keys,
-- conversations with their cursors, decrypted history, and the outbox of unacked sends.

-- At most one row: the account this profile is logged in as.
CREATE TABLE account (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    username TEXT    NOT NULL,
    -- The server session token; NULL once logged out.
    token    BLOB
);

-- Trust on first use: the key first seen for each user.
CREATE TABLE pins (
    username    TEXT    PRIMARY KEY,
    public_key  BLOB    NOT NULL,
    fingerprint BLOB    NOT NULL,
    verified    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE conversations (
    id       INTEGER PRIMARY KEY,          -- the server's conversation id
    kind     TEXT    NOT NULL CHECK (kind IN ('group', 'direct')),
    -- The group's name, or for a direct conversation the other member's username.
    name     TEXT    NOT NULL,
    epoch    INTEGER NOT NULL,
    members  TEXT    NOT NULL,             -- JSON: [{"username", "admin"}]
    last_seq INTEGER NOT NULL DEFAULT 0,   -- the newest seq the server reported
    received INTEGER NOT NULL DEFAULT 0,   -- every message up to here is stored here
    read_seq INTEGER NOT NULL DEFAULT 0,   -- read up to here
    current  INTEGER NOT NULL DEFAULT 1,   -- still a member
    -- The newest membership statement accepted (signed by an admin), postcard-encoded:
    -- the next epoch must follow from it, across restarts.
    chain    BLOB
);
CREATE UNIQUE INDEX conversations_by_name ON conversations (kind, name);

CREATE TABLE messages (
    conversation  INTEGER NOT NULL REFERENCES conversations (id),
    seq           INTEGER NOT NULL,
    sender        TEXT    NOT NULL,
    client_msg_id BLOB    NOT NULL,
    sent_at       INTEGER NOT NULL,        -- ms since the Unix epoch, the server's clock
    kind          TEXT    NOT NULL CHECK (kind IN ('text', 'image')),
    body          TEXT,
    image_path    TEXT,
    PRIMARY KEY (conversation, seq)
);
-- A replayed envelope (same sender and message id) is shown once.
CREATE UNIQUE INDEX messages_once ON messages (conversation, sender, client_msg_id);

-- Envelopes received while the identity key was locked (after a restart, before login);
-- opened and moved to `messages` once it is unlocked.
CREATE TABLE sealed (
    conversation  INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    sender        TEXT    NOT NULL,
    client_msg_id BLOB    NOT NULL,
    sent_at       INTEGER NOT NULL,
    envelope      BLOB    NOT NULL,
    PRIMARY KEY (conversation, seq)
);

-- Envelopes that failed verification or decryption: kept as evidence, never shown as text.
CREATE TABLE rejected (
    conversation INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    sender       TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    PRIMARY KEY (conversation, seq)
);

-- Sealed sends not yet acknowledged by a server, resent (same id) until they are.
CREATE TABLE outbox (
    position      INTEGER PRIMARY KEY AUTOINCREMENT,
    client_msg_id BLOB    NOT NULL UNIQUE,
    conversation  INTEGER NOT NULL,
    envelope      BLOB    NOT NULL,
    kind          TEXT    NOT NULL,
    body          TEXT,
    image_path    TEXT
);
