(function () {
  "use strict";
  var input = document.getElementById("pick");
  var table = document.getElementById("index");
  var status = document.getElementById("pick-status");
  if (!input || !table) { return; }
  var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr"));
  function matches(q) {
    q = q.trim().toLowerCase();
    return rows.filter(function (r) { return r.dataset.name.toLowerCase().indexOf(q) !== -1; });
  }
  function filter() {
    var q = input.value;
    var found = matches(q);
    rows.forEach(function (r) { r.hidden = q !== "" && found.indexOf(r) === -1; });
    status.textContent = q === "" ? "" : found.length + " of " + rows.length + " checkpoints";
    return found;
  }
  function jump() {
    var found = filter();
    var exact = rows.filter(function (r) { return r.dataset.name === input.value; });
    var target = exact.length ? exact[0] : (found.length === 1 ? found[0] : null);
    if (!target) { return; }
    rows.forEach(function (r) { r.classList.remove("picked"); });
    target.classList.add("picked");
    var link = target.querySelector("a.detail");
    if (link) { window.location.hash = link.getAttribute("href").split("#")[1] || ""; }
    target.scrollIntoView({block: "center"});
  }
  input.addEventListener("input", filter);
  input.addEventListener("change", jump);
  input.addEventListener("keydown", function (e) { if (e.key === "Enter") { jump(); } });
})();
