/**
 * Registers one test per Markdown doc with runnable blocks: they run as
 * written on a fresh clone (doc-runner.ts). Each test file takes a share of
 * the docs, so no file runs long (the runner bounds each file's time).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { missingOutput, parseDocBlocks, type DocBlock } from "./doc-blocks.js";
import { isolationProblem, missingNeed, runDoc } from "./doc-runner.js";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Every Markdown file git knows in the repository (fixtures aside), with its blocks or its parse error. */
export function docs(): Map<string, DocBlock[] | Error> {
  const r = spawnSync("git", ["-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], { encoding: "utf8" });
  const out = new Map<string, DocBlock[] | Error>();
  for (const f of r.stdout.split("\n").filter((f) => f && !f.startsWith("test/fixtures/"))) {
    try {
      out.set(f, parseDocBlocks(f, readFileSync(join(ROOT, f), "utf8")));
    } catch (err) {
      out.set(f, err as Error);
    }
  }
  return out;
}

export function defineDocTests(select: (file: string) => boolean): void {
  const isolation = isolationProblem();
  for (const [file, blocks] of docs()) {
    if (!select(file) || blocks instanceof Error || !blocks.some((b) => b.runnable)) continue;
    // A block whose tools are missing here is left out, saying so; the others run.
    const cannot = new Map(blocks.filter((b) => b.runnable).map((b) => [b, missingNeed(b)] as const).filter(([, why]) => why !== undefined));
    const runnable = blocks.filter((b) => b.runnable && !cannot.has(b));
    const skip = isolation ?? (runnable.length === 0 ? `every runnable block ${[...cannot.values()][0]}` : false);
    test(`${file}: its runnable blocks run as written on a fresh clone`, { skip, timeout: 600_000 }, async (t) => {
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
}
