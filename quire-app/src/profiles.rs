//! Profiles, following and unfollowing.

use quire_domain::{FieldError, Username};
use quire_store::Profile;

use crate::cache::Invalidation;
use crate::{App, AppError, AppResult, ArticleQuery, SeenArticle, UserStats, Viewer};

/// A username from a URL; one that cannot exist is simply not found.
fn username_in_path(raw: &str) -> AppResult<Username> {
    Username::parse(raw).map_err(|_| AppError::NotFound("profile"))
}

/// A profile with its numbers and latest articles (`GET /profiles/{username}/dashboard`).
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub profile: Profile,
    pub stats: UserStats,
    /// The five newest, without bodies.
    pub latest: Vec<SeenArticle>,
}

/// Counts dashboards abandoned mid-way (the future dropped before it finished).
struct Gathering {
    done: bool,
}

impl Drop for Gathering {
    fn drop(&mut self) {
        if !self.done && !std::thread::panicking() {
            metrics::counter!("dashboard_abandoned_total").increment(1);
        }
    }
}

impl App {
    /// Gathers a dashboard with its parts (the user's numbers and latest articles, each
    /// cached) loaded concurrently. Dropping the future (the client went away) abandons the
    /// parts not yet run: queued store reads are skipped.
    pub async fn dashboard(&self, username: &str, viewer: Option<&Viewer>) -> AppResult<Dashboard> {
        let mut gathering = Gathering { done: false };
        let profile = self.profile(username, viewer).await?;
        let latest = ArticleQuery {
            author: Some(profile.username.clone()),
            limit: Some("5".to_owned()),
            ..ArticleQuery::default()
        };
        let (stats, latest) = tokio::try_join!(
            self.cached_stats(profile.id),
            self.list_articles(latest, viewer),
        )?;
        gathering.done = true;
        Ok(Dashboard {
            profile,
            stats,
            latest: latest.articles,
        })
    }

    pub async fn profile(&self, username: &str, viewer: Option<&Viewer>) -> AppResult<Profile> {
        let username = username_in_path(username)?;
        let profile = self
            .cached_profile(&username)
            .await?
            .ok_or(AppError::NotFound("profile"))?;
        let mut profile = Profile::clone(&profile);
        if let Some(viewer) = viewer {
            profile.following = self
                .viewer_state(viewer.id())
                .await?
                .following
                .contains(&profile.id);
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
        let followed = self.store.follow(viewer.id(), &username).await;
        self.forget(&follow_changes(viewer, &followed)).await?;
        let followed = followed?.ok_or(AppError::NotFound("profile"))?;
        Ok(followed)
    }

    pub async fn unfollow(&self, viewer: &Viewer, username: &str) -> AppResult<Profile> {
        let username = username_in_path(username)?;
        let unfollowed = self.store.unfollow(viewer.id(), &username).await;
        self.forget(&follow_changes(viewer, &unfollowed)).await?;
        let unfollowed = unfollowed?.ok_or(AppError::NotFound("profile"))?;
        Ok(unfollowed)
    }
}

/// What a follow or unfollow changed: the viewer's follows and feed (even if it failed, as it
/// may have committed), and both users' dashboard numbers when it found the profile.
fn follow_changes(
    viewer: &Viewer,
    result: &Result<Option<Profile>, quire_store::StoreError>,
) -> Vec<Invalidation> {
    let mut changes = vec![Invalidation::Viewer(viewer.id().0)];
    if let Ok(Some(profile)) = result {
        changes.push(Invalidation::stats(&[viewer.id(), profile.id]));
    }
    changes
}
