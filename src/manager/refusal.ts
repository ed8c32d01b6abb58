/**
 * Why the manager would not run a request now. Codes match the server's
 * error catalogue; `retryAfter` (seconds) becomes a Retry-After header.
 */
export type RefusalCode =
  | "tenant_rate_limited"
  | "tenant_cpu_exhausted"
  | "tenant_overloaded"
  | "tenant_memory_exhausted"
  | "node_overloaded"
  | "app_unavailable";

export class Refusal extends Error {
  constructor(readonly code: RefusalCode, message: string, readonly retryAfter = 1) {
    super(message);
    this.name = "Refusal";
  }
}
