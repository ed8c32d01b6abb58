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
// The examples' demo scripts (test/examples/*-demo.test.ts) drive the CLI, a process per
// command: on a loaded machine one demo takes minutes, so they run after the rest, with a
// longer bound per file, one at a time (the SaaS demo measures latency in its own run: another
// demo's burst beside it would be noise in its rounds).
const demos = files.filter((f) => f.endsWith("-demo.test.js"));
const rest = files.filter((f) => !demos.includes(f));
let status = 0;
for (const [group, timeout, concurrency] of [[rest, 120_000, 2], [demos, 400_000, 1]]) {
  if (group.length === 0) continue;
  const result = spawnSync(
    process.execPath,
    ["--test", `--test-concurrency=${concurrency}`, `--test-timeout=${timeout}`, "--test-reporter=spec", ...group],
    { stdio: "inherit" },
  );
  if (result.status !== 0) status = result.status ?? 1;
}
process.exit(status);
