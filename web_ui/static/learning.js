"use strict";
// The household learner on the page (web_ui/learning.py): "Read wrong?" on Now, a correction in two taps that says
// what became of it and can be undone; Settings → What Moodbox has learned (in words, the newest corrections, undo
// the last, forget everything); the learner's size on System; and, on History, what "also forget" would forget.
// Runs after static/app.js and uses what it shares on window.moodbox (api, sheet, listen, the mood words).
(function () {
  const mb = window.moodbox;
  if (!mb || !mb.api) return;
  const byId = (id) => document.getElementById(id);
  const feels = mb.feels, sentence = mb.sentence;
  const Feels = (m) => { const w = feels(m); return w.charAt(0).toUpperCase() + w.slice(1); };
  const pct = (x) => Math.round((x || 0) * 100) + "%";
  const count = (n, one, many) => n + " " + (n === 1 ? one : many || one + "s");
  const MOODS = Object.keys(JSON.parse(document.body.dataset.moodWords || "{}"));
  const when = (t) => {
    const day = new Date(t * 1000);
    return (day.toDateString() === new Date().toDateString() ? "" : day.toLocaleDateString([], { weekday: "short" }) + " ") + mb.clock(t);
  };

  // ---- Now: "Read wrong?" --------------------------------------------------------------------------------
  // Why the button cannot be used now, by the room's state (static/app.js roomState); "lost" has the controls' line.
  const CANNOT = {
    nobody: "Read wrong? needs someone in view: nobody is, so there is no mood to correct.",
    settling: "Moodbox is still reading the faces: correct it once it shows a mood.",
    dark: "Too dark to read a face: there is no reading to correct.",
    starting: "Read wrong? works once the camera has read the room.",
    privacy: "The camera is off (privacy mode): there is no reading to correct.",
    failing: "The camera is not working: there is no reading to correct.",
  };
  function nowPage() {
    const opener = byId("read-wrong"), dialog = byId("correct-sheet");
    const sheet = mb.sheet(dialog, opener);
    const chips = Array.from(dialog.querySelectorAll(".chip")), title = byId("correct-title");
    const askBox = byId("correct-ask"), doneBox = byId("correct-done"), error = byId("correct-error");
    let shown = null, made = null, busy = false, roomProblem = false;

    const setTitle = (mood) => {
      const b = document.createElement("b");
      b.id = "correct-shown"; b.textContent = mood ? feels(mood) : "…";
      title.replaceChildren("Moodbox read the room as ", b, ". What is it really?");
    };
    const say = (el, text) => {
      const fresh = sentence(text || "");
      if (fresh === el.textContent && el.hidden === !text) return;
      el.hidden = !text; el.textContent = fresh;
      if (text) el.scrollIntoView({ block: "nearest" });  // the sheet scrolls on a small screen: the reason shows
    };
    // The question follows the room while it is asked: the mood it names is the one the page shows.
    const ask = (mood, problem) => {
      if (mood !== shown || !byId("correct-shown")) setTitle(mood);
      shown = mood;
      chips.forEach((c) => { c.hidden = c.dataset.mood === mood; c.disabled = !mood || busy; });
      if (problem) { say(error, problem); roomProblem = true; }
      else if (roomProblem) { say(error, ""); roomProblem = false; }
    };
    const render = (s) => {
      const room = mb.roomState(s), mood = (s.mood || {}).name;
      const can = room.state === "live" && MOODS.includes(mood);
      opener.disabled = !can;
      const why = byId("read-wrong-why"), text = can ? "" : CANNOT[room.state] || "";
      why.hidden = !text; why.textContent = text;
      if (!doneBox.hidden) return;  // what became of a correction stays until the sheet is closed
      ask(can ? mood : null, can ? "" : CANNOT[room.state] || "Moodbox is not reachable just now.");
      if (!can && room.state === "lost") sheet.close();
    };
    mb.listen(render);

    opener.addEventListener("click", () => {
      doneBox.hidden = true; askBox.hidden = false; say(error, ""); roomProblem = false;
      if (mb.lastState) render(mb.lastState);
      sheet.open();
    });
    chips.forEach((chip) => chip.addEventListener("click", async () => {
      const mood = chip.dataset.mood, was = shown;
      busy = true; chips.forEach((c) => { c.disabled = true; });
      say(error, "");
      try {
        const r = await mb.api("POST", "/api/corrections", { mood });
        made = { id: r.id, shown: was, mood };
        title.textContent = "Thanks: it is " + feels(mood) + ", not " + feels(was);
        byId("correct-result").textContent = r.used ? "Saved and used now. " + sentence(r.learning.summary)
          : "Saved, not used yet: " + r.reason + ".";
        byId("correct-detail").textContent = "Moodbox kept " + count(r.faces, "reading") +
          " of the faces from the last few seconds: numbers only, never a picture.";
        byId("correct-undo").hidden = false;
        say(byId("correct-undo-error"), "");
        askBox.hidden = true; doneBox.hidden = false;
        byId("correct-result").focus();
      } catch (e) {
        say(error, e.message);  // 409: nobody in view, no face in the last minute, or the mood it reads already
      } finally {
        busy = false;
        if (doneBox.hidden && mb.lastState) render(mb.lastState);
      }
    }));
    byId("correct-undo").addEventListener("click", async () => {
      if (!made) return;
      try {
        const r = await mb.api("DELETE", "/api/corrections/last?id=" + made.id);
        title.textContent = "Correction undone";
        byId("correct-result").textContent = "Undone: Moodbox forgot that the room was " + feels(made.mood) + ", not " + feels(made.shown) + ".";
        byId("correct-detail").textContent = sentence(r.learning.summary);
        byId("correct-undo").hidden = true;
        say(byId("correct-undo-error"), "");
        made = null;
        byId("correct-result").focus();
      } catch (e) { say(byId("correct-undo-error"), e.message); }
    });
  }

  // ---- Settings: What Moodbox has learned ----------------------------------------------------------------
  function sizeWords(l) {
    const size = l.size || {};
    if (!l.used) return "No change: Moodbox reads faces as its model does.";
    const moods = Object.entries(l.changes || {}).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
      .map(([m, d]) => (d > 0 ? pct(d) + " more read " : pct(-d) + " fewer read ") + feels(m));
    const share = size.everyday_readings
      ? "Changes " + pct(size.changed_share) + " of the room's everyday readings (of " + size.everyday_readings + ")" +
        (moods.length ? ": " + moods.join(", ") : "") + "."
      : "No everyday readings yet to measure how many readings it changes.";
    return share + " The largest shift of one mood is " + (size.largest_bias || 0).toFixed(2) + " of the " +
      size.bias_limit + " allowed.";
  }
  function forgetWords(l) {
    const older = (l.older_model || {}).corrections || 0, everyday = (l.size || {}).everyday_readings || 0;
    const parts = [count(l.corrections, "correction")].concat(
      older ? [count(older, "correction") + " made for an older model"] : [],
      everyday ? ["the room's " + count(everyday, "everyday reading")] : []);
    const list = parts.length > 1 ? parts.slice(0, -1).join(", ") + " and " + parts[parts.length - 1] : parts[0];
    return "Moodbox forgets " + list + ". It then reads faces as its model does, and learns afresh from the next " +
      "correction. This cannot be undone.";
  }
  function settingsPage() {
    const forget = mb.sheet(byId("forget-sheet"), byId("forget-learned"));
    const problem = byId("learned-error");
    let learned = null;
    const show = (l) => {
      learned = l;
      // "Not using 3 corrections yet: <why>." says why once: in the Applied line below.
      const summary = !l.used && l.reason && l.summary.includes(": " + l.reason) ? l.summary.replace(": " + l.reason, "") : l.summary;
      byId("learned-summary").textContent = sentence(summary);
      const older = l.older_model;
      byId("learned-model").hidden = !older;
      if (older) {
        byId("learned-model").textContent = "Moodbox's model changed: it starts learning afresh; " +
          count(older.corrections, "correction") + " made for the old model " + (older.corrections === 1 ? "is" : "are") +
          " not used. Forget everything learned deletes " + (older.corrections === 1 ? "it" : "them") + ".";
      }
      byId("learned-count").textContent = (l.corrections ? String(l.corrections) : "None yet") +
        (older ? " (and " + older.corrections + " for an older model, not used)" : "");
      byId("learned-used").textContent = !l.corrections ? "Nothing to apply yet." :
        (l.used ? "Yes: " : "Not yet: ") + l.reason + ".";
      byId("learned-size").textContent = sizeWords(l);
      const list = byId("learned-recent");
      list.replaceChildren(...(l.recent || []).slice(0, 10).map((c) => {
        const li = document.createElement("li"), what = document.createElement("span"), at = document.createElement("span");
        what.className = "what"; at.className = "when muted";
        what.textContent = Feels(c.shown) + " → " + Feels(c.mood);
        at.textContent = when(c.at);
        li.append(what, " · ", at);
        return li;
      }));
      byId("learned-none").hidden = list.children.length > 0;
      list.hidden = !list.children.length;
      byId("undo-correction").hidden = !l.corrections;
      byId("forget-learned").hidden = !l.corrections && !older;
      byId("forget-what").textContent = forgetWords(l);
    };
    const fail = (e) => { problem.hidden = false; problem.textContent = sentence(e.message); };
    const load = async () => {
      try { show(await mb.api("GET", "/api/learning")); problem.hidden = true; } catch (e) { fail(e); }
    };
    // A correction made on another phone or from Home Assistant changes the live state: the section follows, once
    // for each new live state of the learner that differs from what the section shows.
    const key = (l) => [l.corrections, l.used, l.summary].join("|");
    let heard = null;
    mb.listen((s) => {
      if (!s.learning || !learned || key(s.learning) === heard) return;
      heard = key(s.learning);
      if (heard !== key(learned)) load();
    });
    byId("undo-correction").addEventListener("click", async () => {
      try {
        const r = await mb.api("DELETE", "/api/corrections/last");
        show(r.learning); problem.hidden = true;
        mb.toast("Undone: " + Feels(r.undone.shown) + " → " + Feels(r.undone.mood));
      } catch (e) { fail(e); }
    });
    byId("forget-learned").addEventListener("click", () => {
      if (learned) byId("forget-what").textContent = forgetWords(learned);
      byId("forget-error").hidden = true;
      forget.open();
    });
    byId("forget-confirm").addEventListener("click", async () => {
      try {
        const r = await mb.api("DELETE", "/api/corrections");
        forget.close();
        show(r.learning); problem.hidden = true;
        mb.toast("Forgot " + count(r.forgotten, "correction") + ": Moodbox reads faces as its model does");
      } catch (e) { byId("forget-error").hidden = false; byId("forget-error").textContent = sentence(e.message); }
    });
    load();
  }

  // ---- System: the learner's state and size --------------------------------------------------------------
  function systemPage() {
    mb.listen((s) => {
      const l = s.learning;
      if (!l) return;
      const size = l.size || {};
      byId("sys-learner").textContent = (l.corrections ? count(l.corrections, "correction") + " · " +
        (l.used ? "applied" : "not applied yet") : "no corrections") + (l.new_model ? " · new model: learning afresh" : "");
      byId("sys-learner-size").textContent = [
        l.used ? "largest shift " + (size.largest_bias || 0).toFixed(2) + " of " + size.bias_limit : "no adjustment",
        l.used && size.everyday_readings ? pct(size.changed_share) + " of the everyday readings changed" : "",
        // the numbers of the last fit (after each correction, and every 10 everyday readings)
        "fitted in " + (l.fit_ms || 0).toFixed(1) + " ms on " + count(l.corrections, "correction") + " and " +
          count(size.everyday_readings || 0, "everyday reading"),
      ].filter(Boolean).join(" · ");
    });
  }

  // ---- History: what "Also forget what Moodbox learned" would forget -------------------------------------
  function historyPage() {
    const opener = byId("delete-history");
    if (!opener) return;
    opener.addEventListener("click", async () => {
      try {
        const l = await mb.api("GET", "/api/learning");
        const n = l.corrections + ((l.older_model || {}).corrections || 0);
        byId("delete-corrections-note").textContent = !n ? "Moodbox has learned from no corrections yet." :
          "Moodbox keeps " + count(n, "correction") + ". Without this, they stay and Moodbox goes on learning from them.";
      } catch (e) { /* the note keeps its general words */ }
    });
  }

  const pages = { now: nowPage, settings: settingsPage, system: systemPage, history: historyPage };
  const page = pages[document.body.dataset.page];
  if (page && (document.body.dataset.page !== "settings" || byId("learned"))) page();
})();
