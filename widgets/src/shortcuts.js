// Keyboard shortcuts that work wherever the focus is inside the explorer (the `.emonb-explorer` grid
// that holds the widgets), or inside a widget shown on its own. Each widget registers its own keys
// on the shared host; a key handled here does not reach JupyterLab's notebook shortcuts.

export const SHORTCUTS = [
  ["space", "play / pause"],
  ["← / →", "one frame back / forward"],
  ["shift + ← / →", "one second back / forward"],
  ["[ / ]", "slower / faster (0.25× – 2×)"],
  ["m", "mute / unmute"],
  ["i / o", "mark in / out (at the frame on screen)"],
  ["1 – 9", "label (with in and out marked: adds the annotation)"],
  ["Enter", "add / save the annotation"],
  ["Esc", "cancel the edit, clear in / out"],
  ["ctrl + z / ctrl + shift + z", "undo / redo"],
  ["+ / − / 0", "zoom the timelines in / out / to the whole session"],
  ["?", "this sheet"],
];

// the element keys are listened on: the explorer grid holding `el`, else `fallback`
export function keyHost(el, fallback) {
  const grid = el.closest(".emonb-explorer");
  if (grid) {
    if (!grid.hasAttribute("tabindex")) grid.tabIndex = -1;
    // lumino (JupyterLab) skips its keyboard shortcuts for events from inside such an element
    grid.dataset.lmSuppressShortcuts = "true";
  }
  return grid || fallback;
}

// typing into a text field (or choosing in a list) keeps its keys, except these
function typing(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target.tagName === "TEXTAREA") return true;
  return target.tagName === "INPUT" && ["text", "search", "number"].includes(target.type);
}

// keys: {name: handler(event)}; names like "space", "ArrowLeft", "shift+ArrowLeft", "ctrl+z", "1"
export function onKeys(host, keys, { whileTyping = [] } = {}) {
  const handler = (e) => {
    let name = e.key === " " ? "space" : e.key;
    if (name.length === 1) name = name.toLowerCase();
    const mods = (e.ctrlKey || e.metaKey ? "ctrl+" : "") + (e.shiftKey && name.length > 1 ? "shift+" : "");
    const key = mods + name;
    const fn = keys[key];
    if (!fn) return;
    if (typing(e.target) && !whileTyping.includes(key)) return;
    if (fn(e) === false) return;
    e.preventDefault();
    e.stopPropagation();
  };
  host.addEventListener("keydown", handler);
  // clicking a non-field part of the explorer keeps the keys working (focus stays inside)
  const focus = (e) => {
    if (typing(e.target) || e.target.closest("select, button, input, a")) return;
    if (!host.contains(document.activeElement) || document.activeElement === document.body) {
      host.focus({ preventScroll: true });
    }
  };
  host.addEventListener("mousedown", focus);
  return () => {
    host.removeEventListener("keydown", handler);
    host.removeEventListener("mousedown", focus);
  };
}

// the sheet listing every shortcut (a table, hidden until toggled)
export function shortcutSheet() {
  const box = document.createElement("div");
  box.className = "emonb-keys";
  box.hidden = true;
  const title = document.createElement("div");
  title.className = "emonb-keys-title";
  title.textContent = "Keyboard shortcuts (anywhere in the explorer)";
  const table = document.createElement("table");
  for (const [k, what] of SHORTCUTS) {
    const tr = document.createElement("tr");
    const a = document.createElement("td");
    const kbd = document.createElement("kbd");
    kbd.textContent = k;
    a.append(kbd);
    const b = document.createElement("td");
    b.textContent = what;
    tr.append(a, b);
    table.append(tr);
  }
  box.append(title, table);
  return box;
}
