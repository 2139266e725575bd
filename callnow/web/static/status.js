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
  var nextStep = document.getElementById("next-step");
  var moreSteps = document.getElementById("more-steps");
  var steps = document.querySelectorAll("#steps li");

  function showStep(current) {
    for (var i = 0; i < steps.length; i++) {
      var index = parseInt(steps[i].getAttribute("data-step"), 10);
      steps[i].className = index < current ? "done" : index === current ? "current" : "";
      if (index === current) {
        steps[i].setAttribute("aria-current", "step");
      } else {
        steps[i].removeAttribute("aria-current");
      }
    }
  }
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
    if (typeof data.step === "number") {
      showStep(data.step);
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
      if (nextStep) {
        nextStep.hidden = false;
      }
      if (moreSteps) {
        moreSteps.hidden = false;
      }
    }
  });
})();
