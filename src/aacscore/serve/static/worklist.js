"use strict";
// The worklist: cases from /api/cases, filtered and sorted here, keyboard navigation.
(function () {
  const table = document.getElementById("worklist");
  const body = table.querySelector("tbody");
  const form = document.getElementById("filters");
  const countsBox = document.getElementById("counts");
  let cases = [];
  let shown = [];
  let sortKey = null;
  let sortDir = 1;
  let selected = 0;

  function text(v) { return v === null || v === undefined ? "" : String(v); }

  function fillSelect(name, values) {
    const sel = form.elements[name];
    const have = new Set(Array.from(sel.options).map((o) => o.value));
    values.filter((v) => v && !have.has(v)).sort().forEach((v) => {
      const o = document.createElement("option");
      o.value = v; o.textContent = v; sel.appendChild(o);
    });
  }

  function keep(c) {
    const f = form.elements;
    if (f.status.value && c.status !== f.status.value) return false;
    if (f.error_code.value && text(c.error_code) !== f.error_code.value) return false;
    if (f.group.value && text(c.group) !== f.group.value) return false;
    if (f.low_confidence.value && text(c.low_confidence) !== f.low_confidence.value) return false;
    if (f.reviewed.value && c.reviewed !== (f.reviewed.value === "yes")) return false;
    const q = f.q.value.trim().toLowerCase();
    if (q && !c.name.toLowerCase().includes(q)) return false;
    return true;
  }

  function value(c, key, numeric) {
    if (key === "reviewed") return c.reviewed ? (c.decision || "yes") : "";
    const v = c[key];
    if (numeric) { const n = parseFloat(v); return Number.isFinite(n) ? n : -Infinity; }
    return text(v);
  }

  function render() {
    shown = cases.filter(keep);
    if (sortKey) {
      const numeric = !!table.querySelector(`th[data-key="${sortKey}"]`).dataset.num;
      shown.sort((a, b) => {
        const x = value(a, sortKey, numeric), y = value(b, sortKey, numeric);
        return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
      });
    }
    body.textContent = "";
    shown.forEach((c, i) => {
      const tr = document.createElement("tr");
      tr.dataset.id = c.id;
      const cells = [c.name, c.status, c.error_code, c.group, c.aac24, c.aac24_int,
        c.low_confidence, c.quality, c.reviewed ? `${c.decision} (${c.reviewer})` : ""];
      cells.forEach((v, j) => {
        const td = document.createElement("td");
        td.textContent = text(v);
        if (j === 1) td.className = `status-${c.status}`;
        tr.appendChild(td);
      });
      tr.addEventListener("click", () => { selected = i; open(); });
      body.appendChild(tr);
    });
    selected = Math.min(selected, Math.max(0, shown.length - 1));
    highlight();
  }

  function highlight() {
    Array.from(body.rows).forEach((tr, i) => tr.classList.toggle("selected", i === selected));
    const row = body.rows[selected];
    if (row) row.scrollIntoView({ block: "nearest" });
  }

  function open() {
    const c = shown[selected];
    if (c) window.location.href = `/cases/${encodeURIComponent(c.id)}`;
  }

  function renderCounts(counts) {
    countsBox.textContent = "";
    const items = [["cases", counts.total], ["reviewed", counts.reviewed]];
    Object.keys(counts.status).sort().forEach((k) => items.push([k, counts.status[k]]));
    items.forEach(([label, n]) => {
      const s = document.createElement("span");
      s.dataset.count = label;
      const b = document.createElement("b"); b.textContent = String(n);
      s.appendChild(b); s.append(" " + label);
      countsBox.appendChild(s);
    });
  }

  table.querySelectorAll("th").forEach((th) => th.addEventListener("click", () => {
    const key = th.dataset.key;
    sortDir = sortKey === key ? -sortDir : 1;
    sortKey = key;
    table.querySelectorAll("th").forEach((h) => h.classList.remove("asc", "desc"));
    th.classList.add(sortDir > 0 ? "asc" : "desc");
    render();
  }));
  form.addEventListener("input", render);
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    if (e.key === "j") { selected = Math.min(selected + 1, shown.length - 1); highlight(); }
    else if (e.key === "k") { selected = Math.max(selected - 1, 0); highlight(); }
    else if (e.key === "Enter") open();
  });

  fetch("/api/cases", { credentials: "same-origin" })
    .then((r) => { if (!r.ok) throw new Error(`cases: HTTP ${r.status}`); return r.json(); })
    .then((data) => {
      cases = data.cases;
      fillSelect("status", cases.map((c) => c.status));
      fillSelect("error_code", cases.map((c) => text(c.error_code)));
      fillSelect("group", cases.map((c) => text(c.group)));
      renderCounts(data.counts);
      render();
      document.body.dataset.ready = "1";
    })
    .catch((err) => { countsBox.textContent = String(err); });
})();
