// The CallNow button: turns the owner's plain link into a button that opens their form in an
// overlay. On a site the owner has not listed (the page would refuse to be framed there) and
// without scripts, the link simply opens the page in a new window.
(function (config) {
  "use strict";
  var script = document.currentScript;
  if (!config || !script || typeof HTMLDialogElement === "undefined") {
    return;
  }
  var base = new URL(script.src).origin;
  var framed = location.origin === base || config.origins.indexOf(location.origin) !== -1;
  var links = document.querySelectorAll("a[data-callnow]");

  function style(link) {
    var s = link.style;
    link.textContent = config.label;
    s.display = "inline-block";
    s.padding = "12px 20px";
    s.borderRadius = "24px";
    s.background = config.colour;
    s.color = config.text;
    s.font = "bold 16px/1.2 system-ui, Arial, sans-serif";
    s.textDecoration = "none";
    s.boxShadow = "0 2px 6px rgba(0, 0, 0, 0.3)";
    if (config.position !== "inline" && !link.hasAttribute("data-callnow-preview")) {
      s.position = "fixed";
      s.bottom = "16px";
      s[config.position === "bottom-left" ? "left" : "right"] = "16px";
      s.zIndex = "2147483000";
    }
  }

  function open(link) {
    var dialog = document.createElement("dialog");
    var close = document.createElement("button");
    var frame = document.createElement("iframe");
    dialog.setAttribute("aria-label", config.label);
    dialog.className = "callnow-overlay";
    var d = dialog.style;
    d.padding = "0";
    d.border = "0";
    d.borderRadius = "8px";
    d.width = "min(480px, calc(100vw - 16px))";
    d.maxWidth = "calc(100vw - 16px)";
    d.height = "min(760px, calc(100vh - 16px))";
    d.maxHeight = "calc(100vh - 16px)";
    d.overflow = "hidden";
    // Dims the site behind: ::backdrop cannot be styled from a script without a style sheet,
    // which the site's own policy might refuse.
    d.boxShadow = "0 0 0 100vmax rgba(0, 0, 0, 0.5)";
    close.type = "button";
    close.textContent = config.close;
    close.style.cssText = "position:absolute;top:8px;right:8px;padding:6px 12px;" +
      "font:bold 14px system-ui,Arial,sans-serif;background:#fff;color:#000;" +
      "border:2px solid #000;border-radius:4px;cursor:pointer";
    frame.src = base + config.frame;
    frame.title = config.frameTitle;
    frame.style.cssText = "display:block;width:100%;height:100%;border:0;";
    dialog.appendChild(frame);
    dialog.appendChild(close);
    document.body.appendChild(dialog);

    // Escape pressed inside the form (another origin) arrives as a message from it.
    function onMessage(event) {
      if (event.origin === base && event.source === frame.contentWindow &&
          event.data === "callnow:close") {
        dialog.close();
      }
    }
    close.addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("close", function () {
      window.removeEventListener("message", onMessage);
      dialog.remove();
      link.focus();
    });
    window.addEventListener("message", onMessage);
    dialog.showModal();
    close.focus();
  }

  for (var i = 0; i < links.length; i++) {
    var link = links[i];
    if (link.getAttribute("data-callnow") !== config.id || link.hasAttribute("data-callnow-ready")) {
      continue;
    }
    link.setAttribute("data-callnow-ready", "");
    style(link);
    if (framed) {
      // It now opens a dialog, so it says so, and Space works as on any button.
      link.setAttribute("role", "button");
      link.setAttribute("aria-haspopup", "dialog");
      link.addEventListener("click", function (event) {
        event.preventDefault();
        open(event.currentTarget);
      });
      link.addEventListener("keydown", function (event) {
        if (event.key === " ") {
          event.preventDefault();
          open(event.currentTarget);
        }
      });
    }
  }
})(/*CONFIG*/null);
