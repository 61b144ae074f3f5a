// emonb Annotator: mark in/out, pick a label, intensity, confidence, note; edit and delete.
// Every change goes to Python at once (custom message) and is written to the AnnotationStore there.

function fmt(t) {
  return Number.isFinite(t) ? t.toFixed(2) + " s" : "--";
}

function el_(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export default {
  render({ model, el }) {
    const root = el_("div", "emonb-annotator");
    root.tabIndex = 0;
    const head = el_("div", "emonb-ann-head");
    const who = el_("span", "emonb-ann-who");
    const now = el_("span", "emonb-ann-now");
    head.append(who, now);

    const form = el_("div", "emonb-ann-form");
    const inBtn = el_("button", "emonb-mark-in", "In [i]");
    const outBtn = el_("button", "emonb-mark-out", "Out [o]");
    const range = el_("span", "emonb-ann-range");
    const label = el_("select", "emonb-ann-label");
    const mkSlider = (cls, title) => {
      const s = el_("input", cls);
      s.type = "range";
      s.min = "0";
      s.max = "1";
      s.step = "0.05";
      s.value = "0.5";
      s.title = title;
      return s;
    };
    const intensity = mkSlider("emonb-ann-intensity", "intensity");
    const confidence = mkSlider("emonb-ann-confidence", "confidence");
    const note = el_("input", "emonb-ann-note");
    note.type = "text";
    note.placeholder = "note";
    const save = el_("button", "emonb-ann-add", "Add [Enter]");
    const cancel = el_("button", "emonb-ann-cancel", "Cancel");
    cancel.style.display = "none";
    const lab = (t, c) => {
      const l = el_("label", "emonb-ann-field", t);
      l.append(c);
      return l;
    };
    form.append(inBtn, outBtn, range, label, lab("intensity ", intensity), lab("confidence ", confidence),
      note, save, cancel);

    const error = el_("div", "emonb-ann-error");
    const status = el_("div", "emonb-ann-status");
    const table = el_("table", "emonb-ann-table");
    const queueBox = el_("details", "emonb-ann-queue");
    queueBox.append(el_("summary", "", "review queue (model least certain first)"));
    const queueList = el_("ol");
    queueBox.append(queueList);
    root.append(head, form, error, status, table, queueBox);
    el.appendChild(root);

    let editing = null; // annotation being edited

    function mark(which) {
      const t = model.get("current_time");
      let a = model.get("range_start");
      let b = model.get("range_end");
      if (which === "in") {
        a = t;
        if (b !== null && b < a) b = null;
      } else {
        b = t;
        if (a !== null && b < a) [a, b] = [b, a];
      }
      model.set("range_start", a);
      model.set("range_end", b);
      model.save_changes();
    }

    function submit() {
      const a = model.get("range_start");
      const b = model.get("range_end");
      const t = model.get("current_time");
      const onset = a !== null ? a : t;
      const offset = b !== null ? b : onset;
      const fields = {
        label: label.value,
        intensity: parseFloat(intensity.value),
        confidence: parseFloat(confidence.value),
        note: note.value || null,
      };
      if (editing) {
        model.send({ type: "update", id: editing.id, expected_version: editing.version, onset, offset, ...fields });
        stopEdit();
      } else {
        model.send({ type: "add", onset, offset, ...fields });
      }
      note.value = "";
    }

    function startEdit(row) {
      editing = row;
      label.value = row.label;
      intensity.value = String(row.intensity ?? 0.5);
      confidence.value = String(row.confidence ?? 0.5);
      note.value = row.note || "";
      model.set("range_start", row.onset);
      model.set("range_end", row.offset);
      model.save_changes();
      save.textContent = "Save [Enter]";
      cancel.style.display = "";
    }

    function stopEdit() {
      editing = null;
      save.textContent = "Add [Enter]";
      cancel.style.display = "none";
    }

    function renderHead() {
      who.textContent = `${model.get("reviewer")} · ${model.get("session")} · scheme ${model.get("scheme")}`;
      now.textContent = `t = ${fmt(model.get("current_time"))}`;
      const a = model.get("range_start");
      const b = model.get("range_end");
      range.textContent = `[${a === null ? "--" : fmt(a)} → ${b === null ? "--" : fmt(b)}]`;
    }

    function renderLabels() {
      const cur = label.value;
      label.replaceChildren(...model.get("labels").map((l) => {
        const o = el_("option", "", l);
        o.value = l;
        return o;
      }));
      if (cur) label.value = cur;
    }

    function renderRows() {
      const rows = model.get("annotations");
      const hdr = el_("tr");
      for (const h of ["reviewer", "onset", "offset", "label", "intensity", "confidence", "note", ""]) hdr.append(el_("th", "", h));
      const trs = rows.map((r) => {
        const tr = el_("tr", "emonb-ann-row");
        tr.dataset.id = r.id;
        const cells = [r.reviewer, fmt(r.onset), fmt(r.offset), r.label,
          r.intensity == null ? "" : r.intensity.toFixed(2), r.confidence == null ? "" : r.confidence.toFixed(2), r.note || ""];
        for (const c of cells) tr.append(el_("td", "", c));
        const td = el_("td");
        const go = el_("button", "emonb-ann-go", "▶");
        go.title = "go to onset";
        go.onclick = () => { model.set("current_time", r.onset); model.save_changes(); };
        td.append(go);
        if (r.reviewer === model.get("reviewer")) {
          const ed = el_("button", "emonb-ann-edit", "edit");
          ed.onclick = () => startEdit(r);
          const del = el_("button", "emonb-ann-delete", "delete");
          del.onclick = () => model.send({ type: "delete", id: r.id });
          td.append(ed, del);
        }
        tr.append(td);
        return tr;
      });
      table.replaceChildren(hdr, ...trs);
      root.dataset.count = String(rows.length);
    }

    function renderQueue() {
      queueList.replaceChildren(...model.get("queue").map((q) => {
        const li = el_("li");
        const a = el_("a", "", `${fmt(q.onset)}–${fmt(q.offset)}: ${q.reason}`);
        a.href = "#";
        a.onclick = (e) => {
          e.preventDefault();
          model.set("current_time", q.onset);
          model.set("range_start", q.onset);
          model.set("range_end", q.offset);
          model.save_changes();
        };
        li.append(a);
        return li;
      }));
    }

    function renderMsg() {
      error.textContent = model.get("error");
      error.style.display = model.get("error") ? "block" : "none";
      const n = model.get("n_pending");
      status.textContent = model.get("status") + (n ? ` · ${n} change(s) pending` : "");
    }

    inBtn.onclick = () => mark("in");
    outBtn.onclick = () => mark("out");
    save.onclick = submit;
    cancel.onclick = stopEdit;
    root.addEventListener("keydown", (e) => {
      const typing = e.target === note;
      if (e.key === "Enter" && (typing || e.target === root || e.target === label)) {
        submit();
        e.preventDefault();
        return;
      }
      if (typing) return;
      if (e.key === "i") { mark("in"); e.preventDefault(); }
      else if (e.key === "o") { mark("out"); e.preventDefault(); }
      else if (e.key === "Escape") { stopEdit(); }
    });

    const handlers = [
      ["change:current_time change:range_start change:range_end change:reviewer change:session change:scheme", renderHead],
      ["change:labels", renderLabels],
      ["change:annotations", renderRows],
      ["change:queue", renderQueue],
      ["change:error change:status change:n_pending", renderMsg],
    ];
    for (const [evs, fn] of handlers) for (const ev of evs.split(" ")) model.on(ev, fn);
    renderHead();
    renderLabels();
    renderRows();
    renderQueue();
    renderMsg();
    return () => {
      for (const [evs, fn] of handlers) for (const ev of evs.split(" ")) model.off(ev, fn);
    };
  },
};
