#!/usr/bin/env node
// Regenerates the docs that are derived from code (docs/syscalls.md). Run after `npm run build`.
import { writeFileSync } from "node:fs";
import { renderSyscallDocs } from "../dist/src/kernel/syscall-docs.js";

writeFileSync(new URL("../docs/syscalls.md", import.meta.url), renderSyscallDocs());
console.log("wrote docs/syscalls.md");
