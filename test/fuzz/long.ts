/**
 * The long fuzz run: `npm run fuzz [-- --seconds 600 --seed 1000 --runEvery 3]`.
 * Alternates mutated-module and host-call batches until the time is up, prints
 * progress and every failure with its seed, exits 1 if anything failed.
 */
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { fuzz, type FuzzReport } from "./harness.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const seconds = arg("seconds", 300);
let seed = arg("seed", Date.now() % 1_000_000_000);
const runEvery = arg("runEvery", 3);
const until = Date.now() + seconds * 1000;
const pool = new ExecutorPool({ size: arg("executors", 2) });
const total: FuzzReport = { cases: 0, outcomes: {}, failures: [] };
console.log(`fuzzing for ${seconds} s from seed ${seed}`);
while (Date.now() < until) {
  const r = await fuzz(pool, { firstSeed: seed, moduleCases: 500, runEvery, hostcallCases: 50, hostcallCalls: 400, until });
  seed += 500;
  total.cases += r.cases;
  for (const [k, v] of Object.entries(r.outcomes)) total.outcomes[k] = (total.outcomes[k] ?? 0) + v;
  for (const f of r.failures) {
    total.failures.push(f);
    console.log(`FAIL ${f.target} seed ${f.seed}: ${f.problem}\n  ${f.trail.split("\n").slice(-10).join("\n  ")}`);
  }
  console.log(`${total.cases} cases, ${total.failures.length} failures`);
}
await pool.close();
console.log(JSON.stringify(total.outcomes, null, 1));
console.log(`${total.cases - total.failures.length} passed, ${total.failures.length} failed`);
process.exit(total.failures.length > 0 ? 1 : 0);
