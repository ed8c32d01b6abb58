/**
 * Why the manager would not run a request now. Codes match the server's
 * error catalogue; `retryAfter` (seconds) becomes a Retry-After header.
 */
export type RefusalCode =
  | "tenant_rate_limited"
  | "tenant_cpu_exhausted"
  | "tenant_overloaded"
  | "tenant_concurrency_limited"
  | "tenant_memory_exhausted"
  | "node_overloaded"
  | "app_unavailable";

export class Refusal extends Error {
  constructor(readonly code: RefusalCode, message: string, readonly retryAfter = 1) {
    super(message);
    this.name = "Refusal";
  }
}

/**
 * Why the control plane refused an operation on images or apps (bad
 * settings, a quota, a conflict). Codes match the server's error catalogue,
 * which maps each to its HTTP status; the message is for the caller.
 */
export type ControlErrorCode =
  | "bad_request"
  | "invalid_config"
  | "invalid_module"
  | "image_not_found"
  | "quota_exceeded"
  | "host_not_owned"
  | "domain_not_verified"
  | "domain_not_found"
  | "route_conflict"
  | "app_changed"
  | "domain_taken"
  | "image_in_use"
  | "node_overloaded"
  | "tenant_cpu_exhausted";

export class ControlError extends Error {
  constructor(
    readonly code: ControlErrorCode,
    message: string,
    /** Seconds until trying again makes sense (a Retry-After header). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = "ControlError";
  }
}
