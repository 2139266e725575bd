// Browser notifications of new requests waiting for the owner, while any portal tab is open.
// Fed by the Pending page's live stream (/portal/pending/events): pending.js hands its items
// over on that page; elsewhere this script listens to the stream itself. A short tone plays
// unless the owner turned the sound off (kept in this browser's localStorage).
(function () {
  "use strict";
  var SOUND_KEY = "callnow.notice-sound";
  var known = null; // tokens already seen; null until the first snapshot (no burst on load)
  // The words, in the owner's language, from the script element's data- attributes.
  var script = document.currentScript || document.getElementById("notices-script");
  function words(key, values) {
    var text = (script && script.getAttribute("data-" + key)) || "";
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(values[name]);
    });
    return text;
  }

  function soundOn() {
    try {
      return window.localStorage.getItem(SOUND_KEY) !== "off";
    } catch (err) {
      return true;
    }
  }

  function beep() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context || !soundOn()) {
      return;
    }
    try {
      var audio = new Context();
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.1;
      tone.connect(gain);
      gain.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.2);
    } catch (err) {
      // Autoplay rules may refuse sound before the owner touched the page: stay silent.
    }
  }

  function announce(item) {
    var values = { caller: item.name, number: item.number, page: item.callnow_id };
    if (window.Notification && Notification.permission === "granted") {
      var notice = new Notification(words("title"), {
        body: words(item.name ? "named" : "anonymous", values),
        tag: "callnow-" + item.token
      });
      notice.onclick = function () {
        window.focus();
        window.location.href = "/portal/pending";
      };
    }
    beep();
  }

  function seen(items) {
    var tokens = {};
    items.forEach(function (item) { tokens[item.token] = true; });
    if (known !== null) {
      items.forEach(function (item) {
        if (!known[item.token]) {
          announce(item);
        }
      });
    }
    known = tokens;
  }

  window.CallNowNotices = { seen: seen };

  // The preferences page: ask for permission and switch the sound.
  var allow = document.getElementById("browser-notices");
  var status = document.getElementById("browser-notices-status");
  var sound = document.getElementById("notice-sound");
  function showPermission() {
    if (!status) {
      return;
    }
    if (!window.Notification) {
      status.textContent = words("unsupported");
    } else {
      status.textContent = words(Notification.permission);
    }
  }
  if (allow) {
    allow.addEventListener("click", function () {
      if (window.Notification && Notification.requestPermission) {
        Notification.requestPermission().then(showPermission, showPermission);
      }
    });
    showPermission();
  }
  if (sound) {
    sound.checked = soundOn();
    sound.addEventListener("change", function () {
      try {
        window.localStorage.setItem(SOUND_KEY, sound.checked ? "on" : "off");
      } catch (err) {
        // Private windows may refuse storage: the choice lasts for this page only.
      }
    });
  }

  // Other portal pages: listen to the stream here (the Pending page's script does it there).
  if (!document.getElementById("pending-list") && window.EventSource) {
    var source = new EventSource("/portal/pending/events");
    source.addEventListener("pending", function (event) {
      try {
        seen(JSON.parse(event.data).items);
      } catch (err) {
        // A malformed event changes nothing.
      }
    });
  }
})();
