// Booked times: the page shows them on the owner's clock with its zone; where the browser says
// the visitor's own zone differs, this adds the visitor's local time beside them. Without
// scripts nothing is lost but that addition.
(function () {
  "use strict";
  if (!window.Intl || !Intl.DateTimeFormat) {
    return;
  }
  var own;
  try {
    own = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (err) {
    return;
  }
  var format = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit"
  });

  function local(utc) {
    var moment = new Date(utc);
    return isNaN(moment.getTime()) ? "" : format.format(moment);
  }

  // The status page: "Booked for …" gets the visitor's time after it.
  var booked = document.querySelectorAll("[data-utc][data-zone]");
  for (var i = 0; i < booked.length; i++) {
    var zone = booked[i].getAttribute("data-zone");
    var out = booked[i].parentNode.querySelector(".local-time");
    if (zone && zone !== own && out) {
      out.textContent = "(" + out.getAttribute("data-label") + ": " + local(booked[i].getAttribute("data-utc")) + ")";
    }
  }

  // The booking form: the chosen slot in the visitor's time, below the list.
  var marker = document.getElementById("local-zone");
  var select = document.getElementById("slot");
  var shown = document.getElementById("slot-local");
  if (!marker || !select || !shown || marker.getAttribute("data-zone") === own) {
    return;
  }
  function show() {
    var option = select.options[select.selectedIndex];
    shown.textContent = option ? shown.getAttribute("data-label") + ": " + local(option.getAttribute("data-utc")) : "";
  }
  select.addEventListener("change", show);
  show();
})();
