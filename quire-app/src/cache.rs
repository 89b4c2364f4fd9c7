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

use quire_cache::{AuditSettings, Auditor, Coherence, ExactCache};
use quire_domain::{ArticleId, Page, Tag, UserId};
use quire_store::{ArticleFilter, ArticleRecord, Profile, Store, StoreError, UserRecord};

use crate::cache_audit::{self as audit, reload_from};
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
    /// How a sample of cache hits is checked against the store (see quire-cache's `Auditor`).
    pub audit: AuditSettings,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            article_bytes: 128 * 1024 * 1024,
            entries: 100_000,
            ttl: Duration::from_secs(600),
            enabled: true,
            audit: AuditSettings::default(),
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
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ViewerState {
    pub favorited: HashSet<ArticleId>,
    pub following: HashSet<UserId>,
}

/// Feed entries cached per user; pages reaching past them are read from the store.
pub(crate) const FEED_CACHED: u32 = 200;

/// Ids of favorites and follows kept for all cached viewers together.
const VIEWER_IDS: u64 = 4_000_000;

impl ReadCache {
    /// The caches, each kept exact by `coherence` and audited against `store`.
    pub fn new(
        settings: CacheSettings,
        coherence: &Arc<dyn Coherence>,
        store: &Arc<dyn Store>,
    ) -> Self {
        // Twice the text: the record, and its JSON renderings kept in its memo.
        let weigh_article = |a: &Arc<SharedArticle>| {
            let a = &a.record;
            let text = a.title.len() + a.description.len() + a.body.as_ref().map_or(0, String::len);
            u32::try_from(2 * (text + 256)).unwrap_or(u32::MAX)
        };
        let weigh_viewer = |v: &Arc<ViewerState>| {
            u32::try_from(v.favorited.len() + v.following.len() + 1).unwrap_or(u32::MAX)
        };
        let entries = settings.entries;
        let auditor = Auditor::new(settings.audit, coherence.clone());
        Self {
            articles: exact(
                "articles",
                settings.article_bytes,
                weigh_article,
                &settings,
                coherence,
            )
            .audited(&auditor, reload_from(store, audit::article)),
            slugs: exact("slugs", entries, |_| 1, &settings, coherence)
                .audited(&auditor, reload_from(store, audit::slug)),
            lists: exact("lists", entries, |_| 1, &settings, coherence)
                .audited(&auditor, reload_from(store, audit::list)),
            tags: exact("tags", 1, |_| 1, &settings, coherence)
                .audited(&auditor, reload_from(store, audit::tags)),
            profiles: exact("profiles", entries, |_| 1, &settings, coherence)
                .audited(&auditor, reload_from(store, audit::profile)),
            users: exact("users", entries, |_| 1, &settings, coherence)
                .audited(&auditor, reload_from(store, audit::user)),
            feeds: exact("feeds", entries, |_| 1, &settings, coherence)
                .audited(&auditor, reload_from(store, audit::feed)),
            viewers: exact("viewers", VIEWER_IDS, weigh_viewer, &settings, coherence)
                .audited(&auditor, reload_from(store, audit::viewer)),
            stats: exact("stats", entries, |_| 1, &settings, coherence)
                .audited(&auditor, reload_from(store, audit::stats)),
        }
    }
}

/// One cache named `name` of `capacity` units weighed by `weigh`, as `settings` say.
fn exact<K, V>(
    name: &'static str,
    capacity: u64,
    weigh: impl Fn(&V) -> u32 + Send + Sync + 'static,
    settings: &CacheSettings,
    coherence: &Arc<dyn Coherence>,
) -> ExactCache<K, V>
where
    K: std::hash::Hash + Eq + Clone + std::fmt::Debug + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    ExactCache::new(name, capacity, settings.ttl, weigh)
        .enabled(settings.enabled)
        .coherent(coherence.clone())
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
                audit::load_viewer(&*self.store, viewer)
                    .await
                    .map_err(Arc::new)
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
                audit::load_stats(&*self.store, user)
                    .await
                    .map_err(Arc::new)
            })
            .await
            .map_err(from_shared)
    }

    // Invalidation, called by writes after they commit and before they answer: applied
    // here, then announced to the other instances (see quire-cache's `Coherence`).

    /// Applies `changes` to this instance's caches, then announces them; a write whose
    /// changes cannot be announced is answered 503 (it committed, but another instance could
    /// still serve what it replaced).
    pub(crate) async fn forget(&self, changes: &[Invalidation]) -> AppResult<()> {
        for change in changes {
            self.apply(change).await;
        }
        if self.coherence.is_standalone() {
            return Ok(());
        }
        let encoded = serde_json::to_vec(changes).map_err(|e| AppError::Internal(e.to_string()))?;
        self.coherence.announce(encoded).await.map_err(|e| {
            tracing::warn!(error = %e, "a committed write could not be announced to the other instances");
            AppError::Overloaded
        })
    }

    /// Applies invalidations another instance announced (bytes from [`Self::forget`]).
    pub async fn apply_announced(&self, encoded: &[u8]) {
        match serde_json::from_slice::<Vec<Invalidation>>(encoded) {
            Ok(changes) => {
                for change in &changes {
                    self.apply(change).await;
                }
            }
            Err(error) => {
                // Unknown to this binary (a newer instance?): forgetting everything is exact.
                tracing::warn!(error = %error, "unreadable invalidation; forgetting every cached value");
                self.forget_everything();
            }
        }
    }

    /// Forgets every cached value (after this instance may have missed invalidations).
    pub fn forget_everything(&self) {
        let c = &self.cache;
        c.articles.invalidate_all();
        c.slugs.invalidate_all();
        c.lists.invalidate_all();
        c.tags.invalidate_all();
        c.profiles.invalidate_all();
        c.users.invalidate_all();
        c.feeds.invalidate_all();
        c.viewers.invalidate_all();
        c.stats.invalidate_all();
    }

    async fn apply(&self, change: &Invalidation) {
        let c = &self.cache;
        match change {
            Invalidation::Everything => self.forget_everything(),
            Invalidation::Article { id, slug } => {
                c.articles.invalidate(&ArticleId(*id)).await;
                c.slugs.invalidate(slug).await;
            }
            Invalidation::ArticleText(id) => c.articles.invalidate(&ArticleId(*id)).await,
            Invalidation::Slug(slug) => c.slugs.invalidate(slug).await,
            Invalidation::ListsAndTags => {
                c.lists.invalidate_all();
                c.feeds.invalidate_all();
                c.tags.invalidate_all();
            }
            Invalidation::Lists => c.lists.invalidate_all(),
            Invalidation::Stats(users) => {
                for user in users {
                    c.stats.invalidate(&UserId(*user)).await;
                }
            }
            Invalidation::Viewer(user) => {
                c.viewers.invalidate(&UserId(*user)).await;
                c.feeds.invalidate(&UserId(*user)).await;
            }
            Invalidation::User { id, usernames } => {
                let id = UserId(*id);
                c.users.invalidate(&id).await;
                for name in usernames {
                    c.profiles.invalidate(&name.to_lowercase()).await;
                }
                // Articles embed their author's profile.
                c.articles
                    .invalidate_where(move |a| a.record.author.id == id);
            }
        }
    }
}

/// What a write changed, as the caches see it: applied locally and announced to the other
/// instances (JSON, so instances of neighbouring versions can read each other's).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum Invalidation {
    /// An article's text and its slug's mapping.
    Article { id: i64, slug: String },
    /// An article's text only (its favorite count changed).
    ArticleText(i64),
    /// What a slug names.
    Slug(String),
    /// Every list, feed and the tag list (an article appeared or disappeared).
    ListsAndTags,
    /// Every list (an author was renamed).
    Lists,
    /// These users' dashboard numbers.
    Stats(Vec<i64>),
    /// What a user favorited and follows, and so their feed.
    Viewer(i64),
    /// A user's record, their profile under each name, and the articles embedding it.
    User { id: i64, usernames: Vec<String> },
    /// Everything (a change too wide to list, such as a deleted user and their content).
    Everything,
}

/// The encoded invalidations of an account change made outside the server (`quire user`:
/// password, disabled), which instances read from the store's admin changes.
pub fn encoded_user_change(id: i64, username: &str) -> String {
    let changes = [Invalidation::User {
        id,
        usernames: vec![username.to_owned()],
    }];
    serde_json::to_string(&changes).unwrap_or_default()
}

/// The encoded "forget everything" of a change too wide to list (a deleted user).
pub fn encoded_change_of_everything() -> String {
    serde_json::to_string(&[Invalidation::Everything]).unwrap_or_default()
}

impl Invalidation {
    pub(crate) fn article(article: &ArticleRecord) -> Self {
        Self::Article {
            id: article.id.0,
            slug: article.slug.clone(),
        }
    }

    pub(crate) fn stats(users: &[UserId]) -> Self {
        Self::Stats(users.iter().map(|u| u.0).collect())
    }

    pub(crate) fn user(id: UserId, usernames: &[&str]) -> Self {
        Self::User {
            id: id.0,
            usernames: usernames.iter().map(|n| (*n).to_owned()).collect(),
        }
    }
}
