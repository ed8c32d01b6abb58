/**
 * Every entry of the syscall table has conformance programs: a guest program
 * `test/fixtures/conformance/<name>__<behaviour>.c` per behaviour. A new
 * syscall without one fails here, naming it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SYSCALLS } from "../../src/kernel/syscalls.js";

const CONFORMANCE_DIR = join(dirname(fileURLToPath(import.meta.url)), "../../../test/fixtures/conformance");

function programsByCall(): Map<string, string[]> {
  const byCall = new Map<string, string[]>();
  for (const file of readdirSync(CONFORMANCE_DIR)) {
    const m = /^([a-z_]+?)__[a-z0-9_]+\.c$/.exec(file);
    if (!m) continue;
    const list = byCall.get(m[1]!) ?? [];
    list.push(file);
    byCall.set(m[1]!, list);
  }
  return byCall;
}

test("every syscall-table entry has at least one conformance program", () => {
  const byCall = programsByCall();
  const missing = SYSCALLS.map((s) => s.name).filter((name) => !byCall.has(name));
  assert.deepEqual(missing, [], `write test/fixtures/conformance/<call>__<behaviour>.c for: ${missing.join(", ")}`);
});

test("every conformance program is named after a syscall-table entry", () => {
  const names = new Set<string>(SYSCALLS.map((s) => s.name));
  const strays = [...programsByCall().keys()].filter((call) => !names.has(call));
  assert.deepEqual(strays, [], "conformance programs must be named <call>__<behaviour>.c after a real call");
});

test("every fd_* and path_* call has an error-case program besides its success case", () => {
  // Filesystem calls fail in many ways; one program per call is not enough.
  const byCall = programsByCall();
  const thin = SYSCALLS.map((s) => s.name)
    .filter((n) => n.startsWith("fd_") || n.startsWith("path_"))
    .filter((n) => (byCall.get(n) ?? []).length < 2);
  assert.deepEqual(thin, [], "add error-case programs for these calls");
});
