//! The web UI as a person uses it, over real HTTP with cookies: sign up, write an article in
//! Markdown, read it rendered (and nothing an author writes runs code), comment as someone
//! else, favorite, follow, the personal feed, settings, feeds and sitemap, sign out; and the
//! protections: CSRF tokens, `Origin`, cookie attributes, sign-in redirects.

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::support::TestApp;

/// A browser: keeps cookies, does not follow redirects (so tests see them).
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

/// A page as the browser got it.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    html: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the hidden CSRF field of the page's forms.
    fn csrf(&self) -> String {
        let at = self
            .html
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.html));
        let rest = &self.html[at + 19..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.url(""),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let response = request
            .header("Cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for cookie in headers.get_all(SET_COOKIE) {
            let cookie = cookie.to_str().unwrap();
            let (pair, _) = cookie.split_once(';').unwrap_or((cookie, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let html = response.text().await.unwrap();
        Page {
            status,
            headers,
            html,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// Posts a form as the page at `from` would: with that page's CSRF token.
    async fn submit(&mut self, from: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(from).await.csrf();
        self.post(action, &csrf, fields).await
    }

    async fn post(&mut self, action: &str, csrf: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf)];
        form.extend_from_slice(fields);
        let request = self
            .client
            .post(format!("{}{action}", self.base))
            .form(&form);
        self.send(request).await
    }

    async fn sign_up(&mut self, name: &str) {
        let email = format!("{name}@example.com");
        let page = self
            .submit(
                "/register",
                "/register",
                &[
                    ("username", name),
                    ("email", &email),
                    ("password", "password-1234"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        assert_eq!(page.location(), "/");
    }
}

api_test! {
async fn a_writer_and_a_reader_use_the_blog_through_its_pages() {
    let app = TestApp::start().await;
    let mut anna = Browser::new(&app);

    // Signing up sets a session cookie the page script cannot read.
    let csrf = anna.get("/register").await.csrf();
    let signed_up = anna
        .post("/register", &csrf, &[("username", "anna"), ("email", "anna@example.com"), ("password", "password-1234")])
        .await;
    assert_eq!(signed_up.status, StatusCode::SEE_OTHER, "{}", signed_up.html);
    let cookie = signed_up
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("quire_session="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let home = anna.get("/").await;
    assert!(home.html.contains("href=\"/profile/anna\""), "{}", home.html);
    assert!(home.html.contains("Your feed"));

    // Write an article in Markdown, with everything a hostile author might try.
    let body = "# Heading\n\nSome **bold** text and `code`.\n\n```\nfn main() {}\n```\n\n\
                <script>alert(1)</script>\n\n[click](javascript:alert(2))\n\n\
                <img src=\"x\" onerror=\"alert(3)\">\n\n<svg><script>alert(4)</script></svg>\n\n\
                <a href=\"https://example.com\" onclick=\"alert(5)\">site</a>";
    let created = anna
        .submit("/editor", "/editor", &[("title", "Markdown works"), ("description", "a test"), ("body", body), ("tags", "rust, web")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    assert_eq!(created.location(), "/articles/markdown-works");
    let article = anna.get("/articles/markdown-works").await;
    assert_eq!(article.status, StatusCode::OK);
    let html = &article.html;
    assert!(html.contains("<h1>Heading</h1>"), "{html}");
    assert!(html.contains("<strong>bold</strong>"));
    assert!(html.contains("<pre><code>fn main() {}"));
    assert!(html.contains("href=\"https://example.com\""));
    for hostile in ["alert(1)", "javascript:", "onerror", "<svg", "onclick", "alert(4)"] {
        assert!(!html.contains(hostile), "{hostile} survived: {html}");
    }
    let csp = article.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");

    // The editor edits the text and the tags.
    let edit = anna.get("/editor/markdown-works").await;
    assert!(edit.html.contains("value=\"rust web\""), "{}", edit.html);
    let edited = anna
        .submit("/editor/markdown-works", "/editor/markdown-works", &[("title", "Markdown works"), ("description", "a test, edited"), ("body", body), ("tags", "rust go")])
        .await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER, "{}", edited.html);
    let article = anna.get("/articles/markdown-works").await;
    assert!(article.html.contains("a test, edited") && article.html.contains("href=\"/tag/go\""), "{}", article.html);
    assert!(!article.html.contains("href=\"/tag/web\""));

    // A validation error comes back next to its field, with what was typed.
    let refused = anna
        .submit("/editor", "/editor", &[("title", ""), ("description", "kept description"), ("body", "kept body")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("id=\"e-title\""), "{}", refused.html);
    assert!(refused.html.contains("kept description") && refused.html.contains("kept body"));

    // Someone else reads, comments, favorites and follows.
    let mut ben = Browser::new(&app);
    ben.sign_up("ben").await;
    let commented = ben
        .submit("/articles/markdown-works", "/articles/markdown-works/comments", &[("body", "Nice **post** <script>alert(6)</script>")])
        .await;
    assert_eq!(commented.status, StatusCode::SEE_OTHER, "{}", commented.html);
    assert!(commented.location().starts_with("/articles/markdown-works#comment-"));
    let page = ben.get("/articles/markdown-works").await;
    assert!(page.html.contains("Nice <strong>post</strong>"), "{}", page.html);
    assert!(!page.html.contains("alert(6)"));
    assert!(page.html.contains("class=\"link danger\">Delete</button>"), "ben may delete his comment");
    let favorited = ben
        .submit("/articles/markdown-works", "/articles/markdown-works/favorite", &[("action", "favorite")])
        .await;
    assert_eq!(favorited.status, StatusCode::SEE_OTHER);
    assert!(ben.get("/articles/markdown-works").await.html.contains("★ Favorited (1)"));
    let followed = ben
        .submit("/profile/anna", "/profile/anna/follow", &[("action", "follow"), ("back", "/profile/anna")])
        .await;
    assert_eq!(followed.location(), "/profile/anna");
    assert!(ben.get("/profile/anna").await.html.contains("Unfollow anna"));
    let feed = ben.get("/?feed=your").await;
    assert!(feed.html.contains("href=\"/articles/markdown-works\""), "{}", feed.html);
    let favorites = ben.get("/profile/ben?tab=favorites").await;
    assert!(favorites.html.contains("href=\"/articles/markdown-works\""));
    let tagged = ben.get("/tag/go").await;
    assert!(tagged.html.contains("href=\"/articles/markdown-works\""));

    // anna sees ben's comment but cannot delete it.
    let page = anna.get("/articles/markdown-works").await;
    assert!(page.html.contains("Nice <strong>post</strong>"));
    assert!(!page.html.contains("class=\"link danger\">Delete</button>"), "{}", page.html);

    // Settings.
    let saved = anna
        .submit("/settings", "/settings", &[("username", "anna"), ("email", "anna@example.com"), ("bio", "Writes about <b>Rust</b>"), ("image", ""), ("password", "")])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let profile = anna.get("/profile/anna").await;
    assert!(profile.html.contains("Writes about &#60;b&#62;Rust&#60;/b&#62;"), "{}", profile.html);

    // Sign out: the session cookie goes, and pages that need one send to sign-in.
    let out = anna.submit("/", "/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!anna.cookies.contains_key("quire_session"));
    let settings = anna.get("/settings").await;
    assert_eq!(settings.status, StatusCode::SEE_OTHER);
    assert_eq!(settings.location(), "/login?next=%2Fsettings");
    let back_in = anna
        .submit("/login", "/login?next=%2Fsettings", &[("email", "anna@example.com"), ("password", "password-1234")])
        .await;
    assert_eq!(back_in.location(), "/settings");
    let wrong = anna
        .submit("/login", "/login", &[("email", "anna@example.com"), ("password", "wrong-password")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.html.contains("value=\"anna@example.com\""));
    assert!(!wrong.html.contains("wrong-password"));
}
}

api_test! {
async fn forms_without_the_csrf_token_or_from_another_site_are_refused() {
    let app = TestApp::start().await;
    let mut anna = Browser::new(&app);
    anna.sign_up("anna").await;
    let csrf = anna.get("/editor").await.csrf();
    let fields = [("title", "Forged"), ("description", "d"), ("body", "b")];

    let forged = anna.post("/editor", "0123456789abcdef0123456789abcdef", &fields).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let missing = anna.post("/editor", "", &fields).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let request = anna
        .client
        .post(format!("{}/editor", anna.base))
        .header("Origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str()), ("title", "Forged"), ("description", "d"), ("body", "b")]);
    let cross_site = anna.send(request).await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    let (_, list) = app.get("/api/articles", None).await;
    assert_eq!(list["articlesCount"], 0, "no forged article was written");

    // The real form works.
    let real = anna.post("/editor", &csrf, &fields).await;
    assert_eq!(real.status, StatusCode::SEE_OTHER, "{}", real.html);
}
}

api_test! {
async fn feeds_sitemap_and_robots_describe_the_site() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    app.create_article(&jake, "Feed me & more", &["rust"]).await;

    let mut reader = Browser::new(&app);
    let home = reader.get("/").await;
    assert!(home.html.contains("<link rel=\"alternate\" type=\"application/atom+xml\""), "{}", home.html);
    let feed = reader.get("/feed.atom").await;
    assert_eq!(feed.status, StatusCode::OK);
    assert_eq!(feed.headers["content-type"], "application/atom+xml; charset=utf-8");
    assert!(feed.html.contains("<title>Feed me &#38; more</title>"), "{}", feed.html);
    well_formed(&feed.html);
    let etag = feed.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with("W/\""), "a weak ETag (the feed is also sent compressed): {etag}");
    let again = app
        .client
        .get(app.url("/feed.atom"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let modified = feed.headers["last-modified"].to_str().unwrap().to_owned();
    let since = app
        .client
        .get(app.url("/feed.atom"))
        .header("If-Modified-Since", &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(since.status(), StatusCode::NOT_MODIFIED);
    for path in ["/tag/rust/feed.atom", "/profile/jake/feed.atom"] {
        let feed = reader.get(path).await;
        assert_eq!(feed.status, StatusCode::OK, "{path}");
        assert!(feed.html.contains("Feed me &#38; more"), "{path}");
        well_formed(&feed.html);
    }
    assert_eq!(reader.get("/profile/nobody/feed.atom").await.status, StatusCode::NOT_FOUND);

    let sitemap = reader.get("/sitemap.xml").await;
    assert!(sitemap.html.contains("/articles/feed-me-more</loc>"), "{}", sitemap.html);
    well_formed(&sitemap.html);
    let robots = reader.get("/robots.txt").await;
    assert!(robots.html.contains("Sitemap: http://127.0.0.1:"), "{}", robots.html);

    let article = reader.get("/articles/feed-me-more").await;
    assert!(article.html.contains("<meta property=\"og:title\" content=\"Feed me &#38; more\">"), "{}", article.html);
    assert!(article.html.contains("<link rel=\"canonical\" href=\"http://127.0.0.1:"));
}
}

/// Fails unless `xml` is well-formed XML.
fn well_formed(xml: &str) {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed XML ({e}): {xml}"),
        }
    }
}
