/**
 * `loomworks:platform.kubernetes`: settings of the Kubernetes target
 * (docs/architecture.md#kubernetes-and-docker) — where
 * the ERP runs (namespace, image, replicas, resources, filestore), how tenants are routed
 * (Gateway API or Ingress) and how the wildcard certificate is issued (cert-manager, ACME DNS-01).
 * Follows the conventions of schema.ts: every message states the rule, unknown keys are errors
 * with a "did you mean" hint, nulls count as absent, numbers and booleans may be strings.
 *
 * ```yaml
 * kubernetes:
 *   namespace: loomworks
 *   image: registry.example.com/loomworks/erp:18.0-20260301
 *   routing: gateway                 # gateway | ingress
 *   gatewayClassName: eg             # routing: gateway
 *   proxy: { namespace: envoy-gateway-system }
 *   tls:
 *     acmeEmail: ops@example.com
 *     acmeServer: production         # production | staging | https://... (another ACME directory)
 *     dns01: { provider: cloudflare, apiTokenSecretRef: { name: cloudflare-api-token, key: api-token } }
 *   filestore: { storageClass: efs-sc, size: 100Gi }
 * ```
 */
import { z } from "zod";
import { ERP_IMAGE, imageAddonsPath } from "../../lib/odoo/image";
import {
  booleanSchema,
  dropNullValues,
  integer,
  isPlainObject,
  peek,
  rule,
  strictMap,
  text,
  type IssueParams,
} from "./helpers";

export const ROUTING_MODES = ["gateway", "ingress"] as const;
export const ACME_SERVERS = {
  production: "https://acme-v02.api.letsencrypt.org/directory",
  staging: "https://acme-staging-v02.api.letsencrypt.org/directory",
} as const;
export const DNS01_PROVIDERS = [
  "cloudflare",
  "route53",
  "clouddns",
  "azuredns",
  "digitalocean",
  "rfc2136",
] as const;
export const POD_SECURITY_LEVELS = ["restricted", "baseline", "privileged"] as const;
export const IMAGE_PULL_POLICIES = ["Always", "IfNotPresent", "Never"] as const;
export const AZURE_ENVIRONMENTS = [
  "AzurePublicCloud",
  "AzureChinaCloud",
  "AzureGermanCloud",
  "AzureUSGovernmentCloud",
] as const;

export type RoutingMode = (typeof ROUTING_MODES)[number];
export type Dns01Provider = (typeof DNS01_PROVIDERS)[number];

export const KUBERNETES_RULES = {
  name: "must be a Kubernetes name: lowercase a-z, 0-9 and inner hyphens, at most 63 characters",
  subdomainName:
    "must be a Kubernetes object name: lowercase a-z, 0-9, inner hyphens and dots, at most 253 characters",
  image: "must be a container image reference without whitespace (registry/repository:tag or @sha256:...)",
  routing: `must be one of ${ROUTING_MODES.join(", ")}`,
  acmeServer: `must be ${Object.keys(ACME_SERVERS).join(" or ")}, or the https:// URL of an ACME directory`,
  email: "must be an email address (Let's Encrypt sends expiry notices there)",
  provider: `must be one of ${DNS01_PROVIDERS.join(", ")}`,
  cpu: 'must be a CPU quantity greater than 0, e.g. "500m", "2" or "1.5"',
  memory: 'must be a memory quantity greater than 0, e.g. "512Mi", "4Gi" or "1G"',
  percent: "must be an integer from 1 to 100 (percent of the request)",
  replicas: "must be an integer from 1 to 1000",
  seconds: "must be an integer from 0 to 3600 (seconds)",
  id: "must be an integer from 1 to 2147483647 (a non-root user or group id)",
  port: "must be an integer from 1 to 65535",
  labels: "must be a map of Kubernetes label names to values",
  annotations: "must be a map of annotation names to string values",
  podSecurity: `must be one of ${POD_SECURITY_LEVELS.join(", ")}`,
  pullPolicy: `must be one of ${IMAGE_PULL_POLICIES.join(", ")}`,
  azureEnvironment: `must be one of ${AZURE_ENVIRONMENTS.join(", ")}`,
} as const;

// ---------------------------------------------------------------------------------------------
// Quantities

const CPU_QUANTITY = /^(?:[0-9]{1,6}(?:\.[0-9]{1,3})?|[0-9]{1,9}m)$/;
const MEMORY_QUANTITY = /^([0-9]{1,12}(?:\.[0-9]{1,6})?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/;
const MEMORY_FACTORS: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** CPU cores of a Kubernetes CPU quantity ("500m" → 0.5, "2" → 2); NaN when it is not one. */
export function cpuCores(quantity: string): number {
  if (!CPU_QUANTITY.test(quantity)) return NaN;
  return quantity.endsWith("m") ? Number(quantity.slice(0, -1)) / 1000 : Number(quantity);
}

/** Bytes of a Kubernetes memory quantity ("1Gi" → 1073741824); NaN when it is not one. */
export function memoryBytes(quantity: string): number {
  const m = MEMORY_QUANTITY.exec(quantity);
  if (!m) return NaN;
  return Number(m[1]) * MEMORY_FACTORS[m[2] ?? ""];
}

/** Whole MiB of a memory quantity, rounded down. */
export function memoryMiB(quantity: string): number {
  return Math.floor(memoryBytes(quantity) / 2 ** 20);
}

const cpuSchema = z
  .preprocess((v) => (typeof v === "number" ? String(v) : v), z.string(rule(KUBERNETES_RULES.cpu)))
  .refine((s) => cpuCores(s) > 0, KUBERNETES_RULES.cpu);
const memorySchema = z
  .string(rule(KUBERNETES_RULES.memory))
  .refine((s) => memoryBytes(s) > 0, KUBERNETES_RULES.memory);

// ---------------------------------------------------------------------------------------------
// Leaf schemas

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
const LABEL_KEY =
  /^(?:(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\/)?[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;
const IMAGE = /^[a-z0-9][A-Za-z0-9._\-/:@]{0,254}$/;

export const k8sNameSchema = z.string(rule(KUBERNETES_RULES.name)).regex(DNS_LABEL);
export const k8sObjectNameSchema = z.string(rule(KUBERNETES_RULES.subdomainName)).regex(DNS_SUBDOMAIN);
export const imageSchema = z.string(rule(KUBERNETES_RULES.image)).regex(IMAGE);
const acmeEmailSchema = z.string(rule(KUBERNETES_RULES.email)).max(254).email();
const percentSchema = integer(1, 100, KUBERNETES_RULES.percent);
const replicasSchema = integer(1, 1000, KUBERNETES_RULES.replicas);
const idSchema = integer(1, 2_147_483_647, KUBERNETES_RULES.id);
const portSchema = integer(1, 65535, KUBERNETES_RULES.port);

export const labelsSchema = z
  .record(z.string(), z.string(), rule(KUBERNETES_RULES.labels))
  .refine(
    (m) => Object.entries(m).every(([k, v]) => LABEL_KEY.test(k) && k.length <= 317 && LABEL_VALUE.test(v)),
    KUBERNETES_RULES.labels,
  );
const annotationsSchema = z
  .record(z.string(), z.string(), rule(KUBERNETES_RULES.annotations))
  .refine((m) => Object.keys(m).every((k) => LABEL_KEY.test(k)), KUBERNETES_RULES.annotations);

/** A key of a Secret in cert-manager's cluster resource namespace (`cert-manager` by default). */
export const secretKeyRefSchema = strictMap(
  { name: k8sObjectNameSchema, key: z.string(rule("must be a Secret key")).regex(/^[-._a-zA-Z0-9]{1,253}$/) },
  "must be a map { name, key } naming a Secret and its key",
);
export interface SecretKeyRef {
  name: string;
  key: string;
}

// ---------------------------------------------------------------------------------------------
// DNS-01 providers (cert-manager's ACME solver types)

export interface CloudflareDns01 {
  provider: "cloudflare";
  /** A Cloudflare API token with Zone:Read and DNS:Edit on the domain's zone. */
  apiTokenSecretRef: SecretKeyRef;
}
export interface Route53Dns01 {
  provider: "route53";
  region?: string;
  hostedZoneID?: string;
  /** An IAM role to assume; without credentials below cert-manager uses its ambient ones (IRSA, Pod Identity). */
  role?: string;
  accessKeyID?: string;
  secretAccessKeySecretRef?: SecretKeyRef;
}
export interface CloudDnsDns01 {
  provider: "clouddns";
  project: string;
  hostedZoneName?: string;
  /** A service-account key; without it cert-manager uses Workload Identity. */
  serviceAccountSecretRef?: SecretKeyRef;
}
export interface AzureDnsDns01 {
  provider: "azuredns";
  subscriptionID: string;
  resourceGroupName: string;
  hostedZoneName?: string;
  environment?: (typeof AZURE_ENVIRONMENTS)[number];
  /** Client id of the managed identity (workload identity) cert-manager uses. */
  managedIdentityClientID?: string;
}
export interface DigitalOceanDns01 {
  provider: "digitalocean";
  tokenSecretRef: SecretKeyRef;
}
export interface Rfc2136Dns01 {
  provider: "rfc2136";
  /** `host:port` or `[ipv6]:port` of the authoritative server accepting dynamic updates. */
  nameserver: string;
  tsigKeyName?: string;
  tsigAlgorithm?: "HMACMD5" | "HMACSHA1" | "HMACSHA256" | "HMACSHA512";
  tsigSecretSecretRef?: SecretKeyRef;
}
export type Dns01Config =
  CloudflareDns01 | Route53Dns01 | CloudDnsDns01 | AzureDnsDns01 | DigitalOceanDns01 | Rfc2136Dns01;

function providerMap<S extends z.ZodRawShape>(
  provider: Dns01Provider,
  shape: S,
  check?: (v: Record<string, unknown>, ctx: z.RefinementCtx) => void,
) {
  return strictMap(
    { provider: z.literal(provider), ...shape },
    `must be a map of ${provider} DNS-01 settings (${["provider", ...Object.keys(shape)].join(", ")})`,
    check,
  );
}

function requireTogether(v: Record<string, unknown>, keys: readonly string[], ctx: z.RefinementCtx): void {
  const given = keys.filter((k) => v[k] !== undefined);
  if (given.length > 0 && given.length < keys.length) {
    for (const missing of keys.filter((k) => v[k] === undefined)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: [missing],
        message: `is required with ${given.join(" and ")}`,
        params: { noGot: true } satisfies IssueParams,
      });
    }
  }
}

export const DNS01_SCHEMAS: Record<Dns01Provider, z.ZodTypeAny> = {
  cloudflare: providerMap("cloudflare", { apiTokenSecretRef: secretKeyRefSchema }),
  route53: providerMap(
    "route53",
    {
      region: text().optional(),
      hostedZoneID: text().optional(),
      role: text().optional(),
      accessKeyID: text().optional(),
      secretAccessKeySecretRef: secretKeyRefSchema.optional(),
    },
    (v, ctx) => requireTogether(v, ["accessKeyID", "secretAccessKeySecretRef"], ctx),
  ),
  clouddns: providerMap("clouddns", {
    project: text(),
    hostedZoneName: text().optional(),
    serviceAccountSecretRef: secretKeyRefSchema.optional(),
  }),
  azuredns: providerMap("azuredns", {
    subscriptionID: text(),
    resourceGroupName: text(),
    hostedZoneName: text().optional(),
    environment: z.enum(AZURE_ENVIRONMENTS, rule(KUBERNETES_RULES.azureEnvironment)).optional(),
    managedIdentityClientID: text().optional(),
  }),
  digitalocean: providerMap("digitalocean", { tokenSecretRef: secretKeyRefSchema }),
  rfc2136: providerMap(
    "rfc2136",
    {
      nameserver: z
        .string(rule('must be "host:port" of the DNS server'))
        .regex(/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$/),
      tsigKeyName: text().optional(),
      tsigAlgorithm: z
        .enum(
          ["HMACMD5", "HMACSHA1", "HMACSHA256", "HMACSHA512"],
          rule("must be one of HMACMD5, HMACSHA1, HMACSHA256, HMACSHA512"),
        )
        .optional(),
      tsigSecretSecretRef: secretKeyRefSchema.optional(),
    },
    (v, ctx) => requireTogether(v, ["tsigKeyName", "tsigSecretSecretRef"], ctx),
  ),
};

/** `tls.dns01`: the provider's schema, chosen by its `provider` key (issues keep their paths). */
export const dns01Schema = z.unknown().transform((raw, ctx): Dns01Config => {
  const v = dropNullValues(raw);
  if (!isPlainObject(v)) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `must be a map with provider (${DNS01_PROVIDERS.join(", ")}) and its settings`,
    });
    return z.NEVER;
  }
  const provider = v.provider;
  const schema = typeof provider === "string" ? DNS01_SCHEMAS[provider as Dns01Provider] : undefined;
  if (!schema) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ["provider"],
      message:
        provider === undefined ? `is required; ${KUBERNETES_RULES.provider}` : KUBERNETES_RULES.provider,
      params: provider === undefined ? ({ noGot: true } satisfies IssueParams) : undefined,
    });
    return z.NEVER;
  }
  const parsed = schema.safeParse(v);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: issue.path,
        message: issue.message,
        ...(issue.code === z.ZodIssueCode.custom && issue.params ? { params: issue.params } : {}),
      });
    }
    return z.NEVER;
  }
  return parsed.data as Dns01Config;
});

// ---------------------------------------------------------------------------------------------
// The section

export const KUBERNETES_KEYS = [
  "namespace",
  "createNamespace",
  "podSecurity",
  "image",
  "imagePullPolicy",
  "imagePullSecrets",
  "addonsPath",
  "erpUser",
  "routing",
  "gatewayClassName",
  "ingressClassName",
  "ingressAnnotations",
  "proxy",
  "tls",
  "replicas",
  "resources",
  "autoscaling",
  "internetEgressPorts",
  "filestore",
  "redis",
  "errorPagesImage",
  "postgres",
  "ops",
  "monitoring",
] as const;

export interface ResourceQuantities {
  cpu: string;
  memory: string;
}

export interface KubernetesConfig {
  /** Namespace of the ERP, Redis, the error pages, the Gateway or Ingress and the certificate. */
  namespace: string;
  /** Create the namespace (labelled for Pod Security); false: it exists already. */
  createNamespace: boolean;
  /** Pod Security Standard enforced on a created namespace. */
  podSecurity: (typeof POD_SECURITY_LEVELS)[number];
  /** The Loomworks ERP image (Odoo 18 + Loomworks addons). */
  image: string;
  imagePullPolicy?: (typeof IMAGE_PULL_POLICIES)[number];
  imagePullSecrets: string[];
  /** `addons_path` inside the image. */
  addonsPath: string;
  /** Numeric user and group the ERP runs as (the image's non-root user); also the filestore's fsGroup. */
  erpUser: { uid: number; gid: number };
  routing: RoutingMode;
  /** routing: gateway — the GatewayClass of the installed Gateway API implementation. */
  gatewayClassName?: string;
  /** routing: ingress — the IngressClass of the installed ingress controller. */
  ingressClassName?: string;
  /** routing: ingress — controller-specific annotations (HTTPS redirect, timeouts, header handling). */
  ingressAnnotations: Record<string, string>;
  /** Where the Gateway's or ingress controller's proxy pods run: the only source allowed to reach the ERP. */
  proxy: { namespace: string; podLabels?: Record<string, string> };
  tls: {
    acmeEmail: string;
    /** The ACME directory URL (Let's Encrypt production or staging, or another). */
    acmeServer: string;
    /** Name of the cert-manager ClusterIssuer (cluster-wide: unique per stack). */
    issuerName: string;
    /** false: use an existing ClusterIssuer named issuerName. */
    createIssuer: boolean;
    dns01?: Dns01Config;
  };
  replicas: { min: number; max: number };
  resources: { requests: ResourceQuantities; limits: ResourceQuantities };
  autoscaling: { cpuPercent: number; memoryPercent: number; scaleDownStabilizationSeconds: number };
  /** TCP ports the ERP may reach on the internet (AI APIs: 443; add 587 for SMTP submission). */
  internetEgressPorts: number[];
  filestore: { storageClass: string; size: string };
  redis: { image: string; maxMemory: string };
  /** nginx (unprivileged, listening on 8080+) serving the 404 and 503 pages. */
  errorPagesImage: string;
  postgres: KubernetesPostgresConfig;
  ops: KubernetesOpsConfig;
  monitoring: KubernetesMonitoringConfig;
}

export const POSTGRES_SSL_MODES = ["disable", "prefer", "require", "verify-full"] as const;

/** The PostgreSQL StatefulSet (components/kubernetes/PostgresServer.ts). */
export interface KubernetesPostgresConfig {
  /** PostgreSQL 15 + pgBackRest, built from docker/postgres of this repository. */
  image: string;
  /** StorageClass of the three volumes (default: the cluster's default class); must allow expansion to grow them. */
  storageClass?: string;
  /** Volume sizes; raising one expands the PersistentVolumeClaim in place. */
  dataSize: string;
  walArchiveSize: string;
  backupsSize: string;
  resources: { requests: ResourceQuantities; limits: ResourceQuantities };
  exporterImage?: string;
  /**
   * `host:port` where the machine running `pulumi up` reaches this PostgreSQL to provision tenant
   * databases (e.g. `127.0.0.1:15432` with `kubectl port-forward svc/postgres 15432:5432`). Required
   * as soon as tenants are declared (docs/operations/kubernetes.md).
   */
  adminEndpoint?: { host: string; port: number };
  /** Default disable: a `kubectl port-forward` tunnels through the API server's TLS connection. */
  adminSslMode: (typeof POSTGRES_SSL_MODES)[number];
}

/** The scheduled jobs and restore Jobs (components/kubernetes/OpsJobs.ts, RestoreJob.ts). */
export interface KubernetesOpsConfig {
  /** The ops image built from docker/ops of this repository (the project's own code, pgBackRest, kubectl). */
  image: string;
  /** Size limit of a restore Job's scratch volume (the restored cluster copy). */
  restoreScratchSize: string;
}

/** Prometheus operator objects (components/kubernetes/Monitoring.ts). */
export interface KubernetesMonitoringConfig {
  enabled: boolean;
  /** Namespace of Prometheus (allowed to scrape the exporter through the NetworkPolicy). */
  namespace: string;
  /** Labels the Prometheus operator selects ServiceMonitors, PodMonitors and PrometheusRules by. */
  labels: Record<string, string>;
  /**
   * The Pushgateway the ops jobs push their outcomes to (lib/notify/job-metrics.ts); absent: the
   * job alerts (LoomworksBackupFailed, ...) never fire. A plain value in the pods' env: no user info.
   */
  pushgatewayUrl?: string;
}

export const DEFAULT_KUBERNETES = {
  namespace: "loomworks",
  /** The ERP image's own layout (docker/Dockerfile): its addons, the platform's server-wide addons, Odoo's. */
  addonsPath: imageAddonsPath(),
  /** The image's `odoo` user (docker/Dockerfile's useradd), which owns its /var/lib/odoo. */
  erpUser: { uid: ERP_IMAGE.uid, gid: ERP_IMAGE.gid },
  replicas: { min: 2, max: 10 },
  resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "2", memory: "4Gi" } },
  autoscaling: { cpuPercent: 70, memoryPercent: 80, scaleDownStabilizationSeconds: 300 },
  internetEgressPorts: [443],
  filestoreSize: "100Gi",
  redisImage: "redis:7.2-alpine",
  redisMaxMemory: "256mb",
  errorPagesImage: "nginxinc/nginx-unprivileged:1.27-alpine",
  postgres: {
    dataSize: "100Gi",
    walArchiveSize: "50Gi",
    backupsSize: "200Gi",
    resources: { requests: { cpu: "1", memory: "2Gi" }, limits: { cpu: "2", memory: "4Gi" } },
  },
  restoreScratchSize: "50Gi",
  monitoring: { namespace: "monitoring", labels: { release: "kube-prometheus-stack" } },
} as const;

const PUSHGATEWAY_RULE =
  "must be an http:// or https:// URL without user info or query, e.g. http://pushgateway.monitoring.svc:9091";
function isPushgatewayUrl(s: string): boolean {
  try {
    const url = new URL(s);
    return (
      (url.protocol === "http:" || url.protocol === "https:") &&
      url.host !== "" &&
      url.username === "" &&
      url.password === "" &&
      url.search === "" &&
      url.hash === ""
    );
  } catch {
    return false;
  }
}
const pushgatewayUrlSchema = z.string(rule(PUSHGATEWAY_RULE)).refine(isPushgatewayUrl, PUSHGATEWAY_RULE);

const ENDPOINT = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$/;
const endpointRule =
  'must be "host:port" where `pulumi up` reaches PostgreSQL, e.g. "127.0.0.1:15432" through kubectl port-forward';
const endpointSchema = z
  .string(rule(endpointRule))
  .regex(ENDPOINT, endpointRule)
  .refine((s) => {
    const port = Number(s.slice(s.lastIndexOf(":") + 1));
    return port >= 1 && port <= 65535;
  }, endpointRule)
  .transform((s) => {
    const at = s.lastIndexOf(":");
    return { host: s.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(s.slice(at + 1)) };
  });

function quantities(what: string, defaults: ResourceQuantities) {
  return strictMap(
    { cpu: cpuSchema.default(defaults.cpu), memory: memorySchema.default(defaults.memory) },
    `must be a map of ${what} (cpu, memory)`,
  ).default({});
}

function issue(ctx: z.RefinementCtx, path: (string | number)[], message: string, got?: unknown): void {
  ctx.addIssue({
    code: z.ZodIssueCode.custom,
    path,
    message,
    params: (got === undefined ? { noGot: true } : { got }) satisfies IssueParams,
  });
}

const tlsSchema = strictMap(
  {
    acmeEmail: acmeEmailSchema,
    acmeServer: z
      .string(rule(KUBERNETES_RULES.acmeServer))
      .refine((s) => s in ACME_SERVERS || /^https:\/\/\S+$/.test(s), KUBERNETES_RULES.acmeServer)
      .default("production")
      .transform((s) => ACME_SERVERS[s as keyof typeof ACME_SERVERS] ?? s),
    issuerName: k8sObjectNameSchema.optional(),
    createIssuer: booleanSchema.default(true),
    dns01: dns01Schema.optional(),
  },
  "must be a map of TLS settings (acmeEmail, acmeServer, issuerName, createIssuer, dns01)",
  (v, ctx) => {
    const create = peek(booleanSchema.default(true), v.createIssuer);
    if (create !== false && v.dns01 === undefined) {
      issue(
        ctx,
        ["dns01"],
        "is required to create the ClusterIssuer (Let's Encrypt issues wildcards only through DNS-01)",
      );
    }
    if (create === false && v.issuerName === undefined) {
      issue(ctx, ["issuerName"], "is required with createIssuer: false (the existing ClusterIssuer to use)");
    }
  },
);

/** `loomworks:platform.kubernetes`. */
export const kubernetesConfigSchema = strictMap(
  {
    namespace: k8sNameSchema.default(DEFAULT_KUBERNETES.namespace),
    createNamespace: booleanSchema.default(true),
    podSecurity: z.enum(POD_SECURITY_LEVELS, rule(KUBERNETES_RULES.podSecurity)).default("restricted"),
    image: imageSchema,
    imagePullPolicy: z.enum(IMAGE_PULL_POLICIES, rule(KUBERNETES_RULES.pullPolicy)).optional(),
    imagePullSecrets: z.array(k8sObjectNameSchema, rule("must be a list of Secret names")).default([]),
    addonsPath: text().default(DEFAULT_KUBERNETES.addonsPath),
    erpUser: strictMap(
      {
        uid: idSchema.default(DEFAULT_KUBERNETES.erpUser.uid),
        gid: idSchema.default(DEFAULT_KUBERNETES.erpUser.gid),
      },
      "must be a map { uid, gid } of the image's non-root user",
    ).default({}),
    routing: z.enum(ROUTING_MODES, rule(KUBERNETES_RULES.routing)).default("gateway"),
    gatewayClassName: k8sObjectNameSchema.optional(),
    ingressClassName: k8sObjectNameSchema.optional(),
    ingressAnnotations: annotationsSchema.default({}),
    proxy: strictMap(
      { namespace: k8sNameSchema, podLabels: labelsSchema.optional() },
      "must be a map { namespace, podLabels } of where the Gateway or ingress controller's proxies run",
    ),
    tls: tlsSchema,
    replicas: strictMap(
      {
        min: replicasSchema.default(DEFAULT_KUBERNETES.replicas.min),
        max: replicasSchema.default(DEFAULT_KUBERNETES.replicas.max),
      },
      "must be a map { min, max } of ERP replicas",
    ).default({}),
    resources: strictMap(
      {
        requests: quantities("requests", DEFAULT_KUBERNETES.resources.requests),
        limits: quantities("limits", DEFAULT_KUBERNETES.resources.limits),
      },
      "must be a map { requests, limits } of the ERP container's resources",
    ).default({}),
    autoscaling: strictMap(
      {
        cpuPercent: percentSchema.default(DEFAULT_KUBERNETES.autoscaling.cpuPercent),
        memoryPercent: percentSchema.default(DEFAULT_KUBERNETES.autoscaling.memoryPercent),
        scaleDownStabilizationSeconds: integer(0, 3600, KUBERNETES_RULES.seconds).default(
          DEFAULT_KUBERNETES.autoscaling.scaleDownStabilizationSeconds,
        ),
      },
      "must be a map of autoscaling targets (cpuPercent, memoryPercent, scaleDownStabilizationSeconds)",
    ).default({}),
    internetEgressPorts: z
      .array(portSchema, rule("must be a list of TCP ports"))
      .default([...DEFAULT_KUBERNETES.internetEgressPorts]),
    filestore: strictMap(
      {
        storageClass: k8sObjectNameSchema,
        size: memorySchema.default(DEFAULT_KUBERNETES.filestoreSize),
      },
      "must be a map { storageClass, size } of the ReadWriteMany filestore volume",
    ),
    redis: strictMap(
      {
        image: imageSchema.default(DEFAULT_KUBERNETES.redisImage),
        maxMemory: z
          .string(rule('must be a Redis memory size, e.g. "256mb" or "1gb"'))
          .regex(/^[1-9][0-9]{0,6}(?:kb|mb|gb)$/)
          .default(DEFAULT_KUBERNETES.redisMaxMemory),
      },
      "must be a map { image, maxMemory } of the session store",
    ).default({}),
    errorPagesImage: imageSchema.default(DEFAULT_KUBERNETES.errorPagesImage),
    postgres: strictMap(
      {
        image: imageSchema.optional(),
        storageClass: k8sObjectNameSchema.optional(),
        dataSize: memorySchema.default(DEFAULT_KUBERNETES.postgres.dataSize),
        walArchiveSize: memorySchema.default(DEFAULT_KUBERNETES.postgres.walArchiveSize),
        backupsSize: memorySchema.default(DEFAULT_KUBERNETES.postgres.backupsSize),
        resources: strictMap(
          {
            requests: quantities("requests", DEFAULT_KUBERNETES.postgres.resources.requests),
            limits: quantities("limits", DEFAULT_KUBERNETES.postgres.resources.limits),
          },
          "must be a map { requests, limits } of the PostgreSQL container's resources",
        ).default({}),
        exporterImage: imageSchema.optional(),
        adminEndpoint: endpointSchema.optional(),
        adminSslMode: z
          .enum(POSTGRES_SSL_MODES, rule(`must be one of ${POSTGRES_SSL_MODES.join(", ")}`))
          .default("disable"),
      },
      "must be a map of PostgreSQL settings (image, storageClass, dataSize, walArchiveSize, backupsSize, resources, exporterImage, adminEndpoint, adminSslMode)",
    ).default({}),
    ops: strictMap(
      {
        image: imageSchema.optional(),
        restoreScratchSize: memorySchema.default(DEFAULT_KUBERNETES.restoreScratchSize),
      },
      "must be a map { image, restoreScratchSize } of the scheduled jobs' and restores' ops image",
    ).default({}),
    monitoring: strictMap(
      {
        enabled: booleanSchema.default(true),
        namespace: k8sNameSchema.default(DEFAULT_KUBERNETES.monitoring.namespace),
        labels: labelsSchema.default({ ...DEFAULT_KUBERNETES.monitoring.labels }),
        pushgatewayUrl: pushgatewayUrlSchema.optional(),
      },
      "must be a map { enabled, namespace, labels, pushgatewayUrl } of the Prometheus operator settings",
    ).default({}),
  } satisfies Record<(typeof KUBERNETES_KEYS)[number], z.ZodTypeAny>,
  "must be a map of Kubernetes settings",
  (v, ctx) => {
    const routing = peek(z.enum(ROUTING_MODES).default("gateway"), v.routing);
    if (routing === "gateway" && v.gatewayClassName === undefined) {
      issue(
        ctx,
        ["gatewayClassName"],
        "is required with routing: gateway (the GatewayClass of the installed implementation)",
      );
    }
    if (routing === "ingress" && v.ingressClassName === undefined) {
      issue(
        ctx,
        ["ingressClassName"],
        "is required with routing: ingress (the IngressClass of the installed controller)",
      );
    }
    const replicas = isPlainObject(v.replicas) ? dropNullValues(v.replicas) : {};
    if (isPlainObject(replicas)) {
      const min = peek(replicasSchema.default(DEFAULT_KUBERNETES.replicas.min), replicas.min);
      const max = peek(replicasSchema.default(DEFAULT_KUBERNETES.replicas.max), replicas.max);
      if (min !== undefined && max !== undefined && min > max) {
        issue(ctx, ["replicas", "max"], `must be at least replicas.min (${min})`, max);
      }
    }
    const resources = isPlainObject(v.resources) ? dropNullValues(v.resources) : {};
    if (isPlainObject(resources)) {
      const requests = peek(
        quantities("requests", DEFAULT_KUBERNETES.resources.requests),
        resources.requests,
      );
      const limits = peek(quantities("limits", DEFAULT_KUBERNETES.resources.limits), resources.limits);
      if (requests && limits) {
        if (cpuCores(requests.cpu) > cpuCores(limits.cpu)) {
          issue(
            ctx,
            ["resources", "requests", "cpu"],
            `must not exceed limits.cpu (${limits.cpu})`,
            requests.cpu,
          );
        }
        if (memoryBytes(requests.memory) > memoryBytes(limits.memory)) {
          issue(
            ctx,
            ["resources", "requests", "memory"],
            `must not exceed limits.memory (${limits.memory})`,
            requests.memory,
          );
        }
      }
    }
  },
).transform((k): KubernetesConfig => ({
  namespace: k.namespace,
  createNamespace: k.createNamespace,
  podSecurity: k.podSecurity,
  image: k.image,
  ...(k.imagePullPolicy !== undefined ? { imagePullPolicy: k.imagePullPolicy } : {}),
  imagePullSecrets: k.imagePullSecrets,
  addonsPath: k.addonsPath,
  erpUser: k.erpUser,
  routing: k.routing,
  ...(k.gatewayClassName !== undefined ? { gatewayClassName: k.gatewayClassName } : {}),
  ...(k.ingressClassName !== undefined ? { ingressClassName: k.ingressClassName } : {}),
  ingressAnnotations: k.ingressAnnotations,
  proxy: { namespace: k.proxy.namespace, ...(k.proxy.podLabels ? { podLabels: k.proxy.podLabels } : {}) },
  tls: {
    acmeEmail: k.tls.acmeEmail,
    acmeServer: k.tls.acmeServer,
    issuerName: k.tls.issuerName ?? defaultIssuerName(k.namespace, k.tls.acmeServer),
    createIssuer: k.tls.createIssuer,
    ...(k.tls.dns01 !== undefined ? { dns01: k.tls.dns01 } : {}),
  },
  replicas: k.replicas,
  resources: k.resources,
  autoscaling: k.autoscaling,
  internetEgressPorts: [...new Set(k.internetEgressPorts)].sort((a, b) => a - b),
  filestore: k.filestore,
  redis: k.redis,
  errorPagesImage: k.errorPagesImage,
  postgres: {
    image: k.postgres.image ?? siblingImage(k.image, "postgres", "15-pgbackrest"),
    ...(k.postgres.storageClass !== undefined ? { storageClass: k.postgres.storageClass } : {}),
    dataSize: k.postgres.dataSize,
    walArchiveSize: k.postgres.walArchiveSize,
    backupsSize: k.postgres.backupsSize,
    resources: k.postgres.resources,
    ...(k.postgres.exporterImage !== undefined ? { exporterImage: k.postgres.exporterImage } : {}),
    ...(k.postgres.adminEndpoint !== undefined ? { adminEndpoint: k.postgres.adminEndpoint } : {}),
    adminSslMode: k.postgres.adminSslMode,
  },
  ops: { image: k.ops.image ?? siblingImage(k.image, "ops"), restoreScratchSize: k.ops.restoreScratchSize },
  monitoring: {
    enabled: k.monitoring.enabled,
    namespace: k.monitoring.namespace,
    labels: k.monitoring.labels,
    ...(k.monitoring.pushgatewayUrl !== undefined ? { pushgatewayUrl: k.monitoring.pushgatewayUrl } : {}),
  },
}));

/**
 * Why the kubernetes target refuses snapshots declared in the stack file, and what to do instead
 * (docs/operations/kubernetes.md#snapshots). The CronJob named here is OpsJobs' `snapshot-auto`
 * (test/unit/prod-stack.test.ts holds the name to the rendered objects).
 */
export function kubernetesSnapshotRefusal(namespace: string): { snapshots: string; restoreSnapshot: string } {
  const runtime =
    "runtime snapshots are taken by " +
    `\`kubectl -n ${namespace} create job --from=cronjob/loomworks-snapshot-auto snapshot-now\` (every tenant, now) ` +
    "or by `SELECT loomworks_snapshot.request('pre_ai', '<note>')` in the tenant's database (recorded at that " +
    "job's next run), and their lsn is in the registry's snapshots table (docs/operations/kubernetes.md#snapshots)";
  return {
    snapshots:
      "cannot be declared on the kubernetes target: a declared snapshot copies the tenant's filestore on the " +
      "machine running `pulumi up`, and here the filestore is the ERP's volume inside the cluster. Remove them; " +
      `${runtime}; restore to one with restore: { lsn: ... }`,
    restoreSnapshot:
      "cannot name a snapshot on the kubernetes target (it takes no declared snapshots): restore to a runtime " +
      `snapshot's lsn with restore: { lsn: ... }, or to a time with restore: { time: ... }; ${runtime}`,
  };
}

/**
 * The default reference of an image built from this repository: pushed next to the ERP image
 * (`registry/loomworks/erp:18.0-7` → `registry/loomworks/postgres:15-pgbackrest`, `.../ops:18.0-7`).
 */
export function siblingImage(erpImage: string, name: string, tag?: string): string {
  const digestAt = erpImage.indexOf("@");
  const withoutDigest = digestAt >= 0 ? erpImage.slice(0, digestAt) : erpImage;
  const slash = withoutDigest.lastIndexOf("/");
  const colon = withoutDigest.lastIndexOf(":");
  const hasTag = colon > slash;
  const repository = hasTag ? withoutDigest.slice(0, colon) : withoutDigest;
  const ownTag = hasTag ? withoutDigest.slice(colon + 1) : "latest";
  const base = slash >= 0 ? repository.slice(0, repository.lastIndexOf("/") + 1) : "";
  return `${base}${name}:${tag ?? ownTag}`;
}

/** `loomworks-<namespace>-letsencrypt[-staging]`: a ClusterIssuer is cluster-wide, so the stack's namespace is in it. */
export function defaultIssuerName(namespace: string, acmeServer: string): string {
  const suffix =
    acmeServer === ACME_SERVERS.production
      ? "letsencrypt"
      : acmeServer === ACME_SERVERS.staging
        ? "letsencrypt-staging"
        : "acme";
  return `loomworks-${namespace}-${suffix}`;
}
