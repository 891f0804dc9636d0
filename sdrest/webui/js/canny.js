// Canny edges, in the browser: the control image a Canny ControlNet expects (white edges on black), made from any
// picture. The same steps as OpenCV's: grey, a Gaussian blur, Sobel gradients, thinning to the local maxima along
// the gradient, and the two thresholds joined by hysteresis. The server has no preprocessing of its own.

function grey(data, n) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 1) out[i] = 0.299 * data[4 * i] + 0.587 * data[4 * i + 1] + 0.114 * data[4 * i + 2];
  return out;
}

/** A 5x5 Gaussian blur (sigma 1.4), as two 1-d passes, edges clamped. */
function blur(src, w, h) {
  const k = [2, 4, 5, 4, 2].map((v) => v / 17);
  const tmp = new Float32Array(src.length);
  const out = new Float32Array(src.length);
  const clamp = (v, hi) => (v < 0 ? 0 : v > hi ? hi : v);
  for (let y = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1) {
      let s = 0;
      for (let i = -2; i <= 2; i += 1) s += k[i + 2] * src[y * w + clamp(x + i, w - 1)];
      tmp[y * w + x] = s;
    }
  }
  for (let y = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1) {
      let s = 0;
      for (let i = -2; i <= 2; i += 1) s += k[i + 2] * tmp[clamp(y + i, h - 1) * w + x];
      out[y * w + x] = s;
    }
  }
  return out;
}

/** The edges of `image` (an ImageData) as a new ImageData: white where an edge is, black elsewhere. `low` and
 * `high` are the hysteresis thresholds on the gradient's magnitude (OpenCV's usual 100 and 200 by default). */
export function canny(image, low = 100, high = 200) {
  const { width: w, height: h, data } = image;
  const n = w * h;
  const g = blur(grey(data, n), w, h);
  const mag = new Float32Array(n);
  const dir = new Uint8Array(n);  // 0: horizontal gradient, 1: 45°, 2: vertical, 3: 135°
  for (let y = 1; y < h - 1; y += 1) {
    for (let x = 1; x < w - 1; x += 1) {
      const i = y * w + x;
      const gx = -g[i - w - 1] - 2 * g[i - 1] - g[i + w - 1] + g[i - w + 1] + 2 * g[i + 1] + g[i + w + 1];
      const gy = -g[i - w - 1] - 2 * g[i - w] - g[i - w + 1] + g[i + w - 1] + 2 * g[i + w] + g[i + w + 1];
      mag[i] = Math.hypot(gx, gy);
      const angle = ((Math.atan2(gy, gx) * 180) / Math.PI + 180) % 180;
      dir[i] = angle < 22.5 || angle >= 157.5 ? 0 : angle < 67.5 ? 1 : angle < 112.5 ? 2 : 3;
    }
  }
  const state = new Uint8Array(n);  // 0 none, 1 weak, 2 strong
  const stack = [];
  const offsets = [[1, 0], [1, 1], [0, 1], [-1, 1]];
  for (let y = 1; y < h - 1; y += 1) {
    for (let x = 1; x < w - 1; x += 1) {
      const i = y * w + x;
      const m = mag[i];
      if (m < low) continue;
      const [dx, dy] = offsets[dir[i]];
      if (m < mag[i + dy * w + dx] || m < mag[i - dy * w - dx]) continue;
      if (m >= high) {
        state[i] = 2;
        stack.push(i);
      } else state[i] = 1;
    }
  }
  while (stack.length) {
    const i = stack.pop();
    for (const d of [-w - 1, -w, -w + 1, -1, 1, w - 1, w, w + 1]) {
      if (state[i + d] === 1) {
        state[i + d] = 2;
        stack.push(i + d);
      }
    }
  }
  const out = new ImageData(w, h);
  for (let i = 0; i < n; i += 1) {
    const v = state[i] === 2 ? 255 : 0;
    out.data[4 * i] = v;
    out.data[4 * i + 1] = v;
    out.data[4 * i + 2] = v;
    out.data[4 * i + 3] = 255;
  }
  return out;
}

/** The Canny edges of the image at `url` (a data URL), as a PNG data URL of the same size. */
export async function cannyDataURL(url, low, high) {
  const img = new Image();
  img.src = url;
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(img, 0, 0);
  ctx.putImageData(canny(ctx.getImageData(0, 0, canvas.width, canvas.height), low, high), 0, 0);
  return canvas.toDataURL('image/png');
}
