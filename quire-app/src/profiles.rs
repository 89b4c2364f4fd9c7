//! Profiles, following and unfollowing.

use quire_domain::{FieldError, Username};
use quire_store::Profile;

use crate::{App, AppError, AppResult, Viewer};

/// A username from a URL; one that cannot exist is simply not found.
fn username_in_path(raw: &str) -> AppResult<Username> {
    Username::parse(raw).map_err(|_| AppError::NotFound("profile"))
}

impl App {
    pub async fn profile(&self, username: &str, viewer: Option<&Viewer>) -> AppResult<Profile> {
        let username = username_in_path(username)?;
        let profile = self
            .cached_profile(&username)
            .await?
            .ok_or(AppError::NotFound("profile"))?;
        let mut profile = Profile::clone(&profile);
        if let Some(viewer) = viewer {
            let flags = self
                .store
                .viewer_flags(viewer.id(), Vec::new(), vec![profile.id])
                .await?;
            profile.following = flags.following.contains(&profile.id);
        }
        Ok(profile)
    }

    pub async fn follow(&self, viewer: &Viewer, username: &str) -> AppResult<Profile> {
        let username = username_in_path(username)?;
        if username
            .as_str()
            .eq_ignore_ascii_case(&viewer.user.username)
        {
            return Err(FieldError::new("username", "cannot follow yourself").into());
        }
        self.store
            .follow(viewer.id(), &username)
            .await?
            .ok_or(AppError::NotFound("profile"))
    }

    pub async fn unfollow(&self, viewer: &Viewer, username: &str) -> AppResult<Profile> {
        let username = username_in_path(username)?;
        self.store
            .unfollow(viewer.id(), &username)
            .await?
            .ok_or(AppError::NotFound("profile"))
    }
}
