/**
 * The AI providers' keys (`platform.ai.keys`: environment variable name → secret) as each target
 * hands them to the ERP: a content hash for rolling the ERP when a key changes (the hash, never the
 * value, goes into a pod template) and the local target's env file.
 */
import { createHash } from "node:crypto";
import { shellQuote } from "../process/shellQuote";

/** The names, sorted: what may be shown (previews, docs) instead of the values. */
export function aiKeyNames(keys: Readonly<Record<string, string>>): string[] {
  return Object.keys(keys).sort();
}

/**
 * A short hash of the names and values: it changes when any key is added, removed or rotated.
 * 16 hex characters of SHA-256 over high-entropy API keys reveal nothing usable about them.
 */
export function aiKeysHash(keys: Readonly<Record<string, string>>): string {
  const canonical = JSON.stringify(aiKeyNames(keys).map((name) => [name, keys[name]]));
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

/**
 * The local target's `ai.env`: one `NAME='value'` line per key, for
 * `set -a; . <stateDir>/odoo/ai.env; set +a` before starting the ERP.
 */
export function renderAiEnvFile(keys: Readonly<Record<string, string>>): string {
  const header = [
    "# AI provider keys for the ERP (platform.ai.keys), written by `pulumi up`; mode 0600.",
    "# Load before starting the ERP: set -a; . ./ai.env; set +a",
  ];
  const lines = aiKeyNames(keys).map((name) => `${name}=${shellQuote(keys[name] ?? "")}`);
  return [...header, ...lines, ""].join("\n");
}
