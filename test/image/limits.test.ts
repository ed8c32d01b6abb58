/** Manifest limits reach the sandbox: resolveImage's limits (the one limits type) go straight into ExecutorPool.run. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ImageStore } from "../../src/image/store.js";
import { buildImage } from "../../src/image/build.js";
import { resolveImage } from "../../src/image/resolve.js";
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { cliPool } from "../../src/sandbox/cli-limits.js";
import { tierUnavailable } from "../../src/sandbox/tiers/tier.js";
import type { Limits } from "../../src/limits.js";
import { cleanup, simpleProject, tempDir } from "./helpers.js";

const toml = (limits: string) => `manifest_version = 1
[application]
name = "hello"
[module]
source = "hello.wasm"
[limits]
${limits}
`;

test("a manifest's fuel limit ends the instance with fuel_exhausted; without it the run succeeds", async () => {
  const pool = new ExecutorPool({ size: 1 });
  const dirs: string[] = [];
  try {
    for (const [limits, reason] of [["fuel = 1", "fuel_exhausted"], ["fuel = 1_000_000", "exit"]] as const) {
      const [dir, home] = [await simpleProject("hello.wasm", toml(limits)), await tempDir("home")];
      dirs.push(dir, home);
      await buildImage(new ImageStore(home), { dir });
      const img = (await resolveImage("hello", { home }))!;
      const manifestLimits: Limits = img.limits;
      const k = img.kernelOptions;
      const out = await pool.run(img.bytes, { args: k.args, env: k.env, preopens: k.preopens, capabilities: k.capabilities, limits: manifestLimits });
      assert.equal(out.reason, reason, out.message);
      if (reason === "exit") assert.equal(new TextDecoder().decode(out.stdout), "hello from an image\n");
    }
  } finally {
    await pool.close();
    await cleanup(...dirs);
  }
});

test("a manifest's tier puts `uniwasm run IMAGE` on that tier's executors, and the image runs the same there", { skip: tierUnavailable("process") }, async () => {
  const [dir, home] = [await simpleProject("hello.wasm", toml(`tier = "process"`)), await tempDir("home")];
  try {
    await buildImage(new ImageStore(home), { dir });
    const img = (await resolveImage("hello", { home }))!;
    assert.equal(img.limits.tier, "process");
    const { pool, tier, close } = cliPool({ size: 1, limits: img.limits }, [], false);
    try {
      assert.equal(tier, "process");
      assert.equal(pool.launcher.tier, "process");
      const k = img.kernelOptions;
      const out = await pool.run(img.bytes, { args: k.args, env: k.env, capabilities: k.capabilities, limits: img.limits });
      assert.equal(new TextDecoder().decode(out.stdout), "hello from an image\n");
      assert.equal(pool.processes().length, 1, "the executor is a sandboxed process");
    } finally {
      await close();
    }
  } finally {
    await cleanup(dir, home);
  }
});
