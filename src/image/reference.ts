/**
 * Image references, as Docker and OCI tools write them:
 *   [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST]
 * REGISTRY is the first path component when it has a '.' or ':' or is
 * `localhost`. Local tags use the same syntax, so `hello:1.0` and
 * `127.0.0.1:5000/demo/hello:1.0` are both names in the store.
 */
import { ImageError } from "./errors.js";
import { isDigest, type Digest } from "./digest.js";

export interface Reference {
  registry?: string;
  repository: string;
  tag?: string;
  digest?: Digest;
}

const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const REGISTRY_RE = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:]+\])(?::\d{1,5})?$/;

export const DEFAULT_TAG = "latest";

export function parseReference(s: string): Reference {
  const bad = (why: string): never => {
    throw new ImageError("ref_invalid", `image reference ${JSON.stringify(s.slice(0, 200))} is invalid: ${why}`);
  };
  if (s.length === 0 || s.length > 512) bad("expected 1 to 512 characters");
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) bad(`${JSON.stringify(d)} after '@' is not a sha256 digest`);
    digest = d as Digest;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) bad(`tag ${JSON.stringify(tag)} must be letters, digits, '_', '.' or '-' (at most 128, not starting with '.' or '-')`);
  }
  const parts = rest.split("/");
  let registry: string | undefined;
  if (parts.length > 1 && (parts[0]!.includes(".") || parts[0]!.includes(":") || parts[0] === "localhost" || parts[0]!.startsWith("["))) {
    registry = parts.shift()!;
    if (!REGISTRY_RE.test(registry)) bad(`registry ${JSON.stringify(registry)} is not a host[:port]`);
  }
  if (parts.length === 0 || parts.some((p) => !COMPONENT_RE.test(p))) {
    bad("repository components must be lowercase letters and digits separated by '.', '_', '__' or '-'");
  }
  const r: Reference = { repository: parts.join("/") };
  if (registry !== undefined) r.registry = registry;
  if (tag !== undefined) r.tag = tag;
  if (digest !== undefined) r.digest = digest;
  return r;
}

/** `registry/repository:tag` (tag defaulting to latest), the key of a tag in the store. */
export function tagName(r: Reference): string {
  return `${r.registry ? r.registry + "/" : ""}${r.repository}:${r.tag ?? DEFAULT_TAG}`;
}

export function formatReference(r: Reference): string {
  return `${r.registry ? r.registry + "/" : ""}${r.repository}${r.tag ? ":" + r.tag : ""}${r.digest ? "@" + r.digest : ""}`;
}

/** Registries reached over plain http: loopback only, unless the user lists more. */
export function isPlainHttpRegistry(registry: string, extra: readonly string[] = []): boolean {
  const host = registry.replace(/:\d+$/, "");
  return host === "localhost" || host === "127.0.0.1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host) || extra.includes(registry);
}
