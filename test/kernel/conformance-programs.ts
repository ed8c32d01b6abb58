/**
 * Conformance programs: every guest program in test/fixtures/conformance, run
 * once per filesystem backend, must end as its directives say. This module
 * reads the programs and runs one; conformance.test.ts runs them all on the
 * in-process kernel, test/sandbox/tiers.test.ts on every tier.
 *
 * A program is `<call>__<behaviour>.c` (built to `.wasm` beside it by
 * scripts/build-fixtures.sh). Its leading `// uniwasm-test: KEY=VALUE` lines:
 *   args=a b c            argv after argv[0] (argv[0] is the file's base name)
 *   env=NAME=VALUE        repeatable
 *   stdin=text            with \n \t \\ escapes
 *   dir=rw|ro|none        an empty directory preopened as /sandbox (fd 3); default rw
 *   backends=host memory  which filesystems back it; default both
 *   exit=N                expected exit code; default 0
 *   stdout=text           exact stdout, escapes as stdin
 *   stderr-contains=text
 *   setup=file a/b.txt=hello | setup=dir a/b | setup=symlink link->target
 *                         done in the directory before the run; in a symlink
 *                         target `$OUTSIDE` is the host path of a sibling
 *                         `outside/` holding secret.txt = "secret"
 *   after=exists p | after=absent p | after=content p=text
 *                         checked on the directory after the run
 *   outside-untouched     `outside/` must be byte-identical afterwards (it is
 *                         checked for every program; the directive states intent)
 */
import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MemoryFs } from "../../src/kernel/fs-memory.js";
import type { KernelOptions, PreopenSpec } from "../../src/kernel/options.js";
import type { RunResult } from "../../src/sandbox/inline.js";

// dist/test/kernel -> the repository root.
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");
export const CONFORMANCE_DIR = join(ROOT, "test/fixtures/conformance");

export type Backend = "host" | "memory";

export interface Directives {
  args: string[];
  env: Record<string, string>;
  stdin?: string;
  dir: "rw" | "ro" | "none";
  backends: Backend[];
  exit: number;
  stdout?: string;
  stderrContains?: string;
  setup: string[];
  after: string[];
}

function unescape(s: string): string {
  return s.replace(/\\(n|t|\\)/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : "\\"));
}

/** Reads the `// uniwasm-test:` lines of a program's source. */
export function parseDirectives(source: string, file: string): Directives {
  const d: Directives = { args: [], env: {}, dir: "rw", backends: ["host", "memory"], exit: 0, setup: [], after: [] };
  for (const line of source.split("\n")) {
    const m = /^\/\/ uniwasm-test: ([a-z-]+)(?:=(.*))?$/.exec(line.trimEnd());
    if (!m) continue;
    const key = m[1]!;
    const value = m[2] ?? "";
    switch (key) {
      case "args": d.args = value === "" ? [] : value.split(" "); break;
      case "env": {
        const eq = value.indexOf("=");
        if (eq <= 0) throw new Error(`${file}: env directive needs NAME=VALUE, got ${value}`);
        d.env[value.slice(0, eq)] = value.slice(eq + 1);
        break;
      }
      case "stdin": d.stdin = unescape(value); break;
      case "dir":
        if (value !== "rw" && value !== "ro" && value !== "none") throw new Error(`${file}: dir must be rw, ro or none, got ${value}`);
        d.dir = value;
        break;
      case "backends": {
        const list = value.split(" ").filter(Boolean);
        for (const b of list) if (b !== "host" && b !== "memory") throw new Error(`${file}: unknown backend ${b}`);
        d.backends = list as Backend[];
        break;
      }
      case "exit": d.exit = Number(value); break;
      case "stdout": d.stdout = unescape(value); break;
      case "stderr-contains": d.stderrContains = unescape(value); break;
      case "setup": d.setup.push(value); break;
      case "after": d.after.push(value); break;
      case "outside-untouched": break;
      default: throw new Error(`${file}: unknown directive ${key}`);
    }
  }
  return d;
}

/** "fd_read__ebadf_on_closed_fd" -> "fd_read: ebadf on closed fd". */
export function describeProgram(name: string): string {
  const i = name.indexOf("__");
  return i < 0 ? name : `${name.slice(0, i)}: ${name.slice(i + 2).replace(/_/g, " ")}`;
}

/** What a setup/after step sees: the sandbox directory on one backend. */
interface SandboxView {
  mkdirp(rel: string): void;
  writeFile(rel: string, contents: string): void;
  symlink(target: string, rel: string): void;
  exists(rel: string): boolean;
  read(rel: string): string | undefined;
}

function hostView(dir: string): SandboxView {
  return {
    mkdirp: (rel) => mkdirSync(join(dir, rel), { recursive: true }),
    writeFile: (rel, contents) => {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      writeFileSync(join(dir, rel), contents);
    },
    symlink: (target, rel) => {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      symlinkSync(target, join(dir, rel));
    },
    exists: (rel) => {
      try {
        lstatSync(join(dir, rel));
        return true;
      } catch {
        return false;
      }
    },
    read: (rel) => (existsSync(join(dir, rel)) ? readFileSync(join(dir, rel), "utf8") : undefined),
  };
}

function memoryView(fs: MemoryFs): SandboxView {
  return {
    mkdirp: (rel) => fs.mkdirp(rel),
    writeFile: (rel, contents) => fs.writeFile(rel, contents),
    symlink: (target, rel) => fs.symlinkAt(target, rel),
    exists: (rel) => fs.exists(rel),
    read: (rel) => {
      const bytes = fs.readFile(rel);
      return bytes === undefined ? undefined : Buffer.from(bytes).toString("utf8");
    },
  };
}

function applySetup(view: SandboxView, steps: readonly string[], outside: string, file: string): void {
  for (const step of steps) {
    const sp = step.indexOf(" ");
    const kind = step.slice(0, sp);
    const rest = step.slice(sp + 1);
    if (kind === "file") {
      const eq = rest.indexOf("=");
      if (eq < 0) throw new Error(`${file}: setup=file needs path=contents`);
      view.writeFile(rest.slice(0, eq), unescape(rest.slice(eq + 1)));
    } else if (kind === "dir") {
      view.mkdirp(rest);
    } else if (kind === "symlink") {
      const arrow = rest.indexOf("->");
      if (arrow < 0) throw new Error(`${file}: setup=symlink needs link->target`);
      view.symlink(rest.slice(arrow + 2).replace("$OUTSIDE", outside), rest.slice(0, arrow));
    } else {
      throw new Error(`${file}: unknown setup step ${kind}`);
    }
  }
}

function checkAfter(view: SandboxView, steps: readonly string[], file: string): string[] {
  const problems: string[] = [];
  for (const step of steps) {
    const sp = step.indexOf(" ");
    const kind = step.slice(0, sp);
    const rest = step.slice(sp + 1);
    if (kind === "exists") {
      if (!view.exists(rest)) problems.push(`${rest} should exist`);
    } else if (kind === "absent") {
      if (view.exists(rest)) problems.push(`${rest} should not exist`);
    } else if (kind === "content") {
      const eq = rest.indexOf("=");
      const path = rest.slice(0, eq);
      const want = unescape(rest.slice(eq + 1));
      const got = view.read(path);
      if (got !== want) problems.push(`${path} should hold ${JSON.stringify(want)}, holds ${got === undefined ? "nothing" : JSON.stringify(got)}`);
    } else {
      throw new Error(`${file}: unknown after check ${kind}`);
    }
  }
  return problems;
}

/** Every entry under `dir` with its type and contents, to prove nothing changed. */
function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const p = join(rel, name);
      const st = lstatSync(join(dir, p));
      if (st.isDirectory()) {
        out.push(`d ${p}`);
        walk(p);
      } else if (st.isSymbolicLink()) out.push(`l ${p} -> ${readlinkSync(join(dir, p))}`);
      else out.push(`f ${p} ${readFileSync(join(dir, p)).toString("base64")}`);
    }
  };
  walk("");
  return out.join("\n");
}

export function conformancePrograms(): string[] {
  return readdirSync(CONFORMANCE_DIR).filter((f) => f.endsWith(".c")).map((f) => f.slice(0, -2)).sort();
}

const decoder = new TextDecoder();

/** Runs a guest with these options: the kernel in-process, or an executor on some tier. */
export type ProgramRunner = (bytes: Uint8Array, options: KernelOptions) => Promise<RunResult>;

/** The programs' directives and the backends each runs on ("none": no preopen). */
export function conformanceCases(): { name: string; directives: Directives; backends: (Backend | "none")[] }[] {
  return conformancePrograms().map((name) => {
    const d = parseDirectives(readFileSync(join(CONFORMANCE_DIR, `${name}.c`), "utf8"), `${name}.c`);
    return { name, directives: d, backends: d.dir === "none" ? ["none"] : d.backends };
  });
}

/**
 * Runs one program on one backend and asserts what its directives say. Its
 * directories are made under `under` (default: the system's temp dir), so a
 * sandbox that mounts only `under` can be given them.
 */
export async function runConformanceProgram(name: string, d: Directives, backend: Backend | "none", run: ProgramRunner, under: string = tmpdir()): Promise<void> {
  const wasmPath = join(CONFORMANCE_DIR, `${name}.wasm`);
  assert.ok(existsSync(wasmPath), `${name}.wasm is missing: run scripts/build-fixtures.sh`);
  const root = mkdtempSync(join(under, "uniwasm-conformance-"));
  try {
    const sandbox = join(root, "sandbox");
    const outside = join(root, "outside");
    mkdirSync(sandbox);
    mkdirSync(outside);
    writeFileSync(join(outside, "secret.txt"), "secret");
    const outsideBefore = snapshot(outside);

    let view: SandboxView | undefined;
    const preopens: PreopenSpec[] = [];
    if (backend === "host") {
      view = hostView(sandbox);
      preopens.push({ guest: "/sandbox", host: sandbox, readonly: d.dir === "ro" });
    } else if (backend === "memory") {
      const fs = new MemoryFs();
      view = memoryView(fs);
      preopens.push({ guest: "/sandbox", memory: fs, readonly: d.dir === "ro" });
    }
    if (view) applySetup(view, d.setup, outside, `${name}.c`);

    const options: KernelOptions = {
      args: [name, ...d.args],
      env: d.env,
      preopens,
      stdin: d.stdin ?? "",
      stdout: "buffer",
      stderr: "buffer",
    };
    const result = await run(readFileSync(wasmPath), options);
    const stdout = decoder.decode(result.stdout);
    const stderr = decoder.decode(result.stderr);
    const context = [
      `exit ${result.exitCode} (${result.reason}${result.message ? `: ${result.message}` : ""})`,
      stderr ? `stderr: ${stderr.trimEnd()}` : "",
      result.trap ? `trap: ${result.trap.message}\n${result.trap.backtrace}` : "",
    ].filter(Boolean).join("\n");

    assert.equal(result.exitCode, d.exit, `exit code\n${context}`);
    if (d.stdout !== undefined) assert.equal(stdout, d.stdout, `stdout\n${context}`);
    if (d.stderrContains !== undefined) assert.ok(stderr.includes(d.stderrContains), `stderr should contain ${JSON.stringify(d.stderrContains)}\n${context}`);
    if (view) {
      const problems = checkAfter(view, d.after, `${name}.c`);
      assert.deepEqual(problems, [], `after the run\n${context}`);
    }
    assert.equal(snapshot(outside), outsideBefore, "the directory outside the sandbox changed");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
