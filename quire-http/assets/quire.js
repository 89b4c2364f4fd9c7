// quire's one script (served by quire itself; the pages work fully without it):
// new comments appear on an open article page, a notice tells the home page that new
// articles were published, and the editor's image upload inserts the image's Markdown into
// the article body. Live updates come from /api/live/sse (same origin, allowed by the CSP).
(function () {
  "use strict";

  function text(tag, value, className) {
    var node = document.createElement(tag);
    node.textContent = value;
    if (className) node.className = className;
    return node;
  }

  function commentItem(comment) {
    var item = document.createElement("li");
    item.id = "comment-" + comment.id;
    item.className = "new";
    var body = document.createElement("div");
    body.className = "comment-body";
    body.appendChild(text("p", comment.body));
    var meta = document.createElement("p");
    meta.className = "meta";
    var author = text("a", comment.author.username);
    author.href = "/profile/" + encodeURIComponent(comment.author.username);
    var time = text("time", String(comment.createdAt).slice(0, 10));
    time.setAttribute("datetime", comment.createdAt);
    meta.appendChild(author);
    meta.appendChild(document.createTextNode(" · "));
    meta.appendChild(time);
    item.appendChild(body);
    item.appendChild(meta);
    return item;
  }

  function watchArticle(article) {
    var list = document.querySelector(".comment-list");
    var notice = document.querySelector(".live-notice");
    if (!list || !window.EventSource) return;
    var source = new EventSource("/api/live/sse?article=" + encodeURIComponent(article.getAttribute("data-slug")));
    source.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      if (event.type === "comment.created" && event.comment) {
        if (document.getElementById("comment-" + event.comment.id)) return;
        list.insertBefore(commentItem(event.comment), list.firstChild);
        var empty = document.querySelector(".no-comments");
        if (empty) empty.remove();
        if (notice) notice.textContent = "New comment from " + event.comment.author.username + ".";
      } else if (event.type === "comment.deleted" && event.commentId) {
        var gone = document.getElementById("comment-" + event.commentId);
        if (gone) gone.remove();
      }
    };
  }

  function watchHome(heading) {
    if (!window.EventSource) return;
    var count = 0;
    var notice = document.createElement("p");
    notice.className = "notice";
    notice.setAttribute("role", "status");
    notice.hidden = true;
    heading.parentNode.insertBefore(notice, heading.nextSibling);
    var source = new EventSource("/api/live/sse?all=true");
    source.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      if (event.type !== "article.created") return;
      count += 1;
      notice.textContent = "";
      var link = text("a", count === 1 ? "1 new article: show it" : count + " new articles: show them");
      link.href = "/";
      notice.appendChild(link);
      notice.hidden = false;
    };
  }

  function enhanceUpload(form) {
    var body = document.getElementById("f-body");
    if (!body || !window.fetch || !window.FormData) return;
    form.addEventListener("submit", function (submit) {
      submit.preventDefault();
      var button = form.querySelector("button");
      button.disabled = true;
      fetch(form.action, { method: "POST", body: new FormData(form), headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("upload failed (" + response.status + ")");
          return response.json();
        })
        .then(function (uploaded) {
          var at = body.selectionStart || body.value.length;
          body.value = body.value.slice(0, at) + "\n" + uploaded.markdown + "\n" + body.value.slice(at);
          form.reset();
        })
        .catch(function (error) { window.alert(error.message); })
        .then(function () { button.disabled = false; });
    });
    var submit = form.querySelector("button");
    if (submit) submit.removeAttribute("formtarget");
  }

  var article = document.querySelector("article[data-slug]");
  if (article) watchArticle(article);
  var heading = document.getElementById("feed-title");
  if (heading) watchHome(heading);
  var upload = document.querySelector("form.upload[enctype]");
  if (upload) enhanceUpload(upload);
})();
