/**
 * Counts the requests the test cluster's API server served, from its `/metrics`
 * (`apiserver_request_total` and `apiserver_request_duration_seconds_sum`): two snapshots around an
 * operation give the requests it made and the time the server spent on them. Watches, node leases and
 * node status updates are left out: they are the cluster's own background (kwok and the controllers),
 * not round trips of a client.
 */
import type { K8sTestCluster } from "./k8s-test-cluster";

export interface ApiRequestCounts {
  /** Requests, by verb (GET, LIST, PATCH, …); dry-run requests under `<verb> (dry run)`. */
  byVerb: Record<string, number>;
  total: number;
  /** Seconds the API server spent on them, summed (requests run concurrently: not wall time). */
  serverSeconds: number;
}

const SAMPLE = /^(apiserver_request_total|apiserver_request_duration_seconds_sum)\{([^}]*)\} (\S+)$/;

function labelsOf(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
}

/** True for the requests of a client; false for the cluster's own background (see above). */
function isClientRequest(labels: Record<string, string>): boolean {
  if (labels.verb === "WATCH" || labels.verb === "CONNECT") return false;
  if (labels.resource === "leases") return false;
  return !(labels.resource === "nodes" && labels.subresource === "status");
}

/** The API server's request counters since it started. */
export function apiRequestCounters(cluster: K8sTestCluster): ApiRequestCounts {
  return parseApiRequestCounters(cluster.kubectl(["get", "--raw", "/metrics"]));
}

/** The client requests' counters in the text of the API server's `/metrics`. */
export function parseApiRequestCounters(metrics: string): ApiRequestCounts {
  const counts: ApiRequestCounts = { byVerb: {}, total: 0, serverSeconds: 0 };
  for (const line of metrics.split("\n")) {
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const labels = labelsOf(m[2]);
    if (!isClientRequest(labels)) continue;
    const value = Number(m[3]);
    if (m[1] === "apiserver_request_duration_seconds_sum") {
      counts.serverSeconds += value;
      continue;
    }
    const verb = labels.dry_run ? `${labels.verb} (dry run)` : labels.verb;
    counts.byVerb[verb] = (counts.byVerb[verb] ?? 0) + value;
    counts.total += value;
  }
  return counts;
}

/** What happened between two snapshots of the counters. */
export function apiRequestsBetween(before: ApiRequestCounts, after: ApiRequestCounts): ApiRequestCounts {
  const byVerb: Record<string, number> = {};
  for (const [verb, n] of Object.entries(after.byVerb)) {
    const d = n - (before.byVerb[verb] ?? 0);
    if (d > 0) byVerb[verb] = d;
  }
  return {
    byVerb,
    total: after.total - before.total,
    serverSeconds: Math.round((after.serverSeconds - before.serverSeconds) * 1000) / 1000,
  };
}
