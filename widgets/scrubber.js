// emonb Scrubber: the video frame at current_time, overlays, play/pause, step, slider.
// Frames arrive as JPEG bytes in custom messages, only the ones asked for.

function fmt(t) {
  if (!Number.isFinite(t)) return "--";
  const m = Math.floor(t / 60);
  const s = t - 60 * m;
  return `${m}:${s.toFixed(3).padStart(6, "0")}`;
}

function drawOverlay(ctx, overlay) {
  if (!overlay || !overlay.faces) return;
  for (const f of overlay.faces) {
    const [x0, y0, x1, y1] = f.box;
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#22d3ee";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    if (f.landmarks) {
      ctx.fillStyle = "#facc15";
      for (const [x, y] of f.landmarks) ctx.fillRect(x - 1, y - 1, 2, 2);
    }
    let text = `face ${f.face}`;
    if (f.emotion) text += ` · ${f.emotion} ${(100 * f.probability).toFixed(0)}%`;
    ctx.font = "12px sans-serif";
    const w = ctx.measureText(text).width + 8;
    ctx.fillStyle = "rgba(0,0,0,0.65)";
    ctx.fillRect(x0, Math.max(0, y0 - 18), w, 18);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, x0 + 4, Math.max(12, y0 - 5));
  }
}

const COLORS = ["#dc2626", "#65a30d", "#7c3aed", "#f59e0b", "#2563eb", "#0891b2", "#64748b", "#db2777"];

// interval tracks (spotted expressions, annotations): one colour per label, labels on wide boxes
function drawIntervals(ctx, track, w, h) {
  const span = track.end - track.start;
  const colour = new Map();
  ctx.font = "10px sans-serif";
  for (const iv of track.intervals || []) {
    const key = iv.label.split(" · ")[0];
    if (!colour.has(key)) colour.set(key, COLORS[colour.size % COLORS.length]);
    const x0 = ((iv.onset - track.start) / span) * w;
    const x1 = Math.max(x0 + 2, ((iv.offset - track.start) / span) * w);
    ctx.fillStyle = colour.get(key);
    ctx.globalAlpha = 0.35;
    ctx.fillRect(x0, 6, x1 - x0, h - 12);
    ctx.globalAlpha = 1;
    if (x1 - x0 > ctx.measureText(iv.label).width + 4) {
      ctx.fillStyle = "#111827";
      ctx.fillText(iv.label, x0 + 2, h / 2 + 3);
    }
  }
}

function drawTrack(canvas, track) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#f8fafc";
  ctx.fillRect(0, 0, w, h);
  if (track.kind === "intervals") {
    drawIntervals(ctx, track, w, h);
    return;
  }
  track.series.forEach((s, k) => {
    const vals = s.values;
    let lo = track.range ? track.range[0] : Infinity;
    let hi = track.range ? track.range[1] : -Infinity;
    if (!track.range) {
      for (const v of vals) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
    if (!(hi > lo)) { hi = lo + 1; }
    ctx.strokeStyle = COLORS[k % COLORS.length];
    ctx.lineWidth = 1.2;
    ctx.beginPath();
    let pen = false;
    vals.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      const x = ((i + 0.5) / vals.length) * w;
      const y = h - 2 - ((v - lo) / (hi - lo)) * (h - 4);
      if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      pen = true;
    });
    ctx.stroke();
  });
}

function buildTimelines(box, model, seek) {
  box.replaceChildren();
  const tracks = model.get("timelines");
  const width = Math.max(model.get("width") || 640, 320);
  for (const tr of tracks) {
    const row = document.createElement("div");
    row.className = "emonb-track";
    const title = document.createElement("div");
    title.className = "emonb-track-title";
    title.textContent = tr.name + (tr.units ? ` (${tr.units})` : "") + (tr.model ? ` · ${tr.model}` : "");
    const legend = document.createElement("span");
    legend.className = "emonb-track-legend";
    tr.series.forEach((s, k) => {
      const item = document.createElement("span");
      item.style.color = COLORS[k % COLORS.length];
      item.textContent = ` ${s.label}`;
      legend.append(item);
    });
    title.append(legend);
    const wrap = document.createElement("div");
    wrap.className = "emonb-track-plot";
    const c = document.createElement("canvas");
    c.width = width;
    c.height = 56;
    const cursor = document.createElement("div");
    cursor.className = "emonb-track-cursor";
    const band = document.createElement("div");
    band.className = "emonb-track-range";
    wrap.append(c, band, cursor);
    row.append(title, wrap);
    box.append(row);
    drawTrack(c, tr);
    const timeAt = (e) => {
      const r = c.getBoundingClientRect();
      return tr.start + ((e.clientX - r.left) / r.width) * (tr.end - tr.start);
    };
    let dragFrom = null;
    c.addEventListener("mousedown", (e) => {
      if (!e.shiftKey) return;
      dragFrom = timeAt(e);
      e.preventDefault();
    });
    c.addEventListener("mousemove", (e) => {
      if (dragFrom === null) return;
      const t = timeAt(e);
      model.set("range_start", Math.min(dragFrom, t));
      model.set("range_end", Math.max(dragFrom, t));
    });
    c.addEventListener("mouseup", (e) => {
      if (dragFrom === null) return;
      const t = timeAt(e);
      model.set("range_start", Math.min(dragFrom, t));
      model.set("range_end", Math.max(dragFrom, t));
      model.save_changes();
      dragFrom = null;
    });
    c.addEventListener("click", (e) => {
      if (e.shiftKey) return; // shift-drag selects a range instead of seeking
      seek(timeAt(e));
    });
  }
}

function drawRanges(box, model) {
  const tracks = model.get("timelines");
  const a = model.get("range_start");
  const b = model.get("range_end");
  box.querySelectorAll(".emonb-track-range").forEach((band, i) => {
    const tr = tracks[i];
    if (!tr || a === null || b === null) { band.style.display = "none"; return; }
    const span = tr.end - tr.start;
    band.style.display = "block";
    band.style.left = `${(100 * (a - tr.start)) / span}%`;
    band.style.width = `${(100 * Math.max(b - a, 0)) / span}%`;
  });
}

function moveCursors(box, model) {
  const tracks = model.get("timelines");
  const t = model.get("current_time");
  box.querySelectorAll(".emonb-track-cursor").forEach((cur, i) => {
    const tr = tracks[i];
    if (!tr) return;
    cur.style.left = `${(100 * (t - tr.start)) / (tr.end - tr.start)}%`;
  });
}

export default {
  render({ model, el }) {
    const root = document.createElement("div");
    root.className = "emonb-scrubber";
    root.tabIndex = 0;
    const canvas = document.createElement("canvas");
    canvas.className = "emonb-scrubber-canvas";
    const msg = document.createElement("div");
    msg.className = "emonb-scrubber-message";
    const bar = document.createElement("div");
    bar.className = "emonb-scrubber-controls";
    const mk = (label, title, cls) => {
      const b = document.createElement("button");
      b.textContent = label;
      b.title = title;
      b.className = cls;
      return b;
    };
    const back = mk("|◀", "one frame back (←)", "emonb-step-back");
    const play = mk("▶", "play / pause (space)", "emonb-play");
    const fwd = mk("▶|", "one frame forward (→)", "emonb-step-fwd");
    const slider = document.createElement("input");
    slider.type = "range";
    slider.className = "emonb-slider";
    const clock = document.createElement("span");
    clock.className = "emonb-clock";
    bar.append(back, play, fwd, slider, clock);
    const timelines = document.createElement("div");
    timelines.className = "emonb-timelines";
    root.append(canvas, bar, msg, timelines);
    el.appendChild(root);

    const ctx = canvas.getContext("2d");
    let pending = null; // request in flight
    let wanted = null; // latest time asked for while one was in flight
    let reqId = 0;
    let drawn = 0;
    let lastInput = null; // performance.now() of the last slider move, for latency figures
    let sentAt = null; // performance.now() of the frame request in flight
    let raf = null;
    let playStart = null;
    window.__emonbLatencies = window.__emonbLatencies || [];

    function setup() {
      const w = model.get("width") || 640;
      const h = model.get("height") || 360;
      canvas.width = w;
      canvas.height = h;
      canvas.style.display = model.get("has_video") ? "block" : "none";
      const start = model.get("start");
      const fps = model.get("fps") || 30;
      slider.min = String(start);
      slider.max = String(start + Math.max(model.get("duration") - 1 / fps, 0));
      slider.step = String(1 / fps);
      msg.textContent = model.get("message");
      msg.style.display = model.get("message") ? "block" : "none";
    }

    function request(t) {
      if (!model.get("has_video")) return;
      if (pending !== null) {
        wanted = t;
        return;
      }
      pending = ++reqId;
      sentAt = performance.now();
      model.send({ type: "frame", t, id: pending });
    }

    async function onMessage(content, buffers) {
      if (!content || content.type !== "frame") return;
      if (content.id !== pending) return;
      const repliedAt = performance.now();
      try {
        if (content.error) {
          msg.textContent = content.error;
          msg.style.display = "block";
        } else if (buffers && buffers.length) {
          const blob = new Blob([buffers[0]], { type: "image/jpeg" });
          const bmp = await createImageBitmap(blob);
          ctx.drawImage(bmp, 0, 0, canvas.width, canvas.height);
          bmp.close && bmp.close();
          if (model.get("show_overlay")) drawOverlay(ctx, content.overlay);
          drawn += 1;
          root.dataset.framesDrawn = String(drawn);
          root.dataset.frameTime = String(content.frame_time);
          if (lastInput !== null) {
            const done = performance.now();
            window.__emonbLatencies.push(done - lastInput);
            (window.__emonbTimings = window.__emonbTimings || []).push(
              { roundtrip: repliedAt - sentAt, server: content.server_ms, draw: done - repliedAt, queued: sentAt - lastInput });
            lastInput = null;
          }
        }
      } finally {
        pending = null;
        if (wanted !== null) {
          const t = wanted;
          wanted = null;
          request(t);
        }
      }
    }

    function onTime() {
      const t = model.get("current_time");
      if (document.activeElement !== slider || !slider.matches(":active")) slider.value = String(t);
      clock.textContent = `${fmt(t)} / ${fmt(model.get("start") + model.get("duration"))}`;
      root.dataset.currentTime = String(t);
      moveCursors(timelines, model);
      request(t);
    }

    function setTime(t) {
      const lo = model.get("start");
      const hi = lo + model.get("duration");
      model.set("current_time", Math.min(Math.max(t, lo), hi));
      model.save_changes();
    }

    function tick(now) {
      if (!model.get("playing")) return;
      if (playStart === null) playStart = { wall: now, t: model.get("current_time") };
      const t = playStart.t + (now - playStart.wall) / 1000;
      if (t >= model.get("start") + model.get("duration")) {
        model.set("playing", false);
        model.save_changes();
        return;
      }
      model.set("current_time", t);
      model.save_changes();
      raf = requestAnimationFrame(tick);
    }

    function onPlaying() {
      const p = model.get("playing");
      play.textContent = p ? "||" : "▶";
      if (p) {
        playStart = null;
        raf = requestAnimationFrame(tick);
      } else if (raf !== null) {
        cancelAnimationFrame(raf);
        raf = null;
      }
    }

    slider.addEventListener("input", () => {
      lastInput = performance.now();
      setTime(parseFloat(slider.value));
    });
    play.addEventListener("click", () => {
      model.set("playing", !model.get("playing"));
      model.save_changes();
    });
    back.addEventListener("click", () => model.send({ type: "step", n: -1 }));
    fwd.addEventListener("click", () => model.send({ type: "step", n: 1 }));
    root.addEventListener("keydown", (e) => {
      if (e.target instanceof HTMLInputElement && e.target.type === "text") return;
      if (e.key === " ") {
        play.click();
        e.preventDefault();
      } else if (e.key === "ArrowLeft") {
        model.send({ type: "step", n: -1 });
        e.preventDefault();
      } else if (e.key === "ArrowRight") {
        model.send({ type: "step", n: 1 });
        e.preventDefault();
      }
    });

    model.on("msg:custom", onMessage);
    model.on("change:current_time", onTime);
    model.on("change:playing", onPlaying);
    model.on("change:show_overlay", () => request(model.get("current_time")));
    const onTracks = () => {
      buildTimelines(timelines, model, setTime);
      moveCursors(timelines, model);
      drawRanges(timelines, model);
    };
    const onRange = () => drawRanges(timelines, model);
    model.on("change:timelines", onTracks);
    model.on("change:range_start", onRange);
    model.on("change:range_end", onRange);
    const onSetup = () => setup();
    model.on("change:message", onSetup);
    model.on("change:width", onSetup);
    model.on("change:duration", onSetup);
    setup();
    onTracks();
    onTime();

    return () => {
      if (raf !== null) cancelAnimationFrame(raf);
      model.off("msg:custom", onMessage);
      model.off("change:current_time", onTime);
      model.off("change:playing", onPlaying);
      model.off("change:message", onSetup);
      model.off("change:width", onSetup);
      model.off("change:duration", onSetup);
      model.off("change:timelines", onTracks);
      model.off("change:range_start", onRange);
      model.off("change:range_end", onRange);
    };
  },
};
