/**
 * Log lines of the platform's jobs (infra/ops/jobs.ts). Plain text by default (`<ISO time> <msg>`,
 * what the local scheduler's log files hold); with `LOOMWORKS_LOG_FORMAT=json` (the Kubernetes
 * CronJobs and restore Jobs) every line is one JSON object `{time, level, job, msg, ...fields}`,
 * so that a cluster's log pipeline can index them without parsing prose.
 *
 * Every line, in both formats, passes through {@link redactSecrets} last: the listed secret values
 * and the password of any `postgres://user:password@` URL are replaced before anything is written.
 */

export type LogFormat = "text" | "json";
export type LogLevel = "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export const LOG_FORMAT_ENV = "LOOMWORKS_LOG_FORMAT";

/** The format `LOOMWORKS_LOG_FORMAT` asks for (`text` when unset); throws for any other value. */
export function logFormatFromEnv(env: NodeJS.ProcessEnv = process.env): LogFormat {
  const value = (env[LOG_FORMAT_ENV] ?? "").trim().toLowerCase();
  if (value === "" || value === "text") return "text";
  if (value === "json") return "json";
  throw new Error(`${LOG_FORMAT_ENV} must be "text" or "json" (got ${JSON.stringify(env[LOG_FORMAT_ENV])})`);
}

const DSN_PASSWORD = /(postgres(?:ql)?:\/\/[^\s:/@]*:)[^\s@]*@/gi;

/** `text` with every secret and every connection URL's password replaced. */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text;
  // Longest first: a secret that contains another is replaced whole.
  for (const secret of [...secrets].filter(Boolean).sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join("<redacted>");
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join("<redacted>");
  }
  return out.replace(DSN_PASSWORD, "$1<redacted>@");
}

export interface LogRecord {
  time: Date;
  level: LogLevel;
  job: string;
  msg: string;
  fields?: LogFields;
}

/** Reserved keys of a JSON line: a field of the same name is kept under `field.<name>`. */
const RESERVED = new Set(["time", "level", "job", "msg"]);

function redactDeep(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === "string") return redactSecrets(value, secrets);
  if (value instanceof Error) return redactSecrets(value.message, secrets);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets));
  if (typeof value === "object" && value !== null && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, secrets)]));
  }
  return value;
}

/** One line (without the newline), redacted. */
export function formatLogLine(format: LogFormat, record: LogRecord, secrets: readonly string[] = []): string {
  const fields = record.fields ?? {};
  if (format === "json") {
    // Values are redacted before encoding (JSON escapes would hide a secret holding `"` or `\`).
    const extra = Object.fromEntries(
      Object.entries(fields).map(([k, v]) => [RESERVED.has(k) ? `field.${k}` : k, redactDeep(v, secrets)]),
    );
    const line = JSON.stringify({
      time: record.time.toISOString(),
      level: record.level,
      job: record.job,
      msg: redactSecrets(record.msg, secrets),
      ...extra,
    });
    return redactSecrets(line, secrets);
  }
  const suffix = Object.entries(fields)
    .map(([k, raw]) => {
      const v = redactDeep(raw, secrets);
      return ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`;
    })
    .join("");
  const level = record.level === "info" ? "" : `${record.level.toUpperCase()} `;
  return redactSecrets(`${record.time.toISOString()} ${level}${record.msg}${suffix}`, secrets);
}

export interface JobLogger {
  /** Informational line (what the jobs print as progress): stdout. */
  (msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  /** stderr. */
  error(msg: string, fields?: LogFields): void;
  /** Adds values that must never be written (e.g. a password read after the logger was made). */
  addSecrets(...values: string[]): void;
  /** `text` redacted with this logger's secrets (for output written outside it). */
  redact(text: string): string;
}

export interface JobLoggerOptions {
  job: string;
  format: LogFormat;
  secrets?: readonly string[];
  stdout?: (line: string) => void;
  stderr?: (line: string) => void;
  now?: () => Date;
}

export function createJobLogger(opts: JobLoggerOptions): JobLogger {
  const secrets = [...(opts.secrets ?? [])];
  const stdout = opts.stdout ?? ((line: string) => void process.stdout.write(line));
  const stderr = opts.stderr ?? ((line: string) => void process.stderr.write(line));
  const now = opts.now ?? (() => new Date());
  const write = (level: LogLevel, msg: string, fields?: LogFields): void => {
    const line = formatLogLine(opts.format, { time: now(), level, job: opts.job, msg, fields }, secrets);
    (level === "error" ? stderr : stdout)(`${line}\n`);
  };
  const logger = ((msg: string, fields?: LogFields) => write("info", msg, fields)) as JobLogger;
  logger.info = (msg, fields) => write("info", msg, fields);
  logger.warn = (msg, fields) => write("warn", msg, fields);
  logger.error = (msg, fields) => write("error", msg, fields);
  logger.addSecrets = (...values) => {
    secrets.push(...values.filter(Boolean));
  };
  logger.redact = (text) => redactSecrets(text, secrets);
  return logger;
}
