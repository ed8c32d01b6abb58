/**
 * The pool's end of extension provider calls. A run (or a reactor) granted
 * extensions opens a session holding its providers; the guest's executor
 * reaches them by parking on its io-bridge channel (kernel/io-bridge.ts, op
 * "host"), and this table runs the method on the pool's thread, where it may
 * do asynchronous work (SQLite, HTTP, another app). Sessions are numbered by
 * the pool, never by the guest, so a guest can reach only its own providers.
 */
import type { HostCallHandler } from "../kernel/io-bridge.js";

/** What a run is granted beyond WASI, and who provides it (see kernel/extensions.ts). */
export interface RunExtensions {
  /** Extension names ("uniwasm:kv") or single capabilities ("uniwasm:kv/read"). */
  grants?: readonly string[];
  /** Providers by extension name: plain objects whose methods the extensions call; they may return promises. */
  providers?: Readonly<Record<string, object>>;
  /** The pool sets `executor` before each provider call: which executor the call comes from (to keep nested calls off it). */
  session?: { executor?: number };
  /**
   * Told the time each provider call took on this thread, ms (its synchronous
   * part: an awaited answer costs the thread nothing while it waits). The
   * manager charges it to the tenant, whose guest made this thread work, and
   * may return a pause, ms: the answer then reaches the guest that much later
   * (a tenant ahead of its share of the thread, manager/pacing.ts).
   */
  onHostTime?: (ms: number) => number | void;
}

/** The portable form an executor receives: the session number stands for the providers. */
export interface PortableExtensions {
  grants: string[];
  session: number;
  /** Extensions that have a provider in the session. */
  provided: string[];
  /** The providers' plain fields (numbers, strings, booleans) by extension: read in the executor without a call (a limit checked before a big value crosses). */
  fields?: Record<string, Record<string, number | string | boolean>>;
}

/** A provider's own fields that are plain values (its methods stay on this thread). */
function plainFields(provider: object): Record<string, number | string | boolean> | undefined {
  let out: Record<string, number | string | boolean> | undefined;
  for (const [k, v] of Object.entries(provider)) if (typeof v === "number" || typeof v === "string" || typeof v === "boolean") (out ??= {})[k] = v;
  return out;
}

interface Session {
  providers: Readonly<Record<string, object>>;
  info: { executor?: number } | undefined;
  onHostTime: ((ms: number) => number | void) | undefined;
}

export class HostCallSessions {
  private nextId = 1;
  private readonly sessions = new Map<number, Session>();

  /** Registers a run's providers; returns what to send to the executor. */
  open(ext: RunExtensions): PortableExtensions {
    const id = this.nextId++;
    const providers = ext.providers ?? {};
    this.sessions.set(id, { providers, info: ext.session, onHostTime: ext.onHostTime });
    const portable: PortableExtensions = { grants: [...(ext.grants ?? [])], session: id, provided: Object.keys(providers) };
    for (const [name, provider] of Object.entries(providers)) {
      const f = plainFields(provider);
      if (f) (portable.fields ??= {})[name] = f;
    }
    return portable;
  }

  close(p: PortableExtensions | undefined): void {
    if (p) this.sessions.delete(p.session);
  }

  get size(): number {
    return this.sessions.size;
  }

  readonly handler: HostCallHandler = ({ session, ext, method, args, tag }) => {
    const s = this.sessions.get(session);
    if (!s) throw new Error(`extension session ${session} is closed`);
    const provider = s.providers[ext] as Record<string, unknown> | undefined;
    if (!provider) throw new Error(`no provider for extension ${ext}`);
    const fn = provider[method];
    if (typeof fn !== "function") throw new Error(`the ${ext} provider has no method ${method}`);
    if (s.info) s.info.executor = tag;
    if (!s.onHostTime) return (fn as (...a: unknown[]) => unknown).apply(provider, args);
    const started = performance.now();
    let answer: unknown;
    try {
      answer = (fn as (...a: unknown[]) => unknown).apply(provider, args);
    } catch (err) {
      s.onHostTime(performance.now() - started);
      throw err;
    }
    const pause = s.onHostTime(performance.now() - started);
    if (!pause || pause <= 0) return answer;
    // Promise.all takes the answer's rejection at once (no unhandled rejection while pausing).
    return Promise.all([answer, new Promise((resolve) => setTimeout(resolve, pause))]).then(([a]) => a);
  };
}
