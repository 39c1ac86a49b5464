/* Progressive enhancement only: every page works without JavaScript. */
(function () {
  "use strict";
  var box = document.getElementById("delivery-status");
  if (box) {
    var order = ["queued", "sending", "accepted"];
    var paint = function (s) {
      var label = document.getElementById("status-label");
      label.textContent = s.label;
      label.className = "badge status-" + s.status;
      document.getElementById("receipt-id").textContent = s.receipt_id || "（受理後に表示）";
      document.getElementById("report-date").textContent = s.report_date || "";
      document.getElementById("status-guidance").textContent = s.guidance || "";
      var err = document.getElementById("status-error");
      err.textContent = s.error || "";
      err.hidden = !s.error;
      var idx = order.indexOf(s.status === "retrying" ? "sending" : s.status);
      Array.prototype.forEach.call(box.querySelectorAll(".steps li"), function (li, i) {
        li.className = i < idx || s.status === "accepted" ? "done" : (i === idx ? "current" : "");
      });
      if (s.final) { document.getElementById("status-hint").textContent = ""; }
      return s.final;
    };
    var poll = function () {
      fetch(box.getAttribute("data-status-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (s) { if (!paint(s)) { setTimeout(poll, 1500); } })
        .catch(function () { setTimeout(poll, 5000); });
    };
    poll();
  }
  // Warn before leaving a form with unsaved edits.
  var form = document.getElementById("notification-form");
  if (form) {
    var dirty = false;
    form.addEventListener("input", function () { dirty = true; });
    form.addEventListener("submit", function () { dirty = false; });
    window.addEventListener("beforeunload", function (e) { if (dirty) { e.preventDefault(); e.returnValue = ""; } });
  }
  // Confirm step is an explicit act.
  Array.prototype.forEach.call(document.querySelectorAll("button[data-confirm]"), function (b) {
    b.addEventListener("click", function (e) { if (!window.confirm(b.getAttribute("data-confirm"))) { e.preventDefault(); } });
  });
})();
