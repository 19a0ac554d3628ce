/**
 * The two files the ERP's `loomworks_tenants` addon (docker/addons/loomworks_tenants) reads, rendered
 * the same for every target: the tenant map (which databases the ERP serves: active tenants, minus
 * those under maintenance) and the tenant credentials (each database's own role and password: the
 * ERP reaches a tenant only as that tenant). The addon re-reads a file when it changes, so
 * provisioning, suspension, rotation and restores need no ERP restart.
 */
import * as path from "node:path";
import type { TenantState } from "../registry/tenantState";

export const TENANT_FILES_VERSION = 1;
export const TENANT_MAP_FILE = "tenants.json";
export const TENANT_CREDENTIALS_FILE = "tenant-credentials.json";
/** odoo.conf options naming the files (the addon also reads LOOMWORKS_TENANT_MAP / _CREDENTIALS). */
export const TENANT_MAP_OPTION = "loomworks_tenant_map";
export const TENANT_CREDENTIALS_OPTION = "loomworks_tenant_credentials";
export const TENANTS_MODULE = "loomworks_tenants";

export interface ErpTenant {
  subdomain: string;
  database: string;
  roleName: string;
  /** The tenant role's password (secret). */
  password: string;
  state: TenantState;
}

/** `<dir>/tenants.json` and `<dir>/tenant-credentials.json`. */
export function tenantFilePaths(dir: string): { map: string; credentials: string } {
  return { map: path.join(dir, TENANT_MAP_FILE), credentials: path.join(dir, TENANT_CREDENTIALS_FILE) };
}

function checkTenants(tenants: readonly ErpTenant[]): ErpTenant[] {
  const seen = new Set<string>();
  for (const t of tenants) {
    for (const key of ["subdomain", "database", "roleName", "password"] as const) {
      if (typeof t[key] !== "string" || t[key] === "")
        throw new Error(`tenant map: tenant "${t.subdomain}" has no ${key}`);
    }
    if (seen.has(t.database)) throw new Error(`tenant map: database "${t.database}" appears twice`);
    seen.add(t.database);
  }
  return [...tenants].sort((a, b) => a.subdomain.localeCompare(b.subdomain));
}

/** The map (no secrets): every declared tenant with its state; the addon serves the active ones. */
export function renderTenantMap(tenants: readonly ErpTenant[], maintenanceDir?: string): string {
  const doc = {
    version: TENANT_FILES_VERSION,
    ...(maintenanceDir ? { maintenanceDir } : {}),
    tenants: checkTenants(tenants).map((t) => ({
      subdomain: t.subdomain,
      database: t.database,
      state: t.state,
    })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** The credentials (secret): each database's own role. Suspended tenants keep theirs (their role cannot log in). */
export function renderTenantCredentials(tenants: readonly ErpTenant[]): string {
  const databases: Record<string, { user: string; password: string }> = {};
  for (const t of checkTenants(tenants)) databases[t.database] = { user: t.roleName, password: t.password };
  return `${JSON.stringify({ version: TENANT_FILES_VERSION, databases }, null, 2)}\n`;
}

/** The databases the addon serves for a map (what tests and the docs call "served"). */
export function servedDatabases(tenants: readonly ErpTenant[]): string[] {
  return checkTenants(tenants)
    .filter((t) => t.state === "active")
    .map((t) => t.database);
}
