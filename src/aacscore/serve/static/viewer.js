"use strict";
// The case viewer: the film on a canvas (window/level, zoom, pan), layers drawn from the case
// JSON, corner dragging, grades by click or key, re-score, accept/reject/comment, save.
(function () {
  const root = document.getElementById("viewer");
  const caseId = root.dataset.caseId;
  const SEGMENTS = root.dataset.segments.split(",");
  const CORNERS = ["anterior_superior", "posterior_superior", "posterior_inferior", "anterior_inferior"];
  const api = `/api/cases/${encodeURIComponent(caseId)}`;
  const canvas = document.getElementById("film");
  const ctx = canvas.getContext("2d");
  const layers = { vertebrae: true, bounds: true, band: true, grades: true };
  const state = {
    doc: null, version: 0, img: null, scale: 1, shown: null,
    zoom: 1, panX: 0, panY: 0, window: 255, level: 128,
    corners: {}, moved: new Set(), grades: {}, modelGrades: {}, current: 0,
    bounds: null, band: null, rescored: null,
  };
  const $ = (id) => document.getElementById(id);

  function message(text, kind) {
    const m = $("message");
    m.textContent = text; m.className = `message ${kind || ""}`;
  }

  // --- the film and window/level ------------------------------------------------------
  function applyWindow() {
    if (!state.img) return;
    const w = state.img.naturalWidth, h = state.img.naturalHeight;
    const src = document.createElement("canvas");
    src.width = w; src.height = h;
    const sctx = src.getContext("2d");
    sctx.drawImage(state.img, 0, 0);
    const data = sctx.getImageData(0, 0, w, h);
    const lut = new Uint8ClampedArray(256);
    const lo = state.level - state.window / 2;
    for (let i = 0; i < 256; i++) lut[i] = ((i - lo) / state.window) * 255;
    const px = data.data;
    for (let i = 0; i < px.length; i += 4) {
      const v = lut[px[i]]; px[i] = v; px[i + 1] = v; px[i + 2] = v;
    }
    sctx.putImageData(data, 0, 0);
    state.shown = src;
    draw();
  }

  function fit() {
    const r = canvas.getBoundingClientRect();
    canvas.width = r.width; canvas.height = r.height;
    if (!state.img) return;
    const w = state.img.naturalWidth, h = state.img.naturalHeight;
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
      ctx.strokeStyle = "#f778ba";
      Object.values(state.bounds).forEach((b) => {
        ctx.setLineDash(b.extrapolated ? [6, 4] : []);
        polyline([b.anterior, b.posterior], false);
      });
      ctx.setLineDash([]);
    }
    if (layers.vertebrae) {
      Object.entries(state.corners).forEach(([name, pts]) => {
        ctx.strokeStyle = state.moved.has(name) ? "#ffd33d" : "#7ee787";
        polyline(pts, true);
        pts.forEach((p) => {
          const [x, y] = toScreen(p);
          ctx.fillStyle = "#ffd33d"; ctx.fillRect(x - 3, y - 3, 6, 6);
        });
        const c = pts.reduce((a, p) => [a[0] + p[0] / 4, a[1] + p[1] / 4], [0, 0]);
        const [x, y] = toScreen(c);
        ctx.fillStyle = "#fff"; ctx.font = "12px sans-serif"; ctx.fillText(name, x - 8, y + 4);
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
  function hitCorner(x, y) {
    if (!layers.vertebrae) return null;
    let best = null, bestD = 9;
    Object.entries(state.corners).forEach(([name, pts]) => pts.forEach((p, i) => {
      const [sx, sy] = toScreen(p);
      const d = Math.hypot(sx - x, sy - y);
      if (d < bestD) { bestD = d; best = { name, i }; }
    }));
    return best;
  }
  function pos(e) { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }

  canvas.addEventListener("mousedown", (e) => {
    const [x, y] = pos(e);
    const hit = e.shiftKey ? null : hitCorner(x, y);
    if (hit) drag = { kind: "corner", ...hit };
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
      $("rescore").disabled = false;
    } else if (drag.kind === "pan") {
      state.panX = drag.px + x - drag.x; state.panY = drag.py + y - drag.y;
    } else {
      state.window = Math.max(1, Math.min(255, drag.w + (x - drag.x)));
      state.level = Math.max(0, Math.min(255, drag.l + (y - drag.y)));
      $("window").value = state.window; $("level").value = state.level;
      applyWindow(); return;
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
    if (e.target.tagName === "INPUT" || e.target.tagName === "TEXTAREA") return;
    if (e.key >= "0" && e.key <= "3") setGrade(Number(e.key));
    else if (e.key === "ArrowDown") { state.current = (state.current + 1) % SEGMENTS.length; refreshGrades(); }
    else if (e.key === "ArrowUp") { state.current = (state.current + SEGMENTS.length - 1) % SEGMENTS.length; refreshGrades(); }
    else if (e.key === "a") save("accept");
    else if (e.key === "x") save("reject");
    else if (e.key === "s") save("pending");
    else return;
    e.preventDefault();
  });

  // --- re-score and save -------------------------------------------------------------------
  function movedCorners() {
    const out = {};
    state.moved.forEach((n) => { out[n] = state.corners[n].map((p) => [p[0], p[1]]); });
    return out;
  }

  async function rescore() {
    message("re-scoring…");
    const r = await fetch(`${api}/rescore`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ vertebrae: movedCorners() }),
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
      rescored: state.moved.size ? state.rescored : null,
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
      if (review.rescored) {
        state.rescored = review.rescored;
        state.bounds = review.rescored.bounds; state.band = review.rescored.band_outline_film_xy;
      }
      $("comment").value = review.comment || "";
    }
    showReview(review);
    warnings(doc);
    buildGrades();
    $("rescore").disabled = !state.moved.size;
    if (doc.reader) {
      const img = new Image();
      img.onload = () => {
        state.img = img;
        state.scale = img.naturalWidth / doc.reader.shape[1];
        fit(); applyWindow();
        root.dataset.ready = "1";
      };
      img.onerror = () => { message("the film cannot be shown (read again from its path)", "error"); root.dataset.ready = "1"; };
      img.src = `${api}/film.png`;
    } else {
      fit(); root.dataset.ready = "1";
    }
  }

  document.querySelectorAll("input[data-layer]").forEach((cb) => cb.addEventListener("change", () => {
    layers[cb.dataset.layer] = cb.checked; draw();
  }));
  $("window").addEventListener("input", (e) => { state.window = Number(e.target.value); applyWindow(); });
  $("level").addEventListener("input", (e) => { state.level = Number(e.target.value); applyWindow(); });
  $("fit").addEventListener("click", fit);
  $("rescore").addEventListener("click", rescore);
  $("accept").addEventListener("click", () => save("accept"));
  $("reject").addEventListener("click", () => save("reject"));
  $("save").addEventListener("click", () => save("pending"));
  window.addEventListener("resize", fit);
  window.aacscoreViewer = { state, toScreen };  // for scripted use (tests, screenshots)
  load();
})();
