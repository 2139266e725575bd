// Inside the overlay of the CallNow button: Escape closes it, as it would on the site itself.
(function () {
  "use strict";
  if (window.parent === window) {
    return;
  }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      window.parent.postMessage("callnow:close", "*");
    }
  });
})();
