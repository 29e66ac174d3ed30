//! The rules for names and passwords, shared by the server (which enforces them) and the
//! clients (which check early to give a better message).

/// Usernames: 3 to 32 characters, lowercase ASCII letters, digits, `_`, `-` and `.`, starting
/// with a letter. Lowercase only, so that `Alice` and `alice` can never be two people.
///
/// # Errors
/// A sentence saying which rule the name breaks.
pub fn username(name: &str) -> Result<(), String> {
    if !(3..=32).contains(&name.len()) {
        return Err(format!(
            "username must be 3 to 32 characters long, not {}",
            name.len()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("username must start with a lowercase letter".into());
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c)))
    {
        return Err(format!(
            "username may hold only a-z, 0-9, '_', '-' and '.', not {c:?}"
        ));
    }
    Ok(())
}

/// Passwords: 8 to 1024 bytes. The upper bound keeps hashing cost bounded.
///
/// # Errors
/// A sentence saying which rule the password breaks.
pub fn password(password: &str) -> Result<(), String> {
    match password.len() {
        0..8 => Err("password must be at least 8 characters long".into()),
        8..=1024 => Ok(()),
        _ => Err("password must be at most 1024 bytes long".into()),
    }
}

/// Group names: 1 to 64 characters, no control characters, no leading or trailing spaces.
/// A comma is not allowed because member lists are written as comma-separated names.
///
/// # Errors
/// A sentence saying which rule the name breaks.
pub fn group_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if !(1..=64).contains(&chars) {
        return Err(format!(
            "group name must be 1 to 64 characters long, not {chars}"
        ));
    }
    if name.trim() != name {
        return Err("group name must not start or end with spaces".into());
    }
    if let Some(c) = name.chars().find(|&c| c.is_control() || c == ',') {
        return Err(format!("group name must not contain {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["alice", "bob_2", "c.d-e", "abc", &"a".repeat(32)] {
            assert_eq!(username(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "Alice",
            "1abc",
            "_abc",
            "al ice",
            "álice",
            "a/b",
            &"a".repeat(33),
        ] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(password("short").is_err());
        assert!(password("longenough").is_ok());
        assert!(password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn group_names() {
        for ok in ["team", "Team Rocket", "écrivains", "a"] {
            assert_eq!(group_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", " team", "team ", "a,b", "tab\there", &"g".repeat(65)] {
            assert!(group_name(bad).is_err(), "{bad}");
        }
    }
}
