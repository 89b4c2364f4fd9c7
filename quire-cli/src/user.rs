//! `quire user`: accounts fixed by an operator against the database quire serves from, safe
//! while it serves. Passwords are read from standard input (never a flag: flags show in `ps`)
//! and hashed with the server's argon2 settings. Changes reach running instances' caches
//! through the store's admin changes (quire-store's `admin` module): a disabled user's tokens
//! are refused within half a second, everywhere.

use std::io::BufRead as _;

use quire_app::{
    PasswordHasher, PasswordHashing, encoded_change_of_everything, encoded_user_change,
};
use quire_domain::{Email, Password, Username};
use quire_store::DatabaseUrl;
use quire_store::admin::{self, Account, Admin};
use serde_json::json;

use crate::outcome::{Failure, print};
use crate::{Settings, UserCommand};

pub async fn run(settings: &Settings, command: &UserCommand) -> anyhow::Result<()> {
    let url = DatabaseUrl::parse(&settings.database)
        .map_err(|e| Failure::Invalid(format!("--database: {e}")))?;
    let mut admin = admin::open(&url).await.map_err(|e| match e {
        quire_store::StoreError::Config(message) => anyhow::Error::from(Failure::Invalid(message)),
        other => other.into(),
    })?;
    let now = now_millis();
    match command {
        UserCommand::List => {
            let accounts = admin.accounts().await?;
            print(
                settings.json,
                &json!({ "users": accounts.iter().map(account_json).collect::<Vec<_>>() }),
                || {
                    let mut out = format!(
                        "{:>6}  {:<20} {:<32} {:>8} {:>8}  state\n",
                        "id", "username", "email", "articles", "comments"
                    );
                    for a in &accounts {
                        out += &format!(
                            "{:>6}  {:<20} {:<32} {:>8} {:>8}  {}\n",
                            a.id,
                            a.username,
                            a.email,
                            a.articles,
                            a.comments,
                            if a.disabled { "disabled" } else { "active" }
                        );
                    }
                    out
                },
            );
        }
        UserCommand::Create { username, email } => {
            let username = Username::parse(username)
                .map_err(|e| Failure::Invalid(format!("--username: {e}")))?;
            let email =
                Email::parse(email).map_err(|e| Failure::Invalid(format!("--email: {e}")))?;
            let hash = hash_password(settings, read_password().await?).await?;
            let id = admin
                .create(username.as_str(), email.as_str(), &hash, now)
                .await
                .map_err(|e| match e {
                    quire_store::StoreError::Conflict(_) => anyhow::Error::from(Failure::Refused(
                        "that username or email is already taken".into(),
                    )),
                    other => other.into(),
                })?;
            let account = found(admin.as_mut(), username.as_str()).await?;
            debug_assert_eq!(account.id, id);
            report(settings, "created", &account);
        }
        UserCommand::SetPassword { user } => {
            let account = found(admin.as_mut(), user).await?;
            let hash = hash_password(settings, read_password().await?).await?;
            admin
                .set_password(
                    account.id,
                    &hash,
                    now,
                    &encoded_user_change(account.id, &account.username),
                )
                .await?;
            report(settings, "password changed for", &account);
        }
        UserCommand::Disable { user } | UserCommand::Enable { user } => {
            let disable = matches!(command, UserCommand::Disable { .. });
            let account = found(admin.as_mut(), user).await?;
            admin
                .set_disabled(
                    account.id,
                    disable.then_some(now),
                    now,
                    &encoded_user_change(account.id, &account.username),
                )
                .await?;
            let account = found(admin.as_mut(), user).await?;
            report(
                settings,
                if disable { "disabled" } else { "enabled" },
                &account,
            );
        }
        UserCommand::Delete {
            user,
            reassign_to,
            yes,
        } => {
            let account = found(admin.as_mut(), user).await?;
            let heir = match reassign_to {
                Some(name) => {
                    let heir = found(admin.as_mut(), name).await?;
                    if heir.id == account.id {
                        return Err(Failure::Invalid(
                            "--reassign-to names the user being deleted".into(),
                        )
                        .into());
                    }
                    Some(heir)
                }
                None => None,
            };
            if !yes {
                let what = match &heir {
                    Some(heir) => format!(
                        "their {} articles and {} comments would go to {}",
                        account.articles, account.comments, heir.username
                    ),
                    None => format!(
                        "with their {} articles and {} comments",
                        account.articles, account.comments
                    ),
                };
                return Err(Failure::Refused(format!(
                    "this deletes {} ({what}); run again with --yes to do it",
                    account.username
                ))
                .into());
            }
            let removed = admin
                .delete(
                    account.id,
                    heir.as_ref().map(|h| h.id),
                    now,
                    &encoded_change_of_everything(),
                )
                .await?;
            print(
                settings.json,
                &json!({
                    "deleted": account_json(&account),
                    "reassigned_to": heir.as_ref().map(|h| h.username.clone()),
                    "removed": {"articles": removed.articles, "comments": removed.comments, "media": removed.media},
                }),
                || match &heir {
                    Some(heir) => format!(
                        "deleted {}; their articles, comments and media now belong to {}",
                        account.username, heir.username
                    ),
                    None => format!(
                        "deleted {} with {} articles, {} comments and {} media items \
                         (their blobs are removed by `quire check --fix` once nothing names them)",
                        account.username, removed.articles, removed.comments, removed.media
                    ),
                },
            );
        }
    }
    Ok(())
}

/// The account `name` (a username or an email) names; none is a usage error (exit 2).
async fn found(admin: &mut dyn Admin, name: &str) -> anyhow::Result<Account> {
    admin.account(name).await?.ok_or_else(|| {
        Failure::Invalid(format!("no user with the username or email {name}")).into()
    })
}

fn account_json(a: &Account) -> serde_json::Value {
    json!({
        "id": a.id,
        "username": a.username,
        "email": a.email,
        "disabled": a.disabled,
        "created_at": a.created_at,
        "articles": a.articles,
        "comments": a.comments,
    })
}

fn report(settings: &Settings, done: &str, account: &Account) {
    print(
        settings.json,
        &json!({ "user": account_json(account) }),
        || {
            format!(
                "{done} {} <{}> (id {}, {})",
                account.username,
                account.email,
                account.id,
                if account.disabled {
                    "disabled"
                } else {
                    "active"
                }
            )
        },
    );
}

/// The new password: the first line of standard input (read on the blocking pool).
async fn read_password() -> anyhow::Result<Password> {
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await??;
    let line = line.trim_end_matches(['\r', '\n']);
    Password::parse(line)
        .map_err(|e| Failure::Invalid(format!("the password on standard input: {e}")).into())
}

async fn hash_password(settings: &Settings, password: Password) -> anyhow::Result<String> {
    let hasher = PasswordHasher::new(PasswordHashing {
        memory_kib: settings.argon2_memory_kib,
        iterations: settings.argon2_iterations,
        concurrency: 1,
        queue: 1,
    })?;
    Ok(hasher.hash(password).await?)
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
