import * as pulumi from "@pulumi/pulumi";
import type { Limits, RestoreTarget, TenantConfig } from "../infra/config/schema";
import { RandomSecret, rotationKeepers } from "../dynamic-providers/randomSecret";
import { PitrRestore } from "../dynamic-providers/pitrRestore";
import { Snapshot, type SnapshotSummary } from "../dynamic-providers/snapshot";

export type { SnapshotSummary };
import { TenantDatabase } from "../dynamic-providers/tenantDatabase";
import { TenantGuards } from "../dynamic-providers/tenantGuards";
import { GUARDS_VERSION } from "../lib/guards/install";
import { EXTERNAL_FILESTORE } from "../lib/tenant/provision";

export interface TenantArgs {
  config: TenantConfig;
  adminDsn: pulumi.Input<string>;
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  /** Name of the template database the tenant is copied from. */
  templateDatabase: pulumi.Input<string>;
  url: string;
  /** Stack table patterns never captured for undo (platform.undo.excludeTables). */
  undoExcludeTables: readonly string[];
  /** The ERP's own role, made a member of the tenant's role. */
  erpRole?: pulumi.Input<string>;
  /** platform.credentialRotation: rotates this tenant's role password too (with every other tenant's). */
  platformCredentialRotation?: string;
  /** Where the tenant's files live and how its snapshots and restores run: the target's. */
  site: TenantSite;
}

/** The local target: filestore, snapshots and restores on this machine, next to the cluster. */
export interface LocalTenantSite {
  kind: "local";
  filestoreRoot: string;
  /** Where snapshots keep their hard-link copies of the filestore (same filesystem as filestoreRoot). */
  snapshotRoot: string;
  /** The state directory (pgBackRest configuration, restore scratch space). */
  stateDir: string;
  /** pgBackRest configuration file and stanza of the cluster (backup-set lookup for snapshots). */
  pgbackrestConfig: string;
  stanza: string;
}

/**
 * The kubernetes target: the filestore is the ERP's own volume, there are no declared snapshots,
 * and a declared restore runs as a Job the platform declares (after the tenant's database).
 */
export interface KubernetesTenantSite {
  kind: "kubernetes";
  restoreJob: (db: TenantDatabase) => DeclaredRestoreJob;
}

/**
 * The docker target: the filestore is the ERP's odoo_data volume, there are no declared snapshots,
 * and a declared restore runs as a one-shot container the platform declares (after the database).
 */
export interface DockerTenantSite {
  kind: "docker";
  restoreJob: (db: TenantDatabase) => DeclaredRestoreJob;
}

export type TenantSite = LocalTenantSite | KubernetesTenantSite | DockerTenantSite;

/** A restore declared outside the Tenant (a Job, a container): the resource, and its entry of the `restores` output. */
export interface DeclaredRestoreJob {
  job: pulumi.Resource;
  summary: pulumi.Output<RestoreSummary>;
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
    const site = args.site;
    if (site.kind !== "local" && Object.keys(cfg.snapshots).length > 0) {
      // The config schema already refuses this; kept as a guard for programmatic callers.
      throw new pulumi.RunError(
        `tenant "${cfg.subdomain}": key "snapshots": declared snapshots are taken on the local target only`,
      );
    }
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
        filestoreRoot: site.kind === "local" ? site.filestoreRoot : EXTERNAL_FILESTORE,
        retentionDays: cfg.retentionDays,
        forceDestroy: cfg.forceDestroy,
        ...(args.erpRole ? { erpRole: args.erpRole } : {}),
      },
      { parent: this, customTimeouts: { create: "10m", update: "10m", delete: "10m" } },
    );

    const snapshots = site.kind === "local" ? this.declareSnapshots(name, args, site, db) : {};
    const restore = cfg.restore ? this.declareRestore(name, args, cfg.restore, db, snapshots) : undefined;
    this.restore = restore?.summary;

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
        ...(restore ? { generation: restore.generation } : {}),
      },
      {
        parent: this,
        dependsOn: restore ? [db, restore.resource] : [db],
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

  /**
   * The declared point-in-time restore: PitrRestore on the local target, the target's Job on
   * kubernetes, its one-shot container on docker. The guards are reinstalled after it (its generation).
   */
  private declareRestore(
    name: string,
    args: TenantArgs,
    target: RestoreTarget,
    db: TenantDatabase,
    snapshots: Record<string, Snapshot>,
  ): {
    resource: pulumi.Resource;
    generation: pulumi.Output<string>;
    summary: pulumi.Output<RestoreSummary>;
  } {
    const site = args.site;
    if (site.kind !== "local") {
      const { job, summary } = site.restoreJob(db);
      return { resource: job, generation: job.urn, summary };
    }
    const cfg = args.config;
    const { database, roleName } = tenantNames(cfg.subdomain);
    const fromSnapshot = "snapshot" in target ? snapshots[target.snapshot] : undefined;
    const restore = new PitrRestore(
      `${name}-restore`,
      {
        adminDsn: args.adminDsn,
        stateDir: site.stateDir,
        stanza: site.stanza,
        subdomain: cfg.subdomain,
        database,
        roleName,
        tenantState: cfg.state,
        target: { ...target },
        snapshotLsn: fromSnapshot?.lsn,
        snapshotFilestore: fromSnapshot?.filestorePath,
        filestoreRoot: site.filestoreRoot,
      },
      {
        parent: this,
        dependsOn: fromSnapshot ? [db, fromSnapshot] : [db],
        customTimeouts: { create: "60m", update: "60m" },
      },
    );
    return { resource: restore, generation: restore.restoreId, summary: restoreSummary(restore) };
  }

  /** The declared snapshots (local target): a restore point and a hard-link copy of the filestore each. */
  private declareSnapshots(
    name: string,
    args: TenantArgs,
    site: LocalTenantSite,
    db: TenantDatabase,
  ): Record<string, Snapshot> {
    const cfg = args.config;
    const declared: Record<string, Snapshot> = {};
    for (const snapshotName of Object.keys(cfg.snapshots)) {
      const snapshot = new Snapshot(
        `${name}-snapshot-${snapshotName}`,
        {
          adminDsn: args.adminDsn,
          subdomain: cfg.subdomain,
          database: tenantNames(cfg.subdomain).database,
          name: snapshotName,
          filestoreRoot: site.filestoreRoot,
          snapshotRoot: site.snapshotRoot,
          pgbackrestConfig: site.pgbackrestConfig,
          pgbackrestStanza: site.stanza,
        },
        { parent: this, dependsOn: [db] },
      );
      declared[snapshotName] = snapshot;
      this.snapshots[snapshotName] = snapshot.summary();
    }
    return declared;
  }
}

/** A PitrRestore's entry of the `restores` stack output. */
function restoreSummary(restore: PitrRestore): pulumi.Output<RestoreSummary> {
  return pulumi
    .all([restore.restoreId, restore.target, restore.state, restore.preRestoreDatabase, restore.timings])
    .apply(([id, target, state, preRestoreDatabase, timings]): RestoreSummary => ({
      id,
      target: { ...target } as Record<string, string>,
      state,
      preRestoreDatabase,
      timings: timings as Record<string, number>,
    }));
}
