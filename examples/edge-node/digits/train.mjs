#!/usr/bin/env node
// Trains the digit classifier that the `digits` app runs: a tiny multilayer
// perceptron (64 inputs -> 32 ReLU -> 10 softmax) on the 8x8 handwritten
// digits of UCI's "Optical Recognition of Handwritten Digits" (1,797 images,
// pixels 0..16; E. Alpaydin, C. Kaynak, 1998, CC BY 4.0), as Debian's
// python3-sklearn ships them (sklearn/datasets/data/digits.csv.gz).
// Deterministic: the same data gives the same weights, byte for byte.
//
//   node examples/edge-node/digits/train.mjs [digits.csv.gz]
//
// Without an argument it reads Debian's copy; the package need not be
// installed (`apt-get download python3-sklearn && dpkg-deb -x python3-sklearn_*.deb x`
// then pass x/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz).
// Writes, next to this script:
//   model/mlp.bin        "MLP1", u32 inputs, hidden, classes, then float32 (little-endian)
//                        W1[hidden][inputs], b1[hidden], W2[classes][hidden], b2[classes]
//   samples/digits.txt   the first two images of each digit from the held-out split,
//                        one per line: "LABEL P0 P1 ... P63"
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = process.argv[2] ?? "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";
const rows = gunzipSync(readFileSync(source)).toString().trim().split("\n").map((l) => l.split(",").map(Number));
if (rows.length !== 1797 || rows.some((r) => r.length !== 65)) throw new Error(`${source}: expected 1797 rows of 64 pixels and a label`);

// mulberry32: a small seeded PRNG, so runs are reproducible.
let seed = 12;
const rand = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const order = rows.map((_, i) => i);
for (let i = order.length - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [order[i], order[j]] = [order[j], order[i]];
}
const data = order.map((i) => ({ x: rows[i].slice(0, 64).map((v) => v / 16), y: rows[i][64], raw: rows[i] }));
const test = data.slice(0, 297);
const train = data.slice(297);

const IN = 64, HID = 32, OUT = 10;
const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
const W1 = Float32Array.from({ length: HID * IN }, () => gauss() * Math.sqrt(2 / IN));
const b1 = new Float32Array(HID);
const W2 = Float32Array.from({ length: OUT * HID }, () => gauss() * Math.sqrt(2 / HID));
const b2 = new Float32Array(OUT);

// The same arithmetic as digits.c (float32 weights, ReLU, argmax).
function forward(x) {
  const h = new Float64Array(HID);
  for (let j = 0; j < HID; j++) {
    let s = b1[j];
    for (let i = 0; i < IN; i++) s += W1[j * IN + i] * x[i];
    h[j] = s > 0 ? s : 0;
  }
  const z = new Float64Array(OUT);
  for (let k = 0; k < OUT; k++) {
    let s = b2[k];
    for (let j = 0; j < HID; j++) s += W2[k * HID + j] * h[j];
    z[k] = s;
  }
  return { h, z };
}
const predict = (x) => {
  const { z } = forward(x);
  return z.indexOf(Math.max(...z));
};
const accuracy = (set) => set.filter((d) => predict(d.x) === d.y).length / set.length;

// Plain SGD on softmax cross-entropy, with a decaying learning rate.
for (let epoch = 0; epoch < 60; epoch++) {
  const lr = 0.05 / (1 + epoch * 0.05);
  for (let n = train.length - 1; n > 0; n--) {
    const m = Math.floor(rand() * (n + 1));
    [train[n], train[m]] = [train[m], train[n]];
  }
  for (const { x, y } of train) {
    const { h, z } = forward(x);
    const max = Math.max(...z);
    const e = z.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    const dz = e.map((v, k) => v / sum - (k === y ? 1 : 0));
    const dh = new Float64Array(HID);
    for (let k = 0; k < OUT; k++) {
      for (let j = 0; j < HID; j++) {
        dh[j] += W2[k * HID + j] * dz[k];
        W2[k * HID + j] -= lr * dz[k] * h[j];
      }
      b2[k] -= lr * dz[k];
    }
    for (let j = 0; j < HID; j++) {
      if (h[j] <= 0) continue;
      for (let i = 0; i < IN; i++) W1[j * IN + i] -= lr * dh[j] * x[i];
      b1[j] -= lr * dh[j];
    }
  }
}

mkdirSync(join(here, "model"), { recursive: true });
mkdirSync(join(here, "samples"), { recursive: true });
const header = new Uint32Array([IN, HID, OUT]);
writeFileSync(join(here, "model", "mlp.bin"), Buffer.concat([Buffer.from("MLP1"), Buffer.from(header.buffer), ...[W1, b1, W2, b2].map((a) => Buffer.from(a.buffer))]));
const samples = [];
for (let digit = 0; digit < 10; digit++) samples.push(...test.filter((d) => d.y === digit).slice(0, 2));
writeFileSync(join(here, "samples", "digits.txt"), samples.map((d) => `${d.y} ${d.raw.slice(0, 64).join(" ")}`).join("\n") + "\n");
console.log(`trained on ${train.length} images: train accuracy ${(accuracy(train) * 100).toFixed(1)}%, held-out ${(accuracy(test) * 100).toFixed(1)}% of ${test.length}`);
console.log(`bundled samples: ${samples.filter((d) => predict(d.x) === d.y).length}/${samples.length} correct`);
