// The owner's pending list, kept current from /portal/pending/events without a reload.
// Items are built with DOM methods and textContent only: names come from visitors.
(function () {
  "use strict";
  var list = document.getElementById("pending-list");
  if (!list || !window.EventSource) {
    return;
  }
  var csrf = list.getAttribute("data-csrf");
  var count = document.getElementById("pending-count");
  var empty = document.getElementById("pending-empty");

  function answerForm(token, action, label, className) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = "/portal/requests/" + encodeURIComponent(token) + "/" + action;
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = "csrf";
    input.value = csrf;
    var button = document.createElement("button");
    button.type = "submit";
    button.textContent = label;
    if (className) {
      button.className = className;
    }
    form.appendChild(input);
    form.appendChild(button);
    return form;
  }

  // Words come with each event, in the owner's language; English if an older server sent none.
  var words = {accept: "Accept", decline: "Decline", anonymous: "Anonymous"};
  var texts = {};

  function row(item) {
    var li = document.createElement("li");
    li.setAttribute("data-token", item.token);
    var p = document.createElement("p");
    var strong = document.createElement("strong");
    strong.textContent = item.name || words.anonymous;
    p.appendChild(strong);
    p.appendChild(document.createTextNode(", " + item.number + " "));
    var muted = document.createElement("span");
    muted.className = "muted";
    var said = texts[item.token] || {};
    muted.textContent = said.details || "(page " + item.callnow_id + ", asked at " +
      item.requested + ", waits until " + item.expires + ")";
    if (item.cost) {
      var cost = document.createElement("span");
      cost.className = "cost";
      cost.textContent = said.cost || "Calling back: " + item.cost;
      muted.appendChild(document.createElement("br"));
      muted.appendChild(cost);
    }
    p.appendChild(muted);
    var buttons = document.createElement("div");
    buttons.className = "inline";
    buttons.appendChild(answerForm(item.token, "accept", words.accept, ""));
    buttons.appendChild(answerForm(item.token, "decline", words.decline, "danger"));
    li.appendChild(p);
    li.appendChild(buttons);
    return li;
  }

  var source = new EventSource(list.getAttribute("data-events"));
  source.addEventListener("pending", function (event) {
    var data;
    try {
      data = JSON.parse(event.data);
    } catch (err) {
      return;
    }
    if (data.words) {
      words = data.words;
      texts = data.texts || {};
    }
    var shown = Array.prototype.map.call(list.children, function (li) {
      return li.getAttribute("data-token");
    });
    if (window.CallNowNotices) {
      window.CallNowNotices.seen(data.items);
    }
    var fresh = data.items.map(function (item) { return item.token; });
    if (shown.join(" ") === fresh.join(" ")) {
      return; // unchanged: keep focus and do not re-announce
    }
    while (list.firstChild) {
      list.removeChild(list.firstChild);
    }
    data.items.forEach(function (item) { list.appendChild(row(item)); });
    if (count) {
      count.textContent = data.words ? data.words.waiting : data.items.length + " waiting";
    }
    var badge = document.getElementById("nav-pending-count");
    if (badge) {
      badge.textContent = String(data.items.length);
    }
    if (empty) {
      empty.hidden = data.items.length > 0;
    }
  });
})();
