/**
 * A small, deterministic ustar writer and a bounded reader.
 *
 * Written archives are byte-for-byte reproducible: entries sorted by path,
 * mtime 0, uid/gid 0, no user or group names, fixed modes. That is what makes
 * an image's files layer (and a saved tarball) hash the same on every build.
 * The reader accepts what other tools write for OCI layouts (ustar, GNU long
 * names, pax `path`/`size` records) but only regular files and directories,
 * and refuses absolute paths and `..` so an archive can never name a path
 * outside where it is unpacked.
 */
import { ImageError, type ImageErrorCode } from "./errors.js";

export interface TarEntry {
  /** Relative, `/`-separated, no `.`/`..` segments; directories without a trailing slash. */
  path: string;
  type: "file" | "dir";
  /** File contents (absent for directories). */
  data?: Uint8Array;
}

const BLOCK = 512;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export interface TarReadLimits {
  maxEntries: number;
  maxTotalBytes: number;
}

/** Serializes entries (sorted by path) into a ustar archive. */
export function writeTar(entries: readonly TarEntry[]): Uint8Array {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  let total = 2 * BLOCK;
  for (const e of sorted) total += BLOCK + (e.type === "file" ? roundUp(e.data?.length ?? 0) : 0);
  const out = new Uint8Array(total);
  let pos = 0;
  for (const e of sorted) {
    checkEntryPath(e.path, "tar_write");
    const data = e.type === "file" ? (e.data ?? new Uint8Array()) : new Uint8Array();
    writeHeader(out.subarray(pos, pos + BLOCK), e.type === "dir" ? e.path + "/" : e.path, e.type, data.length);
    pos += BLOCK;
    out.set(data, pos);
    pos += roundUp(data.length);
  }
  return out;
}

function roundUp(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

function writeHeader(h: Uint8Array, path: string, type: "file" | "dir", size: number): void {
  const pathBytes = enc.encode(path);
  let name = pathBytes;
  let prefix = new Uint8Array();
  if (pathBytes.length > 100) {
    // ustar splits long paths at a slash into prefix (155) + name (100).
    let split = -1;
    for (let i = Math.min(pathBytes.length - 1, 155); i >= 0; i--) {
      if (pathBytes[i] === 0x2f && pathBytes.length - i - 1 <= 100 && pathBytes.length - i - 1 > 0) {
        split = i;
        break;
      }
    }
    if (split < 0) throw new ImageError("build_input", `path ${JSON.stringify(path)} is too long for a tar entry (at most 255 bytes, with no segment over 100)`);
    prefix = pathBytes.subarray(0, split);
    name = pathBytes.subarray(split + 1);
  }
  h.set(name, 0);
  writeOctal(h, 100, 8, type === "dir" ? 0o755 : 0o644);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, 0);
  h[156] = type === "dir" ? 0x35 : 0x30;
  h.set(enc.encode("ustar\0"), 257);
  h.set(enc.encode("00"), 263);
  h.set(prefix, 345);
  // Checksum: computed with its own field as spaces.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  writeOctal(h, 148, 7, sum);
  h[155] = 0x20;
}

function writeOctal(h: Uint8Array, off: number, len: number, value: number): void {
  if (value > 8 ** (len - 1) - 1) throw new ImageError("build_input", `a tar entry of ${value} bytes is too large for ustar (at most 8 GiB)`);
  const s = value.toString(8).padStart(len - 1, "0");
  h.set(enc.encode(s), off);
  h[off + len - 1] = 0;
}

/** Parses an archive; `code` is the error code to raise on a malformed one. */
export function readTar(bytes: Uint8Array, limits: TarReadLimits, what: string, code: ImageErrorCode = "layout_invalid"): TarEntry[] {
  const fail = (msg: string): never => {
    throw new ImageError(code, `${what}: ${msg}`);
  };
  const entries: TarEntry[] = [];
  const seen = new Set<string>();
  let pos = 0;
  let total = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  let paxSize: number | undefined;
  while (true) {
    if (pos + BLOCK > bytes.length) fail(`truncated archive at offset ${pos}`);
    const h = bytes.subarray(pos, pos + BLOCK);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    const stored = readOctal(h, 148, 8);
    if (stored !== sum) fail(`bad header checksum at offset ${pos}`);
    const typeflag = String.fromCharCode(h[156]!);
    const size = paxSize ?? readOctal(h, 124, 12);
    if (size === undefined || size < 0) fail(`bad size field at offset ${pos}`);
    const dataStart = pos + BLOCK;
    if (dataStart + size! > bytes.length) fail(`entry at offset ${pos} runs past the end of the archive`);
    const data = bytes.subarray(dataStart, dataStart + size!);
    pos = dataStart + roundUp(size!);
    if (typeflag === "L") {
      longName = cString(data);
      continue;
    }
    if (typeflag === "x") {
      const rec = parsePax(data, fail);
      paxPath = rec.path;
      paxSize = rec.size;
      continue;
    }
    if (typeflag === "g") continue;
    let path = paxPath ?? longName;
    if (path === undefined) {
      const name = cString(h.subarray(0, 100));
      const magic = cString(h.subarray(257, 263));
      const prefix = magic.startsWith("ustar") ? cString(h.subarray(345, 500)) : "";
      path = prefix ? `${prefix}/${name}` : name;
    }
    longName = paxPath = undefined;
    paxSize = undefined;
    path = path.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
    if (path === "" || path === ".") continue;
    let type: "file" | "dir";
    if (typeflag === "0" || typeflag === "\0" || typeflag === "7") type = "file";
    else if (typeflag === "5") type = "dir";
    else fail(`entry ${JSON.stringify(path)} has type ${JSON.stringify(typeflag)}; only regular files and directories are allowed`);
    const bad = entryPathProblem(path);
    if (bad) fail(`entry ${JSON.stringify(path)}: ${bad}`);
    if (seen.has(path)) fail(`entry ${JSON.stringify(path)} appears twice`);
    seen.add(path);
    total += size!;
    if (entries.length + 1 > limits.maxEntries) fail(`more than ${limits.maxEntries} entries`);
    if (total > limits.maxTotalBytes) fail(`more than ${limits.maxTotalBytes} bytes of content`);
    entries.push(type! === "file" ? { path, type: "file", data } : { path, type: "dir" });
  }
  return entries;
}

function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  try {
    return dec.decode(end < 0 ? b : b.subarray(0, end));
  } catch {
    throw new ImageError("layout_invalid", "tar entry name is not valid UTF-8");
  }
}

function readOctal(h: Uint8Array, off: number, len: number): number | undefined {
  const s = cString(h.subarray(off, off + len)).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) return undefined;
  return parseInt(s, 8);
}

function parsePax(data: Uint8Array, fail: (m: string) => never): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) fail("malformed pax header");
    const len = parseInt(dec.decode(data.subarray(pos, sp)), 10);
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) fail("malformed pax record length");
    const rec = dec.decode(data.subarray(sp + 1, pos + len - 1));
    const eq = rec.indexOf("=");
    const key = rec.slice(0, eq);
    const value = rec.slice(eq + 1);
    if (key === "path") out.path = value;
    if (key === "size") {
      if (!/^\d+$/.test(value)) fail("malformed pax size");
      out.size = parseInt(value, 10);
    }
    pos += len;
  }
  return out;
}

/** Why a relative archive path is unsafe, or undefined when it is fine. */
export function entryPathProblem(path: string): string | undefined {
  if (path.startsWith("/")) return "absolute paths are not allowed";
  if (path.includes("\0")) return "NUL in path";
  for (const seg of path.split("/")) {
    if (seg === "" || seg === "." || seg === "..") return "empty, `.` or `..` segments are not allowed";
  }
  return undefined;
}

function checkEntryPath(path: string, what: string): void {
  const bad = entryPathProblem(path);
  if (bad) throw new ImageError("build_input", `${what}: ${JSON.stringify(path)}: ${bad}`);
}
