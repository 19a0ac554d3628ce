/**
 * `loomworks:platform.kubernetes` (infra/config/kubernetes.ts): defaults, the DNS-01 provider
 * dispatch, cross-field rules and the quantity parsing the ERP's sizing depends on.
 */
import { describe, expect, it } from "vitest";
import {
  ACME_SERVERS,
  cpuCores,
  defaultIssuerName,
  kubernetesConfigSchema,
  memoryBytes,
  memoryMiB,
  siblingImage,
  type KubernetesConfig,
} from "../../infra/config/kubernetes";

const MINIMAL = {
  image: "registry.example.com/loomworks/erp:18.0-1",
  gatewayClassName: "eg",
  proxy: { namespace: "envoy-gateway-system" },
  tls: {
    acmeEmail: "ops@example.com",
    dns01: { provider: "cloudflare", apiTokenSecretRef: { name: "cloudflare-api-token", key: "api-token" } },
  },
  filestore: { storageClass: "efs-sc" },
};

function parse(raw: unknown): KubernetesConfig {
  const r = kubernetesConfigSchema.safeParse(raw);
  if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n"));
  return r.data;
}

/** `"<dotted path>: <message>"` of every issue of a configuration that must be refused. */
function issues(raw: unknown): string[] {
  const r = kubernetesConfigSchema.safeParse(raw);
  expect(r.success, "expected the configuration to be refused").toBe(false);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

function withTls(tls: Record<string, unknown>): Record<string, unknown> {
  return { ...MINIMAL, tls: { acmeEmail: "ops@example.com", ...tls } };
}

describe("kubernetesConfigSchema: defaults", () => {
  it("fills every default around the required settings", () => {
    expect(parse(MINIMAL)).toEqual({
      namespace: "loomworks",
      createNamespace: true,
      podSecurity: "restricted",
      image: "registry.example.com/loomworks/erp:18.0-1",
      imagePullSecrets: [],
      addonsPath:
        "/opt/loomworks/addons,/opt/loomworks/platform-addons,/usr/lib/python3/dist-packages/odoo/addons",
      // The image's `odoo` user (docker/Dockerfile: useradd --uid 101).
      erpUser: { uid: 101, gid: 101 },
      routing: "gateway",
      gatewayClassName: "eg",
      ingressAnnotations: {},
      proxy: { namespace: "envoy-gateway-system" },
      tls: {
        acmeEmail: "ops@example.com",
        acmeServer: ACME_SERVERS.production,
        issuerName: "loomworks-loomworks-letsencrypt",
        createIssuer: true,
        dns01: {
          provider: "cloudflare",
          apiTokenSecretRef: { name: "cloudflare-api-token", key: "api-token" },
        },
      },
      replicas: { min: 2, max: 10 },
      resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "2", memory: "4Gi" } },
      autoscaling: { cpuPercent: 70, memoryPercent: 80, scaleDownStabilizationSeconds: 300 },
      internetEgressPorts: [443],
      filestore: { storageClass: "efs-sc", size: "100Gi" },
      redis: { image: "redis:7.2-alpine", maxMemory: "256mb" },
      errorPagesImage: "nginxinc/nginx-unprivileged:1.27-alpine",
      postgres: {
        image: "registry.example.com/loomworks/postgres:15-pgbackrest",
        dataSize: "100Gi",
        walArchiveSize: "50Gi",
        backupsSize: "200Gi",
        resources: { requests: { cpu: "1", memory: "2Gi" }, limits: { cpu: "2", memory: "4Gi" } },
        adminSslMode: "disable",
      },
      ops: { image: "registry.example.com/loomworks/ops:18.0-1", restoreScratchSize: "50Gi" },
      monitoring: { enabled: true, namespace: "monitoring", labels: { release: "kube-prometheus-stack" } },
    });
  });

  it("accepts numbers and booleans written as strings, and nulls as absent", () => {
    const config = parse({
      ...MINIMAL,
      createNamespace: "false",
      replicas: { min: "3", max: "12" },
      resources: { limits: { cpu: 4 }, requests: null },
      internetEgressPorts: ["587", 443, 443],
      redis: null,
    });
    expect(config.createNamespace).toBe(false);
    expect(config.replicas).toEqual({ min: 3, max: 12 });
    expect(config.resources.limits).toEqual({ cpu: "4", memory: "4Gi" });
    expect(config.resources.requests).toEqual({ cpu: "500m", memory: "1Gi" });
    expect(config.internetEgressPorts).toEqual([443, 587]);
    expect(config.redis.image).toBe("redis:7.2-alpine");
  });

  it("selects the Let's Encrypt staging directory or another ACME server, naming the issuer after it", () => {
    const staging = parse(withTls({ acmeServer: "staging", dns01: MINIMAL.tls.dns01 }));
    expect(staging.tls.acmeServer).toBe("https://acme-staging-v02.api.letsencrypt.org/directory");
    expect(staging.tls.issuerName).toBe("loomworks-loomworks-letsencrypt-staging");
    const other = parse({
      ...withTls({ acmeServer: "https://acme.example.net/directory", dns01: MINIMAL.tls.dns01 }),
      namespace: "erp-prod",
    });
    expect(other.tls.acmeServer).toBe("https://acme.example.net/directory");
    expect(other.tls.issuerName).toBe("loomworks-erp-prod-acme");
    expect(defaultIssuerName("x", ACME_SERVERS.production)).toBe("loomworks-x-letsencrypt");
  });

  it("uses an existing ClusterIssuer without any DNS-01 settings", () => {
    const config = parse(withTls({ createIssuer: false, issuerName: "letsencrypt-wildcard" }));
    expect(config.tls).toEqual({
      acmeEmail: "ops@example.com",
      acmeServer: ACME_SERVERS.production,
      issuerName: "letsencrypt-wildcard",
      createIssuer: false,
    });
  });
});

describe("kubernetesConfigSchema: DNS-01 providers", () => {
  it.each([
    [{ provider: "route53", region: "eu-west-1", hostedZoneID: "Z123", role: "arn:aws:iam::1:role/dns" }],
    [
      {
        provider: "route53",
        accessKeyID: "AKIA123",
        secretAccessKeySecretRef: { name: "route53", key: "secret-access-key" },
      },
    ],
    [
      {
        provider: "clouddns",
        project: "acme-dns",
        serviceAccountSecretRef: { name: "clouddns", key: "key.json" },
      },
    ],
    [{ provider: "clouddns", project: "acme-dns" }],
    [
      {
        provider: "azuredns",
        subscriptionID: "sub",
        resourceGroupName: "dns",
        hostedZoneName: "loom.example",
        environment: "AzurePublicCloud",
        managedIdentityClientID: "client",
      },
    ],
    [{ provider: "digitalocean", tokenSecretRef: { name: "do", key: "token" } }],
    [
      {
        provider: "rfc2136",
        nameserver: "ns1.example.net:53",
        tsigKeyName: "acme",
        tsigAlgorithm: "HMACSHA256",
        tsigSecretSecretRef: { name: "tsig", key: "secret" },
      },
    ],
  ])("accepts %j", (dns01) => {
    expect(parse(withTls({ dns01 })).tls.dns01).toEqual(dns01);
  });

  it("refuses an unknown or missing provider, naming the known ones", () => {
    expect(issues(withTls({ dns01: { provider: "gandi" } }))).toEqual([
      "tls.dns01.provider: must be one of cloudflare, route53, clouddns, azuredns, digitalocean, rfc2136",
    ]);
    expect(issues(withTls({ dns01: { apiTokenSecretRef: { name: "a", key: "b" } } }))).toEqual([
      "tls.dns01.provider: is required; must be one of cloudflare, route53, clouddns, azuredns, digitalocean, rfc2136",
    ]);
    expect(issues(withTls({ dns01: "cloudflare" }))[0]).toMatch(/^tls\.dns01: must be a map with provider/);
  });

  it("checks the provider's own keys, with their paths", () => {
    expect(issues(withTls({ dns01: { provider: "cloudflare", apiTokenSecretRef: { name: "cf" } } }))).toEqual(
      ["tls.dns01.apiTokenSecretRef.key: is required; must be a Secret key"],
    );
    expect(
      issues(
        withTls({
          dns01: { provider: "cloudflare", apiKey: "x", apiTokenSecretRef: { name: "cf", key: "k" } },
        }),
      ),
    ).toEqual(["tls.dns01.apiKey: is not a known key; known keys: provider, apiTokenSecretRef"]);
    expect(issues(withTls({ dns01: { provider: "route53", accessKeyID: "AKIA" } }))).toEqual([
      "tls.dns01.secretAccessKeySecretRef: is required with accessKeyID",
    ]);
    expect(issues(withTls({ dns01: { provider: "clouddns" } }))).toEqual([
      "tls.dns01.project: is required; must be a non-empty string without leading or trailing whitespace",
    ]);
  });

  it("requires DNS-01 settings to create the issuer (wildcards need DNS-01), an issuer name to reuse one", () => {
    expect(issues(withTls({}))).toEqual([
      "tls.dns01: is required to create the ClusterIssuer (Let's Encrypt issues wildcards only through DNS-01)",
    ]);
    expect(issues(withTls({ createIssuer: false }))).toEqual([
      "tls.issuerName: is required with createIssuer: false (the existing ClusterIssuer to use)",
    ]);
  });
});

describe("kubernetesConfigSchema: rules", () => {
  it("requires the image, the proxy namespace, the TLS settings and the filestore's storage class", () => {
    expect(issues({})).toEqual([
      "gatewayClassName: is required with routing: gateway (the GatewayClass of the installed implementation)",
      "image: is required; must be a container image reference without whitespace (registry/repository:tag or @sha256:...)",
      "proxy: is required; must be a map { namespace, podLabels } of where the Gateway or ingress controller's proxies run",
      "tls: is required; must be a map of TLS settings (acmeEmail, acmeServer, issuerName, createIssuer, dns01)",
      "filestore: is required; must be a map { storageClass, size } of the ReadWriteMany filestore volume",
    ]);
  });

  it("requires the class of the chosen routing", () => {
    const { gatewayClassName: _g, ...rest } = MINIMAL;
    expect(issues({ ...rest, routing: "ingress" })).toEqual([
      "ingressClassName: is required with routing: ingress (the IngressClass of the installed controller)",
    ]);
    expect(parse({ ...rest, routing: "ingress", ingressClassName: "traefik" }).ingressClassName).toBe(
      "traefik",
    );
    expect(issues({ ...MINIMAL, routing: "nginx" })).toEqual(["routing: must be one of gateway, ingress"]);
  });

  it("refuses replicas.min above max, requests above limits and malformed quantities", () => {
    expect(issues({ ...MINIMAL, replicas: { min: 5, max: 3 } })).toEqual([
      "replicas.max: must be at least replicas.min (5)",
    ]);
    expect(issues({ ...MINIMAL, replicas: { min: 12 } })).toEqual([
      "replicas.max: must be at least replicas.min (12)",
    ]);
    expect(issues({ ...MINIMAL, resources: { requests: { cpu: "3", memory: "5Gi" } } })).toEqual([
      "resources.requests.cpu: must not exceed limits.cpu (2)",
      "resources.requests.memory: must not exceed limits.memory (4Gi)",
    ]);
    expect(issues({ ...MINIMAL, resources: { limits: { cpu: "two", memory: "4GB" } } })).toEqual([
      'resources.limits.cpu: must be a CPU quantity greater than 0, e.g. "500m", "2" or "1.5"',
      'resources.limits.memory: must be a memory quantity greater than 0, e.g. "512Mi", "4Gi" or "1G"',
    ]);
    expect(issues({ ...MINIMAL, autoscaling: { cpuPercent: 0 } })).toEqual([
      "autoscaling.cpuPercent: must be an integer from 1 to 100 (percent of the request)",
    ]);
  });

  it("refuses unknown keys with a hint, and bad names", () => {
    expect(issues({ ...MINIMAL, namespce: "x" })).toEqual([
      'namespce: is not a known key (did you mean "namespace"?)',
    ]);
    expect(issues({ ...MINIMAL, namespace: "Loomworks" })).toEqual([
      "namespace: must be a Kubernetes name: lowercase a-z, 0-9 and inner hyphens, at most 63 characters",
    ]);
    expect(issues({ ...MINIMAL, proxy: { namespace: "gw", podLabels: { "bad key!": "x" } } })).toEqual([
      "proxy.podLabels: must be a map of Kubernetes label names to values",
    ]);
    expect(issues({ ...MINIMAL, image: "registry.example.com/erp 18" })[0]).toMatch(
      /^image: must be a container image/,
    );
  });
});

describe("quantities", () => {
  it("parses CPU and memory quantities as Kubernetes does", () => {
    expect([cpuCores("500m"), cpuCores("2"), cpuCores("1.5"), cpuCores("0.25")]).toEqual([0.5, 2, 1.5, 0.25]);
    expect(cpuCores("2 cores")).toBeNaN();
    expect([memoryBytes("1Gi"), memoryBytes("512Mi"), memoryBytes("1G"), memoryBytes("1k")]).toEqual([
      2 ** 30,
      512 * 2 ** 20,
      1e9,
      1000,
    ]);
    expect(memoryBytes("4GB")).toBeNaN();
    expect([memoryMiB("4Gi"), memoryMiB("1G")]).toEqual([4096, 953]);
  });
});

describe("kubernetesConfigSchema: PostgreSQL, ops and monitoring", () => {
  it("derives the PostgreSQL and ops images from the ERP image's repository", () => {
    expect(siblingImage("registry.example.com:5000/loomworks/erp:18.0-7", "ops")).toBe(
      "registry.example.com:5000/loomworks/ops:18.0-7",
    );
    expect(siblingImage("loomworks/erp@sha256:" + "a".repeat(64), "postgres", "15")).toBe(
      "loomworks/postgres:15",
    );
    expect(siblingImage("erp", "ops")).toBe("ops:latest");
  });

  it("takes explicit images, sizes, storage class and the admin endpoint", () => {
    const config = parse({
      ...MINIMAL,
      postgres: {
        image: "r.example/pg:15-9",
        storageClass: "gp3-expandable",
        dataSize: "500Gi",
        backupsSize: "1Ti",
        adminEndpoint: "127.0.0.1:15432",
        adminSslMode: "require",
      },
      ops: { image: "r.example/ops:2" },
      monitoring: { enabled: "false", labels: { prometheus: "main" } },
    });
    expect(config.postgres).toMatchObject({
      image: "r.example/pg:15-9",
      storageClass: "gp3-expandable",
      dataSize: "500Gi",
      walArchiveSize: "50Gi",
      backupsSize: "1Ti",
      adminEndpoint: { host: "127.0.0.1", port: 15432 },
      adminSslMode: "require",
    });
    expect(config.ops.image).toBe("r.example/ops:2");
    expect(config.monitoring).toEqual({
      enabled: false,
      namespace: "monitoring",
      labels: { prometheus: "main" },
    });
    expect(parse({ ...MINIMAL, postgres: { adminEndpoint: "[::1]:5432" } }).postgres.adminEndpoint).toEqual({
      host: "::1",
      port: 5432,
    });
  });

  it.each([
    [{ postgres: { adminEndpoint: "localhost" } }, "postgres.adminEndpoint", 'must be "host:port"'],
    [{ postgres: { adminEndpoint: "db:70000" } }, "postgres.adminEndpoint", 'must be "host:port"'],
    [{ postgres: { dataSize: "lots" } }, "postgres.dataSize", "must be a memory quantity"],
    [{ postgres: { adminSslMode: "verify-ca" } }, "postgres.adminSslMode", "must be one of disable, prefer"],
    [{ postgres: { replicas: 2 } }, "postgres.replicas", ""],
    [{ ops: { image: "has space" } }, "ops.image", "must be a container image reference"],
    [{ monitoring: { namespace: "Not_A_Name" } }, "monitoring.namespace", "must be a Kubernetes name"],
  ])("refuses %j naming the key and the rule", (override, key, rule) => {
    const found = issues({ ...MINIMAL, ...override });
    expect(found.some((i) => i.startsWith(`${key}:`) && i.includes(rule))).toBe(true);
  });
});
