// emonb AU inspector: bars at current_time, face diagram, EMFACS vs model, heatmap and time course.

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
  if (v === null) return "#ffffff";
  const x = Math.max(0, Math.min(1, v));
  const r = Math.round(255 - 200 * x), g = Math.round(255 - 120 * x), b = Math.round(255 - 20 * x);
  return `rgb(${r},${g},${b})`;
}

export default {
  render({ model, el }) {
    const root = document.createElement("div");
    root.className = "emonb-au";
    const bars = document.createElement("div");
    bars.className = "emonb-au-bars";
    const face = document.createElement("div");
    face.className = "emonb-au-face";
    const reading = document.createElement("div");
    reading.className = "emonb-au-reading";
    const plots = document.createElement("div");
    plots.className = "emonb-au-plots";
    const courseTitle = document.createElement("div");
    const course = document.createElement("canvas");
    course.width = 460;
    course.height = 60;
    const heatTitle = document.createElement("div");
    heatTitle.textContent = "AU × time";
    const hm = document.createElement("canvas");
    hm.width = 460;
    const wrapOf = (c) => {
      const w = document.createElement("div");
      w.className = "emonb-au-plot";
      const cur = document.createElement("div");
      cur.className = "emonb-au-cursor";
      w.append(c, cur);
      return [w, cur];
    };
    const [courseWrap, courseCursor] = wrapOf(course);
    const [hmWrap, hmCursor] = wrapOf(hm);
    plots.append(courseTitle, courseWrap, heatTitle, hmWrap);
    const msg = document.createElement("div");
    root.append(bars, face, reading, plots, msg);
    el.appendChild(root);

    function seek(canvas, e) {
      const r = canvas.getBoundingClientRect();
      const a = model.get("start"), b = model.get("end");
      model.set("current_time", a + ((e.clientX - r.left) / r.width) * (b - a));
      model.save_changes();
    }
    course.addEventListener("click", (e) => seek(course, e));
    hm.addEventListener("click", (e) => seek(hm, e));

    function moveCursor() {
      const a = model.get("start"), b = model.get("end");
      const pct = b > a ? (100 * (model.get("current_time") - a)) / (b - a) : 0;
      courseCursor.style.left = hmCursor.style.left = `${Math.max(0, Math.min(100, pct))}%`;
    }

    function drawCourse() {
      const ctx = course.getContext("2d");
      const w = course.width, h = course.height, v = model.get("course");
      ctx.clearRect(0, 0, w, h);
      const thr = model.get("threshold");
      ctx.strokeStyle = "#dc2626";
      ctx.beginPath(); ctx.moveTo(0, h - thr * h); ctx.lineTo(w, h - thr * h); ctx.stroke();
      ctx.strokeStyle = "#0284c7";
      ctx.beginPath();
      let pen = false;
      v.forEach((x, i) => {
        if (x === null) { pen = false; return; }
        const px = ((i + 0.5) / v.length) * w, py = h - x * h;
        if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
        pen = true;
      });
      ctx.stroke();
      const sel = model.get("aus").find((a) => a.id === model.get("selected_au"));
      courseTitle.textContent = sel ? `${sel.id} ${sel.name} over time (click to seek)` : "";
    }

    function drawHeat() {
      const rows = model.get("heatmap");
      const ctx = hm.getContext("2d");
      const rh = 6;
      hm.height = Math.max(rows.length * rh, 1);
      const w = hm.width;
      rows.forEach((row, j) => {
        row.forEach((v, i) => {
          ctx.fillStyle = heat(v);
          ctx.fillRect((i / row.length) * w, j * rh, w / row.length + 1, rh);
        });
      });
    }

    function drawNow() {
      const aus = model.get("aus"), vals = model.get("values"), thr = model.get("threshold");
      const sel = model.get("selected_au");
      const on = new Set();
      bars.replaceChildren(...aus.map((a, i) => {
        const v = vals[i];
        const row = document.createElement("div");
        row.className = "emonb-au-bar";
        row.dataset.au = a.id;
        if (a.id === sel) row.classList.add("selected");
        if (v !== null && v !== undefined && v >= thr) { row.classList.add("active"); on.add(a.region); }
        row.title = `${a.id} ${a.name}: ${v === null || v === undefined ? "no face" : v.toFixed(2)}`;
        const id = document.createElement("span"); id.textContent = a.id;
        const nm = document.createElement("span"); nm.className = "emonb-au-name"; nm.textContent = a.name;
        const tr = document.createElement("span"); tr.className = "emonb-au-track";
        const fill = document.createElement("span"); fill.className = "emonb-au-fill";
        fill.style.width = `${100 * (v || 0)}%`;
        const th = document.createElement("span"); th.className = "emonb-au-thr"; th.style.left = `${100 * thr}%`;
        tr.append(fill, th);
        row.append(id, nm, tr);
        row.onclick = () => { model.set("selected_au", a.id); model.save_changes(); };
        return row;
      }));
      face.innerHTML = `<svg viewBox="0 0 200 220" width="160" height="176">
        <ellipse cx="100" cy="110" rx="80" ry="100" fill="#fff7ed" stroke="#94a3b8"/>
        ${Object.entries(REGIONS).map(([k, svg]) =>
          `<g class="region ${on.has(k) ? "on" : ""}" data-region="${k}" stroke="#64748b">${svg}</g>`).join("")}
      </svg>`;
      const m = model.get("model_top"), f = model.get("emfacs_top");
      const pct = (x) => `${(100 * x.probability).toFixed(0)}%`;
      if (!m && !f) { reading.textContent = "no face at this time"; reading.className = "emonb-au-reading"; }
      else {
        const disagree = m && f && m.label !== f.label;
        reading.className = "emonb-au-reading" + (disagree ? " disagree" : "");
        reading.textContent = `EMFACS reading of the AUs: ${f ? `${f.label} ${pct(f)}` : "--"} · ` +
          `model (${model.get("model_name")}): ${m ? `${m.label} ${pct(m)}` : "--"}` +
          (disagree ? " — they disagree" : "");
      }
      root.dataset.active = Array.from(root.querySelectorAll(".emonb-au-bar.active")).map((r) => r.dataset.au).join(",");
    }

    function drawMsg() { msg.textContent = model.get("message"); }
    const handlers = [
      ["change:values", drawNow], ["change:selected_au", drawNow], ["change:model_top", drawNow],
      ["change:emfacs_top", drawNow], ["change:threshold", drawNow], ["change:threshold", drawCourse],
      ["change:course", drawCourse], ["change:heatmap", drawHeat], ["change:message", drawMsg],
      ["change:current_time", moveCursor],
    ];
    for (const [e, fn] of handlers) model.on(e, fn);
    drawNow();
    drawCourse();
    drawHeat();
    moveCursor();
    drawMsg();
    return () => {
      for (const [e, fn] of handlers) model.off(e, fn);
    };
  },
};
