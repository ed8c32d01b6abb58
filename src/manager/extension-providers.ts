/**
 * The providers behind the built-in extensions (dependency inversion: the
 * kernel defines each interface, this file implements them over the node's
 * parts), and the factory that gives each instance the ones its app is
 * granted. Every provider is scoped when it is made (tenant, app, allow
 * lists), so a guest can name nothing outside its own scope: the kv store
 * ids, variable names and callees it passes are checked here.
 *
 * The command line uses the same builders with a standalone KV file and
 * its own lists (src/cli/extensions.ts).
 */
import { Errno } from "../kernel/abi.js";
import { WasiError } from "../kernel/errors.js";
import { ExtensionDenied } from "../kernel/extensions.js";
import type { HttpProvider, KvProvider, LogLevel, LogProvider, ServiceProvider, VariablesProvider } from "../kernel/ext/index.js";
import type { KvBackend, KvQuotas } from "../store/kv.js";
import type { ExtensionGrants } from "../store/types.js";
import type { RunExtensions } from "../sandbox/host-calls.js";
import type { ExtensionFactory, ExtensionScope } from "./manager.js";
import type { OutboundHttp } from "./outbound-http.js";

/** A provider whose methods may answer with a promise (a guest in an executor waits for it by parking). */
export type MaybeAsync<P> = { [K in keyof P]: P[K] extends (...a: infer A) => infer R ? (...a: A) => R | Promise<R> : P[K] };

/** A kv provider over `kv` for one app: store 0 is `own`, other granted names are the tenant's shared stores. */
export function kvProvider(kv: KvBackend, scope: { tenantId: string; appId: string | null; own: string; shared: readonly string[] }, quotas: () => KvQuotas): MaybeAsync<KvProvider> {
  const stores = [scope.own];
  const byName = new Map<string, number>([["default", 0]]);
  const store = (id: number): string => {
    const s = stores[id];
    if (s === undefined) throw new WasiError(Errno.BADF, `${id} is not an open store`);
    return s;
  };
  const appOf = (id: number): string | null => (id === 0 ? scope.appId : null);
  const limits = quotas();
  return {
    // Checked where the guest runs, before a value crosses threads; set() checks the quotas of the moment again.
    maxValueBytes: limits.maxValueBytes,
    maxKeyBytes: limits.maxKeyBytes,
    open(name) {
      const known = byName.get(name);
      if (known !== undefined) return known;
      if (!scope.shared.includes(name)) throw new ExtensionDenied(Errno.ACCES, `kv store ${JSON.stringify(name)} is not granted (capabilities.key_value_stores)`);
      stores.push(`shared:${name}`);
      byName.set(name, stores.length - 1);
      return stores.length - 1;
    },
    get: (id, key) => kv.get(scope.tenantId, store(id), key),
    set: (id, key, value) => kv.set(scope.tenantId, store(id), appOf(id), key, value, quotas()),
    delete: (id, key) => kv.delete(scope.tenantId, store(id), key),
    list: (id, prefix, cursor, maxBytes) => kv.list(scope.tenantId, store(id), prefix, cursor, maxBytes),
    increment: (id, key, delta) => kv.increment(scope.tenantId, store(id), appOf(id), key, delta, quotas()),
    compareAndSet: (id, key, expected, value) => kv.compareAndSet(scope.tenantId, store(id), appOf(id), key, expected, value, quotas()),
  };
}

/** Variables: only the granted names, read through `lookup` (the store, or the command line's values). */
export function variablesProvider(granted: readonly string[], lookup: (name: string) => string | null): VariablesProvider {
  return {
    get(name) {
      if (!granted.includes(name)) throw new ExtensionDenied(Errno.ACCES, `variable ${name} is not granted (capabilities.variables)`);
      return lookup(name);
    },
  };
}

/** Outbound HTTP through the checked client, to this app's allow-list only. */
export function httpProvider(client: OutboundHttp, allowed: readonly string[]): HttpProvider {
  const list = [...allowed];
  return { request: (req) => client.request(list, req) };
}

export function logProvider(write: (level: LogLevel, line: string) => void): LogProvider {
  return { log: write };
}

/** Who makes a service call: what the service router needs to check and place it. */
export interface ServiceCaller {
  tenantId: string;
  appId: string;
  appName: string;
  /** Apps calling the caller (outermost first): the callee must not be among them. */
  chain: readonly string[];
  /** The executor the caller is parked on, if known. */
  executor?: number;
  /** The callees it is granted. */
  allowed: readonly string[];
}

/** What the node supplies for extensions; a missing part leaves its extension without a provider. */
export interface ExtensionHost {
  /** This node's SQLite store, or the cluster's JetStream bucket. */
  kv?: KvBackend;
  kvQuotas?: (tenantId: string) => KvQuotas;
  variables?: (appId: string, name: string) => string | null;
  http?: OutboundHttp;
  log?: (scope: ExtensionScope, level: LogLevel, line: string) => void;
  services?: (caller: ServiceCaller, name: string, input: Uint8Array) => Promise<{ status: number; body: Uint8Array }>;
}

export const NO_EXTENSIONS: Readonly<ExtensionGrants> = Object.freeze({ grants: [], allowedOutboundHosts: [], keyValueStores: [], allowedServices: [], variables: [] });

const grantsAny = (grants: readonly string[], ext: string): boolean => grants.some((g) => g === ext || g.startsWith(`${ext}/`));

/**
 * The manager's ExtensionFactory over `host`: for each instance, providers
 * for exactly the built-in extensions its app is granted.
 */
export function extensionFactory(host: ExtensionHost): ExtensionFactory {
  return (scope): RunExtensions | undefined => {
    const g = scope.app.config.extensions ?? NO_EXTENSIONS;
    if (g.grants.length === 0) return undefined;
    const providers: Record<string, object> = {};
    const session: { executor?: number } = {};
    const has = (ext: string): boolean => grantsAny(g.grants, ext);
    if ((has("uniwasm:log") || has("env")) && host.log) {
      const log = logProvider((level, line) => host.log!(scope, level, line));
      providers["uniwasm:log"] = log;
      providers["env"] = log;
    }
    if (has("uniwasm:kv") && host.kv) {
      const quotas = host.kvQuotas ?? (() => ({ maxKeyBytes: 1024, maxValueBytes: 1 << 20, maxTotalBytes: 64 << 20 }));
      providers["uniwasm:kv"] = kvProvider(host.kv, { tenantId: scope.tenantId, appId: scope.app.id, own: `app:${scope.app.id}`, shared: g.keyValueStores }, () => quotas(scope.tenantId));
    }
    if (has("uniwasm:variables") && host.variables) {
      const lookup = host.variables;
      providers["uniwasm:variables"] = variablesProvider(g.variables, (name) => lookup(scope.app.id, name));
    }
    if (has("uniwasm:http") && host.http) providers["uniwasm:http"] = httpProvider(host.http, g.allowedOutboundHosts);
    if (has("uniwasm:service") && host.services) {
      const services = host.services;
      const service: ServiceProvider = {
        call: (name, input) =>
          services(
            { tenantId: scope.tenantId, appId: scope.app.id, appName: scope.app.name, chain: scope.call.chain, ...(session.executor !== undefined ? { executor: session.executor } : {}), allowed: g.allowedServices },
            name,
            input,
          ),
      };
      providers["uniwasm:service"] = service;
    }
    return { grants: [...g.grants], providers, session };
  };
}
