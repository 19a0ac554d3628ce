/**
 * Names, labels and ports shared by the Kubernetes components (OdooDeployment, KubernetesRouter):
 * one place, so that a Service, the routes that point at it and the NetworkPolicies that let the
 * proxies reach it can never disagree.
 */
import * as crypto from "node:crypto";
import type * as k8s from "@pulumi/kubernetes";
import { ODOO_GEVENT_PORT, ODOO_HTTP_PORT } from "../../lib/odoo/config";

export { ODOO_GEVENT_PORT, ODOO_HTTP_PORT };

export const PART_OF = "loomworks";
export const REDIS_PORT = 6379;
export const POSTGRES_PORT = 5432;

/** Ports of the error-pages nginx: 404 for unknown hosts, 503 for tenants not serving, a health port. */
export const NOT_FOUND_PORT = 8404;
export const UNAVAILABLE_PORT = 8503;
export const ERROR_PAGES_HEALTH_PORT = 8081;

/** Kubernetes object names (inside the platform's namespace; the ClusterIssuer is named from config). */
export const NAMES = {
  erp: "loomworks-erp",
  erpHttpService: "loomworks-erp-http",
  erpWebsocketService: "loomworks-erp-websocket",
  erpSecrets: "loomworks-erp-secrets",
  /** The tenant map and tenant credentials the loomworks_tenants addon reads (changes roll no pod). */
  erpTenants: "loomworks-erp-tenants",
  /** The AI providers' keys (platform.ai.keys), the ERP's environment through `envFrom`. */
  erpAiKeys: "loomworks-ai-keys",
  erpConfigPrefix: "loomworks-erp-config",
  erpUpdatePrefix: "loomworks-erp-update",
  filestore: "loomworks-filestore",
  redis: "loomworks-redis",
  errorPages: "loomworks-error-pages",
  errorPagesConfigPrefix: "loomworks-error-pages",
  gateway: "loomworks",
  ingress: "loomworks",
  certificate: "loomworks-wildcard",
  certificateSecret: "loomworks-wildcard-tls",
  defaultRoute: "default-not-found",
  httpsRedirectRoute: "http-to-https",
  /** PostgreSQL (issue 6): StatefulSet `postgres` with one pod `postgres-0`, headless Service `postgres`. */
  postgres: "postgres",
  postgresPod: "postgres-0",
  postgresContainer: "postgres",
  postgresExporterContainer: "postgres-exporter",
  postgresSecrets: "loomworks-postgres-secrets",
  postgresConfigPrefix: "loomworks-postgres-config",
  /** PersistentVolumeClaims of the one PostgreSQL pod (plain PVCs, so that a size change expands them in place). */
  postgresDataClaim: "postgres-data",
  postgresWalClaim: "postgres-wal-archive",
  postgresBackupsClaim: "postgres-backups",
  /** Scheduled jobs and restores (the ops image). */
  opsServiceAccount: "loomworks-ops",
  opsConfigPrefix: "loomworks-ops-config",
  /** The webhook of operator notifications (`platform.notify.webhookUrl`, key NOTIFY_SECRET_KEY). */
  opsNotify: "loomworks-ops-notify",
  restorePrefix: "loomworks-restore",
} as const;

/** The key of NAMES.opsNotify holding the webhook URL. */
export const NOTIFY_SECRET_KEY = "webhook-url";

/**
 * Keys of the PostgreSQL Secret (NAMES.postgresSecrets): the superuser's, the replication user's
 * and the monitoring user's passwords, and the backup repository's encryption passphrase.
 */
export const POSTGRES_SECRET_KEYS = {
  superuserPassword: "superuser-password",
  replicationPassword: "replication-password",
  monitorPassword: "monitor-password",
  backupCipherPass: "backup-cipher-pass",
  /** The ERP role's password (the same value as the ERP Secret's db-password). */
  erpPassword: "erp-password",
} as const;

/** Login roles the PostgreSQL component creates besides the superuser. */
export const POSTGRES_ROLES = { replication: "loomworks_replication", monitor: "loomworks_monitor" } as const;
export const POSTGRES_EXPORTER_PORT = 9187;

/** Label keys of this project (its own prefix: no domain is claimed). */
export const LABEL_TENANT = "loomworks/tenant";
export const LABEL_HOST_KIND = "loomworks/host-kind";

function appLabels(name: string, component: string): Record<string, string> {
  return { "app.kubernetes.io/name": name, "app.kubernetes.io/component": component };
}

/** Selector labels (immutable in a Deployment: never change them). */
export const ERP_LABELS = appLabels("loomworks-erp", "erp");
export const REDIS_LABELS = appLabels("loomworks-redis", "session-store");
export const ERROR_PAGES_LABELS = appLabels("loomworks-error-pages", "error-pages");
/** Pods of the module-update Job: the ERP image, but never selected by the ERP's Services. */
export const UPDATE_LABELS = appLabels("loomworks-erp", "module-update");
export const POSTGRES_LABELS = appLabels("postgres", "database");
/** Pods of the scheduled jobs and restores (ops image). */
export const OPS_LABELS = appLabels("loomworks-ops", "ops");

/** Labels every object of the platform carries besides its selector labels. */
export function objectLabels(selector: Record<string, string> = {}): Record<string, string> {
  return { ...selector, "app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi" };
}

/** First 10 hex digits of the sha256 of `text`: a name suffix that changes with the content. */
export function contentHash(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex").slice(0, 10);
}

/** Pod and container security settings for the restricted Pod Security Standard. */
export function restrictedContainerSecurity(readOnlyRootFilesystem = true) {
  return {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** Where the Gateway's or ingress controller's proxy pods run (`kubernetes.proxy`). */
export interface ProxyPods {
  namespace: string;
  /** Default: every pod of the namespace. */
  podLabels?: Record<string, string>;
}

/** The NetworkPolicy peer of the Gateway's or ingress controller's proxy pods. */
export function proxyPeer(proxy: ProxyPods): k8s.types.input.networking.v1.NetworkPolicyPeer {
  return {
    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": proxy.namespace } },
    ...(proxy.podLabels ? { podSelector: { matchLabels: proxy.podLabels } } : {}),
  };
}

/** Label of the scheduled jobs' and restores' pods: which job (`backup-full`, `restore`, ...). */
export const LABEL_OPS_JOB = "loomworks/ops-job";
