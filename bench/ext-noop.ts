/**
 * "bench:noop": the extension the extension benchmark measures the
 * mechanism with (loaded into executors as an extension module): `noop`
 * answers in the executor, `ping` makes one provider round trip to the
 * pool's thread and back.
 */
import { Errno } from "../src/kernel/abi.js";
import { defineExtension } from "../src/kernel/extensions.js";

export const benchNoop = defineExtension<undefined, { ping(): void }>({
  name: "bench:noop",
  summary: "Benchmark no-ops.",
  functions: {
    noop: { params: [], result: "errno", summary: "Nothing, in the executor.", handler: () => Errno.SUCCESS },
    ping: {
      params: [],
      result: "errno",
      summary: "One provider round trip.",
      handler: (ctx) => {
        ctx.provider.ping();
        return Errno.SUCCESS;
      },
    },
  },
});
