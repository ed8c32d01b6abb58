/**
 * Per-second request counts and latencies of the last few minutes, per
 * tenant, kept in memory for the dashboard's live charts (Prometheus keeps
 * the long-term view).
 */
const SECONDS = 180;
const SAMPLES_PER_SECOND = 256;

interface Bucket {
  sec: number;
  count: number;
  errors: number;
  latencies: number[];
}

export interface SeriesPoint {
  t: number;
  requests: number;
  errors: number;
  p50: number | null;
  p99: number | null;
}

export class StatsRecorder {
  private readonly tenants = new Map<string, Bucket[]>();
  private readonly apps = new Map<string, Map<string, { requests: number; errors: number; totalMs: number }>>();

  record(tenantId: string, appName: string, latencyMs: number, error: boolean, now = Date.now()): void {
    let ring = this.tenants.get(tenantId);
    if (!ring) {
      ring = Array.from({ length: SECONDS }, () => ({ sec: -1, count: 0, errors: 0, latencies: [] }));
      this.tenants.set(tenantId, ring);
    }
    const sec = Math.floor(now / 1000);
    const b = ring[sec % SECONDS]!;
    if (b.sec !== sec) {
      b.sec = sec;
      b.count = 0;
      b.errors = 0;
      b.latencies = [];
    }
    b.count++;
    if (error) b.errors++;
    // Reservoir sampling keeps the percentile estimate unbiased under floods.
    if (b.latencies.length < SAMPLES_PER_SECOND) b.latencies.push(latencyMs);
    else {
      const j = Math.floor(Math.random() * b.count);
      if (j < SAMPLES_PER_SECOND) b.latencies[j] = latencyMs;
    }
    let apps = this.apps.get(tenantId);
    if (!apps) this.apps.set(tenantId, (apps = new Map()));
    const a = apps.get(appName) ?? { requests: 0, errors: 0, totalMs: 0 };
    a.requests++;
    if (error) a.errors++;
    a.totalMs += latencyMs;
    apps.set(appName, a);
  }

  series(tenantId: string, seconds = 120, now = Date.now()): SeriesPoint[] {
    const ring = this.tenants.get(tenantId);
    const end = Math.floor(now / 1000);
    const out: SeriesPoint[] = [];
    for (let s = end - seconds + 1; s <= end; s++) {
      const b = ring?.[s % SECONDS];
      if (!b || b.sec !== s) {
        out.push({ t: s * 1000, requests: 0, errors: 0, p50: null, p99: null });
        continue;
      }
      const sorted = [...b.latencies].sort((x, y) => x - y);
      const pick = (q: number) => (sorted.length ? round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!) : null);
      out.push({ t: s * 1000, requests: b.count, errors: b.errors, p50: pick(0.5), p99: pick(0.99) });
    }
    return out;
  }

  appTotals(tenantId: string): Record<string, { requests: number; errors: number; meanMs: number }> {
    const out: Record<string, { requests: number; errors: number; meanMs: number }> = {};
    for (const [name, a] of this.apps.get(tenantId) ?? []) out[name] = { requests: a.requests, errors: a.errors, meanMs: round(a.totalMs / Math.max(1, a.requests)) };
    return out;
  }

  forget(tenantId: string): void {
    this.tenants.delete(tenantId);
    this.apps.delete(tenantId);
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
