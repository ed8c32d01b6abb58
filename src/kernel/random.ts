import { randomFillSync } from "node:crypto";

/** Fills a guest buffer from the OS CSPRNG, in chunks so that huge requests stay bounded per call. */
export function fillRandom(buf: Uint8Array): void {
  const CHUNK = 1 << 16;
  for (let off = 0; off < buf.length; off += CHUNK) {
    randomFillSync(buf, off, Math.min(CHUNK, buf.length - off));
  }
}
