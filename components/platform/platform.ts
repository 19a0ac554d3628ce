import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../../infra/config/schema";
import type { NotifySettings } from "../../lib/notify/settings";
import type { RestoreSummary, SnapshotSummary, TenantSummary } from "../Tenant";

/**
 * The type token every target's platform component registers under. One token for all three, and
 * the same the single platform component had before the targets were split: the URNs of existing
 * stacks (the platform's and, through it, every resource's below) stay as they were.
 */
export const PLATFORM_TYPE = "loomworks:platform:LoomworksPlatform";

/** `platform.ai.keys` (plain text once loaded) as secrets, each name to its value. */
export function secretValues(plain: Readonly<Record<string, string>>): Record<string, pulumi.Output<string>> {
  return Object.fromEntries(Object.entries(plain).map(([name, value]) => [name, pulumi.secret(value)]));
}

export interface PlatformArgs {
  config: StackConfig;
  /** Directory relative paths in the stack config (stateDir, template dumps) are resolved against. */
  projectDir: string;
}

/**
 * What a platform gives the stack outputs (docs/configuration.md#stack-outputs). Plain objects of
 * outputs, so that only the secret fields (adminDsn, dsn, the admin passwords) are secret there.
 */
export interface PlatformOutputs {
  readonly postgres: {
    host: pulumi.Output<string>;
    port: pulumi.Output<number>;
    /** The superuser's connection (secret); absent where this `pulumi up` cannot reach the server. */
    adminDsn?: pulumi.Output<string>;
  };
  readonly tenants: Record<string, TenantSummary>;
  readonly adminPasswords: Record<string, pulumi.Output<string>>;
  /** `"<subdomain>/<name>"` → the declared snapshot. */
  readonly snapshots: Record<string, pulumi.Output<SnapshotSummary>>;
  /** subdomain → the tenant's declared point-in-time restore. */
  readonly restores: Record<string, pulumi.Output<RestoreSummary>>;
  readonly router: {
    url: pulumi.Output<string>;
    /** The rendered nginx configuration; absent where no nginx of the platform routes (kubernetes). */
    nginxConfig?: pulumi.Output<string>;
    odooConfig: pulumi.Output<string>;
  };
}

/** The tenants' part of the outputs (declareTenants). */
export type TenantOutputs = Pick<PlatformOutputs, "tenants" | "adminPasswords" | "snapshots" | "restores">;

/** What the three targets' platform components share: the type token and the tenants' outputs. */
export abstract class PlatformComponent extends pulumi.ComponentResource implements PlatformOutputs {
  // Set by each target's constructor, after its resources.
  postgres!: PlatformOutputs["postgres"];
  router!: PlatformOutputs["router"];
  readonly tenants: TenantOutputs["tenants"] = {};
  readonly adminPasswords: TenantOutputs["adminPasswords"] = {};
  readonly snapshots: TenantOutputs["snapshots"] = {};
  readonly restores: TenantOutputs["restores"] = {};

  protected constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
    super(PLATFORM_TYPE, name, {}, opts);
  }

  /** Exports the declared tenants' entries. */
  protected exportTenants(outputs: TenantOutputs): void {
    Object.assign(this.tenants, outputs.tenants);
    Object.assign(this.adminPasswords, outputs.adminPasswords);
    Object.assign(this.snapshots, outputs.snapshots);
    Object.assign(this.restores, outputs.restores);
  }
}

/**
 * `platform.notify` as the jobs read it (lib/notify/settings.ts), secret (the URL may carry a
 * token); undefined without a webhook.
 */
export function notifySettings(platform: StackConfig["platform"]): pulumi.Output<NotifySettings> | undefined {
  const { webhookUrl, timeoutSeconds, attempts } = platform.notify;
  if (!webhookUrl) return undefined;
  return pulumi.secret({ webhookUrl, stack: pulumi.getStack(), timeoutSeconds, attempts });
}
