/**
 * `env`: the smallest plugin interface, for modules written in the shape
 * plugin hosts expect (see the seed fixture, test/fixtures/ext/seed.wat):
 *
 *   (import "env" "memory" (memory N))       the host provides the memory
 *   (import "env" "log" (func (param i32 i32)))  one log line: the bytes at [ptr, ptr+len)
 *
 * `log` has no status: an out-of-bounds message traps (the guest's own bad
 * access), a line beyond the flood budget is dropped and counted as denied.
 * Lines go to the same LogProvider as uniwasm:log, at level info.
 */
import { defineExtension } from "../extensions.js";
import { LogBudget, writeLogLine, type LogProvider } from "./log.js";

export const envExtension = defineExtension<LogBudget, LogProvider>({
  name: "env",
  summary: "The plugin seed's interface: a host-provided memory (env.memory) and a log line (env.log).",
  memories: ["memory"],
  needsProvider: true,
  state: () => new LogBudget(),
  functions: {
    log: {
      params: [["ptr", "i32"], ["len", "i32"]],
      result: "none",
      summary: "Write the bytes at [ptr, ptr+len) as one log line (info).",
      handler: (ctx, ptr: number, len: number) => {
        writeLogLine(ctx, "info", ctx.memory.bytes(ptr, len));
      },
    },
  },
});
