// Passkeys on the hosted pages: the one script they load (served from /ui/passkeys.js, so the
// CSP stays `default-src 'self'`). A form marked data-passkey="create" or "get" has a button
// [data-passkey-start]; pressing it asks the server to begin a ceremony (data-begin, with the
// form's fields or its mfa_token), hands the options to navigator.credentials, puts the answer
// in the form's hidden ceremony_id and credential fields and submits the form.
(function () {
  "use strict";

  function fromB64url(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeList(list) {
    (list || []).forEach(function (c) { c.id = fromB64url(c.id); });
  }

  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    decodeList(pk.excludeCredentials);
    return { publicKey: pk };
  }

  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    decodeList(pk.allowCredentials);
    return { publicKey: pk };
  }

  function created(c) {
    return {
      id: c.id, rawId: toB64url(c.rawId), type: c.type,
      response: {
        clientDataJSON: toB64url(c.response.clientDataJSON),
        attestationObject: toB64url(c.response.attestationObject)
      }
    };
  }

  function asserted(c) {
    var r = c.response;
    return {
      id: c.id, rawId: toB64url(c.rawId), type: c.type,
      response: {
        clientDataJSON: toB64url(r.clientDataJSON),
        authenticatorData: toB64url(r.authenticatorData),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null
      }
    };
  }

  function beginRequest(form) {
    if (form.dataset.beginBody === "form") {
      return {
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(form)).toString()
      };
    }
    var body = {};
    if (form.elements.mfa_token) body.mfa_token = form.elements.mfa_token.value;
    return { headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  }

  function fail(form, message) {
    var p = form.querySelector("[data-passkey-error]");
    if (p) { p.textContent = message; p.hidden = false; }
  }

  function start(form) {
    var create = form.dataset.passkey === "create";
    var req = beginRequest(form);
    fetch(form.dataset.begin, {
      method: "POST", credentials: "same-origin", headers: req.headers, body: req.body
    }).then(function (res) {
      if (!res.ok) throw new Error("begin " + res.status);
      return res.json();
    }).then(function (ceremony) {
      form.elements.ceremony_id.value = ceremony.ceremony_id;
      return create
        ? navigator.credentials.create(creationOptions(ceremony.options))
        : navigator.credentials.get(requestOptions(ceremony.options));
    }).then(function (credential) {
      if (!credential) throw new Error("no credential");
      form.elements.credential.value = JSON.stringify(create ? created(credential) : asserted(credential));
      form.submit();
    }).catch(function () {
      fail(form, "The passkey did not work. Try again, or use another way.");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential) return;
    document.querySelectorAll("form[data-passkey]").forEach(function (form) {
      var button = form.querySelector("[data-passkey-start]");
      if (!button) return;
      button.hidden = false;
      button.addEventListener("click", function () { start(form); });
    });
  });
})();
