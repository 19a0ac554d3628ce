import { describe, expect, it } from "vitest";
import { apiRequestsBetween, parseApiRequestCounters } from "../../testkit/k8s-api-requests";

const labels = (l: Record<string, string>): string =>
  Object.entries({
    code: "200",
    component: "apiserver",
    dry_run: "",
    group: "",
    resource: "",
    scope: "",
    subresource: "",
    ...l,
  })
    .map(([k, v]) => `${k}="${v}"`)
    .join(",");

const metrics = (n: number): string =>
  [
    "# HELP apiserver_request_total [STABLE] Counter of apiserver requests",
    "# TYPE apiserver_request_total counter",
    `apiserver_request_total{${labels({ resource: "configmaps", verb: "GET" })}} ${3 * n}`,
    `apiserver_request_total{${labels({ resource: "configmaps", verb: "PATCH", dry_run: "All" })}} ${n}`,
    `apiserver_request_total{${labels({ resource: "secrets", verb: "POST", code: "201" })}} ${n}`,
    `apiserver_request_total{${labels({ resource: "pods", verb: "WATCH" })}} ${10 * n}`,
    `apiserver_request_total{${labels({ group: "coordination.k8s.io", resource: "leases", verb: "PUT" })}} ${7 * n}`,
    `apiserver_request_total{${labels({ resource: "nodes", subresource: "status", verb: "PATCH" })}} ${2 * n}`,
    `apiserver_request_duration_seconds_sum{${labels({ resource: "configmaps", verb: "GET" })}} ${0.5 * n}`,
    `apiserver_request_duration_seconds_sum{${labels({ resource: "pods", verb: "WATCH" })}} ${100 * n}`,
    `apiserver_request_duration_seconds_count{${labels({ resource: "configmaps", verb: "GET" })}} ${3 * n}`,
  ].join("\n");

describe("the API server's request counters", () => {
  it("count a client's requests by verb, dry runs apart, without watches, leases and node status", () => {
    expect(parseApiRequestCounters(metrics(1))).toEqual({
      byVerb: { GET: 3, "PATCH (dry run)": 1, POST: 1 },
      total: 5,
      serverSeconds: 0.5,
    });
  });

  it("give what happened between two snapshots", () => {
    const between = apiRequestsBetween(
      parseApiRequestCounters(metrics(2)),
      parseApiRequestCounters(metrics(5)),
    );
    expect(between).toEqual({
      byVerb: { GET: 9, "PATCH (dry run)": 3, POST: 3 },
      total: 15,
      serverSeconds: 1.5,
    });
  });
});
