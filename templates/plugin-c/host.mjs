// A Node program that runs {{name}} as a plugin in uniwasm's sandbox: one warm
// instance on an executor thread, hard limits on memory, fuel and time, and
// nothing granted but the bytes it is called with.
//   node host.mjs "some text"       (needs the uniwasm package: npm install uniwasm)
import { readFileSync } from "node:fs";
import { ExecutorPool } from "uniwasm";

const pool = new ExecutorPool({ size: 1 });
try {
  const plugin = await pool.reactor(readFileSync(new URL("./plugin.wasm", import.meta.url)), {
    limits: { maxMemoryBytes: 16 << 20, fuel: 50_000_000, timeoutMs: 1000 },
  });
  const input = new TextEncoder().encode(process.argv[2] ?? "hello from the host");
  const { value, outcome } = await plugin.call("count_vowels", [input], { result: "bytes" });
  if (outcome.reason !== "exit") throw new Error(`the plugin failed: ${outcome.reason}: ${outcome.message}`);
  process.stdout.write(new TextDecoder().decode(value));
  await plugin.close();
} finally {
  await pool.close();
}
