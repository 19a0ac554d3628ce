/**
 * How `platform.notify` reaches the jobs, under Pulumi mocks (test/helpers/pulumi-mocks.ts). Local:
 * the LocalScheduler gets the settings as a secret input (it writes them to notify.json). Kubernetes:
 * the webhook's URL lives in a Secret of its own and reaches every CronJob and the restore Job by
 * secretKeyRef only (never a ConfigMap or a plain value); the ops pods' egress allows its port.
 */
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { type K8sObject, isK8s, one } from "../helpers/k8s-objects";
import { assertValidK8sObject } from "../helpers/k8s-validate";
import { DYNAMIC, installMocks, isSecretInput, plain, registered } from "../helpers/pulumi-mocks";

const registrations = installMocks();

import { NAMES, NOTIFY_SECRET_KEY } from "../../components/kubernetes/common";
import { OpsJobs, opsNotifyEnv, type OpsJobsArgs } from "../../components/kubernetes/OpsJobs";
import { restoreJob } from "../../components/kubernetes/RestoreJob";
import { parseStackConfig } from "../../infra/config/load";
import { declarePlatform } from "../../infra/platform";
import { NOTIFY_ENV, notifySettingsFromEnv } from "../../lib/notify/settings";

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
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}

async function build(make: () => pulumi.Resource): Promise<K8sObject[]> {
  const first = registrations.length;
  await registered(make());
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
    }
    expect(one(objs, "NetworkPolicy", "ops-egress").spec.egress).toHaveLength(2);
  });

  it("the restore Job reads the same Secret by reference", async () => {
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
      }),
    );
    const job = objs.find((o) => o.kind === "Job") as K8sObject;
    const env = job.spec.template.spec.containers[0].env as EnvVar[];
    expect(env).toContainEqual(WEBHOOK_REF);
    expect(env.filter((e) => e.name.startsWith("LOOMWORKS_NOTIFY_"))).toEqual(opsNotifyEnv(NOTIFY));
    assertValidK8sObject(job);
  });
});
