// After a refused submit, move focus to the error summary so keyboard and screen-reader users
// land on what went wrong (the summary also has autofocus; this covers browsers that ignore it).
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (summary && document.activeElement !== summary) {
    summary.focus();
  }
})();
