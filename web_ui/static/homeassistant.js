"use strict";
// Settings → Home Assistant (web_ui/templates/_homeassistant.html). The password is write-only: the page only
// learns whether one is set, and sends one only when the owner types a new one.
(function () {
  const form = document.getElementById("mqtt-form");
  if (!form) return;
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const statusLine = document.getElementById("mqtt-status");
  const TEXT = ["host", "username", "ca_file", "room", "base_topic", "discovery_prefix", "client_id"];

  async function call(method, body) {
    const opts = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
    if (body) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const r = await fetch("/api/mqtt", opts);
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const problems = data.problems ? ": " + Object.entries(data.problems).map(([k, v]) => k + ": " + v).join("; ") : "";
      throw new Error((data.error || r.statusText) + problems);
    }
    return data;
  }

  function say(text, state) { statusLine.textContent = text; statusLine.dataset.state = state || ""; }

  function fill(m) {
    form.enabled.checked = m.enabled;
    form.port.value = m.port;
    form.tls.checked = m.tls;
    TEXT.forEach((k) => { form[k].value = m[k] || ""; });
    form.password.value = "";
    form.forget_password.checked = false;
    form.password.placeholder = m.password_set ? "saved (type to change)" : "not set";
    document.getElementById("mqtt-topic").textContent = m.state_topic;
    const st = m.status || {};
    const text = { off: "Off.", connecting: "Connecting to " + st.broker + "…", connected: "Connected to " + st.broker + ".",
      retrying: "Not connected: " + (st.error || "") + " (trying again)", error: "Not connected: " + (st.error || "") }[st.state];
    say(text || st.state || "", st.state);
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { enabled: form.enabled.checked, port: Number(form.port.value), tls: form.tls.checked };
    TEXT.forEach((k) => { body[k] = form[k].value.trim(); });
    if (form.password.value) body.password = form.password.value;
    else if (form.forget_password.checked) body.password = "";
    try { fill(await call("PATCH", body)); say("Saved: connecting…", "connecting"); setTimeout(load, 2000); }
    catch (err) { say(err.message, "error"); }
  });

  const load = () => call("GET").then(fill).catch((err) => say(err.message, "error"));
  load();
})();
