"use strict";
// Live mood over Server-Sent Events; no polling, no inline script (the page's CSP forbids it).
(function () {
  const $ = (id) => document.getElementById(id);
  function render(s) {
    const mood = s.mood || {};
    $("mood").textContent = mood.name || "nobody";
    $("mood").dataset.mood = mood.name || "nobody";
    $("confidence").textContent = mood.name && mood.name !== "nobody"
      ? Math.round((mood.confidence || 0) * 100) + "% sure" : "";
    $("faces").textContent = (s.faces || []).map((f) => f.emotion).join(", ") || "no";
    const cam = s.camera || {};
    $("camera").textContent = (cam.source || "?") + " (" + (cam.state || "?") + ")";
    $("fps").textContent = ((s.pipeline || {}).fps || 0).toFixed(1);
    const p = s.playing;
    $("playing").textContent = p
      ? (p.preview ? "Would play " : "Playing ") + p.source.description + " for " + p.mood +
        (p.speaker ? " on " + p.speaker : "")
      : "Nothing playing yet.";
    const m = s.model || {};
    $("model").textContent = m.version ? "Model " + m.version + (m.interim ? " (interim)" : "") : "";
    document.body.dataset.version = s.version;
  }
  function connect() {
    const es = new EventSource("api/events");
    es.addEventListener("state", (e) => render(JSON.parse(e.data)));
  }
  fetch("api/state").then((r) => r.json()).then(render).finally(connect);
})();
