"use strict";
// Moodbox page script. No inline scripts (the CSP forbids them), no third-party code, no polling:
// live state arrives over Server-Sent Events from /api/events.
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const csrf = ($('meta[name="csrf-token"]') || {}).content || "";
  const page = document.body.dataset.page;
  const MOOD_COLOURS = {
    happy: "#f4b400", surprise: "#ff7a45", neutral: "#8c9bab", sad: "#4a7bd0",
    angry: "#e04848", fear: "#8e5bd6", disgust: "#4caf72", nobody: "#3b3650",
  };
  const FEELS = { surprise: "surprised", fear: "afraid", disgust: "disgusted" };  // "the room feels ..."
  window.moodbox = { latencies: [], lastState: null };

  function toast(text, bad) {
    const t = $("#toast");
    if (!t) return;
    t.textContent = text;
    t.className = "toast" + (bad ? " bad" : "");
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 3500);
  }

  async function api(method, url, body) {
    const opts = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(url, opts);
    let data = {};
    try { data = await r.json(); } catch (e) { /* empty body */ }
    if (r.status === 401) { location.href = "/login"; }
    if (!r.ok) {
      const problems = data.problems ? " (" + Object.entries(data.problems).map(([k, v]) => k + ": " + v).join("; ") + ")" : "";
      const err = new Error((data.error || r.statusText) + problems);
      err.data = data;
      throw err;
    }
    return data;
  }

  const pct = (x) => Math.round((x || 0) * 100) + "%";
  const ago = (t) => {
    const s = Math.max(0, Date.now() / 1000 - t);
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    return Math.round(s / 3600) + " h ago";
  };
  const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  // ---- live state ---------------------------------------------------------------------------------------
  let faceSignature = null;
  function measureLatency(s) {
    const sig = (s.faces || []).map((f) => f.emotion).join(",");
    if (sig !== faceSignature && s.frame && s.frame.wall_time) {
      const delay = Date.now() / 1000 - s.frame.wall_time;
      window.moodbox.latencies.push(delay);
      if (window.moodbox.latencies.length > 200) window.moodbox.latencies.shift();
    }
    faceSignature = sig;
  }

  const renderers = [];
  function connect() {
    const es = new EventSource("/api/events");
    es.addEventListener("state", (e) => {
      const s = JSON.parse(e.data);
      measureLatency(s);
      window.moodbox.lastState = s;
      renderers.forEach((r) => r(s));
      const live = $("#live");
      if (live) live.classList.add("on");
    });
    es.onerror = () => { const live = $("#live"); if (live) live.classList.remove("on"); };
  }

  // ---- Now ----------------------------------------------------------------------------------------------
  function initNow() {
    let autoplayOn = true;
    renderers.push((s) => {
      const mood = (s.mood || {}).name || "nobody";
      const el = $("#mood");
      el.textContent = mood === "nobody" ? "nobody here" : FEELS[mood] || mood;
      el.dataset.mood = mood;
      document.documentElement.style.setProperty("--mood", MOOD_COLOURS[mood] || MOOD_COLOURS.nobody);
      const conf = mood === "nobody" ? 0 : (s.mood || {}).confidence || 0;
      $("#confidence-bar").style.width = pct(conf);
      $("#confidence").textContent = mood === "nobody" ? "" : pct(conf) + " sure · since " + ago(s.mood.since);
      const faces = s.faces || [];
      $("#faces").textContent = faces.length ? faces.length + ": " + faces.map((f) => f.emotion).join(", ") : "none";
      const cam = s.camera || {};
      $("#camera").textContent = cam.privacy_mode ? "off (privacy mode)" :
        cam.state === "live" ? "live · " + (cam.source || "") :
        cam.state === "retrying" ? "reconnecting: " + (cam.error || "") : (cam.state || "starting");
      $("#camera").className = cam.state === "live" ? "ok" : "warn";
      const p = s.playing;
      $("#playing").textContent = p ? (p.preview ? "Would play " : "") + p.source.description + " for " + p.mood +
        (p.speaker ? " on " + p.speaker : "") : "Nothing yet";
      $("#tracks").textContent = p && p.tracks && p.tracks.length ? p.tracks.slice(0, 3).join(" · ") : "";
      const ap = s.autoplay || {};
      autoplayOn = ap.enabled !== false;
      const btn = $("#autoplay-toggle");
      btn.textContent = autoplayOn ? "Pause auto-play" : "Resume auto-play";
      btn.setAttribute("aria-pressed", String(autoplayOn));
      const player = s.player || {};
      $("#player-state").textContent = [ap.waiting, player.message].filter(Boolean).join(" · ");
      const ov = $("#override");
      if (ap.override && ap.override.mood) {
        ov.hidden = false;
        ov.textContent = "Holding " + ap.override.mood + " until " + clock(ap.override.until);
      } else ov.hidden = true;
    });
    $("#autoplay-toggle").addEventListener("click", async () => {
      const enable = !autoplayOn; // read before the await: a live update may flip autoplayOn meanwhile
      try {
        await api("POST", "/api/autoplay", { enabled: enable });
        toast(enable ? "Auto-play on" : "Auto-play paused");
      } catch (e) { toast(e.message, true); }
    });
    $("#skip").addEventListener("click", async () => {
      try { await api("POST", "/api/skip"); toast("Skipped"); } catch (e) { toast(e.message, true); }
    });
    $("#not-my-mood").addEventListener("click", () => { $("#mood-picker").hidden = !$("#mood-picker").hidden; });
    $$("#mood-picker .chip").forEach((chip) => chip.addEventListener("click", async () => {
      try {
        await api("POST", "/api/not-my-mood", { mood: chip.dataset.mood || null });
        $("#mood-picker").hidden = true;
        toast(chip.dataset.mood ? "Holding " + chip.dataset.mood : "Moodbox decides again");
      } catch (e) { toast(e.message, true); }
    }));
  }

  // ---- History ------------------------------------------------------------------------------------------
  function drawHistory(h) {
    const canvas = $("#chart");
    const ctx = canvas.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, hgt = canvas.clientHeight;
    canvas.width = w * ratio; canvas.height = hgt * ratio;
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, w, hgt);
    const moods = h.moods;
    const rowH = (hgt - 24) / moods.length;
    const x = (t) => ((t - h.since) / (h.until - h.since)) * (w - 70) + 70;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = getComputedStyle(document.body).color;
    moods.forEach((m, i) => ctx.fillText(m, 0, 12 + i * rowH + rowH / 2));
    const segments = [];
    let cur = h.before ? { mood: h.before.mood, at: h.since } : null;
    h.changes.forEach((c) => { if (cur) segments.push({ mood: cur.mood, from: cur.at, to: c.at }); cur = { mood: c.mood, at: c.at }; });
    if (cur) segments.push({ mood: cur.mood, from: cur.at, to: h.until });
    const totals = {};
    segments.forEach((sg) => {
      const i = moods.indexOf(sg.mood);
      if (i < 0) return;
      ctx.fillStyle = MOOD_COLOURS[sg.mood];
      ctx.fillRect(x(sg.from), 4 + i * rowH, Math.max(2, x(sg.to) - x(sg.from)), rowH - 6);
      totals[sg.mood] = (totals[sg.mood] || 0) + (sg.to - sg.from);
    });
    ctx.fillStyle = getComputedStyle(document.body).color;
    const span = (h.until - h.since) / 3600;
    const label = (hoursAgo) => hoursAgo === 0 ? "now" : hoursAgo >= 48 ? Math.round(hoursAgo / 24) + " d ago" : Math.round(hoursAgo) + " h ago";
    [span, span / 2, 0].forEach((ago, k) => {
      const text = label(ago);
      const at = x(h.until - ago * 3600) - [0, 0.5, 1][k] * ctx.measureText(text).width;
      ctx.fillText(text, at, hgt - 4);
    });
    const sum = Object.values(totals).reduce((a, b) => a + b, 0);
    const list = $("#shares");
    list.innerHTML = "";
    Object.entries(totals).sort((a, b) => b[1] - a[1]).forEach(([m, t]) => {
      const li = document.createElement("li");
      li.innerHTML = '<span class="swatch"></span><span class="name"></span><span class="val"></span>';
      li.querySelector(".swatch").style.background = MOOD_COLOURS[m];
      li.querySelector(".name").textContent = m;
      li.querySelector(".val").textContent = pct(t / sum);
      list.appendChild(li);
    });
    $("#history-empty").hidden = segments.length > 0;
  }
  function initHistory() {
    const load = async () => {
      try { drawHistory(await api("GET", "/api/history?hours=" + $("#range").value)); } catch (e) { toast(e.message, true); }
    };
    $("#range").addEventListener("change", load);
    $("#delete-history").addEventListener("click", async () => {
      if (!confirm("Delete the whole mood history? This cannot be undone.")) return;
      try { const r = await api("DELETE", "/api/history"); toast("Deleted " + r.deleted + " entries"); load(); }
      catch (e) { toast(e.message, true); }
    });
    load();
    setInterval(load, 60000);
  }

  // ---- Videos -------------------------------------------------------------------------------------------
  function initVideos() {
    const load = async () => {
      const mood = $("#video-mood-pick").value;
      try {
        const v = await api("GET", "/api/videos" + (mood ? "?mood=" + encodeURIComponent(mood) : ""));
        $("#video-mood").textContent = v.mood;
        const n = $("#video-notice");
        n.hidden = !v.notice; n.textContent = v.notice || "";
        $("#video-search").href = v.search_link;
        const list = $("#video-list");
        list.innerHTML = "";
        v.videos.forEach((vid) => {
          const li = document.createElement("li");
          li.innerHTML = '<a target="_blank" rel="noopener noreferrer"></a><span class="muted small"></span>' +
            '<button type="button" class="btn small">Play here</button>';
          li.querySelector("a").href = vid.url;
          li.querySelector("a").textContent = vid.title;
          li.querySelector("span").textContent = vid.channel;
          li.querySelector("button").addEventListener("click", () => {
            const f = document.createElement("iframe");
            f.src = vid.embed; f.width = "100%"; f.height = "200";
            f.allow = "encrypted-media; picture-in-picture"; f.referrerPolicy = "no-referrer";
            f.title = vid.title;
            li.querySelector("button").replaceWith(f);
          });
          list.appendChild(li);
        });
      } catch (e) { toast(e.message, true); }
    };
    $("#video-mood-pick").addEventListener("change", load);
    load();
  }

  // ---- Settings -----------------------------------------------------------------------------------------
  async function initSettings() {
    let settings = await api("GET", "/api/settings");
    const form = $("#behaviour-form");
    const fill = () => {
      form.sensitivity.value = settings.sensitivity;
      $("#sensitivity-out").textContent = pct(settings.sensitivity);
      form.dwell_seconds.value = settings.dwell_seconds;
      form.cooldown_minutes.value = settings.cooldown_minutes;
      form.hands_off_minutes.value = settings.hands_off_minutes;
      form.quiet_enabled.checked = settings.quiet_hours.enabled;
      form.quiet_start.value = settings.quiet_hours.start;
      form.quiet_end.value = settings.quiet_hours.end;
      form.camera_source.value = settings.camera_source;
      form.privacy_mode.checked = settings.privacy_mode;
      form.preview_allowed.checked = settings.preview_allowed;
      form.history_days.value = settings.history_days;
      $("#speaker-chosen").textContent = settings.speaker || "none";
      $$(".music-row").forEach((row) => {
        const m = settings.music[row.dataset.mood] || { kind: "search", value: "" };
        $(".music-kind", row).value = m.kind;
        $(".music-value", row).value = m.kind === "playlist" ? (m.label || m.value) : m.value;
        $(".music-value", row).dataset.uri = m.kind === "playlist" ? m.value : "";
        $(".music-value", row).disabled = m.kind === "top_tracks" || m.kind === "saved_tracks";
      });
    };
    fill();
    form.sensitivity.addEventListener("input", () => { $("#sensitivity-out").textContent = pct(form.sensitivity.value); });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        settings = await api("PATCH", "/api/settings", {
          sensitivity: Number(form.sensitivity.value), dwell_seconds: Number(form.dwell_seconds.value),
          cooldown_minutes: Number(form.cooldown_minutes.value), hands_off_minutes: Number(form.hands_off_minutes.value),
          quiet_hours: { enabled: form.quiet_enabled.checked, start: form.quiet_start.value, end: form.quiet_end.value },
          camera_source: form.camera_source.value, privacy_mode: form.privacy_mode.checked,
          preview_allowed: form.preview_allowed.checked, history_days: Number(form.history_days.value),
        });
        fill(); toast("Saved");
      } catch (err) { toast(err.message, true); }
    });

    // music per mood
    $$(".music-row").forEach((row) => {
      const kind = $(".music-kind", row), value = $(".music-value", row), results = $(".playlist-results", row);
      kind.addEventListener("change", () => {
        value.disabled = kind.value === "top_tracks" || kind.value === "saved_tracks";
        value.placeholder = kind.value === "playlist" ? "search your playlists" : kind.value === "search" ? "e.g. feel good pop" : "";
        value.value = ""; value.dataset.uri = ""; results.innerHTML = "";
      });
      let timer;
      value.addEventListener("input", () => {
        value.dataset.uri = "";
        if (kind.value !== "playlist") return;
        clearTimeout(timer);
        timer = setTimeout(async () => {
          results.innerHTML = "";
          try {
            const r = await api("GET", "/api/playlists?q=" + encodeURIComponent(value.value));
            r.playlists.forEach((p) => {
              const li = document.createElement("li");
              const b = document.createElement("button");
              b.type = "button"; b.className = "pick"; b.textContent = p.name;
              b.addEventListener("click", () => { value.value = p.name; value.dataset.uri = p.uri; results.innerHTML = ""; });
              li.appendChild(b); results.appendChild(li);
            });
          } catch (e) { toast(e.message, true); }
        }, 250);
      });
      $(".music-save", row).addEventListener("click", async () => {
        const m = { kind: kind.value, value: "", label: "" };
        if (kind.value === "search") m.value = value.value;
        if (kind.value === "playlist") {
          if (!value.dataset.uri) { toast("Pick one of your playlists from the list", true); return; }
          m.value = value.dataset.uri; m.label = value.value;
        }
        try {
          settings = await api("PATCH", "/api/settings", { music: { [row.dataset.mood]: m } });
          fill(); toast("Music for " + row.dataset.mood + " saved");
        } catch (e) { toast(e.message, true); }
      });
    });

    // speaker
    const loadSpeakers = async () => {
      const list = $("#speaker-list"), err = $("#speaker-error");
      list.innerHTML = ""; err.hidden = true;
      try {
        const r = await api("GET", "/api/speakers");
        if (!r.speakers.length) { err.hidden = false; err.textContent = "No speakers found: turn the speaker on and try again."; }
        r.speakers.forEach((d) => {
          const li = document.createElement("li");
          const b = document.createElement("button");
          b.type = "button"; b.className = "pick"; b.disabled = d.is_restricted;
          b.textContent = d.name + " (" + d.type + (d.is_restricted ? ", cannot be controlled" : "") + ")";
          b.addEventListener("click", async () => {
            try { settings = await api("PATCH", "/api/settings", { speaker: d.name }); fill(); toast("Speaker: " + d.name); }
            catch (e) { toast(e.message, true); }
          });
          li.appendChild(b); list.appendChild(li);
        });
      } catch (e) { err.hidden = false; err.textContent = e.message; }
    };
    $("#speaker-refresh").addEventListener("click", loadSpeakers);

    // Spotify
    const spotifyState = async () => {
      const s = await api("GET", "/api/spotify");
      const text = { connected: "Connected.", "not-connected": "Not connected: Moodbox only shows what it would play.",
        reconnect: "Spotify access expired: reconnect Spotify.", "not-configured":
        "Not set up: add [spotify] client_id to the config (see README)." }[s.state] || s.state;
      $("#spotify-state").textContent = text;
      $("#spotify-state").dataset.state = s.state;
      $("#spotify-connect").hidden = s.state === "connected" || s.state === "not-configured";
      $("#spotify-disconnect").hidden = s.state !== "connected";
      $("#spotify-url").placeholder = s.redirect_uri + "?code=…";
    };
    $("#spotify-start").addEventListener("click", async () => {
      try {
        const r = await api("POST", "/api/spotify/connect");
        const a = $("#spotify-link");
        a.href = r.url; a.hidden = false;
        window.open(r.url, "_blank", "noopener");
      } catch (e) { toast(e.message, true); }
    });
    $("#spotify-finish").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api("POST", "/api/spotify/finish", { url: $("#spotify-url").value });
        toast("Spotify connected"); $("#spotify-url").value = ""; spotifyState(); loadSpeakers();
      } catch (err) { toast(err.message, true); }
    });
    $("#spotify-disconnect").addEventListener("click", async () => {
      try { await api("POST", "/api/spotify/disconnect"); spotifyState(); } catch (e) { toast(e.message, true); }
    });
    spotifyState();
    if (location.hash === "#speaker") loadSpeakers();

    $("#password-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = e.target;
      try { await api("POST", "/api/password", { old: f.old.value, new: f.new.value }); f.reset(); toast("Password changed"); }
      catch (err) { toast(err.message, true); }
    });
  }

  // ---- System -------------------------------------------------------------------------------------------
  function initSystem() {
    let previewTimer = null;
    renderers.push((s) => {
      const pl = s.pipeline || {}, cam = s.camera || {}, model = s.model || {};
      $("#sys-health").textContent = pl.state || "…";
      $("#sys-camera").textContent = (cam.source || "?") + " · " + (cam.state || "?") + (cam.error ? " · " + cam.error : "");
      $("#sys-fps").textContent = (pl.fps || 0).toFixed(1);
      const lat = pl.latency_ms || {};
      $("#sys-latency").textContent = (lat.detect || 0).toFixed(1) + " / " + (lat.classify || 0).toFixed(1) + " ms";
      const ls = window.moodbox.latencies.slice().sort((a, b) => a - b);
      $("#sys-page-latency").textContent = ls.length ? Math.round(ls[Math.floor(ls.length / 2)] * 1000) + " ms median" : "…";
      $("#sys-model").textContent = (model.version || "?") + (model.interim ? " (interim)" : "");
      const acc = model.accuracy || {};
      $("#sys-accuracy").textContent = acc.private_test_int8 ? pct(acc.private_test_int8) + " (int8)" : "not measured";
      const player = s.player || {};
      $("#sys-player").textContent = (player.player || "?") + " · " + (player.state || "") + (player.speaker ? " · " + player.speaker : "");
      $("#sys-uptime").textContent = pl.uptime_s ? Math.round(pl.uptime_s / 60) + " min" : "…";
      const errs = $("#sys-errors");
      errs.innerHTML = "";
      (s.errors || []).slice(-10).reverse().forEach((e) => {
        const li = document.createElement("li");
        li.textContent = clock(e.at) + " " + e.source + ": " + e.message;
        errs.appendChild(li);
      });
      if (!errs.children.length) errs.innerHTML = '<li class="muted">none</li>';
    });
    api("GET", "/api/settings").then((st) => {
      if (!st.preview_allowed) return;
      $("#preview-card").hidden = false;
      const img = $("#preview");
      const refresh = async () => {
        const r = await fetch("/api/preview.jpg", { cache: "no-store" });
        if (r.ok) { const url = URL.createObjectURL(await r.blob()); const old = img.src; img.src = url; if (old.startsWith("blob:")) URL.revokeObjectURL(old); }
      };
      refresh();
      previewTimer = setInterval(refresh, 1000);
    });
    window.addEventListener("pagehide", () => clearInterval(previewTimer));
  }

  const inits = { now: initNow, history: initHistory, videos: initVideos, settings: initSettings, system: initSystem };
  if (inits[page]) {
    Promise.resolve(inits[page]()).catch((e) => toast(e.message, true));
    if (page === "now" || page === "system") {
      fetch("/api/state", { credentials: "same-origin" }).then((r) => r.json()).then((s) => {
        window.moodbox.lastState = s; renderers.forEach((r) => r(s));
      }).finally(connect);
    }
  }
})();
