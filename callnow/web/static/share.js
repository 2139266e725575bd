// Copy buttons of the portal's sharing kit. Without scripts the buttons stay hidden and the
// addresses and snippets remain plain selectable text. The words come from the status element's
// data- attributes, written by the page in the owner's language.
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
            status.textContent = status.getAttribute("data-copied");
          }
        },
        function () {
          if (status) {
            status.textContent = status.getAttribute("data-failed");
          }
        }
      );
    });
  }
})();

// The button's live preview follows the label and colour as the owner types, before saving;
// the label's colour is worked out as the server does (black or white, the better contrast).
(function () {
  "use strict";
  function luminance(hex) {
    var sum = 0;
    var weights = [0.2126, 0.7152, 0.0722];
    for (var i = 0; i < 3; i++) {
      var c = parseInt(hex.substr(1 + 2 * i, 2), 16) / 255;
      c = c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
      sum += weights[i] * c;
    }
    return sum;
  }
  function textColour(hex) {
    var l = luminance(hex);
    return (1.05 / (l + 0.05)) >= ((l + 0.05) / 0.05) ? "#ffffff" : "#000000";
  }
  var settings = document.querySelectorAll("form.embed-settings[data-preview]");
  for (var i = 0; i < settings.length; i++) {
    (function (form) {
      var preview = document.getElementById(form.getAttribute("data-preview"));
      var label = form.querySelector("[data-preview-label]");
      var colour = form.querySelector("[data-preview-colour]");
      if (!preview || !label || !colour) {
        return;
      }
      function update() {
        if (label.value.trim()) {
          preview.textContent = label.value.trim();
        }
        if (/^#[0-9a-fA-F]{6}$/.test(colour.value)) {
          preview.style.background = colour.value;
          preview.style.color = textColour(colour.value);
        }
      }
      label.addEventListener("input", update);
      colour.addEventListener("input", update);
    })(settings[i]);
  }
})();
