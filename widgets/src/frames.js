// Frame cache and transport helpers shared by the widgets (exported for tests/test_widgets_js.py).

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

