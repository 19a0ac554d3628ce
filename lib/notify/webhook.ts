/**
 * Operator notifications as a webhook (`platform.notify.webhookUrl`): one HTTP POST of a JSON
 * body per event, with a timeout, retried with backoff on network errors, 5xx and 429 (a bounded
 * number of attempts); any other 4xx is final. Delivery never throws: the job that notifies keeps
 * its own outcome, a notification that could not be delivered is logged.
 *
 * The URL may carry a token (a query parameter, a path segment, user info): it is never logged
 * nor put in an error message; the callers also hand it to their logger's secrets.
 */
import { deliver, type DeliveryOptions, type DeliveryResult } from "./http";

export { retriableStatus } from "./http";

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

export { DEFAULT_ATTEMPTS, DEFAULT_BACKOFF_MS, DEFAULT_TIMEOUT_MS } from "./http";
export type { DeliveryOptions, DeliveryResult } from "./http";

/** The host the webhook lives on, for messages (no user info, path or query: they may hold a token). */
export function webhookHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "(not a URL)";
  }
}

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
  return deliver(
    target,
    { method: "POST", contentType: "application/json", body: JSON.stringify(notification) },
    opts,
  );
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
