//! Image files: the type is told from the content (never the name), names are made safe
//! to use as file names, and receivers make a small thumbnail for the desktop app.

use std::path::{Path, PathBuf};

/// The largest image sent or accepted unless configured otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 25 * 1024 * 1024;

/// The longest side of a thumbnail, in pixels.
const THUMBNAIL_SIDE: u32 = 256;

/// The media type of an image, from its first bytes: PNG, JPEG, GIF or WebP.
#[must_use]
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// A file name safe to create in the images folder: no folders, no leading dots, only
/// letters, digits, `.`, `-` and `_` (others become `_`), at most 100 characters.
#[must_use]
pub fn sanitize(name: &str) -> String {
    // Whatever the sender's platform, only the last path component counts.
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut clean: String = last
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    while clean.starts_with('.') {
        clean.remove(0);
    }
    if clean.is_empty() {
        clean = "image".to_owned();
    }
    clean
}

/// Removes what interrupted transfers left (`*.part`); only this profile's daemon, which
/// holds the profile lock, writes in `dir`.
pub fn remove_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "part") {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(file = %path.display(), "removed an interrupted transfer"),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove an interrupted transfer")
                }
            }
        }
    }
}

/// Where the thumbnail of `image` goes.
#[must_use]
pub fn thumbnail_path(image: &Path) -> PathBuf {
    let mut name = image.file_name().unwrap_or_default().to_os_string();
    name.push(".thumb.png");
    image.with_file_name(name)
}

/// Makes the thumbnail of `image` (a PNG at most 256 pixels on its longest side). Decoding
/// is bounded, so a hostile image cannot exhaust memory.
///
/// # Errors
/// If the image cannot be read or decoded.
pub fn make_thumbnail(image: &Path) -> Result<PathBuf, image::ImageError> {
    let mut reader = image::ImageReader::open(image)?.with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let thumb = reader.decode()?.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    let path = thumbnail_path(image);
    thumb.save_with_format(&path, image::ImageFormat::Png)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_content() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a...."), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"hello, not an image"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn names_cannot_escape_the_images_folder() {
        assert_eq!(sanitize("cat.png"), "cat.png");
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(sanitize(".bashrc"), "bashrc");
        assert_eq!(sanitize("a b;c$(rm).png"), "a_b_c__rm_.png");
        assert_eq!(sanitize(".."), "image");
        assert_eq!(sanitize(""), "image");
        assert_eq!(sanitize(&"x".repeat(300)).len(), 100);
        assert_eq!(
            thumbnail_path(Path::new("/d/ab-cat.png")),
            Path::new("/d/ab-cat.png.thumb.png")
        );
    }
}
