import { Command } from "commander";
import { existsSync } from "node:fs";
import { inspectModuleFile, type ModuleSurface } from "../../kernel/surface.js";
import { WasmError, type Limits } from "../../wasm/index.js";
import { inspectImage } from "../../image/inspect.js";
import { SYSCALL_BY_NAME } from "../../kernel/syscalls.js";

function limits(l: Limits, unit: string): string {
  return `min ${l.min} ${unit}, max ${l.max ?? "none"}${l.shared ? ", shared" : ""}${l.is64 ? ", 64-bit" : ""}`;
}

export function formatSurface(s: ModuleSurface & { file: string; bytes: number }): string {
  const out: string[] = [];
  out.push(`${s.file}: ${s.entry} module, ${s.bytes} bytes`);
  out.push(`syscall surface: ${s.surface} of ${s.total} WASI preview 1 calls`);
  out.push(`capabilities needed: ${s.capabilities.length > 0 ? s.capabilities.join(", ") : "none"}`);
  out.push("imports by subsystem:");
  const groups = Object.entries(s.bySubsystem);
  if (groups.length === 0) out.push("  (none)");
  for (const [sub, names] of groups) {
    out.push(`  ${sub}:`);
    for (const n of names!) out.push(`    ${n.padEnd(26)} ${SYSCALL_BY_NAME.get(n)!.summary}`);
  }
  const exts = Object.entries(s.extensions);
  if (exts.length > 0) {
    out.push(`host extensions (linked only when granted: ${s.extensionGrants.map((g) => `--ext ${g}`).join(", ")}):`);
    for (const [name, items] of exts) {
      out.push(`  ${name}:`);
      for (const i of items) out.push(`    ${(i.kind === "memory" ? `${i.name} (memory)` : i.name).padEnd(26)} ${i.summary}${i.capability !== name ? ` [${i.capability}]` : ""}`);
    }
  }
  if (s.foreign.length > 0) {
    out.push("imports the kernel does not provide (the linker refuses these):");
    for (const f of s.foreign) out.push(`  ${f.module}.${f.name} (${f.kind})`);
  }
  out.push("exports:");
  for (const e of s.exports) out.push(`  ${e.name} (${e.kind})`);
  out.push("memories:");
  if (s.memories.length === 0) out.push("  (none)");
  for (const m of s.memories) out.push(`  ${m.imported ? "imported" : "defined"}: ${limits(m, "pages")}`);
  out.push("tables:");
  if (s.tables.length === 0) out.push("  (none)");
  for (const t of s.tables) out.push(`  ${t.imported ? "imported" : "defined"} ${t.refType}: ${limits(t, "elements")}`);
  return out.join("\n");
}

export function registerInspect(program: Command): void {
  program
    .command("inspect")
    .description("Show a module's (or an image's) imports by subsystem, needed capabilities, exports, limits and syscall surface")
    .argument("<target>", "a .wasm file, or an image reference (name:tag, digest)")
    .option("--json", "print JSON", false)
    .option("--home <dir>", "image store to look IMAGE up in (default $UNIWASM_HOME or ~/.uniwasm)")
    .action(async (target: string, flags: { json: boolean; home?: string }) => {
      process.exitCode = await inspectCommand(target, flags.json, flags.home);
    });
}

async function inspectCommand(target: string, json: boolean, home: string | undefined): Promise<number> {
  try {
    if (existsSync(target)) {
      const s = await inspectModuleFile(target);
      process.stdout.write(json ? JSON.stringify(s, null, 2) + "\n" : formatSurface(s) + "\n");
      return 0;
    }
    const image = await inspectImage(target, home ? { home } : {});
    if (!image) {
      process.stderr.write(`uniwasm inspect: ${target}: no such file, and no image with that reference (see 'uniwasm images')\n`);
      return 1;
    }
    if (json) {
      process.stdout.write(JSON.stringify(image, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n");
    } else {
      const c = image.capabilities;
      process.stdout.write([
        `image ${image.digest}${image.tags.length ? ` (${image.tags.join(", ")})` : ""}`,
        `name: ${image.manifest.name}`,
        `capabilities granted: ${c.granted.join(", ") || "none"}`,
        `capabilities needed:  ${c.needed.join(", ") || "none"}`,
        ...(c.unusedGrants.length ? [`unused grants: ${c.unusedGrants.join(", ")}`] : []),
        ...(c.ungrantedImports.length ? [`ungranted imports: ${c.ungrantedImports.map((u) => JSON.stringify(u)).join(", ")}`] : []),
        `layers: ${image.layers.map((l) => `${l.mediaType} ${l.size} B`).join("; ")}`,
        `signatures: ${image.signatures.length === 0 ? "none" : image.signatures.map((s) => `${s.keyId}${s.trustedAs ? ` trusted as ${s.trustedAs}` : ""}${s.valid === false ? ` INVALID (${s.problem})` : ""}`).join("; ")}`,
        "",
        "uniwasm.toml:",
        image.manifestText,
      ].join("\n") + "\n");
    }
    return 0;
  } catch (err) {
    if (err instanceof WasmError) {
      process.stderr.write(`uniwasm inspect: ${target}: ${err.message}\n`);
      return 1;
    }
    const e = err as Error;
    process.stderr.write(`uniwasm inspect: ${target}: ${e.message}\n`);
    return 1;
  }
}
