import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { InstancePool } from "../../src/sandbox/instance-pool.js";
import { fixture } from "./helpers.js";

const pool = new ExecutorPool({ size: 2 });
after(() => pool.close());

describe("reactor instance pools", () => {
  test("acquire hands out instances already initialized from a snapshot", async () => {
    const instances = new InstancePool(pool, fixture("primes-reactor.wasm"), { size: 3 });
    await instances.start();
    assert.equal(instances.idleCount, 3);
    const r = await instances.acquire();
    assert.equal((await r.call("prime_count")).value, 283146);
    await instances.release(r);
    await instances.close();
  });
  test("a released instance is replaced by a fresh one: no state crosses requests", async () => {
    const instances = new InstancePool(pool, fixture("values-reactor.wasm"), { size: 1 });
    await instances.start();
    const a = await instances.acquire();
    assert.equal((await a.call("incr")).value, 1n);
    await instances.release(a);
    const b = await instances.acquire();
    assert.notEqual(a, b);
    assert.equal((await b.call("incr")).value, 1n);
    await instances.release(b, { reuse: true });
    const c = await instances.acquire();
    assert.equal(c, b);
    assert.equal((await c.call("incr")).value, 2n);
    await instances.close();
  });
  test("more concurrent requests than warm instances all get one", async () => {
    const instances = new InstancePool(pool, fixture("values-reactor.wasm"), { size: 2 });
    await instances.start();
    const got = await Promise.all(Array.from({ length: 6 }, () => instances.acquire()));
    assert.equal(new Set(got).size, 6);
    for (const r of got) assert.equal((await r.call("add_i32", [1, 2])).value, 3);
    await Promise.all(got.map((r) => instances.release(r)));
    await instances.close();
  });
});
