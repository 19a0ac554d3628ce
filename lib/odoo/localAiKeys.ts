/**
 * The local target's AI provider keys for the ERP: `<stateDir>/odoo/ai.env` (mode 0600, beside
 * odoo.conf), one `NAME='value'` line per key of `platform.ai.keys`, which the operator's start
 * command loads into the ERP's environment (`set -a; . ai.env; set +a`). dynamic-providers/localAiKeys.ts
 * is the Pulumi lifecycle over these functions; a file edited by hand is noticed by `refresh` and
 * rewritten by the next `up`.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { PRIVATE_FILE_MODE, inspectFile, octalMode, sha256, writePrivateFile } from "../fs/privateFile";
import { renderAiEnvFile } from "./aiKeys";
import { localErpDir } from "./localTenantFiles";

export const AI_ENV_FILE = "ai.env";

export interface LocalAiKeysInputs {
  stateDir: string;
  /** Environment variable name → API key (a secret in the state). */
  keys: Record<string, string>;
}

export interface LocalAiKeysOutputs extends LocalAiKeysInputs {
  /** `<stateDir>/odoo/ai.env`, absolute. */
  path: string;
  /** sha256 of the file as written (or as found by `read`). */
  sha256: string;
  /** Mode as found ("0600" when as written). */
  mode: string;
}

export function localAiEnvPath(stateDir: string): string {
  return path.join(localErpDir(stateDir), AI_ENV_FILE);
}

/** The outputs the inputs should produce. */
export function expectedLocalAiKeys(inputs: LocalAiKeysInputs): LocalAiKeysOutputs {
  return {
    ...inputs,
    path: localAiEnvPath(inputs.stateDir),
    sha256: sha256(renderAiEnvFile(inputs.keys)),
    mode: octalMode(PRIVATE_FILE_MODE),
  };
}

export async function writeLocalAiKeys(inputs: LocalAiKeysInputs): Promise<LocalAiKeysOutputs> {
  const out = expectedLocalAiKeys(inputs);
  await writePrivateFile(out.path, renderAiEnvFile(inputs.keys));
  return out;
}

export async function createLocalAiKeys(
  inputs: LocalAiKeysInputs,
): Promise<{ id: string; outs: LocalAiKeysOutputs }> {
  const outs = await writeLocalAiKeys(inputs);
  return { id: `local-ai-keys:${outs.path}`, outs };
}

/** The file as it is; undefined when it is gone. */
export async function readLocalAiKeys(props: LocalAiKeysOutputs): Promise<LocalAiKeysOutputs | undefined> {
  const found = await inspectFile(props.path);
  return found ? { ...props, sha256: found.sha256, mode: found.mode } : undefined;
}

/** Writes the new file, then removes the old one when it moved (a new stateDir). */
export async function updateLocalAiKeys(
  olds: LocalAiKeysOutputs,
  news: LocalAiKeysInputs,
): Promise<LocalAiKeysOutputs> {
  const outs = await writeLocalAiKeys(news);
  if (olds.path !== outs.path) await fsp.rm(olds.path, { force: true });
  return outs;
}

export async function deleteLocalAiKeys(props: LocalAiKeysOutputs): Promise<void> {
  await fsp.rm(props.path, { force: true });
}
