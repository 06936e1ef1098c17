// The script of callgate's built-in sign-in, challenge and factors pages: it runs the
// WebAuthn ceremonies (navigator.credentials) and the TOTP enrolment, talking to the
// gateway's JSON endpoints under the auth base. The pages' Content-Security-Policy allows
// no inline script, so this file is all of it: its settings are the data-* attributes of
// its own <script> element (data-base, data-csrf-token, data-callback-url), and it finds
// what to wire up by element id. It builds DOM with textContent only: nothing the gateway
// answers is ever parsed as HTML.
"use strict";
(() => {
  const self = document.currentScript;
  const base = self.dataset.base ?? "";
  const callbackUrl = self.dataset.callbackUrl ?? "";
  let csrf = self.dataset.csrfToken ?? "";
  const $ = (id) => document.getElementById(id);

  // csrfToken is the page's token, or GET /csrf's when the page has none.
  const csrfToken = async () => {
    if (!csrf) {
      const res = await fetch(base + "/csrf", { credentials: "same-origin" });
      csrf = (await res.json()).csrfToken ?? "";
    }
    return csrf;
  };

  // Failure is what post throws when the gateway refuses: the status and its JSON body.
  class Failure extends Error {
    constructor(status, body) {
      super(body?.error ?? `the gateway answered ${status}`);
      this.status = status;
      this.body = body ?? {};
    }
  }

  // post sends fields form-encoded with the CSRF token and returns the JSON answer. A 403
  // asking to reauthenticate leaves the page for the URL it names (a sign-in that comes
  // back here); any other answer outside 2xx throws a Failure.
  const post = async (path, fields = {}) => {
    const body = new URLSearchParams({ ...fields, csrfToken: await csrfToken() });
    const res = await fetch(base + path, { method: "POST", body, credentials: "same-origin" });
    let answer = null;
    if ((res.headers.get("Content-Type") ?? "").startsWith("application/json")) answer = await res.json();
    if (res.status === 403 && answer?.error === "reauthenticate" && answer.url) {
      location.assign(answer.url);
      throw new Failure(res.status, { error: "reauthenticate", leaving: true });
    }
    if (!res.ok) throw new Failure(res.status, answer);
    return answer ?? {};
  };

  // say shows a status line (#message on the factors page) or an error (#factor-error on
  // the sign-in and challenge pages, #message marked as an error on the factors page).
  const say = (text, isError) => {
    const message = $("message");
    const box = message ?? $("factor-error");
    if (!box) return;
    if (message) message.className = isError ? "error" : "notice";
    box.replaceChildren();
    if (text) {
      const p = document.createElement("p");
      p.textContent = text;
      box.append(p);
    }
    box.hidden = !text;
  };

  // explain turns what a ceremony threw into words for the user.
  const explain = (err, what) => {
    if (err instanceof Failure) {
      if (err.status === 429) return "Too many attempts. Try again later.";
      return `${what} failed. Try again.`;
    }
    switch (err?.name) {
      case "NotAllowedError":
        return "The request was cancelled or timed out.";
      case "InvalidStateError":
        return "This device already holds a passkey for your account.";
      case "NotSupportedError":
      case "SecurityError":
        return "This browser cannot use passkeys here.";
      default:
        return `${what} failed. Try again.`;
    }
  };

  // busy disables button while work runs, reports a failure, and returns what work did.
  const busy = async (button, what, work) => {
    if (button.disabled) return undefined;
    button.disabled = true;
    say("");
    try {
      return await work();
    } catch (err) {
      if (!err?.body?.leaving) say(explain(err, what), true);
      return undefined;
    } finally {
      button.disabled = false;
    }
  };

  // --- WebAuthn -------------------------------------------------------------------------
  // The gateway sends go-webauthn's options JSON (base64url binary fields), which the
  // browser's own parsers read; a browser without them gets the same conversion here.
  const fromB64url = (s) => {
    const b = atob(s.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(s.length / 4) * 4, "="));
    return Uint8Array.from(b, (c) => c.charCodeAt(0)).buffer;
  };
  const toB64url = (buf) =>
    btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const withIds = (list) => (list ?? []).map((c) => ({ ...c, id: fromB64url(c.id) }));

  const requestOptions = (json) => {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    return { ...json, challenge: fromB64url(json.challenge), allowCredentials: withIds(json.allowCredentials) };
  };
  const creationOptions = (json) => {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    return {
      ...json,
      challenge: fromB64url(json.challenge),
      user: { ...json.user, id: fromB64url(json.user.id) },
      excludeCredentials: withIds(json.excludeCredentials),
    };
  };
  // serialise is the credential as the JSON the gateway reads (credential.toJSON()).
  const serialise = (cred) => {
    if (typeof cred.toJSON === "function") return JSON.stringify(cred.toJSON());
    const r = cred.response;
    const response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports?.() ?? [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) response.userHandle = toB64url(r.userHandle);
    }
    return JSON.stringify({
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response,
      authenticatorAttachment: cred.authenticatorAttachment ?? undefined,
      clientExtensionResults: cred.getClientExtensionResults(),
    });
  };

  const supported = () => typeof window.PublicKeyCredential === "function" && !!navigator.credentials;

  // assert runs an authentication ceremony for purpose ("signin" or "challenge") and
  // returns the serialised assertion.
  const assert = async (purpose) => {
    const { publicKey } = await post("/webauthn/authentication-options", { purpose });
    const cred = await navigator.credentials.get({ publicKey: requestOptions(publicKey) });
    return serialise(cred);
  };

  // register creates a passkey named name and returns the gateway's answer:
  // {passkey: {id, name}, url?}.
  const register = async (name) => {
    const { publicKey } = await post("/webauthn/registration-options");
    const cred = await navigator.credentials.create({ publicKey: creationOptions(publicKey) });
    return post("/webauthn/register", { name, response: serialise(cred), json: "true" });
  };

  // finish posts an assertion to a sign-in route and follows the {url} it answers, on
  // success and on refusal alike: a refusal's URL is the page that explains it.
  const finish = async (path, response) => {
    const fields = { response, json: "true" };
    if (callbackUrl) fields.callbackUrl = callbackUrl;
    try {
      const { url } = await post(path, fields);
      location.assign(url);
    } catch (err) {
      if (err instanceof Failure && err.status === 401 && err.body.url) {
        location.assign(err.body.url);
        return;
      }
      throw err;
    }
  };

  const passkeyName = () => $("passkey-name")?.value.trim() || "Passkey";

  // --- TOTP enrolment and recovery codes ----------------------------------------------
  const showCodes = (codes, url) => {
    const list = $("recovery-codes");
    if (!list) return;
    list.replaceChildren(...codes.map((code) => {
      const li = document.createElement("li");
      li.textContent = code;
      return li;
    }));
    $("recovery-setup").hidden = false;
    const status = $("recovery-status");
    if (status) status.textContent = codes.length === 1 ? "1 unused recovery code." : `${codes.length} unused recovery codes.`;
    const next = $("continue");
    if (url) {
      next.href = url;
      next.hidden = false;
    }
  };

  const startTOTP = (button) =>
    busy(button, "Setting up the authenticator app", async () => {
      const { secret, qr } = await post("/totp/enroll");
      $("totp-qr").src = qr;
      $("totp-secret").textContent = secret;
      $("totp-setup").hidden = false;
      button.hidden = true;
      $("totp-code").focus();
    });

  // confirmTOTP answers {recoveryCodes, url?} once the app's first code is accepted.
  const confirmTOTP = (onDone) => {
    const button = $("totp-confirm");
    const code = $("totp-code");
    const run = () =>
      busy(button, "Confirming the code", async () => {
        let answer;
        try {
          answer = await post("/totp/confirm", { code: code.value.trim() });
        } catch (err) {
          if (err instanceof Failure && err.status === 400) {
            say("That code was not accepted. Check the time on your device and try again.", true);
            return;
          }
          throw err;
        }
        $("totp-setup").hidden = true;
        showCodes(answer.recoveryCodes ?? [], answer.url);
        onDone?.(answer);
      });
    button.addEventListener("click", run);
    code.addEventListener("keydown", (e) => {
      if (e.key === "Enter") run();
    });
  };

  // --- The pages -----------------------------------------------------------------------
  const signinButton = $("passkey-signin");
  if (signinButton) {
    const action = signinButton.dataset.action;
    const path = action.startsWith(base) ? action.slice(base.length) : "/callback/passkey";
    signinButton.addEventListener("click", () =>
      busy(signinButton, "Signing in with a passkey", async () => finish(path, await assert("signin"))));
  }

  const challengeButton = $("passkey-button");
  if (challengeButton) {
    challengeButton.addEventListener("click", () =>
      busy(challengeButton, "Confirming with a passkey", async () => finish("/challenge/passkey", await assert("challenge"))));
  }

  const enrolPasskey = $("enrol-passkey");
  if (enrolPasskey) {
    enrolPasskey.addEventListener("click", () =>
      busy(enrolPasskey, "Creating the passkey", async () => {
        const answer = await register(passkeyName());
        if (answer.url) location.assign(answer.url);
        else say("The passkey was created.");
      }));
  }

  const enrolTOTP = $("enrol-totp");
  if (enrolTOTP) {
    enrolTOTP.addEventListener("click", () => startTOTP(enrolTOTP));
    // Enrolled: what is left to do is keep the codes and continue.
    confirmTOTP(() => {
      for (const el of document.querySelectorAll(".enrol")) el.hidden = true;
    });
  }

  // Times come as RFC 3339; show them in the reader's own zone and words.
  for (const t of document.querySelectorAll("time[datetime]")) {
    const d = new Date(t.dateTime);
    if (!Number.isNaN(d.getTime())) t.textContent = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  // The factors page: each part is there when the config turns its kind on.
  const passkeys = $("passkeys");
  if (passkeys) {
    const empty = () => {
      $("passkeys-empty").hidden = passkeys.querySelector("li.passkey") !== null;
    };
    passkeys.addEventListener("click", (e) => {
      const button = e.target.closest("button.passkey-remove");
      if (!button) return;
      const li = button.closest("li.passkey");
      busy(button, "Removing the passkey", async () => {
        await post("/factors/remove", { type: "passkey", id: li.dataset.id });
        const name = li.querySelector(".passkey-name").textContent;
        li.remove();
        empty();
        say(`The passkey “${name}” was removed.`);
      });
    });

    const add = $("passkey-add");
    add?.addEventListener("click", () =>
      busy(add, "Adding the passkey", async () => {
        const answer = await register(passkeyName());
        if (answer.url) {
          location.assign(answer.url);
          return;
        }
        const li = document.createElement("li");
        li.className = "passkey";
        li.dataset.id = answer.passkey.id;
        const name = document.createElement("span");
        name.className = "passkey-name";
        name.textContent = answer.passkey.name;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "passkey-remove secondary";
        remove.textContent = "Remove";
        const meta = document.createElement("span");
        meta.className = "passkey-meta muted";
        const used = document.createElement("span");
        used.className = "passkey-last-used";
        used.textContent = "Never used";
        meta.append(used);
        li.append(name, " ", remove, " ", meta);
        passkeys.append(li);
        empty();
        $("passkey-name").value = "";
        say(`The passkey “${answer.passkey.name}” was added.`);
      }));
  }

  const enroll = $("totp-enroll");
  const removeTOTP = $("totp-remove");
  if (enroll) {
    enroll.addEventListener("click", () => startTOTP(enroll));
    confirmTOTP(() => {
      $("totp-status").textContent = "An authenticator app is set up.";
      removeTOTP.hidden = false;
      say("The authenticator app is set up. Keep the recovery codes below.");
    });
  }
  removeTOTP?.addEventListener("click", () =>
    busy(removeTOTP, "Removing the authenticator app", async () => {
      await post("/factors/remove", { type: "totp", id: "" });
      $("totp-status").textContent = "No authenticator app is set up.";
      removeTOTP.hidden = true;
      if (enroll) enroll.hidden = false;
      say("The authenticator app was removed.");
    }));

  const regenerate = $("recovery-regenerate");
  regenerate?.addEventListener("click", () =>
    busy(regenerate, "Making new recovery codes", async () => {
      const { recoveryCodes = [] } = await post("/factors/recovery-codes");
      showCodes(recoveryCodes);
      say("New recovery codes were made; the old ones no longer work.");
    }));

  // Without WebAuthn in the browser, the passkey buttons say so instead of failing later.
  if (!supported()) {
    for (const b of [signinButton, challengeButton, enrolPasskey, $("passkey-add")]) {
      if (b) b.disabled = true;
    }
    if (signinButton || challengeButton || enrolPasskey || $("passkey-add")) say("This browser cannot use passkeys.", true);
  }
})();
