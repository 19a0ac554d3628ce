/**
 * Redaction of the engine's error messages before they are quoted in a pull-request comment: a
 * provider exception may echo a configured secret or a connection string with its password. The
 * secrets are collected from the stack's configuration and from the environment of the CLI.
 */

export const REDACTED = "[secret]";
/** The longest message quoted; the rest is cut (after redaction, so no secret is cut in half). */
export const MAX_MESSAGE_CHARS = 2000;
/** Shorter values are not secrets worth the name, and redacting them would garble every message. */
export const MIN_SECRET_CHARS = 4;
/** Inside a structured secret value, only leaves this long at secret-looking keys are collected. */
export const MIN_LEAF_CHARS = 8;

const SECRET_KEY = /passphrase|password|secret|token|key/i;
const SECRET_ENV_SUFFIX = /_(PASSWORD|PASSPHRASE|TOKEN|SECRET|KEY)$/;

/** A configuration value as the Automation API's `stack.getAllConfig()` returns it. */
export interface ConfigEntry {
  value: string;
  secret?: boolean;
}

/**
 * `platform.ai.keys`: a map whose every value is a secret, whatever its name (`COHERE_API`, say).
 * `path` is the keys from the configuration value's root.
 */
function isSecretMap(path: readonly string[]): boolean {
  return path.length === 2 && path[0] === "ai" && path[1] === "keys";
}

function secretLeaves(value: unknown, path: readonly string[], found: string[], allSecret = false): void {
  const key = path[path.length - 1] ?? "";
  if (typeof value === "string") {
    if ((allSecret || SECRET_KEY.test(key)) && value.length >= MIN_LEAF_CHARS) found.push(value);
  } else if (Array.isArray(value)) {
    for (const item of value) secretLeaves(item, path, found, allSecret);
  } else if (value && typeof value === "object") {
    const inner = allSecret || isSecretMap(path);
    for (const [k, v] of Object.entries(value)) secretLeaves(v, [...path, k], found, inner);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The values to redact: every secret configuration value, and for a structured one (such as
 * `loomworks:platform`, wholly secret once one of its paths is) the string leaves at keys named like
 * a password, passphrase, secret, token or key, and every value of `platform.ai.keys`; then
 * PULUMI_CONFIG_PASSPHRASE and every environment variable named `*_PASSWORD`, `*_PASSPHRASE`,
 * `*_TOKEN`, `*_SECRET` or `*_KEY` (an AI provider's key in CI's environment).
 */
export function collectSecrets(
  config: Readonly<Record<string, ConfigEntry>>,
  env: Readonly<Record<string, string | undefined>>,
): string[] {
  const found: string[] = [];
  for (const entry of Object.values(config)) {
    if (!entry.secret) continue;
    found.push(entry.value);
    const structured = parseJson(entry.value);
    if (structured && typeof structured === "object") secretLeaves(structured, [], found);
  }
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && (name === "PULUMI_CONFIG_PASSPHRASE" || SECRET_ENV_SUFFIX.test(name))) {
      found.push(value);
    }
  }
  return [...new Set(found.filter((s) => s.trim().length >= MIN_SECRET_CHARS))];
}

/** The forms a secret takes in a message: as is, inside a JSON string, inside a URL. */
function spellings(secret: string): string[] {
  return [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)];
}

/** `scheme://user:PASSWORD@` and libpq's `password=PASSWORD`. */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@]+@/gi;
const KEYWORD_PASSWORD = /\b(password|passwd)=('[^']*'|[^\s'"&;]+)/gi;

/**
 * The message with every occurrence of the secrets (longest first, so that one containing another is
 * replaced whole) and every URL or libpq password replaced by `[secret]`, cut at MAX_MESSAGE_CHARS.
 */
export function redactMessage(message: string, secrets: readonly string[]): string {
  const needles = [...new Set(secrets.flatMap(spellings))]
    .filter((s) => s.trim().length >= MIN_SECRET_CHARS)
    .sort((a, b) => b.length - a.length);
  let text = message;
  for (const needle of needles) text = text.split(needle).join(REDACTED);
  text = text
    .replace(URL_PASSWORD, `$1${REDACTED}@`)
    .replace(KEYWORD_PASSWORD, (_m, key: string) => `${key}=${REDACTED}`);
  if (text.length > MAX_MESSAGE_CHARS) text = `${text.slice(0, MAX_MESSAGE_CHARS)}… (truncated)`;
  return text;
}
