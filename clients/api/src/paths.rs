//! Where a profile's socket and data live (the contract's defaults), shared by the daemon
//! and every front end so they agree without talking.

use std::path::{Path, PathBuf};

/// The profile used when none is given: `$FASTCHAT_PROFILE`, else `default`.
#[must_use]
pub fn default_profile() -> String {
    std::env::var("FASTCHAT_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

/// Whether `profile` is usable as a file name: 1-64 of `A-Z a-z 0-9 _ - .`, not starting
/// with a dot.
#[must_use]
pub fn valid_profile(profile: &str) -> bool {
    (1..=64).contains(&profile.len())
        && !profile.starts_with('.')
        && profile
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// A profile as front ends take it (`--profile`, `FASTCHAT_PROFILE`): the name names files,
/// so a bad one is a usage error rather than a daemon that cannot start; an empty one means
/// the default, as it does for the daemon's paths.
///
/// # Errors
/// What a valid profile looks like, when `profile` is not one.
pub fn parse_profile(profile: &str) -> Result<String, String> {
    if profile.is_empty() {
        Ok(default_profile())
    } else if valid_profile(profile) {
        Ok(profile.to_owned())
    } else {
        Err("a profile is 1-64 letters, digits, `_`, `-` or `.`, not starting with `.`".into())
    }
}

/// The socket a front end talks to: `socket` (`--socket`) unless it is empty, else the
/// profile's default.
#[must_use]
pub fn socket_or_default(profile: &str, socket: Option<&Path>) -> PathBuf {
    socket
        .filter(|s| !s.as_os_str().is_empty())
        .map_or_else(|| socket_path(profile), Path::to_path_buf)
}

/// The folder of the daemons' sockets: `$XDG_RUNTIME_DIR/fastchat`, else
/// `/tmp/fastchat-<uid>` (the temporary folder elsewhere).
#[must_use]
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("fastchat"),
        None => std::env::temp_dir().join(format!("fastchat-{}", user_id())),
    }
}

/// The default socket of `profile`.
#[must_use]
pub fn socket_path(profile: &str) -> PathBuf {
    runtime_dir().join(format!("{profile}.sock"))
}

/// The default data folder of `profile`: `$XDG_DATA_HOME/fastchat/profiles/<profile>`.
#[must_use]
pub fn data_dir(profile: &str) -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("fastchat").join("profiles").join(profile)
}

/// The current user's id, which names the fallback socket folder.
#[cfg(unix)]
#[must_use]
pub fn user_id() -> u32 {
    rustix::process::getuid().as_raw()
}

#[cfg(not(unix))]
#[must_use]
pub fn user_id() -> String {
    std::env::var("USERNAME").unwrap_or_else(|_| "user".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_are_file_names() {
        assert!(valid_profile("alice"));
        assert!(valid_profile("work-2.test_x"));
        for bad in ["", ".hidden", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(!valid_profile(bad), "{bad:?} accepted");
        }
    }
}
