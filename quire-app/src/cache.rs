//! The read cache of viewer-independent data, and where writes invalidate it.
//!
//! Cached: articles by id (with body and author, `favorited`/`following` false), slug → id,
//! list pages as ids (except `favorited=` lists, which change with every favorite), the tag
//! list, profiles by username. Per-viewer flags are overlaid per request from one store
//! query, so caching never mixes viewers. Each write invalidates what it changed before it
//! answers, so a client never reads its own write stale (see quire-cache for why racing
//! readers cannot re-insert old values).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use quire_cache::ExactCache;
use quire_domain::{ArticleId, Page, Tag, UserId};
use quire_store::{ArticleFilter, ArticleRecord, Count, Profile, StoreError, UserRecord};

use crate::{App, AppError, AppResult, SeenArticle, SharedArticle, Viewer};

/// Sizing of the read cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    /// Bytes of article text kept (titles, descriptions, bodies).
    pub article_bytes: u64,
    /// Entries in each of the smaller caches (slugs, lists, profiles).
    pub entries: u64,
    /// Longest any entry lives (a safety net; invalidation is what keeps it exact).
    pub ttl: Duration,
    /// Off: nothing is cached, every read goes to the store.
    pub enabled: bool,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            article_bytes: 128 * 1024 * 1024,
            entries: 100_000,
            ttl: Duration::from_secs(600),
            enabled: true,
        }
    }
}

type Loaded<T> = Result<T, Arc<StoreError>>;

/// One page of article ids and the count of all matches.
pub(crate) type IdPage = Arc<(Vec<ArticleId>, u64)>;

pub(crate) struct ReadCache {
    pub articles: ExactCache<ArticleId, Arc<SharedArticle>>,
    pub slugs: ExactCache<String, Option<ArticleId>>,
    pub lists: ExactCache<(ArticleFilter, Page), IdPage>,
    pub tags: ExactCache<(), Arc<Vec<Tag>>>,
    pub profiles: ExactCache<String, Option<Arc<Profile>>>,
    /// Users by id, for authenticating every signed-in request without a store round trip.
    pub users: ExactCache<UserId, Option<Arc<UserRecord>>>,
    /// The newest [`FEED_CACHED`] ids of each user's feed, with the feed's total.
    pub feeds: ExactCache<UserId, IdPage>,
    /// What each signed-in user favorited and follows, for `favorited`/`following` flags.
    pub viewers: ExactCache<UserId, Arc<ViewerState>>,
    /// Each user's dashboard numbers.
    pub stats: ExactCache<UserId, UserStats>,
}

/// A user's numbers, as their dashboard shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserStats {
    /// Articles they wrote.
    pub articles: u64,
    /// Favorites their articles received.
    pub favorites_received: u64,
    /// Users following them.
    pub followers: u64,
    /// Users they follow.
    pub following: u64,
}

/// One user's favorites and follows.
#[derive(Debug, Default)]
pub(crate) struct ViewerState {
    pub favorited: HashSet<ArticleId>,
    pub following: HashSet<UserId>,
}

/// Feed entries cached per user; pages reaching past them are read from the store.
pub(crate) const FEED_CACHED: u32 = 200;

/// Ids of favorites and follows kept for all cached viewers together.
const VIEWER_IDS: u64 = 4_000_000;

impl ReadCache {
    pub fn new(settings: CacheSettings) -> Self {
        // Twice the text: the record, and its JSON renderings kept in its memo.
        let weigh_article = |a: &Arc<SharedArticle>| {
            let a = &a.record;
            let text = a.title.len() + a.description.len() + a.body.as_ref().map_or(0, String::len);
            u32::try_from(2 * (text + 256)).unwrap_or(u32::MAX)
        };
        let (entries, ttl, on) = (settings.entries, settings.ttl, settings.enabled);
        Self {
            articles: ExactCache::new("articles", settings.article_bytes, ttl, weigh_article)
                .enabled(on),
            slugs: ExactCache::new("slugs", entries, ttl, |_| 1).enabled(on),
            lists: ExactCache::new("lists", entries, ttl, |_| 1).enabled(on),
            tags: ExactCache::new("tags", 1, ttl, |_| 1).enabled(on),
            profiles: ExactCache::new("profiles", entries, ttl, |_| 1).enabled(on),
            users: ExactCache::new("users", entries, ttl, |_| 1).enabled(on),
            feeds: ExactCache::new("feeds", entries, ttl, |_| 1).enabled(on),
            viewers: ExactCache::new("viewers", VIEWER_IDS, ttl, |v: &Arc<ViewerState>| {
                u32::try_from(v.favorited.len() + v.following.len() + 1).unwrap_or(u32::MAX)
            })
            .enabled(on),
            stats: ExactCache::new("stats", entries, ttl, |_| 1).enabled(on),
        }
    }
}

fn from_shared(error: Arc<StoreError>) -> AppError {
    match &*error {
        StoreError::Conflict(fields) => StoreError::Conflict(fields.clone()).into(),
        StoreError::Overloaded => AppError::Overloaded,
        StoreError::Closed | StoreError::Unavailable(_) => AppError::Overloaded,
        other => AppError::Internal(other.to_string()),
    }
}

impl App {
    /// The article id a slug names, cached (absent slugs too).
    pub(crate) async fn cached_article_id(
        &self,
        slug: &quire_domain::Slug,
    ) -> AppResult<Option<ArticleId>> {
        self.cache
            .slugs
            .get_or_load(&slug.as_str().to_owned(), || async {
                self.store.article_id(slug).await.map_err(Arc::new) as Loaded<_>
            })
            .await
            .map_err(from_shared)
    }

    /// Articles by id in the given order, from the cache, loading the misses in one query.
    pub(crate) async fn cached_articles(
        &self,
        ids: &[ArticleId],
    ) -> AppResult<Vec<Arc<SharedArticle>>> {
        let mut found: Vec<Option<Arc<SharedArticle>>> = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            let hit = self.cache.articles.get(id).await;
            if hit.is_none() {
                missing.push(*id);
            }
            found.push(hit);
        }
        if !missing.is_empty() {
            let started = self.cache.articles.epoch();
            let loaded = self.store.articles_by_ids(missing).await?;
            for article in loaded {
                let id = article.id;
                let article = Arc::new(SharedArticle::new(article));
                if let Some(slot) = ids.iter().position(|wanted| *wanted == id) {
                    found[slot] = Some(article.clone());
                }
                self.cache.articles.insert(id, article, started).await;
            }
        }
        // An id whose article vanished meanwhile is skipped.
        Ok(found.into_iter().flatten().collect())
    }

    /// One page of article ids for `filter`, cached unless it depends on favorites.
    pub(crate) async fn cached_article_ids(
        &self,
        filter: ArticleFilter,
        page: Page,
    ) -> AppResult<IdPage> {
        let load = || async {
            self.store
                .article_ids(filter.clone(), page)
                .await
                .map(Arc::new)
                .map_err(Arc::new) as Loaded<_>
        };
        if filter.favorited_by.is_some() {
            return load().await.map_err(from_shared);
        }
        self.cache
            .lists
            .get_or_load(&(filter.clone(), page), load)
            .await
            .map_err(from_shared)
    }

    pub(crate) async fn cached_user(&self, id: UserId) -> AppResult<Option<Arc<UserRecord>>> {
        self.cache
            .users
            .get_or_load(&id, || async {
                self.store
                    .user_by_id(id)
                    .await
                    .map(|u| u.map(Arc::new))
                    .map_err(Arc::new) as Loaded<_>
            })
            .await
            .map_err(from_shared)
    }

    pub(crate) async fn cached_tags(&self) -> AppResult<Arc<Vec<Tag>>> {
        self.cache
            .tags
            .get_or_load(&(), || async {
                self.store.tags().await.map(Arc::new).map_err(Arc::new) as Loaded<_>
            })
            .await
            .map_err(from_shared)
    }

    /// A profile as nobody in particular sees it, cached (absent names too).
    pub(crate) async fn cached_profile(
        &self,
        username: &quire_domain::Username,
    ) -> AppResult<Option<Arc<Profile>>> {
        self.cache
            .profiles
            .get_or_load(&username.as_str().to_lowercase(), || async {
                self.store
                    .profile(username, None)
                    .await
                    .map(|p| p.map(Arc::new))
                    .map_err(Arc::new) as Loaded<_>
            })
            .await
            .map_err(from_shared)
    }

    /// What `viewer` favorited and follows, cached until they favorite or follow again.
    pub(crate) async fn viewer_state(&self, viewer: UserId) -> AppResult<Arc<ViewerState>> {
        self.cache
            .viewers
            .get_or_load(&viewer, || async {
                let (favorited, following) = tokio::try_join!(
                    self.store.favorited_ids(viewer),
                    self.store.following_ids(viewer)
                )
                .map_err(Arc::new)?;
                Ok(Arc::new(ViewerState {
                    favorited: favorited.into_iter().collect(),
                    following: following.into_iter().collect(),
                })) as Loaded<_>
            })
            .await
            .map_err(from_shared)
    }

    /// The cached articles as `viewer` sees them: shared, not copied, with the viewer's
    /// `favorited` and `following` flags beside them (both false for anonymous readers).
    pub(crate) async fn seen_by(
        &self,
        viewer: Option<&Viewer>,
        articles: Vec<Arc<SharedArticle>>,
    ) -> AppResult<Vec<SeenArticle>> {
        let state = match viewer {
            Some(viewer) if !articles.is_empty() => Some(self.viewer_state(viewer.id()).await?),
            _ => None,
        };
        Ok(articles
            .into_iter()
            .map(|shared| {
                let (favorited, following) = state.as_ref().map_or((false, false), |state| {
                    (
                        state.favorited.contains(&shared.record.id),
                        state.following.contains(&shared.record.author.id),
                    )
                });
                SeenArticle {
                    shared,
                    favorited,
                    following,
                }
            })
            .collect())
    }

    /// The head of `viewer`'s feed: ids of its newest [`FEED_CACHED`] articles and its total.
    pub(crate) async fn cached_feed(&self, viewer: UserId) -> AppResult<IdPage> {
        self.cache
            .feeds
            .get_or_load(&viewer, || async {
                self.store
                    .feed_ids(viewer, FEED_CACHED)
                    .await
                    .map(Arc::new)
                    .map_err(Arc::new) as Loaded<_>
            })
            .await
            .map_err(from_shared)
    }

    /// `user`'s dashboard numbers, counted concurrently on a miss.
    pub(crate) async fn cached_stats(&self, user: UserId) -> AppResult<UserStats> {
        self.cache
            .stats
            .get_or_load(&user, || async {
                let count = |what| async move { self.store.count(what).await.map_err(Arc::new) };
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
                }) as Loaded<_>
            })
            .await
            .map_err(from_shared)
    }

    /// Forgets the dashboard numbers of `users` (after a write changed them).
    pub(crate) async fn forget_stats(&self, users: &[UserId]) {
        for user in users {
            self.cache.stats.invalidate(user).await;
        }
    }

    /// Forgets what `user` favorited and follows, and so their feed (after they change either).
    pub(crate) async fn forget_viewer(&self, user: UserId) {
        self.cache.viewers.invalidate(&user).await;
        self.cache.feeds.invalidate(&user).await;
    }

    // Invalidation, called by writes after they commit and before they answer.

    pub(crate) async fn forget_article(&self, article: &ArticleRecord) {
        self.cache.articles.invalidate(&article.id).await;
        self.cache.slugs.invalidate(&article.slug).await;
    }

    /// After an article appears or disappears: every list, feed and the tag list may change.
    pub(crate) fn forget_lists_and_tags(&self) {
        self.cache.lists.invalidate_all();
        self.cache.feeds.invalidate_all();
        self.cache.tags.invalidate_all();
    }

    pub(crate) async fn forget_user(&self, id: UserId, usernames: &[&str]) {
        self.cache.users.invalidate(&id).await;
        for name in usernames {
            self.cache.profiles.invalidate(&name.to_lowercase()).await;
        }
        // Articles embed their author's profile.
        self.cache
            .articles
            .invalidate_where(move |a| a.record.author.id == id);
    }
}
