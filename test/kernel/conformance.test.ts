/**
 * Conformance: every guest program in test/fixtures/conformance runs on the
 * kernel, once per filesystem backend, and must end as its directives say
 * (the directives are described in conformance-programs.ts). This file runs
 * them through the engine's inline placement (runModule); the executor
 * placement runs the same suite on every tier (test/sandbox/tier-suite.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { runModule } from "../../src/sandbox/inline.js";
import { CONFORMANCE_DIR, conformanceCases, conformancePrograms, describeProgram, parseDirectives, runConformanceProgram } from "./conformance-programs.js";

for (const { name, directives, backends } of conformanceCases()) {
  for (const backend of backends) {
    const label = backend === "none" ? "no preopen" : backend;
    test(`${describeProgram(name)} [${label}]`, () => runConformanceProgram(name, directives, backend, runModule));
  }
}

test("every conformance program has a built .wasm beside it", () => {
  const missing = conformancePrograms().filter((n) => !existsSync(join(CONFORMANCE_DIR, `${n}.wasm`)));
  assert.deepEqual(missing, [], "run scripts/build-fixtures.sh and commit the .wasm files");
});

test("conformance directives parse: names, escapes and repeatable keys", () => {
  const d = parseDirectives(
    ["// uniwasm-test: args=a b", "// uniwasm-test: env=A=1=2", "// uniwasm-test: env=B=", "// uniwasm-test: stdin=x\\ny", "// uniwasm-test: dir=ro", "// uniwasm-test: backends=memory", "// uniwasm-test: exit=3", "// uniwasm-test: setup=file a=b=c"].join("\n"),
    "t.c",
  );
  assert.deepEqual(d.args, ["a", "b"]);
  assert.deepEqual(d.env, { A: "1=2", B: "" });
  assert.equal(d.stdin, "x\ny");
  assert.equal(d.dir, "ro");
  assert.deepEqual(d.backends, ["memory"]);
  assert.equal(d.exit, 3);
  assert.deepEqual(d.setup, ["file a=b=c"]);
  assert.throws(() => parseDirectives("// uniwasm-test: bogus=1", "t.c"), /unknown directive bogus/);
  assert.equal(describeProgram("fd_read__ebadf_on_closed_fd"), "fd_read: ebadf on closed fd");
});
