#!/usr/bin/env node
// Builds native/file-times, the N-API addon that sets file times to the
// nanosecond (utimensat/futimens with UTIME_OMIT and UTIME_NOW), with the
// node-gyp that npm bundles, when a C toolchain and Node's headers are there.
// It runs as the package's `install` script and never fails the install:
// without the addon, uniwasm keeps guest-set times exact inside an instance
// and stores them to the microsecond on disk (docs/kernel.md, "File times").
// It says which it is, on one line.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, "native", "file-times");
const out = join(dir, "build", "Release", "file_times.node");

function nodeGyp() {
  // npm sets this for lifecycle scripts; otherwise use the node-gyp npm ships beside node.
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  const bundled = join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js");
  return existsSync(bundled) ? bundled : null;
}

const gyp = nodeGyp();
let why = "";
if (process.platform !== "linux") why = `not on Linux (${process.platform})`;
else if (!gyp) why = "node-gyp not found (it comes with npm)";
else {
  // Node's headers: npm's nodedir setting, else those installed beside this node (no download).
  const prefix = resolve(dirname(process.execPath), "..");
  const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, "include", "node", "node_api.h")) ? prefix : undefined);
  const args = [gyp, "rebuild", "--directory", dir, ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  const r = spawnSync(process.execPath, args, { encoding: "utf8" });
  if (r.status !== 0 || !existsSync(out)) {
    const last = `${r.stderr ?? ""}${r.stdout ?? ""}`.trim().split("\n").filter((l) => /error|not found|ERR!/i.test(l)).slice(-1)[0];
    why = `node-gyp failed${last ? `: ${last.trim()}` : ` (exit ${r.status})`}`;
  }
}
if (why) {
  process.stdout.write(`uniwasm: ns-precise file times addon not built (${why}); guest-set file times stay exact inside an instance and are stored to the microsecond\n`);
} else {
  process.stdout.write(`uniwasm: ns-precise file times addon built (${out.slice(root.length + 1)})\n`);
}
