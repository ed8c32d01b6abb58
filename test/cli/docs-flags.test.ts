/**
 * The docs name only commands and flags the CLI has: every `uniwasm ...`
 * command line in the Markdown docs (code blocks and inline code, with or
 * without `npx`/`$ `) is checked against the program's own command tree.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { buildProgram } from "../../src/cli/main.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

function markdownFiles(): string[] {
  const r = spawnSync("git", ["-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], { encoding: "utf8" });
  return r.stdout.split("\n").filter((f) => f && !f.startsWith("test/fixtures/"));
}

/** `uniwasm ...` command lines of a doc: lines of code blocks and inline code spans, split at ; && || | and comments. */
export function commandLines(text: string): { line: number; words: string[] }[] {
  const out: { line: number; words: string[] }[] = [];
  const lines = text.split("\n");
  let inBlock = false;
  let lang = "";
  let transcript = false; // a block with "$ " prompts: only the prompted lines are commands
  lines.forEach((raw, i) => {
    const fence = /^(`{3,}|~{3,})\s*(\S*)/.exec(raw);
    if (fence) {
      inBlock = !inBlock;
      lang = inBlock ? fence[2]! : "";
      if (inBlock) {
        const end = lines.findIndex((l, j) => j > i && /^(`{3,}|~{3,})\s*$/.test(l));
        transcript = lines.slice(i + 1, end).some((l) => l.startsWith("$ "));
      }
      return;
    }
    if (inBlock && transcript && !raw.startsWith("$ ")) return;
    const pieces = inBlock ? (["ts", "js", "json", "toml", "c", "yaml"].includes(lang) ? [] : [raw]) : [...raw.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    for (const piece of pieces) {
      for (let part of piece.split(/;|&&|\|\||\|/)) {
        part = part.replace(/\s#.*$/, "").trim().replace(/^\$\s+/, "").replace(/^[A-Z_]+=\S+\s+/, "").replace(/^npx\s+/, "");
        if (!/^uniwasm(\s|$)/.test(part)) continue;
        out.push({ line: i + 1, words: part.split(/\s+/).slice(1) });
      }
    }
  });
  return out;
}

function knows(cmd: Command, flag: string): boolean {
  if (flag === "--help" || flag === "-h") return true;
  return cmd.options.some((o) => o.long === flag || o.short === flag || (o.negate && o.long === flag)) || (cmd.parent === null && flag === "--version");
}

test("every uniwasm command and flag the docs show exists in the CLI", () => {
  const program = buildProgram();
  const problems: string[] = [];
  for (const file of markdownFiles()) {
    for (const { line, words } of commandLines(readFileSync(join(ROOT, file), "utf8"))) {
      let cmd: Command = program;
      let i = 0;
      // Descend while the next word names a subcommand.
      for (; i < words.length; i++) {
        const sub = cmd.commands.find((c) => c.name() === words[i] || c.aliases().includes(words[i]!));
        if (!sub) break;
        cmd = sub;
      }
      const where = `${file}:${line}: uniwasm ${words.join(" ")}`;
      if (cmd === program && words[i] !== undefined && !words[i]!.startsWith("-") && !/^[A-Z[]/.test(words[i]!)) problems.push(`${where}: no command ${JSON.stringify(words[i])}`);
      for (const w of words.slice(i)) {
        const flags = [...w.matchAll(/^\[?(--?[A-Za-z][A-Za-z0-9-]*)/g)].map((m) => m[1]!);
        for (const f of flags) if (!knows(cmd, f)) problems.push(`${where}: ${cmd.name()} has no ${f}`);
        if (w === "--") break; // the guest's own arguments follow
      }
    }
  }
  assert.deepEqual(problems, []);
});

test("every store command docs/images.md lists takes --home, as the page says", () => {
  const doc = readFileSync(join(ROOT, "docs", "images.md"), "utf8");
  assert.match(doc, /takes `--home DIR`/);
  const section = doc.slice(doc.indexOf("## Commands"), doc.indexOf("## A session"));
  const program = buildProgram();
  const missing: string[] = [];
  for (const { words } of commandLines(section)) {
    const cmd = program.commands.find((c) => c.name() === words[0])!;
    const sub = cmd.commands.find((c) => c.name() === words[1]);
    if (cmd.name() !== "key" && !knows(sub ?? cmd, "--home")) missing.push(words.slice(0, sub ? 2 : 1).join(" "));
  }
  assert.deepEqual(missing, []);
});
