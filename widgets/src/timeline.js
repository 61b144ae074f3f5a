// Timelines: the Altair (Vega-Lite) spec of the `timeline_spec` trait, rendered to SVG by the
// vendored Vega, with the cursor at current_time, the marked range, zoom (wheel, + / − / 0, the
// buttons) and pan (drag), and the annotation tiers updated in place when `tiers` changes.

import { loadVega } from "./vega.js";
import { button, h } from "./util.js";

// The rows share one time axis and, in the flush layout, one plot offset and width: the first row's
// background (vega's path.background of the group "concat_0_group") is the plot area on screen.
function plotRect(box) {
  const bg = box.querySelector("g.concat_0_group > g > path.background");
  return bg ? bg.getBoundingClientRect() : null;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function timelines(box, model, seek) {
  let view = null;
  let vegaLib = null;
  let meta = null;
  let gen = 0;
  let raf = null;
  let drag = null; // {x, from, view: [a, b], moved, range}
  let span = null; // [view_start, view_end] shown (null: the whole session)

  const bar = h("div", "emonb-tl-bar");
  const zoomOut = button("−", "zoom out (−)", "emonb-zoom-out");
  const zoomIn = button("+", "zoom in (+)", "emonb-zoom-in");
  const zoomFit = button("whole session", "show the whole session (0)", "emonb-zoom-fit");
  const hint = h("span", "emonb-tl-hint", "wheel: zoom · drag: pan · shift-drag: mark");
  bar.append(zoomOut, zoomIn, zoomFit, hint);
  const plot = h("div", "emonb-tl-plot");
  box.replaceChildren(bar, plot);

  const whole = () => (meta ? [meta.start, meta.end] : [model.get("start"), model.get("start") + model.get("duration")]);
  const shown = () => span || whole();

  function timeAt(e) {
    const r = view && meta ? plotRect(plot) : null;
    if (!r || !r.width) return null;
    const u = (e.clientX - r.left) / r.width;
    if (u < -0.005 || u > 1.005) return null; // on a legend or an axis label
    const [a, b] = shown();
    return a + Math.min(Math.max(u, 0), 1) * (b - a);
  }

  function setSpan(a, b) {
    const [lo, hi] = whole();
    const minSpan = Math.min(0.5, hi - lo);
    let w = Math.max(Math.min(b - a, hi - lo), minSpan);
    a = Math.min(Math.max(a, lo), hi - w);
    span = w >= hi - lo - 1e-9 ? null : [a, a + w];
    const [x, y] = shown();
    box.dataset.view = `${x.toFixed(3)},${y.toFixed(3)}`;
    push();
  }

  function zoom(factor, center) {
    const [a, b] = shown();
    const c = center ?? model.get("current_time");
    setSpan(c - (c - a) * factor, c + (b - c) * factor);
  }

  // while playing, a zoomed view follows the cursor
  function follow(t) {
    if (!span) return;
    const [a, b] = span;
    if (t > b || t < a) setSpan(t - 0.1 * (b - a), t + 0.9 * (b - a));
  }

  // signals follow the model at most once per animation frame
  function push() {
    if (raf !== null || view === null) return;
    raf = requestAnimationFrame(() => {
      raf = null;
      if (view === null) return;
      const t = model.get("current_time");
      const v = view;
      const [a, b] = shown();
      v.signal("current_time", t)
        .signal("range_start", model.get("range_start"))
        .signal("range_end", model.get("range_end"))
        .signal("view_start", a)
        .signal("view_end", b)
        .runAsync()
        .then(() => {
          if (v === view) box.dataset.cursor = String(t);
        });
    });
  }

  // the tiers' data replaced in place (an annotation added, edited or deleted shows at once)
  function updateTiers() {
    if (!view || !meta || !meta.tiers) return;
    const counts = {};
    let changed = false;
    for (const tier of model.get("tiers") || []) {
      const name = meta.tiers[tier.tier];
      counts[tier.tier] = tier.intervals.length;
      if (!name) continue;
      const rows = tier.intervals.map((d) => ({ ...d }));
      view.change(name, vegaLib.vega.changeset().remove(() => true).insert(rows));
      changed = true;
    }
    box.dataset.tiers = JSON.stringify(counts);
    if (changed) view.runAsync();
  }

  // the model strings of each row as a tooltip on its title
  function titleTips() {
    (meta.rows || []).forEach((row, k) => {
      const text = plot.querySelector(`g.concat_${k}_group g.role-title text`);
      if (!text || !row.tooltip) return;
      const tip = document.createElementNS(SVG_NS, "title");
      tip.textContent = row.tooltip;
      text.append(tip);
      text.style.cursor = "help";
      text.style.pointerEvents = "all";
    });
  }

  async function build() {
    const mine = ++gen;
    if (view) view.finalize();
    view = null;
    const spec = model.get("timeline_spec");
    plot.replaceChildren();
    delete box.dataset.rendered;
    if (!spec || !spec.vconcat) return;
    try {
      vegaLib = await loadVega(model);
    } catch (e) {
      plot.textContent = `timelines unavailable: ${e.message}`;
      return;
    }
    if (mine !== gen) return;
    const { vega, vegaLite } = vegaLib;
    const div = h("div", "emonb-vega");
    plot.replaceChildren(div);
    const loader = vega.loader();
    loader.sanitize = (uri) => Promise.reject(new Error(`emonb timelines load nothing from the network (${uri})`));
    meta = (spec.usermeta && spec.usermeta.emonb) || null;
    if (!meta) {
      const start = model.get("start");
      meta = { start, end: start + model.get("duration"), tiers: {}, rows: [] };
    }
    const [a, b] = shown();
    let v;
    try {
      v = new vega.View(vega.parse(vegaLite.compile(spec).spec), {
        renderer: "svg", container: div, hover: false, loader, logLevel: vega.Warn });
      v.signal("current_time", model.get("current_time"))
        .signal("range_start", model.get("range_start"))
        .signal("range_end", model.get("range_end"));
      try {
        v.signal("view_start", a).signal("view_end", b);
      } catch (e) { /* a spec without zoom parameters */ }
      await v.runAsync();
    } catch (e) {
      if (v) v.finalize();
      if (mine === gen) plot.textContent = `timelines could not be drawn: ${e.message}`;
      return;
    }
    if (mine !== gen) {
      v.finalize();
      return;
    }
    view = v;
    titleTips();
    updateTiers();
    box.dataset.rendered = `vega ${vega.version} / vega-lite ${vegaLite.version}`;
    box.dataset.cursor = String(model.get("current_time"));
  }

  const setRange = (a, b, save) => {
    model.set("range_start", Math.min(a, b));
    model.set("range_end", Math.max(a, b));
    if (save) model.save_changes();
  };
  const onDown = (e) => {
    if (e.button !== 0) return;
    const t = timeAt(e);
    if (t === null) return;
    drag = { x: e.clientX, from: t, view: shown(), moved: false, range: e.shiftKey };
    e.preventDefault();
  };
  const onMove = (e) => {
    if (drag === null) return;
    if (Math.abs(e.clientX - drag.x) > 3) drag.moved = true;
    if (!drag.moved) return;
    if (drag.range) {
      const t = timeAt(e);
      if (t !== null) setRange(drag.from, t, false);
      return;
    }
    const r = plotRect(plot);
    if (!r || !r.width) return;
    const [a, b] = drag.view;
    const dt = ((e.clientX - drag.x) / r.width) * (b - a);
    setSpan(a - dt, b - dt); // pan: the plot follows the pointer
  };
  const onUp = (e) => {
    if (drag === null) return;
    const d = drag;
    drag = null;
    if (d.range) {
      const t = timeAt(e);
      if (d.moved && t !== null) setRange(d.from, t, true);
      else model.save_changes();
      return;
    }
    if (!d.moved) {
      const t = timeAt(e);
      if (t !== null) seek(t);
    }
  };
  const onWheel = (e) => {
    const t = timeAt(e);
    if (t === null || !view) return;
    e.preventDefault();
    zoom(e.deltaY > 0 ? 1.25 : 0.8, t);
  };
  const onDbl = () => setSpan(...whole());
  plot.addEventListener("mousedown", onDown);
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  plot.addEventListener("wheel", onWheel, { passive: false });
  plot.addEventListener("dblclick", onDbl);
  zoomIn.onclick = () => zoom(0.5);
  zoomOut.onclick = () => zoom(2);
  zoomFit.onclick = () => setSpan(...whole());

  return {
    build,
    push,
    follow,
    updateTiers,
    zoom,
    fit: () => setSpan(...whole()),
    destroy() {
      gen += 1;
      if (raf !== null) cancelAnimationFrame(raf);
      if (view) view.finalize();
      view = null;
      plot.removeEventListener("mousedown", onDown);
      window.removeEventListener("mousemove", onMove);
      window.removeEventListener("mouseup", onUp);
      plot.removeEventListener("wheel", onWheel);
      plot.removeEventListener("dblclick", onDbl);
    },
  };
}
