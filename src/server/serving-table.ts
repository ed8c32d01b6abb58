/**
 * What the main thread tells its serving threads (serving-threads.ts,
 * serving-thread.ts), and what they tell it back. Plain data: it crosses
 * threads by structured clone.
 */
import type { AppRecord, TenantRecord, TenantQuotas } from "../store/types.js";
import type { GuestGrants, ModuleRef, RunOutcome } from "../manager/runner.js";
import type { ResolvedLimits } from "../limits.js";
import type { PlacementChoice } from "../manager/placement.js";
import type { RequestFinished } from "./gateway.js";
import type { InvokeResult } from "../manager/manager.js";

/** An app a serving thread runs itself: placed inline by the main thread's manager. */
export interface InlineApp {
  appId: string;
  revision: number;
  abi: "wagi" | "reactor";
  module: ModuleRef;
  grants: Pick<GuestGrants, "preopens" | "capabilities">;
  /** Limits of an inline request (the inline fuel budget). */
  limits: ResolvedLimits;
  placement: PlacementChoice;
  /** A reactor's args and env. */
  args: string[];
  env: Record<string, string>;
}

/** The node's routing and placement as one snapshot, versioned; sent whole on every change (deploys are rare). */
export interface ServingTable {
  version: number;
  routes: { host: string; pathPrefix: string; appId: string }[];
  apps: { app: AppRecord; tenant: TenantRecord }[];
  inline: InlineApp[];
  /** Tenants with their slot in the shared meters and their quotas. */
  tenants: { id: string; name: string; slot: number; quotas: TenantQuotas }[];
}

export type ServingEvent =
  | { k: "request"; tenantId: string; appId: string; e: Omit<RequestFinished, "tenant" | "app"> }
  | { k: "ran"; appId: string; kind: "command" | "reactor"; start: "cold" | "warm"; outcome: RunOutcome }
  | { k: "refused"; tenantId: string; appId: string; code: string }
  | { k: "stderr"; appId: string; chunk: Uint8Array }
  | { k: "event"; appId: string; line: string }
  | { k: "warn"; message: string };

export type ToServingThread =
  | { type: "table"; table: ServingTable }
  | { type: "reply"; id: number; result?: InvokeResult; output: { stream: "stdout" | "stderr"; chunk: Uint8Array }[]; refusal?: { code: string; message: string; retryAfter: number }; error?: string }
  | { type: "close" };

export type FromServingThread =
  | { type: "ready" }
  | { type: "applied"; version: number }
  | { type: "invoke"; id: number; appId: string; env: Record<string, string>; args: string[]; body: Uint8Array; moved?: string }
  | { type: "events"; events: ServingEvent[] }
  | { type: "closed" };
