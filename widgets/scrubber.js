// emonb Scrubber: the video frame at current_time, overlays, play/pause, step, slider.
// Frames arrive as JPEG bytes in custom messages, only the ones asked for.

function fmt(t) {
  if (!Number.isFinite(t)) return "--";
  const m = Math.floor(t / 60);
  const s = t - 60 * m;
  return `${m}:${s.toFixed(3).padStart(6, "0")}`;
}

// ---- the browser's frame cache (exported for tests/test_widgets_js.py)

// Position (0-based, time order) of the frame on screen at time t: the last frame whose time is <= t
// (the same rule as Scrubber.frame_position in Python).
export function framePosition(times, t) {
  const n = times.length;
  if (!n) return -1;
  let lo = 0;
  let hi = n; // first index with times[i] > t + 1e-9
  const x = t + 1e-9;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return Math.min(Math.max(lo - 1, 0), n - 1);
}

// Decoded frames by position, least recently used first out; evict(entry) frees what it holds.
export class FrameCache {
  constructor(capacity, evict = () => {}) {
    this.capacity = Math.max(0, capacity | 0);
    this.evict = evict;
    this.map = new Map();
  }
  get size() {
    return this.map.size;
  }
  has(pos) {
    return this.map.has(pos);
  }
  get(pos) {
    const e = this.map.get(pos);
    if (e === undefined) return undefined;
    this.map.delete(pos);
    this.map.set(pos, e);
    return e;
  }
  set(pos, entry) {
    if (this.capacity === 0) {
      this.evict(entry);
      return;
    }
    const old = this.map.get(pos);
    if (old !== undefined && old !== entry) this.evict(old);
    this.map.delete(pos);
    this.map.set(pos, entry);
    while (this.map.size > this.capacity) {
      const [k, e] = this.map.entries().next().value;
      this.map.delete(k);
      this.evict(e);
    }
  }
  clear() {
    for (const e of this.map.values()) this.evict(e);
    this.map.clear();
  }
}

// Frames to ask the kernel for after frame `pos` is drawn, most useful first: when the last two moves
// went about `delta` frames each (a steady drag), the frames around pos + delta, where the next move
// most likely lands; then pos+1..pos+count. Only those neither cached nor on their way,
// within 0..n-1. Asked in batches: only when the next frame or the predicted one is missing, or at
// least a quarter of the window is, so stepping frame by frame does not send a message per frame.
export function aheadWanted(pos, n, count, has, inflight, delta = 0, prevDelta = 0) {
  const order = [];
  // a steady drag: the last two moves agree in direction and about in size (as Scrubber.predicted_position)
  const steady = Math.abs(delta) > 1 && delta * prevDelta > 0 &&
    Math.abs(delta - prevDelta) <= Math.max(2, Math.floor(Math.abs(delta) / 4));
  const predicted = steady ? pos + delta : null;
  if (predicted !== null) for (const d of [0, 1, -1, 2, -2]) order.push(predicted + d);
  // a drag of more than a few frames per move skips the frames right after this one (asking for
  // them would also send the kernel's decoder back and forth)
  const window = predicted !== null && Math.abs(delta) > 4 ? 0 : count;
  for (let p = pos + 1; p <= pos + window; p++) order.push(p);
  const seen = new Set();
  const missing = [];
  for (const p of order) {
    if (p < 0 || p >= n || p === pos || seen.has(p)) continue;
    seen.add(p);
    if (!has(p) && !inflight.has(p)) missing.push(p);
  }
  if (!missing.length) return missing;
  const urgent = missing.includes(pos + 1) || (predicted !== null && missing.includes(predicted));
  if (urgent || missing.length >= Math.max(1, window / 4)) return missing;
  return [];
}

// RGB bytes (a DataView or ArrayBuffer from the kernel) -> ImageData, drawn with putImageData
export function rgbImage(buf, width, height) {
  const src = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = width * height;
  if (src.length !== 3 * n) throw new Error(`frame of ${src.length} bytes, expected ${3 * n} (${width}x${height} RGB)`);
  const out = new Uint8ClampedArray(4 * n);
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    const k = 4 * i;
    out[k] = src[j];
    out[k + 1] = src[j + 1];
    out[k + 2] = src[j + 2];
    out[k + 3] = 255;
  }
  return new ImageData(out, width, height);
}

// JPEG bytes -> something drawImage takes (close() it when done). WebCodecs' ImageDecoder reads the
// bytes directly; createImageBitmap needs a Blob, which Chromium keeps in its browser process, and
// under load that detour made decoding 10-30x slower than the decoding itself.
export async function decodeJpeg(buf) {
  if (typeof ImageDecoder === "function") {
    const decoder = new ImageDecoder({ data: buf, type: "image/jpeg" });
    try {
      return (await decoder.decode()).image;
    } finally {
      decoder.close();
    }
  }
  return await createImageBitmap(new Blob([buf], { type: "image/jpeg" }));
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

// ---- timelines: an Altair (Vega-Lite) spec from Python, rendered by the vendored Vega, offline.
// Vega and Vega-Lite (widgets/vendor, UMD builds) come once per page through the comm: the first
// scrubber asks the kernel ({type: "vega"}), gets both files (gzip) as buffers, and evaluates them
// with module/exports shims; the result is cached on globalThis for every later widget.

const VEGA_KEY = "__emonbVega";

async function bufferText(buf, encoding) {
  if (encoding !== "gzip") return new TextDecoder().decode(buf);
  const stream = new Blob([buf]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

function evalUmd(src, deps) {
  const module = { exports: {} };
  const require = (name) => {
    if (name in deps) return deps[name];
    throw new Error(`emonb: ${name} is not vendored`);
  };
  // the UMD wrapper takes the CommonJS branch; `define` is shadowed so a page's AMD loader is not used
  new Function("module", "exports", "require", "define", src)(module, module.exports, require, undefined);
  return module.exports;
}

function loadVega(model) {
  const g = globalThis;
  if (g[VEGA_KEY]) return g[VEGA_KEY];
  const promise = new Promise((resolve, reject) => {
    let timer = null;
    const finish = (err, value) => {
      clearTimeout(timer);
      model.off("msg:custom", onMsg);
      if (err) {
        if (g[VEGA_KEY] === promise) g[VEGA_KEY] = null; // a later widget may try again
        reject(err);
      } else resolve(value);
    };
    async function onMsg(content, buffers) {
      if (!content || content.type !== "vega") return;
      try {
        const [vegaSrc, vlSrc] = await Promise.all(buffers.map((b) => bufferText(b, content.encoding)));
        const vega = evalUmd(vegaSrc, {});
        const vegaLite = evalUmd(vlSrc, { vega });
        finish(null, { vega, vegaLite });
      } catch (e) {
        finish(e);
      }
    }
    timer = setTimeout(() => finish(new Error("the kernel did not send the Vega sources")), 60000);
    model.on("msg:custom", onMsg);
    model.send({ type: "vega", gzip: typeof DecompressionStream === "function" });
  });
  g[VEGA_KEY] = promise;
  return promise;
}

// The rows share one time axis and, in the flush layout, one plot offset and width: the first row's
// background (vega's path.background of the group "concat_0_group") is the plot area on screen.
function plotRect(box) {
  const bg = box.querySelector("g.concat_0_group > g > path.background");
  return bg ? bg.getBoundingClientRect() : null;
}

function timelines(box, model, seek) {
  let view = null;
  let meta = null;
  let gen = 0;
  let raf = null;
  let dragFrom = null;

  function timeAt(e) {
    const r = view && meta ? plotRect(box) : null;
    if (!r || !r.width) return null;
    const u = (e.clientX - r.left) / r.width;
    if (u < -0.005 || u > 1.005) return null; // on a legend or an axis label
    return meta.start + Math.min(Math.max(u, 0), 1) * (meta.end - meta.start);
  }

  // signals follow the model at most once per animation frame
  function push() {
    if (raf !== null || view === null) return;
    raf = requestAnimationFrame(() => {
      raf = null;
      if (view === null) return;
      const t = model.get("current_time");
      const v = view;
      v.signal("current_time", t)
        .signal("range_start", model.get("range_start"))
        .signal("range_end", model.get("range_end"))
        .runAsync()
        .then(() => {
          if (v === view) box.dataset.cursor = String(t);
        });
    });
  }

  async function build() {
    const mine = ++gen;
    if (view) view.finalize();
    view = null;
    const spec = model.get("timeline_spec");
    box.replaceChildren();
    delete box.dataset.rendered;
    if (!spec || !spec.vconcat) return;
    let lib;
    try {
      lib = await loadVega(model);
    } catch (e) {
      box.textContent = `timelines unavailable: ${e.message}`;
      return;
    }
    if (mine !== gen) return;
    const { vega, vegaLite } = lib;
    const div = document.createElement("div");
    div.className = "emonb-vega";
    box.replaceChildren(div);
    const loader = vega.loader();
    loader.sanitize = (uri) => Promise.reject(new Error(`emonb timelines load nothing from the network (${uri})`));
    let v;
    try {
      v = new vega.View(vega.parse(vegaLite.compile(spec).spec), {
        renderer: "svg", container: div, hover: false, loader, logLevel: vega.Warn });
      v.signal("current_time", model.get("current_time"))
        .signal("range_start", model.get("range_start"))
        .signal("range_end", model.get("range_end"));
      await v.runAsync();
    } catch (e) {
      if (v) v.finalize();
      if (mine === gen) box.textContent = `timelines could not be drawn: ${e.message}`;
      return;
    }
    if (mine !== gen) {
      v.finalize();
      return;
    }
    view = v;
    const start = model.get("start");
    meta = (spec.usermeta && spec.usermeta.emonb) || { start, end: start + model.get("duration") };
    box.dataset.rendered = `vega ${vega.version} / vega-lite ${vegaLite.version}`;
    box.dataset.cursor = String(model.get("current_time"));
  }

  const setRange = (a, b, save) => {
    model.set("range_start", Math.min(a, b));
    model.set("range_end", Math.max(a, b));
    if (save) model.save_changes();
  };
  const onDown = (e) => {
    if (!e.shiftKey || e.button !== 0) return;
    dragFrom = timeAt(e);
    if (dragFrom !== null) e.preventDefault();
  };
  const onMove = (e) => {
    if (dragFrom === null) return;
    const t = timeAt(e);
    if (t !== null) setRange(dragFrom, t, false);
  };
  const onUp = (e) => {
    if (dragFrom === null) return;
    const t = timeAt(e);
    if (t !== null) setRange(dragFrom, t, true);
    else model.save_changes();
    dragFrom = null;
  };
  const onClick = (e) => {
    if (e.shiftKey) return; // shift-drag selects a range instead of seeking
    const t = timeAt(e);
    if (t !== null) seek(t);
  };
  box.addEventListener("mousedown", onDown);
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  box.addEventListener("click", onClick);

  return {
    build,
    push,
    destroy() {
      gen += 1;
      if (raf !== null) cancelAnimationFrame(raf);
      if (view) view.finalize();
      view = null;
      box.removeEventListener("mousedown", onDown);
      window.removeEventListener("mousemove", onMove);
      window.removeEventListener("mouseup", onUp);
      box.removeEventListener("click", onClick);
    },
  };
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
    const box = document.createElement("div");
    box.className = "emonb-timelines";
    root.append(canvas, bar, msg, box);
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
    let times = null; // frame times (Float64Array), for finding frames in the browser's cache
    let shownPos = -1;
    let lastDelta = 0; // frames between the last two frames drawn (the speed of a drag)
    let prevDelta = 0; // and between the two before
    let aheadGen = 0;
    let inflight = new Set(); // positions asked for ahead and not arrived yet
    const cache = new FrameCache(model.get("browser_cache") || 0, (e) => e.bmp && e.bmp.close());
    const aheadCount = () => Math.min(Math.floor(cache.capacity / 4), 64);
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
      cache.clear();
      shownPos = -1; // a new source: nothing of it is on screen yet
      inflight = new Set();
      times = null;
      if (model.get("has_video") && cache.capacity > 0) model.send({ type: "times" });
    }

    const currentPos = () => (times ? framePosition(times, model.get("current_time")) : -1);

    // draw a decoded frame (with its overlay) and ask for the frames ahead of it
    function show(entry, pos, timing) {
      if (entry.bmp) ctx.drawImage(entry.bmp, 0, 0, canvas.width, canvas.height);
      else ctx.putImageData(entry.img, 0, 0);
      if (model.get("show_overlay")) drawOverlay(ctx, entry.overlay);
      if (shownPos >= 0 && pos !== shownPos) {
        prevDelta = lastDelta;
        lastDelta = pos - shownPos;
      }
      shownPos = pos;
      drawn += 1;
      root.dataset.framesDrawn = String(drawn);
      root.dataset.frameTime = String(entry.frameTime);
      if (lastInput !== null && timing) {
        const input = lastInput;
        timing.drawn = performance.now() - input;
        window.__emonbLatencies.push(timing.drawn);
        (window.__emonbTimings = window.__emonbTimings || []).push(timing);
        requestAnimationFrame(() => { timing.painted = performance.now() - input; });
        lastInput = null;
      }
      root.dispatchEvent(new CustomEvent("emonb-frame", { detail: { time: entry.frameTime } }));
      // ahead of where the slider is now: during a fast drag the frame drawn is already behind it
      const now = currentPos();
      askAhead(now >= 0 ? now : pos);
    }

    function askAhead(pos) {
      // not while the picture is catching up with the slider (a fast drag): frames ahead would only
      // queue behind, and in front of, the frames asked for; the kernel predicts a steady drag itself
      if (!times || pos < 0 || cache.capacity === 0 || pending !== null || wanted !== null) return;
      const missing = aheadWanted(pos, times.length, aheadCount(), (p) => cache.has(p), inflight, lastDelta, prevDelta);
      if (!missing.length) return;
      aheadGen += 1;
      inflight = new Set(missing); // a newer request cancels what the kernel had left of the older one
      model.send({ type: "ahead", positions: missing, gen: aheadGen });
    }

    // raw RGB for a page from this machine (bytes are cheap, decoding is the cost), JPEG otherwise
    const LOOPBACK = ["localhost", "127.0.0.1", "::1", "[::1]"];
    function wantRaw() {
      const f = model.get("frame_format");
      return f === "raw" || (f === "auto" && LOOPBACK.includes(location.hostname));
    }

    function request(t) {
      if (!model.get("has_video")) return;
      if (pending !== null) {
        wanted = t;
        return;
      }
      pending = ++reqId;
      sentAt = performance.now();
      model.send({ type: "frame", t, id: pending, raw: wantRaw() });
    }

    // transport round trip without a frame, for benchmarks/scrubber_latency.py
    const pings = new Map();
    root.emonbPing = () => new Promise((resolve) => {
      const id = ++reqId;
      pings.set(id, { resolve, at: performance.now() });
      model.send({ type: "ping", id });
    });

    async function onMessage(content, buffers) {
      if (content && content.type === "pong" && pings.has(content.id)) {
        const p = pings.get(content.id);
        pings.delete(content.id);
        p.resolve(performance.now() - p.at);
        return;
      }
      if (!content) return;
      if (content.type === "times") {
        if (buffers && buffers.length) {
          const b = buffers[0];
          const bytes = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength); // aligned copy
          times = new Float64Array(bytes);
        }
        return;
      }
      if (content.type === "ahead") {
        if (!buffers || !content.frames || buffers.length !== content.frames.length) return;
        const bmps = await Promise.all(buffers.map(decodeJpeg));
        const now = currentPos();
        content.frames.forEach((f, i) => {
          inflight.delete(f.position);
          cache.set(f.position, { bmp: bmps[i], overlay: f.overlay, frameTime: f.frame_time });
        });
        // the frame asked for arrived ahead of its own reply: draw it now
        const entry = cache.has(now) && now !== shownPos ? cache.get(now) : null;
        if (entry && content.frames.some((f) => f.position === now)) {
          show(entry, now, lastInput === null ? null : { roundtrip: 0, server: 0, decode: 0, cached: 1 });
        }
        return;
      }
      if (content.type !== "frame") return;
      if (content.id !== pending) return;
      const repliedAt = performance.now();
      try {
        if (content.error) {
          msg.textContent = content.error;
          msg.style.display = "block";
        } else if (buffers && buffers.length) {
          const entry = { overlay: content.overlay, frameTime: content.frame_time };
          if (content.format === "rgb") entry.img = rgbImage(buffers[0], canvas.width, canvas.height);
          else entry.bmp = await decodeJpeg(buffers[0]);
          const decodedAt = performance.now();
          const pos = content.position;
          for (const p of content.ahead || []) if (!cache.has(p)) inflight.add(p); // sent unasked
          const now = currentPos();
          // draw it unless it is already on screen (it came ahead of its own reply) or the slider has
          // meanwhile moved to a frame drawn from the cache; a frame drawn twice would count as a new
          // frame for a slider that has since moved on
          if (pos !== shownPos && (now < 0 || now === pos || !cache.has(now))) {
            show(entry, pos, { roundtrip: repliedAt - sentAt, server: content.server_ms,
                               decode: decodedAt - repliedAt, queued: sentAt - (lastInput ?? sentAt), cached: 0 });
          }
          if (cache.capacity > 0 && pos !== undefined) cache.set(pos, entry);
          else if (entry.bmp) entry.bmp.close();
        }
      } finally {
        pending = null;
        if (wanted !== null) {
          const t = wanted;
          wanted = null;
          request(t);
        } else {
          askAhead(currentPos());
        }
      }
    }

    function onTime() {
      const t = model.get("current_time");
      if (document.activeElement !== slider || !slider.matches(":active")) slider.value = String(t);
      clock.textContent = `${fmt(t)} / ${fmt(model.get("start") + model.get("duration"))}`;
      root.dataset.currentTime = String(t);
      chart.push();
      if (times && cache.capacity > 0) {
        const pos = framePosition(times, t);
        const hit = cache.get(pos);
        if (hit) {
          wanted = null; // a reply still in flight is cached, not drawn over this one
          const at = performance.now();
          show(hit, pos, { roundtrip: 0, server: 0, decode: 0, queued: at - (lastInput ?? at), cached: 1 });
          return;
        }
      }
      request(t);
    }

    // current_time changes here at once (frame, clock, cursor); the kernel (and the widgets linked to
    // it there: AU inspector, annotator) hears of it at most every SYNC_MS while dragging or playing,
    // always including the last value, so a drag does not queue a state update per input event.
    const SYNC_MS = 60;
    let lastSync = -Infinity;
    let syncTimer = null;
    function syncTime() {
      const wait = lastSync + SYNC_MS - performance.now();
      if (wait <= 0) {
        clearTimeout(syncTimer);
        syncTimer = null;
        lastSync = performance.now();
        model.save_changes();
      } else if (syncTimer === null) {
        syncTimer = setTimeout(() => {
          syncTimer = null;
          syncTime();
        }, wait);
      }
    }

    function setTime(t) {
      const lo = model.get("start");
      const hi = lo + model.get("duration");
      model.set("current_time", Math.min(Math.max(t, lo), hi));
      syncTime();
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
      syncTime();
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
    const onOverlay = () => {
      cache.clear(); // cached frames carry the overlay they were sent with
      inflight = new Set();
      shownPos = -1;
      request(model.get("current_time"));
    };
    model.on("change:show_overlay", onOverlay);
    const chart = timelines(box, model, setTime);
    const onTracks = () => chart.build();
    const onRange = () => chart.push();
    model.on("change:timeline_spec", onTracks);
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
      if (syncTimer !== null) {
        clearTimeout(syncTimer);
        model.save_changes(); // the last position is not lost
      }
      cache.clear();
      model.off("change:show_overlay", onOverlay);
      model.off("msg:custom", onMessage);
      model.off("change:current_time", onTime);
      model.off("change:playing", onPlaying);
      model.off("change:message", onSetup);
      model.off("change:width", onSetup);
      model.off("change:duration", onSetup);
      model.off("change:timeline_spec", onTracks);
      chart.destroy();
      model.off("change:range_start", onRange);
      model.off("change:range_end", onRange);
    };
  },
};
