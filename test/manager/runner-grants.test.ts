import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ExecutorPoolRunner, InProcessRunner, encodeReactorRequest, type GuestGrants, type InstanceRunner, type ModuleRef, type OutputSinks } from "../../src/manager/index.js";
import type { Limits } from "../../src/limits.js";
import { sha256Digest } from "../../src/store/index.js";

const FIXTURES = join(process.cwd(), "test", "fixtures");
const moduleRef = (rel: string): ModuleRef => {
  const bytes = new Uint8Array(readFileSync(join(FIXTURES, rel)));
  return { digest: sha256Digest(bytes), bytes };
};
const LIMITS: Limits = { maxMemoryBytes: 64 * 1024 * 1024, fuel: null, timeoutMs: 10_000, stdoutBytes: 1 << 20, stderrBytes: 1 << 20 };
const enc = new TextEncoder();

/** An image's grants: a read-only bundled dir, a writable one, no clocks. */
const GRANTS: GuestGrants = {
  preopens: [
    { guest: "/static", memory: { "greeting.txt": enc.encode("hi from memory\n") }, readonly: true },
    { guest: "/scratch", memory: { "log.txt": enc.encode("seed\n") }, readonly: false },
  ],
  capabilities: ["args", "env", "fd", "fs", "poll", "proc"],
};

function collector(): OutputSinks & { text(): string } {
  const chunks: Uint8Array[] = [];
  return { onStdout: (c) => void chunks.push(c.slice()), onStderr: () => undefined, text: () => Buffer.concat(chunks).toString() };
}

const runners: [string, () => InstanceRunner][] = [
  ["executor-pool", () => new ExecutorPoolRunner({ executors: 1 })],
  ["in-process", () => new InProcessRunner()],
];

for (const [name, make] of runners) {
  test(`a WAGI command gets its preopened in-memory dirs and only its granted capabilities (${name} runner)`, async () => {
    const runner = make();
    try {
      const module = moduleRef("wagi/files.wasm");
      await runner.prepare(module);
      const run = async (path: string) => {
        const out = collector();
        const outcome = await runner.runCommand({ ...GRANTS, ...out, module, args: ["files"], env: { PATH_INFO: path }, stdin: new Uint8Array(), limits: LIMITS });
        assert.equal(outcome.reason, "exit", outcome.message);
        return { text: out.text().replace(/^Content-Type: text\/plain\n\n/, ""), denied: outcome.deniedCalls ?? {} };
      };
      assert.equal((await run("/read")).text, "hi from memory\n");
      assert.equal((await run("/write-static")).text, "read-only\n");
      assert.equal((await run("/scratch")).text, "seed\nappended\n");
      assert.equal((await run("/scratch")).text, "seed\nappended\n", "the next run starts from the image's copy");
      const clock = await run("/clock");
      assert.equal(clock.text, "clock_time_get errno=76\n");
      assert.equal(clock.denied["clock_time_get"], 1, "the refused call is counted");
      assert.equal(new TextDecoder().decode(GRANTS.preopens![1]!.memory["log.txt"]), "seed\n", "the image's bytes are untouched");
    } finally {
      await runner.close();
    }
  });

  test(`a reactor instance gets the image's dirs, its writable dir private to the instance, and no ungranted clock (${name} runner)`, async () => {
    const runner = make();
    try {
      const module = moduleRef("reactor/files.wasm");
      await runner.prepare(module);
      const a = await runner.startReactor({ ...GRANTS, module, args: ["files"], env: {}, limits: LIMITS });
      const b = await runner.startReactor({ ...GRANTS, module, args: ["files"], env: {}, limits: LIMITS });
      const call = async (h: typeof a, path: string) => {
        const out = collector();
        const outcome = await h.handle(encodeReactorRequest({ PATH_INFO: path }, new Uint8Array()), out, LIMITS);
        assert.equal(outcome.reason, "exit", outcome.message);
        return out.text().replace(/^Content-Type: text\/plain\n\n/, "");
      };
      try {
        assert.equal(await call(a, "/read"), "hi from memory\n");
        assert.equal(await call(a, "/scratch"), "seed\nappended\n");
        assert.equal(await call(a, "/scratch"), "seed\nappended\nappended\n", "a warm instance keeps its own writes");
        assert.equal(await call(b, "/scratch"), "seed\nappended\n", "another instance never sees them");
        assert.equal(await call(a, "/clock"), "clock_time_get errno=76\n");
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      await runner.close();
    }
  });
}

test("without grants a runner keeps the kernel's defaults (raw module uploads): the clock is granted, no dirs", async () => {
  const runner = new InProcessRunner();
  try {
    const module = moduleRef("wagi/files.wasm");
    const out = collector();
    await runner.runCommand({ ...out, module, args: ["files"], env: { PATH_INFO: "/clock" }, stdin: new Uint8Array(), limits: LIMITS });
    assert.match(out.text(), /clock_time_get errno=0/);
  } finally {
    await runner.close();
  }
});
