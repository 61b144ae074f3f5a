// emonb Annotator: mark in and out (snapped to the video's frames by the kernel), pick a label
// (keys 1-9), intensity and confidence ("not rated" is a value), note; edit, delete (asks), undo /
// redo, restore deleted rows, export. Every change goes to Python at once and is written there.

import { keyHost, onKeys } from "./shortcuts.js";
import { button, fillSelect, h, joinGrid, secs, whenAttached } from "./util.js";

const INTENSITY = [
  { value: "", label: "intensity: not rated" }, { value: "0.2", label: "A trace (0.2)" },
  { value: "0.4", label: "B slight (0.4)" }, { value: "0.6", label: "C marked (0.6)" },
  { value: "0.8", label: "D severe (0.8)" }, { value: "1", label: "E maximum (1.0)" },
];
const CONFIDENCE = [
  { value: "", label: "confidence: not rated" }, { value: "0.25", label: "unsure (0.25)" },
  { value: "0.5", label: "fair (0.5)" }, { value: "0.75", label: "confident (0.75)" },
  { value: "1", label: "certain (1.0)" },
];
const num = (s) => (s === "" ? null : parseFloat(s));
const rated = (v) => (v === null || v === undefined ? "not rated" : v.toFixed(2));

export default {
  render({ model, el }) {
    const root = h("div", "emonb-annotator");
    root.tabIndex = 0;
    const head = h("div", "emonb-ann-head");
    const who = h("span", "emonb-ann-who");
    const path = h("span", "emonb-ann-path");
    head.append(who, path);

    const form = h("div", "emonb-ann-form");
    const inBtn = button("In", "mark in at the frame on screen (i)", "emonb-mark-in");
    const outBtn = button("Out", "mark out at the frame on screen (o)", "emonb-mark-out");
    const range = h("span", "emonb-ann-range");
    const label = h("select", "emonb-ann-label");
    label.title = "label (keys 1-9)";
    const intensity = h("select", "emonb-ann-intensity");
    fillSelect(intensity, INTENSITY, "");
    const confidence = h("select", "emonb-ann-confidence");
    fillSelect(confidence, CONFIDENCE, "");
    const note = h("input", "emonb-ann-note");
    note.type = "text";
    note.placeholder = "note";
    const save = button("Add", "add the annotation (Enter)", "emonb-ann-add primary");
    const cancel = button("Cancel", "cancel the edit (Esc)", "emonb-ann-cancel");
    cancel.style.display = "none";
    const undo = button("↶ Undo", "undo (ctrl+z)", "emonb-ann-undo");
    const redo = button("↷ Redo", "redo (ctrl+shift+z)", "emonb-ann-redo");
    const exp = h("span", "emonb-ann-export");
    exp.append(h("span", "emonb-ann-export-label", "export"));
    for (const [fmt, text] of [["csv", "CSV"], ["eaf", "ELAN"], ["bids", "BIDS"]]) {
      const b = button(text, `export this session's annotations (${fmt === "bids" ? "events.tsv" : fmt})`, `emonb-export-${fmt}`);
      b.onclick = () => model.send({ type: "export", format: fmt });
      exp.append(b);
    }
    form.append(inBtn, outBtn, range, label, intensity, confidence, note, save, cancel, undo, redo, exp);

    const error = h("div", "emonb-ann-error");
    const status = h("div", "emonb-ann-status");
    const lists = h("div", "emonb-ann-lists");
    const table = h("table", "emonb-ann-table");
    const side = h("div", "emonb-ann-side");
    const queueBox = h("details", "emonb-ann-queue");
    queueBox.open = true;
    const queueSum = h("summary", "");
    const queueList = h("ol");
    queueBox.append(queueSum, queueList);
    const delBox = h("details", "emonb-ann-deleted");
    const delSum = h("summary", "");
    const delList = h("ul");
    delBox.append(delSum, delList);
    side.append(queueBox, delBox);
    lists.append(table, side);
    root.append(head, form, error, status, lists);
    el.appendChild(root);

    let editing = null; // annotation being edited
    let confirming = null; // id whose delete awaits a yes

    // the time on screen: the scrubber's of this explorer (the kernel's copy may lag during a drag)
    function screenTime() {
      const grid = el.closest(".emonb-explorer");
      const s = grid && grid.querySelector(".emonb-scrubber");
      const t = s ? parseFloat(s.dataset.currentTime) : NaN;
      return Number.isFinite(t) ? t : model.get("current_time");
    }

    function mark(which) {
      model.send({ type: which === "in" ? "mark_in" : "mark_out", t: screenTime() });
    }

    function submit() {
      const fields = {
        label: label.value || null,
        intensity: num(intensity.value),
        confidence: num(confidence.value),
        note: note.value || null,
        onset: model.get("range_start"),
        offset: model.get("range_end"),
      };
      if (editing) {
        model.send({ type: "update", id: editing.id, expected_version: editing.version, ...fields });
        stopEdit();
      } else {
        model.send({ type: "add", ...fields });
      }
      note.value = "";
    }

    function startEdit(row) {
      editing = row;
      label.value = row.label;
      intensity.value = row.intensity == null ? "" : String(row.intensity);
      confidence.value = row.confidence == null ? "" : String(row.confidence);
      note.value = row.note || "";
      model.set("range_start", row.onset);
      model.set("range_end", row.offset);
      model.save_changes();
      save.textContent = "Save";
      cancel.style.display = "";
      root.classList.add("editing");
    }

    function stopEdit() {
      editing = null;
      save.textContent = "Add";
      cancel.style.display = "none";
      root.classList.remove("editing");
    }

    function renderHead() {
      who.textContent = `${model.get("reviewer")} · session ${model.get("session")} · scheme ${model.get("scheme")}`;
      path.textContent = `store: ${model.get("store_path")}`;
      path.title = model.get("store_path");
      const a = model.get("range_start");
      const b = model.get("range_end");
      const len = a !== null && b !== null ? ` (${(b - a).toFixed(3)} s)` : "";
      range.textContent = `in ${a === null ? "--" : secs(a)} → out ${b === null ? "--" : secs(b)}${len}`;
      range.classList.toggle("complete", a !== null && b !== null && b > a);
      root.dataset.range = a === null || b === null ? "" : `${a},${b}`;
    }

    function renderLabels() {
      const cur = label.value;
      const opts = [{ value: "", label: "label…" }].concat(model.get("labels").map((l, i) =>
        ({ value: l, label: i < 9 ? `${i + 1} ${l}` : l })));
      fillSelect(label, opts, cur);
    }

    function renderRows() {
      const rows = model.get("annotations");
      const hdr = h("tr");
      for (const c of ["reviewer", "in", "out", "label", "intensity", "confidence", "note", ""]) hdr.append(h("th", "", c));
      const trs = rows.map((r) => {
        const tr = h("tr", "emonb-ann-row");
        tr.dataset.id = r.id;
        const cells = [r.reviewer, secs(r.onset), secs(r.offset), r.label, rated(r.intensity), rated(r.confidence), r.note || ""];
        for (const c of cells) tr.append(h("td", "", c));
        const td = h("td", "emonb-ann-actions");
        const go = button("▶", "go to its in point", "emonb-ann-go");
        go.onclick = () => { model.set("current_time", r.onset); model.save_changes(); };
        td.append(go);
        if (r.reviewer === model.get("reviewer")) {
          const ed = button("edit", "edit this annotation", "emonb-ann-edit");
          ed.onclick = () => startEdit(r);
          td.append(ed);
          if (confirming === r.id) {
            const yes = button("delete it", "yes, delete (undo brings it back)", "emonb-ann-confirm danger");
            yes.onclick = () => { confirming = null; model.send({ type: "delete", id: r.id }); };
            const no = button("keep", "do not delete", "emonb-ann-keep");
            no.onclick = () => { confirming = null; renderRows(); };
            td.append(h("span", "emonb-ann-ask", "delete?"), yes, no);
          } else {
            const del = button("delete", "delete this annotation (asks first)", "emonb-ann-delete");
            del.onclick = () => { confirming = r.id; renderRows(); };
            td.append(del);
          }
        }
        tr.append(td);
        return tr;
      });
      if (!rows.length) {
        const tr = h("tr", "emonb-ann-empty");
        const td = h("td", "", "no annotations yet: mark in (i) and out (o), then press a label key (1-9)");
        td.colSpan = 8;
        tr.append(td);
        trs.push(tr);
      }
      table.replaceChildren(hdr, ...trs);
      root.dataset.count = String(rows.length);
    }

    function renderDeleted() {
      const rows = model.get("deleted") || [];
      delSum.textContent = `deleted (${rows.length})`;
      delList.replaceChildren(...rows.map((r) => {
        const li = h("li", "", `${secs(r.onset)}–${secs(r.offset)} ${r.label} `);
        const b = button("restore", "bring this annotation back", "emonb-ann-restore");
        b.onclick = () => model.send({ type: "restore", id: r.id });
        li.append(b);
        return li;
      }));
      delBox.style.display = rows.length ? "" : "none";
    }

    function renderQueue() {
      const q = model.get("queue");
      queueSum.textContent = q.length ? `review queue: ${q.length} moment${q.length > 1 ? "s" : ""} worth a look` :
        "review queue: nothing stands out";
      queueList.replaceChildren(...q.map((item) => {
        const li = h("li");
        const a = h("a", "", `${secs(item.onset)}–${secs(item.offset)}`);
        a.href = "#";
        a.title = `score ${item.score}`;
        a.onclick = (e) => {
          e.preventDefault();
          model.set("current_time", item.onset);
          model.set("range_start", item.onset);
          model.set("range_end", item.offset);
          model.save_changes();
        };
        li.append(a, h("span", "emonb-ann-reason", ` ${item.reason}`));
        return li;
      }));
    }

    function renderMsg() {
      error.textContent = model.get("error");
      error.style.display = model.get("error") ? "block" : "none";
      const n = model.get("n_pending");
      status.textContent = model.get("status") + (n ? ` · ${n} change(s) pending` : "");
      undo.disabled = !model.get("undo_label");
      redo.disabled = !model.get("redo_label");
      undo.title = model.get("undo_label") ? `undo: ${model.get("undo_label")} (ctrl+z)` : "nothing to undo";
      redo.title = model.get("redo_label") ? `redo: ${model.get("redo_label")} (ctrl+shift+z)` : "nothing to redo";
    }

    inBtn.onclick = () => mark("in");
    outBtn.onclick = () => mark("out");
    save.onclick = submit;
    cancel.onclick = stopEdit;
    undo.onclick = () => model.send({ type: "undo" });
    redo.onclick = () => model.send({ type: "redo" });

    const keys = {
      i: () => mark("in"),
      o: () => mark("out"),
      Enter: () => submit(),
      Escape: () => {
        if (editing) stopEdit();
        else { model.set("range_start", null); model.set("range_end", null); model.save_changes(); }
      },
      "ctrl+z": () => model.send({ type: "undo" }),
      "ctrl+shift+z": () => model.send({ type: "redo" }),
      "ctrl+y": () => model.send({ type: "redo" }),
    };
    for (let k = 1; k <= 9; k++) {
      keys[String(k)] = () => {
        const labels = model.get("labels");
        if (k > labels.length) return false;
        label.value = labels[k - 1];
        const a = model.get("range_start"), b = model.get("range_end");
        if (!editing && a !== null && b !== null && b > a) submit(); // one key: the segment is labelled
      };
    }
    let offKeys = () => {};
    const stopWaiting = whenAttached(el, () => {
      joinGrid(el);
      offKeys = onKeys(keyHost(el, root), keys, { whileTyping: ["Enter", "Escape"] });
    });

    const handlers = [
      ["change:current_time change:range_start change:range_end change:reviewer change:session change:scheme change:store_path", renderHead],
      ["change:labels", renderLabels],
      ["change:annotations", renderRows],
      ["change:deleted", renderDeleted],
      ["change:queue", renderQueue],
      ["change:error change:status change:n_pending change:undo_label change:redo_label", renderMsg],
    ];
    for (const [evs, fn] of handlers) for (const ev of evs.split(" ")) model.on(ev, fn);
    renderHead();
    renderLabels();
    renderRows();
    renderDeleted();
    renderQueue();
    renderMsg();
    return () => {
      stopWaiting();
      offKeys();
      for (const [evs, fn] of handlers) for (const ev of evs.split(" ")) model.off(ev, fn);
    };
  },
};
