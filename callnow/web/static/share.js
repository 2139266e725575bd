// Copy buttons of the portal's sharing kit. Without scripts the buttons stay hidden and the
// addresses and snippets remain plain selectable text.
(function () {
  "use strict";
  if (!navigator.clipboard) {
    return;
  }
  var buttons = document.querySelectorAll("button.copy[data-copy]");
  for (var i = 0; i < buttons.length; i++) {
    var button = buttons[i];
    button.hidden = false;
    button.addEventListener("click", function (event) {
      var clicked = event.currentTarget;
      var source = document.getElementById(clicked.getAttribute("data-copy"));
      if (!source) {
        return;
      }
      var text = source.value !== undefined ? source.value : source.textContent;
      var status = clicked.closest(".share-kit").querySelector("[role=status]");
      navigator.clipboard.writeText(text).then(
        function () {
          if (status) {
            status.textContent = "Copied to the clipboard.";
          }
        },
        function () {
          if (status) {
            status.textContent = "Could not copy; please select the text and copy it.";
          }
        }
      );
    });
  }
})();
