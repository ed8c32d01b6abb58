/**
 * `uniwasm build`: a directory with uniwasm.toml and a module -> an image.
 *
 * Reproducible by construction: the layers are the module's bytes, the
 * manifest's bytes, and ustar archives of the `files` dirs written with
 * sorted entries and zeroed metadata; the config's `created` is the epoch.
 * So the same inputs always give the same digest, on any machine.
 */
import { lstat, readFile, readdir, realpath, stat } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { ImageError } from "./errors.js";
import type { Digest } from "./digest.js";
import { MANIFEST_BOUNDS, MANIFEST_FILE, parseManifest, type Manifest } from "./manifest.js";
import { describeModule, entryProblems } from "./module-info.js";
import { checkGrants, type GrantReport } from "./grants.js";
import { ANNOTATIONS, descriptor, FIXED_CREATED, jsonBytes, MEDIA_TYPES, OCI_BOUNDS, type Descriptor, type OciManifest, type WasmConfig } from "./oci.js";
import { writeTar, type TarEntry } from "./tar.js";
import type { ImageStore } from "./store.js";
import { signImage, loadPrivateKey } from "./signing.js";
import type { ProgressFn } from "./progress.js";

export interface BuildOptions {
  /** Directory holding the manifest; default the current directory. */
  dir?: string;
  /** Manifest file, relative to `dir`; default uniwasm.toml. */
  manifestFile?: string;
  /** Tags to point at the image; default `<name>:<version>` and `<name>:latest`. */
  tags?: readonly string[];
  /** Path of an Ed25519 private key (PEM) to sign the image with. */
  signKey?: string;
  onProgress?: ProgressFn;
}

export interface BuildResult {
  digest: Digest;
  manifest: Manifest;
  tags: string[];
  /** Unused grants and ungranted imports, one line each, for people. */
  warnings: string[];
  grants: GrantReport;
  /** Key id that signed the image, when signKey was given. */
  signedBy?: string;
  size: number;
}

export async function buildImage(store: ImageStore, opts: BuildOptions = {}): Promise<BuildResult> {
  const dir = resolve(opts.dir ?? ".");
  const manifestPath = join(dir, opts.manifestFile ?? MANIFEST_FILE);
  const progress = opts.onProgress ?? (() => {});
  const manifestBytes = await readInput(manifestPath, MANIFEST_BOUNDS.fileBytes, "manifest");
  const manifestText = new TextDecoder().decode(manifestBytes);
  const manifest = parseManifest(manifestText, relative(process.cwd(), manifestPath) || manifestPath);
  const realDir = await realpath(dir);

  const modulePath = await insideDir(realDir, manifest.source, "module.source");
  const module = await readInput(modulePath, OCI_BOUNDS.moduleBytes, "module");
  const summary = await describeModule(module, `module ${manifest.source}`);
  const entry = entryProblems(summary, manifest.entry, manifest.exports);
  if (entry.length > 0) throw new ImageError("module_invalid", `module ${manifest.source}: ${entry.join("; ")}`);
  const grants = checkGrants(manifest, summary.imports);
  const warnings = [
    ...grants.unusedGrants.map((u) => `unused grant: ${u}`),
    ...grants.ungrantedImports.map((i) => `ungranted import ${i.module}.${i.name}: ${i.reason} (linked to a stub returning ENOTCAPABLE; refused with --strict)`),
  ];

  const layers: Descriptor[] = [];
  const blobs: Uint8Array[] = [];
  const add = (d: Descriptor, bytes: Uint8Array): void => {
    layers.push(d);
    blobs.push(bytes);
  };
  add(descriptor(MEDIA_TYPES.wasm, module, { [ANNOTATIONS.title]: baseName(manifest.source) }), module);
  add(descriptor(MEDIA_TYPES.uniwasmManifest, manifestBytes, { [ANNOTATIONS.title]: MANIFEST_FILE }), manifestBytes);
  let fileCount = 0;
  let fileBytes = 0;
  for (const d of manifest.capabilities.dirs) {
    if (d.files === undefined) continue;
    const root = await insideDir(realDir, d.files, `files for ${d.guest}`);
    const entries: TarEntry[] = [];
    await collectFiles(realDir, root, "", entries, (n, b) => {
      fileCount += n;
      fileBytes += b;
      if (fileCount > OCI_BOUNDS.files) throw new ImageError("build_input", `the image's files exceed ${OCI_BOUNDS.files} entries`);
      if (fileBytes > OCI_BOUNDS.filesBytes) throw new ImageError("build_input", `the image's files exceed ${OCI_BOUNDS.filesBytes} bytes`);
    });
    const tar = writeTar(entries);
    add(descriptor(MEDIA_TYPES.uniwasmFiles, tar, { [ANNOTATIONS.filesGuest]: d.guest, [ANNOTATIONS.title]: d.files }), tar);
  }

  const config: WasmConfig = { created: FIXED_CREATED, architecture: "wasm", os: "wasip1", layerDigests: layers.map((l) => l.digest) };
  const configBytes = jsonBytes(config);
  const annotations: Record<string, string> = { [ANNOTATIONS.title]: manifest.name, [ANNOTATIONS.version]: manifest.version };
  if (manifest.description) annotations[ANNOTATIONS.description] = manifest.description;
  const oci: OciManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: descriptor(MEDIA_TYPES.wasmConfig, configBytes),
    layers,
    annotations,
  };
  const ociBytes = jsonBytes(oci);

  const total = blobs.reduce((s, b) => s + b.length, 0) + configBytes.length + ociBytes.length;
  let done = 0;
  for (const b of [...blobs, configBytes]) {
    await store.putBlob(b);
    done += b.length;
    progress({ phase: "store", done, total });
  }
  const digest = await store.putBlob(ociBytes);
  progress({ phase: "store", done: total, total });
  const tags = opts.tags && opts.tags.length > 0 ? [...opts.tags] : [`${manifest.name}:${manifest.version}`, `${manifest.name}:latest`];
  await store.addImage(digest, tags);
  const result: BuildResult = { digest, manifest, tags, warnings, grants, size: total };
  if (opts.signKey) {
    const key = await loadPrivateKey(opts.signKey);
    result.signedBy = await signImage(store, digest, key);
  }
  return result;
}

async function readInput(path: string, max: number, what: string): Promise<Uint8Array> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new ImageError("build_input", `${what} ${path} does not exist`);
  }
  if (!st.isFile()) throw new ImageError("build_input", `${what} ${path} is not a regular file`);
  if (st.size > max) throw new ImageError("build_input", `${what} ${path} is ${st.size} bytes; at most ${max} allowed`);
  return readFile(path);
}

/** Resolves `rel` under `root`, following symlinks, and refuses anything that lands outside. */
async function insideDir(root: string, rel: string, what: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(join(root, rel));
  } catch {
    throw new ImageError("build_input", `${what}: ${rel} does not exist in ${root}`);
  }
  if (real !== root && !real.startsWith(root + sep)) throw new ImageError("build_input", `${what}: ${rel} resolves to ${real}, outside the build directory ${root}`);
  return real;
}

/** Walks `dir` in sorted order; symlinks are followed only when they stay inside the build directory. */
async function collectFiles(buildRoot: string, dir: string, prefix: string, out: TarEntry[], count: (n: number, bytes: number) => void): Promise<void> {
  const st = await stat(dir);
  if (!st.isDirectory()) throw new ImageError("build_input", `files: ${dir} is not a directory`);
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const path = join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    let target = path;
    const l = await lstat(path);
    if (l.isSymbolicLink()) target = await insideDir(buildRoot, relative(buildRoot, path), `files: symlink ${rel}`);
    const s = await stat(target);
    if (s.isDirectory()) {
      out.push({ path: rel, type: "dir" });
      count(1, 0);
      await collectFiles(buildRoot, target, rel, out, count);
    } else if (s.isFile()) {
      count(1, s.size);
      out.push({ path: rel, type: "file", data: await readFile(target) });
    } else {
      throw new ImageError("build_input", `files: ${rel} is neither a file nor a directory`);
    }
  }
}

function baseName(p: string): string {
  return p.split("/").pop() ?? p;
}
