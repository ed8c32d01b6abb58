/** The one limits vocabulary (src/limits.ts): one type, one grammar, wherever limits are written. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { DEFAULT_LIMITS, LIMIT_FIELDS, LIMIT_NAMES, LimitOptionError, parseLimits, resolveLimits } from "../src/limits.js";
import { limitsFromFlags } from "../src/sandbox/cli-limits.js";
import { parseManifest } from "../src/image/manifest.js";
import { resolveAppLimits } from "../src/manager/app-config.js";
import { ControlError } from "../src/manager/refusal.js";

const MANIFEST = `manifest_version = 1\n[application]\nname = "sizes"\n[module]\nsource = "m.wasm"\n`;

test('"16MB", "16MiB" and "16M" are 16 MiB on the CLI, in a manifest and in a deploy request alike', () => {
  for (const text of ["16MB", "16MiB", "16M", "16m", "16 MiB"]) {
    const cli = limitsFromFlags({ maxMemory: text }).maxMemoryBytes;
    const manifest = parseManifest(`${MANIFEST}[limits]\nmemory = "${text}"\nstdout = "${text}"\n`).limits;
    const api = resolveAppLimits(undefined, { maxMemoryBytes: text, stdoutBytes: text }, "wagi");
    assert.equal(cli, 16 * 1024 * 1024, `CLI ${text}`);
    assert.equal(manifest.maxMemoryBytes, 16 * 1024 * 1024, `manifest memory ${text}`);
    assert.equal(manifest.stdoutBytes, 16 * 1024 * 1024, `manifest stdout ${text}`);
    assert.equal(api.maxMemoryBytes, 16 * 1024 * 1024, `API ${text}`);
    assert.equal(api.stdoutBytes, 16 * 1024 * 1024, `API stdout ${text}`);
  }
});

test("durations read the same on the CLI, in a manifest and in a deploy request", () => {
  for (const [text, ms] of [["1500ms", 1500], ["2s", 2000], ["1m", 60_000], ["250", 250]] as const) {
    assert.equal(limitsFromFlags({ timeout: text }).timeoutMs, ms);
    assert.equal(parseManifest(`${MANIFEST}[limits]\ntimeout = "${text}"\n`).limits.timeoutMs, ms);
    assert.equal(resolveAppLimits(undefined, { timeoutMs: text }, "wagi").timeoutMs, ms);
  }
});

test("every limit has a default, and resolving nothing gives the defaults", () => {
  assert.deepEqual(Object.keys(DEFAULT_LIMITS).sort(), [...LIMIT_NAMES].sort());
  assert.deepEqual(resolveLimits(), { ...DEFAULT_LIMITS });
});

test("a given limit replaces the default; a bad one is refused naming it", () => {
  assert.equal(resolveLimits({ stdoutBytes: 0 }).stdoutBytes, 0, "no output at all is a limit too");
  assert.equal(resolveLimits({ fuel: 10n }).fuel, 10);
  assert.throws(() => resolveLimits({ openFiles: 2.5 }), (e: unknown) => e instanceof LimitOptionError && e.option === "openFiles");
  assert.throws(() => resolveLimits({ maxMemoryBytes: 1000 }), (e: unknown) => e instanceof LimitOptionError && e.option === "maxMemoryBytes" && /65536/.test(e.message));
  assert.throws(() => resolveLimits({ fuel: 2 ** 60 }), (e: unknown) => e instanceof LimitOptionError && e.option === "fuel" && /2\^53-1/.test(e.message));
  assert.throws(() => resolveLimits({ memoryMiB: 16 } as never), (e: unknown) => e instanceof LimitOptionError && e.option === "memoryMiB" && /not a limit/.test(e.message));
});

test("resolving resolved limits again gives the same limits, and a changed copy is checked again", () => {
  const r = resolveLimits({ stdoutBytes: 10, fuel: 7 });
  assert.deepEqual(resolveLimits(r), r);
  assert.deepEqual(resolveLimits(resolveLimits(r)), r, "a second time, from the checked set");
  assert.throws(() => resolveLimits({ ...r, openFiles: -1 }), (e: unknown) => e instanceof LimitOptionError && e.option === "openFiles");
  assert.throws(() => resolveLimits(r, DEFAULT_LIMITS, { stdoutBytes: 5 }), LimitOptionError, "ceilings always apply");
});

test("a ceiling refuses a larger value naming the limit and the ceiling, and allows up to it", () => {
  assert.equal(resolveLimits({ stdoutBytes: 1024 }, DEFAULT_LIMITS, { stdoutBytes: 1024 }).stdoutBytes, 1024);
  assert.throws(
    () => resolveLimits({ stdoutBytes: 1025 }, DEFAULT_LIMITS, { stdoutBytes: 1024 }),
    (e: unknown) => e instanceof LimitOptionError && e.option === "stdoutBytes" && /above the most allowed here, 1 KiB/.test(e.message),
  );
  assert.throws(() => resolveLimits({ timeoutMs: Infinity }, DEFAULT_LIMITS, { timeoutMs: 600_000 }), LimitOptionError, "unlimited is above any finite ceiling");
});

test("JSON limits: numbers in the field's unit, strings in the grammar, null for unlimited (fuel: not metered)", () => {
  assert.deepEqual(parseLimits({ maxMemoryBytes: "64MiB", timeoutMs: "5s", fuel: null, stdoutBytes: null, openFiles: "1_024", stderrBytes: 10 }), {
    maxMemoryBytes: 64 * 1024 * 1024,
    timeoutMs: 5000,
    fuel: null,
    stdoutBytes: Infinity,
    openFiles: 1024,
    stderrBytes: 10,
  });
  assert.throws(() => parseLimits({ timeoutMs: "5 parsecs" }), (e: unknown) => e instanceof LimitOptionError && e.option === "timeoutMs" && /not a duration/.test(e.message));
  assert.throws(() => parseLimits({ openFiles: "10M" }), (e: unknown) => e instanceof LimitOptionError && e.option === "openFiles");
  assert.throws(() => parseLimits({ maxResponseBytes: 5 }), /maxResponseBytes: is not a limit/);
  // What a store writes (JSON.stringify) reads back the same.
  const resolved = resolveLimits({ timeoutMs: Infinity, fuel: 5 });
  assert.deepEqual(resolveLimits(parseLimits(JSON.parse(JSON.stringify(resolved)))), resolved);
});

test("a node refuses fuel 0 (null is not metered) and unlimited deadlines for requests, and allows them for services", () => {
  assert.throws(() => resolveAppLimits(undefined, { fuel: 0 }, "wagi"), (e: unknown) => e instanceof ControlError && /limits\.fuel must be at least 1 \(null: not metered\)/.test(e.message));
  assert.equal(resolveAppLimits(undefined, { fuel: null }, "wagi").fuel, null);
  assert.throws(() => resolveAppLimits(undefined, { timeoutMs: null }, "wagi"), ControlError);
  assert.equal(resolveAppLimits(undefined, { timeoutMs: null }, "service").timeoutMs, Infinity);
  assert.throws(() => resolveAppLimits(undefined, { stackSizeMb: 64 }, "wagi"), /limits\.stackSizeMb 64 is above the most allowed here, 4/);
});

test("the tier travels with the limits: checked by name, from the manifest, the CLI and the API alike", () => {
  assert.equal(resolveLimits({ tier: "process" }).tier, "process");
  assert.equal(resolveLimits().tier, "isolate");
  assert.throws(() => resolveLimits({ tier: "vm" as never }), (e: unknown) => e instanceof LimitOptionError && e.option === "tier" && /isolate, process, gvisor/.test(e.message));
  assert.deepEqual(parseLimits({ tier: "gvisor" }), { tier: "gvisor" });
  // A node takes every tier; the manager refuses one the machine cannot give (test/server/tiers.test.ts).
  assert.equal(resolveAppLimits(undefined, { tier: "process" }, "wagi").tier, "process");
  assert.equal(resolveAppLimits({ tier: "gvisor" }, {}, "wagi").tier, "gvisor");
});

test("every limit is documented in docs/limits.md, with its manifest key when a manifest may set it", () => {
  const doc = readFileSync("docs/limits.md", "utf8");
  for (const name of LIMIT_NAMES) {
    assert.match(doc, new RegExp("`" + name + "`"), `docs/limits.md documents ${name}`);
    const key = LIMIT_FIELDS[name].manifest;
    if (key) assert.match(doc, new RegExp("`" + key + "`"), `docs/limits.md names the manifest key ${key}`);
  }
});
