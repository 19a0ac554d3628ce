/**
 * Where a job finds the webhook (`platform.notify`): on the local target in
 * `<stateDir>/scheduler/notify.json` (mode 0600, written by the LocalScheduler provider; absent
 * without a webhook), on Kubernetes in the environment (the URL by secretKeyRef from a Secret).
 */
import { promises as fs } from "node:fs";
import { schedulerPaths } from "../backup/scheduler";
import { createMetricsPusher, type MetricsPusher } from "./metrics";
import { createNotifier, type Notifier, type NotifierOptions } from "./webhook";

export interface NotifySettings {
  webhookUrl: string;
  /** The Pulumi stack (the body's `stack`). */
  stack?: string;
  timeoutSeconds?: number;
  attempts?: number;
}

/** The environment of the Kubernetes ops pods (components/kubernetes/OpsJobs.ts sets it). */
export const NOTIFY_ENV = {
  /** secretKeyRef: never in a ConfigMap. */
  webhookUrl: "LOOMWORKS_NOTIFY_WEBHOOK_URL",
  stack: "LOOMWORKS_NOTIFY_STACK",
  timeoutSeconds: "LOOMWORKS_NOTIFY_TIMEOUT_SECONDS",
  attempts: "LOOMWORKS_NOTIFY_ATTEMPTS",
} as const;

/** Where the Kubernetes ops pods push their metrics (components/kubernetes/OpsJobs.ts sets both). */
export const PUSHGATEWAY_ENV = {
  /** A plain value (`platform.kubernetes.monitoring.pushgatewayUrl`, no user info: not a secret). */
  url: "LOOMWORKS_PUSHGATEWAY_URL",
  /** The pod's namespace (fieldRef): every pushed group's `namespace` label. */
  namespace: "LOOMWORKS_NAMESPACE",
} as const;

/** The ops pod's metrics pusher; a silent one without a Pushgateway URL (the local target). */
export function metricsPusherFromEnv(
  env: NodeJS.ProcessEnv,
  log: NonNullable<NotifierOptions["log"]>,
): MetricsPusher {
  const url = env[PUSHGATEWAY_ENV.url] || undefined;
  const namespace = env[PUSHGATEWAY_ENV.namespace] || undefined;
  return createMetricsPusher({ ...(url ? { url } : {}), ...(namespace ? { namespace } : {}), log });
}

const positive = (v: unknown): number | undefined => {
  const n = Number(v);
  return v !== undefined && v !== "" && Number.isFinite(n) && n > 0 ? n : undefined;
};

function settingsOf(raw: Record<string, unknown>): NotifySettings | undefined {
  if (typeof raw.webhookUrl !== "string" || raw.webhookUrl === "") return undefined;
  const timeoutSeconds = positive(raw.timeoutSeconds);
  const attempts = positive(raw.attempts);
  return {
    webhookUrl: raw.webhookUrl,
    ...(typeof raw.stack === "string" && raw.stack !== "" ? { stack: raw.stack } : {}),
    ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
    ...(attempts !== undefined ? { attempts: Math.floor(attempts) } : {}),
  };
}

/** The settings in the environment; undefined without a webhook URL. */
export function notifySettingsFromEnv(env: NodeJS.ProcessEnv): NotifySettings | undefined {
  return settingsOf({
    webhookUrl: env[NOTIFY_ENV.webhookUrl],
    stack: env[NOTIFY_ENV.stack],
    timeoutSeconds: env[NOTIFY_ENV.timeoutSeconds],
    attempts: env[NOTIFY_ENV.attempts],
  });
}

/** The settings in `file` (notify.json); undefined when it does not exist. */
export async function readNotifySettings(file: string): Promise<NotifySettings | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the text, which holds the URL.
    throw new Error(`${file}: not JSON`);
  }
  if (typeof raw !== "object" || raw === null) throw new Error(`${file}: must hold a JSON object`);
  return settingsOf(raw as Record<string, unknown>);
}

/** The local target's settings: `<stateDir>/scheduler/notify.json`. */
export function localNotifySettings(stateDir: string): Promise<NotifySettings | undefined> {
  return readNotifySettings(schedulerPaths(stateDir).notifyFile);
}

/** A notifier for `settings` (a silent one without). */
export function notifierFor(settings: NotifySettings | undefined, log?: NotifierOptions["log"]): Notifier {
  return createNotifier({
    ...(settings
      ? {
          url: settings.webhookUrl,
          ...(settings.stack ? { stack: settings.stack } : {}),
          ...(settings.timeoutSeconds ? { timeoutMs: settings.timeoutSeconds * 1000 } : {}),
          ...(settings.attempts ? { attempts: settings.attempts } : {}),
        }
      : {}),
    ...(log ? { log } : {}),
  });
}

/**
 * The notifier of a job or a restore: the settings of the local target's notify.json (`stateDir`)
 * or of the environment (Kubernetes). Settings that cannot be read turn notifications off with a
 * warning: a notification never fails the work it reports on. `onUrl` gets the URL (it may carry a
 * token) for the caller's log redaction.
 */
export async function notifierFrom(
  source: { stateDir: string } | { env: NodeJS.ProcessEnv },
  log: NonNullable<NotifierOptions["log"]>,
  onUrl?: (url: string) => void,
): Promise<Notifier> {
  try {
    const settings =
      "stateDir" in source ? await localNotifySettings(source.stateDir) : notifySettingsFromEnv(source.env);
    if (settings) onUrl?.(settings.webhookUrl);
    return notifierFor(settings, log);
  } catch (err) {
    log.warn(`notifications off for this run: ${(err as Error).message}`);
    return notifierFor(undefined);
  }
}
