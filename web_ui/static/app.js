"use strict";
// Moodbox page script. No inline scripts (the CSP forbids them), no third-party code. Live state arrives over
// Server-Sent Events from /api/events; the page polls /api/state only while the box refuses a stream.
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const csrf = ($('meta[name="csrf-token"]') || {}).content || "";
  const page = document.body.dataset.page;
  const MOOD_COLOURS = {
    happy: "#f4b400", surprise: "#ff7a45", neutral: "#8c9bab", sad: "#4a7bd0",
    angry: "#e04848", fear: "#8e5bd6", disgust: "#4caf72", nobody: "#3b3650",
  };
  // The page's word for each mood ("surprised", not "surprise"), from the box (web_ui/app.py): one on every page.
  const MOOD_WORDS = JSON.parse(document.body.dataset.moodWords || "{}");
  const feels = (m) => MOOD_WORDS[m] || m;
  window.moodbox = { latencies: [], lastState: null };

  function toast(text, bad) {
    const t = $("#toast");
    if (!t) return;
    t.textContent = text;
    t.className = "toast" + (bad ? " bad" : "");
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, bad ? 6000 : 3500);
  }

  const UNREACHABLE = "Moodbox is not reachable: check that the phone is on the home Wi-Fi. The page keeps trying.";
  async function api(method, url, body) {
    const opts = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let r;
    try { r = await fetch(url, opts); } catch (e) { throw new Error(UNREACHABLE); }  // never the browser's raw words
    let data = {};
    try { data = await r.json(); } catch (e) { /* empty body */ }
    if (r.status === 401) { location.href = "/login"; }
    if (!r.ok) {
      const problems = data.problems ? " (" + Object.entries(data.problems).map(([k, v]) => k + ": " + v).join("; ") + ")" : "";
      const err = new Error((data.error || "Moodbox answered " + r.status + ": try again in a moment") + problems);
      err.data = data; err.status = r.status;
      throw err;
    }
    return data;
  }

  const pct = (x) => Math.round((x || 0) * 100) + "%";
  // A message as a sentence: a capital first, a full stop last unless it has its own.
  const sentence = (t) => t ? t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?…]$/.test(t) ? "" : ".") : "";
  // A length of time: "45 s", "12 min", "5.5 h", "3.2 days"
  const span = (sec) => sec < 90 ? Math.round(sec) + " s" : sec < 5400 ? Math.round(sec / 60) + " min" :
    sec < 172800 ? +(sec / 3600).toFixed(1) + " h" : +(sec / 86400).toFixed(1) + " days";
  const ago = (t) => span(Math.max(0, Date.now() / 1000 - t)) + " ago";
  const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  // ---- live state ---------------------------------------------------------------------------------------
  let faceSignature = null;
  function measureLatency(s) {
    const sig = (s.faces || []).map((f) => f.emotion).join(",");
    // The first state a page gets is a snapshot that may be a moment old, not a change it waited for: skip it.
    if (faceSignature !== null && sig !== faceSignature && s.frame && s.frame.wall_time) {
      const delay = Date.now() / 1000 - s.frame.wall_time;
      window.moodbox.latencies.push(delay);
      if (window.moodbox.latencies.length > 200) window.moodbox.latencies.shift();
    }
    faceSignature = sig;
  }

  const renderers = [];
  // Other scripts (static/homeassistant.js) follow the live state too: fn(state) on every change.
  window.moodbox.listen = (fn) => { renderers.push(fn); if (window.moodbox.lastState) fn(window.moodbox.lastState); };
  // ---- the connection, shown on every page: "Live", "Lost connection, retrying", "Reconnected" ------------
  window.moodbox.link = "connecting";
  function setLink(state, settled) {
    const was = window.moodbox.link;
    if (state === "live" && was === "lost") state = "back";
    if (state === "live" && was === "back" && !settled) return;
    if (state === was) return;
    window.moodbox.link = state;
    const el = $("#live");
    if (el) {
      el.dataset.link = state;
      el.textContent = { connecting: "Connecting…", live: "Live", lost: "Lost connection, retrying…", back: "Reconnected" }[state];
    }
    clearTimeout(setLink.timer);
    if (state === "back") setLink.timer = setTimeout(() => setLink("live", true), 4000);
    if (window.moodbox.lastState && (state === "lost" || was === "lost")) renderers.forEach((r) => r(window.moodbox.lastState));
  }
  const linkLost = () => window.moodbox.link === "lost";

  function show(s) {
    measureLatency(s);
    window.moodbox.lastState = s;
    renderers.forEach((r) => r(s));
  }
  // The box ends each stream after a few minutes; EventSource reconnects by itself. When the box refuses a
  // stream (503: too many open), the page polls /api/state every 2 s and tries the stream again after 30 s.
  const POLL_MS = 2000, RETRY_STREAM_MS = 30000;
  function poll(until) {
    window.moodbox.polling = true;
    fetch("/api/state", { credentials: "same-origin", cache: "no-store" }).then((r) => {
      if (r.status === 401) { location.href = "/login"; return null; }
      return r.ok ? r.json() : null;
    }).then((s) => { if (s) { show(s); setLink("live"); } }).catch(() => setLink("lost")).finally(() => {
      if (Date.now() < until) setTimeout(() => poll(until), POLL_MS);
      else { window.moodbox.polling = false; connect(); }
    });
  }
  function connect() {
    const es = new EventSource("/api/events");
    es.addEventListener("state", (e) => {
      show(JSON.parse(e.data));
      setLink("live");
    });
    es.onerror = () => {
      if (es.readyState === EventSource.CONNECTING) setLink("lost");  // dropped: EventSource retries by itself
      if (es.readyState === EventSource.CLOSED) poll(Date.now() + RETRY_STREAM_MS);  // refused, not dropped
    };
  }

  // ---- bottom sheets ------------------------------------------------------------------------------------
  // A <dialog class="sheet"> opened modal: above everything (the tab bar too) and inside the viewport. Esc, a tap
  // on the backdrop or a [data-close] button closes it; the browser gives focus back to what opened it, and the
  // opener's aria-expanded follows. Other panels can use it: window.moodbox.sheet(dialog, opener).
  function sheet(dialog, opener) {
    if (!dialog.moodboxSheet) {
      const close = () => { if (dialog.open) dialog.close(); };
      dialog.addEventListener("click", (e) => {
        if (e.target === dialog || e.target.closest("[data-close]")) close();  // the dialog itself: its backdrop
      });
      dialog.addEventListener("close", () => { if (opener) opener.setAttribute("aria-expanded", "false"); });
      dialog.moodboxSheet = {
        open: () => { if (!dialog.open) dialog.showModal(); if (opener) opener.setAttribute("aria-expanded", "true"); },
        close,
      };
    }
    return dialog.moodboxSheet;
  }
  window.moodbox.sheet = sheet;
  // What other scripts of the page share (static/learning.js): the API call, the toast, the mood words, the clock.
  Object.assign(window.moodbox, { api, toast, feels, clock, ago, roomState });

  // ---- Now ----------------------------------------------------------------------------------------------
  const countdown = (t) => {
    const s = Math.max(0, Math.round(t - Date.now() / 1000));
    return s >= 3600 ? Math.floor(s / 3600) + ":" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + " h"
      : Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  };
  const musicName = (desc) => { const m = /"(.*)"/.exec(desc || ""); return m ? "“" + m[1] + "”" : desc || "music"; };

  // What the room's data means now: one of live, settling, dark, nobody, starting, privacy, failing, lost.
  function roomState(s) {
    const cam = s.camera || {}, mood = (s.mood || {}).name || "nobody";
    if (linkLost()) return { state: "lost", title: "Lost connection", why: "Lost connection to Moodbox: this is the last thing it said. Retrying…" };
    if (cam.privacy_mode || cam.state === "off") return { state: "privacy", title: "Camera off", why: "Privacy mode: the camera is off, so Moodbox is not reading the room. Turn it off in Settings." };
    if (cam.state === "retrying" || cam.state === "ended") {
      const when = cam.state !== "retrying" ? "" : cam.retry_at && cam.retry_at > Date.now() / 1000 + 1
        ? " Trying again in " + countdown(cam.retry_at) + "." : " Trying again now.";
      return { state: "failing", title: "No picture", why: "The camera is not working" + (cam.error ? " (" + cam.error + ")" : "") + "." + when };
    }
    if (cam.state !== "live") return { state: "starting", title: "Starting", why: "The camera is opening. The mood shows with its first pictures." };
    // Faces too dark to read: someone is here, and the mood holds until there is light (device/pipeline.py).
    const dark = (s.dark_faces || []).length > 0 && !(s.faces || []).length;
    if (mood === "nobody") {
      if ((s.faces || []).length) return { state: "settling", title: "Reading…", why: "" };
      if (dark) return { state: "dark", title: "Too dark", why: "Someone is in view, but it is too dark to read a face. Moodbox reads the room again once there is more light." };
      const p = s.playing, ap = s.autoplay || {}, would = p && p.preview ? "would be" : "is";
      const why = p && p.paused ? "Nobody in view: the music " + would + " paused until someone is back." :
        ap.pause_at && ap.pause_at > Date.now() / 1000 ? "Nobody in view: the music pauses in " + countdown(ap.pause_at) + " unless someone is back." :
          ap.pause_at ? "Nobody in view: pausing the music." : "Nobody in view: the music carries on.";
      return { state: "nobody", title: "Nobody here", why };
    }
    return { state: "live", title: feels(mood), why: dark ? "Too dark to read the faces in view: the mood stays " + feels(mood).toLowerCase() + " until there is more light." : "" };
  }

  function story(s, room) {
    const head = {
      live: "Room: " + room.title, settling: "Room: reading the faces", dark: "Too dark to read faces", nobody: "Nobody in view",
      starting: "Moodbox is starting", privacy: "Camera off (privacy mode)", failing: "The camera is not working",
      lost: "Lost connection to Moodbox",
    }[room.state];
    if (room.state === "lost") return [head, " · retrying…"];
    const ap = s.autoplay || {}, next = ap.next, p = s.playing, player = s.player || {};
    if (ap.enabled === false) return [head, " · auto-play is paused"];  // whatever would play: one wording
    if (next && next.mood) {
      const preview = player.player === "preview" || player.state === "preview";
      const what = musicName(next.music) + (room.state === "live" && next.mood === (s.mood || {}).name ? "" : " for " + feels(next.mood));
      const verb = preview ? " → would switch to " : " → switching to ";
      if (next.at && next.at > Date.now() / 1000) return [head, verb + what + " in ", { count: next.at }];
      if (next.held_by) return [head, verb + what + " when it can: " + next.held_by];
      return [head, verb + what + " now"];
    }
    if (p && p.paused) return [head, " · " + (p.preview ? "would have paused the music" : "music paused") + ": the room was empty"];
    if (p) return [head, " · " + (p.preview ? "would play " : "playing ") + musicName(p.source.description) + (p.speaker ? " on " + p.speaker : "")];
    return [head, " · nothing playing yet"];
  }

  // What the faces say, in numbers that are true during a change too: the shown mood's share of the faces' reading
  // ("happy 0% sure" was its share while the faces already read sad), what they read now, and where the room goes.
  function moodLine(s) {
    const m = s.mood || {}, mood = m.name, conf = m.confidence || 0, lean = m.leaning;
    const read = (name, share) => pct(share) + " " + feels(name);
    if (m.leader && m.leader !== mood) {
      const leaderShare = lean && lean.mood === m.leader ? read(m.leader, lean.share) + ", " : "";
      return "Changing to " + feels(m.leader) + " · the faces read " + leaderShare + read(mood, conf);
    }
    if (lean && lean.mood !== mood) {
      return "Holding " + feels(mood) + " · the faces read " + read(lean.mood, lean.share) + ", " + read(mood, conf) +
        ": not clear enough to change";
    }
    const lasting = "for " + span(Math.max(0, Date.now() / 1000 - m.since));
    return (lean ? "The faces read " + read(mood, conf) : "No face read this moment: " + feels(mood)) + " · " + lasting;
  }

  function initNow() {
    let autoplayOn = true;
    const picker = sheet($("#mood-picker"), $("#not-my-mood"));
    const render = (s) => {
      const room = roomState(s), mood = (s.mood || {}).name || "nobody";
      const ap = s.autoplay || {}, ov = ap.override;
      // "Not my mood" holds a mood for the music: the big card says so, and what the camera reads goes below.
      const held = room.state !== "lost" && ov && ov.mood && ov.until > Date.now() / 1000 ? ov.mood : null;
      const card = $("#mood-card");
      card.dataset.live = held ? "held" : room.state;
      const el = $("#mood");
      const showMood = room.state === "live" || (room.state === "lost" && mood !== "nobody");
      const shown = held || (showMood ? mood : null);
      el.textContent = shown ? feels(shown) : room.title;
      $("#mood-title").textContent = held ? "You chose" : showMood ? "The room feels" : "Moodbox";
      el.dataset.mood = shown || mood;
      document.documentElement.style.setProperty("--mood", MOOD_COLOURS[shown || "nobody"] || MOOD_COLOURS.nobody);
      const conf = room.state === "live" && !held ? (s.mood || {}).confidence || 0 : 0;
      $("#confidence-bar").style.width = pct(conf);
      $("#confidence").textContent = held ? "Music for " + feels(held) + " until " + clock(ov.until) :
        room.state === "live" ? moodLine(s) : "";
      const why = $("#mood-why");
      const whyText = !held ? room.why : room.why || (room.state === "live" ? "The faces read " + feels(mood) + "." : "");
      why.hidden = !whyText; why.textContent = whyText;
      $("#release-hold").hidden = !held;

      const line = $("#story");
      line.textContent = "";
      story(s, room).forEach((part) => {
        if (typeof part === "string") line.append(part);
        else { const c = document.createElement("span"); c.className = "count"; c.textContent = countdown(part.count); line.append(c); }
      });

      const faces = s.faces || [];
      const camLive = room.state !== "privacy" && room.state !== "failing" && room.state !== "starting";
      const skipped = (s.ignored_faces || []).length;  // in an area marked on the Settings page (a TV, a poster)
      const unread = (s.dark_faces || []).length;
      $("#faces").textContent = !camLive ? "not looking" : (faces.length ? faces.length + ": " + faces.map((f) => feels(f.emotion)).join(", ") : "none") +
        (unread ? " (+" + unread + " too dark)" : "") + (skipped ? " (+" + skipped + " ignored)" : "");
      const cam = s.camera || {};
      $("#camera").textContent = room.state === "privacy" ? "off (privacy mode)" : room.state === "failing" ? "not working, retrying" :
        cam.state === "live" ? "live · " + (cam.source || "") : "starting";
      $("#camera").className = cam.state === "live" && !cam.privacy_mode ? "ok" : "warn";

      const p = s.playing;
      const cover = $("#cover");
      if (p && p.cover && !p.preview) { if (cover.getAttribute("src") !== p.cover) cover.src = p.cover; cover.alt = "Cover of " + (p.track || "the album"); cover.hidden = false; }
      else { cover.hidden = true; cover.removeAttribute("src"); }
      const track = $("#track");
      track.hidden = !(p && p.track);
      track.textContent = p && p.track ? p.track + (p.artist ? " · " + p.artist : "") : "";
      $("#playing").textContent = p ? (p.paused ? (p.preview ? "Would have paused " : "Paused ") : p.preview ? "Would play " : "") +
        p.source.description + " for " + feels(p.mood) +
        (p.speaker ? " on " + p.speaker : "") : "Nothing yet";
      $("#tracks").textContent = "";
      autoplayOn = ap.enabled !== false;
      const player = s.player || {};
      // "nobody here" is the auto-play's reading of an empty room; while the camera is not looking, or someone is
      // there in the dark, it says nothing true.
      const waiting = ap.next || ((!camLive || room.state === "dark") && ap.waiting === "nobody here") ? "" : ap.waiting;
      $("#player-state").textContent = [waiting, player.message].filter(Boolean).join(" · ");

      const btn = $("#autoplay-toggle");
      btn.textContent = autoplayOn ? "Pause auto-play" : "Resume auto-play";
      const lost = room.state === "lost";
      const canSkip = !lost && player.connected && p && !p.preview && !p.paused;
      btn.disabled = lost;
      $("#skip").disabled = !canSkip;
      $("#not-my-mood").disabled = lost;
      $$("#mood-picker .chip").forEach((c) => { c.disabled = lost; });
      const reason = lost ? "The buttons work again once Moodbox is back." :
        !canSkip ? (player.connected ? "Skip works once Moodbox has started music on the speaker." : "Skip works once Spotify is connected (Settings).") : "";
      $("#controls-why").hidden = !reason;
      $("#controls-why").textContent = reason;
      if (lost) picker.close();
    };
    renderers.push(render);
    setInterval(() => { if (window.moodbox.lastState) render(window.moodbox.lastState); }, 1000);  // the countdowns
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
    $("#not-my-mood").addEventListener("click", picker.open);
    $("#release-hold").addEventListener("click", async () => {
      try { await api("POST", "/api/not-my-mood", { mood: null }); toast("Moodbox decides again"); }
      catch (e) { toast(e.message, true); }
    });
    $$("#mood-picker .chip").forEach((chip) => chip.addEventListener("click", async () => {
      try {
        await api("POST", "/api/not-my-mood", { mood: chip.dataset.mood || null });
        picker.close();
        toast(chip.dataset.mood ? "Holding " + feels(chip.dataset.mood) : "Moodbox decides again");
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
    // With less data than the range, the chart starts at the first mood change, not hours of nothing before it.
    const start = h.before ? h.since : h.changes.length ? h.changes[0].at : h.until;
    const rangeS = Math.max(60, h.until - start);
    const rowH = (hgt - 24) / moods.length;
    const x = (t) => ((t - (h.until - rangeS)) / rangeS) * (w - 78) + 70;
    ctx.font = "12px system-ui, sans-serif";
    const fg = getComputedStyle(document.body).color;
    ctx.fillStyle = fg;
    moods.forEach((m, i) => ctx.fillText(feels(m), 0, 12 + i * rowH + rowH / 2));
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
    ctx.fillStyle = fg;
    [rangeS, rangeS / 2, 0].forEach((secAgo, k) => {  // marks at the start, the middle and now, each its true age
      const text = secAgo === 0 ? "now" : span(secAgo) + " ago";
      const at = x(h.until - secAgo) - [0, 0.5, 1][k] * ctx.measureText(text).width;
      ctx.fillText(text, Math.max(0, at), hgt - 4);
    });
    const sum = Object.values(totals).reduce((a, b) => a + b, 0);
    const list = $("#shares");
    list.innerHTML = "";
    Object.entries(totals).sort((a, b) => b[1] - a[1]).forEach(([m, t]) => {
      const li = document.createElement("li");
      li.innerHTML = '<span class="swatch"></span><span class="name"></span><span class="val"></span>';
      li.querySelector(".swatch").style.background = MOOD_COLOURS[m];
      li.querySelector(".name").textContent = m === "nobody" ? "nobody here" : feels(m);
      li.querySelector(".val").textContent = span(t) + " · " + pct(t / sum);
      list.appendChild(li);
    });
    const covers = $("#history-covers");
    const hours = Number($("#range").value);
    covers.textContent = !segments.length ? "" : h.before || h.until - start >= hours * 3600 - 60
      ? "Based on the whole " + $("#range").selectedOptions[0].textContent + "."
      : "Based on " + span(h.until - start) + " of data, since " + clock(start) + ".";
    $("#history-empty").hidden = segments.length > 0;
  }
  function initHistory() {
    const load = async () => {
      try { drawHistory(await api("GET", "/api/history?hours=" + $("#range").value)); } catch (e) { toast(e.message, true); }
    };
    $("#range").addEventListener("change", load);
    // "Delete my history" asks first, in a sheet that can also forget what Moodbox learned from corrections.
    const ask = sheet($("#delete-sheet"), $("#delete-history")), also = $("#delete-corrections");
    $("#delete-history").addEventListener("click", () => {
      also.checked = false; $("#delete-error").hidden = true;
      ask.open();
    });
    $("#delete-confirm").addEventListener("click", async () => {
      try {
        const r = await api("DELETE", "/api/history" + (also.checked ? "?corrections=true" : ""));
        ask.close();
        toast("Deleted " + r.deleted + " entries" + (also.checked ? ", and what Moodbox learned from corrections" : ""));
        load(); window.dispatchEvent(new Event("moodbox:history-deleted"));
      } catch (e) { $("#delete-error").hidden = false; $("#delete-error").textContent = sentence(e.message); }
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
        const word = feels(v.mood);
        $("#video-mood").textContent = (/^[aeiou]/.test(word) ? "an " : "a ") + word + " room";
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
  const FIELD_NAMES = {
    sensitivity: "How sure Moodbox must be", dwell_seconds: "Mood must hold for", cooldown_minutes: "Time between automatic changes",
    hands_off_minutes: "Hands off", pause_when_empty_minutes: "Pause when the room is empty", "quiet_hours.start": "Quiet hours from", "quiet_hours.end": "Quiet hours to",
    camera_source: "Camera", history_days: "Keep history for", spotify_client_id: "Client ID",
    "volume_cap.enabled": "Quieter at night", "volume_cap.percent": "Start the music at most at",
    "volume_cap.start": "Volume at night from", "volume_cap.end": "Volume at night to",
  };
  const problemText = (err) => err.data && err.data.problems
    ? Object.entries(err.data.problems).map(([k, v]) => (FIELD_NAMES[k] || k) + ": " + v).join("; ") : err.message;
  // A problem is shown under its own field: the field is marked invalid and described by the message. `box` is the
  // field's message element; without one, one is made after the field's label the first time it is needed.
  function fieldError(input, box, text) {
    box = box || errorBox(input);
    box.hidden = !text; box.textContent = sentence(text);
    if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  }
  function errorBox(input) {
    const id = (input.id || (input.form ? input.form.id + "-" : "") + input.name) + "-error";
    let box = document.getElementById(id);
    if (!box) {
      box = document.createElement("p");
      box.id = id; box.className = "field-error"; box.hidden = true;
      (input.closest("label") || input).after(box);
    }
    const described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (!described.includes(id)) input.setAttribute("aria-describedby", described.concat(id).join(" "));
    return box;
  }
  // Bring a field and its message into view, clear of the header and the tab bar, and put the cursor there.
  function reveal(input) {
    input.scrollIntoView({ block: "center" });
    input.focus({ preventScroll: true });
  }
  // The rule a number field keeps, in words: "use whole minutes from 0 to 720", "use 0 to 120 seconds, in steps of 0.5".
  function numberRule(input) {
    const unit = input.dataset.unit || "", step = Number(input.step) || 1;
    if (step === 1) return "use whole " + (unit || "numbers") + " from " + input.min + " to " + input.max;
    return "use " + input.min + " to " + input.max + (unit ? " " + unit : "") + ", in steps of " + step;
  }
  // What is wrong with a field the browser finds invalid, with the rule it must keep.
  function fieldProblem(input) {
    if (input.type === "number") {
      if (input.validity.badInput) return "type a number: " + numberRule(input);
      if (input.value === "") return "fill this in: " + numberRule(input);
      return numberRule(input);
    }
    if (input.value === "") return "fill this in";
    return input.validationMessage;
  }
  Object.assign(window.moodbox, { fieldError, reveal, sentence });

  // ---- Settings: faces that are not people -------------------------------------------------------------
  // The camera's view drawn as boxes from the live state (no picture): tap a face to ignore its spot, or drag
  // to mark an area (a whole TV). The box drops faces whose centre is in an area before reading them.
  function ignoredAreas(current, saved) {
    const map = $("#room-map"), list = $("#ignored-list"), errBox = $("#ignore-error");
    if (!map) return;
    const clamp = (v) => Math.min(1, Math.max(0, v));
    const r3 = (v) => Math.round(clamp(v) * 1000) / 1000;
    const place = (el, x, y, w, h) => {
      el.style.left = x * 100 + "%"; el.style.top = y * 100 + "%"; el.style.width = w * 100 + "%"; el.style.height = h * 100 + "%";
    };
    const where = (a) => {
      const cx = a.x + a.w / 2, cy = a.y + a.h / 2;
      const across = cx < 1 / 3 ? "left" : cx < 2 / 3 ? "centre" : "right";
      const down = cy < 1 / 3 ? "top" : cy < 2 / 3 ? "middle" : "bottom";
      return down + " " + across + ", " + Math.round(a.w * 100) + "% × " + Math.round(a.h * 100) + "% of the view";
    };
    async function save(areas, done) {
      try {
        saved(await api("PATCH", "/api/settings", { ignored_areas: areas }));
        errBox.hidden = true; draw(); toast(done);
      } catch (err) { errBox.hidden = false; errBox.textContent = problemText(err); }
    }
    const add = (x, y, w, h) => {
      const a = { x: r3(x), y: r3(y), w: r3(Math.min(w, 1 - clamp(x))), h: r3(Math.min(h, 1 - clamp(y))) };
      if (a.w < 0.03 || a.h < 0.03) return;  // a tap on the empty view, not a drag
      save(current().ignored_areas.concat([a]), "Faces there will be ignored");
    };
    function draw() {
      $$(".area", map).forEach((el) => el.remove());
      list.innerHTML = "";
      current().ignored_areas.forEach((a, i) => {
        const el = document.createElement("div");
        el.className = "area"; el.textContent = String(i + 1); place(el, a.x, a.y, a.w, a.h);
        map.appendChild(el);
        const li = document.createElement("li");
        const label = document.createElement("span");
        label.textContent = "Area " + (i + 1) + ": " + where(a);
        const b = document.createElement("button");
        b.type = "button"; b.className = "btn ghost"; b.textContent = "Remove";
        b.setAttribute("aria-label", "Remove area " + (i + 1));
        b.addEventListener("click", () => save(current().ignored_areas.filter((_, j) => j !== i), "Area " + (i + 1) + " removed"));
        li.append(label, b);
        list.appendChild(li);
      });
      if (!list.children.length) list.innerHTML = '<li class="muted">No area is ignored: every face in view is read.</li>';
    }
    // Face boxes are reused from state to state, so a tap is never lost to a redraw.
    let frame = [640, 480];
    const render = (s) => {
      const size = (s.frame || {}).size;
      if (size && size[0] > 0 && size[1] > 0) { frame = size; map.style.aspectRatio = size[0] + " / " + size[1]; }
      const [W, H] = frame;
      const boxes = (s.faces || []).map((f) => ({ box: f.box, emotion: f.emotion }))
        .concat((s.ignored_faces || []).map((box) => ({ box, ignored: "ignored" })))
        .concat((s.dark_faces || []).map((box) => ({ box, ignored: "too dark" })));
      const els = $$(".face", map);
      boxes.forEach((f, i) => {
        let el = els[i];
        const want = f.ignored ? "DIV" : "BUTTON";
        if (!el || el.tagName !== want) {
          const fresh = document.createElement(want);
          if (want === "BUTTON") { fresh.type = "button"; fresh.addEventListener("click", () => {
            const [x, y, w, h] = JSON.parse(fresh.dataset.box), k = 1.6;  // the face and a margin around it
            add(x - (k - 1) / 2 * w, y - (k - 1) / 2 * h, k * w, k * h);
          }); }
          if (el) el.replaceWith(fresh); else map.appendChild(fresh);
          el = fresh;
        }
        const [x, y, w, h] = f.box;
        el.className = "face" + (f.ignored ? " ignored" : "");  // "too dark" is drawn like "ignored": not read
        el.dataset.box = JSON.stringify([x / W, y / H, w / W, h / H]);
        el.textContent = f.ignored || feels(f.emotion);
        if (!f.ignored) el.setAttribute("aria-label", "Ignore the spot of this " + feels(f.emotion) + " face (a TV, a poster)");
        el.style.left = (x + w / 2) / W * 100 + "%"; el.style.top = (y + h / 2) / H * 100 + "%";
        el.style.width = w / W * 100 + "%"; el.style.height = h / H * 100 + "%";
      });
      els.slice(boxes.length).forEach((el) => el.remove());
      const read = (s.faces || []).length, skipped = (s.ignored_faces || []).length;
      $("#map-faces").textContent = (read === 1 ? "1 face read" : read + " faces read") +
        (skipped ? ", " + skipped + " ignored" : "") + " now.";
    };
    renderers.push(render);
    if (window.moodbox.lastState) render(window.moodbox.lastState);
    // Drag across the view to mark an area.
    let start = null, draft = null;
    const at = (e) => { const r = map.getBoundingClientRect(); return [clamp((e.clientX - r.left) / r.width), clamp((e.clientY - r.top) / r.height)]; };
    map.addEventListener("pointerdown", (e) => {
      if (e.target.closest(".face")) return;  // a tap on a face is the face's
      start = at(e); map.setPointerCapture(e.pointerId);
      draft = document.createElement("div"); draft.className = "draft"; map.appendChild(draft); place(draft, start[0], start[1], 0, 0);
    });
    map.addEventListener("pointermove", (e) => {
      if (!start) return;
      const [x, y] = at(e);
      place(draft, Math.min(x, start[0]), Math.min(y, start[1]), Math.abs(x - start[0]), Math.abs(y - start[1]));
    });
    const finish = (e, keep) => {
      if (!start) return;
      const [x, y] = at(e), [x0, y0] = start;
      start = null; draft.remove();
      if (keep) add(Math.min(x, x0), Math.min(y, y0), Math.abs(x - x0), Math.abs(y - y0));
    };
    map.addEventListener("pointerup", (e) => finish(e, true));
    map.addEventListener("pointercancel", (e) => finish(e, false));
    draw();
  }

  async function initSettings() {
    let settings = await api("GET", "/api/settings");
    const form = $("#behaviour-form");
    const quietSync = () => { form.quiet_start.disabled = form.quiet_end.disabled = !form.quiet_enabled.checked; };
    const fill = () => {
      form.sensitivity.value = settings.sensitivity;
      $("#sensitivity-out").textContent = pct(settings.sensitivity);
      form.dwell_seconds.value = settings.dwell_seconds;
      form.cooldown_minutes.value = settings.cooldown_minutes;
      form.hands_off_minutes.value = settings.hands_off_minutes;
      form.pause_when_empty_minutes.value = settings.pause_when_empty_minutes;
      form.quiet_enabled.checked = settings.quiet_hours.enabled;
      form.quiet_start.value = settings.quiet_hours.start;
      form.quiet_end.value = settings.quiet_hours.end;
      quietSync();
      if (!$('option[value="' + settings.camera_source + '"]', form.camera_source)) {  // a replay, set in the config file
        const o = document.createElement("option");
        o.value = settings.camera_source; o.textContent = "Replay (set in the config file)";
        form.camera_source.appendChild(o);
      }
      form.camera_source.value = settings.camera_source;
      form.privacy_mode.checked = settings.privacy_mode;
      form.preview_allowed.checked = settings.preview_allowed;
      form.history_days.value = settings.history_days;
      $("#speaker-chosen").textContent = settings.speaker || "none";
      $$(".music-row").forEach((row) => {
        const m = settings.music[row.dataset.mood] || { kind: "search", value: "" };
        const value = $(".music-value", row);
        $(".music-kind", row).value = m.kind;
        value.value = m.kind === "playlist" ? (m.label || m.value) : m.value;
        value.dataset.uri = m.kind === "playlist" ? m.value : "";
        value.disabled = m.kind === "top_tracks" || m.kind === "saved_tracks";
        fieldError(value, $(".field-error", row), "");
        musicVolume(row, m.volume);
      });
    };
    fill();
    form.sensitivity.addEventListener("input", () => { $("#sensitivity-out").textContent = pct(form.sensitivity.value); });
    form.quiet_enabled.addEventListener("change", quietSync);
    form.addEventListener("input", (e) => { if (e.target.getAttribute("aria-invalid")) fieldError(e.target, null, ""); });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const errBox = $("#behaviour-error");
      const fields = $$("input", form).filter((i) => !i.disabled && i.name);
      const bad = fields.filter((i) => !i.checkValidity());
      fields.forEach((i) => fieldError(i, null, bad.includes(i) ? fieldProblem(i) : ""));
      errBox.hidden = true;
      if (bad.length) { reveal(bad[0]); return; }
      try {
        settings = await api("PATCH", "/api/settings", {
          sensitivity: Number(form.sensitivity.value), dwell_seconds: Number(form.dwell_seconds.value),
          cooldown_minutes: Number(form.cooldown_minutes.value), hands_off_minutes: Number(form.hands_off_minutes.value),
          pause_when_empty_minutes: Number(form.pause_when_empty_minutes.value),
          quiet_hours: { enabled: form.quiet_enabled.checked, start: form.quiet_start.value, end: form.quiet_end.value },
          camera_source: form.camera_source.value, privacy_mode: form.privacy_mode.checked,
          preview_allowed: form.preview_allowed.checked, history_days: Number(form.history_days.value),
        });
        fill(); toast("Saved");
      } catch (err) {  // the box's own check: each problem under its field, any other above Save
        const rest = {}, marked = [];
        Object.entries((err.data || {}).problems || {}).forEach(([k, v]) => {
          const input = form.elements[k.replace("quiet_hours.", "quiet_")];
          if (input && input.tagName) { fieldError(input, null, v); marked.push(input); } else rest[k] = v;
        });
        const left = Object.keys(rest).length ? problemText({ data: { problems: rest } }) : marked.length ? "" : err.message;
        errBox.hidden = !left; errBox.textContent = left;
        if (marked.length) reveal(marked[0]); else errBox.scrollIntoView({ block: "center" });
      }
    });

    // music per mood: one Save for the card
    $$(".music-row").forEach((row) => {
      const kind = $(".music-kind", row), value = $(".music-value", row), results = $(".playlist-results", row);
      kind.addEventListener("change", () => {
        value.disabled = kind.value === "top_tracks" || kind.value === "saved_tracks";
        value.placeholder = kind.value === "playlist" ? "search your playlists" : kind.value === "search" ? "e.g. feel good pop" : "";
        value.value = ""; value.dataset.uri = ""; results.innerHTML = "";
        fieldError(value, $(".field-error", row), "");
      });
      let timer;
      value.addEventListener("input", () => {
        value.dataset.uri = "";
        fieldError(value, $(".field-error", row), "");
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
          } catch (e) { fieldError(value, $(".field-error", row), e.message); }
        }, 250);
      });
    });
    $("#music-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const music = {};
      let firstBad = null;
      $$(".music-row").forEach((row) => {
        const kind = $(".music-kind", row).value, value = $(".music-value", row), box = $(".field-error", row);
        const m = { kind, value: "", label: "", volume: $(".music-volume-pick", row).value ? Number($(".music-volume-pick", row).value) : null };
        let problem = "";
        if (kind === "search") { m.value = value.value.trim(); if (!m.value) problem = "Type what to search for, e.g. “feel good pop”."; }
        if (kind === "playlist") {
          if (!value.dataset.uri) problem = "Pick one of your playlists from the list.";
          m.value = value.dataset.uri; m.label = value.value;
        }
        fieldError(value, box, problem);
        if (problem && !firstBad) firstBad = value;
        music[row.dataset.mood] = m;
      });
      if (firstBad) { firstBad.focus(); toast("Not saved: some moods need music", true); return; }
      try {
        settings = await api("PATCH", "/api/settings", { music });
        fill(); toast("Music saved");
      } catch (err) {
        Object.entries((err.data || {}).problems || {}).forEach(([k, v]) => {
          const row = $('.music-row[data-mood="' + k.split(".")[1] + '"]');
          if (row && k.endsWith(".volume")) fieldError($(".music-volume-pick", row), null, v);
          else if (row) fieldError($(".music-value", row), $(".field-error", row), v);
        });
        toast("Not saved: " + problemText(err), true);
      }
    });

    // speaker
    let speakerAsk = 0;  // only the newest search fills the list (a click and the post-connect search can overlap)
    const loadSpeakers = async () => {
      const list = $("#speaker-list"), err = $("#speaker-error"), ask = ++speakerAsk;
      list.replaceChildren(); err.hidden = true;
      try {
        const r = await api("GET", "/api/speakers");
        if (ask !== speakerAsk) return;
        list.replaceChildren();
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
      } catch (e) { if (ask === speakerAsk) { err.hidden = false; err.textContent = e.message; } }
    };
    $("#speaker-refresh").addEventListener("click", loadSpeakers);

    // Spotify: the household's own app (Client ID), then connecting an account
    let changingApp = false, firstLook = true;
    const spotifyState = async () => {
      const s = await api("GET", "/api/spotify");
      const text = { connected: "Connected.", "not-connected": "Not connected yet: Moodbox only shows what it would play.",
        reconnect: "Spotify access expired: reconnect Spotify below.", "not-configured":
        "Not set up yet: Moodbox only shows what it would play. Set it up with the steps below." }[s.state] || s.state;
      $("#spotify-state").textContent = text;
      $("#spotify-state").dataset.state = s.state;
      $("#redirect-uri").textContent = s.redirect_uri;
      const fromConfig = s.client_id_from === "config";
      if (firstLook) $("#spotify-steps").open = s.state === "not-configured";  // later, as the owner left it
      firstLook = false;
      if (changingApp) $("#spotify-steps").open = true;
      $("#client-id-form").hidden = fromConfig || !(s.state === "not-configured" || changingApp);
      $("#spotify-config-note").hidden = !fromConfig;
      $("#client-id-change").hidden = fromConfig || s.state === "not-configured" || changingApp;
      $("#spotify-connect").hidden = !(s.state === "not-connected" || s.state === "reconnect") || changingApp;
      $("#spotify-disconnect").hidden = s.state !== "connected";
      $("#spotify-url").placeholder = s.redirect_uri + "?code=…";
      const canFind = s.state === "connected";
      $("#speaker-refresh").hidden = !canFind;
      $("#speaker-why").hidden = canFind;
      // The account's own playlists, top and saved tracks need the account: not offered before it is connected.
      $$(".music-kind option[data-needs-spotify]").forEach((o) => { o.disabled = !canFind; });
      $("#music-needs-spotify").hidden = canFind;
      return s;
    };
    // Copy says what it did on the button and beside it, and stays said for a few seconds.
    $("#copy-redirect").addEventListener("click", async () => {
      const text = $("#redirect-uri").textContent, button = $("#copy-redirect"), done = $("#copy-done");
      const select = () => {  // selected on the page, for the phone's own Copy
        const range = document.createRange();
        range.selectNodeContents($("#redirect-uri"));
        const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
      };
      let copied = false;
      try {
        if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); copied = true; }
      } catch (e) { /* refused: try the older way */ }
      if (!copied) {  // plain http on the home network has no clipboard API
        select();
        try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
      }
      button.textContent = copied ? "Copied ✓" : "Copy";
      done.dataset.ok = String(copied);
      done.textContent = copied ? "Copied. Paste it under Redirect URIs." :
        "Could not copy here: the address is selected, so press and hold it to copy.";
      clearTimeout(button.timer);
      button.timer = setTimeout(() => { button.textContent = "Copy"; }, 4000);
    });
    $("#client-id-change").addEventListener("click", () => { changingApp = true; spotifyState(); });
    $("#client-id-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const input = $("#client-id"), box = $("#client-id-error");
      const v = input.value.trim();  // pasted with a space or a line break around it: still the ID
      if (!v) { fieldError(input, box, "Paste your app's Client ID first."); reveal(input); return; }
      try {  // the box checks it, by the config file's rule (device/config.py)
        settings = await api("PATCH", "/api/settings", { spotify_client_id: v });
        fieldError(input, box, ""); input.value = ""; changingApp = false;
        toast("Client ID saved: now connect Spotify");
        spotifyState();
      } catch (err) {
        const problems = (err.data || {}).problems || {};
        fieldError(input, box, problems.spotify_client_id ? "That is " + problems.spotify_client_id : problemText(err));
        reveal(input);
      }
    });
    $("#spotify-start").addEventListener("click", async () => {
      const box = $("#spotify-start-error");
      try {
        const r = await api("POST", "/api/spotify/connect");
        box.hidden = true;
        const a = $("#spotify-link");
        a.href = r.url; a.hidden = false;
        window.open(r.url, "_blank", "noopener");
      } catch (e) { box.hidden = false; box.textContent = e.message; }
    });
    $("#spotify-url").addEventListener("input", () => fieldError($("#spotify-url"), $("#spotify-url-error"), ""));
    $("#spotify-finish").addEventListener("submit", async (e) => {
      e.preventDefault();
      const input = $("#spotify-url"), box = $("#spotify-url-error");
      try {
        await api("POST", "/api/spotify/finish", { url: input.value });
        fieldError(input, box, "");
        toast("Spotify connected"); input.value = ""; await spotifyState(); loadSpeakers();
      } catch (err) {  // stays under the field until the address is changed: no toast that is gone in seconds
        const text = err.message;
        fieldError(input, box, text);
        reveal(input);
      }
    });
    $("#spotify-disconnect").addEventListener("click", async () => {
      try { await api("POST", "/api/spotify/disconnect"); spotifyState(); } catch (e) { toast(e.message, true); }
    });
    spotifyState().then((s) => { if (location.hash === "#speaker" && s.state === "connected") loadSpeakers(); });
    ignoredAreas(() => settings, (s) => { settings = s; });

    $("#password-form").addEventListener("input", (e) => { if (e.target.getAttribute("aria-invalid")) fieldError(e.target, null, ""); });
    $("#password-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = e.target;
      const bad = [f.old, f.new].find((i) => !i.checkValidity());
      [f.old, f.new].forEach((i) => fieldError(i, null, ""));
      if (bad) {
        fieldError(bad, null, bad.value === "" ? "fill this in" : "use at least " + f.new.minLength + " characters");
        reveal(bad);
        return;
      }
      try { await api("POST", "/api/password", { old: f.old.value, new: f.new.value }); f.reset(); toast("Password changed"); }
      catch (err) {  // a wrong current password (403, or 429 after several) belongs to that field; the rest to the new one
        const input = err.status === 400 ? f.new : f.old;
        fieldError(input, null, err.message); reveal(input);
      }
    });
  }

  // ---- Music: the song now, why it plays, the heart and the volume (Now); what played (History); each mood's
  // music, likes and skips, "Try it" and the night's volume (Settings) ---------------------------------------------
  const WHY_WORDS = { mood: "the room turned ", hold: "you chose ", try: "you tapped Try it for ", "list-end": "more for ",
    skip: "after a skip", next: "" };
  function nowMusic() {
    let sliding = false, cap = null;
    const like = $("#like"), slider = $("#volume");
    const render = (s) => {
      const p = s.playing, vol = s.volume || {};
      const live = !!(p && !p.preview && !p.paused && (s.player || {}).connected && !linkLost());
      like.hidden = !(live && p.uri);
      if (!like.hidden) {
        like.setAttribute("aria-pressed", String(!!p.liked));
        like.textContent = p.liked ? "♥" : "♡";
        like.setAttribute("aria-label", (p.liked ? "Liked for " : "Like this song for ") + feels(p.mood) + " (tap to " + (p.liked ? "unlike" : "like") + ")");
      }
      const when = p && Date.now() / 1000 - p.why_at < 10 ? "just now" : p ? ago(p.why_at) : "";
      const line = p && !p.paused && p.why_line ? p.why_line.replace("{ago}", when) : "";
      $("#why-song").hidden = !line;
      $("#why-song").textContent = line;
      $("#music-advice").hidden = !(p && p.suggest);
      $("#music-advice").textContent = (p && p.suggest) || "";
      const canSet = live && vol.control !== false && vol.percent != null;
      $("#volume-row").hidden = !canSet;
      if (canSet && !sliding) { slider.value = vol.percent; $("#volume-out").textContent = vol.percent + "%"; }
      $("#volume-note").hidden = !(live && vol.control === false);
      $("#volume-note").textContent = (vol.speaker || "The speaker") + " does not let apps change its volume: use its own buttons or the Spotify app.";
      $("#volume-cap").hidden = !(canSet && cap && cap.enabled);
      if (cap) $("#volume-cap").textContent = "From " + cap.start + " to " + cap.end + " Moodbox starts music no louder than " + cap.percent + "% (Settings).";
    };
    renderers.push(render);
    setInterval(() => { if (window.moodbox.lastState) render(window.moodbox.lastState); }, 15000);  // "2 min ago"
    api("GET", "/api/settings").then((st) => { cap = st.volume_cap; if (window.moodbox.lastState) render(window.moodbox.lastState); }).catch(() => {});
    like.addEventListener("click", async () => {
      const liked = like.getAttribute("aria-pressed") !== "true";
      try {
        const r = await api("POST", "/api/like", { liked });
        toast((liked ? "Liked for " : "Unliked for ") + feels(r.mood) + ": " + r.saved);
      } catch (e) { toast(e.message, true); }
    });
    slider.addEventListener("input", () => { sliding = true; $("#volume-out").textContent = slider.value + "%"; });
    slider.addEventListener("change", async () => {
      try { await api("POST", "/api/volume", { percent: Number(slider.value) }); }
      catch (e) { toast(e.message, !(e.data && e.data.state === "no-volume-control")); }  // a fact about the speaker
      finally { sliding = false; }
    });
  }

  function playItem(p) {
    const li = document.createElement("li");
    const when = document.createElement("span"), what = document.createElement("span"), how = document.createElement("span");
    when.className = "when"; what.className = "what"; how.className = "how muted small";
    const day = new Date(p.started * 1000);
    when.textContent = (day.toDateString() === new Date().toDateString() ? "" : day.toLocaleDateString([], { weekday: "short" }) + " ") + clock(p.started);
    if (p.preview) what.textContent = "Would play " + musicName(p.source);
    else {
      const b = document.createElement("b");
      b.textContent = p.track || "?";
      what.append(b, p.artist ? " · " + p.artist : "");
    }
    const why = (WHY_WORDS[p.why] || "") + (["mood", "hold", "try", "list-end"].includes(p.why) ? feels(p.mood) : "");
    const ending = !p.ending ? (p.preview ? "Spotify was not connected" : "") : p.ending === "played" ? "played through" :
      p.ended_as + (p.listened != null ? " after " + span(p.listened) : "");
    how.textContent = [feels(p.mood) + " · " + musicName(p.source), why, ending].filter(Boolean).join(" · ");
    li.append(when, what, how);
    return li;
  }
  function historyPlays() {
    const list = $("#plays"), more = $("#plays-more");
    let last = null;
    const load = async (next) => {
      try {
        const r = await api("GET", "/api/plays?limit=20" + (next && last ? "&before=" + last : ""));
        if (!next) list.replaceChildren();
        r.plays.forEach((p) => list.appendChild(playItem(p)));
        if (r.plays.length) last = r.plays[r.plays.length - 1].id;
        more.hidden = !r.more;
        $("#plays-empty").hidden = list.children.length > 0;
      } catch (e) { toast(e.message, true); }
    };
    more.addEventListener("click", () => load(true));
    window.addEventListener("moodbox:history-deleted", () => load(false));
    load(false);
    setInterval(() => { if (list.children.length <= 20) load(false); }, 60000);
  }

  function musicVolume(row, volume) {  // a mood's starting volume in the music form: "as the speaker is" or N%
    const pick = $(".music-volume-pick", row);
    if (volume != null && !$('option[value="' + volume + '"]', pick)) {
      const o = document.createElement("option");
      o.value = String(volume); o.textContent = volume + "%";
      pick.appendChild(o);
    }
    pick.value = volume == null ? "" : String(volume);
  }
  async function settingsMusic() {
    const show = async () => {
      const r = await api("GET", "/api/music");
      $$(".taste").forEach((box) => {
        const m = r.moods[box.dataset.mood];
        const likes = !m.likes ? "" : m.likes + (m.likes === 1 ? " song liked" : " songs liked") +
          (m.playlist ? " (also in “" + m.playlist + "” in Spotify)" : "");
        const skipped = !m.skipped ? "" : m.skipped + (m.skipped === 1 ? " song" : " songs") + " skipped early: not played for 30 days";
        $(".taste-line", box).textContent = [likes, skipped].filter(Boolean).join(" · ") || "No likes or early skips yet.";
        $(".taste-advice", box).hidden = !m.suggest;
        $(".taste-advice", box).textContent = m.suggest || "";
        $(".forget", box).hidden = !m.skipped;
      });
      const note = { reconnect: "Likes stay on Moodbox: connect Spotify again (Disconnect, then Connect) to save them to a playlist per mood too.",
        off: "Likes and skips are learned once Spotify is connected and playing." }[r.playlists];
      $("#likes-note").hidden = !note;
      $("#likes-note").textContent = note || "";
    };
    $$(".taste").forEach((box) => {
      const mood = box.dataset.mood, word = feels(mood);
      $(".try", box).setAttribute("aria-label", "Try it: play the " + word + " music now");
      $(".forget", box).setAttribute("aria-label", "Forget the songs skipped for " + word);
      $(".try", box).addEventListener("click", async () => {
        try { await api("POST", "/api/music/try", { mood }); toast("Playing the " + word + " music now: see Now"); }
        catch (e) { toast(e.message, true); }
      });
      $(".forget", box).addEventListener("click", async () => {
        try { const r = await api("POST", "/api/music/forget-skips", { mood }); toast(r.forgotten + " skipped songs can play again for " + word); show(); }
        catch (e) { toast(e.message, true); }
      });
    });
    // the night's volume cap
    const form = $("#volume-cap-form");
    const fill = (cap) => {
      form.cap_enabled.checked = cap.enabled; form.cap_percent.value = cap.percent;
      $("#cap-percent-out").textContent = cap.percent + "%";
      form.cap_start.value = cap.start; form.cap_end.value = cap.end;
      form.cap_percent.disabled = form.cap_start.disabled = form.cap_end.disabled = !cap.enabled;
    };
    form.cap_percent.addEventListener("input", () => { $("#cap-percent-out").textContent = form.cap_percent.value + "%"; });
    form.cap_enabled.addEventListener("change", () => {
      form.cap_percent.disabled = form.cap_start.disabled = form.cap_end.disabled = !form.cap_enabled.checked;
    });
    form.addEventListener("input", (e) => { if (e.target.getAttribute("aria-invalid")) fieldError(e.target, null, ""); });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const errBox = $("#volume-cap-error");
      const fields = [form.cap_percent, form.cap_start, form.cap_end].filter((i) => !i.disabled);
      const bad = fields.filter((i) => !i.checkValidity());
      [form.cap_percent, form.cap_start, form.cap_end].forEach((i) => fieldError(i, null, bad.includes(i) ? fieldProblem(i) : ""));
      errBox.hidden = true;
      if (bad.length) { reveal(bad[0]); return; }
      try {
        const st = await api("PATCH", "/api/settings", { volume_cap: { enabled: form.cap_enabled.checked,
          percent: Number(form.cap_percent.value), start: form.cap_start.value, end: form.cap_end.value } });
        fill(st.volume_cap); toast("Saved");
      } catch (err) {  // the box's own check: each problem under its field, any other above Save
        const rest = {}, marked = [];
        Object.entries((err.data || {}).problems || {}).forEach(([k, v]) => {
          const input = form.elements[k.replace("volume_cap.", "cap_")];
          if (input && input.tagName) { fieldError(input, null, v); marked.push(input); } else rest[k] = v;
        });
        const left = Object.keys(rest).length ? problemText({ data: { problems: rest } }) : marked.length ? "" : err.message;
        errBox.hidden = !left; errBox.textContent = left;
        if (marked.length) reveal(marked[0]); else errBox.scrollIntoView({ block: "center" });
      }
    });
    fill((await api("GET", "/api/settings")).volume_cap);
    await show();
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
      $("#sys-latency").textContent = (lat.detect || 0).toFixed(1) + " / " +
        (lat.classify != null ? lat.classify.toFixed(1) + " ms" : "– ms (no face yet)");
      const ls = window.moodbox.latencies.slice().sort((a, b) => a - b);
      $("#sys-page-latency").textContent = ls.length ? Math.round(ls[Math.floor(ls.length / 2)] * 1000) + " ms median" : "…";
      $("#sys-model").textContent = (model.version || "?") + (model.interim ? " (interim)" : "");
      const acc = model.accuracy || {};
      $("#sys-accuracy").textContent = [
        acc.private_test_int8 ? pct(acc.private_test_int8) + " FER2013" : "",
        acc.realval_int8 ? pct(acc.realval_int8) + " real photos" : "",
      ].filter(Boolean).join(" · ") || "not measured";
      const player = s.player || {};
      $("#sys-player").textContent = [player.player || "?", player.state !== player.player ? player.state : "", player.speaker]
        .filter(Boolean).join(" · ");
      $("#sys-uptime").textContent = pl.uptime_s ? span(pl.uptime_s) : "…";
      const mq = s.mqtt || { state: "off" };  // Home Assistant link: state, broker, the last problem
      $("#sys-mqtt").textContent = mq.state + (mq.broker ? " · " + mq.broker : "") + (mq.error && mq.state !== "connected" ? " · " + mq.error : "");
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
    const music = { now: nowMusic, history: historyPlays, settings: settingsMusic }[page];  // what played, and why
    if (music) Promise.resolve(music()).catch((e) => toast(e.message, true));
    if (page === "now" || page === "system") {
      fetch("/api/state", { credentials: "same-origin" }).then((r) => r.json()).then((s) => {
        window.moodbox.lastState = s; renderers.forEach((r) => r(s));
      }).catch(() => setLink("lost")).finally(connect);
    } else connect();  // every page shows whether Moodbox is live
  }
})();
