/**
 * The local target's odoo.conf: rendered by lib/odoo/config.ts with the secrets written in (the ERP
 * runs on this machine without the image's entrypoint) and kept at `<stateDir>/odoo/odoo.conf`,
 * mode 0600 in a 0700 directory. dynamic-providers/localOdooConfig.ts is the Pulumi lifecycle over
 * these functions.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { PRIVATE_FILE_MODE, inspectFile, octalMode, sha256, writePrivateFile } from "../fs/privateFile";
import { odooSizing, renderOdooConfig } from "./config";
import { forwardTo } from "../pulumi/forward";
import type * as OdooProvider from "./provider";

export { sha256 };
export const LOCAL_ODOO_CONF_MODE = PRIVATE_FILE_MODE;

export interface LocalOdooConfigSpec {
  stateDir: string;
  adminPasswd: string;
  dbHost: string;
  dbPort: number;
  dbUser: string;
  dbPassword: string;
  dataDir: string;
  addonsPath: string;
  cpu: number;
  memoryMb: number;
  redisUrl?: string;
  /** Default 127.0.0.1: on this machine only the router reaches the ERP. */
  httpInterface?: string;
  httpPort?: number;
  geventPort?: number;
  /** The tenant map and credentials files (lib/odoo/localTenantFiles.ts) the ERP's addon reads. */
  tenantMapPath?: string;
  tenantCredentialsPath?: string;
}

/** What the resource records about the file it wrote. */
export interface LocalOdooConfigState {
  path: string;
  /** sha256 of the file's content: `read` compares it with the file on disk. */
  sha256: string;
  /** File mode, octal ("0600"). */
  mode: string;
  workers: number;
  /** Bytes. */
  limitMemoryHard: number;
}

/** Where the file of a state directory is: `<stateDir>/odoo/odoo.conf` (absolute). */
export function localOdooConfigPath(stateDir: string): string {
  return path.join(path.resolve(stateDir), "odoo", "odoo.conf");
}

export function renderLocalOdooConfig(spec: LocalOdooConfigSpec): string {
  return renderOdooConfig({
    adminPasswd: spec.adminPasswd,
    dbHost: spec.dbHost,
    dbPort: spec.dbPort,
    dbUser: spec.dbUser,
    dbPassword: spec.dbPassword,
    dataDir: spec.dataDir,
    addonsPath: spec.addonsPath,
    cpu: spec.cpu,
    memoryMb: spec.memoryMb,
    httpInterface: spec.httpInterface ?? "127.0.0.1",
    ...(spec.redisUrl ? { redisUrl: spec.redisUrl } : {}),
    ...(spec.httpPort ? { httpPort: spec.httpPort } : {}),
    ...(spec.geventPort ? { geventPort: spec.geventPort } : {}),
    ...(spec.tenantMapPath && spec.tenantCredentialsPath
      ? { tenantFiles: { map: spec.tenantMapPath, credentials: spec.tenantCredentialsPath } }
      : {}),
  });
}

/** The state a spec leads to, without touching the disk (what `diff` compares against). */
export function expectedLocalOdooConfig(spec: LocalOdooConfigSpec): LocalOdooConfigState {
  const size = odooSizing(spec.cpu, spec.memoryMb);
  return {
    path: localOdooConfigPath(spec.stateDir),
    sha256: sha256(renderLocalOdooConfig(spec)),
    mode: octalMode(LOCAL_ODOO_CONF_MODE),
    workers: size.workers,
    limitMemoryHard: size.limitMemoryHard,
  };
}

/** Writes the file atomically (temporary file + rename), mode 0600, its directory 0700. Idempotent. */
export async function writeLocalOdooConfig(spec: LocalOdooConfigSpec): Promise<LocalOdooConfigState> {
  const state = expectedLocalOdooConfig(spec);
  await writePrivateFile(state.path, renderLocalOdooConfig(spec));
  return state;
}

/** The file as it is on disk: undefined when it is gone. */
export async function inspectLocalOdooConfig(
  file: string,
): Promise<{ sha256: string; mode: string } | undefined> {
  return inspectFile(file);
}

/** Removes the file (and its directory when left empty). Idempotent. */
export async function removeLocalOdooConfig(file: string): Promise<void> {
  await fsp.rm(file, { force: true });
  await fsp.rmdir(path.dirname(file)).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------
// The resource's lifecycle (dynamic-providers/localOdooConfig.ts delegates each method here).

/** Inputs of the LocalOdooConfig resource. */
export type LocalOdooConfigInputs = LocalOdooConfigSpec;
/** Its outputs: the inputs and the state of the file. */
export type LocalOdooConfigOutputs = LocalOdooConfigInputs & LocalOdooConfigState;

/** The resource's inputs (diffed by lib/odoo/provider.ts). */
export const LOCAL_ODOO_CONFIG_INPUT_KEYS = [
  "stateDir",
  "adminPasswd",
  "dbHost",
  "dbPort",
  "dbUser",
  "dbPassword",
  "dataDir",
  "addonsPath",
  "cpu",
  "memoryMb",
  "redisUrl",
  "httpInterface",
  "httpPort",
  "geventPort",
  "tenantMapPath",
  "tenantCredentialsPath",
] as const;

/** The spec fields of the resource's inputs or outputs (an empty optional counts as absent). */
export function localOdooConfigSpec(o: LocalOdooConfigInputs): LocalOdooConfigSpec {
  const spec: LocalOdooConfigSpec = {
    stateDir: o.stateDir,
    adminPasswd: o.adminPasswd,
    dbHost: o.dbHost,
    dbPort: o.dbPort,
    dbUser: o.dbUser,
    dbPassword: o.dbPassword,
    dataDir: o.dataDir,
    addonsPath: o.addonsPath,
    cpu: o.cpu,
    memoryMb: o.memoryMb,
  };
  if (o.redisUrl) spec.redisUrl = o.redisUrl;
  if (o.httpInterface) spec.httpInterface = o.httpInterface;
  if (o.httpPort) spec.httpPort = o.httpPort;
  if (o.geventPort) spec.geventPort = o.geventPort;
  if (o.tenantMapPath) spec.tenantMapPath = o.tenantMapPath;
  if (o.tenantCredentialsPath) spec.tenantCredentialsPath = o.tenantCredentialsPath;
  return spec;
}

export async function createLocalOdooConfig(
  inputs: LocalOdooConfigInputs,
): Promise<{ id: string; outs: LocalOdooConfigOutputs }> {
  const spec = localOdooConfigSpec(inputs);
  const state = await writeLocalOdooConfig(spec);
  return { id: `local-odoo-config:${state.path}`, outs: { ...spec, ...state } };
}

/** read: the file's actual hash and mode; undefined when the file is gone (the resource left the state). */
export async function readLocalOdooConfig(
  props: LocalOdooConfigOutputs,
): Promise<LocalOdooConfigOutputs | undefined> {
  const onDisk = await inspectLocalOdooConfig(props.path);
  return onDisk && { ...props, sha256: onDisk.sha256, mode: onDisk.mode };
}

export async function updateLocalOdooConfig(news: LocalOdooConfigInputs): Promise<LocalOdooConfigOutputs> {
  const spec = localOdooConfigSpec(news);
  return { ...spec, ...(await writeLocalOdooConfig(spec)) };
}

export async function deleteLocalOdooConfig(props: LocalOdooConfigOutputs): Promise<void> {
  await removeLocalOdooConfig(props.path);
}

// ---- Kept for the providers in existing stacks' state (lib/pulumi/forward.ts); the code is in ./provider.
const odooProvider = (): typeof OdooProvider => require("./provider") as typeof OdooProvider;
export const diffLocalOdooConfig = forwardTo(odooProvider, "diffLocalOdooConfig");
/** The first problem, or undefined (the old providers report it on `adminPasswd`). */
export function checkLocalOdooConfig(inputs: LocalOdooConfigInputs): string | undefined {
  return odooProvider().checkLocalOdooConfig(inputs)[0]?.reason;
}
