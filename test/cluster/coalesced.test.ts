import { test } from "node:test";
import assert from "node:assert/strict";
import { CoalescedPass } from "../../src/cluster/coalesced.js";

/** A pass that stays running until released, counting how many ran and how many ran at once. */
function gatedPasses() {
  const state = { started: 0, concurrent: 0, maxConcurrent: 0, release: [] as (() => void)[] };
  const pass = async (): Promise<void> => {
    state.started++;
    state.concurrent++;
    state.maxConcurrent = Math.max(state.maxConcurrent, state.concurrent);
    await new Promise<void>((resolve) => state.release.push(resolve));
    state.concurrent--;
  };
  return { state, pass };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test("pokes during a pass collapse into exactly one more pass, never two at once", async () => {
  const { state, pass } = gatedPasses();
  const passes = new CoalescedPass(pass, () => true);
  passes.poke();
  for (let i = 0; i < 5; i++) passes.poke();
  assert.equal(state.started, 1);
  state.release.shift()!();
  await tick();
  assert.equal(state.started, 2, "the pokes made while the first pass ran are one pass");
  state.release.shift()!();
  await tick();
  assert.equal(state.started, 2, "no poke came during the second pass, so nothing more runs");
  assert.equal(state.maxConcurrent, 1);
});

test("a deferred pass is dropped when the runner was disabled meanwhile, and a failed pass is reported", async () => {
  const { state, pass } = gatedPasses();
  let enabled = true;
  const passes = new CoalescedPass(pass, () => enabled);
  passes.poke();
  passes.poke();
  enabled = false;
  state.release.shift()!();
  await tick();
  assert.equal(state.started, 1, "a stopped agent (or a node no longer leader) does not run the deferred pass");

  const errors: Error[] = [];
  const failing = new CoalescedPass(async () => { throw new Error("nats down"); }, () => true, (err) => errors.push(err));
  failing.poke();
  await tick();
  assert.deepEqual(errors.map((e) => e.message), ["nats down"]);
});
