//! Registration, login, the current user and its settings.

use quire_domain::{Bio, Email, FieldError, FieldErrors, ImageUrl, Password, UserId, Username};
use quire_store::{NewUser, UserChanges, UserRecord};

use crate::cache::Invalidation;
use crate::{
    App, AppError, AppResult, AuthFailure, LoginInput, NewUserInput, SignedInUser, UpdateUserInput,
    Viewer,
};

/// Parses a required field, recording "can't be blank" when it is absent.
fn required<T>(
    errors: &mut FieldErrors,
    field: &'static str,
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, FieldError>,
) -> Option<T> {
    match raw {
        None => {
            errors.push(FieldError::blank(field));
            None
        }
        Some(raw) => errors.check(parse(raw)),
    }
}

impl App {
    /// Creates an account and signs it in.
    pub async fn register(&self, input: NewUserInput) -> AppResult<SignedInUser> {
        let mut errors = FieldErrors::new();
        let username = required(
            &mut errors,
            "username",
            input.username.as_deref(),
            Username::parse,
        );
        let email = required(&mut errors, "email", input.email.as_deref(), Email::parse);
        let password = required(
            &mut errors,
            "password",
            input.password.as_deref(),
            Password::parse,
        );
        let (Some(username), Some(email), Some(password)) = (username, email, password) else {
            return Err(errors.into());
        };
        let password_hash = self.passwords.hash(password).await?;
        let user = self
            .store
            .create_user(NewUser {
                username,
                email,
                password_hash,
            })
            .await?;
        // A lookup of this name before it existed may be cached as absent.
        self.forget(&[Invalidation::user(user.id, &[&user.username])])
            .await?;
        let token = self.tokens.issue(user.id)?;
        Ok(SignedInUser { user, token })
    }

    /// Signs in with email and password. Unknown email and wrong password fail alike.
    pub async fn login(&self, input: LoginInput) -> AppResult<SignedInUser> {
        let mut errors = FieldErrors::new();
        let email = required(&mut errors, "email", input.email.as_deref(), |raw| {
            if raw.trim().is_empty() {
                Err(FieldError::blank("email"))
            } else {
                Ok(raw.to_owned())
            }
        });
        let password = required(
            &mut errors,
            "password",
            input.password.as_deref(),
            Password::parse_login,
        );
        let (Some(email), Some(password)) = (email, password) else {
            return Err(errors.into());
        };
        let user = match Email::parse(&email) {
            Ok(email) => self.store.user_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        if !self.passwords.verify(password, hash).await? {
            return Err(AppError::Unauthorized(AuthFailure::BadCredentials));
        }
        let user = user.ok_or(AppError::Unauthorized(AuthFailure::BadCredentials))?;
        // Told only to whoever knows the password.
        if user.disabled {
            return Err(AppError::Unauthorized(AuthFailure::Disabled));
        }
        let token = self.tokens.issue(user.id)?;
        Ok(SignedInUser { user, token })
    }

    /// The user a bearer token names, if the token is valid and the user still exists.
    pub async fn authenticate(&self, token: &str) -> AppResult<Viewer> {
        let id = self.tokens.verify(token).map_err(AppError::Unauthorized)?;
        self.viewer(id, token).await
    }

    /// The viewer behind `token`, already verified (by [`crate::TokenKeys::verify`]) as naming `id`:
    /// spares a second signature check when a caller has done the first.
    pub async fn viewer(&self, id: UserId, token: &str) -> AppResult<Viewer> {
        let user = self
            .cached_user(id)
            .await?
            .ok_or(AppError::Unauthorized(AuthFailure::Invalid))?;
        if user.disabled {
            return Err(AppError::Unauthorized(AuthFailure::Disabled));
        }
        Ok(Viewer {
            user: UserRecord::clone(&user),
            token: token.to_owned(),
        })
    }

    /// Changes the signed-in user's settings; at least one field must be given.
    pub async fn update_user(
        &self,
        viewer: Viewer,
        input: UpdateUserInput,
    ) -> AppResult<SignedInUser> {
        let mut errors = FieldErrors::new();
        let mut changes = UserChanges {
            username: input
                .username
                .as_deref()
                .and_then(|raw| errors.check(Username::parse(raw))),
            email: input
                .email
                .as_deref()
                .and_then(|raw| errors.check(Email::parse(raw))),
            bio: input.bio.map(|bio| {
                bio.as_deref()
                    .and_then(|raw| errors.check(Bio::parse(raw)).flatten())
            }),
            image: input.image.map(|image| {
                image
                    .as_deref()
                    .and_then(|raw| errors.check(ImageUrl::parse(raw)).flatten())
            }),
            password_hash: None,
        };
        let password = input
            .password
            .as_deref()
            .and_then(|raw| errors.check(Password::parse(raw)));
        errors.into_result()?;
        if changes.is_empty() && password.is_none() {
            return Err(
                FieldError::new("user", "must contain at least one field to change").into(),
            );
        }
        if let Some(password) = password {
            changes.password_hash = Some(self.passwords.hash(password).await?);
        }
        let renamed = changes.username.is_some();
        let updated = self.store.update_user(viewer.id(), changes).await;
        let user = updated?.ok_or(AppError::Unauthorized(AuthFailure::Invalid))?;
        let mut changes = vec![Invalidation::user(
            user.id,
            &[&viewer.user.username, &user.username],
        )];
        if renamed {
            // Lists filtered by author name change with the name.
            changes.push(Invalidation::Lists);
        }
        self.forget(&changes).await?;
        Ok(SignedInUser {
            user,
            token: viewer.token,
        })
    }
}
