/* Central admin: a structured editor for display conditions and simple rules (item, operator, value), read back in
   Japanese as one edits. It only writes the JSON the server already takes (the 「上級者向け：JSON」 box stays the
   source of what is saved) and the server validates it as before. Without JavaScript the JSON box is the editor. */
(function () {
  "use strict";
  var data = document.getElementById("builder-items");
  if (!data) { return; }
  var ITEMS = JSON.parse(data.textContent);
  var byId = {};
  ITEMS.forEach(function (it) { byId[it.id] = it; });

  var OPS = {
    choice: [["eq", "が次のとき"], ["ne", "が次以外のとき"], ["empty", "が未入力のとき"], ["filled", "が入力済みのとき"]],
    multi: [["includes", "に次を含むとき"], ["empty", "が未入力のとき"], ["filled", "が入力済みのとき"]],
    number: [["lt", "が次より小さいとき"], ["lte", "が次以下のとき"], ["gt", "が次より大きいとき"], ["gte", "が次以上のとき"],
             ["eq", "が次と同じとき"], ["empty", "が未入力のとき"], ["filled", "が入力済みのとき"]],
    date: [["lt", "が次より前のとき"], ["lte", "が次以前のとき"], ["gt", "が次より後のとき"], ["gte", "が次以後のとき"],
           ["empty", "が未入力のとき"], ["filled", "が入力済みのとき"]],
    text: [["eq", "が次と同じとき"], ["empty", "が未入力のとき"], ["filled", "が入力済みのとき"]]
  };
  var family = function (type) {
    if (type === "enum" || type === "prefecture") { return "choice"; }
    if (type === "multi_enum") { return "multi"; }
    if (type === "integer" || type === "age") { return "number"; }
    if (type === "date") { return "date"; }
    return "text";
  };
  var el = function (tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) { e.textContent = text; }
    return e;
  };
  var valueWords = function (item, v) {
    if (v === "$today") { return "今日"; }
    var f = family(item.type);
    if (f === "choice" || f === "multi") {
      var o = item.values.filter(function (x) { return x.code === v; })[0];
      return "「" + (o ? o.label : v) + "」";
    }
    if (item.type === "age") { return v + "歳"; }
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(v));
    if (m) { return m[1] + "年" + Number(m[2]) + "月" + Number(m[3]) + "日"; }
    return typeof v === "string" ? "「" + v + "」" : String(v);
  };
  // The same phrasing as formengine.render.condition_in_words, for what this editor can build.
  var words = function (c) {
    if (!c) { return ""; }
    if (c.and || c.or) {
      return c[c.and ? "and" : "or"].map(words).join(c.and ? " かつ " : " または ");
    }
    var item = byId[c.item] || { label: c.item, type: "text", values: [] };
    var label = "「" + item.label + "」";
    if ("empty" in c) { return label + (c.empty ? "が未入力" : "が入力済み"); }
    if ("eq" in c) { return label + "が" + valueWords(item, c.eq); }
    if ("ne" in c) { return label + "が" + valueWords(item, c.ne) + "以外"; }
    if ("includes" in c) { return label + "に" + valueWords(item, c.includes) + "を含む"; }
    var dated = item.type === "date";
    var order = { lt: dated ? "より前" : "未満", lte: dated ? "以前" : "以下", gt: dated ? "より後" : "を超える",
                  gte: dated ? "以後" : "以上" };
    for (var op in order) { if (op in c) { return label + "が" + valueWords(item, c[op]) + order[op]; } }
    return "（条件を読めません）";
  };

  // A list of comparison rows joined by すべて (and) / いずれか (or). parse() takes what it can show, or null.
  function ConditionBuilder(box, name, onChange) {
    var self = this;
    this.rows = [];
    var head = el("p");
    var joinLabel = el("label", {}, "条件の組み合わせ ");
    this.join = el("select", { "aria-label": name + "：条件の組み合わせ" });
    this.join.appendChild(el("option", { value: "and" }, "すべてを満たすとき"));
    this.join.appendChild(el("option", { value: "or" }, "いずれかを満たすとき"));
    joinLabel.appendChild(this.join);
    head.appendChild(joinLabel);
    this.list = el("ol", { "class": "condition-rows" });
    var add = el("button", { type: "button", "class": "secondary" }, "条件を追加");
    add.addEventListener("click", function () { self.addRow(); self.changed(); });
    box.appendChild(head);
    box.appendChild(this.list);
    box.appendChild(add);
    this.join.addEventListener("change", function () { self.changed(); });
    this.name = name;
    this.onChange = onChange;
  }
  ConditionBuilder.prototype.changed = function () { this.onChange(this.value()); };
  ConditionBuilder.prototype.addRow = function (c) {
    var self = this, n = this.rows.length + 1, li = el("li");
    var item = el("select", { "aria-label": this.name + "：条件" + n + "の項目" });
    ITEMS.forEach(function (it) { item.appendChild(el("option", { value: it.id }, it.label + "（" + it.id + "）")); });
    var op = el("select", { "aria-label": this.name + "：条件" + n + "の比べ方" });
    var valueBox = el("span");
    var remove = el("button", { type: "button", "class": "secondary" }, "削除");
    var row = { li: li, item: item, op: op, valueBox: valueBox, value: null };
    var fillOps = function () {
      var it = byId[item.value], current = op.value;
      while (op.firstChild) { op.removeChild(op.firstChild); }
      OPS[family(it.type)].forEach(function (o) { op.appendChild(el("option", { value: o[0] }, o[1])); });
      if (current && op.querySelector("option[value='" + current + "']")) { op.value = current; }
    };
    var fillValue = function () {
      var it = byId[item.value], f = family(it.type), kind = op.value;
      while (valueBox.firstChild) { valueBox.removeChild(valueBox.firstChild); }
      if (kind === "empty" || kind === "filled") { row.value = null; return; }
      var input;
      if (f === "choice" || f === "multi") {
        input = el("select", { "aria-label": self.name + "：条件" + n + "の値" });
        it.values.forEach(function (v) { input.appendChild(el("option", { value: v.code }, v.label)); });
      } else {
        input = el("input", { type: "text", "aria-label": self.name + "：条件" + n + "の値",
                              placeholder: f === "date" ? "2021-01-10 または $today" : "" });
      }
      input.addEventListener("change", function () { self.changed(); });
      input.addEventListener("input", function () { self.changed(); });
      valueBox.appendChild(input);
      row.value = input;
    };
    item.addEventListener("change", function () { fillOps(); fillValue(); self.changed(); });
    op.addEventListener("change", function () { fillValue(); self.changed(); });
    remove.addEventListener("click", function () {
      self.rows.splice(self.rows.indexOf(row), 1);
      self.list.removeChild(li);
      self.changed();
    });
    [item, op, valueBox, remove].forEach(function (x) { li.appendChild(x); li.appendChild(document.createTextNode(" ")); });
    this.list.appendChild(li);
    this.rows.push(row);
    if (c && byId[c.item]) { item.value = c.item; }
    fillOps();
    if (c) {
      var k = ["eq", "ne", "includes", "lt", "lte", "gt", "gte"].filter(function (x) { return x in c; })[0];
      op.value = "empty" in c ? (c.empty ? "empty" : "filled") : k;
    }
    fillValue();
    if (c && row.value) {
      var k2 = ["eq", "ne", "includes", "lt", "lte", "gt", "gte"].filter(function (x) { return x in c; })[0];
      row.value.value = String(c[k2]);
    }
  };
  ConditionBuilder.prototype.value = function () {
    var parts = this.rows.map(function (row) {
      var it = byId[row.item.value], c = { item: it.id }, kind = row.op.value;
      if (kind === "empty") { c.empty = true; return c; }
      if (kind === "filled") { c.empty = false; return c; }
      var v = row.value ? row.value.value : "";
      if (family(it.type) === "number" && /^-?\d+$/.test(v)) { v = Number(v); }
      c[kind] = v;
      return c;
    });
    if (!parts.length) { return null; }
    if (parts.length === 1) { return parts[0]; }
    var out = {};
    out[this.join.value] = parts;
    return out;
  };
  ConditionBuilder.prototype.load = function (c) {
    var simple = function (x) {
      return x && typeof x === "object" && byId[x.item] &&
        ["eq", "ne", "includes", "lt", "lte", "gt", "gte", "empty"].some(function (k) { return k in x; });
    };
    if (!c) { return true; }
    var parts = simple(c) ? [c] : (c.and || c.or);
    if (!parts || !parts.every(simple)) { return false; }
    this.join.value = c.or ? "or" : "and";
    var self = this;
    parts.forEach(function (p) { self.addRow(p); });
    return true;
  };

  // ---- item editor: the display condition ------------------------------------------------------------------------
  var condBox = document.getElementById("condition-builder");
  if (condBox) {
    var target = document.getElementById(condBox.getAttribute("data-target"));
    var readback = document.getElementById(condBox.getAttribute("data-readback"));
    var current = null, readable = true;
    try { current = target.value.trim() ? JSON.parse(target.value) : null; } catch (e) { readable = false; }
    var builder = new ConditionBuilder(condBox, "表示条件", function (c) {
      target.value = c ? JSON.stringify(c) : "";
      readback.textContent = c ? words(c) + "のとき表示" : "常に表示";
    });
    if (readable && builder.load(current)) {
      condBox.hidden = false;
    } else {
      condBox.parentNode.insertBefore(el("p", { "class": "hint" },
        "この条件は入れ子が深いため、下の「上級者向け：JSONで直接編集」で編集してください。"), condBox);
      document.getElementById("condition-json").open = true;
    }
  }

  // ---- definition: add a conditional rule (required / expected) ----------------------------------------------------
  var ruleBox = document.getElementById("rule-builder");
  var rulesJson = document.getElementById("rules-json");
  if (ruleBox && rulesJson) {
    document.getElementById("rule-builder-box").hidden = false;
    var when = el("div");
    var whenTitle = el("p", {}, "条件：");
    var reading = el("p", { "class": "readback", "aria-live": "polite" });
    var cond = null;
    var targets = el("select", { multiple: "multiple", size: "6", id: "rule-targets" });
    ITEMS.forEach(function (it) { if (!it.group) { targets.appendChild(el("option", { value: it.id }, it.label)); } });
    var kind = el("select", { id: "rule-kind" });
    kind.appendChild(el("option", { value: "required_if" }, "必須にする（エラー：確定できない）"));
    kind.appendChild(el("option", { value: "expected_if" }, "入力を促す（警告：確定はできる）"));
    var say = function () {
      var names = Array.prototype.filter.call(targets.options, function (o) { return o.selected; })
        .map(function (o) { return "「" + o.textContent + "」"; }).join("・");
      reading.textContent = (cond ? words(cond) + "のとき、" : "（条件を選んでください）") +
        (names || "（項目を選んでください）") + (kind.value === "required_if" ? "は必須。" : "の入力を促す。");
    };
    var b = new ConditionBuilder(when, "ルールの条件", function (c) { cond = c; say(); });
    b.addRow();
    cond = b.value();
    var targetsLabel = el("label", { "for": "rule-targets" }, "対象の項目（複数選べます）");
    var kindLabel = el("label", { "for": "rule-kind" }, "扱い");
    var addRule = el("button", { type: "button", "class": "primary" }, "このルールを追加して保存");
    var problem = el("p", { "class": "error", role: "alert" });
    addRule.addEventListener("click", function () {
      var items = Array.prototype.filter.call(targets.options, function (o) { return o.selected; })
        .map(function (o) { return o.value; });
      if (!cond || !items.length) { problem.textContent = "条件と対象の項目を選んでください。"; return; }
      var rules;
      try { rules = JSON.parse(rulesJson.value || "[]"); } catch (e) {
        problem.textContent = "いまのルールのJSONが読めません。上級者向けの欄を確認してください。"; return;
      }
      var n = 1;
      while (rules.some(function (r) { return r.id === "custom." + n; })) { n++; }
      rules.push({ id: "custom." + n, kind: kind.value, params: { when: cond, items: items },
                   severity: kind.value === "required_if" ? "error" : "warning",
                   message: words(cond) + "のときは「{label}」を入力してください。" });
      rulesJson.value = JSON.stringify(rules, null, 1);
      document.getElementById("rules-form").submit();
    });
    targets.addEventListener("change", say);
    kind.addEventListener("change", say);
    [whenTitle, when, el("p"), targetsLabel, el("br"), targets, el("p"), kindLabel, el("br"), kind, reading, problem,
     addRule].forEach(function (x) { ruleBox.appendChild(x); });
    say();
  }
})();
