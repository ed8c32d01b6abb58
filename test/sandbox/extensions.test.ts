import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Errno } from "../../src/kernel/abi.js";
import { WasiError } from "../../src/kernel/errors.js";
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { reversingProvider, type ProbeProvider } from "../kernel/probe-extension.js";
import { REPO } from "./helpers.js";

const ext = (name: string): Uint8Array => readFileSync(`${REPO}test/fixtures/ext/${name}.wasm`);
const PROBE_MODULE = new URL("../kernel/probe-extension.js", import.meta.url);

describe("extensions in an executor", () => {
  const pool = new ExecutorPool({ size: 2, extensionModules: [PROBE_MODULE] });
  after(() => pool.close());

  test("a provider on the pool's thread is reached by parking the executor, and may be asynchronous", async () => {
    const provider: ProbeProvider = {
      ...reversingProvider,
      echo: (async (b: Uint8Array) => {
        await new Promise((r) => setTimeout(r, 5));
        return b.slice().reverse();
      }) as unknown as ProbeProvider["echo"],
    };
    const r = await pool.reactor(ext("probe"), { extensions: { grants: ["test:probe"], providers: { "test:probe": provider } } });
    const call = await r.call("call_echo", [16, 4]);
    assert.equal(call.outcome.reason, "exit");
    assert.equal(call.value, Errno.SUCCESS);
    assert.equal((await r.call("read", [16])).value, "g".charCodeAt(0), "memory holds the provider's answer, reversed");
    assert.deepEqual(call.outcome.calls, { "test:probe.echo": 1 });
    await r.close();
  });

  test("an errno the provider throws reaches the guest; any other error ends the call as host_fault", async () => {
    const r = await pool.reactor(ext("probe"), { extensions: { grants: ["test:probe"], providers: { "test:probe": reversingProvider } } });
    assert.equal((await r.call("call_fail", [Errno.DQUOT])).value, Errno.DQUOT);
    const f = await r.call("call_fail", [0]);
    assert.equal(f.outcome.reason, "host_fault");
    assert.match(f.outcome.message, /test:probe\.fail: the probe provider broke/);
    await r.close();
  });

  test("an ungranted call is stubbed and counted in the run's denied calls", async () => {
    const r = await pool.run(ext("probe"), { extensions: { grants: [], providers: { "test:probe": reversingProvider } } });
    assert.equal(r.exitCode, Errno.NOTCAPABLE);
    assert.deepEqual(r.denied, { "test:probe.echo": 1 });
  });

  test("a run's provider session is closed when it ends, and a reactor's when it is closed", async () => {
    const r = await pool.run(ext("probe"), { extensions: { grants: ["test:probe"], providers: { "test:probe": reversingProvider } } });
    assert.equal(r.exitCode, 0);
    assert.equal(pool.hostCalls.size, 0);
    const re = await pool.reactor(ext("probe"), { extensions: { grants: ["test:probe"], providers: { "test:probe": reversingProvider } } });
    assert.equal(pool.hostCalls.size, 1);
    await re.close();
    assert.equal(pool.hostCalls.size, 0);
  });

  test("the pool tells a provider which executor a call comes from", async () => {
    const session: { executor?: number } = {};
    const re = await pool.reactor(ext("probe"), { extensions: { grants: ["test:probe"], providers: { "test:probe": reversingProvider }, session } });
    await re.call("call_ping");
    assert.equal(session.executor, re.executorId);
    await re.close();
  });

  test("the seed runs in an executor: env.memory provided, the input placed past its data", async () => {
    const lines: string[] = [];
    const re = await pool.reactor(ext("seed"), { extensions: { grants: ["env"], providers: { env: { log: (_l: string, m: string) => lines.push(m) } } } });
    const r = await re.call("process", [new TextEncoder().encode("hello")]);
    assert.equal(r.value, 5);
    assert.deepEqual(lines, ["processing", "HELLO"]);
    await re.close();
  });

  test("an input larger than the memory grows it, and one past the memory limit ends the call with memory_limit", async () => {
    const big = new Uint8Array(200_000).fill(97);
    const lines: string[] = [];
    const options = { extensions: { grants: ["env"], providers: { env: { log: (_l: string, m: string) => lines.push(m) } } } };
    const re = await pool.reactor(ext("seed"), options);
    const r = await re.call("process", [big]);
    assert.equal(r.value, 200_000);
    assert.ok(r.outcome.memoryBytes >= 200_016, `memory grew to ${r.outcome.memoryBytes}`);
    await re.close();
    const small = await pool.reactor(ext("seed"), { ...options, limits: { maxMemoryBytes: 2 * 65536 } });
    const over = await small.call("process", [big]);
    assert.equal(over.outcome.reason, "memory_limit");
    await small.close();
  });

  test("a provider that throws a WasiError for a policy refusal is the guest's errno, not a fault", async () => {
    const re = await pool.reactor(ext("probe"), {
      extensions: { grants: ["test:probe"], providers: { "test:probe": { ...reversingProvider, ping: () => { throw new WasiError(Errno.ACCES, "no"); } } } },
    });
    assert.equal((await re.call("call_ping")).value, Errno.ACCES);
    await re.close();
  });
});

test("a pool whose extension module cannot be loaded fails each guest request with the reason, and keeps its executors", async () => {
  const pool = new ExecutorPool({ size: 1, extensionModules: [new URL("./no-such-extension.js", import.meta.url)] });
  try {
    const r = await pool.run(ext("probe"), {});
    assert.equal(r.reason, "host_fault");
    assert.match(r.message, /extension modules could not be loaded/);
    assert.equal(pool.stats().replaced, 0);
  } finally {
    await pool.close();
  }
});
