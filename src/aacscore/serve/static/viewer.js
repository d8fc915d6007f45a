"use strict";
// The case viewer: the film on a canvas (window/level on its full-bit-depth values, zoom, pan),
// layers drawn from the case JSON, corner and bound dragging, level relabelling, grades by click
// or key, re-score, accept/reject/comment, save.
(function () {
  const root = document.getElementById("viewer");
  const caseId = root.dataset.caseId;
  const SEGMENTS = root.dataset.segments.split(",");
  const CORNERS = ["anterior_superior", "posterior_superior", "posterior_inferior", "anterior_inferior"];
  const LEVELS = root.dataset.levels.split(",");
  const api = `/api/cases/${encodeURIComponent(caseId)}`;
  const canvas = document.getElementById("film");
  const ctx = canvas.getContext("2d");
  const layers = { vertebrae: true, bounds: true, band: true, grades: true };
  const state = {
    doc: null, version: 0, film: null, scale: 1, shown: null,
    zoom: 1, panX: 0, panY: 0, window: 1, level: 0,
    corners: {}, moved: new Set(), grades: {}, modelGrades: {}, current: 0,
    bounds: null, movedBounds: new Set(), labels: {}, band: null, rescored: null,
  };
  const $ = (id) => document.getElementById(id);

  function message(text, kind) {
    const m = $("message");
    m.textContent = text; m.className = `message ${kind || ""}`;
  }

  // --- the film and window/level ------------------------------------------------------
  // The server sends the film's full-bit-depth values (film.u16: uint16 codes, value =
  // offset + code * step); the window (centre = level, width, in those values) is applied here
  // through a 65536-entry table, so dragging it needs no round trip.
  async function loadFilm() {
    const r = await fetch(`${api}/film.u16`, { credentials: "same-origin" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const h = (k) => Number(r.headers.get(k));
    const buf = await r.arrayBuffer();
    const w = h("X-Film-Width"), ht = h("X-Film-Height");
    const view = new DataView(buf), codes = new Uint16Array(w * ht);
    for (let i = 0; i < codes.length; i++) codes[i] = view.getUint16(2 * i, true);
    let max = 0;
    for (let i = 0; i < codes.length; i++) if (codes[i] > max) max = codes[i];
    const offset = h("X-Film-Offset"), step = h("X-Film-Step");
    state.film = {
      w, h: ht, codes, offset, step, lo: offset, hi: offset + max * step,
      invert: r.headers.get("X-Film-Invert") === "1",
      source: r.headers.get("X-Window-Source"),
      canvas: document.createElement("canvas"),
    };
    state.film.canvas.width = w; state.film.canvas.height = ht;
    state.scale = h("X-Film-Scale");
    state.defaultWindow = [h("X-Window-Center"), h("X-Window-Width")];
    const span = Math.max(state.film.hi - state.film.lo, step);
    const range = (id, min, max) => {
      const el = $(id); el.min = String(min); el.max = String(max); el.step = String(span / 1000);
    };
    range("window", step, 2 * span);
    range("level", state.film.lo - span / 2, state.film.hi + span / 2);
    setWindow(...state.defaultWindow);
  }

  function setWindow(level, width) {
    state.level = level; state.window = Math.max(width, state.film ? state.film.step : 1e-9);
    $("window").value = String(state.window); $("level").value = String(state.level);
    $("wl-value").textContent = `${fmt(state.level)} / ${fmt(state.window)}`;
    applyWindow();
  }

  function fmt(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3); }

  function applyWindow() {
    const f = state.film;
    if (!f) return;
    const lut = new Uint8ClampedArray(65536);
    const lo = state.level - state.window / 2;
    for (let c = 0; c < 65536; c++) {
      const v = ((f.offset + c * f.step - lo) / state.window) * 255;
      lut[c] = f.invert ? 255 - Math.min(255, Math.max(0, v)) : v;
    }
    const fctx = f.canvas.getContext("2d");
    const data = fctx.createImageData(f.w, f.h);
    const px = data.data, codes = f.codes;
    for (let i = 0, j = 0; i < codes.length; i++, j += 4) {
      const v = lut[codes[i]]; px[j] = v; px[j + 1] = v; px[j + 2] = v; px[j + 3] = 255;
    }
    fctx.putImageData(data, 0, 0);
    state.shown = f.canvas;
    draw();
  }

  function fit() {
    const r = canvas.getBoundingClientRect();
    canvas.width = r.width; canvas.height = r.height;
    if (!state.film) return;
    const w = state.film.w, h = state.film.h;
    state.zoom = Math.min(canvas.width / w, canvas.height / h);
    state.panX = (canvas.width - w * state.zoom) / 2;
    state.panY = (canvas.height - h * state.zoom) / 2;
    draw();
  }

  // film pixel -> canvas pixel, and back
  function toScreen(p) {
    return [p[0] * state.scale * state.zoom + state.panX, p[1] * state.scale * state.zoom + state.panY];
  }
  function toFilm(x, y) {
    return [(x - state.panX) / (state.scale * state.zoom), (y - state.panY) / (state.scale * state.zoom)];
  }

  // --- drawing --------------------------------------------------------------------------
  function polyline(points, close) {
    ctx.beginPath();
    points.forEach((p, i) => { const [x, y] = toScreen(p); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
    if (close) ctx.closePath();
    ctx.stroke();
  }

  function gradeColour(g) { return ["#3fb950", "#d4a72c", "#f0883e", "#f85149"][Math.max(0, Math.min(3, Math.round(g)))]; }

  function draw() {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!state.shown) return;
    ctx.imageSmoothingEnabled = state.zoom < 2;
    ctx.drawImage(state.shown, state.panX, state.panY,
      state.shown.width * state.zoom, state.shown.height * state.zoom);
    ctx.lineWidth = 1.5;
    if (layers.band && state.band) { ctx.strokeStyle = "#58a6ff"; polyline(state.band, true); }
    if (layers.bounds && state.bounds) {
      Object.entries(state.bounds).forEach(([name, b]) => {
        const moved = state.movedBounds.has(name);
        ctx.strokeStyle = moved ? "#ffa657" : "#f778ba";
        ctx.setLineDash(b.extrapolated && !moved ? [6, 4] : []);
        polyline([b.anterior, b.posterior], false);
        ctx.fillStyle = ctx.strokeStyle;
        [b.anterior, b.posterior].forEach((p) => {
          const [x, y] = toScreen(p);
          ctx.beginPath(); ctx.arc(x, y, 4, 0, 2 * Math.PI); ctx.fill();
        });
      });
      ctx.setLineDash([]);
    }
    if (layers.vertebrae) {
      Object.entries(state.corners).forEach(([name, pts]) => {
        const label = labelOf(name);
        ctx.strokeStyle = state.moved.has(name) ? "#ffd33d" : label === name ? "#7ee787" : "#79c0ff";
        polyline(pts, true);
        pts.forEach((p) => {
          const [x, y] = toScreen(p);
          ctx.fillStyle = "#ffd33d"; ctx.fillRect(x - 3, y - 3, 6, 6);
        });
        const c = pts.reduce((a, p) => [a[0] + p[0] / 4, a[1] + p[1] / 4], [0, 0]);
        const [x, y] = toScreen(c);
        ctx.fillStyle = "#fff"; ctx.font = "12px sans-serif";
        ctx.fillText(label === null ? "–" : label, x - 8, y + 4);
      });
    }
    if (layers.grades && state.bounds) drawGrades();
  }

  function drawGrades() {
    const side = state.doc.spine ? state.doc.spine.anterior_side : "left";
    const dir = side === "right" ? 1 : -1;
    const names = ["T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5"];
    ctx.font = "bold 13px sans-serif";
    ["L1", "L2", "L3", "L4"].forEach((level, i) => {
      const a = state.bounds[names[i]], b = state.bounds[names[i + 1]];
      if (!a || !b) return;
      const mid = [(a.anterior[0] + b.anterior[0]) / 2, (a.anterior[1] + b.anterior[1]) / 2];
      const [x, y] = toScreen(mid);
      const ga = state.grades[`${level}_anterior`], gp = state.grades[`${level}_posterior`];
      const label = `${level} A${ga === undefined ? "?" : ga} P${gp === undefined ? "?" : gp}`;
      const w = ctx.measureText(label).width;
      const x0 = dir < 0 ? x - w - 60 * Math.min(1, state.zoom * 2) : x + 20;
      ctx.fillStyle = "rgba(0,0,0,.6)"; ctx.fillRect(x0 - 3, y - 12, w + 6, 17);
      ctx.fillStyle = gradeColour(Math.max(ga || 0, gp || 0)); ctx.fillText(label, x0, y);
    });
  }

  // --- interaction on the canvas -------------------------------------------------------
  let drag = null;
  // The nearest corner or bound anchor within 9 px; else a bound line within 5 px (moved whole).
  function hit(x, y) {
    let best = null, bestD = 9;
    const near = (p, what) => {
      const [sx, sy] = toScreen(p);
      const d = Math.hypot(sx - x, sy - y);
      if (d < bestD) { bestD = d; best = what; }
    };
    if (layers.vertebrae) Object.entries(state.corners).forEach(([name, pts]) =>
      pts.forEach((p, i) => near(p, { kind: "corner", name, i })));
    if (layers.bounds && state.bounds) Object.entries(state.bounds).forEach(([name, b]) => {
      near(b.anterior, { kind: "anchor", name, end: "anterior" });
      near(b.posterior, { kind: "anchor", name, end: "posterior" });
    });
    if (best || !layers.bounds || !state.bounds) return best;
    bestD = 5;
    Object.entries(state.bounds).forEach(([name, b]) => {
      const [ax, ay] = toScreen(b.anterior), [px, py] = toScreen(b.posterior);
      const dx = ax - px, dy = ay - py, len2 = dx * dx + dy * dy;
      const t = Math.max(0, Math.min(1, ((x - px) * dx + (y - py) * dy) / len2));
      const d = Math.hypot(px + t * dx - x, py + t * dy - y);
      if (d < bestD) {
        bestD = d;
        best = { kind: "line", name, start: toFilm(x, y), a: b.anterior.slice(), p: b.posterior.slice() };
      }
    });
    return best;
  }

  function moveBound(name) {
    state.movedBounds.add(name);
    const b = state.bounds[name];
    state.bounds[name] = { ...b, extrapolated: false };
    geometryChanged();
  }

  function geometryChanged() { $("rescore").disabled = false; $("reset-bounds").disabled = !state.movedBounds.size; }
  function pos(e) { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }

  canvas.addEventListener("mousedown", (e) => {
    const [x, y] = pos(e);
    const found = e.shiftKey ? null : hit(x, y);
    if (found) drag = found;
    else if (e.shiftKey) drag = { kind: "wl", x, y, w: state.window, l: state.level };
    else drag = { kind: "pan", x, y, px: state.panX, py: state.panY };
    canvas.focus();
    e.preventDefault();
  });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const [x, y] = pos(e);
    if (drag.kind === "corner") {
      state.corners[drag.name][drag.i] = toFilm(x, y);
      state.moved.add(drag.name);
      geometryChanged();
    } else if (drag.kind === "anchor") {
      moveBound(drag.name);
      state.bounds[drag.name][drag.end] = toFilm(x, y);
    } else if (drag.kind === "line") {
      moveBound(drag.name);
      const [fx, fy] = toFilm(x, y), dx = fx - drag.start[0], dy = fy - drag.start[1];
      state.bounds[drag.name].anterior = [drag.a[0] + dx, drag.a[1] + dy];
      state.bounds[drag.name].posterior = [drag.p[0] + dx, drag.p[1] + dy];
    } else if (drag.kind === "pan") {
      state.panX = drag.px + x - drag.x; state.panY = drag.py + y - drag.y;
    } else if (state.film) {
      const unit = (state.film.hi - state.film.lo) / 512;
      setWindow(drag.l + (y - drag.y) * unit, drag.w + (x - drag.x) * unit);
      return;
    }
    draw();
  });
  window.addEventListener("mouseup", () => { drag = null; });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [x, y] = pos(e);
    const f = Math.exp(-e.deltaY * 0.0015);
    state.panX = x - (x - state.panX) * f; state.panY = y - (y - state.panY) * f;
    state.zoom *= f;
    draw();
  }, { passive: false });

  // --- grades panel --------------------------------------------------------------------
  function buildGrades() {
    const tbody = $("grades").querySelector("tbody");
    tbody.textContent = "";
    SEGMENTS.forEach((s, i) => {
      const tr = document.createElement("tr");
      tr.dataset.segment = s;
      const name = document.createElement("td"); name.textContent = s.replace("_", " ");
      const model = document.createElement("td");
      const m = state.modelGrades[s];
      model.textContent = m === undefined || m === null ? "–" : Number(m).toFixed(2);
      const cell = document.createElement("td");
      [0, 1, 2, 3].forEach((g) => {
        const b = document.createElement("button");
        b.type = "button"; b.textContent = String(g); b.dataset.grade = String(g);
        b.addEventListener("click", () => { state.current = i; setGrade(g); });
        cell.appendChild(b);
      });
      tr.append(name, model, cell);
      tr.addEventListener("click", () => { state.current = i; refreshGrades(); });
      tbody.appendChild(tr);
    });
    refreshGrades();
  }

  function refreshGrades() {
    const rows = $("grades").querySelectorAll("tbody tr");
    let total = 0, complete = true;
    rows.forEach((tr, i) => {
      const s = tr.dataset.segment, g = state.grades[s];
      tr.classList.toggle("current", i === state.current);
      const model = state.modelInt ? state.modelInt[s] : undefined;
      tr.classList.toggle("changed", g !== undefined && model !== undefined && g !== model);
      tr.querySelectorAll("button").forEach((b) => b.classList.toggle("on", Number(b.dataset.grade) === g));
      if (g === undefined) complete = false; else total += g;
    });
    $("review-total").textContent = complete ? String(total) : "–";
    draw();
  }

  function setGrade(g) { state.grades[SEGMENTS[state.current]] = g; refreshGrades(); }

  document.addEventListener("keydown", (e) => {
    if (["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName)) return;
    if (e.key >= "0" && e.key <= "3") setGrade(Number(e.key));
    else if (e.key === "ArrowDown") { state.current = (state.current + 1) % SEGMENTS.length; refreshGrades(); }
    else if (e.key === "ArrowUp") { state.current = (state.current + SEGMENTS.length - 1) % SEGMENTS.length; refreshGrades(); }
    else if (e.key === "a") save("accept");
    else if (e.key === "x") save("reject");
    else if (e.key === "s") save("pending");
    else return;
    e.preventDefault();
  });

  // --- levels ------------------------------------------------------------------------------
  function labelOf(name) { return name in state.labels ? state.labels[name] : name; }

  function changedLabels() {
    const out = {};
    Object.keys(state.corners).forEach((n) => { if (labelOf(n) !== n) out[n] = labelOf(n); });
    return out;
  }

  // Relabelling renames the bodies, so the bounds move to other discs: moved bounds are dropped.
  function relabel(fn) {
    Object.keys(state.corners).forEach((n) => { state.labels[n] = fn(n, labelOf(n)); });
    if (state.movedBounds.size) {
      state.movedBounds.clear();
      message("levels relabelled: moved bounds dropped (re-score, then move them again)");
    } else message("levels relabelled: re-score to grade the new levels");
    geometryChanged();
    buildLevels();
    draw();
  }

  function shift(by) {
    relabel((_n, current) => {
      if (current === null) return null;
      const i = LEVELS.indexOf(current) + by;
      return i >= 0 && i < LEVELS.length ? LEVELS[i] : null;
    });
  }

  function buildLevels() {
    const tbody = $("levels").querySelector("tbody");
    tbody.textContent = "";
    const given = Object.keys(state.corners).map(labelOf).filter((l) => l !== null);
    Object.keys(state.corners).sort((a, b) => LEVELS.indexOf(a) - LEVELS.indexOf(b)).forEach((n) => {
      const tr = document.createElement("tr");
      tr.dataset.level = n;
      const model = document.createElement("td"); model.textContent = n;
      const cell = document.createElement("td");
      const sel = document.createElement("select");
      ["", ...LEVELS].forEach((l) => {
        const o = document.createElement("option"); o.value = l; o.textContent = l || "–"; sel.appendChild(o);
      });
      sel.value = labelOf(n) === null ? "" : labelOf(n);
      sel.addEventListener("change", () => relabel((m, current) => (m === n ? sel.value || null : current)));
      const label = labelOf(n);
      if (label !== null && given.filter((g) => g === label).length > 1) tr.classList.add("duplicate");
      if (label !== n) tr.classList.add("changed");
      cell.appendChild(sel);
      tr.append(model, cell);
      tbody.appendChild(tr);
    });
  }

  // --- re-score and save -------------------------------------------------------------------
  function movedCorners() {
    const out = {};
    state.moved.forEach((n) => { out[n] = state.corners[n].map((p) => [p[0], p[1]]); });
    return out;
  }

  function movedBounds() {
    const out = {};
    state.movedBounds.forEach((n) => {
      const b = state.bounds[n];
      out[n] = { anterior: b.anterior.slice(), posterior: b.posterior.slice() };
    });
    return out;
  }

  function geometryEdited() {
    return state.moved.size > 0 || state.movedBounds.size > 0 || Object.keys(changedLabels()).length > 0;
  }

  async function rescore() {
    message("re-scoring…");
    const r = await fetch(`${api}/rescore`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ vertebrae: movedCorners(), labels: changedLabels(), bounds: movedBounds() }),
    });
    const data = await r.json();
    if (!r.ok) { message(data.detail || `HTTP ${r.status}`, "error"); return; }
    state.rescored = data;
    state.bounds = data.bounds; state.band = data.band_outline_film_xy;
    if (data.grades_int) SEGMENTS.forEach((s) => { state.grades[s] = data.grades_int[s]; });
    $("rescore-result").textContent =
      `re-scored: AAC-24 ${data.aac24.toFixed(1)} (integer ${data.aac24_int}), ${data.group}`;
    message("re-scored from the corrected geometry", "ok");
    refreshGrades();
  }

  async function save(decision) {
    const complete = SEGMENTS.every((s) => state.grades[s] !== undefined);
    const body = {
      version: state.version,
      reviewer: $("reviewer").value.trim() || null,
      decision,
      comment: $("comment").value,
      grades: complete ? Object.fromEntries(SEGMENTS.map((s) => [s, state.grades[s]])) : null,
      vertebrae: state.moved.size ? movedCorners() : null,
      bounds: state.movedBounds.size ? movedBounds() : null,
      labels: Object.keys(changedLabels()).length ? changedLabels() : null,
      rescored: geometryEdited() ? state.rescored : null,
    };
    const r = await fetch(`${api}/review`, {
      method: "PUT", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const data = await r.json();
    if (r.status === 409) {
      message(`${data.detail.message}`, "error"); return;
    }
    if (!r.ok) { message(typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail), "error"); return; }
    state.version = data.version;
    showReview(data);
    message(`saved (${decision}, version ${data.version})`, "ok");
  }

  function showReview(review) {
    $("review-state").textContent = review
      ? `version ${review.version}: ${review.decision} by ${review.reviewer}, ${review.created}`
      : "not reviewed yet";
  }

  // --- loading -------------------------------------------------------------------------
  function warnings(doc) {
    const list = $("warnings");
    const items = [];
    if (doc.error) items.push(`${doc.error_code}: ${doc.error}`);
    (doc.flags || []).forEach((f) => items.push(`${f.flag}: ${f.meaning}`));
    if (doc.spine) (doc.spine.warnings || []).forEach((w) => items.push(w));
    if (doc.reader) (doc.reader.warnings || []).forEach((w) => items.push(w));
    list.textContent = "";
    if (!items.length) items.push("none");
    items.forEach((t) => { const li = document.createElement("li"); li.textContent = t; list.appendChild(li); });
  }

  async function load() {
    const r = await fetch(api, { credentials: "same-origin" });
    if (!r.ok) { message(`case: HTTP ${r.status}`, "error"); return; }
    const data = await r.json();
    const doc = data.document;
    state.doc = doc; state.version = data.version;
    $("case-name").textContent = data.summary.name;
    $("status-line").textContent = `${doc.status}` + (doc.aac24 === null ? "" :
      ` · AAC-24 ${Number(doc.aac24).toFixed(1)} (integer ${doc.aac24_int}) · ${doc.group}` +
      (doc.low_confidence ? " · low confidence" : ""));
    if (doc.spine) {
      Object.entries(doc.spine.vertebrae).forEach(([n, v]) => {
        state.corners[n] = CORNERS.map((c) => v.corners[c].slice());
      });
      state.bounds = doc.spine.bounds;
    }
    if (doc.band) state.band = doc.band.outline_film_xy;
    state.modelGrades = doc.grades || {};
    state.modelInt = doc.grades_int || null;
    if (doc.grades_int) Object.assign(state.grades, doc.grades_int);
    $("model-total").textContent = doc.aac24 === null ? "–" : Number(doc.aac24).toFixed(1);
    const review = data.review;
    if (review) {
      if (review.grades) Object.assign(state.grades, review.grades);
      if (review.vertebrae) Object.entries(review.vertebrae).forEach(([n, pts]) => {
        state.corners[n] = pts.map((p) => p.slice()); state.moved.add(n);
      });
      if (review.labels) Object.assign(state.labels, review.labels);
      if (review.rescored) {
        state.rescored = review.rescored;
        state.bounds = review.rescored.bounds; state.band = review.rescored.band_outline_film_xy;
      }
      if (review.bounds && state.bounds) Object.entries(review.bounds).forEach(([n, b]) => {
        state.bounds[n] = { ...state.bounds[n], anterior: b.anterior.slice(), posterior: b.posterior.slice(), extrapolated: false };
        state.movedBounds.add(n);
      });
      $("comment").value = review.comment || "";
    }
    showReview(review);
    warnings(doc);
    buildGrades();
    buildLevels();
    $("rescore").disabled = !geometryEdited();
    $("reset-bounds").disabled = !state.movedBounds.size;
    if (doc.reader) {
      try {
        await loadFilm();
        fit();
      } catch (err) {
        message(`the film cannot be shown (read again from its path): ${err.message}`, "error");
      }
    } else fit();
    root.dataset.ready = "1";
  }

  document.querySelectorAll("input[data-layer]").forEach((cb) => cb.addEventListener("change", () => {
    layers[cb.dataset.layer] = cb.checked; draw();
  }));
  $("window").addEventListener("input", (e) => setWindow(state.level, Number(e.target.value)));
  $("level").addEventListener("input", (e) => setWindow(Number(e.target.value), state.window));
  $("wl-reset").addEventListener("click", () => { if (state.film) setWindow(...state.defaultWindow); });
  $("fit").addEventListener("click", fit);
  $("shift-up").addEventListener("click", () => shift(-1));
  $("shift-down").addEventListener("click", () => shift(1));
  $("reset-bounds").addEventListener("click", () => {
    state.movedBounds.clear(); $("reset-bounds").disabled = true;
    message("moved bounds dropped: re-score to recompute them from the corners");
    geometryChanged(); $("reset-bounds").disabled = true; draw();
  });
  $("rescore").addEventListener("click", rescore);
  $("accept").addEventListener("click", () => save("accept"));
  $("reject").addEventListener("click", () => save("reject"));
  $("save").addEventListener("click", () => save("pending"));
  window.addEventListener("resize", fit);
  window.aacscoreViewer = { state, toScreen, setWindow };  // for scripted use (tests, screenshots)
  load();
})();
