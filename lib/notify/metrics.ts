/**
 * Operator notifications as Prometheus metrics on Kubernetes: the ops jobs push gauges to a
 * Pushgateway (`platform.kubernetes.monitoring.pushgatewayUrl`) in the Prometheus text exposition
 * format (version 0.0.4), and the alert rules of lib/monitoring/rules.ts fire on them.
 *
 * Why a Pushgateway: the jobs are CronJob and restore Job pods that live for minutes; Prometheus
 * scrapes on an interval and would rarely catch such a pod, let alone one that failed. The
 * Pushgateway keeps the last pushed value of each group until it is replaced, which is exactly the
 * "last outcome" the alerts need.
 *
 * Groups: `/metrics/job/<job>/<label>/<value>...`. PUT replaces the whole group (the storage check
 * pushes every tenant at once, so a deleted tenant's series goes away); POST replaces only the
 * metrics of the same name in the group (a failed backup adds its failure time and keeps the last
 * success's). A push that fails is logged, never thrown: the job keeps its own outcome.
 */
import { deliver, type DeliveryOptions, type DeliveryResult } from "./http";
import { webhookHost } from "./webhook";

export interface MetricSample {
  labels?: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: "gauge";
  samples: MetricSample[];
}

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function labelName(name: string): string {
  if (!LABEL_NAME.test(name) || name.startsWith("__")) throw new Error(`not a label name: ${name}`);
  return name;
}

const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const escapeLabelValue = (text: string) =>
  text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

function sampleValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** The families in the text exposition format: HELP, TYPE, then one line per sample. */
export function expositionText(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new Error(`not a metric name: ${f.name}`);
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels ?? {})
        .map(([k, v]) => `${labelName(k)}="${escapeLabelValue(v)}"`)
        .join(",");
      lines.push(`${f.name}${labels ? `{${labels}}` : ""} ${sampleValue(s.value)}`);
    }
  }
  return lines.length > 0 ? `${lines.join("\n")}\n` : "";
}

/** A Pushgateway group: the job and further grouping labels (in order). */
export interface PushGroup {
  job: string;
  labels?: Record<string, string>;
}

/** A grouping value in the URL path: base64url (`<label>@base64`) when it is empty or holds a `/`. */
function pathSegment(label: string, value: string): string {
  if (value === "" || value.includes("/"))
    return `${label}@base64/${Buffer.from(value).toString("base64url") || "="}`;
  return `${label}/${encodeURIComponent(value)}`;
}

/** `<pushgateway>/metrics/job/<job>/<label>/<value>...` (a path prefix of the base URL is kept). */
export function pushGroupUrl(base: string, group: PushGroup): URL {
  const url = new URL(base);
  const segments = [
    pathSegment("job", group.job),
    ...Object.entries(group.labels ?? {}).map(([k, v]) => pathSegment(labelName(k), v)),
  ];
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/metrics/${segments.join("/")}`;
  return url;
}

export type PushMethod = "PUT" | "POST";

/** Pushes `families` to `group`; never throws (a bad URL is a failed delivery). */
export async function pushMetrics(
  base: string,
  group: PushGroup,
  families: readonly MetricFamily[],
  method: PushMethod,
  opts: DeliveryOptions = {},
): Promise<DeliveryResult> {
  let target: URL;
  let body: string;
  try {
    target = pushGroupUrl(base, group);
    if (target.protocol !== "http:" && target.protocol !== "https:") throw new Error("scheme");
    body = expositionText(families);
  } catch (err) {
    const why =
      (err as Error).message === "scheme"
        ? "the Pushgateway URL is not an http(s) URL"
        : (err as Error).message;
    return { delivered: false, attempts: 0, error: why };
  }
  return deliver(target, { method, contentType: EXPOSITION_CONTENT_TYPE, body }, opts);
}

export interface MetricsPusher {
  readonly enabled: boolean;
  push(
    group: PushGroup,
    families: readonly MetricFamily[],
    method: PushMethod,
  ): Promise<DeliveryResult | undefined>;
}

export interface MetricsPusherOptions extends DeliveryOptions {
  /** The Pushgateway; absent: nothing is pushed. */
  url?: string;
  /** Added to every group's labels (the alert rules select the platform's namespace). */
  namespace?: string;
  log?: { info(msg: string): void; warn(msg: string): void };
}

export function createMetricsPusher(opts: MetricsPusherOptions): MetricsPusher {
  const { url, log } = opts;
  // A job's push is a side matter: fewer and shorter attempts than a webhook's.
  const delivery: DeliveryOptions = {
    attempts: opts.attempts ?? 3,
    timeoutMs: opts.timeoutMs ?? 5000,
    ...(opts.backoffMs !== undefined ? { backoffMs: opts.backoffMs } : {}),
  };
  return {
    enabled: Boolean(url),
    async push(group, families, method) {
      if (!url) return undefined;
      const labels = { ...(opts.namespace ? { namespace: opts.namespace } : {}), ...group.labels };
      const result = await pushMetrics(url, { job: group.job, labels }, families, method, delivery);
      const what = `metrics ${group.job}`;
      const host = webhookHost(url);
      if (result.delivered) log?.info(`${what} pushed to ${host}`);
      else
        log?.warn(
          `${what} not pushed to ${host} after ${result.attempts} attempt(s): ${result.error ?? "?"}`,
        );
      return result;
    },
  };
}
