/**
 * Reads a stack file (`Pulumi.<stack>.yaml`) without the Pulumi engine, for the commands that render
 * from the configuration without deploying it (`npm run compose`): the same three values
 * `loadStackConfig` reads, validated by the same `parseStackConfig`, so a bad entry gives the same
 * messages. Secret values (`secure:` entries, encrypted by the stack's secrets provider) cannot be
 * read here and are not needed: each is replaced by a stand-in that passes its rule, and the
 * renderer takes the real value from elsewhere (the Compose project's `.env`).
 */
import * as yaml from "js-yaml";
import { CONFIG_KEYS, CONFIG_NAMESPACE, ConfigError, parseStackConfig } from "./load";
import { isPlainObject, unknownKeyMessage, type StackConfig } from "./schema";

/** Stand-ins for secret values: valid by every rule a secret key has (a URL for the webhook). */
const SECRET_STANDIN = "secret-from-the-stack-file";
const SECRET_URL_STANDIN = "https://secret-from-the-stack-file.invalid/";

const isSecure = (v: unknown): boolean =>
  isPlainObject(v) && Object.keys(v).length === 1 && typeof v.secure === "string";

function withStandIns(value: unknown, key: string): unknown {
  if (isSecure(value)) return key === "webhookUrl" ? SECRET_URL_STANDIN : SECRET_STANDIN;
  if (Array.isArray(value)) return value.map((v) => withStandIns(v, key));
  if (isPlainObject(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withStandIns(v, k)]));
  return value;
}

/**
 * Parses and validates a stack file's text.
 * @throws ConfigError listing every problem (the stack file's own shape, unknown `loomworks:` keys,
 *   and everything `parseStackConfig` reports).
 */
export function parseStackFile(text: string, file: string): StackConfig {
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (err) {
    throw new ConfigError([`${file}: not YAML (${(err as Error).message.split("\n")[0]})`]);
  }
  const config = isPlainObject(doc) ? doc.config : undefined;
  if (config !== undefined && config !== null && !isPlainObject(config))
    throw new ConfigError([`${file}: "config" must be a map of configuration keys`]);
  const values = (config ?? {}) as Record<string, unknown>;
  const prefix = `${CONFIG_NAMESPACE}:`;
  const known: readonly string[] = CONFIG_KEYS;
  const problems: string[] = [];
  const raw: Record<string, unknown> = {};
  for (const [fullKey, value] of Object.entries(values)) {
    if (!fullKey.startsWith(prefix)) continue;
    const key = fullKey.slice(prefix.length);
    if (!known.includes(key)) {
      problems.push(`${CONFIG_NAMESPACE}: key "${key}": ${unknownKeyMessage(key, known)}`);
      continue;
    }
    if (isSecure(value)) {
      problems.push(
        `${CONFIG_NAMESPACE}: key "${key}": is secret as a whole and cannot be read without Pulumi; set only its secret keys with \`pulumi config set --secret --path\``,
      );
      continue;
    }
    raw[key] = withStandIns(value, key);
  }
  let parsed: StackConfig | undefined;
  try {
    parsed = parseStackConfig(raw);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  if (parsed === undefined || problems.length > 0) throw new ConfigError(problems);
  return parsed;
}
