/**
 * The `prod` stack's program under Pulumi mocks: the configuration of Pulumi.prod.yaml (read from
 * the file, through the same validation `pulumi up` runs) builds the whole platform — PostgreSQL,
 * the ERP, routing, scheduled jobs, monitoring and, with tenants declared, their databases and a
 * restore Job. Every Kubernetes object it renders is checked against its schema (offline), and
 * secrets stay out of every object that is not a Secret.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { load as loadYaml } from "js-yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { imagePaths, imageUser } from "../helpers/dockerfile-lint";
import { type K8sObject, isK8s, objectOf } from "../helpers/k8s-objects";
import { odooConfPaths, unprovidedConfPaths } from "../helpers/odoo-conf-paths";
import { k8sSchemaErrors } from "../helpers/k8s-validate";
import { repoRoot } from "../../testkit/repo";
import {
  installMocks,
  isSecretInput,
  plain,
  promiseOf,
  registered,
  type Registration,
} from "../helpers/pulumi-mocks";

const registrations = installMocks();

import type { PlatformComponent } from "../../components/platform/platform";
import { declarePlatform } from "../../infra/platform";
import { kubernetesSnapshotRefusal } from "../../infra/config/kubernetes";
import { ConfigError, parseStackConfig } from "../../infra/config/load";
import { parseOdooConfig } from "../../lib/odoo/config";
import { kubectlRunArgs, type KubernetesCommandRunner } from "../../lib/tenant/templatePod";

const ERP_DOCKERFILE = path.join(repoRoot, "docker", "Dockerfile");

/** The `loomworks:*` values of Pulumi.prod.yaml, as `pulumi config` hands them to the program. */
function prodConfig(): { platform: Record<string, unknown>; tenants?: unknown; tiers?: unknown } {
  const file = loadYaml(readFileSync(path.join(repoRoot, "Pulumi.prod.yaml"), "utf8")) as {
    config: Record<string, unknown>;
  };
  return {
    platform: file.config["loomworks:platform"] as Record<string, unknown>,
    tenants: file.config["loomworks:tenants"],
    tiers: file.config["loomworks:tiers"],
  };
}

/** The inputs of each resource as the program declared them (outputs, with the resources they come from). */
const declared = new Map<string, Record<string, unknown>>();
/** The resources each resource was declared to depend on (`type::name`). */
const dependencies = new Map<string, string[]>();
/** The resources declared with retainOnDelete (`type::name`). */
const retained = new Set<string>();
const recordInputs: pulumi.ResourceTransformation = (args) => {
  declared.set(`${args.type}::${args.name}`, args.props);
  if (args.opts.retainOnDelete === true) retained.add(`${args.type}::${args.name}`);
  const dependsOn = args.opts.dependsOn;
  const list = Array.isArray(dependsOn) ? dependsOn : dependsOn ? [dependsOn] : [];
  dependencies.set(
    `${args.type}::${args.name}`,
    list.map((r) => {
      const internals = r as unknown as { __pulumiType: string; __name: string };
      return `${internals.__pulumiType}::${internals.__name}`;
    }),
  );
  return undefined;
};

/** `type::name` of the resources an output's value is computed from (what the engine orders it after). */
async function sourcesOf(output: unknown): Promise<string[]> {
  const all = await (output as { allResources: () => Promise<Set<pulumi.Resource>> }).allResources();
  return [...all].map((r) => {
    const internals = r as unknown as { __pulumiType: string; __name: string };
    return `${internals.__pulumiType}::${internals.__name}`;
  });
}

async function build(
  name: string,
  raw: ReturnType<typeof prodConfig>,
): Promise<[PlatformComponent, Registration[]]> {
  const first = registrations.length;
  const platform = declarePlatform(
    name,
    { config: parseStackConfig(raw), projectDir: repoRoot },
    { transformations: [recordInputs] },
  );
  await registered(platform);
  await promiseOf(platform.postgres.adminDsn);
  // Outputs resolve asynchronously: give the last registrations (restore Job, routes) time to land.
  await new Promise((r) => setTimeout(r, 50));
  return [platform, registrations.slice(first)];
}

describe("the prod stack as declared in Pulumi.prod.yaml", () => {
  let regs: Registration[] = [];
  let objects: K8sObject[] = [];
  beforeAll(async () => {
    [, regs] = await build("prod", prodConfig());
    objects = regs.filter(isK8s).map(objectOf);
  });

  it("renders the whole platform", () => {
    const kinds = new Set(objects.map((o) => o.kind));
    for (const kind of [
      "Namespace",
      "StatefulSet",
      "PersistentVolumeClaim",
      "ConfigMap",
      "Secret",
      "Service",
      "Deployment",
      "HorizontalPodAutoscaler",
      "PodDisruptionBudget",
      "NetworkPolicy",
      "CronJob",
      "ServiceAccount",
      "Role",
      "RoleBinding",
      "ServiceMonitor",
      "PrometheusRule",
      "Gateway",
      "HTTPRoute",
      "Certificate",
      "ClusterIssuer",
    ]) {
      expect(kinds, kind).toContain(kind);
    }
    const claims = objects.filter((o) => o.kind === "PersistentVolumeClaim").map((o) => o.metadata.name);
    expect(claims.sort()).toEqual([
      "loomworks-filestore",
      "postgres-backups",
      "postgres-data",
      "postgres-wal-archive",
    ]);
    const cronJobs = objects.filter((o) => o.kind === "CronJob").map((o) => o.metadata.name);
    expect(cronJobs).toEqual(expect.arrayContaining(["loomworks-backup-full", "loomworks-backup-diff"]));
  });

  it("keeps the namespace on destroy with the retained claims in it (deleting it would delete them)", () => {
    const claims = [...retained].filter((k) => k.startsWith("kubernetes:core/v1:PersistentVolumeClaim::"));
    expect(claims.length).toBeGreaterThan(0);
    const namespaces = [...declared.keys()].filter((k) => k.startsWith("kubernetes:core/v1:Namespace::"));
    expect(namespaces.length).toBeGreaterThan(0);
    for (const ns of namespaces) expect(retained, ns).toContain(ns);
  });

  it("every Kubernetes object passes its schema", () => {
    expect(objects.length).toBeGreaterThan(30);
    const problems = objects.flatMap((o) =>
      k8sSchemaErrors(o).map((e) => `${o.kind}/${o.metadata.name}: ${e}`),
    );
    expect(problems).toEqual([]);
  });

  it("alerts on the backup CronJobs it declares (names taken from the rendered rules)", () => {
    const rules = objects.filter((o) => o.kind === "PrometheusRule");
    const exprs = JSON.stringify(rules.map((r) => r.spec));
    const named = [...exprs.matchAll(/cronjob=~?\\"([^"\\]+)\\"/g)].flatMap((m) => m[1].split("|"));
    expect(named.length).toBeGreaterThan(0);
    const cronJobs = objects.filter((o) => o.kind === "CronJob").map((o) => o.metadata.name);
    for (const name of named) expect(cronJobs, name).toContain(name);
  });

  it("bounds pgbackrest in the PostgreSQL pod by each CronJob's deadline", () => {
    const cronJobs = objects.filter((o) => o.kind === "CronJob");
    expect(cronJobs.length).toBeGreaterThanOrEqual(6);
    for (const cj of cronJobs) {
      const job = cj.spec.jobTemplate.spec;
      const env = job.template.spec.containers[0].env as { name: string; value?: string }[];
      const timeout = env.find((e) => e.name === "LOOMWORKS_PGBACKREST_TIMEOUT_SECONDS");
      expect(Number(timeout?.value), cj.metadata.name).toBe(job.activeDeadlineSeconds);
    }
  });

  it("runs the ERP with JSON logs and points it at the StatefulSet's headless Service", () => {
    const config = objects.find(
      (o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("loomworks-erp-config"),
    );
    const conf = Object.values(config?.data ?? {}).join("\n");
    expect(conf).toMatch(/^db_host = postgres\.loomworks\.svc$/m);
    expect(conf).toMatch(/^server_wide_modules = .*loomworks_json_logging/m);
    const erp = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "loomworks-erp");
    const env = erp?.spec.template.spec.containers[0].env as { name: string; value?: string }[];
    expect(env).toContainEqual({ name: "LOOMWORKS_LOG_FORMAT", value: "json" });
    const service = objects.find((o) => o.kind === "Service" && o.metadata.name === "postgres");
    expect(service?.spec.clusterIP).toBe("None");
  });

  it("sends every password as a secret and never puts one in a non-Secret object", async () => {
    const secrets = regs.filter((r) => isK8s(r) && objectOf(r).kind === "Secret");
    expect(secrets.length).toBeGreaterThanOrEqual(2);
    const passwords: string[] = [];
    for (const r of secrets) {
      const stringData = r.inputs.stringData ?? {};
      // Either the whole map is one secret, or each value is.
      const wholeMapSecret = isSecretInput(stringData);
      for (const [key, value] of Object.entries(plain(stringData) as Record<string, unknown>)) {
        const raw = wholeMapSecret ? undefined : (stringData as Record<string, unknown>)[key];
        expect(wholeMapSecret || isSecretInput(raw), `${objectOf(r).metadata.name}.${key}`).toBe(true);
        const text = String(value);
        if (/password|passwd|pass$/.test(key) && text.length >= 16) passwords.push(text);
      }
    }
    expect(passwords.length).toBeGreaterThanOrEqual(4);
    const nonSecrets = JSON.stringify(objects.filter((o) => o.kind !== "Secret"));
    for (const p of passwords) expect(nonSecrets).not.toContain(p);
  });
});

describe("the prod stack with AI provider keys (platform.ai.keys)", () => {
  const KEYS = { OPENAI_API_KEY: "sk-prod-openai-0123456789", COHERE_API: "cohere-prod-0123456789" };
  let regs: Registration[] = [];
  let objects: K8sObject[] = [];
  beforeAll(async () => {
    const raw = prodConfig();
    [, regs] = await build("prod-ai", { ...raw, platform: { ...raw.platform, ai: { keys: KEYS } } });
    objects = regs.filter(isK8s).map(objectOf);
  });

  it("sends the keys as secrets in loomworks-ai-keys only: in no ConfigMap, in no other object", () => {
    const holders = regs.filter((r) => isK8s(r) && JSON.stringify(plain(r.inputs)).includes(KEYS.COHERE_API));
    expect(holders.map((r) => `${objectOf(r).kind}/${objectOf(r).metadata.name}`)).toEqual([
      "Secret/loomworks-ai-keys",
    ]);
    const raw = holders[0].inputs.stringData as Record<string, unknown>;
    for (const name of Object.keys(KEYS))
      expect(isSecretInput(raw) || isSecretInput(raw[name]), name).toBe(true);
    const configMaps = JSON.stringify(objects.filter((o) => o.kind === "ConfigMap"));
    for (const value of Object.values(KEYS)) expect(configMaps).not.toContain(value);
  });

  it("gives the ERP Deployment's container the Secret as environment, and only that Deployment", () => {
    const withEnvFrom = objects.filter((o) => JSON.stringify(o.spec ?? {}).includes('"loomworks-ai-keys"'));
    expect(withEnvFrom.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(["Deployment/loomworks-erp"]);
    const erp = (withEnvFrom[0].spec.template.spec.containers as { name: string; envFrom?: unknown }[]).find(
      (c) => c.name === "erp",
    );
    expect(erp?.envFrom).toEqual([{ secretRef: { name: "loomworks-ai-keys" } }]);
    expect(objects.flatMap((o) => k8sSchemaErrors(o))).toEqual([]);
  });
});

describe("the prod stack with tenants (provisioned through the admin endpoint)", () => {
  let platform: PlatformComponent;
  let regs: Registration[] = [];
  beforeAll(async () => {
    const raw = prodConfig();
    const kubernetes = raw.platform.kubernetes as Record<string, unknown>;
    [platform, regs] = await build("prod-tenants", {
      ...raw,
      platform: {
        ...raw.platform,
        kubernetes: { ...kubernetes, postgres: { adminEndpoint: "127.0.0.1:15432" } },
      },
      tenants: {
        acme: { tier: "pro", adminEmail: "boss@acme.example", restore: { time: "2026-11-20T10:00:00Z" } },
        globex: { tier: "basic", adminEmail: "it@globex.example", state: "suspended" },
      },
    });
  });

  it("provisions each tenant on the cluster's PostgreSQL through the endpoint, with the in-cluster DSN", async () => {
    const dbs = regs
      .filter((r) => r.type.endsWith(":TenantDatabase"))
      .map((r) => plain(r.inputs) as Record<string, unknown>);
    expect(dbs.map((d) => d.subdomain).sort()).toEqual(["acme", "globex"]);
    for (const d of dbs) {
      expect(String(d.adminDsn)).toMatch(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:15432\/postgres$/);
      expect(d.host).toBe("postgres.loomworks.svc");
      expect(d.filestoreRoot).toBe("");
      expect(d.erpRole).toBe("loomworks_erp");
    }
    expect(await promiseOf(platform.postgres.adminDsn)).toContain("@127.0.0.1:15432/");
    // Everything using the superuser's connection waits until the server accepts its password.
    const gate = regs.filter((r) => r.type.endsWith(":PostgresLogin"));
    expect(gate.map((r) => plain(r.inputs.dsn))).toEqual([dbs[0].adminDsn]);
    expect(await promiseOf(platform.postgres.host)).toBe("postgres.loomworks.svc");
  });

  it("gives the ERP each tenant's own role and password in its tenants Secret, written after the tenants' databases", async () => {
    const dbRegs = regs.filter((r) => r.type.endsWith(":TenantDatabase"));
    const secret = regs.find(
      (r) =>
        isK8s(r) && objectOf(r).kind === "Secret" && objectOf(r).metadata.name === "loomworks-erp-tenants",
    ) as Registration;
    // Both files are computed from every tenant's database: the engine writes them after those.
    const declaredFiles = declared.get(`${secret.type}::${secret.name}`)?.stringData as Record<
      string,
      unknown
    >;
    for (const key of ["tenants.json", "tenant-credentials.json"]) {
      const sources = await sourcesOf(declaredFiles[key]);
      for (const r of dbRegs) expect(sources, key).toContain(`${r.type}::${r.name}`);
    }
    const raw = secret.inputs.stringData as Record<string, unknown>;
    for (const key of ["tenants.json", "tenant-credentials.json"])
      expect(isSecretInput(raw) || isSecretInput(raw[key]), key).toBe(true);
    const files = plain(raw) as Record<string, string>;
    const credentials = JSON.parse(files["tenant-credentials.json"]).databases as Record<
      string,
      { user: string; password: string }
    >;
    const passwords: string[] = [];
    for (const r of dbRegs) {
      const d = plain(r.inputs) as { database: string; roleName: string; rolePassword: string };
      expect(credentials[d.database]).toEqual({ user: d.roleName, password: d.rolePassword });
      passwords.push(d.rolePassword);
    }
    expect(JSON.parse(files["tenants.json"]).tenants).toEqual([
      { subdomain: "acme", database: "acme", state: "active" },
      { subdomain: "globex", database: "globex", state: "suspended" },
    ]);
    const nonSecrets = JSON.stringify(
      regs
        .filter(isK8s)
        .map(objectOf)
        .filter((o) => o.kind !== "Secret"),
    );
    for (const p of passwords) expect(nonSecrets).not.toContain(p);
    // The ERP's own role is given no tenant: provisioning takes back any membership.
    for (const r of dbRegs) expect(plain(r.inputs.erpRole)).toBe("loomworks_erp");
  });

  it("runs the template's initializer in a pod of the ERP image that may reach PostgreSQL, as the template's builder (schema-valid, no secret)", async () => {
    const objects = regs.filter(isK8s).map(objectOf);
    const template = regs.find((r) => r.type.endsWith(":TenantTemplate"));
    const inputs = plain(template?.inputs) as {
      fromCommand: string;
      database: string;
      commandRunner: KubernetesCommandRunner;
      builderPassword: string;
    };
    expect(inputs.commandRunner).toMatchObject({
      namespace: "loomworks",
      image: "registry.loomworks.app/loomworks/erp:18.0",
      host: "postgres.loomworks.svc",
      passwordSecret: { name: "loomworks-template-builder-default", key: "password" },
    });
    // The builder's password: a secret input of the template, the value of its own Secret.
    expect(isSecretInput(template?.inputs.builderPassword)).toBe(true);
    expect(inputs.builderPassword).toBe("pw-template-default-builder-password");
    const secret = objects.find(
      (o) => o.kind === "Secret" && o.metadata.name === "loomworks-template-builder-default",
    );
    expect(secret?.metadata.namespace).toBe("loomworks");
    expect(secret?.stringData).toEqual({ password: inputs.builderPassword });
    const secretReg = regs.find(
      (r) => isK8s(r) && objectOf(r).kind === "Secret" && objectOf(r).metadata.name === secret?.metadata.name,
    ) as Registration;
    expect(dependencies.get(`pulumi-nodejs:dynamic/loomworks:TenantTemplate::${template?.name}`)).toContain(
      `${secretReg.type}::${secretReg.name}`,
    );

    const args = kubectlRunArgs(inputs.commandRunner, {
      database: "loomworks_template_default__building",
      role: "loomworks_template_default_builder",
      command: inputs.fromCommand,
    });
    const overrides = JSON.parse(
      args.find((a) => a.startsWith("--overrides="))!.slice("--overrides=".length),
    );
    const pod = { ...overrides, kind: "Pod", metadata: { name: args[1], namespace: "loomworks" } };
    expect(k8sSchemaErrors(pod)).toEqual([]);
    expect(args[1]).toMatch(/^[a-z0-9-]{1,63}$/);
    const env = Object.fromEntries(
      (pod.spec.containers[0].env as { name: string; value?: string; valueFrom?: unknown }[]).map((e) => [
        e.name,
        e.value ?? e.valueFrom,
      ]),
    );
    expect(env.PGUSER).toBe("loomworks_template_default_builder");
    expect(env.PGPASSWORD).toEqual({
      secretKeyRef: { name: "loomworks-template-builder-default", key: "password" },
    });
    // Restricted Pod Security: non-root, no privilege escalation, no capability.
    expect(pod.spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod.spec.containers[0].securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    // The PostgreSQL NetworkPolicy admits pods with these labels.
    const policy = objects.find((o) => o.kind === "NetworkPolicy" && o.metadata.name === "postgres");
    const admitted = JSON.stringify(policy?.spec.ingress);
    expect(admitted).toContain(JSON.stringify(inputs.commandRunner.labels["app.kubernetes.io/component"]));
    const superuserPassword = String(
      plain(regs.find((r) => r.type.endsWith(":TenantDatabase"))?.inputs.adminDsn),
    ).match(/postgres:([^@]+)@/)?.[1];
    expect(superuserPassword).toBeTruthy();
    for (const password of [superuserPassword as string, inputs.builderPassword]) {
      expect(args.join(" ")).not.toContain(password);
      expect(JSON.stringify(inputs.commandRunner)).not.toContain(password);
    }
    const nonSecrets = JSON.stringify(objects.filter((o) => o.kind !== "Secret"));
    expect(nonSecrets).not.toContain(inputs.builderPassword);
  });

  it("restores as a Job in the cluster with the repository mounted, not through the local provider", async () => {
    expect(regs.some((r) => r.type.endsWith(":PitrRestore"))).toBe(false);
    const jobs = regs.filter((r) => isK8s(r) && objectOf(r).kind === "Job").map(objectOf);
    const restore = jobs.find((j) => j.metadata.name.startsWith("loomworks-restore-acme-"));
    expect(restore).toBeDefined();
    expect(k8sSchemaErrors(restore as K8sObject)).toEqual([]);
    const mounts = restore?.spec.template.spec.containers[0].volumeMounts as {
      mountPath: string;
      readOnly?: boolean;
    }[];
    expect(mounts.filter((m) => m.mountPath.startsWith("/var/lib/pgbackrest")).every((m) => m.readOnly)).toBe(
      true,
    );
    const restores = platform.restores;
    expect((await promiseOf(restores.acme)).id).toBe(restore?.metadata.name);
  });

  it("runs every pod of the ERP image, and the filestore's jobs, as the image's own user (the default erpUser)", async () => {
    const image = imageUser(readFileSync(ERP_DOCKERFILE, "utf8"), "production");
    expect(image).toEqual({ uid: 101, gid: 101 });
    const objects = regs.filter(isK8s).map(objectOf);
    const podOf = (o: K8sObject) =>
      (o.kind === "CronJob" ? o.spec.jobTemplate.spec : o.spec).template.spec as {
        securityContext: Record<string, unknown>;
      };
    const runAs = { runAsUser: image.uid, runAsGroup: image.gid };
    const erp = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "loomworks-erp");
    const update = objects.find(
      (o) => o.kind === "Job" && o.metadata.name.startsWith("loomworks-erp-update-"),
    );
    for (const o of [erp, update]) {
      expect(o, "ERP Deployment and update Job").toBeDefined();
      expect(podOf(o as K8sObject).securityContext).toMatchObject({ ...runAs, fsGroup: image.gid });
    }
    // The jobs writing or reading the ERP's files run as their owner.
    const filestoreJobs = objects.filter(
      (o) =>
        ["loomworks-snapshot-auto", "loomworks-quota-check"].includes(o.metadata.name) ||
        o.metadata.name.startsWith("loomworks-restore-acme-"),
    );
    expect(filestoreJobs).toHaveLength(3);
    for (const o of filestoreJobs) expect(podOf(o).securityContext, o.metadata.name).toMatchObject(runAs);
    // The template's initializer runs in the ERP image as its user too.
    const runner = (
      plain(regs.find((r) => r.type.endsWith(":TenantTemplate"))?.inputs) as {
        commandRunner: KubernetesCommandRunner;
      }
    ).commandRunner;
    const overrides = kubectlRunArgs(runner, { database: "d", role: "r", command: "odoo" })
      .find((a) => a.startsWith("--overrides="))
      ?.slice("--overrides=".length);
    expect(JSON.parse(overrides ?? "{}").spec.securityContext).toMatchObject(runAs);
  });

  it("names in odoo.conf the image's addons directories and only paths the image or the ERP's pods provide", () => {
    const objects = regs.filter(isK8s).map(objectOf);
    const conf = objects.find(
      (o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("loomworks-erp-config-"),
    )?.data?.["odoo.conf"] as string;
    const dockerfile = readFileSync(ERP_DOCKERFILE, "utf8");
    const image = imagePaths(dockerfile, repoRoot, "production");
    expect(parseOdooConfig(conf).addons_path.split(",")).toEqual([
      "/opt/loomworks/addons", // the Loomworks addons (the `addons` build context)
      "/opt/loomworks/platform-addons", // docker/addons: the tenant map and JSON logs addons
      "/usr/lib/python3/dist-packages/odoo/addons", // Odoo's own, from its Debian package
    ]);
    expect(odooConfPaths(conf).map((p) => p.option)).toEqual(
      expect.arrayContaining([
        "addons_path",
        "data_dir",
        "loomworks_tenant_map",
        "loomworks_tenant_credentials",
      ]),
    );
    const pods = objects
      .filter(
        (o) => o.metadata.name === "loomworks-erp" || o.metadata.name.startsWith("loomworks-erp-update-"),
      )
      .filter((o) => o.kind === "Deployment" || o.kind === "Job");
    expect(pods).toHaveLength(2);
    for (const pod of pods)
      expect(unprovidedConfPaths(conf, pod.spec.template.spec, image, objects), pod.kind).toEqual([]);
    // The check is live: a path nobody creates is named, also one the image has but a mount hides.
    const broken = conf
      .replace(/^logfile = .*$/m, "logfile = /var/log/odoo/odoo.log")
      .replace(/^addons_path = /m, "addons_path = /mnt/extra-addons,")
      .replace(/^loomworks_tenant_map = .*$/m, "loomworks_tenant_map = /etc/loomworks-tenants/map.json")
      .replace(/^data_dir = .*$/m, "data_dir = /etc/loomworks/data");
    expect(unprovidedConfPaths(broken, pods[0].spec.template.spec, image, objects)).toEqual([
      "loomworks_tenant_map = /etc/loomworks-tenants/map.json",
      "data_dir = /etc/loomworks/data",
      "addons_path = /mnt/extra-addons",
      "logfile = /var/log/odoo/odoo.log",
    ]);
  });

  it("refuses snapshots declared on the kubernetes target (or a restore naming one), saying why and what instead", () => {
    const raw = prodConfig();
    const kubernetes = raw.platform.kubernetes as Record<string, unknown>;
    const problems = (tenants: Record<string, unknown>): readonly string[] => {
      try {
        parseStackConfig({
          ...raw,
          platform: {
            ...raw.platform,
            kubernetes: { ...kubernetes, postgres: { adminEndpoint: "127.0.0.1:15432" } },
          },
          tenants,
        });
      } catch (e) {
        if (e instanceof ConfigError) return e.problems;
        throw e;
      }
      return [];
    };
    const refusal = kubernetesSnapshotRefusal("loomworks");
    const acme = { tier: "pro", adminEmail: "boss@acme.example" };
    expect(problems({ acme: { ...acme, snapshots: { nightly: {} } } })).toEqual([
      `tenant "acme": key "snapshots": ${refusal.snapshots}`,
    ]);
    expect(refusal.snapshots).toMatch(/filestore is the ERP's volume inside the cluster/);
    expect(refusal.snapshots).toMatch(/restore to one with restore: \{ lsn: \.\.\. \}$/);
    // Not "declare it first": a restore naming a snapshot is refused with the same advice.
    expect(problems({ acme: { ...acme, restore: { snapshot: "nightly" } } })).toEqual([
      `tenant "acme": key "restore.snapshot": ${refusal.restoreSnapshot} (got "nightly")`,
    ]);
    expect(problems({ acme: { ...acme, restore: { time: "2026-11-20T10:00:00Z" } } })).toEqual([]);
    // The job the advice names is one the stack declares, in its namespace.
    const named = /create job --from=cronjob\/(\S+) /.exec(refusal.snapshots)?.[1];
    const cronJobs = regs
      .filter(isK8s)
      .map(objectOf)
      .filter((o) => o.kind === "CronJob");
    expect(cronJobs.map((o) => o.metadata.name)).toContain(named);
    expect(refusal.snapshots).toContain("kubectl -n loomworks ");
  });
});
