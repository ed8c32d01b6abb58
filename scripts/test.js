#!/usr/bin/env node
// Runs every compiled test file with Node's built-in test runner.
// Node 20's `--test` does not expand globs, so the file list is built here.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith(".test.js")) out.push(path);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = collect("dist/test").sort();
if (filter.length > 0) files = files.filter((f) => filter.some((s) => f.includes(s)));
const result = spawnSync(
  process.execPath,
  ["--test", "--test-concurrency=2", "--test-timeout=120000", "--test-reporter=spec", ...files],
  { stdio: "inherit" },
);
process.exit(result.status ?? 1);
