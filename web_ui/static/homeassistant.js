"use strict";
// Settings → Home Assistant (web_ui/templates/_homeassistant.html). The password is write-only: the page only
// learns whether one is set, and sends one only when the owner types a new one. The fields are filled once, when the
// page opens: what the owner types is never overwritten. The status line follows the live state (static/app.js).
(function () {
  const form = document.getElementById("mqtt-form");
  if (!form) return;
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const statusLine = document.getElementById("mqtt-status");
  const formError = document.getElementById("mqtt-error");
  const testButton = document.getElementById("mqtt-test");
  const testResult = document.getElementById("mqtt-test-result");
  const TEXT = ["host", "username", "ca_file", "room", "base_topic", "discovery_prefix", "client_id"];
  const mb = window.moodbox || {};

  async function call(method, url, body) {
    const opts = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
    if (body) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    let r;
    try { r = await fetch(url, opts); } catch (e) {
      throw new Error("Moodbox is not reachable: check that the phone is on the home Wi-Fi.");
    }
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const err = new Error(data.error || "Moodbox answered " + r.status + ": try again in a moment");
      err.problems = data.problems || {};
      throw err;
    }
    return data;
  }

  function showStatus(st) {
    const text = { off: "Off: Moodbox is not connected to Home Assistant.", connecting: "Connecting to " + st.broker + "…", connected: "Connected to " + st.broker + ".",
      retrying: "Not connected: " + (st.error || "") + " (trying again)", error: "Not connected: " + (st.error || "") }[st.state];
    statusLine.textContent = text || st.state || "";
    statusLine.dataset.state = st.state || "";
  }

  function fill(m) {
    form.enabled.checked = m.enabled;
    form.port.value = m.port;
    form.tls.checked = m.tls;
    TEXT.forEach((k) => { form[k].value = m[k] || ""; });
    form.password.value = "";
    form.forget_password.checked = false;
    saved(m);
  }
  // What a save changes on the page besides the status: never the fields the owner may be typing in.
  function saved(m) {
    form.password.placeholder = m.password_set ? "saved (type to change)" : "not set";
    document.getElementById("mqtt-topic").textContent = m.state_topic;
    showStatus(m.status || {});
  }

  function typed() {
    const body = { enabled: form.enabled.checked, port: form.port.value === "" ? null : Number(form.port.value), tls: form.tls.checked };
    TEXT.forEach((k) => { body[k] = form[k].value.trim(); });
    if (form.password.value) body.password = form.password.value;
    else if (form.forget_password.checked) body.password = "";
    return body;
  }

  // Each problem under its own field (named as on the page, not as in the config file); the rest above the buttons.
  function showProblems(err) {
    const rest = [];
    let first = null;
    Object.entries(err.problems || {}).forEach(([key, text]) => {
      const input = form.elements[key];
      if (input && input.tagName && mb.fieldError) {
        mb.fieldError(input, null, text);
        if (input.closest("details")) input.closest("details").open = true;
        first = first || input;
      } else rest.push(text);
    });
    formError.hidden = !rest.length && !!first;
    formError.textContent = rest.length ? rest.join("; ") : first ? "" : err.message;
    if (first && mb.reveal) mb.reveal(first);
  }
  const $$inputs = () => Array.from(form.querySelectorAll("input"));
  function clearProblems() {
    $$inputs().forEach((i) => { if (i.getAttribute("aria-invalid") && mb.fieldError) mb.fieldError(i, null, ""); });
    formError.hidden = true;
  }
  form.addEventListener("input", (e) => {
    if (e.target.getAttribute("aria-invalid") && mb.fieldError) mb.fieldError(e.target, null, "");
    testResult.textContent = ""; testResult.dataset.ok = "";  // a result for other values than these
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearProblems();
    try {
      saved(await call("PATCH", "/api/mqtt", typed()));
      form.password.value = "";
      form.forget_password.checked = false;
    } catch (err) { showProblems(err); }
  });

  testButton.addEventListener("click", async () => {
    clearProblems();
    testButton.disabled = true;
    testButton.textContent = "Testing…";
    testResult.textContent = "Trying the broker with these settings (nothing is saved)…";
    testResult.dataset.ok = "";
    try {
      const r = await call("POST", "/api/mqtt/test", typed());
      testResult.dataset.ok = String(r.ok);
      testResult.textContent = (r.ok ? "It works: " : "It did not work: ") + r.message + (/[.!?]$/.test(r.message) ? "" : ".");
    } catch (err) {
      testResult.textContent = "";
      showProblems(err);
    } finally {
      testButton.disabled = false;
      testButton.textContent = "Test connection";
    }
  });

  call("GET", "/api/mqtt").then(fill).catch((err) => { statusLine.textContent = err.message; statusLine.dataset.state = "error"; });
  if (mb.listen) mb.listen((s) => { if (s.mqtt) showStatus(s.mqtt); });  // the link's state, live
})();
