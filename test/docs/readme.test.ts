/** The README runs as written: its runnable blocks (first run, trap, images, node) on a fresh clone. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { defineDocTests, docs } from "./doc-tests.js";

test("the README's first commands, image session and node session are runnable", () => {
  const readme = docs().get("README.md");
  assert.ok(Array.isArray(readme), String(readme));
  const runnable = readme.filter((b) => b.runnable);
  assert.ok(runnable.some((b) => b.script?.includes("npx uniwasm run examples/hello.wasm")), "first run");
  assert.ok(runnable.some((b) => b.script?.includes("npx uniwasm build examples/hello-image")), "images");
  assert.ok(runnable.some((b) => b.runnable!.background && b.script?.includes("npx uniwasm serve")), "node");
  assert.ok(runnable.some((b) => b.script?.includes("npx uniwasm deploy")), "deploy");
});

defineDocTests((file) => file === "README.md");
