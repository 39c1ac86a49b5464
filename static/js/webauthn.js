/* Security keys and passkeys (WebAuthn) for the sign-in step and the key registration page (accounts.keys).
   The server (django-otp-webauthn's helper, py_webauthn) sends options as JSON with base64url fields; this file
   turns them into ArrayBuffers for navigator.credentials, and the answer back into JSON. No inline script: the
   CSP allows only this file (script-src 'self'), fetch goes to the same origin (default-src 'self'). */
(function () {
  "use strict";
  var root = document.querySelector("[data-webauthn]");
  if (!root) { return; }
  var mode = root.getAttribute("data-webauthn");
  var form = document.getElementById("key-form");
  var start = document.getElementById("key-start");
  var statusEl = document.getElementById("key-status");
  var errorEl = document.getElementById("key-error");
  var csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;

  if (!window.PublicKeyCredential || !navigator.credentials) {
    document.getElementById("key-unsupported").hidden = false;
    start.disabled = true;
    return;
  }

  function toBuffer(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return bytes.buffer;
  }

  function toB64url(buffer) {
    if (!buffer) { return null; }
    var bytes = new Uint8Array(buffer), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type, id: toBuffer(d.id) };
      if (d.transports) { out.transports = d.transports; }
      return out;
    });
  }

  function creationOptions(o) {
    var pk = Object.assign({}, o);
    pk.challenge = toBuffer(o.challenge);
    pk.user = Object.assign({}, o.user, { id: toBuffer(o.user.id) });
    pk.excludeCredentials = descriptors(o.excludeCredentials);
    return { publicKey: pk };
  }

  function requestOptions(o) {
    var pk = Object.assign({}, o);
    pk.challenge = toBuffer(o.challenge);
    pk.allowCredentials = descriptors(o.allowCredentials);
    return { publicKey: pk };
  }

  function credentialJSON(cred) {
    var r = cred.response, response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      response.userHandle = toB64url(r.userHandle);
    }
    return {
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response: response,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: typeof cred.getClientExtensionResults === "function" ? cred.getClientExtensionResults() : {}
    };
  }

  var OFFLINE = "サーバーとの通信に失敗しました。ネットワークを確認して、もう一度お試しください。";

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body || {})
    }).catch(function () { throw new Error(OFFLINE); }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) { throw new Error(data.error || OFFLINE); }
        return data;
      });
    });
  }

  function say(text) { statusEl.textContent = text; }
  function fail(text) {
    errorEl.textContent = text; errorEl.hidden = false; say("");
    start.disabled = false; start.focus();
  }

  // What the browser's own refusals mean, in the words of this screen.
  function browserError(err) {
    var name = err && err.name;
    if (name === "NotAllowedError" || name === "AbortError") {
      return "キーでの確認が中止されたか、時間切れになりました。もう一度ボタンを押してください。";
    }
    if (name === "InvalidStateError") { return "このキーは、すでにこのアカウントに登録されています。"; }
    if (name === "SecurityError") { return "この画面のアドレスではセキュリティキーを使えません。管理者に連絡してください。"; }
    return "セキュリティキーで確認できませんでした。もう一度お試しください。";
  }

  var begin = root.getAttribute("data-begin"), complete = root.getAttribute("data-complete");

  function run() {
    start.disabled = true; errorEl.hidden = true;
    var body = mode === "register" ? { name: document.getElementById("key-name").value } : {};
    say(mode === "register" ? "キーを準備しています…" : "キーでの確認を待っています…");
    post(begin, body).then(function (options) {
      say("セキュリティキーに触れるか、指紋・顔・PINで確認してください。");
      var ask = mode === "register" ? navigator.credentials.create(creationOptions(options))
        : navigator.credentials.get(requestOptions(options));
      return ask.then(function (cred) { return cred; }, function (err) { throw { browser: err }; });
    }).then(function (cred) {
      say("確認しています…");
      return post(complete, credentialJSON(cred));
    }).then(function (done) {
      say(mode === "register" ? "登録しました。" : "確認しました。画面を移動します…");
      window.location.assign(done.redirect);
    }).catch(function (err) {
      fail(err && err.browser ? browserError(err.browser) : (err && err.message) || browserError(err));
    });
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); run(); });
  // The sign-in step asks the key at once (one press fewer); the button stays for a retry.
  if (mode === "sign-in") { run(); }
})();
