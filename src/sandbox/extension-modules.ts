/**
 * Embedder-defined extensions for executors. A handler is code, and code
 * cannot be sent to a worker thread: an embedder puts its extension
 * definitions (`defineExtension(...)`) in a module and gives the pool its
 * URL (`new ExecutorPool({ extensionModules: [url] })`); every executor
 * imports it before it takes work. The providers those handlers call stay on
 * the pool's thread (RunExtensions.providers).
 */
import { pathToFileURL } from "node:url";
import type { Extension } from "../kernel/extensions.js";

function isExtension(v: unknown): v is Extension<any, any> {
  return typeof v === "object" && v !== null && typeof (v as Extension).name === "string" && typeof (v as Extension).functions === "object" && Array.isArray((v as Extension).capabilities);
}

/** A module path or URL as a URL string a worker can import. */
export function extensionModuleUrl(m: string | URL): string {
  if (m instanceof URL) return m.href;
  return /^[a-z]+:/i.test(m) ? m : pathToFileURL(m).href;
}

/** Imports each module and collects the extensions it exports (the default export or named ones). */
export async function loadExtensionModules(urls: readonly string[]): Promise<Extension<any, any>[]> {
  const out: Extension<any, any>[] = [];
  for (const url of urls) {
    const mod = (await import(url)) as Record<string, unknown>;
    const found = Object.values(mod).flatMap((v) => (Array.isArray(v) ? v : [v])).filter(isExtension);
    if (found.length === 0) throw new Error(`extension module ${url} exports no extension (defineExtension(...))`);
    for (const e of found) if (!out.includes(e)) out.push(e);
  }
  return out;
}
