// Keeps the navigation's "Pending" count current from the owner's live stream. The pending
// page runs its own stream (pending.js) and updates the count from there.
(function () {
  "use strict";
  var badge = document.getElementById("nav-pending-count");
  if (!badge || !window.EventSource || document.getElementById("pending-list")) {
    return;
  }
  var source = new EventSource(badge.getAttribute("data-events"));
  source.addEventListener("count", function (event) {
    try {
      var count = JSON.parse(event.data).count;
      badge.textContent = String(count);
    } catch (err) {
      // a malformed event changes nothing
    }
  });
})();
