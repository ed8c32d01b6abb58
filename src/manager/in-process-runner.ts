import { InlineEngine } from "../sandbox/inline.js";
import { EngineRunner } from "./executor-pool-runner.js";

/**
 * Guests on the calling thread: the inline placement of the sandbox's engine
 * (src/sandbox/inline.ts), with the same limits, outcomes and reactor ABI as
 * ExecutorPoolRunner. Modules are still prepared off the serving thread. A
 * deadline is a watchdog on this thread, a guest blocked in a host call
 * blocks it, and there is one guest at a time: for tests and embedding; a
 * node serving tenants uses ExecutorPoolRunner.
 */
export class InProcessRunner extends EngineRunner {
  constructor() {
    super(new InlineEngine({ prepare: "worker" }), "in-process", 1);
  }
}
