// quire's web UI as a person uses it, in Debian's Chromium (headless), driven by playwright-core:
// sign up -> write an article in Markdown with an uploaded image -> see it rendered -> a second
// user comments (it appears live on the first user's open page) -> favorite -> follow -> feed
// -> search -> the Atom feed parses as XML -> sign out; then the same comment form without JavaScript.
// axe-core runs on every page: no serious or critical violation may remain. Screenshots of
// each page go to the artifacts directory.
//
//   node browser-tests/run.mjs --base http://127.0.0.1:PORT --out DIR [--chromium /usr/bin/chromium]
//
// Exits 0 when every check passed; prints each failure and exits 1 otherwise.

import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const base = args.base;
const out = args.out ?? "browser-artifacts";
const executablePath = args.chromium ?? "/usr/bin/chromium";
if (!base) throw new Error("--base is required");
mkdirSync(out, { recursive: true });
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const failures = [];
function check(condition, what) {
  if (condition) {
    console.log(`ok   ${what}`);
  } else {
    console.log(`FAIL ${what}`);
    failures.push(what);
  }
}

let shot = 0;
/** A screenshot and an axe-core audit of the page as it is now. */
async function audit(page, name) {
  shot += 1;
  await page.screenshot({ path: `${out}/${String(shot).padStart(2, "0")}-${name}.png`, fullPage: true });
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of result.violations) {
    console.log(`     axe ${v.impact}: ${v.id} (${v.nodes.length}) on ${name}: ${v.help}`);
  }
  check(serious.length === 0, `${name}: no serious or critical accessibility violation`);
}

// A 2x2 PNG, as a person would upload a picture.
const png = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==",
  "base64",
);

const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
// bypassCSP only lets the test inject axe-core; quire's own script loads under the real policy.
const options = { baseURL: base, bypassCSP: true, viewport: { width: 1100, height: 900 } };
const errors = [];
function watch(page, who) {
  page.on("pageerror", (e) => errors.push(`${who}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().includes("Failed to load resource")) errors.push(`${who}: ${m.text()}`);
  });
}

try {
  // --- anna signs up and writes.
  const anna = await (await browser.newContext(options)).newPage();
  watch(anna, "anna");
  await anna.goto("/");
  await audit(anna, "home-empty");
  await anna.getByRole("link", { name: "Sign up" }).click();
  await audit(anna, "register");
  await anna.getByLabel("Username").fill("anna");
  await anna.getByLabel("Email").fill("anna@example.com");
  await anna.getByLabel("Password").fill("password-1234");
  await anna.getByRole("button", { name: "Sign up" }).click();
  await anna.waitForURL(`${base}/`);
  check(await anna.getByRole("link", { name: "anna" }).isVisible(), "signed up: the header names anna");

  await anna.getByRole("link", { name: "New article" }).click();
  await audit(anna, "editor");
  await anna.getByLabel("Title").fill("Browsers read Markdown");
  await anna.getByLabel("What is it about?").fill("A test written by a browser");
  await anna.getByLabel("Article (Markdown)").fill("# Heading from Markdown\n\nSome **bold** words.\n\n```\nlet x = 1;\n```\n");
  await anna.getByLabel("Tags").fill("browser testing");
  await anna.locator("#upload-file").setInputFiles({ name: "dot.png", mimeType: "image/png", buffer: png });
  await anna.locator("form.upload button").click();
  await anna.waitForFunction(() => document.getElementById("f-body").value.includes("](/media/"));
  check(true, "the uploaded image's Markdown was inserted into the body");
  await anna.getByRole("button", { name: "Publish article" }).click();
  await anna.waitForURL(/\/articles\/browsers-read-markdown$/);
  check(await anna.locator(".body h1", { hasText: "Heading from Markdown" }).isVisible(), "the body's Markdown heading is rendered");
  check(await anna.locator(".body strong", { hasText: "bold" }).isVisible(), "bold text is rendered");
  check(await anna.locator(".body pre code").isVisible(), "the code block is rendered");
  const imageWidth = await anna.locator(".body img").evaluate((img) => img.complete && img.naturalWidth);
  check(imageWidth === 2, "the uploaded image loads on the article page");
  await audit(anna, "article");

  // --- ben reads the same article and comments; anna's open page shows it live.
  const ben = await (await browser.newContext(options)).newPage();
  watch(ben, "ben");
  await ben.goto("/register");
  await ben.getByLabel("Username").fill("ben");
  await ben.getByLabel("Email").fill("ben@example.com");
  await ben.getByLabel("Password").fill("password-1234");
  await ben.getByRole("button", { name: "Sign up" }).click();
  await ben.waitForURL(`${base}/`);
  await audit(ben, "home-signed-in");
  await ben.getByRole("link", { name: "Browsers read Markdown" }).first().click();
  await ben.getByLabel("Your comment").fill("Seen live from another browser");
  await ben.getByRole("button", { name: "Post comment" }).click();
  await ben.waitForURL(/#comment-\d+$/);
  try {
    await anna.locator(".comment-list li", { hasText: "Seen live from another browser" }).waitFor({ timeout: 10000 });
    check(true, "ben's comment appeared on anna's open page without a reload");
  } catch {
    check(false, "ben's comment appeared on anna's open page without a reload");
  }
  await audit(anna, "article-live-comment");

  await ben.getByRole("button", { name: /Favorite \(0\)/ }).click();
  check(await ben.getByRole("button", { name: /Favorited \(1\)/ }).isVisible(), "favorite counted");
  await ben.getByRole("button", { name: "Follow anna" }).click();
  check(await ben.getByRole("button", { name: "Unfollow anna" }).isVisible(), "follow shown");
  await audit(ben, "article-favorited");
  await ben.goto("/?feed=your");
  check(await ben.getByRole("link", { name: "Browsers read Markdown" }).isVisible(), "the article is in ben's feed");
  await ben.goto("/profile/anna");
  await audit(ben, "profile");
  await ben.goto("/tag/browser");
  check(await ben.getByRole("link", { name: "Browsers read Markdown" }).isVisible(), "the tag page lists the article");
  await audit(ben, "tag");

  // --- the Atom feed is XML a feed reader can parse.
  const feed = await ben.request.get("/feed.atom");
  check(feed.headers()["content-type"].startsWith("application/atom+xml"), "the feed is served as Atom");
  const feedText = await feed.text();
  const parsed = await ben.evaluate((xml) => {
    const doc = new DOMParser().parseFromString(xml, "application/xml");
    return { error: doc.querySelector("parsererror") !== null, entries: doc.getElementsByTagName("entry").length };
  }, feedText);
  check(!parsed.error && parsed.entries === 1, "the Atom feed parses as XML with the article as its entry");

  // --- search finds it, with the match highlighted.
  await ben.goto("/");
  await ben.getByRole("link", { name: "Search" }).click();
  await ben.getByLabel("Words to find in articles").fill("markdown headings");
  await ben.getByRole("button", { name: "Search" }).click();
  await ben.waitForURL(/\/search\?q=/);
  check(await ben.getByRole("link", { name: "Browsers read Markdown" }).isVisible(), "search finds the article");
  check((await ben.locator(".snippet mark").count()) > 0, "the search snippet highlights the match");
  await audit(ben, "search");

  await ben.goto("/settings");
  await audit(ben, "settings");
  await ben.getByRole("button", { name: "Sign out" }).click();
  await ben.waitForURL(`${base}/`);
  check(await ben.getByRole("link", { name: "Sign in" }).isVisible(), "signed out");
  await ben.goto("/login");
  await audit(ben, "login");

  // --- without JavaScript, forms still work.
  const plain = await (await browser.newContext({ ...options, javaScriptEnabled: false })).newPage();
  await plain.goto("/login");
  await plain.getByLabel("Email").fill("ben@example.com");
  await plain.getByLabel("Password").fill("password-1234");
  await plain.getByRole("button", { name: "Sign in" }).click();
  await plain.goto("/articles/browsers-read-markdown");
  await plain.getByLabel("Your comment").fill("Posted with scripts off");
  await plain.getByRole("button", { name: "Post comment" }).click();
  check(await plain.locator(".comment-list li", { hasText: "Posted with scripts off" }).isVisible(), "a comment posts with JavaScript off");
  await plain.screenshot({ path: `${out}/${String(++shot).padStart(2, "0")}-no-javascript.png`, fullPage: true });

  check(errors.length === 0, `no script errors in the pages${errors.length ? ": " + errors.join(" | ") : ""}`);
} catch (error) {
  failures.push(String(error && error.stack ? error.stack : error));
  console.log(`FAIL ${error}`);
} finally {
  await browser.close();
}

if (failures.length > 0) {
  console.log(`\n${failures.length} check(s) failed`);
  process.exit(1);
}
console.log("\nall browser checks passed");
