/**
 * Check and diff of the tenant area's dynamic providers (TenantDatabase, TenantTemplate, ErpRole),
 * unit-tested in test/unit/tenant-sql.test.ts. The lifecycles are in provision.ts, template.ts and
 * erpRole.ts.
 */
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { diffKeys, diffResult, type KeyDiffResult } from "../pulumi/diff";
import { CheckFailures } from "../pulumi/failures";
import { isKnown } from "../pulumi/unknown";
import { EXTERNAL_FILESTORE, type TenantStatus } from "./provision";
import { TENANT_STATES, type TenantState } from "../registry/tenantState";
import { checkDatabaseName, checkRoleName } from "../pg/names";

/** Inputs whose change means a new tenant (the old one is deleted first). */
export const TENANT_REPLACE_KEYS = ["subdomain", "database", "roleName", "filestoreRoot"] as const;
/** Inputs changed in place by updateTenant. */
export const TENANT_UPDATE_KEYS = [
  "state",
  "tier",
  "limits",
  "adminEmail",
  "rolePassword",
  "forceDestroy",
  "retentionDays",
  "host",
  "port",
  "adminDsn",
  "erpRole",
] as const;

export interface TenantDiff extends KeyDiffResult {
  /** Keys that changed (informational). */
  changed: string[];
  /** The live tenant is incomplete (drift found by read): the update will recreate what is missing. */
  drift: boolean;
}

/**
 * Plans a TenantDatabase diff. `template` is deliberately neither a replace nor an update key: the
 * template only matters when the database is created, and replacing a tenant because its template
 * (or tier → template mapping) changed would destroy its data. `adminPassword` is the initial
 * password only (the ERP admin may change it); changing it later has no effect.
 */
export function diffTenant(olds: Record<string, unknown>, news: Record<string, unknown>): TenantDiff {
  const d = diffKeys(olds, news, { replaceKeys: TENANT_REPLACE_KEYS, updateKeys: TENANT_UPDATE_KEYS });
  const drift =
    olds.databaseExists === false ||
    olds.roleExists === false ||
    olds.initialized === false ||
    olds.registryExists === false ||
    // A tenant provisioned when it owned its database (read finds it): ensureOwnership converts it.
    olds.tenantOwnsDatabase === true;
  return { ...diffResult(d, { deleteBeforeReplace: true, drift }), changed: d.changed, drift };
}

/** What TenantDatabase's read records for diffTenant: false (or tenantOwnsDatabase true) is drift an update repairs. */
export interface TenantDriftMarkers {
  databaseExists: boolean;
  roleExists: boolean;
  initialized: boolean;
  registryExists: boolean;
  tenantOwnsDatabase: boolean;
}

/**
 * TenantDatabase's read: the state as found (the registry's tier, limits, e-mail and retention;
 * the observed lifecycle state; the drift markers) and the drift to warn about. Undefined when
 * nothing of the tenant is left (the resource is gone).
 */
export function tenantRead<P extends { database: string; roleName: string; state: string }>(
  props: P,
  st: TenantStatus,
): { props: P & TenantDriftMarkers; warnings: string[] } | undefined {
  if (!st.databaseExists && !st.roleExists && !st.registry) return undefined;
  const reg = st.registry;
  const registryExists = reg !== undefined && reg.state !== "provisioning";
  const missing = [
    st.databaseExists ? "" : `database ${props.database}`,
    st.roleExists ? "" : `role ${props.roleName}`,
    !st.databaseExists || st.initialized ? "" : "initialization",
    registryExists ? "" : "registry row",
  ].filter(Boolean);
  const tenantOwnsDatabase = st.databaseOwner === props.roleName;
  const warnings = [
    ...(missing.length > 0 ? [`drift, missing ${missing.join(", ")}; the next up repairs it`] : []),
    ...(tenantOwnsDatabase
      ? ["the tenant role owns its database; the next up gives it to the platform"]
      : []),
  ];
  return {
    warnings,
    props: {
      ...props,
      state: st.observedState ?? props.state,
      ...(reg
        ? {
            tier: reg.tier,
            limits: reg.limits,
            adminEmail: reg.adminEmail,
            ...(reg.retentionUntil ? { retentionUntil: reg.retentionUntil.toISOString() } : {}),
          }
        : {}),
      databaseExists: st.databaseExists,
      roleExists: st.roleExists,
      initialized: st.initialized,
      registryExists,
      tenantOwnsDatabase,
    },
  };
}

/** TenantDatabase's check: names and enums only, skipping values not known yet. */
export function checkTenantInputs(p: Record<string, unknown>): pulumi.dynamic.CheckFailure[] {
  const failures = new CheckFailures();
  failures.requireKeys(p, ["subdomain", "database", "roleName", "state", "adminEmail"]);
  // Empty is a value here: EXTERNAL_FILESTORE, the filestore of a target that `pulumi up` cannot reach.
  if (p.filestoreRoot === undefined) failures.add("filestoreRoot", "filestoreRoot is required");
  if (isKnown(p.database)) failures.attempt("database", () => checkDatabaseName(String(p.database)));
  if (isKnown(p.roleName)) failures.attempt("roleName", () => checkRoleName(String(p.roleName)));
  if (isKnown(p.template)) {
    failures.attempt("template", () => checkDatabaseName(String(p.template), "template database"));
  }
  if (isKnown(p.state) && !TENANT_STATES.includes(p.state as TenantState)) {
    failures.add("state", `state must be one of ${TENANT_STATES.join(", ")}`);
  }
  if (isKnown(p.retentionDays) && (!Number.isInteger(p.retentionDays) || (p.retentionDays as number) < 0)) {
    failures.add("retentionDays", "retentionDays must be a non-negative integer");
  }
  const root = p.filestoreRoot;
  if (isKnown(root) && typeof root === "string" && root !== EXTERNAL_FILESTORE && !path.isAbsolute(root)) {
    failures.add("filestoreRoot", "filestoreRoot must be an absolute path");
  }
  return failures.list;
}

/** TenantTemplate's check: exactly one source. */
export function checkTemplateInputs(p: Record<string, unknown>): pulumi.dynamic.CheckFailure[] {
  const failures = new CheckFailures();
  if (Boolean(p.fromDump) === Boolean(p.fromCommand)) {
    failures.add("fromDump", "a template needs exactly one of fromDump or fromCommand");
  }
  return failures.list;
}

/**
 * TenantTemplate's diff: a new database or source hash replaces it (built first); the other
 * inputs update in place. Neither commandRunner nor builderPassword is part of it.
 */
export function diffTemplate(olds: Record<string, unknown>, news: Record<string, unknown>): KeyDiffResult {
  const d = diffKeys(olds, news, {
    replaceKeys: ["database", "dumpHash"],
    updateKeys: [
      "name",
      "fromDump",
      "fromCommand",
      "adminDsn",
      "stateDir",
      "filestoreRoot",
      "guardsVersion",
      "excludeTables",
    ],
    normalize: (v, key) => (key === "excludeTables" ? (v ?? []) : v),
  });
  return diffResult(d, { deleteBeforeReplace: false });
}

/**
 * ErpRole's diff: a new role name replaces it; a new password or superuser DSN, or drift found by
 * read (a tenant membership granted, made superuser), updates it.
 */
export function diffErpRole(olds: Record<string, unknown>, news: Record<string, unknown>): KeyDiffResult {
  const d = diffKeys(olds, news, { replaceKeys: ["roleName"], updateKeys: ["password", "adminDsn"] });
  const memberships = olds.tenantMemberships;
  const drift = (Array.isArray(memberships) && memberships.length > 0) || olds.superuser === true;
  return diffResult(d, { deleteBeforeReplace: false, drift });
}
