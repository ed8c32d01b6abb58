#!/usr/bin/env node
// PGM/PPM helpers for the demo (binary P5/P6, 8-bit):
//   node pnm.mjs scene W H OUT.ppm   draws a test picture: a sky gradient, a sun, hills
//   node pnm.mjs show FILE           prints its format and size, then the picture as text (at most 64 columns)
import { readFileSync, writeFileSync } from "node:fs";

const [cmd, ...args] = process.argv.slice(2);
if (cmd === "scene") {
  const [w, h] = args.map(Number);
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const sun = Math.hypot(x - w * 0.72, y - h * 0.3) < h * 0.14;
      const hill = y > h * (0.62 + 0.12 * Math.sin((x / w) * Math.PI * 3));
      const rgb = sun ? [250, 220, 60] : hill ? [40, 120 + (y % 16), 50] : [90 + (y * 100) / h, 150 + (y * 60) / h, 240];
      rgb.forEach((v, c) => (px[(y * w + x) * 3 + c] = v));
    }
  writeFileSync(args[2], Buffer.concat([Buffer.from(`P6\n${w} ${h}\n255\n`), px]));
} else if (cmd === "show") {
  const buf = readFileSync(args[0]);
  const m = /^P([56])\s+(\d+)\s+(\d+)\s+255\s/.exec(buf.subarray(0, 64).toString("latin1"));
  if (!m) throw new Error(`${args[0]}: not a binary PGM/PPM`);
  const [ch, w, h] = [m[1] === "6" ? 3 : 1, Number(m[2]), Number(m[3])];
  const data = buf.subarray(m[0].length);
  console.log(`${ch === 3 ? "PPM (colour)" : "PGM (grey)"} ${w}x${h}, ${buf.length} bytes`);
  const cols = Math.min(64, w), rows = Math.max(1, Math.round((h * cols) / w / 2));
  const ramp = " .:-=+*#%@";
  for (let r = 0; r < rows; r++) {
    let line = "";
    for (let c = 0; c < cols; c++) {
      const i = (Math.floor((r * h) / rows) * w + Math.floor((c * w) / cols)) * ch;
      const v = ch === 3 ? 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2] : data[i];
      line += ramp[Math.min(9, Math.floor((v / 256) * 10))];
    }
    console.log("  " + line.trimEnd());
  }
} else {
  console.error("usage: pnm.mjs scene W H OUT.ppm | show FILE");
  process.exit(2);
}
