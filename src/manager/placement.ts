/**
 * Where an app's guests run, chosen per app revision at deploy and shown by
 * `uniwasm ps` (docs/node.md, "Placement"):
 *
 * - `inline`: on the serving thread, with no hop to an executor. Only for
 *   work bounded without a thread of its own: a WAGI or reactor app with no
 *   host extensions (their providers may wait) and no sockets, whose module
 *   imports no call that can block the thread (`poll_oneoff` can sleep).
 *   Each request runs under a fuel budget: the app's own fuel when it is
 *   metered within the node's inline budget (`serve --inline-fuel`), else
 *   that budget; no watchdog thread is needed (it costs more than the hop).
 * - `executor`: on an executor (worker thread), for everything else.
 *
 * An inline app moves to executors for the rest of its revision when a
 * request uses up the node's inline budget (that request is run again on an
 * executor with the app's own limits: an inline app's effects stay in its
 * instance, so nothing outside saw the first try), or when its requests
 * average more than INLINE_MAX_AVERAGE_SHARE of the budget in fuel (fuel, not
 * time: wall time on a loaded machine measures the machine, fuel is the same
 * for the same work).
 */
import type { Placement } from "../sandbox/engine.js";
import type { AppRecord } from "../store/types.js";
import type { GuestGrants } from "./runner.js";
import type { ResolvedLimits } from "../limits.js";

export type { Placement };

/** The node's default inline budget per request, in instructions (~5-15 ms of guest code on the development VM). */
export const DEFAULT_INLINE_FUEL = 10_000_000;
/** An inline app whose requests average more than this share of the inline budget in fuel (EWMA) moves to executors: the serving thread keeps only short work. */
export const INLINE_MAX_AVERAGE_SHARE = 0.2;

/** Host calls that can block the thread that runs them. */
const BLOCKING_CALLS = new Set(["poll_oneoff", "sock_accept", "sock_recv", "sock_send", "sock_shutdown"]);

export interface PlacementChoice {
  placement: Placement;
  /** Why, in words (ps and the app's log show it). */
  why: string;
  /** Inline: the fuel budget of one request. */
  fuel?: number;
  /** Inline: the budget is the app's own fuel (running out is the app's limit, not a reason to move). */
  ownFuel?: boolean;
}

/**
 * The placement of an app revision. `imports` are the module's function
 * imports ("module.name"), from its preparation; `inlineFuel` is the node's
 * inline budget (0: inline is off).
 */
export function choosePlacement(app: AppRecord, grants: GuestGrants, inlineFuel: number, imports: readonly string[]): PlacementChoice {
  const executor = (why: string): PlacementChoice => ({ placement: "executor", why });
  if (inlineFuel <= 0) return executor("inline placement is off on this node (serve --inline-fuel 0)");
  if (app.config.abi === "service") return executor("a service runs for as long as it likes");
  if ((app.config.extensions?.grants.length ?? 0) > 0) return executor(`granted host extensions (${app.config.extensions!.grants.join(", ")}): their providers may wait`);
  if (grants.capabilities?.includes("sockets")) return executor("granted sockets");
  const blocking = imports.map((i) => i.slice(i.lastIndexOf(".") + 1)).filter((n) => BLOCKING_CALLS.has(n));
  if (blocking.length > 0) return executor(`imports ${[...new Set(blocking)].join(", ")}, which can block the thread`);
  const fuel = app.config.limits.fuel;
  if (fuel !== null && fuel <= inlineFuel) return { placement: "inline", why: `fuel-metered (${fuel} instructions per request)`, fuel, ownFuel: true };
  return { placement: "inline", why: `bounded by the node's inline fuel (${inlineFuel} instructions per request; past it, the app moves to executors)`, fuel: inlineFuel, ownFuel: false };
}

/** The limits of an inline request: the app's, with the inline fuel budget. */
export function inlineLimits(limits: ResolvedLimits, choice: PlacementChoice): ResolvedLimits {
  return { ...limits, fuel: choice.fuel ?? limits.fuel };
}
