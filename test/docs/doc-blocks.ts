/**
 * Runnable code blocks in Markdown docs: how they are marked and parsed.
 *
 * A fenced block is run by the docs test when its info string carries the
 * word `runnable` after the language:
 *
 *   ```sh runnable                 commands, run as a bash script (set -euo pipefail)
 *   ```console runnable            a transcript: lines starting with "$ " are commands,
 *                                  the lines after each are the output it must print
 *
 * Words that may follow `runnable`:
 *   background      start the block and leave it running (a server: "in another
 *                   terminal"); the next block runs once it has printed its first
 *                   line; it is stopped with SIGTERM when the doc ends
 *   ready=WORD      with background: the next block waits until its output holds WORD
 *   exit=N          the exit status the block must end with (default 0)
 *   needs=A,B       tools the block needs; the doc is skipped, saying so, when one
 *                   is missing. `registry` also starts an OCI registry on
 *                   127.0.0.1:5000 for the block (Debian's docker-registry)
 *
 * A ```text output block right after a `sh runnable` block lists lines its
 * output (stdout and stderr, as a terminal shows them) must contain, in order;
 * `…` in an expected line matches any text (digests, timings, tokens).
 */

export interface RunnableOptions {
  background: boolean;
  /** Background: ready once the output holds this (default: any output). */
  ready?: string;
  exit: number;
  needs: string[];
}

export interface DocBlock {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  /** The info string's words after the language. */
  words: string[];
  body: string;
  runnable?: RunnableOptions;
  /** The script to run (the body, or a transcript's commands). */
  script?: string;
  /** Lines the output must contain, in order. */
  expected?: string[];
  /** Line of the block that holds the expectations (an output block or the transcript itself). */
  expectedLine?: number;
}

export class DocBlockError extends Error {}

const RUNNABLE_WORD = /^(background|ready=[\w.:-]+|exit=\d{1,3}|needs=[a-z0-9+-]+(,[a-z0-9+-]+)*)$/;

/** Every fenced block of a Markdown file, with runnable ones resolved; throws DocBlockError on a malformed marker. */
export function parseDocBlocks(file: string, text: string): DocBlock[] {
  const lines = text.split("\n");
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,}|~{3,})\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const [lang = "", ...words] = open[2]!.trim().split(/\s+/).filter(Boolean);
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length; i++) {
      const l = lines[i]!;
      const close = /^(`{3,}|~{3,})\s*$/.exec(l);
      if (close && close[1]![0] === fence[0] && close[1]!.length >= fence.length) break;
      body.push(l);
    }
    if (i >= lines.length) throw new DocBlockError(`${file}:${start + 1}: code block never closed`);
    blocks.push({ line: start + 1, lang, words, body: body.join("\n") });
  }

  for (let b = 0; b < blocks.length; b++) {
    const block = blocks[b]!;
    const at = `${file}:${block.line}`;
    if (block.lang === "text" && block.words.includes("output")) {
      const prev = blocks[b - 1];
      if (!prev?.runnable || prev.lang !== "sh" || !adjacent(lines, prev, block)) {
        throw new DocBlockError(`${at}: a \`text output\` block must follow a \`sh runnable\` block directly`);
      }
      prev.expected = nonEmpty(block.body);
      prev.expectedLine = block.line;
      continue;
    }
    if (!block.words.includes("runnable")) continue;
    if (block.words[0] !== "runnable") throw new DocBlockError(`${at}: write \`runnable\` right after the language (\`\`\`sh runnable ...)`);
    const opts: RunnableOptions = { background: false, exit: 0, needs: [] };
    for (const w of block.words.slice(1)) {
      if (!RUNNABLE_WORD.test(w)) throw new DocBlockError(`${at}: unknown word ${JSON.stringify(w)} after runnable (known: background, ready=WORD, exit=N, needs=A,B)`);
      if (w === "background") opts.background = true;
      else if (w.startsWith("exit=")) opts.exit = Number(w.slice(5));
      else if (w.startsWith("ready=")) opts.ready = w.slice(6);
      else opts.needs.push(...w.slice(6).split(","));
    }
    block.runnable = opts;
    if (block.lang === "sh" || block.lang === "bash") {
      block.script = block.body;
    } else if (block.lang === "console") {
      const t = transcript(block.body);
      if (t.commands.length === 0) throw new DocBlockError(`${at}: a console block needs commands on lines starting with "$ "`);
      block.script = t.commands.join("\n");
      block.expected = t.output;
      block.expectedLine = block.line;
    } else {
      throw new DocBlockError(`${at}: only sh, bash and console blocks can be runnable, not ${JSON.stringify(block.lang)}`);
    }
    if (opts.background && block.lang === "console") throw new DocBlockError(`${at}: a background block is a sh block`);
    if (opts.ready !== undefined && !opts.background) throw new DocBlockError(`${at}: ready= goes with background`);
  }
  return blocks;
}

function adjacent(lines: string[], prev: DocBlock, next: DocBlock): boolean {
  const prevEnd = prev.line + prev.body.split("\n").length; // 0-based index of prev's closing fence
  return lines.slice(prevEnd + 1, next.line - 1).every((l) => l.trim() === "");
}

function nonEmpty(text: string): string[] {
  return text.split("\n").map((l) => l.trimEnd()).filter((l) => l.length > 0);
}

/** `$ cmd` lines (a trailing `\` continues the command) and the output lines after them. */
function transcript(body: string): { commands: string[]; output: string[] } {
  const commands: string[] = [];
  const output: string[] = [];
  let continuing = false;
  for (const raw of body.split("\n")) {
    const l = raw.trimEnd();
    if (continuing) {
      commands[commands.length - 1] += "\n" + l;
      continuing = l.endsWith("\\");
    } else if (l.startsWith("$ ")) {
      commands.push(l.slice(2));
      continuing = l.endsWith("\\");
    } else if (l.length > 0 && !l.startsWith("# ")) {
      output.push(l);
    }
  }
  return { commands, output };
}

/**
 * Whether `output` contains the expected lines in order: each expected line
 * equals a later output line (trailing spaces ignored), `…` matching any text.
 * Returns the first expected line not found, or undefined when all are.
 */
export function missingOutput(output: string, expected: readonly string[]): string | undefined {
  const got = output.split("\n").map((l) => l.trimEnd());
  let at = 0;
  for (const want of expected) {
    const re = new RegExp("^" + want.split("…").map(escapeRegExp).join(".*") + "$");
    while (at < got.length && !re.test(got[at]!)) at++;
    if (at === got.length) return want;
    at++;
  }
  return undefined;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
