/**
 * PostgresServer (the Kubernetes target's PostgreSQL) under Pulumi mocks (test/helpers/pulumi-mocks.ts:
 * every registration recorded, custom resources echo their inputs; a RandomSecret's mocked result
 * is `pw-<resource name>`). Checked on the objects as they would be sent to the cluster: kinds and
 * names, volumes and their sizes, the configuration files against the shared templates' renderers,
 * secret handling and rotation, probes, the headless Service, the NetworkPolicy (evaluated), and the
 * schema of every object (test/helpers/k8s-validate.ts, offline).
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { type K8sObject, isK8s, kindName, objectOf, one } from "../helpers/k8s-objects";
import { assertValidK8sObject } from "../helpers/k8s-validate";
import { repoRoot } from "../../testkit/repo";
import {
  DYNAMIC,
  installMocks,
  isSecretInput,
  plain,
  promiseOf,
  registered,
  type Registration,
} from "../helpers/pulumi-mocks";

// The mocks must be in place before any resource is constructed (the imports below declare none).
const registrations = installMocks();

import { PostgresServer, type PostgresServerArgs } from "../../components/kubernetes/PostgresServer";
import { renderPostgresqlConf } from "../../lib/pg/cluster";
import { renderPgBackRestConf } from "../../lib/pg/pgbackrest";
import { renderTemplateFile } from "../../lib/templates/render";

const NS = "loomworks-prod";
const IMAGE = "registry.example.com/loomworks/postgres:15-pgbackrest-3";
const MONITORING_NS = "monitoring";

function baseArgs(overrides: Partial<PostgresServerArgs> = {}): PostgresServerArgs {
  return {
    namespace: NS,
    image: IMAGE,
    rotation: "2026-11",
    archiveTimeoutSeconds: 60,
    retentionFull: 2,
    monitoringNamespace: MONITORING_NS,
    ...overrides,
  };
}

interface Built {
  server: PostgresServer;
  regs: Registration[];
  objs: K8sObject[];
}

async function build(name: string, args: PostgresServerArgs): Promise<Built> {
  const first = registrations.length;
  const server = new PostgresServer(name, args);
  await registered(server);
  const regs = registrations.slice(first);
  return { server, regs, objs: regs.filter(isK8s).map(objectOf) };
}

function configMapOf(objs: K8sObject[]): K8sObject {
  const found = objs.filter((o) => o.kind === "ConfigMap");
  expect(found).toHaveLength(1);
  return found[0];
}

function randomSecrets(regs: Registration[]): Registration[] {
  return regs.filter((r) => r.type === `${DYNAMIC}RandomSecret`);
}

function randomSecret(regs: Registration[], name: string): Registration {
  const found = randomSecrets(regs).filter((r) => r.name === name);
  expect(found, name).toHaveLength(1);
  return found[0];
}

function podSpec(objs: K8sObject[]) {
  return one(objs, "StatefulSet", "postgres").spec.template.spec;
}

function container(objs: K8sObject[], name: string) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const found = (podSpec(objs).containers as any[]).filter((c) => c.name === name);
  expect(found, name).toHaveLength(1);
  return found[0];
}

// ---------------------------------------------------------------------------------------------
// NetworkPolicy evaluation (networking.k8s.io/v1 semantics the policy uses: pod and namespace
// selectors by matchLabels, ports with protocols; no policy selecting a pod = everything allowed).

interface Endpoint {
  namespace: string;
  labels: Record<string, string>;
}
interface Peer {
  podSelector?: { matchLabels?: Record<string, string> };
  namespaceSelector?: { matchLabels?: Record<string, string> };
}
interface Rule {
  from?: Peer[];
  to?: Peer[];
  ports?: { protocol?: string; port: number }[];
}

const selects = (
  selector: { matchLabels?: Record<string, string> } | undefined,
  labels: Record<string, string>,
) => Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);

function peerMatches(peer: Peer, policyNs: string, other: Endpoint): boolean {
  const nsOk = peer.namespaceSelector
    ? selects(peer.namespaceSelector, { "kubernetes.io/metadata.name": other.namespace })
    : other.namespace === policyNs;
  return nsOk && (peer.podSelector === undefined || selects(peer.podSelector, other.labels));
}

function admits(
  policies: K8sObject[],
  self: Endpoint,
  other: Endpoint,
  type: "Ingress" | "Egress",
  port: number,
  protocol: string,
): boolean {
  const selecting = policies.filter(
    (p) =>
      p.metadata.namespace === self.namespace &&
      (p.spec.policyTypes as string[]).includes(type) &&
      selects(p.spec.podSelector, self.labels),
  );
  if (selecting.length === 0) return true;
  return selecting.some((p) =>
    ((type === "Ingress" ? p.spec.ingress : p.spec.egress) as Rule[] | undefined)?.some((rule) => {
      const peers = type === "Ingress" ? rule.from : rule.to;
      const peerOk = peers === undefined || peers.some((peer) => peerMatches(peer, self.namespace, other));
      const portOk =
        rule.ports === undefined ||
        rule.ports.some((r) => r.port === port && (r.protocol ?? "TCP") === protocol);
      return peerOk && portOk;
    }),
  );
}

/** Whether `from` may open a connection to `to` (the egress of one and the ingress of the other). */
function allowed(policies: K8sObject[], from: Endpoint, to: Endpoint, port: number, protocol = "TCP") {
  return (
    admits(policies, from, to, "Egress", port, protocol) &&
    admits(policies, to, from, "Ingress", port, protocol)
  );
}

// ---------------------------------------------------------------------------------------------

const POSTGRES_POD = {
  namespace: NS,
  labels: { "app.kubernetes.io/name": "postgres", "app.kubernetes.io/component": "database" },
};
const ERP_POD = {
  namespace: NS,
  labels: { "app.kubernetes.io/name": "loomworks-erp", "app.kubernetes.io/component": "erp" },
};
const UPDATE_POD = {
  namespace: NS,
  labels: { "app.kubernetes.io/name": "loomworks-erp", "app.kubernetes.io/component": "module-update" },
};
const OPS_POD = {
  namespace: NS,
  labels: { "app.kubernetes.io/name": "loomworks-ops", "app.kubernetes.io/component": "ops" },
};
const REDIS_POD = {
  namespace: NS,
  labels: { "app.kubernetes.io/name": "loomworks-redis", "app.kubernetes.io/component": "session-store" },
};
const PROMETHEUS_POD = { namespace: MONITORING_NS, labels: { "app.kubernetes.io/name": "prometheus" } };
const FOREIGN_ERP_POD = { ...ERP_POD, namespace: "someone-else" };
const DNS_POD = { namespace: "kube-system", labels: { "k8s-app": "kube-dns" } };

// The mocked RandomSecret results (`pw-<resource name>`) of the server named "pg".
const SUPERUSER_PASSWORD = "pw-pg-superuser-password";
const REPLICATION_PASSWORD = "pw-pg-replication-password";
const MONITOR_PASSWORD = "pw-pg-monitor-password";
const CIPHER_PASS = "pw-pg-backup-cipher-pass";

describe("PostgresServer with the defaults", () => {
  let built: Built;
  let objs: K8sObject[];
  beforeAll(async () => {
    built = await build("pg", baseArgs());
    objs = built.objs;
  });

  it("creates the StatefulSet, its volumes, configuration, Secret, headless Service and NetworkPolicy", () => {
    expect(
      objs
        .map(kindName)
        .map((n) => n.replace(/-[0-9a-f]{10}$/, "-<hash>"))
        .sort(),
    ).toEqual([
      "ConfigMap/loomworks-postgres-config-<hash>",
      "NetworkPolicy/postgres",
      "PersistentVolumeClaim/postgres-backups",
      "PersistentVolumeClaim/postgres-data",
      "PersistentVolumeClaim/postgres-wal-archive",
      "Secret/loomworks-postgres-secrets",
      "Service/postgres",
      "StatefulSet/postgres",
    ]);
    for (const o of objs) expect(o.metadata.namespace, kindName(o)).toBe(NS);
    expect(
      randomSecrets(built.regs)
        .map((r) => r.name)
        .sort(),
    ).toEqual([
      "pg-backup-cipher-pass",
      "pg-monitor-password",
      "pg-replication-password",
      "pg-superuser-password",
    ]);
    const component = built.regs.filter((r) => !r.custom);
    expect(component.map((r) => `${r.type}::${r.name}`)).toEqual(["loomworks:kubernetes:PostgresServer::pg"]);
  });

  it("renders every object valid against its Kubernetes schema", () => {
    expect(objs.length).toBeGreaterThan(0);
    for (const o of objs) expect(() => assertValidK8sObject(o), kindName(o)).not.toThrow();
  });

  it("claims 100Gi data, 50Gi WAL archive and 200Gi backups, ReadWriteOnce, without waiting for binding", () => {
    const sizes = Object.fromEntries(
      objs
        .filter((o) => o.kind === "PersistentVolumeClaim")
        .map((o) => [o.metadata.name, o.spec.resources.requests.storage]),
    );
    expect(sizes).toEqual({
      "postgres-data": "100Gi",
      "postgres-wal-archive": "50Gi",
      "postgres-backups": "200Gi",
    });
    for (const o of objs.filter((x) => x.kind === "PersistentVolumeClaim")) {
      expect(o.spec.accessModes).toEqual(["ReadWriteOnce"]);
      // The cluster's default StorageClass when none is configured.
      expect(o.spec.storageClassName).toBeUndefined();
      expect(o.metadata.annotations?.["pulumi.com/skipAwait"]).toBe("true");
    }
  });

  it("runs one pod of a StatefulSet governed by the headless Service, on the three claims", () => {
    const sts = one(objs, "StatefulSet", "postgres");
    expect(sts.spec).toMatchObject({
      serviceName: "postgres",
      replicas: 1,
      podManagementPolicy: "OrderedReady",
      updateStrategy: { type: "RollingUpdate" },
      selector: { matchLabels: POSTGRES_POD.labels },
    });
    expect(sts.spec.volumeClaimTemplates).toBeUndefined();
    expect(sts.spec.template.metadata.labels).toMatchObject(POSTGRES_POD.labels);
    const pod = podSpec(objs);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 999, fsGroup: 999 });
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(120);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers.map((c: { name: string }) => c.name)).toEqual([
      "postgres",
      "postgres-roles",
      "postgres-exporter",
    ]);
    const claims = Object.fromEntries(
      pod.volumes
        .filter((v: { persistentVolumeClaim?: unknown }) => v.persistentVolumeClaim)
        .map((v: { name: string; persistentVolumeClaim: { claimName: string } }) => [
          v.name,
          v.persistentVolumeClaim.claimName,
        ]),
    );
    expect(claims).toEqual({
      data: "postgres-data",
      "wal-archive": "postgres-wal-archive",
      backups: "postgres-backups",
    });
    // Every mount names a volume of the pod.
    const volumes = new Set(pod.volumes.map((v: { name: string }) => v.name));
    for (const c of pod.containers)
      for (const m of c.volumeMounts) expect(volumes.has(m.name), `${c.name}: ${m.name}`).toBe(true);
  });

  it("mounts the volumes where the image's pgBackRest layout expects them", () => {
    const pg = container(objs, "postgres");
    expect(pg.image).toBe(IMAGE);
    const mounts = Object.fromEntries(
      pg.volumeMounts.map((m: { name: string; mountPath: string }) => [m.name, m.mountPath]),
    );
    expect(mounts).toMatchObject({
      data: "/var/lib/postgresql/data",
      backups: "/var/lib/pgbackrest",
      "wal-archive": "/var/lib/pgbackrest/archive",
      config: "/etc/postgresql",
      "pgbackrest-config": "/etc/pgbackrest",
      socket: "/var/run/postgresql",
      tmp: "/tmp",
    });
    // The image's entrypoint stays (initdb on an empty volume): arguments only, no command.
    expect(pg.command).toBeUndefined();
    expect(pg.args).toEqual([
      "postgres",
      "-c",
      "config_file=/etc/postgresql/postgresql.conf",
      "-c",
      "hba_file=/etc/postgresql/pg_hba.conf",
      "-c",
      "ident_file=/etc/postgresql/pg_ident.conf",
    ]);
    expect(pg.env).toContainEqual({ name: "PGDATA", value: "/var/lib/postgresql/data/pgdata" });
    expect(pg.securityContext).toMatchObject({ allowPrivilegeEscalation: false, runAsNonRoot: true });
  });

  it("sizes the container from the defaults: requests 1 CPU / 2Gi, limits 2 CPU / 4Gi", () => {
    expect(container(objs, "postgres").resources).toEqual({
      requests: { cpu: "1", memory: "2Gi" },
      limits: { cpu: "2", memory: "4Gi" },
    });
  });

  it("renders postgresql.conf into the ConfigMap exactly as the shared template's renderer does", () => {
    const conf = configMapOf(objs).data?.["postgresql.conf"];
    const expected = renderPostgresqlConf({
      port: 5432,
      listenAddresses: "*",
      archiveTimeoutSeconds: 60,
      stanza: "loomworks",
      pgbackrestConfig: "/etc/pgbackrest/pgbackrest.conf",
      pgbackrestBin: "/usr/bin/pgbackrest",
      socketDir: "/var/run/postgresql",
      logDirectory: "log",
      // A quarter and three quarters of the 4Gi limit.
      sharedBuffers: "1024MB",
      effectiveCacheSize: "3072MB",
      maintenanceWorkMem: "256MB",
    });
    expect(conf).toBe(expected);
    expect(built.server.postgresqlConf).toBe(expected);
    expect(conf).toMatch(
      /^archive_command = '\/usr\/bin\/pgbackrest --config=\/etc\/pgbackrest\/pgbackrest\.conf --stanza=loomworks archive-push %p'$/m,
    );
    expect(conf).toMatch(/^archive_timeout = 60$/m);
    expect(conf).toMatch(/^archive_mode = on$/m);
    expect(conf).toMatch(/^listen_addresses = '\*'$/m);
  });

  it("renders pg_hba.conf from the shared template plus SCRAM logins from the pod network", () => {
    const data = configMapOf(objs).data ?? {};
    expect(Object.keys(data).sort()).toEqual(["pg_hba.conf", "pg_ident.conf", "postgresql.conf"]);
    const local = renderTemplateFile("pg_hba.conf.tmpl", { extraHostRules: "" });
    // The local target's rules come first, unchanged.
    expect(data["pg_hba.conf"].startsWith(local.trimEnd())).toBe(true);
    const rules = data["pg_hba.conf"]
      .split("\n")
      .filter((l) => /^(local|host)\s/.test(l))
      .map((l) => l.split(/\s+/));
    expect(rules).toContainEqual(["host", "all", "all", "0.0.0.0/0", "scram-sha-256"]);
    expect(rules).toContainEqual([
      "host",
      "replication",
      "loomworks_replication",
      "0.0.0.0/0",
      "scram-sha-256",
    ]);
    // Passwords only as SCRAM; the monitoring role only from inside the pod (first match wins).
    const methods = new Set(rules.filter((r) => r[0] === "host").map((r) => r[r.length - 1]));
    expect([...methods].sort()).toEqual(["reject", "scram-sha-256"]);
    const firstFor = (user: string, address: string) =>
      rules.find((r) => r[0] === "host" && (r[2] === user || r[2] === "all") && r[3] === address)?.[4];
    expect(firstFor("loomworks_monitor", "127.0.0.1/32")).toBe("scram-sha-256");
    expect(firstFor("loomworks_monitor", "0.0.0.0/0")).toBe("reject");
    expect(firstFor("loomworks_erp", "0.0.0.0/0")).toBe("scram-sha-256");
    expect(data["pg_ident.conf"]).toBe(renderTemplateFile("pg_ident.conf.tmpl", {}));
  });

  it("names the ConfigMap and annotates the pod with the configuration's content hash", () => {
    const cm = configMapOf(objs);
    const hash = cm.metadata.name.slice("loomworks-postgres-config-".length);
    expect(hash).toMatch(/^[0-9a-f]{10}$/);
    const template = one(objs, "StatefulSet", "postgres").spec.template;
    expect(template.metadata.annotations["loomworks/config-hash"]).toBe(hash);
    const configVolume = template.spec.volumes.find((v: { name: string }) => v.name === "config");
    expect(configVolume.configMap.name).toBe(cm.metadata.name);
  });

  it("keeps every secret in the Secret, as Pulumi secrets, and out of every other object", async () => {
    const reg = built.regs.find((r) => isK8s(r) && objectOf(r).kind === "Secret");
    expect(reg).toBeDefined();
    const raw = (reg as Registration).inputs.stringData as Record<string, unknown>;
    const stringData = plain(raw) as Record<string, string>;
    expect(Object.keys(stringData).sort()).toEqual([
      "backup-cipher-pass",
      "monitor-password",
      "pgbackrest.conf",
      "replication-password",
      "superuser-password",
    ]);
    for (const key of Object.keys(stringData)) {
      expect(isSecretInput(raw) || isSecretInput(raw[key]), key).toBe(true);
    }
    expect(stringData).toMatchObject({
      "superuser-password": SUPERUSER_PASSWORD,
      "replication-password": REPLICATION_PASSWORD,
      "monitor-password": MONITOR_PASSWORD,
      "backup-cipher-pass": CIPHER_PASS,
    });
    // Anywhere else (ConfigMap, env values, annotations, labels, probes): none of the values.
    const secrets = [SUPERUSER_PASSWORD, REPLICATION_PASSWORD, MONITOR_PASSWORD, CIPHER_PASS];
    for (const o of objs.filter((x) => x.kind !== "Secret")) {
      const text = JSON.stringify(o);
      for (const s of secrets) expect(text.includes(s), `${kindName(o)} holds ${s}`).toBe(false);
    }
    expect(await pulumi.isSecret(built.server.superuserPassword)).toBe(true);
    expect(await promiseOf(built.server.superuserPassword)).toBe(SUPERUSER_PASSWORD);
  });

  it("puts pgbackrest.conf, with the repository's cipher passphrase, in the Secret", () => {
    const secret = one(objs, "Secret", "loomworks-postgres-secrets");
    expect(secret.stringData?.["pgbackrest.conf"]).toBe(
      renderPgBackRestConf({
        repoPath: "/var/lib/pgbackrest",
        retentionFull: 2,
        spoolPath: "/var/spool/pgbackrest",
        lockPath: "/tmp/pgbackrest",
        logPath: "/var/log/pgbackrest",
        stanza: "loomworks",
        pgPath: "/var/lib/postgresql/data/pgdata",
        pgPort: 5432,
        pgSocketPath: "/var/run/postgresql",
        encryptionPassphrase: CIPHER_PASS,
      }),
    );
    expect(secret.stringData?.["pgbackrest.conf"]).toMatch(/^repo1-cipher-type=aes-256-cbc$/m);
    const volume = podSpec(objs).volumes.find((v: { name: string }) => v.name === "pgbackrest-config");
    expect(volume.secret).toMatchObject({
      secretName: "loomworks-postgres-secrets",
      items: [{ key: "pgbackrest.conf", path: "pgbackrest.conf" }],
    });
  });

  it("passes secrets to the containers as files only, the ones loomworks-sync-roles reads", () => {
    for (const c of podSpec(objs).containers) {
      for (const e of c.env ?? []) {
        expect(e.valueFrom, `${c.name} ${e.name}`).toBeUndefined();
        expect(e.value, `${c.name} ${e.name}`).not.toMatch(/^pw-/);
      }
    }
    const pg = container(objs, "postgres");
    expect(pg.env).toContainEqual({
      name: "POSTGRES_PASSWORD_FILE",
      value: "/var/run/secrets/loomworks-postgres/superuser-password",
    });
    const passwords = podSpec(objs).volumes.find((v: { name: string }) => v.name === "passwords");
    const mounted = passwords.secret.items.map((i: { path: string }) => i.path).sort();
    const script = readFileSync(
      path.join(repoRoot, "docker", "postgres", "scripts", "loomworks-sync-roles"),
      "utf8",
    );
    const read = /^files=\(([^)]*)\)$/m.exec(script)?.[1].split(/\s+/).sort();
    expect(mounted).toEqual(read);
    const exporter = container(objs, "postgres-exporter");
    expect(exporter.env).toContainEqual({
      name: "DATA_SOURCE_PASS_FILE",
      value: "/var/run/secrets/loomworks-postgres/monitor-password",
    });
    expect(exporter.env).toContainEqual({ name: "DATA_SOURCE_USER", value: "loomworks_monitor" });
  });

  it("probes PostgreSQL patiently: a long startup, pg_isready for readiness, TCP for liveness", () => {
    const pg = container(objs, "postgres");
    const window = (p: { periodSeconds: number; failureThreshold: number }) =>
      p.periodSeconds * p.failureThreshold;
    expect(pg.startupProbe.exec.command).toEqual([
      "pg_isready",
      "-q",
      "-h",
      "127.0.0.1",
      "-p",
      "5432",
      "-U",
      "postgres",
    ]);
    expect(window(pg.startupProbe)).toBeGreaterThanOrEqual(1800);
    expect(pg.readinessProbe.exec.command).toContain("127.0.0.1");
    expect(pg.readinessProbe.exec.command[0]).toBe("pg_isready");
    expect(pg.livenessProbe.tcpSocket.port).toBe(5432);
    expect(pg.livenessProbe.initialDelaySeconds).toBeGreaterThanOrEqual(30);
    expect(window(pg.livenessProbe)).toBeGreaterThanOrEqual(60);
    for (const probe of [pg.startupProbe, pg.readinessProbe, pg.livenessProbe]) {
      expect(probe.timeoutSeconds).toBeLessThan(probe.periodSeconds);
    }
    // The fast shutdown's own timeout fits the grace period.
    const stop = pg.lifecycle.preStop.exec.command as string[];
    expect(stop.slice(0, 2)).toEqual(["pg_ctl", "stop"]);
    expect(stop).toContain("fast");
    expect(Number(stop[stop.indexOf("-t") + 1])).toBeLessThan(podSpec(objs).terminationGracePeriodSeconds);
    const roles = container(objs, "postgres-roles");
    expect(roles.readinessProbe.exec.command).toEqual(["loomworks-sync-roles", "--check"]);
  });

  it("runs the pinned postgres_exporter on port 9187 named metrics, restricted", () => {
    const exporter = container(objs, "postgres-exporter");
    expect(exporter.image).toBe("quay.io/prometheuscommunity/postgres-exporter:v0.15.0");
    expect(exporter.ports).toEqual([{ name: "metrics", containerPort: 9187, protocol: "TCP" }]);
    expect(exporter.args).toContain("--web.listen-address=:9187");
    expect(exporter.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
  });

  it("exposes PostgreSQL through a headless Service of ready pods", async () => {
    const svc = one(objs, "Service", "postgres");
    expect(svc.spec).toEqual({
      clusterIP: "None",
      selector: POSTGRES_POD.labels,
      publishNotReadyAddresses: false,
      ports: [
        { name: "postgresql", port: 5432, targetPort: "postgresql", protocol: "TCP" },
        { name: "metrics", port: 9187, targetPort: "metrics", protocol: "TCP" },
      ],
    });
    expect(await promiseOf(built.server.serviceHost)).toBe(`postgres.${NS}.svc`);
    expect(await promiseOf(built.server.port)).toBe(5432);
    expect(built.server.secretName).toBe("loomworks-postgres-secrets");
  });

  it("gives the superuser's DSN for an operator's endpoint, as a secret", async () => {
    const dsn = built.server.adminDsn("127.0.0.1:15432");
    expect(await pulumi.isSecret(dsn)).toBe(true);
    expect(await promiseOf(dsn)).toBe(`postgres://postgres:${SUPERUSER_PASSWORD}@127.0.0.1:15432/postgres`);
  });

  it("admits PostgreSQL clients from the ERP, its update Job and the ops jobs only, metrics from Prometheus", () => {
    const policies = objs.filter((o) => o.kind === "NetworkPolicy");
    for (const client of [ERP_POD, UPDATE_POD, OPS_POD]) {
      expect(
        allowed(policies, client, POSTGRES_POD, 5432),
        client.labels["app.kubernetes.io/component"],
      ).toBe(true);
    }
    for (const stranger of [REDIS_POD, FOREIGN_ERP_POD, PROMETHEUS_POD]) {
      expect(allowed(policies, stranger, POSTGRES_POD, 5432), JSON.stringify(stranger)).toBe(false);
    }
    expect(allowed(policies, PROMETHEUS_POD, POSTGRES_POD, 9187)).toBe(true);
    expect(allowed(policies, ERP_POD, POSTGRES_POD, 9187)).toBe(false);
    // Egress: DNS only.
    expect(allowed(policies, POSTGRES_POD, DNS_POD, 53, "UDP")).toBe(true);
    expect(allowed(policies, POSTGRES_POD, DNS_POD, 53, "TCP")).toBe(true);
    expect(allowed(policies, POSTGRES_POD, ERP_POD, 8069)).toBe(false);
    expect(allowed(policies, POSTGRES_POD, { namespace: "x", labels: {} }, 443)).toBe(false);
  });
});

describe("PostgresServer with overrides", () => {
  it("takes sizes and a storage class from config; a new size updates the same claims in place", async () => {
    const before = await build("pg-sizes-a", baseArgs());
    const after = await build(
      "pg-sizes-b",
      baseArgs({ storage: { storageClass: "gp3-expandable", dataSize: "150Gi", backupsSize: "400Gi" } }),
    );
    const claims = (b: Built) =>
      b.regs.filter((r) => isK8s(r) && objectOf(r).kind === "PersistentVolumeClaim");
    const sizes = (b: Built) =>
      Object.fromEntries(
        claims(b).map((r) => [objectOf(r).metadata.name, objectOf(r).spec.resources.requests.storage]),
      );
    expect(sizes(after)).toEqual({
      "postgres-data": "150Gi",
      "postgres-wal-archive": "50Gi",
      "postgres-backups": "400Gi",
    });
    // Same object names, same resource names (but for the component's prefix), same spec but the
    // size and class: the provider updates the claim in place (spec.resources is mutable).
    const shape = (b: Built, prefix: string) =>
      claims(b).map((r) => {
        const o = objectOf(r);
        return { resource: r.name.slice(prefix.length), name: o.metadata.name, modes: o.spec.accessModes };
      });
    expect(shape(after, "pg-sizes-b")).toEqual(shape(before, "pg-sizes-a"));
    for (const r of claims(after)) expect(objectOf(r).spec.storageClassName).toBe("gp3-expandable");
  });

  it("takes resources, the exporter image, pull secrets and node placement from config", async () => {
    const { objs } = await build(
      "pg-resources",
      baseArgs({
        resources: { requests: { cpu: "2", memory: "8Gi" }, limits: { cpu: "4", memory: "16Gi" } },
        exporterImage: "registry.example.com/mirror/postgres-exporter:v0.15.0",
        imagePullSecrets: ["registry-credentials"],
        nodeSelector: { "node.kubernetes.io/pool": "databases" },
        tolerations: [{ key: "dedicated", operator: "Equal", value: "databases", effect: "NoSchedule" }],
      }),
    );
    for (const o of objs) expect(() => assertValidK8sObject(o), kindName(o)).not.toThrow();
    expect(container(objs, "postgres").resources).toEqual({
      requests: { cpu: "2", memory: "8Gi" },
      limits: { cpu: "4", memory: "16Gi" },
    });
    expect(container(objs, "postgres-exporter").image).toBe(
      "registry.example.com/mirror/postgres-exporter:v0.15.0",
    );
    const pod = podSpec(objs);
    expect(pod.imagePullSecrets).toEqual([{ name: "registry-credentials" }]);
    expect(pod.nodeSelector).toEqual({ "node.kubernetes.io/pool": "databases" });
    expect(pod.tolerations).toHaveLength(1);
    // postgresql.conf follows the memory limit.
    expect(configMapOf(objs).data?.["postgresql.conf"]).toMatch(/^shared_buffers = 4096MB$/m);
  });

  it("uses a configured backup passphrase instead of generating one", async () => {
    const passphrase = "operator-given-passphrase-0123456789";
    const { regs, objs } = await build(
      "pg-passphrase",
      baseArgs({ encryptionPassphrase: pulumi.secret(passphrase) }),
    );
    expect(randomSecrets(regs).map((r) => r.name)).not.toContain("pg-passphrase-backup-cipher-pass");
    const secret = one(objs, "Secret", "loomworks-postgres-secrets");
    expect(secret.stringData?.["backup-cipher-pass"]).toBe(passphrase);
    expect(secret.stringData?.["pgbackrest.conf"]).toMatch(
      new RegExp(`^repo1-cipher-pass=${passphrase}$`, "m"),
    );
    for (const o of objs.filter((x) => x.kind !== "Secret"))
      expect(JSON.stringify(o)).not.toContain(passphrase);
  });

  it("without a monitoring namespace, admits nobody to the metrics port", async () => {
    const { objs } = await build("pg-no-monitoring", baseArgs({ monitoringNamespace: undefined }));
    const policies = objs.filter((o) => o.kind === "NetworkPolicy");
    expect(allowed(policies, PROMETHEUS_POD, POSTGRES_POD, 9187)).toBe(false);
    expect(allowed(policies, ERP_POD, POSTGRES_POD, 5432)).toBe(true);
  });

  it("rotates the superuser and replication passwords with `rotation`, never the monitoring one or the backup cipher", async () => {
    const first = await build("pg-rot", baseArgs({ rotation: "2026-11" }));
    const second = await build("pg-rot2", baseArgs({ rotation: "2027-05" }));
    for (const suffix of ["superuser-password", "replication-password"]) {
      const a = plain(randomSecret(first.regs, `pg-rot-${suffix}`).inputs) as {
        keepers: Record<string, string>;
      };
      const b = plain(randomSecret(second.regs, `pg-rot2-${suffix}`).inputs) as {
        keepers: Record<string, string>;
      };
      // RandomSecret replaces its value when any keeper changes.
      expect(a.keepers, suffix).toEqual({ platformCredentialRotation: "2026-11" });
      expect(b.keepers, suffix).toEqual({ platformCredentialRotation: "2027-05" });
    }
    // The exporter reads its password once at start: the monitoring password stays (pod-local role).
    expect(plain(randomSecret(first.regs, "pg-rot-monitor-password").inputs)).toEqual(
      plain(randomSecret(second.regs, "pg-rot2-monitor-password").inputs),
    );
    const cipherA = plain(randomSecret(first.regs, "pg-rot-backup-cipher-pass").inputs);
    const cipherB = plain(randomSecret(second.regs, "pg-rot2-backup-cipher-pass").inputs);
    expect(cipherA).toEqual(cipherB);
    expect((cipherA as { keepers: Record<string, string> }).keepers).toEqual({});
    // The pod is not restarted (open sessions stay; the roles sidecar applies the new passwords from
    // the updated Secret files): the pod template, the configuration and its ConfigMap stay.
    const template = (b: Built) => one(b.objs, "StatefulSet", "postgres").spec.template;
    expect(JSON.stringify(template(second))).toBe(JSON.stringify(template(first)));
    expect(configMapOf(second.objs).metadata.name).toBe(configMapOf(first.objs).metadata.name);
  });

  it("refuses a memory limit too small to size PostgreSQL from", () => {
    expect(
      () =>
        new PostgresServer(
          "pg-tiny",
          baseArgs({
            resources: { requests: { cpu: "1", memory: "128Mi" }, limits: { cpu: "1", memory: "128Mi" } },
          }),
        ),
    ).toThrow(/at least 256Mi \(got 128Mi\)/);
  });
});
