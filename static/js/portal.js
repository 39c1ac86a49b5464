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
  // Conditional items follow the answers as they are typed (the server applies the same conditions on save).
  if (form) {
    var valueOf = function (id) {
      var els = form.querySelectorAll("[name='" + id.replace(/'/g, "") + "']");
      var out = [];
      Array.prototype.forEach.call(els, function (el) {
        if ((el.type === "checkbox" || el.type === "radio") && !el.checked) { return; }
        if (el.value !== "") { out.push(el.value); }
      });
      return out;
    };
    var holds = function (c) {
      if (!c || typeof c !== "object") { return true; }
      if (c.and) { return c.and.every(holds); }
      if (c.or) { return c.or.some(holds); }
      if (c.not) { return !holds(c.not); }
      if (!c.item) { return true; }  // row quantifiers etc.: leave it to the server
      var v = valueOf(c.item);
      if ("empty" in c) { return (v.length === 0) === !!c.empty; }
      if (v.length === 0) { return false; }
      if ("eq" in c) { return v.indexOf(String(c.eq)) >= 0; }
      if ("ne" in c) { return v.indexOf(String(c.ne)) < 0; }
      if ("in" in c) { return v.some(function (x) { return c["in"].map(String).indexOf(x) >= 0; }); }
      if ("includes" in c) { return v.indexOf(String(c.includes)) >= 0; }
      return true;  // numeric/date comparisons: the server decides on save
    };
    var conditional = form.querySelectorAll("[data-visible-when]");
    var refresh = function () {
      Array.prototype.forEach.call(conditional, function (el) {
        try { el.hidden = !holds(JSON.parse(el.getAttribute("data-visible-when"))); } catch (e) { el.hidden = false; }
      });
    };
    if (conditional.length) { form.addEventListener("change", refresh); }
  }

  // Confirm step is an explicit act.
  Array.prototype.forEach.call(document.querySelectorAll("button[data-confirm]"), function (b) {
    b.addEventListener("click", function (e) { if (!window.confirm(b.getAttribute("data-confirm"))) { e.preventDefault(); } });
  });
})();
