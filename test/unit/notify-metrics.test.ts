/**
 * The ops jobs' metrics (lib/notify/metrics.ts, job-metrics.ts): the text exposition body, the
 * Pushgateway group URLs and methods, against a real HTTP receiver on 127.0.0.1 (node:http) that
 * hands every body to `promtool check metrics` (Debian's prometheus package, scripts/setup.sh: a
 * missing promtool fails these tests). A push that fails never fails the job it reports on.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  PUSH_JOBS,
  outcomeMetric,
  outcomeMetricName,
  storageMetrics,
  pushStorageMetrics,
  withOutcomeMetrics,
} from "../../lib/notify/job-metrics";
import {
  EXPOSITION_CONTENT_TYPE,
  createMetricsPusher,
  expositionText,
  pushGroupUrl,
  pushMetrics,
} from "../../lib/notify/metrics";
import { PUSHGATEWAY_ENV, metricsPusherFromEnv } from "../../lib/notify/settings";
import type { StorageCheckResult } from "../../lib/quota/storage";
import { listenOnLoopback } from "../helpers/loopback-server";
import { checkMetrics as promtoolCheck } from "../helpers/promtool";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition body (the test's own reading, after promtool accepted it). */
function samples(body: string): Sample[] {
  return body
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((line) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) throw new Error(`not a sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
      return { name: m[1], labels, value: Number(m[3]) };
    });
}

interface Received {
  method: string;
  path: string;
  contentType: string;
  body: string;
  promtool: { status: number | null; output: string };
}

interface Receiver {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

/** A Pushgateway stand-in answering each push with the next of `statuses` (the last repeats). */
async function receiver(statuses: number[], prefix = ""): Promise<Receiver> {
  const received: Received[] = [];
  const server = await listenOnLoopback((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      received.push({
        method: req.method ?? "",
        path: req.url ?? "",
        contentType: String(req.headers["content-type"]),
        body,
        promtool: promtoolCheck(body),
      });
      res.writeHead(statuses[Math.min(received.length - 1, statuses.length - 1)]).end();
    });
  });
  return { url: `${server.origin}${prefix}`, received, close: server.close };
}

const open: Receiver[] = [];
async function start(statuses: number[], prefix?: string): Promise<Receiver> {
  const r = await receiver(statuses, prefix);
  open.push(r);
  return r;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

function logSink(): { lines: string[]; log: { info(m: string): void; warn(m: string): void } } {
  const lines: string[] = [];
  return { lines, log: { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`) } };
}

const FAST = { backoffMs: 10, timeoutMs: 2000 };

const STORAGE: StorageCheckResult[] = [
  { subdomain: "acme", database: "acme", bytes: 850, maxBytes: 1000, percent: 85, state: "warning" },
  { subdomain: "globex", database: "globex", bytes: 1100, maxBytes: 1000, percent: 110, state: "read_only" },
  { subdomain: "initech", database: "initech", bytes: 10, maxBytes: null, percent: null, state: "ok" },
  { subdomain: "broken", database: "broken", error: "connection refused", readOnly: true },
];

describe("the text exposition format", () => {
  it("HELP, TYPE and samples with escaped label values: promtool accepts it", () => {
    const body = expositionText([
      {
        name: "loomworks_test_value",
        help: 'A value with "quotes", a backslash \\ and\na newline.',
        type: "gauge",
        samples: [
          { labels: { tenant: 'we"ird\\na\nme' }, value: 0.25 },
          { value: Number.NaN },
          { labels: { tenant: "inf" }, value: Number.POSITIVE_INFINITY },
        ],
      },
    ]);
    expect(body).toBe(
      [
        '# HELP loomworks_test_value A value with "quotes", a backslash \\\\ and\\na newline.',
        "# TYPE loomworks_test_value gauge",
        'loomworks_test_value{tenant="we\\"ird\\\\na\\nme"} 0.25',
        "loomworks_test_value NaN",
        'loomworks_test_value{tenant="inf"} +Inf',
        "",
      ].join("\n"),
    );
    const check = promtoolCheck(body);
    expect(check.status, check.output).toBe(0);
    expect(samples(body)[0].labels.tenant).toBe('we"ird\\na\nme');
  });

  it("refuses names that are not Prometheus names", () => {
    expect(() => expositionText([{ name: "loomworks-x", help: "h", type: "gauge", samples: [] }])).toThrow(
      /not a metric name/,
    );
    expect(() =>
      expositionText([
        { name: "x", help: "h", type: "gauge", samples: [{ labels: { "a-b": "1" }, value: 1 }] },
      ]),
    ).toThrow(/not a label name/);
  });

  it("the jobs' metrics: promtool's linter finds nothing (names, units, HELP)", () => {
    const body = expositionText([
      ...storageMetrics(STORAGE),
      outcomeMetric("backup", "success", new Date(1_700_000_000_000)),
      outcomeMetric("restore", "failure", new Date(1_700_000_000_000)),
    ]);
    const check = promtoolCheck(body);
    expect(check.status, check.output).toBe(0);
    expect(check.output).toBe("");
  });
});

describe("Pushgateway groups", () => {
  it("job and labels as path segments; base64 for a value that is empty or holds a slash; a path prefix kept", () => {
    expect(pushGroupUrl("http://pg:9091", { job: "loomworks_backup", labels: { type: "full" } }).href).toBe(
      "http://pg:9091/metrics/job/loomworks_backup/type/full",
    );
    expect(
      pushGroupUrl("https://gw.example/push/", { job: "j", labels: { tenant: "a/b", empty: "" } }).href,
    ).toBe("https://gw.example/push/metrics/job/j/tenant@base64/YS9i/empty@base64/=");
  });

  it("PUT of the storage group to a receiver: every checked tenant, a failed one flagged with its last known read-only state, valid exposition format", async () => {
    const gw = await start([200]);
    const sink = logSink();
    const pusher = createMetricsPusher({ url: gw.url, namespace: "loomworks", log: sink.log, ...FAST });
    await pushStorageMetrics(pusher, STORAGE);
    expect(gw.received).toHaveLength(1);
    const [push] = gw.received;
    expect(push.method).toBe("PUT");
    expect(push.path).toBe(`/metrics/job/${PUSH_JOBS.storage}/namespace/loomworks`);
    expect(push.contentType).toBe(EXPOSITION_CONTENT_TYPE);
    expect(push.promtool.status, push.promtool.output).toBe(0);
    expect(samples(push.body)).toEqual([
      { name: "loomworks_tenant_storage_used_ratio", labels: { tenant: "acme" }, value: 0.85 },
      { name: "loomworks_tenant_storage_used_ratio", labels: { tenant: "globex" }, value: 1.1 },
      { name: "loomworks_tenant_read_only", labels: { tenant: "acme" }, value: 0 },
      { name: "loomworks_tenant_read_only", labels: { tenant: "globex" }, value: 1 },
      { name: "loomworks_tenant_read_only", labels: { tenant: "initech" }, value: 0 },
      { name: "loomworks_tenant_read_only", labels: { tenant: "broken" }, value: 1 },
      { name: "loomworks_tenant_quota_check_failed", labels: { tenant: "acme" }, value: 0 },
      { name: "loomworks_tenant_quota_check_failed", labels: { tenant: "globex" }, value: 0 },
      { name: "loomworks_tenant_quota_check_failed", labels: { tenant: "initech" }, value: 0 },
      { name: "loomworks_tenant_quota_check_failed", labels: { tenant: "broken" }, value: 1 },
    ]);
    expect(sink.lines).toEqual([`info metrics ${PUSH_JOBS.storage} pushed to ${new URL(gw.url).host}`]);
  });

  it("retries a 503 and is delivered; a 400 is final", async () => {
    const flaky = await start([503, 202]);
    const ok = await pushMetrics(flaky.url, { job: "j" }, [], "POST", FAST);
    expect(ok).toMatchObject({ delivered: true, attempts: 2, status: 202 });
    const bad = await start([400]);
    const refused = await pushMetrics(bad.url, { job: "j" }, [], "POST", FAST);
    expect(refused).toMatchObject({ delivered: false, attempts: 1, status: 400 });
  });
});

describe("a job's outcome as metrics", () => {
  const at = new Date("2026-12-07T10:00:00Z");
  const seconds = at.getTime() / 1000;

  it("a success POSTs its time to the subject's group with the grouping labels", async () => {
    const gw = await start([200]);
    const pusher = createMetricsPusher({ url: gw.url, namespace: "loomworks", ...FAST });
    const value = await withOutcomeMetrics(
      pusher,
      "backup",
      { type: "diff" },
      async () => "label-1",
      () => at,
    );
    expect(value).toBe("label-1");
    expect(gw.received.map((r) => [r.method, r.path])).toEqual([
      ["POST", "/metrics/job/loomworks_backup/namespace/loomworks/type/diff"],
    ]);
    expect(gw.received[0].promtool.status, gw.received[0].promtool.output).toBe(0);
    expect(samples(gw.received[0].body)).toEqual([
      { name: outcomeMetricName("backup", "success"), labels: {}, value: seconds },
    ]);
  });

  it("a failure POSTs its time, then the job's own error is thrown again", async () => {
    const gw = await start([200]);
    const pusher = createMetricsPusher({ url: gw.url, namespace: "loomworks", ...FAST });
    await expect(
      withOutcomeMetrics(
        pusher,
        "restore",
        { tenant: "acme" },
        () => Promise.reject(new Error("no backup")),
        () => at,
      ),
    ).rejects.toThrow("no backup");
    expect(gw.received[0].path).toBe("/metrics/job/loomworks_restore/namespace/loomworks/tenant/acme");
    expect(samples(gw.received[0].body)).toEqual([
      { name: "loomworks_restore_last_failure_timestamp_seconds", labels: {}, value: seconds },
    ]);
  });

  it("a Pushgateway that fails or is gone never changes the job's outcome; the warning names the host only", async () => {
    const down = await start([500]);
    const sink = logSink();
    const pusher = createMetricsPusher({
      url: `${down.url}/secret-path`,
      log: sink.log,
      ...FAST,
      attempts: 2,
    });
    await expect(withOutcomeMetrics(pusher, "verify", {}, async () => 7)).resolves.toBe(7);
    expect(down.received).toHaveLength(2);
    expect(sink.lines).toEqual([
      `warn metrics loomworks_verify not pushed to ${new URL(down.url).host} after 2 attempt(s): HTTP 500`,
    ]);
    const gone = await start([200]);
    const goneUrl = gone.url;
    await gone.close();
    const refused = createMetricsPusher({ url: goneUrl, ...FAST, attempts: 1 });
    await expect(
      withOutcomeMetrics(refused, "backup", { type: "full" }, () => Promise.reject(new Error("disk full"))),
    ).rejects.toThrow("disk full");
    expect(await pushMetrics("ftp://gw.example", { job: "j" }, [], "PUT")).toMatchObject({
      delivered: false,
      attempts: 0,
    });
  });

  it("settings from the ops pod's environment; without a URL (the local target) nothing is pushed", async () => {
    const gw = await start([200]);
    const sink = logSink();
    const pusher = metricsPusherFromEnv(
      { [PUSHGATEWAY_ENV.url]: gw.url, [PUSHGATEWAY_ENV.namespace]: "loomworks-prod" },
      sink.log,
    );
    expect(pusher.enabled).toBe(true);
    await pusher.push({ job: "loomworks_verify" }, [], "POST");
    expect(gw.received[0].path).toBe("/metrics/job/loomworks_verify/namespace/loomworks-prod");
    const silent = metricsPusherFromEnv({}, sink.log);
    expect(silent.enabled).toBe(false);
    expect(await silent.push({ job: "j" }, [], "PUT")).toBeUndefined();
  });
});
