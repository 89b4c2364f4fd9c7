//! How each cache's keys are read again from the store for its audit (quire-cache's
//! `Auditor`): the same store calls the cache loads with, owning their store handle so the
//! audit runs off the request path.

use std::future::Future;
use std::sync::Arc;

use quire_cache::{Reload, Stored};
use quire_domain::{ArticleId, Page, Slug, Tag, UserId, Username};
use quire_store::{ArticleFilter, Count, Profile, Store, StoreResult, UserRecord};

use crate::SharedArticle;
use crate::cache::{FEED_CACHED, IdPage, UserStats, ViewerState};

/// A [`Reload`] running `read` against `store`.
pub(crate) fn reload_from<K, V, F, Fut>(store: &Arc<dyn Store>, read: F) -> Reload<K, V>
where
    F: Fn(Arc<dyn Store>, K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Stored<V>> + Send + 'static,
{
    let store = store.clone();
    Arc::new(move |key| Box::pin(read(store.clone(), key)))
}

fn stored<V>(read: StoreResult<V>) -> Stored<V> {
    read.map_or(Stored::Unknown, Stored::Value)
}

pub(crate) async fn article(store: Arc<dyn Store>, id: ArticleId) -> Stored<Arc<SharedArticle>> {
    match store.articles_by_ids(vec![id]).await {
        Ok(mut found) => found.pop().map_or(Stored::Absent, |a| {
            Stored::Value(Arc::new(SharedArticle::new(a)))
        }),
        Err(_) => Stored::Unknown,
    }
}

pub(crate) async fn slug(store: Arc<dyn Store>, slug: String) -> Stored<Option<ArticleId>> {
    match Slug::parse(&slug) {
        Some(slug) => stored(store.article_id(&slug).await),
        None => Stored::Unknown,
    }
}

pub(crate) async fn list(
    store: Arc<dyn Store>,
    (filter, page): (ArticleFilter, Page),
) -> Stored<IdPage> {
    stored(store.article_ids(filter, page).await.map(Arc::new))
}

pub(crate) async fn tags(store: Arc<dyn Store>, (): ()) -> Stored<Arc<Vec<Tag>>> {
    stored(store.tags().await.map(Arc::new))
}

pub(crate) async fn profile(store: Arc<dyn Store>, name: String) -> Stored<Option<Arc<Profile>>> {
    match Username::parse(&name) {
        Ok(name) => stored(store.profile(&name, None).await.map(|p| p.map(Arc::new))),
        Err(_) => Stored::Unknown,
    }
}

pub(crate) async fn user(store: Arc<dyn Store>, id: UserId) -> Stored<Option<Arc<UserRecord>>> {
    stored(store.user_by_id(id).await.map(|u| u.map(Arc::new)))
}

pub(crate) async fn feed(store: Arc<dyn Store>, viewer: UserId) -> Stored<IdPage> {
    stored(store.feed_ids(viewer, FEED_CACHED).await.map(Arc::new))
}

pub(crate) async fn viewer(store: Arc<dyn Store>, viewer: UserId) -> Stored<Arc<ViewerState>> {
    stored(load_viewer(&*store, viewer).await)
}

pub(crate) async fn stats(store: Arc<dyn Store>, user: UserId) -> Stored<UserStats> {
    stored(load_stats(&*store, user).await)
}

/// What `viewer` favorited and follows (the viewers cache loads with it too).
pub(crate) async fn load_viewer(
    store: &dyn Store,
    viewer: UserId,
) -> StoreResult<Arc<ViewerState>> {
    let (favorited, following) =
        tokio::try_join!(store.favorited_ids(viewer), store.following_ids(viewer))?;
    Ok(Arc::new(ViewerState {
        favorited: favorited.into_iter().collect(),
        following: following.into_iter().collect(),
    }))
}

/// `user`'s dashboard numbers, counted concurrently (the stats cache loads with it too).
pub(crate) async fn load_stats(store: &dyn Store, user: UserId) -> StoreResult<UserStats> {
    let count = |what| store.count(what);
    let (articles, favorites_received, followers, following) = tokio::try_join!(
        count(Count::ArticlesBy(user)),
        count(Count::FavoritesReceived(user)),
        count(Count::Followers(user)),
        count(Count::Following(user)),
    )?;
    Ok(UserStats {
        articles,
        favorites_received,
        followers,
        following,
    })
}
