import { SYSCALLS } from "./syscalls.js";

/** Renders docs/syscalls.md from the syscall table, so the docs cannot drift from the code. */
export function renderSyscallDocs(): string {
  const lines = [
    "# WASI preview 1 host calls",
    "",
    "Generated from `src/kernel/syscalls.ts` by `npm run docs`; a test fails when this file is stale.",
    "",
    "Every call a module imports is linked only when its capability is granted (see the linker in",
    "`src/kernel/linker.ts`): `fd` calls act on descriptors the instance already holds and are always",
    "linked; `fs` needs a preopened directory; `sockets` calls are linked by default but act only on",
    "preopened listening sockets and their connections; `clocks`, `random`, `args`, `env`, `poll` and",
    "`proc` are granted by default and can be withheld by a manifest.",
    "",
    `${SYSCALLS.length} calls.`,
    "",
    "| call | signature | subsystem | capability | what it does |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const s of SYSCALLS) {
    const params = s.params.map(([n, t]) => `${n}: ${t}`).join(", ");
    lines.push(`| \`${s.name}\` | (${params}) → ${s.result === "errno" ? "errno" : "never returns"} | ${s.subsystem} | ${s.capability} | ${s.summary} |`);
  }
  return lines.join("\n") + "\n";
}
