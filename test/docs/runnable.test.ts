/**
 * The docs run as written: every block marked `runnable` in the README and the
 * other Markdown docs runs on a fresh copy of the repository, with a fresh
 * HOME and its own network (see doc-blocks.ts for the markers, doc-runner.ts
 * for the session). A doc that drifts from the code fails here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { missingOutput, parseDocBlocks, type DocBlock } from "./doc-blocks.js";
import { freshClone, isolationProblem, missingNeed, runDoc } from "./doc-runner.js";
import { VERSION } from "../../src/version.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Every Markdown file git knows in the repository (fixtures' vendored docs aside). */
function markdownFiles(): string[] {
  const r = spawnSync("git", ["-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], { encoding: "utf8" });
  return r.stdout.split("\n").filter((f) => f && !f.startsWith("test/fixtures/"));
}

const docs = new Map<string, DocBlock[]>();
const parseErrors: string[] = [];
for (const f of markdownFiles()) {
  try {
    docs.set(f, parseDocBlocks(f, readFileSync(join(ROOT, f), "utf8")));
  } catch (err) {
    parseErrors.push((err as Error).message);
  }
}

test("runnable markers in the docs are well formed", () => {
  assert.deepEqual(parseErrors, []);
});

test("the README's first commands, image session and node session are runnable", () => {
  const readme = (docs.get("README.md") ?? []).filter((b) => b.runnable);
  assert.ok(readme.some((b) => b.script?.includes("npx uniwasm run examples/hello.wasm")), "first run");
  assert.ok(readme.some((b) => b.script?.includes("npx uniwasm build examples/hello-image")), "images");
  assert.ok(readme.some((b) => b.runnable!.background && b.script?.includes("npx uniwasm serve")), "node");
  assert.ok(readme.some((b) => b.script?.includes("npx uniwasm deploy")), "deploy");
});

const isolation = isolationProblem();
for (const [file, blocks] of docs) {
  if (!blocks.some((b) => b.runnable)) continue;
  // A block whose tools are missing here is left out, saying so; the others run.
  const cannot = new Map(blocks.filter((b) => b.runnable).map((b) => [b, missingNeed(b)] as const).filter(([, why]) => why !== undefined));
  const runnable = blocks.filter((b) => b.runnable && !cannot.has(b));
  const skip = isolation ?? (runnable.length === 0 ? `every runnable block ${[...cannot.values()][0]}` : false);
  test(`${file}: its runnable blocks run as written on a fresh clone`, { skip, timeout: 900_000 }, async (t) => {
    for (const [b, why] of cannot) t.diagnostic(`${file}:${b.line} left out: it ${why}`);
    const run = await runDoc(ROOT, blocks, { skip: new Set(cannot.keys()) });
    for (const r of run.results) {
      const b = r.block;
      const where = `${file}:${b.line}`;
      const shown = `\n--- script ---\n${b.script}\n--- output (last 60 lines) ---\n${r.output.split("\n").slice(-60).join("\n")}`;
      assert.equal(r.status, b.runnable!.exit, `${where}: the block ended with status ${r.status}, expected ${b.runnable!.exit}${shown}`);
      if (b.expected) {
        const missing = missingOutput(r.output, b.expected);
        assert.equal(missing, undefined, `${where}: the output lacks the line ${JSON.stringify(missing)} (expected at ${file}:${b.expectedLine})${shown}`);
      }
    }
    assert.equal(run.results.length, runnable.length, `${file}: only ${run.results.length} of ${runnable.length} runnable blocks ran`);
    assert.deepEqual(run.strayFiles, [], `${file}: running the docs left files git would pick up (ignore them in .gitignore, or write them elsewhere)`);
  });
}

test("npx uniwasm runs the clone's own CLI (what the docs' blocks stand in for)", { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "uniwasm-npx-"));
  try {
    const clone = freshClone(ROOT, work);
    // Offline: resolving to the clone's own bin must not need the npm registry.
    const r = spawnSync("npx", ["uniwasm", "--version"], { cwd: clone, encoding: "utf8", env: { ...process.env, npm_config_offline: "true", npm_config_update_notifier: "false" }, timeout: 240_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), VERSION);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
