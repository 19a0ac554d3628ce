/**
 * The local target's tenant map and credentials for the ERP (lib/odoo/tenantMap.ts renders them),
 * beside odoo.conf in `<stateDir>/odoo/`, each mode 0600. dynamic-providers/localErpTenants.ts is
 * the Pulumi lifecycle over these functions; a changed file is noticed by `refresh` and rewritten.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { PRIVATE_FILE_MODE, inspectFile, octalMode, sha256, writePrivateFile } from "../fs/privateFile";
import { UNKNOWN_INPUT } from "../tenant/provision";
import { renderTenantCredentials, renderTenantMap, tenantFilePaths, type ErpTenant } from "./tenantMap";

export interface LocalErpTenantsInputs {
  stateDir: string;
  tenants: ErpTenant[];
}

export interface LocalErpTenantsOutputs extends LocalErpTenantsInputs {
  mapPath: string;
  credentialsPath: string;
  /** sha256 of each file as written (or as found by `read`). */
  mapSha256: string;
  credentialsSha256: string;
  /** Modes as found ("0600" when as written). */
  mapMode: string;
  credentialsMode: string;
}

/** `<stateDir>/odoo` (absolute): odoo.conf's directory. */
export function localErpDir(stateDir: string): string {
  return path.join(path.resolve(stateDir), "odoo");
}

/** `<stateDir>/router/maintenance`: the restore's flag files (lib/router/maintenance.ts). */
export function localMaintenanceDir(stateDir: string): string {
  return path.join(path.resolve(stateDir), "router", "maintenance");
}

function render(inputs: LocalErpTenantsInputs): { map: string; credentials: string } {
  return {
    map: renderTenantMap(inputs.tenants, localMaintenanceDir(inputs.stateDir)),
    credentials: renderTenantCredentials(inputs.tenants),
  };
}

function expected(inputs: LocalErpTenantsInputs): LocalErpTenantsOutputs {
  const paths = tenantFilePaths(localErpDir(inputs.stateDir));
  const text = render(inputs);
  const mode = octalMode(PRIVATE_FILE_MODE);
  return {
    ...inputs,
    mapPath: paths.map,
    credentialsPath: paths.credentials,
    mapSha256: sha256(text.map),
    credentialsSha256: sha256(text.credentials),
    mapMode: mode,
    credentialsMode: mode,
  };
}

export function checkLocalErpTenants(inputs: LocalErpTenantsInputs): string | undefined {
  // A preview with a password (or anything) not known yet: nothing to check before the update.
  if (JSON.stringify(inputs).includes(UNKNOWN_INPUT)) return undefined;
  try {
    render(inputs);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Writes both files (credentials first: a tenant is never served before the ERP can reach it). */
export async function writeLocalErpTenants(inputs: LocalErpTenantsInputs): Promise<LocalErpTenantsOutputs> {
  const out = expected(inputs);
  const text = render(inputs);
  await writePrivateFile(out.credentialsPath, text.credentials);
  await writePrivateFile(out.mapPath, text.map);
  return out;
}

export async function createLocalErpTenants(
  inputs: LocalErpTenantsInputs,
): Promise<{ id: string; outs: LocalErpTenantsOutputs }> {
  const outs = await writeLocalErpTenants(inputs);
  return { id: `local-erp-tenants:${outs.mapPath}`, outs };
}

/** The files as they are; undefined when both are gone. */
export async function readLocalErpTenants(
  props: LocalErpTenantsOutputs,
): Promise<LocalErpTenantsOutputs | undefined> {
  const [map, credentials] = await Promise.all([
    inspectFile(props.mapPath),
    inspectFile(props.credentialsPath),
  ]);
  if (!map && !credentials) return undefined;
  return {
    ...props,
    mapSha256: map?.sha256 ?? "",
    mapMode: map?.mode ?? "",
    credentialsSha256: credentials?.sha256 ?? "",
    credentialsMode: credentials?.mode ?? "",
  };
}

/** Any input change or a file that is not what the inputs render: rewrite in place; a new stateDir replaces. */
export function diffLocalErpTenants(
  olds: LocalErpTenantsOutputs,
  news: LocalErpTenantsInputs,
): { changes: boolean; replaces: string[]; deleteBeforeReplace: boolean } {
  const replaces = localErpDir(olds.stateDir) !== localErpDir(news.stateDir) ? ["stateDir"] : [];
  let want: LocalErpTenantsOutputs | undefined;
  try {
    want = expected(news);
  } catch {
    want = undefined; // check reports it
  }
  const drift =
    want === undefined ||
    (["mapSha256", "credentialsSha256", "mapMode", "credentialsMode"] as const).some(
      (k) => olds[k] !== want[k],
    );
  return { changes: replaces.length > 0 || drift, replaces, deleteBeforeReplace: false };
}

export async function deleteLocalErpTenants(props: LocalErpTenantsOutputs): Promise<void> {
  await fsp.rm(props.mapPath, { force: true });
  await fsp.rm(props.credentialsPath, { force: true });
}
