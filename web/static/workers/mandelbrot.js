// geckohost demo worker: mandelbrot. Send a JSON tile request
//   {"w":256,"h":160,"x":-0.75,"y":0,"scale":3,"iter":200}
// (width and height in pixels, centre x/y, scale = width of the view in the
// complex plane, iteration limit). The worker computes the tile in the remote
// Gecko and answers with one binary message: 8 bytes of little-endian float64
// (milliseconds spent computing) then w*h bytes, the escape time of each pixel
// scaled to 0..255 (255 = inside the set).
"use strict";

function tile(w, h, x, y, scale, iter) {
  const out = new ArrayBuffer(8 + w * h);
  const px = new Uint8Array(out, 8);
  const step = scale / w;
  const x0 = x - (w / 2) * step;
  const y0 = y - (h / 2) * step;
  for (let j = 0; j < h; j++) {
    const ci = y0 + j * step;
    for (let i = 0; i < w; i++) {
      const cr = x0 + i * step;
      let zr = 0, zi = 0, k = 0;
      while (k < iter && zr * zr + zi * zi <= 4) {
        const t = zr * zr - zi * zi + cr;
        zi = 2 * zr * zi + ci;
        zr = t;
        k++;
      }
      px[j * w + i] = k >= iter ? 255 : Math.floor((k / iter) * 254);
    }
  }
  return out;
}

self.onmessage = (e) => {
  let req;
  try {
    req = JSON.parse(typeof e.data === "string" ? e.data : "");
  } catch {
    self.postMessage(JSON.stringify({ error: 'send a JSON tile request, e.g. {"w":256,"h":160,"x":-0.75,"y":0,"scale":3,"iter":200}' }));
    return;
  }
  const clamp = (v, lo, hi, d) => (Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : d);
  const w = Math.round(clamp(req.w, 1, 1024, 256));
  const h = Math.round(clamp(req.h, 1, 1024, 160));
  const iter = Math.round(clamp(req.iter, 1, 5000, 200));
  const t0 = performance.now();
  const buf = tile(w, h, clamp(req.x, -4, 4, -0.75), clamp(req.y, -4, 4, 0), clamp(req.scale, 1e-12, 8, 3), iter);
  new DataView(buf).setFloat64(0, performance.now() - t0, true);
  self.postMessage(buf, [buf]);
};
