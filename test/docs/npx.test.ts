/** `npx uniwasm` in a clone runs the clone's own CLI, offline: what the docs' blocks stand in for. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { ROOT } from "./doc-tests.js";
import { VERSION } from "../../src/version.js";

test("npx uniwasm in a clone runs the clone's own CLI without the npm registry", () => {
  const r = spawnSync("npx", ["uniwasm", "--version"], { cwd: ROOT, encoding: "utf8", env: { ...process.env, npm_config_offline: "true", npm_config_update_notifier: "false" }, timeout: 110_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), VERSION);
});
