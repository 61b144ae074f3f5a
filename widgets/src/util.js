// Small DOM and formatting helpers shared by the widgets.

// m:ss.mmm
export function clockText(t) {
  if (!Number.isFinite(t)) return "--";
  const m = Math.floor(t / 60);
  const s = t - 60 * m;
  return `${m}:${s.toFixed(3).padStart(6, "0")}`;
}

export function secs(t) {
  return Number.isFinite(t) ? `${t.toFixed(2)} s` : "--";
}

// an element with a class and text (textContent: user strings never become HTML)
export function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

export function button(label, title, cls) {
  const b = h("button", `emonb-btn ${cls || ""}`.trim(), label);
  b.type = "button";
  if (title) b.title = title;
  return b;
}

// a <select> of [{value, label}]
export function fillSelect(sel, options, current) {
  sel.replaceChildren(...options.map((o) => {
    const opt = h("option", "", o.label);
    opt.value = String(o.value);
    return opt;
  }));
  if (current !== undefined && options.some((o) => String(o.value) === String(current))) sel.value = String(current);
}

// Inside the explorer grid (.emonb-explorer), the wrappers between it and the widget's own parts get
// display: contents, so the parts (video, timelines, AU panel, annotator) are the grid's items and
// take their areas from scrubber.css. Returns whether the widget is in such a grid.
export function joinGrid(el, root) {
  const grid = el.closest(".emonb-explorer");
  if (!grid) return false;
  for (let n = el; n && n !== grid; n = n.parentElement) n.style.display = "contents";
  if (root) root.style.display = "contents";
  return true;
}

// run fn() once el is in the page (anywidget renders before the view is attached to its box)
export function whenAttached(el, fn) {
  let tries = 0;
  let raf = null;
  const check = () => {
    raf = null;
    if (el.isConnected || tries++ > 600) fn();
    else raf = requestAnimationFrame(check);
  };
  check();
  return () => { if (raf !== null) cancelAnimationFrame(raf); };
}
