//! Images end to end: read in chunks, each sealed under the epoch key and uploaded with a
//! few in flight (so text messages on the same connection are not held up), then a small
//! signed envelope whose content is the [`Manifest`]; on the receiving side, each chunk is
//! fetched, checked against the manifest and decrypted into a temporary file that becomes
//! the image only once all of it verified. Memory stays at a few chunks either way.

use std::path::{Path, PathBuf};

use fastchat_crypto::attachment::{self, Manifest};
use fastchat_proto::{CHUNK_PLAINTEXT, FetchChunk, MAX_CHUNKS, UploadChunk, UploadId};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::images;

/// Chunks uploaded at once: enough to keep the link busy, few enough that a text message
/// queued behind them waits for about a megabyte at most.
const UPLOAD_WINDOW: usize = 4;

/// Reads until `buf` is full or the file ends; the count read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

impl Engine {
    pub async fn send_image(&self, to: ConversationRef, path: String) -> ApiResult<SendReceipt> {
        let (me, identity) = self.logged_in().await?;
        let source = PathBuf::from(&path);
        let unreadable =
            |e: std::io::Error| ApiError::invalid(format!("cannot read {}: {e}", source.display()));
        let mut file = tokio::fs::File::open(&source).await.map_err(unreadable)?;
        let size = file.metadata().await.map_err(unreadable)?.len();
        let max = self.0.config.max_image_bytes;
        if size > max {
            return Err(ApiError::invalid(format!(
                "{} has {size} bytes; images may have at most {max}",
                source.display()
            )));
        }
        let mut head = [0u8; 16];
        let n = read_full(&mut file, &mut head).await.map_err(unreadable)?;
        let media_type = images::sniff(&head[..n]).ok_or_else(|| {
            ApiError::invalid(format!(
                "{} is not a PNG, JPEG, GIF or WebP image",
                source.display()
            ))
        })?;
        file = tokio::fs::File::open(&source).await.map_err(unreadable)?;
        let file_name = images::sanitize(&source.file_name().unwrap_or_default().to_string_lossy());
        let total = u32::try_from(size.div_ceil(CHUNK_PLAINTEXT as u64))
            .ok()
            .filter(|t| *t <= MAX_CHUNKS)
            .ok_or_else(|| ApiError::invalid("the image is too large to send in chunks"))?;

        let link = self.connection(true).await?.link;
        let (conv, key) = self.target_and_key(&link, &me, &identity, &to).await?;

        let upload = UploadId(random_id()?.0);
        // The sender keeps its own copy too, so its history shows the image as sent.
        let dir = &self.0.config.images_dir;
        crate::fsutil::create_private_dir(dir).map_err(ApiError::internal)?;
        let own = dir.join(format!("{}-{file_name}", hex(&upload.0)));
        let partial = own.with_extension("part");
        let mut copy = tokio::fs::File::create(&partial)
            .await
            .map_err(ApiError::internal)?;
        let mut whole = sha2::Sha256::new();
        let mut hashes = Vec::new();
        let mut in_flight = FuturesOrdered::new();
        let mut buf = vec![0u8; CHUNK_PLAINTEXT];
        let mut read = 0u64;
        let interrupted = |e: LinkError| {
            if e.is_transient() {
                ApiError::unavailable(format!(
                    "the upload was interrupted ({e}); nothing was sent: send the image again"
                ))
            } else {
                // Refused for good (too large for this server, not a member, ...).
                ApiError::from(e)
            }
        };
        let result: ApiResult<()> = async {
            for index in 0..total {
                let n = read_full(&mut file, &mut buf).await.map_err(unreadable)?;
                read += n as u64;
                whole.update(&buf[..n]);
                copy.write_all(&buf[..n])
                    .await
                    .map_err(ApiError::internal)?;
                let sealed = key.seal_chunk(&buf[..n])?;
                hashes.push(attachment::sha256(&sealed));
                let link = link.clone();
                in_flight.push_back(async move {
                    link.request(UploadChunk {
                        conversation: conv.id,
                        upload,
                        index,
                        total,
                        bytes: Bytes::from(sealed),
                    })
                    .await
                });
                if in_flight.len() >= UPLOAD_WINDOW
                    && let Some(done) = in_flight.next().await
                {
                    done.map_err(interrupted)?;
                }
            }
            while let Some(done) = in_flight.next().await {
                done.map_err(interrupted)?;
            }
            if read != size {
                return Err(ApiError::invalid(format!(
                    "{} changed while it was being sent; nothing was sent",
                    source.display()
                )));
            }
            copy.sync_all().await.map_err(ApiError::internal)?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
        tokio::fs::rename(&partial, &own)
            .await
            .map_err(ApiError::internal)?;
        let _ = tokio::task::spawn_blocking({
            let own = own.clone();
            move || images::make_thumbnail(&own)
        })
        .await;

        let manifest = Manifest {
            upload: upload.0,
            size,
            chunks: hashes,
            sha256: whole.finalize().into(),
        };
        let id = random_id()?;
        let header = Header {
            conversation: conv.id,
            epoch: Epoch(conv.epoch),
            sender: me.clone(),
            client_msg_id: id,
            sent_at: Timestamp(now_ms()),
            kind: Kind::Image {
                media_type: media_type.to_owned(),
                file_name: file_name.clone(),
            },
        };
        let sealed = tokio::task::spawn_blocking(move || {
            envelope::seal(&identity, &key, header, &manifest.encode())
        })
        .await
        .map_err(ApiError::internal)??;
        self.queue_and_wait(Outgoing {
            client_msg_id: id,
            conversation: conv.id,
            envelope: sealed,
            kind: MessageKind::Image,
            body: Some(file_name),
            image_path: Some(own.to_string_lossy().into_owned()),
        })
        .await
    }

    /// Fetches, checks and decrypts the image a manifest describes into the images folder.
    /// The inner error says why the message is rejected; transport errors are returned (the
    /// message is then handled again after the reconnect).
    pub(super) async fn download(
        &self,
        link: &Link,
        conversation: ConversationId,
        key: &ConversationKey,
        manifest: &Manifest,
        file_name: &str,
    ) -> Result<Result<PathBuf, String>, LinkError> {
        if manifest.size > self.0.config.max_image_bytes {
            return Ok(Err(format!(
                "an image of {} bytes (this daemon accepts at most {})",
                manifest.size, self.0.config.max_image_bytes
            )));
        }
        let dir = &self.0.config.images_dir;
        if let Err(e) = crate::fsutil::create_private_dir(dir) {
            return Err(LinkError::Protocol(format!(
                "cannot create {}: {e}",
                dir.display()
            )));
        }
        let path = dir.join(format!(
            "{}-{}",
            hex(&manifest.upload),
            images::sanitize(file_name)
        ));
        if path.exists() {
            return Ok(Ok(path));
        }
        let partial = path.with_extension("part");
        let outcome = self
            .fetch_into(link, conversation, key, manifest, &partial)
            .await;
        match outcome {
            Ok(Ok(())) => {}
            other => {
                let _ = tokio::fs::remove_file(&partial).await;
                return other.map(|r| r.map(|()| path));
            }
        }
        if let Err(e) = tokio::fs::rename(&partial, &path).await {
            return Err(LinkError::Protocol(format!("cannot store the image: {e}")));
        }
        let thumb = tokio::task::spawn_blocking({
            let path = path.clone();
            move || images::make_thumbnail(&path)
        })
        .await;
        if let Ok(Err(e)) = thumb {
            tracing::warn!(image = %path.display(), error = %e, "cannot make a thumbnail");
        }
        Ok(Ok(path))
    }

    async fn fetch_into(
        &self,
        link: &Link,
        conversation: ConversationId,
        key: &ConversationKey,
        manifest: &Manifest,
        partial: &Path,
    ) -> Result<Result<(), String>, LinkError> {
        let local_error =
            |e: std::io::Error| LinkError::Protocol(format!("cannot write the image: {e}"));
        let mut out = tokio::fs::File::create(partial)
            .await
            .map_err(local_error)?;
        let mut whole = sha2::Sha256::new();
        let mut size = 0u64;
        for (index, _) in manifest.chunks.iter().enumerate() {
            let chunk = match link
                .request(FetchChunk {
                    conversation,
                    upload: UploadId(manifest.upload),
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                })
                .await
            {
                Ok(c) => c.bytes,
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => return Ok(Err(format!("chunk {index} of the image: {e}"))),
            };
            if let Err(e) = manifest.check_chunk(index, &chunk) {
                return Ok(Err(e.to_string()));
            }
            let plain = match key.open_chunk(&chunk) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e.to_string())),
            };
            size += plain.len() as u64;
            if size > manifest.size {
                return Ok(Err("the image is longer than its manifest says".into()));
            }
            whole.update(&plain);
            out.write_all(&plain).await.map_err(local_error)?;
        }
        let digest: [u8; 32] = whole.finalize().into();
        if size != manifest.size || digest != manifest.sha256 {
            return Ok(Err("the image does not match its manifest".into()));
        }
        out.sync_all().await.map_err(local_error)?;
        Ok(Ok(()))
    }
}
