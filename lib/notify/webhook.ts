/**
 * Operator notifications as a webhook (`platform.notify.webhookUrl`): one HTTP POST of a JSON
 * body per event, with a timeout, retried with backoff on network errors, 5xx and 429 (a bounded
 * number of attempts); any other 4xx is final. Delivery never throws: the job that notifies keeps
 * its own outcome, a notification that could not be delivered is logged.
 *
 * The URL may carry a token (a query parameter, a path segment, user info): it is never logged
 * nor put in an error message; the callers also hand it to their logger's secrets.
 */
import * as http from "node:http";
import * as https from "node:https";

export const NOTIFY_EVENTS = [
  "storage.warning",
  "storage.read_only",
  "backup.failed",
  "verify.failed",
  "restore.finished",
  "restore.failed",
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];
export type Severity = "info" | "warning" | "critical";

export const EVENT_SEVERITY: Readonly<Record<NotifyEvent, Severity>> = {
  "storage.warning": "warning",
  "storage.read_only": "critical",
  "backup.failed": "critical",
  "verify.failed": "critical",
  "restore.finished": "info",
  "restore.failed": "critical",
};

/** The JSON body POSTed for one event (docs/operations/monitoring.md#webhook-notifications-every-target). */
export interface Notification {
  event: NotifyEvent;
  tenant?: string;
  severity: Severity;
  message: string;
  details: Record<string, unknown>;
  /** ISO-8601 time of the event. */
  at: string;
  /** The Pulumi stack whose platform sent it. */
  stack?: string;
}

export interface DeliveryOptions {
  /** Per attempt (default 10 s). */
  timeoutMs?: number;
  /** Attempts in all (default 4). */
  attempts?: number;
  /** Wait before the second attempt; doubled before each further one (default 1 s). */
  backoffMs?: number;
}

export interface DeliveryResult {
  delivered: boolean;
  attempts: number;
  /** The last attempt's HTTP status, when there was an answer. */
  status?: number;
  /** Why it was not delivered (no URL in it). */
  error?: string;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_ATTEMPTS = 4;
export const DEFAULT_BACKOFF_MS = 1_000;

/** An HTTP answer worth another attempt: 5xx, 429 (rate limited) and 408 (request timeout). */
export function retriableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

interface AttemptOutcome {
  status?: number;
  error?: string;
}

/** The host the webhook lives on, for messages (no user info, path or query: they may hold a token). */
export function webhookHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "(not a URL)";
  }
}

function postOnce(url: URL, body: string, timeoutMs: number): Promise<AttemptOutcome> {
  return new Promise((resolve) => {
    const client = url.protocol === "https:" ? https : http;
    let settled = false;
    const done = (outcome: AttemptOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const req = client.request(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "user-agent": "loomworks-notify/1",
      },
    });
    // The whole exchange, not only the socket's idleness: a receiver that trickles bytes is cut too.
    const timer = setTimeout(() => {
      done({ error: `no answer within ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on("response", (res) => {
      res.resume(); // the body is not needed; reading it frees the socket
      res.on("end", () => done({ status: res.statusCode ?? 0 }));
      res.on("error", () => done({ status: res.statusCode ?? 0 }));
    });
    req.on("error", (err: NodeJS.ErrnoException) => done({ error: err.code ?? "request failed" }));
    req.end(body);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** POSTs `notification` to `url` (see the module comment); never throws. */
export async function sendWebhook(
  url: string,
  notification: Notification,
  opts: DeliveryOptions = {},
): Promise<DeliveryResult> {
  let target: URL;
  try {
    target = new URL(url);
    if (target.protocol !== "http:" && target.protocol !== "https:") throw new Error("scheme");
  } catch {
    return { delivered: false, attempts: 0, error: "the webhook URL is not an http(s) URL" };
  }
  const attempts = Math.max(1, opts.attempts ?? DEFAULT_ATTEMPTS);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const body = JSON.stringify(notification);
  let last: AttemptOutcome = {};
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await sleep((opts.backoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** (attempt - 2));
    last = await postOnce(target, body, timeoutMs);
    if (last.status !== undefined && last.status >= 200 && last.status < 300)
      return { delivered: true, attempts: attempt, status: last.status };
    if (last.status !== undefined && !retriableStatus(last.status))
      return { delivered: false, attempts: attempt, status: last.status, error: `HTTP ${last.status}` };
  }
  return {
    delivered: false,
    attempts,
    ...(last.status !== undefined ? { status: last.status, error: `HTTP ${last.status}` } : {}),
    ...(last.error !== undefined ? { error: last.error } : {}),
  };
}

/** What a job tells the notifier; `severity` and `at` are filled in. */
export interface NotifyInput {
  event: NotifyEvent;
  tenant?: string;
  message: string;
  details?: Record<string, unknown>;
  at?: Date;
}

export interface NotifierOptions extends DeliveryOptions {
  /** Absent: notifications are dropped (no webhook configured). */
  url?: string;
  stack?: string;
  /** Where delivery problems (and deliveries) are reported. */
  log?: { info(msg: string): void; warn(msg: string): void };
}

export interface Notifier {
  readonly enabled: boolean;
  notify(input: NotifyInput): Promise<DeliveryResult | undefined>;
}

export function createNotifier(opts: NotifierOptions): Notifier {
  const { url, log } = opts;
  return {
    enabled: Boolean(url),
    async notify(input) {
      if (!url) return undefined;
      const notification: Notification = {
        event: input.event,
        ...(input.tenant !== undefined ? { tenant: input.tenant } : {}),
        severity: EVENT_SEVERITY[input.event],
        message: input.message,
        details: input.details ?? {},
        at: (input.at ?? new Date()).toISOString(),
        ...(opts.stack ? { stack: opts.stack } : {}),
      };
      const result = await sendWebhook(url, notification, opts);
      const what = `notification ${input.event}${input.tenant ? ` (${input.tenant})` : ""}`;
      if (result.delivered)
        log?.info(`${what} delivered to ${webhookHost(url)} (attempt ${result.attempts})`);
      else
        log?.warn(
          `${what} not delivered to ${webhookHost(url)} after ${result.attempts} attempt(s): ${result.error ?? "?"}`,
        );
      return result;
    },
  };
}
