// Sample filters: each group shows all samples, or only those flagged failed / changed / fixed / broken.
(function () {
  "use strict";
  document.querySelectorAll(".group").forEach(function (group) {
    var buttons = group.querySelectorAll(".filters button");
    var samples = group.querySelectorAll(".sample");
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        var filter = button.getAttribute("data-filter");
        var shown = 0;
        samples.forEach(function (sample) {
          var visible = filter === "all" || sample.classList.contains(filter);
          sample.hidden = !visible;
          if (visible) { shown += 1; }
        });
        group.setAttribute("data-filter", filter);
        buttons.forEach(function (other) { other.setAttribute("aria-pressed", String(other === button)); });
        group.querySelector(".shown-n").textContent = String(shown);
      });
    });
  });
}());
