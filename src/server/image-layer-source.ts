import { ImageStore, loadImages, loadImage, pullImage, grantedCapabilities, ImageError, type Manifest, type TrustResult } from "../image/index.js";
import type { ImageConfig } from "../store/types.js";
import { ApiError } from "./errors.js";
import type { ImageSource, LoadedDir, LoadedModule, SignaturePolicy } from "./image-source.js";

/** What a node keeps from an image's uniwasm.toml (the rest is deploy-time config). */
export function imageConfigOf(m: Manifest): ImageConfig {
  const http = m.triggers.http;
  const config: ImageConfig = {
    abi: http[0]?.abi ?? (m.entry === "reactor" ? "reactor" : "wagi"),
    env: { ...m.capabilities.env },
    args: [...m.capabilities.args],
    // A trigger without a host is on the app's own host (on a node, "*" is for admins only).
    routes: http.map((t) => (t.host !== undefined ? { host: t.host, path: t.route } : { path: t.route })),
    // Every limit the manifest sets, as it set them (the one limits type).
    limits: { ...m.limits },
  };
  const c = m.capabilities;
  if (c.extensions.length > 0) {
    config.extensions = { grants: [...c.extensions], allowedOutboundHosts: [...c.allowedOutboundHosts], keyValueStores: [...c.keyValueStores], allowedServices: [...c.allowedServices], variables: [...c.variables] };
  }
  return config;
}

/**
 * Refuses what a tenant must never grant itself on a shared node: a host
 * directory (`[[capabilities.dirs]]` with `host`: the node's own files) and
 * listening sockets (the gateway is the only way in). Throws
 * `capability_refused` naming every offending field.
 */
export function checkNodeGrants(m: Manifest): void {
  const problems: string[] = [];
  m.capabilities.dirs.forEach((d, i) => {
    if (d.host !== undefined) problems.push(`capabilities.dirs[${i}] maps ${d.guest} to the host directory ${d.host}; bundle the files in the image instead (files = "...")`);
  });
  if (m.capabilities.listen.length > 0) problems.push(`capabilities.listen (${m.capabilities.listen.join(", ")}) asks for listening sockets; apps are reached through the node's gateway (use [[trigger.http]])`);
  if (problems.length > 0) throw new ApiError("capability_refused", `Image ${m.name} asks for capabilities this node does not grant to tenants: ${problems.join("; ")}.`);
}

/** The image's bundled dirs, in manifest order (host dirs were refused by checkNodeGrants). */
function memoryDirsOf(m: Manifest, files: ReadonlyMap<string, Readonly<Record<string, Uint8Array>>>): LoadedDir[] {
  return m.capabilities.dirs.map((d) => ({ guest: d.guest, readonly: d.mode === "ro", files: { ...(files.get(d.guest) ?? {}) } }));
}

function refusal(err: unknown, pulling: boolean): never {
  if (err instanceof ApiError) throw err;
  if (err instanceof ImageError) {
    if (/^signature_/.test(err.code)) throw new ApiError("signature_required", err.message);
    if (pulling && /registry|network|unreachable|not_found|auth/.test(err.code)) throw new ApiError("pull_failed", err.message);
    throw new ApiError(pulling ? "pull_failed" : "invalid_image", err.message);
  }
  throw err;
}

/**
 * Images through the image layer (src/image): uploads of OCI image layouts
 * (`uniwasm save` tarballs) and pulls from OCI registries, every blob
 * verified, into an image store under the node's data directory whose trust
 * policy (`UNIWASM_HOME=<data>/images uniwasm trust add KEY.pub`) decides
 * which signatures count. With `require-trusted`, unsigned images — and raw
 * module uploads, which cannot carry a signature — are refused.
 */
export function imageLayerSource(home: string, policy: SignaturePolicy): ImageSource {
  const store = new ImageStore(home);
  const toModule = async (digest: string, trust: TrustResult): Promise<LoadedModule> => {
    const img = await loadImage(store, digest as never);
    checkNodeGrants(img.manifest);
    const tag = `${img.manifest.name}`;
    return {
      digest,
      name: tag,
      module: img.module,
      config: imageConfigOf(img.manifest),
      signedBy: trust.verified && trust.signedBy ? `${trust.signedBy.name} (${trust.signedBy.id.slice(0, 16)})` : null,
      capabilities: grantedCapabilities(img.manifest),
      dirs: memoryDirsOf(img.manifest, img.files),
    };
  };
  return {
    fromTarball: async (bytes) => {
      try {
        const r = await loadImages(store, bytes);
        const first = r.images[0];
        if (!first) throw new ApiError("invalid_image", "The uploaded layout holds no image.");
        if (r.images.length > 1) throw new ApiError("invalid_image", `The uploaded layout holds ${r.images.length} images; upload one at a time.`);
        return await toModule(first.digest, first.trust);
      } catch (err) {
        return refusal(err, false);
      }
    },
    pull: async (ref, opts) => {
      try {
        const host = ref.split("/")[0]!;
        const r = await pullImage(store, ref, opts.insecure ? { insecureRegistries: [host] } : {});
        return await toModule(r.digest, r.trust);
      } catch (err) {
        return refusal(err, true);
      }
    },
    checkPolicy: (signedBy) => {
      if (policy === "require-trusted" && !signedBy) {
        throw new ApiError("signature_required", "This node accepts only images signed by a key in its trust policy (--require-signed); this one is unsigned (raw module uploads are always unsigned).");
      }
    },
  };
}
