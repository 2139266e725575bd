// Live status for the visitor: follows the request's event stream and updates #status in
// place. #status is an aria-live region, so screen readers announce each new message.
// Without JavaScript (or EventSource) the page's <noscript> refresh does the same job.
(function () {
  "use strict";
  var status = document.getElementById("status");
  if (!status || !window.EventSource) {
    return;
  }
  var url = status.getAttribute("data-events");
  if (!url) {
    return;
  }
  var cancelForm = document.getElementById("cancel");
  var hint = document.getElementById("live-hint");
  var source = new EventSource(url);

  source.addEventListener("status", function (event) {
    var data;
    try {
      data = JSON.parse(event.data);
    } catch (err) {
      return;
    }
    // Only touch the live region when something changed, or it would be announced again.
    if (status.getAttribute("data-state") !== data.state || status.textContent !== data.message) {
      status.textContent = data.message;
      status.setAttribute("data-state", data.state);
      status.className = "status state-" + data.state;
    }
    if (cancelForm) {
      cancelForm.hidden = !data.cancellable;
    }
    if (data.terminal) {
      // The request has ended: stop the browser from reconnecting.
      source.close();
      if (hint) {
        hint.hidden = true;
      }
    }
  });
})();
