// The hours editor without reloads: "Add" shows a day's next empty row, "Remove" empties a
// row and hides it. Without this script the form still works: every filled row and one blank
// row per day are shown, and emptying a row removes its window.
(function () {
  "use strict";
  var days = document.querySelectorAll(".hours-day");
  Array.prototype.forEach.call(days, function (day) {
    var rows = Array.prototype.slice.call(day.querySelectorAll(".hours-row"));
    var add = day.querySelector(".hours-add");

    function refresh() {
      var hidden = rows.filter(function (row) { return row.hidden; });
      add.hidden = hidden.length === 0;
    }

    rows.forEach(function (row) {
      var inputs = row.querySelectorAll("input");
      var remove = row.querySelector(".hours-remove");
      remove.hidden = false;
      // A row left blank by a script-less render is the "add" row: hide it, Add shows it.
      if (!inputs[0].value && !inputs[1].value) {
        row.hidden = true;
      }
      remove.addEventListener("click", function () {
        inputs[0].value = "";
        inputs[1].value = "";
        row.hidden = true;
        // Move the emptied row last, so filled rows stay first and in order.
        row.parentNode.insertBefore(row, add);
        rows.splice(rows.indexOf(row), 1);
        rows.push(row);
        refresh();
        add.focus();
      });
    });
    add.addEventListener("click", function () {
      var next = rows.filter(function (row) { return row.hidden; })[0];
      if (next) {
        next.hidden = false;
        next.querySelector("input").focus();
      }
      refresh();
    });
    refresh();
  });
})();
