import * as pulumi from "@pulumi/pulumi";
import type { Limits, TenantConfig } from "../infra/config/schema";
import { RandomSecret, rotationKeepers } from "../dynamic-providers/randomSecret";
import { PitrRestore } from "../dynamic-providers/pitrRestore";
import { Snapshot, type SnapshotSummary } from "../dynamic-providers/snapshot";

export type { SnapshotSummary };
import { TenantDatabase } from "../dynamic-providers/tenantDatabase";
import { TenantGuards } from "../dynamic-providers/tenantGuards";
import { GUARDS_VERSION } from "../lib/guards/install";

export interface TenantArgs {
  config: TenantConfig;
  adminDsn: pulumi.Input<string>;
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  /** Name of the template database the tenant is copied from. */
  templateDatabase: pulumi.Input<string>;
  filestoreRoot: string;
  /** Where snapshots keep their hard-link copies of the filestore (same filesystem as filestoreRoot). */
  snapshotRoot: string;
  /** The local target's state directory (pgBackRest configuration, restore scratch space). */
  stateDir: string;
  /** pgBackRest configuration file and stanza of the cluster (backup-set lookup for snapshots). */
  pgbackrestConfig: string;
  stanza: string;
  url: string;
  /** Stack table patterns never captured for undo (platform.undo.excludeTables). */
  undoExcludeTables: readonly string[];
  /** The ERP's own role, made a member of the tenant's role. */
  erpRole?: pulumi.Input<string>;
  /** platform.credentialRotation: rotates this tenant's role password too (with every other tenant's). */
  platformCredentialRotation?: string;
  /**
   * The kubernetes target: the filestore is the ERP's own volume (filestoreRoot ""), and a declared
   * restore runs as a Job the platform declares (`restoreJob`), not through PitrRestore.
   */
  restoreJob?: (db: TenantDatabase) => pulumi.Resource;
}

/** An entry of the `restores` stack output (docs/configuration.md#stack-outputs). */
export interface RestoreSummary {
  id: string;
  target: Record<string, string>;
  state: string;
  preRestoreDatabase: string;
  timings: Record<string, number>;
}

/** A tenant's entry in the `tenants` stack output; only `dsn` is secret. */
export interface TenantSummary {
  database: string;
  state: pulumi.Output<string>;
  tier: string;
  url: string;
  roleName: string;
  dsn: pulumi.Output<string>;
  limits: Limits;
}

/** The database name and the login role of a tenant: both are its subdomain (different namespaces). */
export function tenantNames(subdomain: string): { database: string; roleName: string } {
  return { database: subdomain, roleName: subdomain };
}

/** One tenant: its own database copied from a tier template, its login role, ERP admin and filestore. */
export class Tenant extends pulumi.ComponentResource {
  readonly summary: TenantSummary;
  readonly adminPassword: pulumi.Output<string>;
  /** Declared snapshots by name. */
  readonly snapshots: Record<string, pulumi.Output<SnapshotSummary>> = {};
  /** The declared point-in-time restore, when the tenant has one. */
  readonly restore?: pulumi.Output<RestoreSummary>;
  /** Undo capture, quotas and AI-operation limits inside the tenant database. */
  readonly guards: TenantGuards;
  readonly database: TenantDatabase;
  readonly config: TenantConfig;
  /** The tenant role's password (secret): the ERP's tenant credentials carry it. */
  readonly rolePassword: pulumi.Output<string>;

  constructor(name: string, args: TenantArgs, opts?: pulumi.ComponentResourceOptions) {
    super("loomworks:tenant:Tenant", name, {}, opts);
    const cfg = args.config;
    this.config = cfg;
    const { database, roleName } = tenantNames(cfg.subdomain);
    const rolePassword = new RandomSecret(
      `${name}-role-password`,
      {
        length: 32,
        keepers: rotationKeepers({
          platform: args.platformCredentialRotation,
          tenant: cfg.credentialRotation,
        }),
      },
      { parent: this },
    );
    const adminPassword = new RandomSecret(`${name}-admin-password`, { length: 20 }, { parent: this });

    const db = new TenantDatabase(
      name,
      {
        adminDsn: args.adminDsn,
        host: args.host,
        port: args.port,
        subdomain: cfg.subdomain,
        database,
        roleName,
        rolePassword: rolePassword.result,
        adminEmail: cfg.adminEmail,
        adminPassword: adminPassword.result,
        template: args.templateDatabase,
        tier: cfg.tier,
        state: cfg.state,
        limits: { ...cfg.limits },
        filestoreRoot: args.filestoreRoot,
        retentionDays: cfg.retentionDays,
        forceDestroy: cfg.forceDestroy,
        ...(args.erpRole ? { erpRole: args.erpRole } : {}),
      },
      { parent: this, customTimeouts: { create: "10m", update: "10m", delete: "10m" } },
    );

    const snapshotResources: Record<string, Snapshot> = {};
    for (const snapshotName of Object.keys(cfg.snapshots)) {
      const snapshot = new Snapshot(
        `${name}-snapshot-${snapshotName}`,
        {
          adminDsn: args.adminDsn,
          subdomain: cfg.subdomain,
          database,
          name: snapshotName,
          filestoreRoot: args.filestoreRoot,
          snapshotRoot: args.snapshotRoot,
          pgbackrestConfig: args.pgbackrestConfig,
          pgbackrestStanza: args.stanza,
        },
        { parent: this, dependsOn: [db] },
      );
      snapshotResources[snapshotName] = snapshot;
      this.snapshots[snapshotName] = snapshot.summary();
    }

    let restoreResource: PitrRestore | undefined;
    const restoreJob = cfg.restore && args.restoreJob ? args.restoreJob(db) : undefined;
    if (cfg.restore && !restoreJob) {
      const fromSnapshot = "snapshot" in cfg.restore ? snapshotResources[cfg.restore.snapshot] : undefined;
      const restore = new PitrRestore(
        `${name}-restore`,
        {
          adminDsn: args.adminDsn,
          stateDir: args.stateDir,
          stanza: args.stanza,
          subdomain: cfg.subdomain,
          database,
          roleName,
          tenantState: cfg.state,
          target: { ...cfg.restore },
          snapshotLsn: fromSnapshot?.lsn,
          snapshotFilestore: fromSnapshot?.filestorePath,
          filestoreRoot: args.filestoreRoot,
        },
        {
          parent: this,
          dependsOn: fromSnapshot ? [db, fromSnapshot] : [db],
          customTimeouts: { create: "60m", update: "60m" },
        },
      );
      restoreResource = restore;
      this.restore = pulumi
        .all([restore.restoreId, restore.target, restore.state, restore.preRestoreDatabase, restore.timings])
        .apply(([id, target, state, preRestoreDatabase, timings]): RestoreSummary => ({
          id,
          target: { ...target } as Record<string, string>,
          state,
          preRestoreDatabase,
          timings: timings as Record<string, number>,
        }));
    }

    this.guards = new TenantGuards(
      `${name}-guards`,
      {
        adminDsn: args.adminDsn,
        subdomain: cfg.subdomain,
        database,
        tier: cfg.tier,
        limits: { ...cfg.limits },
        excludeTables: [...args.undoExcludeTables],
        version: GUARDS_VERSION,
        ...(restoreResource ? { generation: restoreResource.restoreId } : {}),
        ...(restoreJob ? { generation: restoreJob.urn } : {}),
      },
      {
        parent: this,
        dependsOn: restoreResource ? [db, restoreResource] : restoreJob ? [db, restoreJob] : [db],
        customTimeouts: { create: "10m", update: "10m", delete: "10m" },
      },
    );

    this.database = db;
    this.rolePassword = pulumi.secret(rolePassword.result);
    this.adminPassword = adminPassword.result;
    this.summary = {
      database,
      state: db.state,
      tier: cfg.tier,
      url: args.url,
      roleName,
      dsn: pulumi.secret(db.dsn),
      limits: cfg.limits,
    };
    this.registerOutputs({ state: db.state });
  }
}
