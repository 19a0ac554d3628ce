/**
 * The local target's tenant map and credentials for the ERP (lib/odoo/tenantMap.ts renders them),
 * beside odoo.conf in `<stateDir>/odoo/`, each mode 0600. dynamic-providers/localErpTenants.ts is
 * the Pulumi lifecycle over these functions; a changed file is noticed by `refresh` and rewritten.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { PRIVATE_FILE_MODE, inspectFile, octalMode, sha256, writePrivateFile } from "../fs/privateFile";
import { renderTenantCredentials, renderTenantMap, tenantFilePaths, type ErpTenant } from "./tenantMap";
import { forwardTo } from "../pulumi/forward";
import type * as OdooProvider from "./provider";

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

/** The two files' text (throws on inputs it cannot render). */
export function renderLocalErpTenants(inputs: LocalErpTenantsInputs): { map: string; credentials: string } {
  return {
    map: renderTenantMap(inputs.tenants, localMaintenanceDir(inputs.stateDir)),
    credentials: renderTenantCredentials(inputs.tenants),
  };
}

/** The outputs the inputs should produce. */
export function expectedLocalErpTenants(inputs: LocalErpTenantsInputs): LocalErpTenantsOutputs {
  const paths = tenantFilePaths(localErpDir(inputs.stateDir));
  const text = renderLocalErpTenants(inputs);
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

/** Writes both files (credentials first: a tenant is never served before the ERP can reach it). */
export async function writeLocalErpTenants(inputs: LocalErpTenantsInputs): Promise<LocalErpTenantsOutputs> {
  const out = expectedLocalErpTenants(inputs);
  const text = renderLocalErpTenants(inputs);
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

export async function deleteLocalErpTenants(props: LocalErpTenantsOutputs): Promise<void> {
  await fsp.rm(props.mapPath, { force: true });
  await fsp.rm(props.credentialsPath, { force: true });
}

// ---- Kept for the providers in existing stacks' state (lib/pulumi/forward.ts); the code is in ./provider.
const odooProvider = (): typeof OdooProvider => require("./provider") as typeof OdooProvider;
export const diffLocalErpTenants = forwardTo(odooProvider, "diffLocalErpTenants");
/** The first problem, or undefined (the old providers report it on `tenants`). */
export function checkLocalErpTenants(inputs: LocalErpTenantsInputs): string | undefined {
  return odooProvider().checkLocalErpTenants(inputs)[0]?.reason;
}
