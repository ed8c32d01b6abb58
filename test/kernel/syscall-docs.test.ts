import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { renderSyscallDocs } from "../../src/kernel/syscall-docs.js";

test("docs/syscalls.md matches the syscall table (run `npm run docs` after changing it)", () => {
  const onDisk = readFileSync(new URL("../../../docs/syscalls.md", import.meta.url), "utf8");
  assert.equal(onDisk, renderSyscallDocs());
});
