-- Encrypted chunks of attachments (images): opaque to the server, fetched by the
-- conversation's members. A resend of a chunk is stored once.
CREATE TABLE chunks (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    upload_id       BLOB    NOT NULL,
    idx             INTEGER NOT NULL,
    total           INTEGER NOT NULL,
    uploader_id     INTEGER NOT NULL REFERENCES users (id),
    bytes           BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, upload_id, idx)
);
