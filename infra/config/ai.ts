/**
 * `platform.ai`: the AI providers' API keys the ERP's AI module reads from its environment
 * (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, ...). They are secrets: set with
 * `pulumi config set --secret --path 'loomworks:platform.ai.keys.<NAME>' <value>`, kept encrypted in
 * the stack file and the state, delivered to the ERP as environment (docker, kubernetes) or a 0600
 * env file (local), never in a ConfigMap or a message (docs/operations/erp.md#ai-provider-keys).
 */
import { namedMap, strictMap, text } from "./helpers";

/** An environment variable name as the ERP's process sees it: upper case, digits, underscores. */
export const AI_KEY_NAME = /^[A-Z][A-Z0-9_]{0,127}$/;

/** Names the platform or the ERP image sets itself: a key may not shadow them. */
const RESERVED_PREFIXES = ["LOOMWORKS_", "ODOO_", "PG", "PYTHON", "XDG_", "LC_"] as const;
const RESERVED_NAMES = new Set(["PATH", "HOME", "USER", "HOSTNAME", "LANG", "SHELL", "TZ", "PWD"]);

export const AI_RULES = {
  keyName: `must be an environment variable name (A-Z first, then A-Z, 0-9 or "_", at most 128 characters) and not one the platform sets (${[...RESERVED_NAMES].join(", ")}, or starting with ${RESERVED_PREFIXES.join(", ")})`,
  keyValue: "must be a non-empty secret string without leading or trailing whitespace",
  keys: 'must be a map from environment variable name (A-Z first, then A-Z, 0-9 or "_") to a non-empty secret string',
} as const;

export function isAiKeyName(name: string): boolean {
  return (
    AI_KEY_NAME.test(name) &&
    !RESERVED_NAMES.has(name) &&
    !RESERVED_PREFIXES.some((prefix) => name.startsWith(prefix))
  );
}

/** True for the path of a key's value (`ai.keys.<NAME>`): its value is never shown in a message. */
export function isAiKeyValuePath(path: readonly PropertyKey[]): boolean {
  return path.length === 3 && path[0] === "ai" && path[1] === "keys";
}

export const aiConfigSchema = strictMap(
  {
    keys: namedMap({ test: isAiKeyName }, AI_RULES.keyName, text(AI_RULES.keyValue), AI_RULES.keys).default(
      {},
    ),
  },
  "must be a map of AI settings (keys)",
);

export interface AiConfig {
  /**
   * Environment variable name → API key. Plain text once loaded (like the backup passphrase):
   * wrap it with `pulumi.secret()` before it goes into any resource input or output.
   */
  keys: Record<string, string>;
}
