// The plugin seed run by a Node program: this host supplies the module's
// `env.memory` and `env.log` itself, as an extension of its own.
//
//   node examples/seed-plugin/host.mjs [INPUT]
//
// The module may touch nothing else: no WASI, no other extension.
import { readFile } from "node:fs/promises";
import { callModule, defineExtension } from "uniwasm";

const env = defineExtension({
  name: "env",
  summary: "This host's env: the plugin's memory and a log function.",
  // The kernel creates the memory the module imports (with its declared limits) once env is granted.
  memories: ["memory"],
  functions: {
    log: {
      params: [["ptr", "i32"], ["len", "i32"]],
      result: "none",
      summary: "Print the bytes at [ptr, ptr+len) as a line.",
      // ctx.memory is the kernel's bounds-checked view: a bad pointer ends the call with a trap, never a host crash.
      handler: (ctx, ptr, len) => console.log(`plugin log: ${ctx.memory.string(ptr, len)}`),
    },
  },
});

const bytes = await readFile(new URL("./seed.wasm", import.meta.url));
const input = process.argv[2] ?? "hello";
const result = await callModule(bytes, "process", { input, extensions: { define: [env], grants: ["env"] } });
if (result.reason !== "exit") {
  console.error(`the plugin failed: ${result.reason}: ${result.message}`);
  process.exit(1);
}
console.log(`process(${JSON.stringify(input)}) returned ${result.value}`);
