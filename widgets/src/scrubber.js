// emonb Scrubber: the video frame at current_time with overlays, sound, play/pause at 0.25x-2x,
// frame step, slider, face selector; the timelines below. Frames arrive from the kernel in custom
// messages, only the ones asked for (a jump: the small proxy frame first, the full frame after).

import { FrameCache, aheadWanted, decodeJpeg, framePosition, rgbImage } from "./frames.js";
import { createSound } from "./playback.js";
import { keyHost, onKeys, shortcutSheet } from "./shortcuts.js";
import { timelines } from "./timeline.js";
import { button, clockText, fillSelect, h, joinGrid, whenAttached } from "./util.js";

export { FrameCache, aheadWanted, decodeJpeg, framePosition, rgbImage };

const SPEEDS = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2];

function drawOverlay(ctx, overlay) {
  if (!overlay || !overlay.faces) return;
  for (const f of overlay.faces) {
    const [x0, y0, x1, y1] = f.box;
    ctx.save();
    ctx.lineWidth = f.selected ? 2.5 : 1.5;
    ctx.strokeStyle = f.selected ? "#22d3ee" : "rgba(226,232,240,0.8)";
    if (!f.selected) ctx.setLineDash([5, 4]);
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.restore();
    if (f.landmarks && f.selected) {
      ctx.fillStyle = "#facc15";
      for (const [x, y] of f.landmarks) ctx.fillRect(x - 1, y - 1, 2, 2);
    }
    let text = f.name || `face ${f.face}`;
    if (f.emotion) text += ` · ${f.emotion} ${(100 * f.probability).toFixed(0)}%`;
    ctx.font = "12px system-ui, sans-serif";
    const w = ctx.measureText(text).width + 8;
    ctx.fillStyle = f.selected ? "rgba(8,47,73,0.85)" : "rgba(0,0,0,0.6)";
    ctx.fillRect(x0, Math.max(0, y0 - 18), w, 18);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, x0 + 4, Math.max(12, y0 - 5));
  }
}

export default {
  render({ model, el }) {
    const root = h("div", "emonb-scrubber");
    root.tabIndex = 0;
    const videoBox = h("div", "emonb-video");
    const stage = h("div", "emonb-stage");
    const canvas = h("canvas", "emonb-scrubber-canvas");
    const sheet = shortcutSheet();
    stage.append(canvas, sheet);
    const msg = h("div", "emonb-scrubber-message");
    const bar = h("div", "emonb-scrubber-controls");
    const back = button("◀|", "one frame back (←)", "emonb-step-back");
    const play = button("▶", "play / pause (space)", "emonb-play");
    const fwd = button("|▶", "one frame forward (→)", "emonb-step-fwd");
    const slider = h("input", "emonb-slider");
    slider.type = "range";
    const clock = h("span", "emonb-clock");
    const frameNo = h("span", "emonb-frame-no");
    const speed = h("select", "emonb-speed");
    speed.title = "playback speed ([ and ])";
    fillSelect(speed, SPEEDS.map((s) => ({ value: s, label: `${s}×` })), 1);
    const mute = button("mute", "mute / unmute (m)", "emonb-mute");
    const faceSel = h("select", "emonb-face");
    faceSel.title = "the face or subject shown in the AU panel and the timelines (or click a face box)";
    const keysBtn = button("?", "keyboard shortcuts (?)", "emonb-keys-btn");
    const row1 = h("div", "emonb-row");
    row1.append(back, play, fwd, slider);
    const row2 = h("div", "emonb-row emonb-row2");
    const faceLabel = h("label", "emonb-face-label");
    faceLabel.append(faceSel);
    row2.append(clock, frameNo, speed, mute, faceLabel, keysBtn);
    bar.append(row1, row2);
    const sound = createSound(model);
    videoBox.append(stage, bar, msg, sound.audio);
    const box = h("div", "emonb-timelines");
    root.append(videoBox, box);
    el.appendChild(root);

    const ctx = canvas.getContext("2d");
    let pending = null; // request in flight
    let wanted = null; // latest time asked for while one was in flight
    let reqId = 0;
    let drawn = 0;
    let lastInput = null; // performance.now() of the last slider move, for latency figures
    let proxyInput = null; // the input a proxy frame answered (its full frame follows)
    let sentAt = null; // performance.now() of the frame request in flight
    let raf = null;
    let playStart = null;
    let times = null; // frame times (Float64Array), for finding frames in the browser's cache
    let shownPos = -1;
    let shownProxy = false; // the picture on screen is the proxy frame (the full one is coming)
    let shownOverlay = null;
    let proxyInflight = new Set(); // proxy frames asked for during playback
    let fullWanted = null; // id of a request whose proxy frame is drawn and whose full frame is coming
    let playRoundtrip = 0.05; // s: recent round trip of a proxy frame during playback (moving average)
    let lastDelta = 0; // frames between the last two frames drawn (the speed of a drag)
    let prevDelta = 0; // and between the two before
    let aheadGen = 0;
    let inflight = new Set(); // positions asked for ahead and not arrived yet
    const cache = new FrameCache(model.get("browser_cache") || 0, (e) => e.bmp && e.bmp.close && e.bmp.close());
    const aheadCount = () => Math.min(Math.floor(cache.capacity / 4), 64);
    window.__emonbLatencies = window.__emonbLatencies || [];
    window.__emonbFullLatencies = window.__emonbFullLatencies || [];

    function setup() {
      const w = model.get("width") || 640;
      const hh = model.get("height") || 360;
      canvas.width = w;
      canvas.height = hh;
      videoBox.style.display = model.get("has_video") ? "" : "none";
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
      if (model.get("has_video")) model.send({ type: "times" });
      sound.ask();
    }

    function setupFaces() {
      const opts = model.get("face_options") || [];
      faceLabel.style.display = opts.length > 2 ? "" : "none"; // one face: nothing to choose
      fillSelect(faceSel, opts, model.get("face"));
    }

    // the frame due now: while the sound plays, where the sound is at this moment (current_time is
    // where it was at the last animation frame, up to a busy main thread's stall ago)
    function currentPos() {
      if (!times) return -1;
      const heard = model.get("playing") ? sound.now() : null;
      return framePosition(times, heard ?? model.get("current_time"));
    }

    function paint(entry, overlay) {
      if (entry.bmp) ctx.drawImage(entry.bmp, 0, 0, canvas.width, canvas.height);
      else ctx.putImageData(entry.img, 0, 0);
      shownOverlay = overlay;
      if (model.get("show_overlay")) drawOverlay(ctx, overlay);
    }

    // playing, a frame older than the one on screen while the clock is past both (a slow reply overtaken
    // by the cache or the read-ahead) is not drawn: the picture would step back against the sound
    // (a seek back while playing puts the clock behind the frame on screen, and its frame is drawn)
    const behind = (pos) => {
      if (!model.get("playing") || shownPos < 0 || pos >= shownPos) return false;
      return currentPos() >= shownPos;
    };

    // draw a decoded frame (with its overlay) and ask for the frames ahead of it
    function show(entry, pos, timing, proxy = false, settle = false) {
      paint(entry, entry.overlay);
      if (shownPos >= 0 && pos !== shownPos) {
        prevDelta = lastDelta;
        lastDelta = pos - shownPos;
      }
      shownPos = pos;
      shownProxy = proxy;
      drawn += 1;
      root.dataset.framesDrawn = String(drawn);
      root.dataset.frameTime = String(entry.frameTime);
      root.dataset.proxy = proxy ? "1" : "0";
      if (entry.overlay && entry.overlay.analysed_time !== undefined) root.dataset.analysedTime = String(entry.overlay.analysed_time);
      else delete root.dataset.analysedTime;
      if (times) frameNo.textContent = `frame ${pos + 1} / ${times.length}`;
      if (timing && !proxy && proxyInput !== null) {
        window.__emonbFullLatencies.push(performance.now() - proxyInput);
        proxyInput = null;
      }
      if (lastInput !== null && timing) {
        const input = lastInput;
        timing.drawn = performance.now() - input;
        timing.proxy = proxy ? 1 : 0;
        window.__emonbLatencies.push(timing.drawn);
        (window.__emonbTimings = window.__emonbTimings || []).push(timing);
        requestAnimationFrame(() => { timing.painted = performance.now() - input; });
        if (proxy) proxyInput = input;
        lastInput = null;
      }
      root.dispatchEvent(new CustomEvent("emonb-frame", { detail: { time: entry.frameTime, proxy } }));
      if (proxy && !model.get("playing")) return;
      if (settle) return; // the full frame of a jump: its caller asks ahead once the reviewer stays
      // ahead of where the slider is now: during a fast drag the frame drawn is already behind it
      const now = currentPos();
      askAhead(now >= 0 ? now : pos);
    }

    // after a jump (its proxy frame, then its full frame), the frames ahead are asked for once the
    // reviewer stays: a second click soon after does not wait behind the first one's read-ahead
    // (decoding and sending them takes the kernel and the browser about 100 ms on 2 cores)
    const SETTLE_MS = 250;
    let settleTimer = null;
    function askAheadSoon() {
      clearTimeout(settleTimer);
      const at = shownPos;
      settleTimer = setTimeout(() => {
        settleTimer = null;
        if (shownPos === at && !model.get("playing")) askAhead(currentPos());
      }, SETTLE_MS);
    }

    function askAhead(pos) {
      // not while the picture is catching up with the slider (a fast drag): frames ahead would only
      // queue behind, and in front of, the frames asked for; the kernel predicts a steady drag itself
      if (!times || pos < 0 || cache.capacity === 0 || pending !== null || wanted !== null) return;
      const full = (p) => cache.has(p) && !cache.map.get(p).proxy; // a cached proxy frame still wants its full one
      const missing = aheadWanted(pos, times.length, aheadCount(), full, inflight, lastDelta, prevDelta);
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

    // a jump (not a step, a drag or playback, whose frames the read-ahead brings): the proxy frame is
    // worth asking for
    const JUMP_FRAMES = 8;
    function isJump(t) {
      if (!model.get("proxy_ready") || !times || shownPos < 0) return model.get("proxy_ready");
      return Math.abs(framePosition(times, t) - shownPos) > JUMP_FRAMES;
    }

    function request(t) {
      if (!model.get("has_video")) return;
      if (pending !== null) {
        wanted = t;
        return;
      }
      pending = ++reqId;
      sentAt = performance.now();
      // playing and the full frame is not here: the proxy frame alone keeps the picture with the sound
      // (asked for where the sound will be when it arrives, one round trip ahead, and cached)
      const proxyOnly = model.get("playing") && model.get("proxy_ready");
      if (proxyOnly) t = Math.min(t + Math.min(playRoundtrip, 0.25) * (model.get("speed") || 1), end());
      model.send({ type: "frame", t, id: pending, raw: wantRaw(), proxy: isJump(t), proxy_only: proxyOnly });
    }

    // transport round trip without a frame, for benchmarks/scrubber_latency.py
    const pings = new Map();
    root.emonbPing = () => new Promise((resolve) => {
      const id = ++reqId;
      pings.set(id, { resolve, at: performance.now() });
      model.send({ type: "ping", id });
    });

    async function onMessage(content, buffers) {
      if (!content) return;
      if (content.type === "pong" && pings.has(content.id)) {
        const p = pings.get(content.id);
        pings.delete(content.id);
        p.resolve(performance.now() - p.at);
        return;
      }
      if (sound.onMessage(content, buffers)) return;
      if (content.type === "times") {
        if (buffers && buffers.length) {
          const b = buffers[0];
          const bytes = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength); // aligned copy
          times = new Float64Array(bytes);
          root.dataset.nFrames = String(times.length);
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
        // (during playback a full frame does not redraw the proxy of the same frame: the next frame is due)
        const entry = cache.has(now) && (now !== shownPos || (shownProxy && !model.get("playing"))) ? cache.get(now) : null;
        if (entry && content.frames.some((f) => f.position === now)) {
          show(entry, now, lastInput === null ? null : { roundtrip: 0, server: 0, decode: 0, cached: 1 });
        }
        return;
      }
      if (content.type === "proxies") {
        // proxy frames for playback: cached (a full frame there wins), the current one drawn
        if (!buffers || !content.frames || buffers.length !== content.frames.length) return;
        const bmps = await Promise.all(buffers.map(decodeJpeg));
        const now = currentPos();
        content.frames.forEach((f, i) => {
          proxyInflight.delete(f.position);
          const have = cache.has(f.position) && !cache.map.get(f.position).proxy;
          if (have || cache.capacity === 0) { if (bmps[i].close) bmps[i].close(); return; }
          cache.set(f.position, { bmp: bmps[i], overlay: f.overlay, frameTime: f.frame_time, proxy: true });
        });
        if (model.get("playing") && now !== shownPos && cache.has(now)) show(cache.get(now), now, null, !!cache.map.get(now).proxy);
        return;
      }
      if (content.type === "proxy") {
        // the small all-intra frame of a jump: drawn at once, the full frame follows
        if (content.id !== pending || !buffers || !buffers.length) return;
        const repliedAt = performance.now();
        try {
          const bmp = await decodeJpeg(buffers[0]);
          const now = currentPos();
          if (content.final) {
            playRoundtrip = 0.7 * playRoundtrip + 0.3 * ((repliedAt - sentAt) / 1000);
            const entry = { bmp, overlay: content.overlay, frameTime: content.frame_time, proxy: true };
            const full = cache.has(content.position) && !cache.map.get(content.position).proxy;
            if (!full && cache.capacity > 0) cache.set(content.position, entry);
            if (!full && content.position === now && now !== shownPos) show(entry, now, null, true);
            if (full || cache.capacity === 0) { if (bmp.close) bmp.close(); }
            return;
          }
          // drawn unless a newer picture is there (the rule of the full frames: while the slider runs
          // ahead of the frames, the latest frame to arrive is drawn)
          const late = (content.position === shownPos && !shownProxy) ||
            (now >= 0 && now !== content.position && cache.has(now));
          if (content.id === pending && !late) {
            show({ bmp, overlay: content.overlay, frameTime: content.frame_time }, content.position,
              { roundtrip: repliedAt - sentAt, server: content.server_ms, decode: performance.now() - repliedAt,
                queued: sentAt - (lastInput ?? sentAt), cached: 0 }, true);
          }
          if (bmp.close) bmp.close();
          if (!content.final && content.id === pending) {
            // the full frame follows from the kernel's background thread; the next jump may go now
            fullWanted = pending;
            pending = null;
            if (wanted !== null) {
              const t = wanted;
              wanted = null;
              request(t);
            }
          }
        } finally {
          if (content.final && content.id === pending) {
            pending = null; // no full frame follows: the next request may go
            if (wanted !== null) {
              const t = wanted;
              wanted = null;
              request(t);
            } else askAhead(currentPos());
          }
        }
        return;
      }
      if (content.type !== "frame") return;
      const followsProxy = content.id === fullWanted && content.id !== pending;
      if (content.id !== pending && !followsProxy) return;
      if (followsProxy) fullWanted = null;
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
          // (the full frame after a proxy frame only replaces that proxy frame, never a newer picture)
          const current = followsProxy ? now === pos : (now < 0 || now === pos || !cache.has(now));
          if ((pos !== shownPos || (shownProxy && !model.get("playing"))) && current && !behind(pos)) {
            show(entry, pos, { roundtrip: repliedAt - sentAt, server: content.server_ms,
                               decode: decodedAt - repliedAt, queued: sentAt - (lastInput ?? sentAt), cached: 0 },
                 false, followsProxy);
          }
          if (cache.capacity > 0 && pos !== undefined) cache.set(pos, entry);
          else if (entry.bmp && entry.bmp.close) entry.bmp.close();
        }
      } finally {
        if (!followsProxy) {
          pending = null;
          if (wanted !== null) {
            const t = wanted;
            wanted = null;
            request(t);
          } else {
            askAhead(currentPos());
          }
        } else if (pending === null && wanted === null) {
          askAheadSoon();
        }
      }
    }

    function onTime() {
      const t = model.get("current_time");
      if (unsent !== null && t !== unsent) {
        // a time from the kernel while the reviewer's newer one waits to be sent (an echo of an
        // earlier one, say): the reviewer's stands, and reaches the kernel with the next sync
        model.set("current_time", unsent);
        return;
      }
      if (document.activeElement !== slider || !slider.matches(":active")) slider.value = String(t);
      clock.textContent = `${clockText(t)} / ${clockText(model.get("start") + model.get("duration"))}`;
      root.dataset.currentTime = String(t);
      chart.push();
      if (model.get("playing")) chart.follow(t);
      else sound.follow(t, false);
      if (times && cache.capacity > 0) {
        // (playing, the frame is the sound's: a current_time that comes back from the kernel while
        // playing is older than the sound, and drawn it would step the picture back)
        const pos = currentPos();
        const hit = cache.get(pos);
        if (hit && (!hit.proxy || model.get("playing"))) {
          wanted = null; // a reply still in flight is cached, not drawn over this one
          if (pos === shownPos && (!shownProxy || hit.proxy)) return;
          const at = performance.now();
          show(hit, pos, { roundtrip: 0, server: 0, decode: 0, queued: at - (lastInput ?? at), cached: 1 }, !!hit.proxy);
          return; // (a proxy frame during playback: its full frame comes ahead, if the kernel keeps up)
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
    // while the picture of a jump is on its way (paused, a frame asked for and not drawn yet), the
    // kernel and the linked widgets hear of the new time once it is drawn (at most HOLD_MS later):
    // their updates would otherwise compete with the frame on a small machine
    const HOLD_MS = 150;
    let holdSince = null;
    let unsent = null; // a time the reviewer set that the kernel has not been sent yet
    function save() {
      unsent = null; // save_changes sends every attribute set here, current_time among them
      model.save_changes();
    }
    function syncTime() {
      const now = performance.now();
      const hold = pending !== null && !model.get("playing");
      if (!hold) holdSince = null;
      else if (holdSince === null) holdSince = now;
      const held = hold && now - holdSince < HOLD_MS;
      const wait = held ? 10 : lastSync + SYNC_MS - now;
      if (wait <= 0) {
        holdSince = null;
        clearTimeout(syncTimer);
        syncTimer = null;
        lastSync = performance.now();
        save();
      } else if (syncTimer === null) {
        syncTimer = setTimeout(() => {
          syncTimer = null;
          syncTime();
        }, wait);
      }
    }

    const end = () => model.get("start") + model.get("duration");
    function setTime(t) {
      const lo = model.get("start");
      unsent = Math.min(Math.max(t, lo), end());
      model.set("current_time", unsent);
      syncTime();
      if (model.get("playing")) {
        playStart = null; // playback goes on from here
        sound.follow(model.get("current_time"), true);
      }
    }

    // playback keeps the proxy frames of the next second in the browser (they cost the kernel
    // nothing), so the picture stays with the sound when full frames cannot keep up
    function proxiesAhead(t, rate) {
      if (!times || !model.get("proxy_ready") || cache.capacity === 0) return;
      const a = framePosition(times, t);
      const b = Math.min(framePosition(times, t + 1.0 * rate), times.length - 1);
      const missing = [];
      for (let p = a; p <= b && missing.length < 48; p++) if (!cache.has(p) && !proxyInflight.has(p)) missing.push(p);
      if (!missing.length || (missing.length < 6 && missing[0] > a + 6)) return;
      for (const p of missing) proxyInflight.add(p);
      model.send({ type: "proxies", positions: missing });
    }

    // playback: the sound is the clock while it plays, else the wall clock times the speed
    function tick(now) {
      if (!model.get("playing")) return;
      const rate = model.get("speed") || 1;
      let t = sound.now();
      if (t === null) {
        if (playStart === null || playStart.rate !== rate) playStart = { wall: now, t: model.get("current_time"), rate };
        t = playStart.t + ((now - playStart.wall) / 1000) * rate;
      } else {
        playStart = null;
      }
      if (t >= end()) {
        model.set("playing", false);
        save();
        return;
      }
      unsent = null; // playing, the sound owns the time
      model.set("current_time", t);
      proxiesAhead(t, rate);
      sound.follow(t, true);
      const a = sound.now();
      if (a !== null) root.dataset.audioTime = String(a);
      syncTime();
      raf = requestAnimationFrame(tick);
    }

    function onPlaying() {
      const p = model.get("playing");
      play.textContent = p ? "❚❚" : "▶";
      play.classList.toggle("on", p);
      if (p) {
        playStart = null;
        proxyInflight = new Set();
        sound.follow(model.get("current_time"), true);
        raf = requestAnimationFrame(tick);
      } else {
        sound.stop();
        if (raf !== null) cancelAnimationFrame(raf);
        raf = null;
      }
    }

    function onSound() {
      speed.value = String(model.get("speed"));
      mute.textContent = model.get("muted") ? "unmute" : "mute";
      mute.classList.toggle("on", model.get("muted"));
      mute.disabled = !model.get("has_audio");
      mute.title = model.get("has_audio") ? "mute / unmute (m)" : "this session has no sound";
      sound.settings();
      playStart = null;
    }

    const togglePlay = () => {
      model.set("playing", !model.get("playing"));
      save();
    };
    const step = (n) => model.send({ type: "step", n });
    const jump = (s) => {
      lastInput = performance.now();
      setTime(model.get("current_time") + s);
    };
    const setSpeed = (d) => {
      const i = SPEEDS.indexOf(model.get("speed"));
      const j = Math.min(Math.max((i < 0 ? 3 : i) + d, 0), SPEEDS.length - 1);
      model.set("speed", SPEEDS[j]);
      save();
    };
    const toggleSheet = () => { sheet.hidden = !sheet.hidden; };
    slider.addEventListener("input", () => {
      lastInput = performance.now();
      setTime(parseFloat(slider.value));
    });
    play.addEventListener("click", togglePlay);
    back.addEventListener("click", () => step(-1));
    fwd.addEventListener("click", () => step(1));
    speed.addEventListener("change", () => {
      model.set("speed", parseFloat(speed.value));
      save();
    });
    mute.addEventListener("click", () => {
      model.set("muted", !model.get("muted"));
      save();
    });
    faceSel.addEventListener("change", () => {
      model.set("face", faceSel.value);
      save();
    });
    keysBtn.addEventListener("click", toggleSheet);
    sheet.addEventListener("click", toggleSheet);
    // a click on a face box selects that face
    canvas.addEventListener("click", (e) => {
      if (!shownOverlay || !shownOverlay.faces) return;
      const r = canvas.getBoundingClientRect();
      const x = ((e.clientX - r.left) / r.width) * canvas.width;
      const y = ((e.clientY - r.top) / r.height) * canvas.height;
      const hit = shownOverlay.faces.find((f) => x >= f.box[0] && x <= f.box[2] && y >= f.box[1] && y <= f.box[3]);
      if (hit && hit.key !== undefined && model.get("face") !== hit.key) {
        model.set("face", String(hit.key));
        save();
      }
    });
    let offKeys = () => {};
    const keyMap = {
      space: togglePlay,
      ArrowLeft: () => step(-1),
      ArrowRight: () => step(1),
      "shift+ArrowLeft": () => jump(-1),
      "shift+ArrowRight": () => jump(1),
      Home: () => setTime(model.get("start")),
      End: () => setTime(end()),
      "[": () => setSpeed(-1),
      "]": () => setSpeed(1),
      m: () => mute.click(),
      "?": toggleSheet,
      "+": () => chart.zoom(0.5),
      "=": () => chart.zoom(0.5),
      "-": () => chart.zoom(2),
      "0": () => chart.fit(),
    };
    const stopWaiting = whenAttached(el, () => {
      root.dataset.inGrid = joinGrid(el, root) ? "1" : "0";
      offKeys = onKeys(keyHost(el, root), keyMap);
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
    model.on("change:face", onOverlay); // the selected face's box is drawn differently
    const chart = timelines(box, model, (t) => {
      lastInput = performance.now();
      setTime(t);
    });
    const onTracks = () => chart.build();
    const onRange = () => chart.push();
    const onTiers = () => chart.updateTiers();
    const onFaces = () => setupFaces();
    const onProxy = () => { root.dataset.proxyReady = model.get("proxy_ready") ? "1" : "0"; };
    const onSetup = () => setup();
    const handlers = [
      ["change:timeline_spec", onTracks], ["change:range_start", onRange], ["change:range_end", onRange],
      ["change:tiers", onTiers], ["change:proxy_ready", onProxy], ["change:face_options", onFaces], ["change:face", onFaces],
      ["change:speed", onSound], ["change:muted", onSound], ["change:has_audio", onSound],
      ["change:message", onSetup], ["change:width", onSetup], ["change:duration", onSetup],
    ];
    for (const [ev, fn] of handlers) model.on(ev, fn);
    setup();
    setupFaces();
    onProxy();
    onSound();
    onTracks();
    onTime();

    return () => {
      if (raf !== null) cancelAnimationFrame(raf);
      if (syncTimer !== null) {
        clearTimeout(syncTimer);
        save(); // the last position is not lost
      }
      cache.clear();
      stopWaiting();
      offKeys();
      sound.destroy();
      model.off("change:show_overlay", onOverlay);
      model.off("change:face", onOverlay);
      model.off("msg:custom", onMessage);
      model.off("change:current_time", onTime);
      model.off("change:playing", onPlaying);
      for (const [ev, fn] of handlers) model.off(ev, fn);
      chart.destroy();
    };
  },
};
