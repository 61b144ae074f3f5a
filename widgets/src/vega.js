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

export function loadVega(model) {
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

