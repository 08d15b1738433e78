//! The `user` commands: add, deactivate, activate, passwd, delete, list, sessions, logout-all and
//! import, run against the store the settings name (never the in-process one, which lives inside
//! a running server). Prompts and output are the command line's; the work is `auth`'s and the
//! store's.

use std::io::BufRead;

use clap::Subcommand;

use crate::auth;
use crate::config::Settings;
use crate::domain::{User, UserId, Username};
use crate::startup::open_store;
use crate::store::{Imported, Store, StoreError};

/// Said after each user command's own help: where its settings come from.
const USER_ENV_HELP: &str = "The store is the server's: REDIS_URL, REDIS_CLUSTER_NODES or \
REDIS_SENTINELS, with the rest of the settings, from the environment or a .env file in the working \
directory (real environment variables win).";

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user and print the new id. The password is asked for (not echoed) on a terminal,
    /// or read from standard input (one line).
    #[command(after_help = USER_ENV_HELP)]
    Add {
        username: String,
        /// Use this id (to mirror an existing user table) instead of a random UUID.
        #[arg(long)]
        id: Option<String>,
    },
    /// Stop a user from logging in or refreshing, at once: every session ends, and every token
    /// issued before (minted elsewhere included) stays refused.
    #[command(after_help = USER_ENV_HELP)]
    Deactivate { username: String },
    /// Let a deactivated user log in again (old sessions stay ended).
    #[command(after_help = USER_ENV_HELP)]
    Activate { username: String },
    /// Set a user's password: every session ends, and every token issued before stays refused.
    /// The password is asked for (not echoed) on a terminal, or read from standard input.
    #[command(after_help = USER_ENV_HELP)]
    Passwd { username: String },
    /// Delete a user: every session ends, and a token naming the id is refused as an invalid
    /// user.
    #[command(after_help = USER_ENV_HELP)]
    Delete { username: String },
    /// List every user: id, username, active or inactive, under a header line.
    #[command(after_help = USER_ENV_HELP)]
    List,
    /// List a user's live sessions.
    #[command(after_help = USER_ENV_HELP)]
    Sessions { username: String },
    /// End every session of a user at once.
    #[command(after_help = USER_ENV_HELP)]
    LogoutAll { username: String },
    /// Import users from Django: `manage.py dumpdata auth.user` JSON, or a custom user model's
    /// with pk, username, password and is_active. Ids and password hashes are kept (a hash is
    /// replaced by refreshd's own at the user's first login); a re-run updates the same users.
    /// A record that cannot be read is reported by its position (1 for the first) and skipped;
    /// exits 1 when any was.
    #[command(after_help = USER_ENV_HELP)]
    Import {
        /// The dumpdata JSON file (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        django: std::path::PathBuf,
    },
}

/// Runs one `user` command against the store the settings name.
pub async fn run(settings: Settings, cmd: UserCommand) -> Result<(), String> {
    if settings.store.is_in_process() {
        return Err("user commands need REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS: the in-process store lives inside a running server and cannot be changed from outside".into());
    }
    // Read before connecting: a file that cannot be read at all changes nothing.
    let import = match &cmd {
        UserCommand::Import { django } => Some(read_import(django)?),
        _ => None,
    };
    let store = open_store(&settings.store, None)
        .await
        .map_err(|e| e.to_string())?;
    let username = |raw: &str| {
        Username::parse(raw)
            .ok_or_else(|| format!("{raw:?} is not a valid username (1 to 150 visible characters)"))
    };
    match cmd {
        UserCommand::Add { username: raw, id } => {
            let name = username(&raw)?;
            let id = match id {
                Some(raw_id) => Some(UserId::parse(&raw_id).ok_or_else(|| {
                    format!("{raw_id:?} is not a valid id (1 to 64 of A-Z a-z 0-9 - _ . @ +)")
                })?),
                None => None,
            };
            let password = read_password(&raw)?;
            let user = auth::new_user(name, &password, id);
            store.add_user(&user).await.map_err(|e| match e {
                StoreError::UsernameTaken => format!("username {raw:?} is taken"),
                StoreError::IdTaken => format!("id {} is taken", user.id),
                other => other.to_string(),
            })?;
            println!("{}", user.id);
        }
        UserCommand::Deactivate { username: raw } => {
            let name = username(&raw)?;
            let user = find(&*store, &name).await?;
            let live = store
                .list_sessions(&user.id)
                .await
                .map_err(|e| e.to_string())?
                .len();
            set_active(&*store, &name, false).await?;
            println!("user {raw} deactivated; {live} sessions ended");
        }
        UserCommand::Activate { username: raw } => {
            set_active(&*store, &username(&raw)?, true).await?;
            println!("user {raw} activated");
        }
        UserCommand::Passwd { username: raw } => {
            let name = username(&raw)?;
            find(&*store, &name).await?;
            let password = read_password(&raw)?;
            let hash = auth::passwords::hash_password(&password);
            match store.set_password(&name, &hash).await {
                Ok(Some(ended)) => {
                    println!("password of {raw} changed; {ended} sessions ended")
                }
                Ok(None) => return Err(format!("no user named {raw:?}")),
                Err(e) => return Err(e.to_string()),
            }
        }
        UserCommand::Delete { username: raw } => match store.delete_user(&username(&raw)?).await {
            Ok(Some(ended)) => println!("user {raw} deleted; {ended} sessions ended"),
            Ok(None) => return Err(format!("no user named {raw:?}")),
            Err(e) => return Err(e.to_string()),
        },
        UserCommand::Sessions { username: raw } => {
            let user = find(&*store, &username(&raw)?).await?;
            for s in store
                .list_sessions(&user.id)
                .await
                .map_err(|e| e.to_string())?
            {
                let at = |ms: u64| {
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
                    )
                    .to_string()
                };
                let last = s.last_refreshed_ms.map(at).unwrap_or_else(|| "-".into());
                println!(
                    "{}\tcreated {}\tlast refreshed {last}\t{}\t{}",
                    s.id,
                    at(s.created_ms),
                    s.client_address,
                    s.user_agent
                );
            }
        }
        UserCommand::LogoutAll { username: raw } => {
            let user = find(&*store, &username(&raw)?).await?;
            let ended = store
                .end_all_sessions(&user.id)
                .await
                .map_err(|e| e.to_string())?;
            println!("{ended} sessions ended");
        }
        UserCommand::List => {
            println!("ID\tUSERNAME\tSTATE");
            for u in store.list_users().await.map_err(|e| e.to_string())? {
                let state = if u.is_active { "active" } else { "inactive" };
                println!("{}\t{}\t{state}", u.id, u.username);
            }
        }
        UserCommand::Import { .. } => {
            let records = import.expect("read above");
            return import_users(&*store, records).await;
        }
    }
    Ok(())
}

/// A password for `user add` and `user passwd`: asked for twice, without echo, on a terminal;
/// otherwise one line of standard input.
fn read_password(username: &str) -> Result<String, String> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {username}: "))
            .map_err(|e| format!("cannot read the password: {e}"))?;
        let again = rpassword::prompt_password("Again: ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        if first != again {
            return Err("the two passwords differ".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.trim().is_empty() {
        return Err("the password (read from standard input) is empty".into());
    }
    if password.trim() != password {
        // Logins trim both fields, as SimpleJWT's serializer does: such a password could never
        // be typed in.
        return Err(
            "the password starts or ends with whitespace, which logins trim: choose one without"
                .into(),
        );
    }
    Ok(password)
}

/// Reads a dumpdata file whole: every record, as a user or the reason it cannot be one.
fn read_import(
    path: &std::path::Path,
) -> Result<Vec<Result<auth::import::Record, String>>, String> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| format!("standard input: {e}"))?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
    };
    auth::import::read_dumpdata(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes every readable record (each whole or not at all) and reports the rest by position.
async fn import_users(
    store: &dyn Store,
    records: Vec<Result<auth::import::Record, String>>,
) -> Result<(), String> {
    let (mut created, mut updated, mut skipped) = (0, 0, 0);
    for (i, record) in records.into_iter().enumerate() {
        let position = i + 1;
        let record = match record {
            Ok(record) => record,
            Err(why) => {
                eprintln!("record {position}: skipped: {why}");
                skipped += 1;
                continue;
            }
        };
        let user = &record.user;
        match store.import_user(user).await {
            Ok(Imported::Created) => created += 1,
            Ok(Imported::Updated) => updated += 1,
            Err(StoreError::UsernameTaken) => {
                eprintln!(
                    "record {position}: skipped: username {:?} belongs to another id",
                    user.username.as_str()
                );
                skipped += 1;
                continue;
            }
            // The store failed: stop here; a re-run picks up where this one stopped.
            Err(e) => {
                println!(
                    "imported {created}, updated {updated}, skipped {skipped}; stopped at record {position}"
                );
                return Err(format!("record {position}: {e}"));
            }
        }
        if let Some(note) = &record.note {
            eprintln!("record {position} ({}): {note}", user.username.as_str());
        }
    }
    println!("imported {created}, updated {updated}, skipped {skipped}");
    if skipped > 0 {
        return Err(format!("{skipped} records skipped"));
    }
    Ok(())
}

async fn find(store: &dyn Store, name: &Username) -> Result<User, String> {
    match store.user_by_username(name).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(format!("no user named {:?}", name.as_str())),
        Err(e) => Err(e.to_string()),
    }
}

async fn set_active(store: &dyn Store, name: &Username, active: bool) -> Result<(), String> {
    match store.set_user_active(name, active).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("no user named {:?}", name.as_str())),
        Err(e) => Err(e.to_string()),
    }
}
