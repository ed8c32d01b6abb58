import { test } from "node:test";
import assert from "node:assert/strict";
import { DocBlockError, missingOutput, parseDocBlocks } from "./doc-blocks.js";

const md = (...lines: string[]) => lines.join("\n");

test("a sh runnable block is parsed with its options and the output block after it", () => {
  const blocks = parseDocBlocks("x.md", md("text", "```sh runnable exit=3 needs=clang,registry", "echo hi", "exit 3", "```", "", "```text output", "hi", "```", "```sh", "plain", "```"));
  assert.equal(blocks.length, 3);
  assert.deepEqual(blocks[0]!.runnable, { background: false, exit: 3, needs: ["clang", "registry"] });
  assert.equal(blocks[0]!.script, "echo hi\nexit 3");
  assert.deepEqual(blocks[0]!.expected, ["hi"]);
  assert.equal(blocks[0]!.expectedLine, 7);
  assert.equal(blocks[2]!.runnable, undefined);
});

test("a console runnable block runs its $ lines and expects the lines after them", () => {
  const [b] = parseDocBlocks("x.md", md("```console runnable", "# a comment", "$ npx uniwasm run a.wasm \\", "  --trace", "out 1", "", "$ true", "out 2", "```"));
  assert.equal(b!.script, "npx uniwasm run a.wasm \\\n  --trace\ntrue");
  assert.deepEqual(b!.expected, ["out 1", "out 2"]);
});

test("malformed markers are refused with the file and line", () => {
  assert.throws(() => parseDocBlocks("x.md", md("", "```sh runnable backgroud", "x", "```")), (e: Error) => e instanceof DocBlockError && /x\.md:2: unknown word "backgroud"/.test(e.message));
  assert.throws(() => parseDocBlocks("x.md", md("```ts runnable", "x", "```")), /only sh, bash and console/);
  assert.throws(() => parseDocBlocks("x.md", md("```sh", "x", "```", "```text output", "y", "```")), /x\.md:4: a `text output` block must follow/);
  assert.throws(() => parseDocBlocks("x.md", md("```sh runnable", "x", "```", "prose", "```text output", "y", "```")), /must follow/);
  assert.throws(() => parseDocBlocks("x.md", md("```sh runnable", "x")), /x\.md:1: code block never closed/);
});

test("expected output lines match in order, … standing for any text", () => {
  const out = "deployed acme/hello revision 1 (wagi, image sha256:abc)\n  http://x\nHello, you!  \n";
  assert.equal(missingOutput(out, ["deployed acme/hello revision 1 (wagi, image …)", "Hello, you!"]), undefined);
  assert.equal(missingOutput(out, ["Hello, you!", "deployed …"]), "deployed …");
  assert.equal(missingOutput(out, ["Hello"]), "Hello");
  assert.equal(missingOutput("a.b\n", ["a?b"]), "a?b");
});
