/**
 * Shared bits of the image commands (build, images, rmi, key, push, pull,
 * save, load, trust): one error-reporting wrapper, sizes, tables and the
 * registry options taken from flags and the environment.
 */
import { ImageError } from "./errors.js";
import { parseReference } from "./reference.js";
import type { RegistryOptions } from "./registry.js";

/**
 * Runs a command body: an ImageError prints `uniwasm CMD: message` and exits
 * 1; anything else is a bug and propagates with its stack.
 */
export async function imageAction(command: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
    process.exitCode ??= 0;
  } catch (err) {
    if (err instanceof ImageError) {
      // A ManifestError lists one problem per line; each gets the prefix.
      process.stderr.write(err.message.split("\n").map((l) => `uniwasm ${command}: ${l}\n`).join(""));
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** Left-aligned columns separated by three spaces, like `docker images`. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("   ");
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** Registry options from `--plain-http` and UNIWASM_REGISTRY_USERNAME / UNIWASM_REGISTRY_PASSWORD. */
export function registryOptions(ref: string, flags: { plainHttp?: boolean }): RegistryOptions {
  const opts: RegistryOptions = {};
  if (flags.plainHttp) {
    const r = parseReference(ref);
    if (r.registry) opts.insecureRegistries = [r.registry];
  }
  const username = process.env.UNIWASM_REGISTRY_USERNAME;
  const password = process.env.UNIWASM_REGISTRY_PASSWORD;
  if (username && password) opts.credentials = { username, password };
  return opts;
}
