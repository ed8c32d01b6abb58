#!/usr/bin/env node
// The bin stays plain JavaScript so that it runs from the compiled tree without a loader.
import { main } from "../dist/src/cli/main.js";

// `uniwasm ... | head`: a closed pipe ends the output quietly, as Unix tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await main(process.argv.slice(2));
