/**
 * The Kubernetes target's components under Pulumi mocks (test/helpers/pulumi-mocks.ts: every
 * registration recorded, custom resources echo their inputs): KubernetesRouter in both routing
 * variants and OdooDeployment, for three tenants — acme (active), globex (suspended) and initech
 * (active, with a preview host). Each test checks the objects as they would be sent to the
 * cluster: kinds, names, hosts, ports, paths, backends, probes, autoscaling, disruption budget,
 * NetworkPolicies (evaluated, not just restated), secret handling, and the schema of every object
 * (test/helpers/k8s-validate.ts, offline).
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { type K8sObject, isK8s, kindName, objectOf, one } from "../helpers/k8s-objects";
import { assertValidK8sObject, k8sSchemaErrors } from "../helpers/k8s-validate";
import {
  installMocks,
  isSecretInput,
  plain,
  promiseOf,
  registered,
  resourceTree,
  type Registration,
} from "../helpers/pulumi-mocks";

// The mocks must be in place before any resource is constructed (the imports below declare none).
const registrations = installMocks();

import { OdooDeployment } from "../../components/kubernetes/OdooDeployment";
import { KubernetesRouter } from "../../components/kubernetes/Router";
import { erpSettings, routerSettings } from "../../components/platform/kubernetesSettings";
import { kubernetesConfigSchema, type KubernetesConfig } from "../../infra/config/kubernetes";
import { parseOdooConfig, secretReferences } from "../../lib/odoo/config";
import { STRIPPED_CLIENT_HEADERS } from "../../lib/router/forwarding";

const DOMAIN = "loom.example";
const NS = "loomworks-prod";
const ADMIN_PASSWD = "admin-passwd-0123456789-secret";
const DB_PASSWORD = "db-password-9876543210-secret";
const REDIS_PASSWORD = "pw-erp-redis-password"; // the mocked RandomSecret's result
const TENANTS = [
  { subdomain: "acme", state: "active" as const },
  { subdomain: "globex", state: "suspended" as const },
  { subdomain: "initech", state: "active" as const, preview: true },
];

function config(overrides: Record<string, unknown> = {}): KubernetesConfig {
  return kubernetesConfigSchema.parse({
    namespace: NS,
    image: "registry.example.com/loomworks/erp:18.0-7",
    gatewayClassName: "eg",
    ingressClassName: "traefik",
    ingressAnnotations: { "traefik.ingress.kubernetes.io/router.entrypoints": "websecure" },
    proxy: { namespace: "gateway-system", podLabels: { "app.kubernetes.io/name": "envoy" } },
    tls: {
      acmeEmail: "ops@loom.example",
      acmeServer: "staging",
      dns01: {
        provider: "cloudflare",
        apiTokenSecretRef: { name: "cloudflare-api-token", key: "api-token" },
      },
    },
    filestore: { storageClass: "efs-sc", size: "250Gi" },
    internetEgressPorts: [443, 587],
    ...overrides,
  });
}

/** kindName with a content-hash suffix shown as `<hash>`. */
const kindNameShape = (o: K8sObject) => kindName(o).replace(/-[0-9a-f]{10}$/, "-<hash>");

async function build<T extends pulumi.Resource>(make: () => T): Promise<[T, Registration[]]> {
  const first = registrations.length;
  const resource = make();
  await registered(resource);
  return [resource, registrations.slice(first)];
}

function objects(regs: Registration[]): K8sObject[] {
  return regs.filter(isK8s).map(objectOf);
}

/** Registration of one object, for secret checks on the raw inputs. */
function registrationOf(regs: Registration[], kind: string, name: string): Registration {
  const found = regs.filter(
    (r) => isK8s(r) && objectOf(r).kind === kind && objectOf(r).metadata.name === name,
  );
  expect(found).toHaveLength(1);
  return found[0];
}

// ---------------------------------------------------------------------------------------------
// A small NetworkPolicy evaluator (the semantics of networking.k8s.io/v1 that the platform's
// policies use: pod and namespace selectors by matchLabels, ipBlock with except, TCP/UDP ports).

interface Endpoint {
  namespace: string;
  labels?: Record<string, string>;
  ip?: string;
}
interface PolicyPeer {
  podSelector?: { matchLabels?: Record<string, string> };
  namespaceSelector?: { matchLabels?: Record<string, string> };
  ipBlock?: { cidr: string; except?: string[] };
}
interface PolicyRule {
  from?: PolicyPeer[];
  to?: PolicyPeer[];
  ports?: { protocol?: string; port: number }[];
}

function matches(
  selector: { matchLabels?: Record<string, string> } | undefined,
  labels: Record<string, string>,
) {
  return Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

function ipv4(ip: string): number {
  return ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

function inCidr(ip: string, cidr: string): boolean {
  if (cidr.includes(":") !== ip.includes(":")) return false;
  if (ip.includes(":")) return false; // the tests use IPv4 addresses only
  const [base, bits] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(ip) / size) === Math.floor(ipv4(base) / size);
}

function peerMatches(peer: PolicyPeer, policyNs: string, other: Endpoint): boolean {
  if (peer.ipBlock) {
    return (
      other.ip !== undefined &&
      other.labels === undefined &&
      inCidr(other.ip, peer.ipBlock.cidr) &&
      !(peer.ipBlock.except ?? []).some((c) => inCidr(other.ip as string, c))
    );
  }
  if (!other.labels) return false; // outside the cluster
  const nsOk = peer.namespaceSelector
    ? matches(peer.namespaceSelector, { "kubernetes.io/metadata.name": other.namespace })
    : other.namespace === policyNs;
  return nsOk && (peer.podSelector === undefined || matches(peer.podSelector, other.labels));
}

/** Whether `policies` let `from` open a connection to `to` on `port` (both directions checked). */
function allowed(
  policies: K8sObject[],
  from: Endpoint,
  to: Endpoint,
  port: number,
  protocol = "TCP",
): boolean {
  const direction = (self: Endpoint, other: Endpoint, type: "Ingress" | "Egress"): boolean => {
    if (!self.labels) return true; // not a pod under these policies
    const selecting = policies.filter(
      (p) =>
        p.metadata.namespace === self.namespace &&
        (p.spec.policyTypes as string[]).includes(type) &&
        matches(p.spec.podSelector, self.labels as Record<string, string>),
    );
    if (selecting.length === 0) return true;
    return selecting.some((p) =>
      ((type === "Ingress" ? p.spec.ingress : p.spec.egress) as PolicyRule[] | undefined)?.some((rule) => {
        const peers = type === "Ingress" ? rule.from : rule.to;
        const peerOk = peers === undefined || peers.some((peer) => peerMatches(peer, self.namespace, other));
        const portOk =
          rule.ports === undefined ||
          rule.ports.some((p) => p.port === port && (p.protocol ?? "TCP") === protocol);
        return peerOk && portOk;
      }),
    );
  };
  return direction(from, to, "Egress") && direction(to, from, "Ingress");
}

// ---------------------------------------------------------------------------------------------

const ERP_POD = { "app.kubernetes.io/name": "loomworks-erp", "app.kubernetes.io/component": "erp" };
const UPDATE_POD = {
  "app.kubernetes.io/name": "loomworks-erp",
  "app.kubernetes.io/component": "module-update",
};
const REDIS_POD = {
  "app.kubernetes.io/name": "loomworks-redis",
  "app.kubernetes.io/component": "session-store",
};
const PAGES_POD = {
  "app.kubernetes.io/name": "loomworks-error-pages",
  "app.kubernetes.io/component": "error-pages",
};
const PG_POD = { "app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": "loomworks" };
const COMMON = { "app.kubernetes.io/part-of": "loomworks", "app.kubernetes.io/managed-by": "pulumi" };

function newOdoo(
  name: string,
  cfg: KubernetesConfig,
  extra: Partial<ConstructorParameters<typeof OdooDeployment>[1]> = {},
) {
  return new OdooDeployment(name, {
    ...erpSettings(cfg),
    database: {
      host: pulumi.output("loomworks-postgres.loomworks-prod.svc"),
      user: "loomworks_erp",
      password: pulumi.secret(DB_PASSWORD),
      sslmode: "require",
      peer: { podLabels: PG_POD },
    },
    adminPasswd: pulumi.secret(ADMIN_PASSWD),
    databases: ["acme", "globex", "initech"],
    tenants: pulumi.secret(
      TENANTS.map((t) => ({
        subdomain: t.subdomain,
        database: t.subdomain,
        roleName: t.subdomain,
        password: `${t.subdomain}-role-password-0123456789`,
        state: t.state,
      })),
    ),
    ...extra,
  });
}

function newRouter(name: string, cfg: KubernetesConfig, hostsPerIngress?: number) {
  return new KubernetesRouter(name, {
    ...routerSettings(cfg),
    domain: DOMAIN,
    namespace: pulumi.output(NS),
    tenants: TENANTS,
    erp: {
      httpService: pulumi.output("loomworks-erp-http"),
      websocketService: pulumi.output("loomworks-erp-websocket"),
    },
    ...(hostsPerIngress !== undefined ? { hostsPerIngress } : {}),
  });
}

describe("OdooDeployment", () => {
  let erp: OdooDeployment;
  let regs: Registration[];
  let objs: K8sObject[];
  beforeAll(async () => {
    [erp, regs] = await build(() => newOdoo("erp", config()));
    objs = objects(regs);
  });

  it("declares exactly the ERP's objects, nested under the component", () => {
    expect(objs.map(kindNameShape).sort()).toEqual(
      [
        `Namespace/${NS}`,
        "Secret/loomworks-erp-secrets",
        "Secret/loomworks-erp-tenants",
        "ConfigMap/loomworks-erp-config-<hash>",
        "PersistentVolumeClaim/loomworks-filestore",
        "Deployment/loomworks-redis",
        "Service/loomworks-redis",
        "Job/loomworks-erp-update-<hash>",
        "ConfigMap/loomworks-erp-update-<hash>",
        "Deployment/loomworks-erp",
        "Service/loomworks-erp-http",
        "Service/loomworks-erp-websocket",
        "HorizontalPodAutoscaler/loomworks-erp",
        "PodDisruptionBudget/loomworks-erp",
        "NetworkPolicy/default-deny-all",
        "NetworkPolicy/allow-dns",
        "NetworkPolicy/erp-from-proxy",
        "NetworkPolicy/erp-egress",
        "NetworkPolicy/redis-from-erp",
        "NetworkPolicy/erp-update-egress",
        "NetworkPolicy/postgres-from-erp",
      ].sort(),
    );
    expect(Object.keys(resourceTree(erp))).toHaveLength(regs.length - 1);
    expect(regs.filter((r) => !isK8s(r)).map((r) => `${r.type}::${r.name}`)).toEqual([
      "loomworks:kubernetes:OdooDeployment::erp",
      "pulumi-nodejs:dynamic/loomworks:RandomSecret::erp-redis-password",
    ]);
    for (const o of objs.filter((x) => x.kind !== "Namespace"))
      expect(o.metadata.namespace, kindName(o)).toBe(NS);
    for (const o of objs) expect(o.metadata.labels, kindName(o)).toMatchObject(COMMON);
  });

  it("labels the namespace for the restricted Pod Security Standard", () => {
    expect(one(objs, "Namespace", NS).metadata.labels).toMatchObject({
      "pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/audit": "restricted",
      "pod-security.kubernetes.io/warn": "restricted",
    });
  });

  it("keeps every secret in the Secret, as Pulumi secrets, and out of every other object", async () => {
    const reg = registrationOf(regs, "Secret", "loomworks-erp-secrets");
    const stringData = plain(reg.inputs.stringData) as Record<string, string>;
    expect(Object.keys(stringData).sort()).toEqual([
      "admin-passwd",
      "db-password",
      "redis-password",
      "redis-url",
    ]);
    // Sent as secrets: each value, or the whole map, arrives in the secret envelope.
    const raw = reg.inputs.stringData as Record<string, unknown>;
    for (const key of Object.keys(stringData)) {
      expect(isSecretInput(raw) || isSecretInput(raw[key]), key).toBe(true);
    }
    for (const key of ["apiVersion", "kind", "metadata", "type"])
      expect(isSecretInput(reg.inputs[key]), key).toBe(false);
    expect(plain(stringData)).toEqual({
      "admin-passwd": ADMIN_PASSWD,
      "db-password": DB_PASSWORD,
      "redis-password": REDIS_PASSWORD,
      "redis-url": `redis://:${REDIS_PASSWORD}@loomworks-redis:6379/0`,
    });
    for (const o of objs.filter((x) => x.kind !== "Secret")) {
      const text = JSON.stringify(o);
      for (const secret of [ADMIN_PASSWD, DB_PASSWORD, REDIS_PASSWORD]) {
        expect(text.includes(secret), `${kindName(o)} holds a secret`).toBe(false);
      }
    }
    expect(await pulumi.isSecret(erp.odooConfig)).toBe(false);
  });

  it("renders odoo.conf into the ConfigMap with secret references the pods provide files for", async () => {
    const cm = objs.find(
      (o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("loomworks-erp-config-"),
    ) as K8sObject;
    const text = cm.data?.["odoo.conf"] as string;
    expect(text).toBe(await promiseOf(erp.odooConfig));
    expect(cm.metadata.name).toBe(await promiseOf(erp.configMapName));
    const options = parseOdooConfig(text);
    expect(options).toMatchObject({
      dbfilter: "^%d$",
      proxy_mode: "True",
      list_db: "False",
      db_host: "loomworks-postgres.loomworks-prod.svc",
      db_port: "5432",
      db_user: "loomworks_erp",
      db_sslmode: "require",
      gevent_port: "8072",
      http_port: "8069",
      data_dir: "/var/lib/odoo",
      session_store: "redis",
      // 2 CPU, 4 GiB limit: 2 x 2 + 1 workers sharing 80 % of 4096 MiB.
      workers: "5",
      limit_memory_hard: String(Math.floor((4096 * 0.8) / 5) * 1024 * 1024),
    });
    const refs = secretReferences(text);
    expect(refs).toEqual({
      admin_passwd: "LOOMWORKS_ADMIN_PASSWD",
      db_password: "LOOMWORKS_DB_PASSWORD",
      session_redis_url: "LOOMWORKS_REDIS_URL",
    });

    const pod = one(objs, "Deployment", "loomworks-erp").spec.template.spec;
    const container = pod.containers[0];
    const env = Object.fromEntries(
      (container.env as { name: string; value: string }[]).map((e) => [e.name, e.value]),
    );
    const mounts = Object.fromEntries(
      (container.volumeMounts as { name: string; mountPath: string }[]).map((m) => [m.name, m.mountPath]),
    );
    type Volume = { name: string; secret?: { items: { key: string; path: string }[] } };
    const volumes = Object.fromEntries((pod.volumes as Volume[]).map((v) => [v.name, v]));
    // The entrypoint reads the ConfigMap's file, and each reference from a file of the Secret volume.
    expect(env.LOOMWORKS_ODOO_CONF).toBe(`${mounts.config}/odoo.conf`);
    expect(volumes.config).toEqual({ name: "config", configMap: { name: cm.metadata.name } });
    const secretItems = volumes.secrets.secret?.items ?? [];
    for (const variable of Object.values(refs)) {
      const file = env[`${variable}_FILE`];
      expect(file, variable).toMatch(new RegExp(`^${mounts.secrets}/`));
      expect(secretItems.map((i) => `${mounts.secrets}/${i.path}`)).toContain(file);
    }
    expect(secretItems.map((i) => i.key).sort()).toEqual(["admin-passwd", "db-password", "redis-url"]);
    expect(volumes.secrets).toMatchObject({
      secret: { secretName: "loomworks-erp-secrets", defaultMode: 0o440 },
    });
    // The private copy goes to memory, in a directory of its own under the mounted volume.
    expect(env.LOOMWORKS_RUNTIME_DIR).toBe(`${mounts.run}/odoo`);
    expect(volumes.run).toEqual({ name: "run", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } });
  });

  it("names the ConfigMap after its content", async () => {
    const [other] = await build(() =>
      newOdoo("erp-other", config({ createNamespace: false }), { databases: [] }),
    );
    expect(await promiseOf(other.configMapName)).toBe(await promiseOf(erp.configMapName));
    const [bigger] = await build(() =>
      newOdoo(
        "erp-bigger",
        config({ createNamespace: false, resources: { limits: { cpu: "4", memory: "8Gi" } } }),
        {
          databases: [],
        },
      ),
    );
    expect(await promiseOf(bigger.configMapName)).not.toBe(await promiseOf(erp.configMapName));
    expect(parseOdooConfig(await promiseOf(bigger.odooConfig)).workers).toBe("9");
  });

  it("runs the ERP Deployment as specified: image, rolling update, probes, resources, security", () => {
    const d = one(objs, "Deployment", "loomworks-erp");
    expect(d.spec).toMatchObject({
      replicas: 2,
      selector: { matchLabels: ERP_POD },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    });
    const pod = d.spec.template.spec;
    expect(d.spec.template.metadata.labels).toMatchObject(ERP_POD);
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 101,
      runAsGroup: 101,
      fsGroup: 101,
      fsGroupChangePolicy: "OnRootMismatch",
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers).toHaveLength(1);
    const c = pod.containers[0];
    expect(c.image).toBe("registry.example.com/loomworks/erp:18.0-7");
    expect(c.ports).toEqual([
      { name: "http", containerPort: 8069, protocol: "TCP" },
      { name: "websocket", containerPort: 8072, protocol: "TCP" },
    ]);
    expect(c.resources).toEqual({
      requests: { cpu: "500m", memory: "1Gi" },
      limits: { cpu: "2", memory: "4Gi" },
    });
    const health = { httpGet: { path: "/web/health", port: 8069 }, timeoutSeconds: 5 };
    expect(c.startupProbe).toEqual({ ...health, periodSeconds: 10, failureThreshold: 60 });
    expect(c.readinessProbe).toEqual({ ...health, periodSeconds: 10, failureThreshold: 3 });
    expect(c.livenessProbe).toEqual({ ...health, periodSeconds: 20, failureThreshold: 3 });
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    // Writable: the filestore (data_dir on the ReadWriteMany claim), /tmp and the runtime volume.
    expect(c.volumeMounts).toEqual([
      { name: "config", mountPath: "/etc/loomworks", readOnly: true },
      { name: "secrets", mountPath: "/var/run/secrets/loomworks", readOnly: true },
      { name: "tenants", mountPath: "/etc/loomworks-tenants", readOnly: true },
      { name: "run", mountPath: "/run/loomworks" },
      { name: "filestore", mountPath: "/var/lib/odoo" },
      { name: "tmp", mountPath: "/tmp" },
    ]);
    expect(pod.volumes).toContainEqual({
      name: "filestore",
      persistentVolumeClaim: { claimName: "loomworks-filestore" },
    });
    // Module updates are the Job's, not each replica's.
    expect(c.env).toContainEqual({ name: "LOOMWORKS_SKIP_UPDATES", value: "1" });
  });

  it("claims a ReadWriteMany filestore of the configured class and size", () => {
    expect(one(objs, "PersistentVolumeClaim", "loomworks-filestore").spec).toEqual({
      accessModes: ["ReadWriteMany"],
      storageClassName: "efs-sc",
      resources: { requests: { storage: "250Gi" } },
    });
  });

  it("updates the tenants' modules once per image in a Job the ERP's Services never select", () => {
    const job = objs.find((o) => o.kind === "Job") as K8sObject;
    const pod = job.spec.template.spec;
    expect(job.spec.template.metadata.labels).toMatchObject(UPDATE_POD);
    expect(pod.restartPolicy).toBe("Never");
    expect(pod.containers[0].args).toEqual(["update"]);
    expect(pod.containers[0].image).toBe("registry.example.com/loomworks/erp:18.0-7");
    expect(pod.containers[0].env).toContainEqual({
      name: "LOOMWORKS_DATABASES_FILE",
      value: "/etc/loomworks-update/databases",
    });
    expect(pod.containers[0].volumeMounts).toContainEqual({
      name: "databases",
      mountPath: "/etc/loomworks-update",
      readOnly: true,
    });
    expect(pod.volumes).toContainEqual({ name: "databases", configMap: { name: job.metadata.name } });
    expect(one(objs, "ConfigMap", job.metadata.name).data).toEqual({ databases: "acme\nglobex\ninitech\n" });
    expect(pod.containers[0].env.map((e: { name: string }) => e.name)).not.toContain(
      "LOOMWORKS_SKIP_UPDATES",
    );
    const selector = one(objs, "Service", "loomworks-erp-http").spec.selector as Record<string, string>;
    expect(matches({ matchLabels: selector }, job.spec.template.metadata.labels)).toBe(false);
    expect(
      matches(
        { matchLabels: selector },
        one(objs, "Deployment", "loomworks-erp").spec.template.metadata.labels,
      ),
    ).toBe(true);
  });

  it("declares no update Job without databases, and a new one for a new image", async () => {
    const [, none] = await build(() =>
      newOdoo("erp-nodb", config({ createNamespace: false }), { databases: [] }),
    );
    expect(objects(none).filter((o) => o.kind === "Job")).toEqual([]);
    const [, next] = await build(() =>
      newOdoo(
        "erp-next",
        config({ createNamespace: false, image: "registry.example.com/loomworks/erp:18.0-8" }),
      ),
    );
    const jobName = (list: K8sObject[]) => (list.find((o) => o.kind === "Job") as K8sObject).metadata.name;
    expect(jobName(objects(next))).not.toBe(jobName(objs));
  });

  it("serves HTTP on 8069 and WebSockets on 8072 through ClusterIP Services", async () => {
    expect(one(objs, "Service", "loomworks-erp-http").spec).toEqual({
      type: "ClusterIP",
      selector: ERP_POD,
      ports: [{ name: "http", port: 8069, targetPort: "http", protocol: "TCP" }],
    });
    expect(one(objs, "Service", "loomworks-erp-websocket").spec).toEqual({
      type: "ClusterIP",
      selector: ERP_POD,
      ports: [{ name: "websocket", port: 8072, targetPort: "websocket", protocol: "TCP" }],
    });
    expect(await promiseOf(erp.httpService)).toBe("loomworks-erp-http");
    expect(await promiseOf(erp.websocketService)).toBe("loomworks-erp-websocket");
    expect(await promiseOf(erp.namespace)).toBe(NS);
  });

  it("autoscales 2-10 replicas on CPU 70 % and memory 80 %, scaling down slowly", () => {
    expect(one(objs, "HorizontalPodAutoscaler", "loomworks-erp").spec).toEqual({
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "loomworks-erp" },
      minReplicas: 2,
      maxReplicas: 10,
      metrics: [
        {
          type: "Resource",
          resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } },
        },
        {
          type: "Resource",
          resource: { name: "memory", target: { type: "Utilization", averageUtilization: 80 } },
        },
      ],
      behavior: {
        scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: "Pods", value: 2, periodSeconds: 60 }] },
        scaleDown: {
          stabilizationWindowSeconds: 300,
          policies: [{ type: "Pods", value: 1, periodSeconds: 120 }],
        },
      },
    });
  });

  it("keeps at least one ERP pod through voluntary disruptions", () => {
    expect(one(objs, "PodDisruptionBudget", "loomworks-erp").spec).toEqual({
      minAvailable: 1,
      selector: { matchLabels: ERP_POD },
      unhealthyPodEvictionPolicy: "AlwaysAllow",
    });
  });

  it("runs Redis with its password from the Secret, never on a command line", () => {
    const d = one(objs, "Deployment", "loomworks-redis");
    const c = d.spec.template.spec.containers[0];
    expect(c.image).toBe("redis:7.2-alpine");
    expect(c.env).toEqual([
      {
        name: "REDIS_PASSWORD",
        valueFrom: { secretKeyRef: { name: "loomworks-erp-secrets", key: "redis-password" } },
      },
    ]);
    expect(c.command[2]).toContain("exec redis-server - ");
    expect(c.command[2]).toContain("requirepass $REDIS_PASSWORD");
    expect(c.command[2]).toContain("--maxmemory 256mb --maxmemory-policy allkeys-lru");
    expect(c.resources.limits).toEqual({ cpu: "500m", memory: "416Mi" });
    expect(one(objs, "Service", "loomworks-redis").spec.ports).toEqual([
      { name: "redis", port: 6379, targetPort: "redis", protocol: "TCP" },
    ]);
  });

  describe("NetworkPolicies", () => {
    let policies: K8sObject[];
    const erpPod = { namespace: NS, labels: ERP_POD };
    const updatePod = { namespace: NS, labels: UPDATE_POD };
    const redisPod = { namespace: NS, labels: REDIS_POD };
    const pgPod = { namespace: NS, labels: PG_POD };
    const proxy = { namespace: "gateway-system", labels: { "app.kubernetes.io/name": "envoy" } };
    const dns = { namespace: "kube-system", labels: { "k8s-app": "kube-dns" } };
    beforeAll(() => {
      policies = objs.filter((o) => o.kind === "NetworkPolicy");
    });

    it("deny everything in the namespace by default", () => {
      expect(one(policies, "NetworkPolicy", "default-deny-all").spec).toEqual({
        podSelector: {},
        policyTypes: ["Ingress", "Egress"],
      });
      const other = { namespace: NS, labels: { app: "something-else" } };
      expect(allowed(policies, other, erpPod, 8069)).toBe(false);
      expect(allowed(policies, other, redisPod, 6379)).toBe(false);
      expect(allowed(policies, other, { namespace: "x", ip: "8.8.8.8" }, 443)).toBe(false);
    });

    it("let only the proxies reach the ERP, on its two ports", () => {
      expect(allowed(policies, proxy, erpPod, 8069)).toBe(true);
      expect(allowed(policies, proxy, erpPod, 8072)).toBe(true);
      expect(allowed(policies, proxy, erpPod, 22)).toBe(false);
      expect(
        allowed(policies, { ...proxy, labels: { "app.kubernetes.io/name": "other" } }, erpPod, 8069),
      ).toBe(false);
      expect(allowed(policies, { namespace: "default", labels: proxy.labels }, erpPod, 8069)).toBe(false);
      expect(allowed(policies, proxy, redisPod, 6379)).toBe(false);
    });

    it("let the ERP reach PostgreSQL, Redis and DNS", () => {
      expect(allowed(policies, erpPod, pgPod, 5432)).toBe(true);
      expect(allowed(policies, erpPod, redisPod, 6379)).toBe(true);
      expect(allowed(policies, erpPod, dns, 53, "UDP")).toBe(true);
      expect(allowed(policies, erpPod, dns, 53, "TCP")).toBe(true);
      expect(allowed(policies, erpPod, pgPod, 6379)).toBe(false);
      expect(allowed(policies, redisPod, erpPod, 8069)).toBe(false);
    });

    it("let the ERP reach the internet on the configured ports only, never private networks or metadata", () => {
      const internet = (ip: string) => ({ namespace: "", ip });
      expect(allowed(policies, erpPod, internet("104.18.33.45"), 443)).toBe(true);
      expect(allowed(policies, erpPod, internet("104.18.33.45"), 587)).toBe(true);
      expect(allowed(policies, erpPod, internet("104.18.33.45"), 25)).toBe(false);
      for (const ip of ["10.0.12.7", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.10"]) {
        expect(allowed(policies, erpPod, internet(ip), 443), ip).toBe(false);
      }
      expect(allowed(policies, redisPod, internet("104.18.33.45"), 443)).toBe(false);
    });

    it("let the module-update Job reach PostgreSQL and Redis, not the internet", () => {
      expect(allowed(policies, updatePod, pgPod, 5432)).toBe(true);
      expect(allowed(policies, updatePod, redisPod, 6379)).toBe(true);
      expect(allowed(policies, updatePod, { namespace: "", ip: "104.18.33.45" }, 443)).toBe(false);
      expect(allowed(policies, proxy, updatePod, 8069)).toBe(false);
    });

    it("reach a PostgreSQL in another namespace or outside the cluster", async () => {
      const [, regsNs] = await build(() =>
        newOdoo("erp-pgns", config({ createNamespace: false }), {
          database: {
            host: "pg.db.svc",
            user: "erp",
            password: "x",
            peer: { podLabels: PG_POD, namespace: "databases" },
          },
        }),
      );
      const nsPolicies = objects(regsNs).filter((o) => o.kind === "NetworkPolicy");
      expect(nsPolicies.map((p) => p.metadata.name)).not.toContain("postgres-from-erp");
      expect(allowed(nsPolicies, erpPod, { namespace: "databases", labels: PG_POD }, 5432)).toBe(true);
      expect(allowed(nsPolicies, erpPod, { namespace: NS, labels: PG_POD }, 5432)).toBe(false);

      const [, regsCidr] = await build(() =>
        newOdoo("erp-pgcidr", config({ createNamespace: false }), {
          database: { host: "10.20.0.5", user: "erp", password: "x", peer: { cidr: "10.20.0.0/24" } },
        }),
      );
      const cidrPolicies = objects(regsCidr).filter((o) => o.kind === "NetworkPolicy");
      expect(allowed(cidrPolicies, erpPod, { namespace: "", ip: "10.20.0.5" }, 5432)).toBe(true);
      expect(allowed(cidrPolicies, erpPod, { namespace: "", ip: "10.20.1.5" }, 5432)).toBe(false);
    });
  });

  it("uses an existing namespace without declaring it", async () => {
    const [existing, list] = await build(() => newOdoo("erp-existing", config({ createNamespace: false })));
    expect(objects(list).filter((o) => o.kind === "Namespace")).toEqual([]);
    expect(await promiseOf(existing.namespace)).toBe(NS);
  });

  it("renders only objects valid against the Kubernetes schemas", () => {
    expect(objs.length).toBeGreaterThan(0);
    for (const o of objs) assertValidK8sObject(o);
  });
});

describe("KubernetesRouter: Gateway API", () => {
  let router: KubernetesRouter;
  let objs: K8sObject[];
  let regs: Registration[];
  beforeAll(async () => {
    [router, regs] = await build(() => newRouter("router", config()));
    objs = objects(regs);
  });

  it("declares the issuer, certificate, Gateway, one HTTPRoute per tenant host, defaults and error pages", () => {
    expect(objs.map(kindNameShape).sort()).toEqual(
      [
        "ClusterIssuer/loomworks-loomworks-prod-letsencrypt-staging",
        "Certificate/loomworks-wildcard",
        "Gateway/loomworks",
        "HTTPRoute/tenant-acme",
        "HTTPRoute/tenant-globex",
        "HTTPRoute/tenant-initech",
        "HTTPRoute/tenant-initech-preview",
        "HTTPRoute/default-not-found",
        "HTTPRoute/http-to-https",
        "ConfigMap/loomworks-error-pages-<hash>",
        "Deployment/loomworks-error-pages",
        "Service/loomworks-error-pages",
        "PodDisruptionBudget/loomworks-error-pages",
        "NetworkPolicy/error-pages-from-proxy",
      ].sort(),
    );
    expect(regs[0].type).toBe("loomworks:kubernetes:Router");
    expect(Object.keys(resourceTree(router))).toHaveLength(objs.length);
    expect(router.gatewayName).toBe("loomworks");
    expect(router.ingressNames).toEqual([]);
  });

  it("issues through Let's Encrypt (staging here) with the configured DNS-01 solver for the domain", () => {
    const issuer = one(objs, "ClusterIssuer", "loomworks-loomworks-prod-letsencrypt-staging");
    expect(issuer.apiVersion).toBe("cert-manager.io/v1");
    expect(issuer.metadata.namespace).toBeUndefined();
    expect(issuer.spec).toEqual({
      acme: {
        email: "ops@loom.example",
        server: "https://acme-staging-v02.api.letsencrypt.org/directory",
        privateKeySecretRef: { name: "loomworks-loomworks-prod-letsencrypt-staging-account-key" },
        solvers: [
          {
            selector: { dnsZones: [DOMAIN] },
            dns01: { cloudflare: { apiTokenSecretRef: { name: "cloudflare-api-token", key: "api-token" } } },
          },
        ],
      },
    });
  });

  it("requests one wildcard certificate for every tenant host and the apex", () => {
    const cert = one(objs, "Certificate", "loomworks-wildcard");
    expect(cert.metadata.namespace).toBe(NS);
    expect(cert.spec).toMatchObject({
      secretName: "loomworks-wildcard-tls",
      dnsNames: [`*.${DOMAIN}`, DOMAIN],
      issuerRef: {
        name: "loomworks-loomworks-prod-letsencrypt-staging",
        kind: "ClusterIssuer",
        group: "cert-manager.io",
      },
    });
    expect(router.certificateSecretName).toBe(cert.spec.secretName);
  });

  it("terminates TLS for *.<domain> and the apex with the certificate's Secret, and listens on HTTP", () => {
    const gw = one(objs, "Gateway", "loomworks");
    expect(gw.spec.gatewayClassName).toBe("eg");
    const tls = {
      mode: "Terminate",
      certificateRefs: [{ group: "", kind: "Secret", name: "loomworks-wildcard-tls" }],
    };
    const allowedRoutes = { namespaces: { from: "Same" }, kinds: [{ kind: "HTTPRoute" }] };
    expect(gw.spec.listeners).toEqual([
      { name: "https", hostname: `*.${DOMAIN}`, port: 443, protocol: "HTTPS", tls, allowedRoutes },
      { name: "https-apex", hostname: DOMAIN, port: 443, protocol: "HTTPS", tls, allowedRoutes },
      { name: "http", hostname: `*.${DOMAIN}`, port: 80, protocol: "HTTP", allowedRoutes },
      { name: "http-apex", hostname: DOMAIN, port: 80, protocol: "HTTP", allowedRoutes },
    ]);
  });

  it.each([
    ["tenant-acme", "acme.loom.example", "acme"],
    ["tenant-initech", "initech.loom.example", "initech"],
    ["tenant-initech-preview", "initech--preview.loom.example", "initech--preview"],
  ])(
    "routes %s: /websocket to 8072, the rest to 8069, with the routed host forced",
    (name, host, database) => {
      const route = one(objs, "HTTPRoute", name);
      expect(route.metadata.labels).toMatchObject({ "loomworks/tenant": database.replace("--preview", "") });
      const headers = {
        type: "RequestHeaderModifier",
        requestHeaderModifier: {
          set: [
            { name: "X-Forwarded-Host", value: host },
            { name: "X-Forwarded-Proto", value: "https" },
            { name: "X-Odoo-dbfilter", value: `^${database}$` },
          ],
          // The client's own forwarding family: the first 16 (Gateway API's limit) of the router's list.
          remove: STRIPPED_CLIENT_HEADERS.slice(0, 16),
        },
      };
      expect(headers.requestHeaderModifier.remove).toEqual(
        expect.arrayContaining([
          "Forwarded",
          "X-Host",
          "X-Forwarded-Server",
          "X-Original-URL",
          "X-Forwarded-Ssl",
        ]),
      );
      expect(route.spec).toEqual({
        parentRefs: [{ name: "loomworks", sectionName: "https" }],
        hostnames: [host],
        rules: [
          {
            matches: [{ path: { type: "PathPrefix", value: "/websocket" } }],
            filters: [headers],
            backendRefs: [{ name: "loomworks-erp-websocket", port: 8072 }],
          },
          {
            matches: [{ path: { type: "PathPrefix", value: "/" } }],
            filters: [headers],
            backendRefs: [{ name: "loomworks-erp-http", port: 8069 }],
          },
        ],
      });
    },
  );

  it("sends a suspended tenant to the 503 page, never to the ERP", () => {
    expect(one(objs, "HTTPRoute", "tenant-globex").spec).toEqual({
      parentRefs: [{ name: "loomworks", sectionName: "https" }],
      hostnames: ["globex.loom.example"],
      rules: [
        {
          matches: [{ path: { type: "PathPrefix", value: "/" } }],
          backendRefs: [{ name: "loomworks-error-pages", port: 8503 }],
        },
      ],
    });
  });

  it("sends every other host of the domain to the 404 page, and HTTP to HTTPS", () => {
    expect(one(objs, "HTTPRoute", "default-not-found").spec).toEqual({
      parentRefs: [
        { name: "loomworks", sectionName: "https" },
        { name: "loomworks", sectionName: "https-apex" },
      ],
      hostnames: [`*.${DOMAIN}`, DOMAIN],
      rules: [{ backendRefs: [{ name: "loomworks-error-pages", port: 8404 }] }],
    });
    expect(one(objs, "HTTPRoute", "http-to-https").spec).toEqual({
      parentRefs: [
        { name: "loomworks", sectionName: "http" },
        { name: "loomworks", sectionName: "http-apex" },
      ],
      rules: [
        {
          filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https", statusCode: 301 } }],
        },
      ],
    });
    // Only routes of active tenants reach the ERP.
    const erpRoutes = objs
      .filter((o) => o.kind === "HTTPRoute")
      .filter((o) => JSON.stringify(o.spec).includes("loomworks-erp-"))
      .map((o) => o.metadata.name)
      .sort();
    expect(erpRoutes).toEqual(["tenant-acme", "tenant-initech", "tenant-initech-preview"]);
  });

  it("serves the error pages from an unprivileged nginx the proxies alone may reach", () => {
    const cm = objs.find((o) => o.kind === "ConfigMap") as K8sObject;
    expect(Object.keys(cm.data ?? {}).sort()).toEqual(["404.html", "503.html", "default.conf"]);
    const d = one(objs, "Deployment", "loomworks-error-pages");
    const pod = d.spec.template.spec;
    expect(d.spec.replicas).toBe(2);
    expect(pod.containers[0].image).toBe("nginxinc/nginx-unprivileged:1.27-alpine");
    expect(pod.containers[0].securityContext.readOnlyRootFilesystem).toBe(true);
    expect(
      pod.volumes
        .filter((v: { configMap?: { name: string } }) => v.configMap)
        .map((v: { configMap: { name: string } }) => v.configMap.name),
    ).toEqual([cm.metadata.name, cm.metadata.name]);
    expect(
      one(objs, "Service", "loomworks-error-pages").spec.ports.map((p: { port: number }) => p.port),
    ).toEqual([8404, 8503]);
    const policies = objs.filter((o) => o.kind === "NetworkPolicy");
    const pages = { namespace: NS, labels: PAGES_POD };
    const proxy = { namespace: "gateway-system", labels: { "app.kubernetes.io/name": "envoy" } };
    expect(allowed(policies, proxy, pages, 8404)).toBe(true);
    expect(allowed(policies, proxy, pages, 8503)).toBe(true);
    expect(allowed(policies, { namespace: "default", labels: {} }, pages, 8404)).toBe(false);
  });

  it("renders only objects valid against the Kubernetes, Gateway API and cert-manager schemas", () => {
    for (const o of objs) assertValidK8sObject(o);
  });

  it("can reuse an existing ClusterIssuer instead of declaring one", async () => {
    const [, list] = await build(() =>
      newRouter(
        "router-existing-issuer",
        config({ tls: { acmeEmail: "ops@loom.example", createIssuer: false, issuerName: "shared-le" } }),
      ),
    );
    const kinds = objects(list).map((o) => o.kind);
    expect(kinds).not.toContain("ClusterIssuer");
    expect(one(objects(list), "Certificate", "loomworks-wildcard").spec.issuerRef.name).toBe("shared-le");
  });

  it.each([
    [
      { provider: "route53", region: "eu-west-1", role: "arn:aws:iam::1:role/dns" },
      { route53: { region: "eu-west-1", role: "arn:aws:iam::1:role/dns" } },
    ],
    [
      { provider: "clouddns", project: "p", serviceAccountSecretRef: { name: "gcp", key: "key.json" } },
      { cloudDNS: { project: "p", serviceAccountSecretRef: { name: "gcp", key: "key.json" } } },
    ],
    [
      { provider: "azuredns", subscriptionID: "s", resourceGroupName: "g", managedIdentityClientID: "c" },
      { azureDNS: { subscriptionID: "s", resourceGroupName: "g", managedIdentity: { clientID: "c" } } },
    ],
    [
      { provider: "digitalocean", tokenSecretRef: { name: "do", key: "t" } },
      { digitalocean: { tokenSecretRef: { name: "do", key: "t" } } },
    ],
    [
      {
        provider: "rfc2136",
        nameserver: "10.0.0.53:53",
        tsigKeyName: "k",
        tsigAlgorithm: "HMACSHA512",
        tsigSecretSecretRef: { name: "tsig", key: "s" },
      },
      {
        rfc2136: {
          nameserver: "10.0.0.53:53",
          tsigKeyName: "k",
          tsigAlgorithm: "HMACSHA512",
          tsigSecretSecretRef: { name: "tsig", key: "s" },
        },
      },
    ],
  ])("renders a valid DNS-01 solver for %j", async (dns01, solver) => {
    const name = `router-${(dns01 as { provider: string }).provider}`;
    const [, list] = await build(() =>
      newRouter(name, config({ routing: "ingress", tls: { acmeEmail: "ops@loom.example", dns01 } })),
    );
    const issuer = objects(list).find((o) => o.kind === "ClusterIssuer") as K8sObject;
    expect(issuer.spec.acme.solvers[0].dns01).toEqual(solver);
    assertValidK8sObject(issuer);
  });
});

describe("KubernetesRouter: Ingress", () => {
  let router: KubernetesRouter;
  let objs: K8sObject[];
  beforeAll(async () => {
    let regs: Registration[];
    [router, regs] = await build(() => newRouter("ingress", config({ routing: "ingress" })));
    objs = objects(regs);
  });

  it("declares one Ingress instead of the Gateway and HTTPRoutes, with the same certificate and error pages", () => {
    const kinds = objs.map((o) => o.kind);
    expect(kinds.filter((k) => k === "Ingress")).toHaveLength(1);
    expect(kinds).not.toContain("Gateway");
    expect(kinds).not.toContain("HTTPRoute");
    expect(kinds).toEqual(
      expect.arrayContaining(["ClusterIssuer", "Certificate", "Deployment", "Service", "ConfigMap"]),
    );
    expect(router.ingressNames).toEqual(["loomworks"]);
    expect(router.gatewayName).toBeUndefined();
  });

  it("has a rule per tenant host, TLS from the wildcard certificate, and the 404 page as default", () => {
    const ing = one(objs, "Ingress", "loomworks");
    expect(ing.metadata.annotations).toEqual({
      "traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
    });
    const svc = (name: string, port: number) => ({ service: { name, port: { number: port } } });
    const erpPaths = [
      { path: "/websocket", pathType: "Prefix", backend: svc("loomworks-erp-websocket", 8072) },
      { path: "/", pathType: "Prefix", backend: svc("loomworks-erp-http", 8069) },
    ];
    const only = (backend: unknown) => ({ paths: [{ path: "/", pathType: "Prefix", backend }] });
    expect(ing.spec).toEqual({
      ingressClassName: "traefik",
      tls: [{ hosts: [`*.${DOMAIN}`, DOMAIN], secretName: "loomworks-wildcard-tls" }],
      defaultBackend: svc("loomworks-error-pages", 8404),
      rules: [
        { host: "acme.loom.example", http: { paths: erpPaths } },
        { host: "globex.loom.example", http: only(svc("loomworks-error-pages", 8503)) },
        { host: "initech--preview.loom.example", http: { paths: erpPaths } },
        { host: "initech.loom.example", http: { paths: erpPaths } },
        { host: `*.${DOMAIN}`, http: only(svc("loomworks-error-pages", 8404)) },
        { host: DOMAIN, http: only(svc("loomworks-error-pages", 8404)) },
      ],
    });
  });

  it("splits many tenants over several Ingress objects, the defaults in the first", async () => {
    const [split, list] = await build(() => newRouter("ingress-split", config({ routing: "ingress" }), 2));
    const ingresses = objects(list)
      .filter((o) => o.kind === "Ingress")
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    expect(split.ingressNames).toEqual(["loomworks", "loomworks-2"]);
    expect(ingresses.map((i) => i.metadata.name)).toEqual(["loomworks", "loomworks-2"]);
    const hosts = (i: K8sObject) => (i.spec.rules as { host: string }[]).map((r) => r.host);
    expect(hosts(ingresses[0])).toEqual(["acme.loom.example", "globex.loom.example", `*.${DOMAIN}`, DOMAIN]);
    expect(hosts(ingresses[1])).toEqual(["initech--preview.loom.example", "initech.loom.example"]);
    expect(ingresses[1].spec.defaultBackend).toBeUndefined();
    expect(ingresses[1].spec.tls).toEqual(ingresses[0].spec.tls);
    for (const o of objects(list)) assertValidK8sObject(o);
  });

  it("renders only objects valid against the schemas", () => {
    for (const o of objs) assertValidK8sObject(o);
  });
});

describe("KubernetesRouter: refusals", () => {
  it("refuses a tenant subdomain no host rule can carry, and duplicates", () => {
    const make = (tenants: { subdomain: string; state: "active" }[]) =>
      new KubernetesRouter("bad", {
        ...routerSettings(config()),
        domain: DOMAIN,
        namespace: NS,
        tenants,
        erp: { httpService: "a", websocketService: "b" },
      });
    expect(() => make([{ subdomain: "a--b", state: "active" }])).toThrow(/not a routable subdomain/);
    expect(() => make([{ subdomain: "Acme", state: "active" }])).toThrow(/not a routable subdomain/);
    expect(() =>
      make([
        { subdomain: "acme", state: "active" },
        { subdomain: "acme", state: "active" },
      ]),
    ).toThrow(/declared twice/);
  });
});

describe("the schema validator", () => {
  const deployment = (): K8sObject => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "x" },
    spec: {
      selector: { matchLabels: { app: "x" } },
      template: { metadata: { labels: { app: "x" } }, spec: { containers: [{ name: "x", image: "x" }] } },
    },
  });

  it("accepts a valid object", () => {
    expect(k8sSchemaErrors(deployment())).toEqual([]);
  });

  it("rejects broken core objects, naming the problem", () => {
    const noSelector = deployment();
    delete noSelector.spec.selector;
    expect(k8sSchemaErrors(noSelector)).toEqual(["data/spec must have required property selector"]);
    const badReplicas = deployment();
    badReplicas.spec.replicas = "two";
    expect(k8sSchemaErrors(badReplicas)).toEqual(["data/spec/replicas must be integer"]);
    const noImage = deployment();
    delete noImage.spec.template.spec.containers[0].name;
    expect(k8sSchemaErrors(noImage)).toEqual([
      "data/spec/template/spec/containers/0 must have required property name",
    ]);
    expect(() => assertValidK8sObject(badReplicas)).toThrow(
      "apps/v1/Deployment x is invalid: data/spec/replicas must be integer",
    );
  });

  it("rejects broken Gateway API and cert-manager objects", () => {
    const route: K8sObject = {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "HTTPRoute",
      metadata: { name: "r" },
      spec: { hostnames: ["Acme.Example"], rules: [{ backendRefs: [{ name: "svc", port: 70000 }] }] },
    };
    const errors = k8sSchemaErrors(route);
    expect(errors.some((e) => e.startsWith("data/spec/hostnames/0 must match pattern"))).toBe(true);
    expect(errors).toContain("data/spec/rules/0/backendRefs/0/port must be <= 65535");
    const gateway: K8sObject = {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "g" },
      spec: {
        gatewayClassName: "eg",
        listeners: [{ name: "https", port: 443, protocol: "HTTPS", tls: { mode: "Passthru" } }],
      },
    };
    expect(
      k8sSchemaErrors(gateway).some((e) =>
        e.startsWith("data/spec/listeners/0/tls/mode must be equal to one of"),
      ),
    ).toBe(true);
    const certificate: K8sObject = {
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: { name: "c" },
      spec: { secretName: "s", dnsNames: ["*.x"] },
    };
    expect(k8sSchemaErrors(certificate)).toEqual(["data/spec must have required property issuerRef"]);
  });

  it("refuses an object it has no schema for, or without apiVersion and kind", () => {
    expect(
      k8sSchemaErrors({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }),
    ).toEqual(["no schema for example.com/v1/Widget"]);
    expect(k8sSchemaErrors({ metadata: { name: "w" } })).toEqual([
      "object has no string apiVersion and kind",
    ]);
  });
});
