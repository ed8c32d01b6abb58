#!/usr/bin/env node
// The bin stays plain JavaScript so that it runs from the compiled tree without a loader.
import { main } from "../dist/src/cli/main.js";

process.exitCode = await main(process.argv.slice(2));
