//! Reading users from Django: `manage.py dumpdata auth.user` JSON, or a custom user model's with
//! the same `pk`, `username`, `password` and `is_active` fields. Only reads; the command line
//! writes what it reads through the store. Depends on `domain` and `passwords`.

use std::collections::HashMap;

use serde_json::Value;

use super::passwords;
use crate::domain::{User, UserId, Username};

/// One user read from a dumpdata file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Django's password hash, kept as it is until the user's first login here.
    pub user: User,
    /// Something the operator should know (a password that cannot log in), if any.
    pub note: Option<String>,
}

/// Every record of a dumpdata file, in order: a user, or why that record cannot be one. The file
/// itself must be a JSON array.
pub fn read_dumpdata(text: &str) -> Result<Vec<Result<Record, String>>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON ({e}); nothing imported"))?;
    let Value::Array(records) = value else {
        return Err(
            "not a dumpdata file: expected a JSON array of records; nothing imported".into(),
        );
    };
    let mut seen_ids: HashMap<UserId, usize> = HashMap::new();
    let mut seen_names: HashMap<String, usize> = HashMap::new();
    Ok(records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let record = read_record(record)?;
            let user = &record.user;
            if let Some(first) = seen_ids.get(&user.id) {
                return Err(format!("pk {} already read at record {first}", user.id));
            }
            if let Some(first) = seen_names.get(user.username.as_str()) {
                return Err(format!(
                    "username {:?} already read at record {first}",
                    user.username.as_str()
                ));
            }
            seen_ids.insert(user.id.clone(), i + 1);
            seen_names.insert(user.username.as_str().to_owned(), i + 1);
            Ok(record)
        })
        .collect())
}

fn read_record(record: &Value) -> Result<Record, String> {
    let pk = match record.get("pk") {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => UserId::parse(&n.to_string()),
        Some(Value::String(s)) => UserId::parse(s),
        None => return Err("no pk".into()),
        _ => None,
    }
    .ok_or("a pk that is not a usable id (1 to 64 of A-Z a-z 0-9 - _ . @ +)")?;
    let fields = record
        .get("fields")
        .and_then(Value::as_object)
        .ok_or("no fields object")?;
    let username = match fields.get("username") {
        Some(Value::String(s)) => Username::parse(s)
            .ok_or(format!("username {s:?} is not 1 to 150 visible characters"))?,
        _ => return Err("no username".into()),
    };
    let password = match fields.get("password") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err("no password (a string, Django's hash)".into()),
    };
    // A custom user model without the field is active, as Django's AbstractBaseUser is.
    let is_active = match fields.get("is_active") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("is_active is not true or false".into()),
    };
    let note = if password.is_empty() || password.starts_with('!') {
        Some("unusable password: cannot log in until `refreshd user passwd`".to_owned())
    } else if !passwords::is_usable(&password) {
        let kind = password.split('$').next().unwrap_or_default();
        Some(format!(
            "a {kind:?} password hash, which refreshd does not verify: cannot log in until `refreshd user passwd`"
        ))
    } else {
        None
    };
    Ok(Record {
        user: User {
            id: pk,
            username,
            password_hash: password,
            is_active,
        },
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_or_refused_one_by_one() {
        let text = r#"[
            {"model": "auth.user", "pk": 1, "fields": {"password": "pbkdf2_sha256$1$s$h",
             "username": "alice", "is_active": true, "email": "a@example.com"}},
            {"model": "auth.user", "pk": "2", "fields": {"password": "!x", "username": "bob",
             "is_active": false}},
            {"model": "accounts.user", "pk": "3f2a9c1e-0000-4000-8000-000000000000",
             "fields": {"password": "md5$s$h", "username": "carol"}},
            {"model": "auth.user", "fields": {"password": "", "username": "dave"}},
            {"model": "auth.user", "pk": 5, "fields": {"username": "erin"}},
            {"model": "auth.user", "pk": 1, "fields": {"password": "", "username": "frank"}},
            {"model": "auth.user", "pk": 7, "fields": {"password": "", "username": "alice"}},
            {"model": "auth.user", "pk": "a:b", "fields": {"password": "", "username": "x"}},
            "not a record"
        ]"#;
        let records = read_dumpdata(text).unwrap();
        assert_eq!(records.len(), 9);
        let alice = records[0].as_ref().unwrap();
        assert_eq!(alice.user.id.as_str(), "1");
        assert_eq!(alice.user.password_hash, "pbkdf2_sha256$1$s$h");
        assert!(alice.user.is_active && alice.note.is_none());
        let bob = records[1].as_ref().unwrap();
        assert!(!bob.user.is_active);
        assert!(bob.note.as_deref().unwrap().contains("unusable"));
        let carol = records[2].as_ref().unwrap();
        assert!(carol.user.is_active, "no is_active field: active");
        assert!(carol.note.as_deref().unwrap().contains("\"md5\""));
        for (i, why) in [
            (3, "no pk"),
            (4, "no password"),
            (5, "pk 1 already read at record 1"),
            (6, "username \"alice\" already read at record 1"),
            (7, "not a usable id"),
            (8, "no pk"),
        ] {
            let err = records[i].as_ref().unwrap_err();
            assert!(err.contains(why), "record {}: {err}", i + 1);
        }
        assert!(read_dumpdata("{}").is_err());
        assert!(read_dumpdata("[").is_err());
    }
}
