//! Membership rules shared by every backend: what a group change may do, and what key
//! material must come with it. Pure functions; the backends call them inside their
//! transactions.

use std::collections::BTreeSet;

use fastchat_proto::{EpochMaterial, ErrorCode, MAX_MEMBERS};

use super::{StoreError, StoreResult};

/// A current member as the backends read it.
#[derive(Debug, Clone)]
pub struct CurrentMember {
    pub username: String,
    pub admin: bool,
}

/// Trims names and drops empty ones and repeats, keeping the first occurrence's order
/// (a CSV such as `"bob, carol,,bob"` is `[bob, carol]`).
#[must_use]
pub fn normalize(names: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty() && seen.insert(*n))
        .map(str::to_owned)
        .collect()
}

/// Checks a group change by `by` against the current members; returns the member set after
/// it (sorted).
///
/// # Errors
/// `NotAdmin` unless `by` is a current admin; `InvalidRequest` for an empty change, adding a
/// member, removing a non-member, a name in both lists, removing the last admin while others
/// stay, or more than `MAX_MEMBERS` members.
pub fn check_amend(
    current: &[CurrentMember],
    by: &str,
    add: &[String],
    remove: &[String],
) -> StoreResult<BTreeSet<String>> {
    if !current.iter().any(|m| m.username == by && m.admin) {
        return Err(StoreError::refused(
            ErrorCode::NotAdmin,
            "only a group admin can amend it",
        ));
    }
    if add.is_empty() && remove.is_empty() {
        return Err(StoreError::refused(
            ErrorCode::InvalidRequest,
            "nothing to add or remove",
        ));
    }
    let mut members: BTreeSet<String> = current.iter().map(|m| m.username.clone()).collect();
    for name in remove {
        if add.contains(name) {
            return Err(StoreError::refused(
                ErrorCode::InvalidRequest,
                format!("{name} is both added and removed"),
            ));
        }
        if !members.remove(name) {
            return Err(StoreError::refused(
                ErrorCode::InvalidRequest,
                format!("{name} is not a member"),
            ));
        }
    }
    for name in add {
        if !members.insert(name.clone()) {
            return Err(StoreError::refused(
                ErrorCode::InvalidRequest,
                format!("{name} is already a member"),
            ));
        }
    }
    let admins_left = current
        .iter()
        .filter(|m| m.admin && members.contains(&m.username))
        .count();
    if admins_left == 0 && !members.is_empty() {
        return Err(StoreError::refused(
            ErrorCode::InvalidRequest,
            "cannot remove the group's last admin while other members stay",
        ));
    }
    check_size(members.len())?;
    Ok(members)
}

/// # Errors
/// `InvalidRequest` for more than `MAX_MEMBERS` members.
pub fn check_size(members: usize) -> StoreResult<()> {
    if members > MAX_MEMBERS {
        return Err(StoreError::refused(
            ErrorCode::InvalidRequest,
            format!("a conversation has at most {MAX_MEMBERS} members, not {members}"),
        ));
    }
    Ok(())
}

/// Wrapped keys are optional, but when present they must be one per member of the new epoch.
///
/// # Errors
/// `KeysDoNotMatchMembers` otherwise.
pub fn check_keys(material: &EpochMaterial, members: &BTreeSet<String>) -> StoreResult<()> {
    if material.keys.is_empty() {
        return Ok(());
    }
    let named: BTreeSet<&str> = material.keys.iter().map(|k| k.username.as_str()).collect();
    let expected: BTreeSet<&str> = members.iter().map(String::as_str).collect();
    if named.len() != material.keys.len() || named != expected {
        return Err(StoreError::refused(
            ErrorCode::KeysDoNotMatchMembers,
            "wrapped keys must name each member of the new epoch exactly once",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use fastchat_proto::WrappedKey;

    use super::*;

    fn members(spec: &[(&str, bool)]) -> Vec<CurrentMember> {
        spec.iter()
            .map(|(n, a)| CurrentMember {
                username: (*n).into(),
                admin: *a,
            })
            .collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn code(r: StoreResult<BTreeSet<String>>) -> ErrorCode {
        match r {
            Err(StoreError::Refused(body)) => body.code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn csv_names_are_trimmed_and_deduplicated() {
        assert_eq!(
            normalize(&names(&[" bob", "carol ", "", "bob"])),
            names(&["bob", "carol"])
        );
    }

    #[test]
    fn admins_add_and_remove() {
        let cur = members(&[("alice", true), ("bob", false)]);
        let after =
            check_amend(&cur, "alice", &names(&["carol"]), &names(&["bob"])).expect("allowed");
        assert_eq!(
            after.into_iter().collect::<Vec<_>>(),
            names(&["alice", "carol"])
        );
    }

    #[test]
    fn refusals() {
        let cur = members(&[("alice", true), ("bob", false)]);
        assert_eq!(
            code(check_amend(&cur, "bob", &names(&["carol"]), &[])),
            ErrorCode::NotAdmin
        );
        assert_eq!(
            code(check_amend(&cur, "mallory", &[], &names(&["bob"]))),
            ErrorCode::NotAdmin
        );
        assert_eq!(
            code(check_amend(&cur, "alice", &[], &[])),
            ErrorCode::InvalidRequest
        );
        for (add, remove) in [
            (vec!["bob"], vec![]),
            (vec![], vec!["carol"]),
            (vec!["x"], vec!["x"]),
        ] {
            assert_eq!(
                code(check_amend(&cur, "alice", &names(&add), &names(&remove))),
                ErrorCode::InvalidRequest
            );
        }
        assert_eq!(
            code(check_amend(&cur, "alice", &[], &names(&["alice"]))),
            ErrorCode::InvalidRequest,
            "the last admin cannot leave others behind"
        );
        let everyone_leaves = check_amend(&cur, "alice", &[], &names(&["alice", "bob"]));
        assert!(everyone_leaves.expect("allowed").is_empty());
    }

    #[test]
    fn keys_must_match_the_new_members() {
        let m: BTreeSet<String> = names(&["alice", "bob"]).into_iter().collect();
        let key = |n: &str| WrappedKey {
            username: n.into(),
            wrapped: Bytes::from_static(b"k"),
        };
        let with = |keys| EpochMaterial {
            keys,
            proof: Bytes::new(),
        };
        assert!(check_keys(&with(vec![]), &m).is_ok());
        assert!(check_keys(&with(vec![key("alice"), key("bob")]), &m).is_ok());
        assert!(check_keys(&with(vec![key("alice")]), &m).is_err());
        assert!(check_keys(&with(vec![key("alice"), key("alice"), key("bob")]), &m).is_err());
        assert!(check_keys(&with(vec![key("alice"), key("eve")]), &m).is_err());
    }
}
