/** The other docs run as written: runnable blocks in docs/, examples/ and every other Markdown file. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { defineDocTests, docs } from "./doc-tests.js";

test("runnable markers in the docs are well formed", () => {
  const errors = [...docs().values()].filter((d): d is Error => d instanceof Error).map((e) => e.message);
  assert.deepEqual(errors, []);
});

defineDocTests((file) => file !== "README.md");
