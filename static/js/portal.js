/* Progressive enhancement only: every page works without JavaScript (the server parses, converts and checks
   everything again on save). Plain ES5 + fetch for old hospital terminals; no framework, no inline script (CSP).
   What is typed is patient data: it is POSTed to same-origin endpoints, never put into a URL, never logged. */
(function () {
  "use strict";
  document.documentElement.className += " js";

  // ---- the EMR launch answers with the form itself: the address bar gets the form's own URL, so that a reload,
  // a bookmark or "back" opens the form and never the spent one-time launch URL ----------------------------------
  var canonical = document.querySelector("link[rel=canonical]");
  if (canonical && window.history && history.replaceState) {
    var target = canonical.getAttribute("href");
    if (target && target.charAt(0) === "/" && location.pathname !== target) { history.replaceState(null, "", target); }
  }

  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  // ---- IME: nothing reacts between compositionstart and compositionend ------------------------------------
  var composing = false;
  document.addEventListener("compositionstart", function () { composing = true; }, true);
  document.addEventListener("compositionend", function () { composing = false; }, true);
  var isComposing = function (e) { return composing || (e && (e.isComposing || e.keyCode === 229)); };

  // ---- same-origin POST of a few fields, JSON back -------------------------------------------------------------
  var csrfToken = function () {
    var el = document.querySelector("input[name=csrfmiddlewaretoken]");
    return el ? el.value : "";
  };
  var postJSON = function (url, fields) {
    var body = fields instanceof FormData ? fields : new URLSearchParams();
    if (!(fields instanceof FormData)) {
      Object.keys(fields).forEach(function (k) { body.append(k, fields[k]); });
    }
    return fetch(url, { method: "POST", credentials: "same-origin", body: body,
                        headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); });
  };
  var debounce = function (fn, ms) {
    var t = null;
    return function () {
      var args = arguments, self = this;
      clearTimeout(t);
      t = setTimeout(function () { fn.apply(self, args); }, ms);
    };
  };

  // 2021-01-10 → 2021年1月10日 (how every screen shows a date; the server's ja_format filters do the same).
  var dateJa = function (iso) {
    var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso || "");
    return m ? m[1] + "年" + Number(m[2]) + "月" + Number(m[3]) + "日" : (iso || "");
  };

  // ---- delivery status: live ------------------------------------------------------------------------------------
  var box = document.getElementById("delivery-status");
  if (box) {
    var order = ["queued", "sending", "accepted"];
    var paint = function (s) {
      var label = document.getElementById("status-label");
      label.textContent = s.label;
      label.className = "badge status-" + s.status;
      document.getElementById("receipt-id").textContent = s.receipt_id || "（受理後に表示）";
      document.getElementById("report-date").textContent = dateJa(s.report_date);
      document.getElementById("status-guidance").textContent = s.guidance || "";
      var err = document.getElementById("status-error");
      err.textContent = s.error || "";
      err.hidden = !s.error;
      var idx = order.indexOf(s.status === "retrying" ? "sending" : s.status);
      each(box.querySelectorAll(".steps li"), function (li, i) {
        li.className = i < idx || s.status === "accepted" ? "done" : (i === idx ? "current" : "");
      });
      var fax = document.getElementById("fax-offer");
      if (fax) { fax.hidden = !s.fax_offer; }
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

  // ---- sign-in: the terminal may remember the user name (opt-in; never the password or the one-time code) ------
  var login = document.getElementById("login-form");
  if (login) {
    var KEY = "hersys-assist.username";
    var user = login.querySelector("[name=username]"), remember = document.getElementById("remember-username");
    var store = null;
    try { store = window.localStorage; } catch (err) { store = null; }
    if (store && user && remember) {
      remember.closest(".remember").hidden = false;
      var known = store.getItem(KEY);
      if (known && !user.value) {
        user.value = known;
        remember.checked = true;
        var password = login.querySelector("[name=password]");
        if (password) { password.focus(); }
      }
      login.addEventListener("submit", function () {
        if (remember.checked && user.value.trim()) { store.setItem(KEY, user.value.trim()); } else { store.removeItem(KEY); }
      });
    }
  }

  var form = document.getElementById("notification-form");
  if (!form) { wireConfirmButtons(); return; }
  var urls = {
    date: form.getAttribute("data-input-date"),
    kana: form.getAttribute("data-input-kana"),
    postal: form.getAttribute("data-input-postal"),
    check: form.getAttribute("data-check")
  };

  // ---- Enter never submits the form nor adopts a suggestion -----------------------------------------------------
  // (The form's first submit button is a disabled one, so implicit submission does nothing even without this.)
  form.addEventListener("keydown", function (e) {
    if (e.key !== "Enter" || isComposing(e)) { return; }
    var t = e.target;
    if (t.tagName === "INPUT" && t.type !== "submit" && t.type !== "button") { e.preventDefault(); }
  });

  // Warn before leaving a form with unsaved edits.
  var dirty = false;
  form.addEventListener("input", function (e) {
    dirty = true;
    if (e.isTrusted && e.target.setAttribute) { e.target.setAttribute("data-typed", ""); }  // typed by a person
  });
  form.addEventListener("change", function () { dirty = true; });
  form.addEventListener("submit", function () { dirty = false; });
  window.addEventListener("beforeunload", function (e) { if (dirty) { e.preventDefault(); e.returnValue = ""; } });

  // ---- nothing typed is lost: autosave as one types; an ended session keeps the input in this tab --------------
  // What differs from the page as loaded is posted (debounced) to the autosave endpoint, which keeps it apart
  // from the notification until it is saved. When the session has ended (401/403, or sent to the sign-in page),
  // the changed fields stay in sessionStorage (this tab only) and come back after signing in again (`next`).
  var autosaveUrl = form.getAttribute("data-autosave");
  var statusBox = document.getElementById("autosave-status");
  var warningBox = document.getElementById("session-warning");
  var keepKey = "hersys-unsaved:" + location.pathname;
  var SKIP = { csrfmiddlewaretoken: 1, lock_version: 1, base: 1, emr_shown: 1, conflict_items: 1 };
  var typedFields = function () {
    var out = [];
    each(form.elements, function (el) {
      if (!el.name || SKIP[el.name] || el.disabled || /^(submit|button|hidden|file)$/.test(el.type)) { return; }
      if (el.type === "checkbox" || el.type === "radio") {
        if (el.checked !== el.defaultChecked) { out.push([el.name, el.value, el.checked ? "on" : "off"]); }
      } else if (el.tagName === "SELECT") {
        var changed = Array.prototype.some.call(el.options, function (o) { return o.selected !== o.defaultSelected; });
        if (changed) { out.push([el.name, el.value, "value"]); }
      } else if (el.value !== el.defaultValue) {
        out.push([el.name, el.value, "value"]);
      }
    });
    return out;
  };
  var sessionEnded = function () {
    var fields = typedFields();
    try { if (fields.length) { sessionStorage.setItem(keepKey, JSON.stringify(fields)); } } catch (err) { /* full */ }
    warningBox.hidden = false;
    warningBox.innerHTML = "";
    var strong = document.createElement("strong");
    strong.textContent = "サインインの有効期限が切れました。";
    var link = document.createElement("a");
    link.href = form.getAttribute("data-login");
    link.textContent = "もう一度サインインする";
    warningBox.appendChild(strong);
    warningBox.appendChild(document.createTextNode(
      "入力した内容はこの画面（タブ）に一時的に保存しています。サインインし直すとこの届出に戻り、入力が復元されます。"));
    warningBox.appendChild(link);
    dirty = false;  // the sign-in link must not be blocked by the leave warning: the input is kept
  };
  var idleSeconds = Number(form.getAttribute("data-idle-seconds")) || 0;
  var idleTimers = [];
  var armIdle = function () {
    idleTimers.forEach(clearTimeout);
    idleTimers = [];
    if (!idleSeconds) { return; }
    var lead = Math.min(120, Math.floor(idleSeconds / 5));
    idleTimers.push(setTimeout(function () {
      warningBox.hidden = false;
      warningBox.textContent = "操作がない状態が続いています。あと約" + Math.max(1, Math.round(lead / 60)) +
        "分でサインインが切れます。入力は自動で保存しています。続ける場合は何か入力するか、";
      var keep = document.createElement("button");
      keep.type = "button";
      keep.className = "secondary";
      keep.textContent = "操作を続ける";
      keep.addEventListener("click", function () { autosaveNow(true); });
      warningBox.appendChild(keep);
    }, (idleSeconds - lead) * 1000));
    idleTimers.push(setTimeout(sessionEnded, idleSeconds * 1000 + 2000));
  };
  var autosaveNow = function (force) {
    if (!autosaveUrl) { return; }
    var data = new FormData(form);
    if (!force && !typedFields().length && !form.hasAttribute("data-restored")) { return; }
    fetch(autosaveUrl, { method: "POST", credentials: "same-origin", body: data,
                         headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" } })
      .then(function (r) {
        var type = r.headers.get("Content-Type") || "";
        if (r.status === 401 || r.status === 403 || r.redirected || type.indexOf("json") < 0) {
          sessionEnded();
          return null;
        }
        return r.json();
      })
      .then(function (r) {
        if (!r) { return; }
        try { sessionStorage.removeItem(keepKey); } catch (err) { /* nothing kept */ }
        warningBox.hidden = true;
        statusBox.textContent = r.kept ? "未保存の入力を自動で控えました（" + r.saved_at + "）。「下書き保存」で届出に反映されます。" : "";
        armIdle();
      })
      .catch(function () { statusBox.textContent = "自動保存できませんでした（通信）。入力はこの画面に残っています。"; });
  };
  var autosaveSoon = debounce(function () {
    if (composing) { autosaveSoon(); return; }  // never mid-composition: after the IME commits
    autosaveNow(false);
  }, 1200);
  form.addEventListener("input", function (e) { if (!isComposing(e)) { autosaveSoon(); } });
  form.addEventListener("change", autosaveSoon);
  // After signing in again: put back what this tab kept, then keep it on the server.
  (function restore() {
    var kept = null;
    try { kept = JSON.parse(sessionStorage.getItem(keepKey) || "null"); } catch (err) { kept = null; }
    if (!kept || !kept.length) { return; }
    kept.forEach(function (f) {
      each(form.querySelectorAll("[name='" + String(f[0]).replace(/['\\]/g, "") + "']"), function (el) {
        if (el.type === "checkbox" || el.type === "radio") {
          if (el.value === f[1]) { el.checked = f[2] === "on"; }
        } else if (f[2] === "value") {
          el.value = f[1];
        }
        el.setAttribute("data-typed", "");
      });
    });
    dirty = true;
    statusBox.textContent = "サインインが切れる前の入力を復元しました。「下書き保存」で届出に反映されます。";
    autosaveNow(true);
  })();
  armIdle();

  // ---- dates: one text box, the understood date shown as one types (/input/date) ---------------------------------
  var setUnderstood = function (input, text, level) {
    var out = document.getElementById(input.id + "-understood");
    if (!out) { return; }
    out.textContent = text;
    out.className = "understood" + (level ? " " + level : "");
  };
  // While typing: the understood date, or why it cannot be one. Once the box is left, the check of the whole draft
  // (checkForm) puts the server's message under the item, so it is never said twice.
  var checkDate = function (input, leaving) {
    var typed = input.value;
    if (!typed.trim()) { setUnderstood(input, "", ""); return; }
    postJSON(urls.date, { q: typed }).then(function (r) {
      if (input.value !== typed) { return; }  // typed on meanwhile: a newer answer follows
      if (r.ok) {
        setUnderstood(input, r.display + (r.message ? "　" + r.message : ""), r.message ? "warning" : "ok");
      } else if (!r.incomplete && !leaving) {
        setUnderstood(input, r.message, "error");  // while typing; once left, the message is under the item
      } else {
        setUnderstood(input, "", "");
      }
    }).catch(function () { /* the server checks on save */ });
  };
  each(form.querySelectorAll("input[data-date]"), function (input) {
    var later = debounce(function () { if (!isComposing()) { checkDate(input, false); } }, 150);
    input.addEventListener("input", function (e) { if (!isComposing(e)) { later(); } });
    input.addEventListener("compositionend", function () { later(); });
    input.addEventListener("blur", function () { checkDate(input, true); });
    addCalendar(input);
  });

  // A calendar as an option: a mouse-only button opening the browser's own date picker. Keyboard users type
  // (one Tab stop per date); the picker writes the ISO date into the text box.
  function addCalendar(input) {
    var picker = document.createElement("input");
    picker.type = "date";
    if (picker.type !== "date" || typeof picker.showPicker !== "function") { return; }
    picker.tabIndex = -1;
    picker.className = "calendar-picker";
    picker.setAttribute("aria-hidden", "true");
    var button = document.createElement("button");
    button.type = "button";
    button.tabIndex = -1;
    button.className = "calendar";
    button.textContent = "カレンダー";
    button.setAttribute("aria-label", "カレンダーから選ぶ");
    button.addEventListener("click", function () {
      if (/^\d{4}-\d{2}-\d{2}$/.test(input.value)) { picker.value = input.value; }
      try { picker.showPicker(); } catch (err) { picker.focus(); }
    });
    picker.addEventListener("change", function () {
      if (!picker.value) { return; }
      input.value = picker.value;
      dirty = true;
      checkDate(input, true);
      input.dispatchEvent(new Event("change", { bubbles: true }));
      input.focus();
    });
    input.parentNode.appendChild(button);
    input.parentNode.appendChild(picker);
  }

  // ---- フリガナ: full-width katakana as one types (/input/kana: hiragana, half-width kana, one full-width space) ----
  var setNote = function (input, text, level) {
    var id = input.id + "-note", note = document.getElementById(id);
    if (!note) {
      note = document.createElement("div");
      note.id = id;
      note.setAttribute("aria-live", "polite");
      input.parentNode.insertBefore(note, document.getElementById(input.id + "-msgs"));
      input.setAttribute("aria-describedby", (input.getAttribute("aria-describedby") || "") + " " + id);
    }
    note.textContent = text;
    note.className = "note" + (level ? " " + level : "");
  };
  var convertKana = function (input, leaving) {
    var typed = input.value;
    if (!typed) { setNote(input, "", ""); return; }
    var fields = { q: typed };
    if (input.getAttribute("data-maxlength")) { fields.max = input.getAttribute("data-maxlength"); }
    postJSON(urls.kana, fields).then(function (r) {
      if (input.value !== typed || isComposing()) { return; }  // typed on meanwhile: leave it alone
      if (r.value && r.value !== typed) {
        var atEnd = input.selectionStart === typed.length;
        input.value = r.value;
        if (atEnd) { input.setSelectionRange(r.value.length, r.value.length); }
      }
      setNote(input, leaving ? "" : r.message, r.message && !leaving ? "error" : "");  // once left: under the item
    }).catch(function () { /* the server converts on save */ });
  };
  each(form.querySelectorAll("input[data-kana]"), function (input) {
    var later = debounce(function () { if (!isComposing()) { convertKana(input, false); } }, 300);
    input.addEventListener("input", function (e) { if (!isComposing(e)) { later(); } });
    input.addEventListener("compositionend", function () { later(); });
    input.addEventListener("blur", function () { convertKana(input, true); });
  });

  // ---- postal code → address (/input/postal: offline Japan Post data); a code that does not fit the address warns -
  var digitsOf = function (text) {
    return (text || "").replace(/[０-９]/g, function (c) { return String.fromCharCode(c.charCodeAt(0) - 0xFEE0); })
      .replace(/\D/g, "");
  };
  var addressLine = function (a) { return a.prefecture + a.city + a.town; };
  // The warning when code and address disagree comes from the check of the draft (the server's, under both items).
  var postalCheck = function (codeInput) {
    var address = document.getElementById(codeInput.getAttribute("data-address-for"));
    var typed = codeInput.value;
    var choices = document.getElementById(codeInput.id + "-choices");
    if (digitsOf(typed).length !== 7) { setNote(codeInput, "", ""); return; }
    postJSON(urls.postal, { q: typed, address: address ? address.value : "" }).then(function (r) {
      if (codeInput.value !== typed) { return; }
      if (r.code && r.code !== typed) { codeInput.value = r.code; }  // one form: 123-4567
      choices = document.getElementById(codeInput.id + "-choices");
      if (choices) { choices.parentNode.removeChild(choices); }
      if (r.message) { setNote(codeInput, r.message, "error"); return; }
      var areas = r.addresses || [];
      setNote(codeInput, areas.length === 1 ? addressLine(areas[0]) + "の郵便番号です。" : "", "ok");
      if (!address || !areas.length) { return; }
      var fill = function (a) {
        address.value = addressLine(a);
        address.dispatchEvent(new Event("input", { bubbles: true }));
        setNote(codeInput, addressLine(a) + "を住所に入れました。番地などを続けて入力してください。", "ok");
        var box = document.getElementById(codeInput.id + "-choices");
        if (box) { box.parentNode.removeChild(box); }
        checkSoon();
      };
      var alreadyThere = areas.some(function (a) { return address.value.indexOf(addressLine(a)) === 0; });
      if (!address.value.trim() && areas.length === 1) { fill(areas[0]); return; }
      if (alreadyThere) { return; }
      // Several towns for one code, or an address already typed: offer, never overwrite.
      var list = document.createElement("ul");
      list.id = codeInput.id + "-choices";
      list.className = "address-choices";
      areas.slice(0, 20).forEach(function (a) {
        var li = document.createElement("li");
        var b = document.createElement("button");
        b.type = "button";
        b.className = "secondary";
        b.textContent = "住所に反映：" + addressLine(a);
        b.addEventListener("click", function () { fill(a); address.focus(); });
        li.appendChild(b);
        list.appendChild(li);
      });
      codeInput.parentNode.insertBefore(list, document.getElementById(codeInput.id + "-msgs"));
    }).catch(function () { /* the server checks on save */ });
  };
  each(form.querySelectorAll("input[data-postal]"), function (input) {
    var later = debounce(function () { if (!isComposing()) { postalCheck(input); } }, 200);
    input.addEventListener("input", function (e) { if (!isComposing(e)) { later(); } });
    input.addEventListener("compositionend", function () { later(); });
  });

  // ---- 「住所と同じ」: copy another item's value (the residence is most often the address) ----------------------------
  each(form.querySelectorAll("[data-copy-from]"), function (button) {
    var from = document.getElementById(button.getAttribute("data-copy-from"));
    var to = document.getElementById(button.getAttribute("data-copy-to"));
    if (!from || !to) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      to.value = from.value;
      to.dispatchEvent(new Event("input", { bubbles: true }));
      dirty = true;
      checkSoon();
    });
  });

  // ---- text: too long is said (never cut: there is no maxlength); the characters are checked on the server -----
  var countChars = function (text) { return Array.from ? Array.from(text).length : text.length; };
  each(form.querySelectorAll("[data-maxlength]"), function (el) {
    if (el.hasAttribute("data-kana")) { return; }
    var limit = Number(el.getAttribute("data-maxlength"));
    var counter = document.getElementById(el.id + "-count");
    var update = function () {
      var n = countChars(el.value), over = n > limit;
      if (counter) {
        counter.textContent = n + "／" + limit + "文字" + (over ? "（" + (n - limit) + "文字多すぎます）" : "");
        counter.className = "hint counter" + (over ? " over" : "");
      } else {
        setNote(el, over ? limit + "文字以内で入力してください（現在" + n + "文字）。" : "", over ? "error" : "");
      }
    };
    el.addEventListener("input", function (e) { if (!isComposing(e)) { update(); } });
    el.addEventListener("compositionend", update);
  });

  // ---- conditional items follow the answers as they are typed (the server applies the same conditions) -----------
  var valueOf = function (id) {
    var out = [];
    each(form.querySelectorAll("[name='" + id.replace(/'/g, "") + "']"), function (el) {
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) { return; }
      if (el.value !== "") { out.push(el.value); }
    });
    return out;
  };
  var UNKNOWN = {};
  // true / false, or UNKNOWN when the page cannot tell (numbers, dates, derived values): the server decides.
  var holds = function (c) {
    if (!c || typeof c !== "object") { return true; }
    var parts, i, r, unknown = false;
    if (c.and || c.or) {
      parts = c.and || c.or;
      for (i = 0; i < parts.length; i++) {
        r = holds(parts[i]);
        if (r === UNKNOWN) { unknown = true; } else if (c.and && !r) { return false; } else if (c.or && r) { return true; }
      }
      return unknown ? UNKNOWN : !!c.and;
    }
    if (c.not) { r = holds(c.not); return r === UNKNOWN ? UNKNOWN : !r; }
    if (!c.item) { return UNKNOWN; }  // row quantifiers etc.
    var v = valueOf(c.item);
    if ("empty" in c) { return (v.length === 0) === !!c.empty; }
    if (!("eq" in c || "ne" in c || "in" in c || "includes" in c)) { return UNKNOWN; }
    if (v.length === 0) { return false; }
    if ("eq" in c) { return v.indexOf(String(c.eq)) >= 0; }
    if ("ne" in c) { return v.indexOf(String(c.ne)) < 0; }
    if ("in" in c) { return v.some(function (x) { return c["in"].map(String).indexOf(x) >= 0; }); }
    return v.indexOf(String(c.includes)) >= 0;
  };
  var hasValue = function (el) {
    var found = false;
    each(el.querySelectorAll("input, select, textarea"), function (x) {
      if (x.type === "hidden" || x.type === "date") { return; }
      if ((x.type === "checkbox" || x.type === "radio") ? (x.checked && x.value !== "") : x.value.trim() !== "") { found = true; }
    });
    return found;
  };
  var conditional = form.querySelectorAll("[data-visible-when]");
  var refreshConditions = function () {
    each(conditional, function (el) {
      var r;
      try { r = holds(JSON.parse(el.getAttribute("data-visible-when"))); } catch (err) { r = true; }
      if (r === UNKNOWN) { return; }
      el.hidden = !r && !hasValue(el);  // an item holding a value never disappears
    });
  };
  if (conditional.length) { form.addEventListener("change", refreshConditions); }

  // ---- checks as one leaves a field: the server evaluates the draft with the rules it runs on save ----------------
  var progressBox = document.getElementById("progress");
  var paintMessages = function (htmlId, info) {
    var list = document.getElementById(htmlId + "-msgs");
    if (!list) { return; }
    while (list.firstChild) { list.removeChild(list.firstChild); }
    info.messages.forEach(function (m) {
      var li = document.createElement("li");
      li.className = m.severity;
      li.textContent = m.text;
      list.appendChild(li);
    });
    var item = document.getElementById(htmlId);
    var wrapper = item && item.tagName === "FIELDSET" ? item : document.getElementById("item-" + htmlId);
    var control = item && item.tagName !== "FIELDSET" ? item : null;
    if (wrapper) {
      wrapper.classList.toggle("has-error", info.invalid);
      if (info.visible && wrapper.hidden && wrapper.hasAttribute("data-visible-when")) { wrapper.hidden = false; }
      if (!info.visible && !wrapper.hidden && wrapper.hasAttribute("data-visible-when") && !hasValue(wrapper)) {
        wrapper.hidden = true;
      }
    }
    if (control) {
      if (info.invalid) { control.setAttribute("aria-invalid", "true"); } else { control.removeAttribute("aria-invalid"); }
      if (info.derived && !control.hasAttribute("data-typed") && control.value !== info.derived.value) {
        control.value = info.derived.value;  // a computed value (the age) follows the dates it comes from
        var unit = document.getElementById(htmlId + "-unit");
        if (unit && info.derived.unit) { unit.value = info.derived.unit; }
      }
    }
  };
  var checking = 0;
  var checkForm = function () {
    if (!urls.check || isComposing()) { return; }
    var data = new FormData(form);
    data.delete("action");
    data.delete("accept");
    data.append("stage", form.getAttribute("data-stage") || "draft");
    var ticket = ++checking;
    postJSON(urls.check, data).then(function (r) {
      if (ticket !== checking) { return; }  // a newer check is on its way
      Object.keys(r.fields).forEach(function (id) { paintMessages(id, r.fields[id]); });
      if (progressBox && r.progress_html) { progressBox.innerHTML = r.progress_html; }
    }).catch(function () { /* the server checks on save */ });
  };
  var checkSoon = debounce(checkForm, 250);
  form.addEventListener("focusout", function (e) {
    var t = e.target;
    if (!t.name || isComposing(e)) { return; }
    if (t.type === "checkbox" || t.type === "radio") { return; }  // choices are checked on change
    checkSoon();
  });
  form.addEventListener("change", function (e) {
    if (e.target.type === "checkbox" || e.target.type === "radio" || e.target.tagName === "SELECT") { checkSoon(); }
  });

  // ---- repeat groups: empty rows behind 「検査を追加」 -----------------------------------------------------------
  each(form.querySelectorAll("[data-add-row]"), function (button) {
    var group = button.parentNode;
    var refresh = function () {
      button.hidden = !group.querySelector(".tests-row.spare:not(.shown)");
    };
    button.addEventListener("click", function () {
      var next = group.querySelector(".tests-row.spare:not(.shown)");
      if (!next) { return; }
      next.classList.add("shown");
      var first = next.querySelector("input:not([type=hidden]), select, textarea");
      if (first) { first.focus(); }
      refresh();
    });
    // a spare row holding a value or a message is never hidden
    each(group.querySelectorAll(".tests-row.spare"), function (row) {
      if (hasValue(row) || row.querySelector(".msgs li")) { row.classList.add("shown"); }
    });
    refresh();
  });

  // ---- sources: the badge says where a value came from; the detail on demand ------------------------------------
  var toggle = document.getElementById("toggle-sources");
  if (toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var on = toggle.getAttribute("aria-pressed") !== "true";
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      toggle.textContent = on ? "取得元の詳細を隠す" : "取得元の詳細を表示";
      form.classList.toggle("show-sources", on);
    });
  }

  // ---- keyboard: a checkbox group is one Tab stop, arrow keys move inside it (as radios do natively) ------------
  each(form.querySelectorAll("[data-roving]"), function (group) {
    var boxes = Array.prototype.slice.call(group.querySelectorAll("input[type=checkbox]"));
    if (!boxes.length) { return; }
    var setCurrent = function (box) { boxes.forEach(function (b) { b.tabIndex = b === box ? 0 : -1; }); };
    setCurrent(boxes.filter(function (b) { return b.checked; })[0] || boxes[0]);
    group.addEventListener("keydown", function (e) {
      var i = boxes.indexOf(e.target), next = null;
      if (i < 0) { return; }
      if (e.key === "ArrowRight" || e.key === "ArrowDown") { next = boxes[(i + 1) % boxes.length]; }
      if (e.key === "ArrowLeft" || e.key === "ArrowUp") { next = boxes[(i - 1 + boxes.length) % boxes.length]; }
      if (e.key === "Home") { next = boxes[0]; }
      if (e.key === "End") { next = boxes[boxes.length - 1]; }
      if (next) { e.preventDefault(); setCurrent(next); next.focus(); }
    });
    group.addEventListener("focusin", function (e) { if (boxes.indexOf(e.target) >= 0) { setCurrent(e.target); } });
  });

  // ---- jump links land on the control, not just the box around it ----------------------------------------------
  document.addEventListener("click", function (e) {
    var a = e.target.closest ? e.target.closest("a[href^='#']") : null;
    if (!a || a.getAttribute("href").length < 2) { return; }
    var target = document.getElementById(a.getAttribute("href").slice(1));
    if (!target) { return; }
    var control = /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName) ? target
      : target.querySelector("input:not([type=hidden]):not([tabindex='-1']), select, textarea") || target;
    var row = target.closest ? target.closest(".tests-row.spare") : null;
    if (row) { row.classList.add("shown"); }
    e.preventDefault();
    target.scrollIntoView({ block: "center" });
    control.focus({ preventScroll: true });
  });

  // After a save or a confirm attempt with errors, the error summary takes the focus (and is read out).
  var summary = document.getElementById("error-summary");
  if (summary && summary.hasAttribute("data-focus")) { summary.focus(); }

  wireConfirmButtons();

  // Confirm step is an explicit act.
  function wireConfirmButtons() {
    each(document.querySelectorAll("button[data-confirm]"), function (b) {
      b.addEventListener("click", function (e) { if (!window.confirm(b.getAttribute("data-confirm"))) { e.preventDefault(); } });
    });
  }
})();
