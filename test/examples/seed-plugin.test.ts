import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../../../", import.meta.url));

test("examples/seed-plugin/host.mjs runs the seed with host-supplied env.log and env.memory", () => {
  const r = spawnSync(process.execPath, ["examples/seed-plugin/host.mjs", "wasm plugins"], { cwd: repo, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'plugin log: processing\nplugin log: WASM PLUGINS\nprocess("wasm plugins") returned 12\n');
});

test("the example's seed is the test fixture, unchanged", () => {
  assert.equal(readFileSync(`${repo}examples/seed-plugin/seed.wat`, "utf8"), readFileSync(`${repo}test/fixtures/ext/seed.wat`, "utf8"));
});
