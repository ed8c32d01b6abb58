import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Root of the repository (tests run from dist/test/...). */
export const REPO = fileURLToPath(new URL("../../../", import.meta.url));

/** Bytes of a test/fixtures/c-sandbox/<name> module. */
export function fixture(name: string): Uint8Array {
  return readFileSync(`${REPO}test/fixtures/c-sandbox/${name}`);
}

export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}
