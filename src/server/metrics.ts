import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The node's Prometheus metrics, in a registry of its own (two nodes in one process never mix). */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"tenant" | "app" | "status">;
  readonly forwarded: Counter<"tenant" | "app" | "status">;
  readonly latency: Histogram<"tenant" | "app">;
  readonly starts: Counter<"tenant" | "app" | "kind">;
  readonly fuel: Counter<"tenant" | "app">;
  readonly memory: Gauge<"tenant" | "app">;
  readonly denied: Counter<"tenant" | "app" | "call">;
  readonly limitHits: Counter<"tenant" | "app" | "reason">;
  readonly refusals: Counter<"tenant" | "code">;
  readonly queueWait: Histogram<"tenant">;
  readonly liveInstances: Gauge<"tenant">;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "uniwasm_process_" });
    const registers = [this.registry];
    this.requests = new Counter({ name: "uniwasm_requests_total", help: "Gateway requests by tenant, app and HTTP status", labelNames: ["tenant", "app", "status"], registers });
    this.forwarded = new Counter({ name: "uniwasm_forwarded_requests_total", help: "Gateway requests this node forwarded to another node of its cluster (counted there in uniwasm_requests_total)", labelNames: ["tenant", "app", "status"], registers });
    this.latency = new Histogram({
      name: "uniwasm_request_duration_seconds",
      help: "Gateway request latency, from the first byte received to the last byte sent",
      labelNames: ["tenant", "app"],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.starts = new Counter({ name: "uniwasm_instance_starts_total", help: "Requests served by a freshly started instance (cold) or a warm one", labelNames: ["tenant", "app", "kind"], registers });
    this.fuel = new Counter({ name: "uniwasm_fuel_consumed_total", help: "Fuel (metered instructions) consumed", labelNames: ["tenant", "app"], registers });
    this.memory = new Gauge({ name: "uniwasm_instance_memory_bytes", help: "Linear memory of the app's most recent instance", labelNames: ["tenant", "app"], registers });
    this.denied = new Counter({ name: "uniwasm_denied_host_calls_total", help: "Host calls refused for lack of a capability", labelNames: ["tenant", "app", "call"], registers });
    this.limitHits = new Counter({ name: "uniwasm_limit_hits_total", help: "Instances ended by a limit, by reason", labelNames: ["tenant", "app", "reason"], registers });
    this.refusals = new Counter({ name: "uniwasm_admission_refusals_total", help: "Requests refused by admission control, by error code", labelNames: ["tenant", "code"], registers });
    this.queueWait = new Histogram({ name: "uniwasm_queue_wait_seconds", help: "Time a request waited for an executor", labelNames: ["tenant"], buckets: [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers });
    this.liveInstances = new Gauge({ name: "uniwasm_live_instances", help: "Live instances per tenant", labelNames: ["tenant"], registers });
  }
}
