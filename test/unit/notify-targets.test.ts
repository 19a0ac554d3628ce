/**
 * How `platform.notify` reaches the jobs, under Pulumi mocks (test/helpers/pulumi-mocks.ts). Local:
 * the LocalScheduler gets the settings as a secret input (it writes them to notify.json). Kubernetes:
 * the webhook's URL lives in a Secret of its own and reaches every CronJob and the restore Job by
 * secretKeyRef only (never a ConfigMap or a plain value); the ops pods' egress allows its port.
 * `kubernetes.monitoring.pushgatewayUrl` (the jobs' metrics): a plain env value on the same
 * containers, next to their namespace, not in the ConfigMap; egress to its port; refused with
 * credentials in it.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { load as loadYaml } from "js-yaml";
import { describe, expect, it } from "vitest";
import { type K8sObject, isK8s, one } from "../helpers/k8s-objects";
import { assertValidK8sObject } from "../helpers/k8s-validate";
import { DYNAMIC, installMocks, isSecretInput, plain, registered } from "../helpers/pulumi-mocks";

const registrations = installMocks();

import { NAMES, NOTIFY_SECRET_KEY } from "../../components/kubernetes/common";
import { OpsJobs, opsNotifyEnv, type OpsJobsArgs } from "../../components/kubernetes/OpsJobs";
import { restoreJob } from "../../components/kubernetes/RestoreJob";
import { ConfigError, parseStackConfig } from "../../infra/config/load";
import { declarePlatform } from "../../infra/platform";
import { NOTIFY_ENV, PUSHGATEWAY_ENV, notifySettingsFromEnv } from "../../lib/notify/settings";
import { repoRoot } from "../../testkit/repo";

const NS = "loomworks-prod";
const TOKEN = "w3bh00k-t0ken-0123456789";
const WEBHOOK = `https://hooks.example.com:8443/services/${TOKEN}`;
const NOTIFY = { stack: "prod", timeoutSeconds: 10, attempts: 4 };

const ARGS: OpsJobsArgs = {
  namespace: NS,
  image: "registry.example.com/loomworks/ops:1.4.0",
  postgres: { stanza: "loomworks", retentionFull: 3 },
  undoRetentionDays: 14,
  filestoreOwner: { uid: 101, gid: 101 },
};

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
  };
}

async function build(make: () => pulumi.Resource): Promise<K8sObject[]> {
  const first = registrations.length;
  await registered(make());
  // Outputs resolve asynchronously: give the last registrations time to land.
  await new Promise((r) => setTimeout(r, 50));
  return registrations
    .slice(first)
    .filter(isK8s)
    .map((r) => plain(r.inputs) as K8sObject);
}

/** The container's env resolved against `secret`, as the kubelet would (plain values as they are). */
function resolveEnv(env: EnvVar[], secret: K8sObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref?.name === secret.metadata.name) out[e.name] = secret.stringData?.[ref.key] as string;
    else if (e.value !== undefined) out[e.name] = e.value;
  }
  return out;
}

const WEBHOOK_REF: EnvVar = {
  name: NOTIFY_ENV.webhookUrl,
  valueFrom: { secretKeyRef: { name: NAMES.opsNotify, key: NOTIFY_SECRET_KEY } },
};

describe("notifications on the local target", () => {
  const localScheduler = async (name: string, notify: Record<string, unknown>) => {
    const config = parseStackConfig({ platform: { stateDir: `var/${name}`, notify } });
    const first = registrations.length;
    await registered(declarePlatform(name, { config, projectDir: path.resolve(__dirname, "../..") }));
    const found = registrations.slice(first).filter((r) => r.type === `${DYNAMIC}LocalScheduler`);
    expect(found).toHaveLength(1);
    return found[0].inputs;
  };

  it("the LocalScheduler gets the webhook as a secret input, with the stack and the delivery bounds", async () => {
    const inputs = await localScheduler("notify-local", { webhookUrl: WEBHOOK, attempts: 2 });
    expect(isSecretInput(inputs.notify)).toBe(true);
    expect(plain(inputs.notify)).toEqual({
      webhookUrl: WEBHOOK,
      stack: "unit",
      timeoutSeconds: 10,
      attempts: 2,
    });
  });

  it("without a webhook, no notify input (notify.json is removed)", async () => {
    const inputs = await localScheduler("notify-local-quiet", {});
    expect(inputs.notify).toBeUndefined();
  });
});

describe("notifications on Kubernetes", () => {
  it("OpsJobs: the URL in its own Secret, every CronJob reads it by secretKeyRef, egress to its port", async () => {
    const objs = await build(
      () =>
        new OpsJobs("ops-notify", {
          ...ARGS,
          notify: { ...NOTIFY, webhookUrl: pulumi.secret(WEBHOOK), port: 8443 },
        }),
    );
    const secret = one(objs, "Secret", NAMES.opsNotify);
    expect(secret.stringData).toEqual({ [NOTIFY_SECRET_KEY]: WEBHOOK });
    const cronJobs = objs.filter((o) => o.kind === "CronJob");
    expect(cronJobs).toHaveLength(6);
    for (const c of cronJobs) {
      const env = c.spec.jobTemplate.spec.template.spec.containers[0].env as EnvVar[];
      expect(env).toContainEqual(WEBHOOK_REF);
      // What jobs.js reads from this environment (lib/notify/settings.ts).
      expect(notifySettingsFromEnv(resolveEnv(env, secret))).toEqual({ ...NOTIFY, webhookUrl: WEBHOOK });
    }
    // Nowhere else: not in the ConfigMap, not in a plain env value.
    for (const o of objs.filter((x) => x.kind !== "Secret")) expect(JSON.stringify(o)).not.toContain(TOKEN);
    const configMap = objs.find((o) => o.kind === "ConfigMap") as K8sObject;
    expect(Object.keys(configMap.data as object)).not.toContain(NOTIFY_ENV.webhookUrl);
    const egress = one(objs, "NetworkPolicy", "ops-egress").spec.egress as unknown[];
    expect(egress[2]).toEqual({
      to: [{ ipBlock: { cidr: "0.0.0.0/0" } }, { ipBlock: { cidr: "::/0" } }],
      ports: [{ protocol: "TCP", port: 8443 }],
    });
    for (const o of objs) assertValidK8sObject(o);
  });

  it("the Secret's value is a Pulumi secret (kept encrypted in the state)", async () => {
    const first = registrations.length;
    await registered(
      new OpsJobs("ops-notify-secret", {
        ...ARGS,
        notify: { ...NOTIFY, webhookUrl: pulumi.secret(WEBHOOK), port: 443 },
      }),
    );
    const reg = registrations.slice(first).find((r) => r.type === "kubernetes:core/v1:Secret");
    const stringData = reg?.inputs.stringData;
    // The whole map or its value: either way the engine keeps it encrypted.
    const value = isSecretInput(stringData)
      ? stringData
      : (stringData as Record<string, unknown>)[NOTIFY_SECRET_KEY];
    expect(isSecretInput(value)).toBe(true);
  });

  it("without a webhook: no Secret, no notification env, the egress as before", async () => {
    const objs = await build(() => new OpsJobs("ops-quiet", ARGS));
    expect(objs.some((o) => o.kind === "Secret")).toBe(false);
    for (const c of objs.filter((o) => o.kind === "CronJob")) {
      const env = c.spec.jobTemplate.spec.template.spec.containers[0].env as EnvVar[];
      expect(env.map((e) => e.name).filter((n) => n.startsWith("LOOMWORKS_NOTIFY_"))).toEqual([]);
      expect(env.map((e) => e.name)).not.toContain(PUSHGATEWAY_ENV.url);
    }
    expect(one(objs, "NetworkPolicy", "ops-egress").spec.egress).toHaveLength(2);
  });

  it("the restore Job reads the same Secret by reference, and pushes to the Pushgateway", async () => {
    const objs = await build(() =>
      restoreJob("restore-notify", {
        namespace: NS,
        image: ARGS.image,
        postgres: ARGS.postgres,
        pgbackrestConfigSecret: { name: "loomworks-postgres-pgbackrest", key: "pgbackrest.conf" },
        tenant: { subdomain: "acme", database: "acme", roleName: "acme_owner" },
        target: { time: "2026-11-26T10:00:00Z" },
        filestoreOwner: ARGS.filestoreOwner,
        scratchSizeLimit: "50Gi",
        notify: NOTIFY,
        pushgatewayUrl: GATEWAY,
      }),
    );
    const job = objs.find((o) => o.kind === "Job") as K8sObject;
    const env = job.spec.template.spec.containers[0].env as EnvVar[];
    expect(env).toContainEqual(WEBHOOK_REF);
    expect(env.filter((e) => e.name.startsWith("LOOMWORKS_NOTIFY_"))).toEqual(opsNotifyEnv(NOTIFY));
    expect(env).toContainEqual({ name: PUSHGATEWAY_ENV.url, value: GATEWAY });
    expect(env).toContainEqual(NAMESPACE_REF);
    assertValidK8sObject(job);
  });
});

const GATEWAY = "http://prometheus-pushgateway.monitoring.svc:9091";
const NAMESPACE_REF: EnvVar = {
  name: PUSHGATEWAY_ENV.namespace,
  valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
};
const cronJobEnv = (c: K8sObject) => c.spec.jobTemplate.spec.template.spec.containers[0].env as EnvVar[];

/** Pulumi.prod.yaml's platform with `monitoring` replaced. */
function prodPlatform(monitoring: Record<string, unknown>): Record<string, unknown> {
  const file = loadYaml(readFileSync(path.join(repoRoot, "Pulumi.prod.yaml"), "utf8")) as {
    config: { "loomworks:platform": { kubernetes: Record<string, unknown> } };
  };
  const platform = file.config["loomworks:platform"];
  return { ...platform, kubernetes: { ...platform.kubernetes, monitoring } };
}

describe("job metrics on Kubernetes (kubernetes.monitoring.pushgatewayUrl)", () => {
  it("every CronJob gets the URL as a plain env value and its namespace; the ConfigMap does not; egress to its port", async () => {
    const objs = await build(() => new OpsJobs("ops-push", { ...ARGS, pushgatewayUrl: GATEWAY }));
    const cronJobs = objs.filter((o) => o.kind === "CronJob");
    expect(cronJobs).toHaveLength(6);
    for (const c of cronJobs) {
      expect(cronJobEnv(c)).toContainEqual({ name: PUSHGATEWAY_ENV.url, value: GATEWAY });
      expect(cronJobEnv(c)).toContainEqual(NAMESPACE_REF);
    }
    const configMap = objs.find((o) => o.kind === "ConfigMap") as K8sObject;
    expect(JSON.stringify(configMap)).not.toContain("pushgateway");
    const egress = one(objs, "NetworkPolicy", "ops-egress").spec.egress as unknown[];
    expect(egress).toContainEqual({
      to: [{ namespaceSelector: {} }, { ipBlock: { cidr: "0.0.0.0/0" } }, { ipBlock: { cidr: "::/0" } }],
      ports: [{ protocol: "TCP", port: 9091 }],
    });
    for (const o of objs) assertValidK8sObject(o);
  });

  it("the prod stack's CronJobs push to it", async () => {
    const config = parseStackConfig({
      platform: prodPlatform({ namespace: "monitoring", pushgatewayUrl: GATEWAY }),
    });
    expect(config.platform.kubernetes?.monitoring.pushgatewayUrl).toBe(GATEWAY);
    const objs = await build(() => declarePlatform("prod-push", { config, projectDir: repoRoot }));
    const cronJobs = objs.filter((o) => o.kind === "CronJob");
    expect(cronJobs.length).toBeGreaterThan(0);
    for (const c of cronJobs)
      expect(cronJobEnv(c)).toContainEqual({ name: PUSHGATEWAY_ENV.url, value: GATEWAY });
  });

  it("is optional, and refuses a URL that is not http(s) or carries user info or a query", () => {
    const parsed = parseStackConfig({ platform: prodPlatform({}) });
    expect(parsed.platform.kubernetes?.monitoring.pushgatewayUrl).toBeUndefined();
    for (const bad of ["ftp://gw:9091", "http://user:s3cret@gw:9091", "http://gw:9091/?token=x", "gw:9091"]) {
      let error: unknown;
      try {
        parseStackConfig({ platform: prodPlatform({ pushgatewayUrl: bad }) });
      } catch (err) {
        error = err;
      }
      expect(error, bad).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain("kubernetes.monitoring.pushgatewayUrl");
      expect((error as Error).message).toContain("without user info");
      expect((error as Error).message).not.toContain("s3cret");
    }
  });
});
