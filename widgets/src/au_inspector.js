// emonb AU inspector: what the face of the analysed frame at current_time does (bars, face diagram,
// EMFACS reading vs the expression model) and, in a second tab, the selected AU over time and the
// AU x time heatmap, with AU names, a time axis and values on hover.

import { h, joinGrid, whenAttached } from "./util.js";

const REGIONS = {
  brow_inner: '<path d="M62 62 Q75 56 88 60 M112 60 Q125 56 138 62" stroke-width="7" fill="none"/>',
  brow_outer: '<path d="M40 66 Q50 58 62 60 M138 60 Q150 58 160 66" stroke-width="7" fill="none"/>',
  upper_lid: '<ellipse cx="72" cy="80" rx="16" ry="6"/><ellipse cx="128" cy="80" rx="16" ry="6"/>',
  lower_lid: '<ellipse cx="72" cy="90" rx="14" ry="4"/><ellipse cx="128" cy="90" rx="14" ry="4"/>',
  cheek: '<circle cx="60" cy="118" r="14"/><circle cx="140" cy="118" r="14"/>',
  nose: '<path d="M92 86 L100 120 L108 86 Z"/>',
  upper_lip: '<rect x="80" y="138" width="40" height="7" rx="3"/>',
  lip_corner: '<circle cx="76" cy="148" r="6"/><circle cx="124" cy="148" r="6"/>',
  lips: '<ellipse cx="100" cy="149" rx="20" ry="6"/>',
  lower_lip: '<rect x="82" y="153" width="36" height="6" rx="3"/>',
  chin: '<ellipse cx="100" cy="178" rx="16" ry="8"/>',
  jaw: '<path d="M60 170 Q100 205 140 170" stroke-width="6" fill="none"/>',
};

function heat(v) {
  if (v === null || v === undefined) return "#ffffff";
  const x = Math.max(0, Math.min(1, v));
  const r = Math.round(239 - 230 * x), g = Math.round(246 - 150 * x), b = Math.round(255 - 60 * x);
  return `rgb(${r},${g},${b})`;
}

// "nice" ticks for a time axis from a to b
function ticks(a, b, n = 6) {
  const span = Math.max(b - a, 1e-9);
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let t = Math.ceil(a / step) * step; t <= b + 1e-9; t += step) out.push(+t.toFixed(6));
  return out;
}

const GUTTER = 46; // px left of the plots: AU names, y values
const AXIS = 16; // px under the plots: the time axis

export default {
  render({ model, el }) {
    const root = h("div", "emonb-au");
    const tabs = h("div", "emonb-au-tabs");
    const tabNow = h("button", "emonb-au-tab on", "at this time");
    const tabTime = h("button", "emonb-au-tab", "over time");
    tabNow.type = tabTime.type = "button";
    const who = h("span", "emonb-au-who");
    tabs.append(tabNow, tabTime, who);
    const reading = h("div", "emonb-au-reading");
    const nowPane = h("div", "emonb-au-now");
    const bars = h("div", "emonb-au-bars");
    const face = h("div", "emonb-au-face");
    nowPane.append(face, bars);
    const timePane = h("div", "emonb-au-time");
    timePane.hidden = true;
    const courseTitle = h("div", "emonb-au-ptitle");
    const course = h("canvas", "emonb-au-course");
    const heatTitle = h("div", "emonb-au-ptitle", "all AUs over time (darker = stronger; click to go there)");
    const hm = h("canvas", "emonb-au-heatmap");
    const tip = h("div", "emonb-au-tip");
    timePane.append(courseTitle, course, heatTitle, hm, tip);
    const msg = h("div", "emonb-au-msg");
    root.append(tabs, reading, nowPane, timePane, msg);
    el.appendChild(root);
    const stopWaiting = whenAttached(el, () => joinGrid(el));

    const showTab = (which) => {
      nowPane.hidden = which !== "now";
      timePane.hidden = which === "now";
      tabNow.classList.toggle("on", which === "now");
      tabTime.classList.toggle("on", which !== "now");
      if (which !== "now") { drawCourse(); drawHeat(); }
    };
    tabNow.onclick = () => showTab("now");
    tabTime.onclick = () => showTab("time");

    const span = () => [model.get("start"), model.get("end")];
    function plotWidth(c) {
      return Math.max((c.parentElement ? c.parentElement.clientWidth : 420) - 4, 240);
    }
    function tAt(c, e) {
      const r = c.getBoundingClientRect();
      const [a, b] = span();
      const u = (e.clientX - r.left - GUTTER) / (r.width - GUTTER - 6);
      return u < 0 || u > 1 ? null : a + u * (b - a);
    }
    const xOf = (t, w) => { const [a, b] = span(); return GUTTER + ((t - a) / Math.max(b - a, 1e-9)) * (w - GUTTER - 6); };
    function seek(c, e) {
      const t = tAt(c, e);
      if (t === null) return;
      model.set("current_time", t);
      model.save_changes();
    }
    course.addEventListener("click", (e) => seek(course, e));
    hm.addEventListener("click", (e) => seek(hm, e));

    function axis(ctx, w, y0) {
      const [a, b] = span();
      ctx.fillStyle = "#475569";
      ctx.strokeStyle = "#94a3b8";
      ctx.font = "10px system-ui, sans-serif";
      ctx.textAlign = "center";
      for (const t of ticks(a, b)) {
        const x = xOf(t, w);
        ctx.beginPath(); ctx.moveTo(x, y0); ctx.lineTo(x, y0 + 3); ctx.stroke();
        ctx.fillText(`${t}s`, x, y0 + 13);
      }
      ctx.textAlign = "left";
    }
    function cursor(ctx, w, hh) {
      const x = xOf(model.get("current_time"), w);
      ctx.strokeStyle = "#dc2626";
      ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, hh); ctx.stroke();
      ctx.lineWidth = 1;
    }

    function drawCourse() {
      if (timePane.hidden) return;
      const w = plotWidth(course), ph = 64, hh = ph + AXIS;
      course.width = w; course.height = hh;
      const ctx = course.getContext("2d");
      const v = model.get("course") || [];
      ctx.clearRect(0, 0, w, hh);
      ctx.fillStyle = "#f8fafc";
      ctx.fillRect(GUTTER, 0, w - GUTTER - 6, ph);
      ctx.fillStyle = "#475569";
      ctx.font = "10px system-ui, sans-serif";
      ctx.fillText("1.0", GUTTER - 22, 9);
      ctx.fillText("0.0", GUTTER - 22, ph);
      const thr = model.get("threshold");
      ctx.strokeStyle = "#dc2626";
      ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.moveTo(GUTTER, ph - thr * ph); ctx.lineTo(w - 6, ph - thr * ph); ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillText(`${thr}`, GUTTER - 22, ph - thr * ph + 3);
      ctx.strokeStyle = "#0369a1";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let pen = false;
      const [a, b] = span();
      v.forEach((x, i) => {
        if (x === null) { pen = false; return; }
        const px = xOf(a + ((i + 0.5) / v.length) * (b - a), w), py = ph - x * ph;
        if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
        pen = true;
      });
      ctx.stroke();
      ctx.lineWidth = 1;
      axis(ctx, w, ph);
      cursor(ctx, w, ph);
      const sel = (model.get("aus") || []).find((x) => x.id === model.get("selected_au"));
      courseTitle.textContent = sel ? `${sel.id} ${sel.name} over time (dashed: presence threshold; click to go there)` : "";
    }

    function drawHeat() {
      if (timePane.hidden) return;
      const rows = model.get("heatmap") || [];
      const aus = model.get("aus") || [];
      const rh = 8;
      const w = plotWidth(hm), ph = Math.max(rows.length * rh, 1), hh = ph + AXIS;
      hm.width = w; hm.height = hh;
      const ctx = hm.getContext("2d");
      ctx.clearRect(0, 0, w, hh);
      const [a, b] = span();
      rows.forEach((row, j) => {
        row.forEach((v, i) => {
          ctx.fillStyle = heat(v);
          const x0 = xOf(a + (i / row.length) * (b - a), w), x1 = xOf(a + ((i + 1) / row.length) * (b - a), w);
          ctx.fillRect(x0, j * rh, x1 - x0 + 0.5, rh - 1);
        });
        ctx.fillStyle = aus[j] && aus[j].id === model.get("selected_au") ? "#0369a1" : "#334155";
        ctx.font = "8px system-ui, sans-serif";
        ctx.fillText(aus[j] ? aus[j].id : "", 2, j * rh + 7);
      });
      axis(ctx, w, ph);
      cursor(ctx, w, ph);
    }

    // hover: the value under the pointer
    function hover(c, e, isHeat) {
      const t = tAt(c, e);
      if (t === null) { tip.style.display = "none"; return; }
      const [a, b] = span();
      const r = c.getBoundingClientRect();
      let text;
      if (isHeat) {
        const rows = model.get("heatmap") || [];
        const j = Math.floor((e.clientY - r.top) / 8);
        const row = rows[j];
        if (!row) { tip.style.display = "none"; return; }
        const i = Math.min(Math.floor(((t - a) / (b - a)) * row.length), row.length - 1);
        const au = model.get("aus")[j];
        text = `${au.id} ${au.name} at ${t.toFixed(2)} s: ${row[i] === null ? "no face" : row[i].toFixed(2)}`;
      } else {
        const v = model.get("course") || [];
        const i = Math.min(Math.floor(((t - a) / (b - a)) * v.length), v.length - 1);
        text = `${model.get("selected_au")} at ${t.toFixed(2)} s: ${v[i] === null ? "no face" : v[i].toFixed(2)}`;
      }
      tip.textContent = text;
      tip.style.display = "block";
      const pr = timePane.getBoundingClientRect();
      tip.style.left = `${Math.min(e.clientX - pr.left + 10, pr.width - 200)}px`;
      tip.style.top = `${e.clientY - pr.top + 12}px`;
    }
    course.addEventListener("mousemove", (e) => hover(course, e, false));
    hm.addEventListener("mousemove", (e) => hover(hm, e, true));
    course.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    hm.addEventListener("mouseleave", () => { tip.style.display = "none"; });

    function drawNow() {
      const aus = model.get("aus") || [], vals = model.get("values") || [], thr = model.get("threshold");
      const sel = model.get("selected_au");
      const on = new Set();
      bars.replaceChildren(...aus.map((a, i) => {
        const v = vals[i];
        const row = h("div", "emonb-au-bar");
        row.dataset.au = a.id;
        if (a.id === sel) row.classList.add("selected");
        if (v !== null && v !== undefined && v >= thr) { row.classList.add("active"); on.add(a.region); }
        row.title = `${a.id} ${a.name}: ${v === null || v === undefined ? "no face" : v.toFixed(2)} (click: its time course)`;
        const id = h("span", "emonb-au-id", a.id);
        const nm = h("span", "emonb-au-name", a.name);
        const tr = h("span", "emonb-au-track");
        const fill = h("span", "emonb-au-fill");
        fill.style.width = `${100 * (v || 0)}%`;
        const th = h("span", "emonb-au-thr");
        th.style.left = `${100 * thr}%`;
        tr.append(fill, th);
        row.append(id, nm, tr);
        row.onclick = () => { model.set("selected_au", a.id); model.save_changes(); };
        return row;
      }));
      face.innerHTML = `<svg viewBox="0 0 200 220" width="120" height="132" aria-label="face regions of the active AUs">
        <ellipse cx="100" cy="110" rx="80" ry="100" fill="#fff7ed" stroke="#94a3b8"/>
        ${Object.entries(REGIONS).map(([k, svg]) =>
          `<g class="region${on.has(k) ? " on" : ""}" data-region="${k}">${svg}</g>`).join("")}
      </svg>`;
      const m = model.get("model_top"), f = model.get("emfacs_top");
      const pct = (x) => `${(100 * x.probability).toFixed(0)}%`;
      const shown = model.get("shown");
      const inView = model.get("in_view") || [];
      who.textContent = shown ? `showing ${shown}` : "";
      if (!m && !f) {
        reading.className = "emonb-au-reading none";
        if (!shown && inView.length) {
          const chosen = model.get("face") === "auto" ? "the selected face" : `${model.get("face")}`;
          reading.textContent = `${chosen} is not in view at this time — in view: ${inView.join(", ")} (choose it in the face list)`;
        } else if (!shown) reading.textContent = "no face analysed at this time";
        else reading.textContent = `${shown}: no expression reading at this time`;
      } else {
        const disagree = m && f && m.label !== f.label;
        reading.className = "emonb-au-reading" + (disagree ? " disagree" : "");
        reading.textContent = `model (${model.get("model_name") || "expression"}): ${m ? `${m.label} ${pct(m)}` : "--"} · ` +
          `EMFACS reading of the AUs: ${f ? `${f.label} ${pct(f)}` : "--"}` + (disagree ? " — they disagree" : "");
      }
      root.dataset.active = Array.from(root.querySelectorAll(".emonb-au-bar.active")).map((r) => r.dataset.au).join(",");
      root.dataset.shown = shown;
    }

    function drawMsg() { msg.textContent = model.get("message"); msg.style.display = model.get("message") ? "" : "none"; }
    let rafT = null;
    const moveCursor = () => {
      if (rafT !== null || timePane.hidden) return;
      rafT = requestAnimationFrame(() => { rafT = null; drawCourse(); drawHeat(); });
    };
    const handlers = [
      ["change:values", drawNow], ["change:selected_au", drawNow], ["change:model_top", drawNow],
      ["change:emfacs_top", drawNow], ["change:threshold", drawNow], ["change:threshold", drawCourse],
      ["change:shown", drawNow], ["change:in_view", drawNow],
      ["change:course", drawCourse], ["change:heatmap", drawHeat], ["change:selected_au", drawHeat],
      ["change:message", drawMsg], ["change:current_time", moveCursor],
    ];
    for (const [e, fn] of handlers) model.on(e, fn);
    drawNow();
    drawMsg();
    return () => {
      if (rafT !== null) cancelAnimationFrame(rafT);
      stopWaiting();
      for (const [e, fn] of handlers) model.off(e, fn);
    };
  },
};
