/**
 * The prod-like kubernetes stack (Pulumi.prod.yaml's shape: Gateway API routing, cert-manager TLS,
 * monitoring; smaller volumes) on the loomworks k8s test cluster, as the e2e test
 * (test/e2e/kubernetes-stack.test.ts) and the benchmark (bench/k8s-up.ts) drive it: a throw-away
 * Automation API stack whose PATH puts the real provider plugin of .tools/k8s-bin first, with tenants
 * provisioned through `kubernetes.postgres.adminEndpoint` on a local PostgreSQL whose role passwords
 * follow the stack's Secret (testkit/k8s-stack.ts plays the pod's role-sync loop).
 */
import * as path from "node:path";
import type { LocalClusterSpec } from "../lib/pg/cluster";
import { startRoleSync, syncRolesFromSecret } from "./k8s-stack";
import { K8S_TOOLS_BIN, type K8sTestCluster } from "./k8s-test-cluster";
import { LocalTestStack, fixtureDump, type TenantEntry } from "./local-stack";

/** The ERP's database role (the program's default `platform.odoo.dbUser`). */
export const PROD_LIKE_ERP_ROLE = "loomworks_erp";

/** Two tenants from the committed fixture template, of two tiers. */
export const PROD_LIKE_TENANTS: Record<string, TenantEntry> = {
  acme: { tier: "pro", adminEmail: "boss@acme.example" },
  globex: { tier: "basic", adminEmail: "it@globex.example" },
};

export class ProdLikeK8sStack {
  private constructor(
    readonly local: LocalTestStack,
    readonly cluster: K8sTestCluster,
    readonly namespace: string,
    /** The local PostgreSQL at the admin endpoint; absent: the stack declares no tenants' databases. */
    readonly postgres: LocalClusterSpec | undefined,
  ) {}

  /** A new stack named `name` in its own project directory; `postgres` omitted: no admin endpoint. */
  static async create(
    name: string,
    cluster: K8sTestCluster,
    opts: { namespace: string; postgres?: LocalClusterSpec },
  ): Promise<ProdLikeK8sStack> {
    const local = await LocalTestStack.create(name, {
      path: [K8S_TOOLS_BIN],
      env: { KUBECONFIG: cluster.kubeconfig },
    });
    return new ProdLikeK8sStack(local, cluster, opts.namespace, opts.postgres);
  }

  /** `loomworks:platform` of the stack, with `extra` keys on top. */
  platformConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      target: "kubernetes",
      domain: "loomworks.test",
      stateDir: path.join(path.dirname(this.local.dir), "state"),
      archiveTimeoutSeconds: 60,
      templates: { default: { fromDump: fixtureDump } },
      kubernetes: {
        namespace: this.namespace,
        image: "registry.invalid/loomworks/erp:18.0",
        routing: "gateway",
        gatewayClassName: "eg",
        proxy: { namespace: "envoy-gateway-system" },
        tls: {
          acmeEmail: "ops@loomworks.test",
          acmeServer: "staging",
          dns01: {
            provider: "cloudflare",
            apiTokenSecretRef: { name: "cloudflare-api-token", key: "api-token" },
          },
        },
        filestore: { storageClass: "standard", size: "1Gi" },
        postgres: {
          image: "registry.invalid/loomworks/postgres:15-pgbackrest",
          storageClass: "standard",
          dataSize: "1Gi",
          walArchiveSize: "1Gi",
          backupsSize: "1Gi",
          ...(this.postgres ? { adminEndpoint: `127.0.0.1:${this.postgres.port}` } : {}),
        },
        ops: { image: "registry.invalid/loomworks/ops:18.0" },
        monitoring: { namespace: "monitoring", labels: { release: "kube-prometheus-stack" } },
      },
      ...extra,
    };
  }

  /** Writes the stack's platform config (with `extra`) and its tenants. */
  async configure(
    extra: Record<string, unknown> = {},
    tenants: Record<string, unknown> = PROD_LIKE_TENANTS,
  ): Promise<void> {
    await this.local.stack.setAllConfig({
      "loomworks:platform": { value: JSON.stringify(this.platformConfig(extra)) },
      "loomworks:tenants": { value: JSON.stringify(tenants) },
    });
  }

  /**
   * `pulumi up` with the PostgreSQL pod's role-sync loop played alongside (when the stack has an admin
   * endpoint): the Secret the `up` writes reaches the local server as it would the in-cluster one.
   */
  async up(log = false): Promise<Awaited<ReturnType<LocalTestStack["up"]>>> {
    if (!this.postgres) return this.local.up(log);
    const sync = startRoleSync(this.cluster, this.namespace, this.postgres, PROD_LIKE_ERP_ROLE);
    try {
      return await this.local.up(log);
    } catch (err) {
      const failures = sync.errors.length > 0 ? `\nrole sync failures:\n${sync.errors.join("\n")}` : "";
      throw new Error(`${err instanceof Error ? err.message : String(err)}${failures}`);
    } finally {
      await sync.stop();
    }
  }

  /**
   * Applies the stack's current Secret to the local server once, as the role-sync loop would have
   * after the stack's last `up` (another stack on the same server may have changed the passwords since).
   */
  async syncRoles(): Promise<void> {
    if (this.postgres)
      await syncRolesFromSecret(this.cluster, this.namespace, this.postgres, PROD_LIKE_ERP_ROLE);
  }
}
