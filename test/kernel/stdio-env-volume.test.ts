/**
 * Volume: ports of Wasmtime's cli_p1_much_stdout and cli_large_env
 * (test/fixtures/volume). Output and environment far larger than the
 * conformance programs use arrive byte-exact, and the stdout cap is enforced
 * exactly at its limit.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { runModule, type RunResult } from "../../src/sandbox/inline.js";

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../test/fixtures/volume/${name}.wasm`, import.meta.url)));
const decoder = new TextDecoder();
const context = (r: RunResult): string => `exit ${r.exitCode} (${r.reason}${r.message ? `: ${r.message}` : ""})\nstderr: ${decoder.decode(r.stderr)}`;

test("200,000 small stdout writes arrive complete and in order", async () => {
  const r = await runModule(fixture("much_stdout"), { args: ["much_stdout", "0123456789abcdef\n", "200000"], stdout: "buffer", stderr: "buffer" });
  assert.equal(r.exitCode, 0, context(r));
  assert.equal(r.stdout.length, 17 * 200000);
  assert.equal(decoder.decode(r.stdout), "0123456789abcdef\n".repeat(200000));
  assert.equal(r.calls["fd_write"], 200000);
});

test("a stdout cap lets exactly the allowed bytes through, then ends the instance with output_limit", async () => {
  const r = await runModule(fixture("much_stdout"), {
    args: ["much_stdout", "abcdefghij", "1000"],
    stdout: "buffer",
    stderr: "buffer",
    limits: { stdoutBytes: 995 },
  });
  assert.equal(r.reason, "output_limit", context(r));
  assert.notEqual(r.exitCode, 0);
  assert.equal(decoder.decode(r.stdout), "abcdefghij".repeat(99) + "abcde");
});

test("the same program under the cap's size runs to the end", async () => {
  const r = await runModule(fixture("much_stdout"), { args: ["much_stdout", "abcdefghij", "99"], stdout: "buffer", limits: { stdoutBytes: 990 } });
  assert.equal(r.reason, "exit", context(r));
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout.length, 990);
});

test("a large environment (2,000 variables and a 1 MiB value) reaches the guest byte-exact and in order", async () => {
  const env: Record<string, string> = {};
  for (let i = 0; i < 2000; i++) env[`VAR_${i}`] = `value-${i}-${"é".repeat(i % 50)}`;
  env["HUGE"] = "x".repeat(1 << 20);
  const r = await runModule(fixture("print_env"), { args: ["print_env"], env, stdout: "buffer", stderr: "buffer" });
  assert.equal(r.exitCode, 0, context(r));
  const want = Object.entries(env).map(([k, v]) => `${k}=${v}\n`).join("");
  assert.equal(decoder.decode(r.stdout), want);
});

test("argv with many long and non-ASCII arguments reaches the guest byte-exact", async () => {
  // much_stdout writes argv[1] argv[2] times: a 256 KiB argument written once.
  const big = "ü".repeat(128 * 1024);
  const r = await runModule(fixture("much_stdout"), { args: ["much_stdout", big, "1", ...Array.from({ length: 500 }, (_, i) => `extra-${i}`)], stdout: "buffer" });
  assert.equal(r.exitCode, 0, context(r));
  assert.equal(decoder.decode(r.stdout), big);
});
