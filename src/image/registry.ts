/**
 * A client for the OCI distribution API (what Docker Hub, GHCR, Harbor, Zot
 * and the CNCF Distribution registry speak), over Node's fetch.
 *
 *   HEAD  /v2/<repo>/blobs/<digest>            skip blobs the registry has
 *   POST  /v2/<repo>/blobs/uploads/            start an upload (202 + Location)
 *   PUT   <location>&digest=<d>                monolithic upload (small blobs)
 *   PATCH <location> (Content-Range)           chunked upload, then PUT to finish
 *   PUT   /v2/<repo>/manifests/<ref>           manifest, with its media type
 *   GET   /v2/<repo>/manifests/<ref>           with Accept for OCI manifests
 *   GET   /v2/<repo>/blobs/<digest>            streamed, size-bounded, verified
 *
 * Auth: on a 401 the `WWW-Authenticate` challenge is answered once: Bearer
 * (token from the realm, with Basic credentials if given, cached per scope)
 * or Basic. Plain http is used only for loopback registries (or those the
 * caller lists); everything else is https.
 */
import { ImageError } from "./errors.js";
import { sha256, verifyBlob, type Digest } from "./digest.js";
import { MEDIA_TYPES, OCI_BOUNDS } from "./oci.js";
import { isPlainHttpRegistry } from "./reference.js";
import type { ProgressFn } from "./progress.js";

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryOptions {
  /** Extra registries (host:port) to reach over plain http besides loopback. */
  insecureRegistries?: readonly string[];
  credentials?: RegistryCredentials;
  /** Blobs larger than this are uploaded in chunks of this size. Default 8 MiB. */
  chunkSize?: number;
  onProgress?: ProgressFn;
}

const MANIFEST_ACCEPT = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest].join(", ");

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="…",service="…",scope="…"` (quoted or token values). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!)) !== null) {
    if (p[0] === "") break;
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

export class RegistryClient {
  readonly registry: string;
  readonly base: string;
  private readonly opts: RegistryOptions;
  private readonly tokens = new Map<string, string>();
  private basic = false;

  constructor(registry: string, opts: RegistryOptions = {}) {
    this.registry = registry;
    this.opts = opts;
    const scheme = isPlainHttpRegistry(registry, opts.insecureRegistries) ? "http" : "https";
    this.base = `${scheme}://${registry}`;
  }

  private fail(what: string, res: Response, body?: string): never {
    let detail = body ? body.slice(0, 300) : "";
    try {
      const j = JSON.parse(body ?? "") as { errors?: { code?: string; message?: string }[] };
      if (j.errors?.length) detail = j.errors.map((e) => `${e.code}: ${e.message}`).join("; ");
    } catch {
      /* not JSON: keep the text */
    }
    throw new ImageError("registry_error", `${this.registry}: ${what}: HTTP ${res.status} ${res.statusText}${detail ? ` (${detail.trim()})` : ""}`);
  }

  /** One request, answering an auth challenge once. `scope` is the Bearer scope it needs. */
  private async request(method: string, url: string, scope: string, init: { headers?: Record<string, string>; body?: Uint8Array } = {}): Promise<Response> {
    const send = async (): Promise<Response> => {
      const headers: Record<string, string> = { ...init.headers };
      const token = this.tokens.get(scope);
      if (token) headers.authorization = `Bearer ${token}`;
      else if (this.basic && this.opts.credentials) headers.authorization = basicAuth(this.opts.credentials);
      try {
        return await fetch(url, { method, headers, body: init.body, redirect: "follow" });
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        throw new ImageError("registry_error", `${this.registry}: ${method} ${new URL(url).pathname}: ${cause?.code ?? cause?.message ?? (err as Error).message} (is the registry running at ${this.base}?)`);
      }
    };
    let res = await send();
    if (res.status !== 401) return res;
    const challenge = parseChallenge(res.headers.get("www-authenticate") ?? "");
    await res.body?.cancel();
    if (challenge?.scheme === "bearer" && challenge.params.realm) {
      await this.fetchToken(challenge, scope);
    } else if (challenge?.scheme === "basic" && this.opts.credentials) {
      this.basic = true;
    } else {
      throw new ImageError("registry_error", `${this.registry}: ${method} ${new URL(url).pathname}: authentication required${this.opts.credentials ? "" : " (set UNIWASM_REGISTRY_USERNAME and UNIWASM_REGISTRY_PASSWORD)"}`);
    }
    res = await send();
    if (res.status === 401) throw new ImageError("registry_error", `${this.registry}: ${method} ${new URL(url).pathname}: credentials refused (HTTP 401)`);
    return res;
  }

  private async fetchToken(ch: Challenge, scope: string): Promise<void> {
    const url = new URL(ch.params.realm!);
    if (ch.params.service) url.searchParams.set("service", ch.params.service);
    url.searchParams.set("scope", ch.params.scope ?? scope);
    const headers: Record<string, string> = {};
    if (this.opts.credentials) headers.authorization = basicAuth(this.opts.credentials);
    const res = await fetch(url, { headers });
    const text = await res.text();
    if (!res.ok) throw new ImageError("registry_error", `${this.registry}: token from ${url.origin}${url.pathname}: HTTP ${res.status}`);
    let tok: string | undefined;
    try {
      const j = JSON.parse(text) as { token?: string; access_token?: string };
      tok = j.token ?? j.access_token;
    } catch {
      tok = undefined;
    }
    if (!tok) throw new ImageError("registry_error", `${this.registry}: token endpoint ${url.origin}${url.pathname} returned no token`);
    this.tokens.set(scope, tok);
  }

  private url(repo: string, rest: string): string {
    return `${this.base}/v2/${repo}/${rest}`;
  }

  async hasBlob(repo: string, digest: Digest): Promise<boolean> {
    const res = await this.request("HEAD", this.url(repo, `blobs/${digest}`), `repository:${repo}:pull`);
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    return this.fail(`HEAD blob ${digest}`, res);
  }

  /** Uploads `bytes` as blob `digest`, monolithically or in chunks. */
  async pushBlob(repo: string, digest: Digest, bytes: Uint8Array, progress: (done: number) => void = () => {}): Promise<void> {
    const scope = `repository:${repo}:pull,push`;
    const start = await this.request("POST", this.url(repo, "blobs/uploads/"), scope, { headers: { "content-length": "0" } });
    if (start.status !== 202) this.fail(`start upload of ${digest}`, start, await start.text());
    await start.body?.cancel();
    let location = this.location(start, `upload of ${digest}`);
    const chunk = this.opts.chunkSize ?? 8 * 1024 * 1024;
    if (bytes.length > chunk) {
      for (let off = 0; off < bytes.length; off += chunk) {
        const part = bytes.subarray(off, Math.min(off + chunk, bytes.length));
        const res = await this.request("PATCH", location, scope, {
          headers: { "content-type": "application/octet-stream", "content-range": `${off}-${off + part.length - 1}`, "content-length": String(part.length) },
          body: part,
        });
        if (res.status !== 202) this.fail(`upload chunk ${off}-${off + part.length - 1} of ${digest}`, res, await res.text());
        await res.body?.cancel();
        location = this.location(res, `upload of ${digest}`);
        progress(off + part.length);
      }
      const done = await this.request("PUT", withDigest(location, digest), scope, { headers: { "content-length": "0" } });
      if (done.status !== 201) this.fail(`finish upload of ${digest}`, done, await done.text());
      await done.body?.cancel();
      return;
    }
    const res = await this.request("PUT", withDigest(location, digest), scope, {
      headers: { "content-type": "application/octet-stream", "content-length": String(bytes.length) },
      body: bytes,
    });
    if (res.status !== 201) this.fail(`upload ${digest}`, res, await res.text());
    await res.body?.cancel();
    progress(bytes.length);
  }

  private location(res: Response, what: string): string {
    const loc = res.headers.get("location");
    if (!loc) throw new ImageError("registry_error", `${this.registry}: ${what}: no Location header in the response`);
    return new URL(loc, this.base).toString();
  }

  /** PUTs a manifest under `ref` (tag or digest); checks the registry computed the same digest. */
  async pushManifest(repo: string, ref: string, bytes: Uint8Array, mediaType: string): Promise<Digest> {
    const res = await this.request("PUT", this.url(repo, `manifests/${ref}`), `repository:${repo}:pull,push`, {
      headers: { "content-type": mediaType, "content-length": String(bytes.length) },
      body: bytes,
    });
    if (res.status !== 201) this.fail(`PUT manifest ${repo}:${ref}`, res, await res.text());
    await res.body?.cancel();
    const d = sha256(bytes);
    const theirs = res.headers.get("docker-content-digest");
    if (theirs && theirs !== d) throw new ImageError("registry_error", `${this.registry}: manifest ${repo}:${ref} stored as ${theirs}, but its content is ${d}`);
    return d;
  }

  /** GETs a manifest; null on 404. The body is bounded and its digest checked against `ref` when it is one. */
  async getManifest(repo: string, ref: string): Promise<{ bytes: Uint8Array; digest: Digest; mediaType: string } | null> {
    const res = await this.request("GET", this.url(repo, `manifests/${ref}`), `repository:${repo}:pull`, { headers: { accept: MANIFEST_ACCEPT } });
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (res.status !== 200) this.fail(`GET manifest ${repo}:${ref}`, res, await res.text());
    const bytes = await readBounded(res, OCI_BOUNDS.manifestBytes, `${this.registry}: manifest ${repo}:${ref}`);
    const digest = sha256(bytes);
    if (ref.startsWith("sha256:") && ref !== digest) throw new ImageError("blob_corrupt", `${this.registry}: manifest ${repo}@${ref}: content hashes to ${digest} (tampered in transit or by the registry)`);
    const theirs = res.headers.get("docker-content-digest");
    if (theirs && theirs !== digest) throw new ImageError("blob_corrupt", `${this.registry}: manifest ${repo}:${ref}: the registry says ${theirs} but the content hashes to ${digest}`);
    return { bytes, digest, mediaType: (res.headers.get("content-type") ?? "").split(";")[0]!.trim() };
  }

  /** GETs a blob of known size, streamed with progress, and verifies it. */
  async getBlob(repo: string, digest: Digest, size: number, what: string, progress: (done: number) => void = () => {}): Promise<Uint8Array> {
    const res = await this.request("GET", this.url(repo, `blobs/${digest}`), `repository:${repo}:pull`);
    if (res.status === 404) {
      await res.body?.cancel();
      throw new ImageError("blob_missing", `${what} ${digest} is not in ${this.registry}/${repo}`);
    }
    if (res.status !== 200) this.fail(`GET blob ${digest}`, res, await res.text());
    const bytes = await readBounded(res, size, `${what} ${digest}`, progress);
    verifyBlob(bytes, digest, what, size);
    return bytes;
  }
}

function withDigest(location: string, digest: Digest): string {
  const u = new URL(location);
  u.searchParams.set("digest", digest);
  return u.toString();
}

function basicAuth(c: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

/** Reads a response body, refusing more than `max` bytes (a registry cannot make us buffer without bound). */
async function readBounded(res: Response, max: number, what: string, progress: (done: number) => void = () => {}): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel();
    throw new ImageError("blob_corrupt", `${what}: the registry sends ${declared} bytes where ${max} are expected`);
  }
  const out = new Uint8Array(Number.isFinite(declared) ? declared : max);
  let len = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      if (len + chunk.length > out.length) {
        throw new ImageError("blob_corrupt", `${what}: the registry sends more than ${out.length} bytes`);
      }
      out.set(chunk, len);
      len += chunk.length;
      progress(len);
    }
  }
  return out.subarray(0, len);
}
