/**
 * uniwasm's WASI, a drop-in for node:wasi (issue 9): the same programs run the
 * same way through both, switching only the import; the error paths throw
 * what node:wasi throws (same `code`); and where ours differs, it is because
 * it is a sandbox (a symlink out of a preopen is refused).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { WASI as NodeWASI } from "node:wasi";
import { WASI } from "../../src/index.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const module = (name: string) => new WebAssembly.Module(readFileSync(join(ROOT, "test/fixtures/node-wasi", name)));
const wat = (text: string) => new WebAssembly.Module(wabt(text));
const COMMAND = module("command.wasm");
const REACTOR = module("reactor.wasm");

/** Tiny hand-assembled modules for the error paths (the bytes of the WAT in each comment). */
function wabt(kind: string): Uint8Array {
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const type = [0x01, 0x04, 0x01, 0x60, 0x00, 0x00]; // (type (func))
  const func = [0x03, 0x02, 0x01, 0x00]; // one function of type 0
  const mem = [0x05, 0x03, 0x01, 0x00, 0x01]; // (memory 1)
  const code = [0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b]; // empty body
  const exp = (entries: [string, number, number][]) => {
    const body = [entries.length, ...entries.flatMap(([n, kind, idx]) => [n.length, ...Buffer.from(n), kind, idx])];
    return [0x07, body.length, ...body];
  };
  switch (kind) {
    case "command": // (memory (export "memory") 1) (func (export "_start"))
      return new Uint8Array([...header, ...type, ...func, ...mem, ...exp([["memory", 2, 0], ["_start", 0, 0]]), ...code]);
    case "reactor": // (memory (export "memory") 1) (func (export "_initialize"))
      return new Uint8Array([...header, ...type, ...func, ...mem, ...exp([["memory", 2, 0], ["_initialize", 0, 0]]), ...code]);
    case "no-memory": // (func (export "_start"))
      return new Uint8Array([...header, ...type, ...func, ...exp([["_start", 0, 0]]), ...code]);
    default:
      throw new Error(kind);
  }
}

type AnyWASI = { getImportObject(): object; start(i: WebAssembly.Instance): number | undefined; initialize(i: WebAssembly.Instance): void; wasiImport: object };
type Ctor = new (o: object) => AnyWASI;
const IMPLS: [string, Ctor][] = [
  ["node:wasi", NodeWASI as unknown as Ctor],
  ["uniwasm", WASI as unknown as Ctor],
];

interface Sandbox {
  dir: string;
  out: string;
  cleanup(): void;
}

/** A preopen with in.txt, a symlink link-out -> ../outside (holding secret.txt), and a stdout file. */
function sandbox(): Sandbox {
  const top = mkdtempSync(join(tmpdir(), "uniwasm-node-wasi-"));
  const dir = join(top, "sandbox");
  mkdirSync(dir);
  mkdirSync(join(top, "outside"));
  writeFileSync(join(top, "outside/secret.txt"), "secret");
  writeFileSync(join(dir, "in.txt"), "first line\nsecond\nthird\n");
  symlinkSync("../outside", join(dir, "link-out"));
  return { dir, out: join(top, "stdout.txt"), cleanup: () => rmSync(top, { recursive: true, force: true }) };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return "no error";
  } catch (err) {
    return `${(err as Error).name} ${(err as { code?: string }).code}`;
  }
}

describe("uniwasm's WASI runs what node:wasi runs, switching only the import", () => {
  for (const [name, Impl] of IMPLS) {
    test(`[${name}] a command needs start(): args, env, a preopen, stdout and its exit code`, () => {
      const s = sandbox();
      const fd = openSync(s.out, "w");
      try {
        const wasi = new Impl({ version: "preview1", args: ["command", "ada", "7"], env: { GREETING: "hi" }, preopens: { "/sandbox": s.dir }, stdout: fd, returnOnExit: true });
        const instance = new WebAssembly.Instance(COMMAND, wasi.getImportObject() as WebAssembly.Imports);
        assert.equal(wasi.start(instance), 7);
        closeSync(fd);
        const out = readFileSync(s.out, "utf8");
        assert.match(out, /^hello ada, GREETING=hi\nin: first line\n/);
        assert.equal(readFileSync(join(s.dir, "out.txt"), "utf8"), "written by ada\n");
        // The one difference: node:wasi follows a symlink out of its preopen; uniwasm is a sandbox.
        assert.match(out, name === "uniwasm" ? /escape: refused/ : /escape: read the file outside/);
      } finally {
        s.cleanup();
      }
    });

    test(`[${name}] a reactor needs initialize() before its exports work, and keeps its preopens`, () => {
      const s = sandbox();
      try {
        const wasi = new Impl({ version: "preview1", preopens: { "/sandbox": s.dir } });
        const instance = new WebAssembly.Instance(REACTOR, wasi.getImportObject() as WebAssembly.Imports);
        const answer = instance.exports["answer"] as () => number;
        const countLines = instance.exports["count_lines"] as () => number;
        assert.equal(answer(), 0, "constructors have not run");
        wasi.initialize(instance);
        assert.equal(answer(), 42);
        assert.equal(countLines(), 3);
        (wasi as { close?: () => void }).close?.();
      } finally {
        s.cleanup();
      }
    });
  }
});

describe("uniwasm's WASI throws what node:wasi throws", () => {
  const cases: [string, (W: Ctor) => unknown][] = [
    ["start twice", (W) => {
      const w = new W({ version: "preview1" });
      const i = new WebAssembly.Instance(wat("command"), w.getImportObject() as WebAssembly.Imports);
      w.start(i);
      return w.start(i);
    }],
    ["start on a reactor (no _start)", (W) => {
      const w = new W({ version: "preview1" });
      return w.start(new WebAssembly.Instance(wat("reactor"), w.getImportObject() as WebAssembly.Imports));
    }],
    ["initialize on a command (_start present)", (W) => {
      const w = new W({ version: "preview1" });
      return w.initialize(new WebAssembly.Instance(wat("command"), w.getImportObject() as WebAssembly.Imports));
    }],
    ["initialize twice", (W) => {
      const w = new W({ version: "preview1" });
      const i = new WebAssembly.Instance(wat("reactor"), w.getImportObject() as WebAssembly.Imports);
      w.initialize(i);
      return w.initialize(i);
    }],
    ["start after initialize", (W) => {
      const w = new W({ version: "preview1" });
      w.initialize(new WebAssembly.Instance(wat("reactor"), w.getImportObject() as WebAssembly.Imports));
      return w.start(new WebAssembly.Instance(wat("command"), w.getImportObject() as WebAssembly.Imports));
    }],
    ["start on an instance without a memory export", (W) => {
      const w = new W({ version: "preview1" });
      return w.start(new WebAssembly.Instance(wat("no-memory"), w.getImportObject() as WebAssembly.Imports));
    }],
    ["start on something that is not an instance", (W) => new W({ version: "preview1" }).start({} as WebAssembly.Instance)],
    ["no version", (W) => new W({})],
    ["an unknown version", (W) => new W({ version: "preview2" })],
    ["args that are not an array", (W) => new W({ version: "preview1", args: "x" })],
    ["env that is not an object", (W) => new W({ version: "preview1", env: 3 })],
    ["preopens that are not an object", (W) => new W({ version: "preview1", preopens: 3 })],
    ["returnOnExit that is not a boolean", (W) => new W({ version: "preview1", returnOnExit: 1 })],
    ["a stdin that is not a number", (W) => new W({ version: "preview1", stdin: "x" })],
    ["options that are not an object", (W) => new (W as unknown as new (o: unknown) => AnyWASI)(3)],
  ];
  for (const [what, fn] of cases) {
    test(`${what}: the same error code as node:wasi`, () => {
      const theirs = codeOf(() => fn(IMPLS[0]![1]));
      assert.notEqual(theirs, "no error", "node:wasi throws here");
      assert.equal(codeOf(() => fn(IMPLS[1]![1])), theirs);
    });
  }

  test("getImportObject and wasiImport have node:wasi's shape: every preview 1 function under wasi_snapshot_preview1", () => {
    const ours = new WASI({ version: "preview1" });
    const theirs = new NodeWASI({ version: "preview1" });
    assert.deepEqual(Object.keys(ours.getImportObject()), Object.keys(theirs.getImportObject()));
    assert.deepEqual(Object.keys(ours.wasiImport).sort(), Object.keys(theirs.wasiImport).sort());
  });

  test("WASI preview 0 (version \"unstable\") is refused with the reason, where node:wasi accepts it", () => {
    assert.throws(() => new WASI({ version: "unstable" as "preview1" }), /supports "preview1" only/);
  });
});
