// A tolerant comparison of two screenshots, for the reviewed golden screenshots of tests/reduce_html.rs.
// Pixel-exact comparison breaks on a different font rasteriser or antialiasing, so both images are reduced to
// the mean luminance of 8x8 blocks, and they match when at most MAX_CHANGED of the blocks differ by more
// than BLOCK_TOLERANCE (of 255). A moved label, edge or panel changes whole blocks and fails; a glyph drawn a
// little differently does not.
import { readFileSync } from "node:fs";
import { inflateSync } from "node:zlib";

export const BLOCK = 8;
export const BLOCK_TOLERANCE = 24;
export const MAX_CHANGED = 0.005;

// Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes) to luminance per pixel.
export function luminance(path) {
  const bytes = readFileSync(path);
  let offset = 8, width = 0, height = 0, channels = 0;
  const data = [];
  while (offset < bytes.length) {
    const length = bytes.readUInt32BE(offset), type = bytes.toString("latin1", offset + 4, offset + 8);
    const body = bytes.subarray(offset + 8, offset + 8 + length);
    if (type === "IHDR") {
      width = body.readUInt32BE(0); height = body.readUInt32BE(4);
      const [depth, colour, , , interlace] = body.subarray(8, 13);
      channels = { 2: 3, 6: 4 }[colour];
      if (depth !== 8 || !channels || interlace) throw new Error(`${path}: not an 8-bit RGB(A) non-interlaced PNG`);
    } else if (type === "IDAT") data.push(body);
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(data)), stride = width * channels, out = new Float64Array(width * height);
  let previous = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? row[i - channels] : 0, b = previous[i], c = i >= channels ? previous[i - channels] : 0;
      const predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter];
      row[i] = (line[i] + predictor) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      const p = x * channels;
      out[y * width + x] = 0.299 * row[p] + 0.587 * row[p + 1] + 0.114 * row[p + 2];
    }
    previous = row;
  }
  return { width, height, pixels: out };
}

function paeth(a, b, c) {
  const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

function blocks(image) {
  const cols = Math.ceil(image.width / BLOCK), rows = Math.ceil(image.height / BLOCK);
  const sum = new Float64Array(cols * rows), count = new Float64Array(cols * rows);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const i = Math.floor(y / BLOCK) * cols + Math.floor(x / BLOCK);
      sum[i] += image.pixels[y * image.width + x];
      count[i] += 1;
    }
  }
  return sum.map((s, i) => s / count[i]);
}

// {matches, changed (fraction of blocks), size} of `actual` against `golden`.
export function compare(actual, golden) {
  const a = luminance(actual), g = luminance(golden);
  if (a.width !== g.width || a.height !== g.height) {
    return { matches: false, changed: 1, reason: `size ${a.width}x${a.height}, golden ${g.width}x${g.height}` };
  }
  const ba = blocks(a), bg = blocks(g);
  const changed = ba.filter((v, i) => Math.abs(v - bg[i]) > BLOCK_TOLERANCE).length / ba.length;
  return { matches: changed <= MAX_CHANGED, changed, reason: `${(changed * 100).toFixed(2)}% of ${BLOCK}x${BLOCK} blocks ` +
    `differ by more than ${BLOCK_TOLERANCE}/255 in mean luminance (at most ${MAX_CHANGED * 100}% may)` };
}
