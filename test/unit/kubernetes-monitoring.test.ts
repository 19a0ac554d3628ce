/**
 * The Monitoring component under Pulumi mocks (test/helpers/pulumi-mocks.ts): the Prometheus
 * operator objects and NetworkPolicies as they would be sent to the cluster — kinds, names,
 * selectors against the labels of the Services and pods they must find (common.ts, and
 * PostgresServer's Service and StatefulSet and OdooDeployment's ERP Deployment as those components
 * render them), ports by name, the operator's selector labels, the rule groups (exactly
 * lib/monitoring/rules.ts' output, which the promtool tests cover), and the schema of every object
 * (test/helpers/k8s-validate.ts, which knows monitoring.coreos.com/v1).
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { type K8sObject, isK8s, kindName, minimalKubernetesSettings, one } from "../helpers/k8s-objects";
import { assertValidK8sObject, k8sSchemaErrors } from "../helpers/k8s-validate";
import { installMocks, plain, registered, resourceTree } from "../helpers/pulumi-mocks";

// The mocks must be in place before any resource is constructed (the imports below declare none).
const registrations = installMocks();

import {
  ERP_LABELS,
  NAMES,
  POSTGRES_EXPORTER_PORT,
  POSTGRES_LABELS,
  objectLabels,
} from "../../components/kubernetes/common";
import {
  DEFAULT_MONITORING_LABELS,
  MONITORING_API_VERSION,
  Monitoring,
  POSTGRES_METRICS_PORT,
  type MonitoringArgs,
} from "../../components/kubernetes/Monitoring";
import { OdooDeployment } from "../../components/kubernetes/OdooDeployment";
import { erpSettings } from "../../components/platform/kubernetesSettings";
import { PostgresServer } from "../../components/kubernetes/PostgresServer";
import { kubernetesConfigSchema } from "../../infra/config/kubernetes";
import { DEFAULT_VOLUME_CLAIMS, alertRuleGroups } from "../../lib/monitoring/rules";

const NS = "loomworks-prod";

async function build<T extends pulumi.Resource>(make: () => T): Promise<[T, K8sObject[]]> {
  const first = registrations.length;
  const resource = make();
  await registered(resource);
  const objs = registrations
    .slice(first)
    .filter(isK8s)
    .map((r) => plain(r.inputs) as K8sObject);
  return [resource, objs];
}

const matchesLabels = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

const BASE_ARGS: MonitoringArgs = { namespace: NS, archiveTimeoutSeconds: 60 };

describe("Monitoring with the defaults", () => {
  let monitoring: Monitoring;
  let objs: K8sObject[];
  beforeAll(async () => {
    [monitoring, objs] = await build(() => new Monitoring("monitoring", BASE_ARGS));
  });

  it("declares the PostgreSQL ServiceMonitor and the PrometheusRule, no ERP PodMonitor", () => {
    expect(objs.map(kindName).sort()).toEqual([
      "PrometheusRule/loomworks-alerts",
      "ServiceMonitor/loomworks-postgres",
    ]);
    expect(Object.keys(resourceTree(monitoring))).toHaveLength(2);
    for (const o of objs) {
      expect(o.metadata.namespace, kindName(o)).toBe(NS);
      expect(o.metadata.labels, kindName(o)).toMatchObject(objectLabels());
      assertValidK8sObject(o);
    }
    for (const o of objs.filter((x) => x.apiVersion === MONITORING_API_VERSION)) {
      expect(o.metadata.labels, kindName(o)).toMatchObject(DEFAULT_MONITORING_LABELS);
    }
  });

  it("scrapes the exporter's named port on the Service that selects the PostgreSQL pods", () => {
    const sm = one(objs, "ServiceMonitor", "loomworks-postgres");
    // The headless Service `postgres` carries and selects POSTGRES_LABELS (common.ts).
    expect(sm.spec.selector).toEqual({ matchLabels: POSTGRES_LABELS });
    expect(matchesLabels(sm.spec.selector.matchLabels, objectLabels(POSTGRES_LABELS))).toBe(true);
    expect(sm.spec.namespaceSelector).toEqual({ matchNames: [NS] });
    expect(sm.spec.endpoints).toEqual([
      { port: "metrics", path: "/metrics", interval: "30s", scheme: "http" },
    ]);
    expect(POSTGRES_METRICS_PORT).toBe("metrics");
    expect(POSTGRES_EXPORTER_PORT).toBe(9187);
  });

  it("finds the exporter of the PostgresServer component: Service labels, port names, scrape allowed", async () => {
    const [, pg] = await build(
      () =>
        new PostgresServer("pg-for-monitoring", {
          namespace: NS,
          image: "registry.example.com/loomworks/postgres:15-1",
          rotation: "1",
          archiveTimeoutSeconds: 60,
          retentionFull: 2,
          monitoringNamespace: "monitoring",
        }),
    );
    const sm = one(objs, "ServiceMonitor", "loomworks-postgres");
    const service = one(pg, "Service", NAMES.postgres);
    expect(matchesLabels(sm.spec.selector.matchLabels, service.metadata.labels ?? {})).toBe(true);
    const servicePort = (service.spec.ports as { name: string; port: number; targetPort: string }[]).find(
      (p) => p.name === sm.spec.endpoints[0].port,
    );
    expect(servicePort).toMatchObject({ port: POSTGRES_EXPORTER_PORT, targetPort: "metrics" });
    const pod = one(pg, "StatefulSet", NAMES.postgres).spec.template;
    const exporter = (
      pod.spec.containers as { name: string; ports?: { name: string; containerPort: number }[] }[]
    ).find((c) => c.name === NAMES.postgresExporterContainer);
    expect(exporter?.ports).toContainEqual(
      expect.objectContaining({ name: servicePort?.targetPort, containerPort: POSTGRES_EXPORTER_PORT }),
    );
    const policy = one(pg, "NetworkPolicy", NAMES.postgres);
    expect(matchesLabels(policy.spec.podSelector.matchLabels, pod.metadata.labels)).toBe(true);
    expect(policy.spec.ingress).toContainEqual({
      from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }],
      ports: [{ protocol: "TCP", port: POSTGRES_EXPORTER_PORT }],
    });
  });

  it("deploys exactly the rule groups that the promtool tests run", () => {
    const rule = one(objs, "PrometheusRule", "loomworks-alerts");
    const expected = alertRuleGroups({
      namespace: NS,
      runbookUrl: "docs/operations/monitoring.md",
      archiveTimeoutSeconds: 60,
    });
    expect(rule.spec.groups).toEqual(expected);
    expect(monitoring.ruleGroups).toEqual(expected);
    expect(rule.spec.groups.map((g: { name: string }) => g.name)).toEqual([
      "loomworks.pods",
      "loomworks.postgres",
      "loomworks.backups",
      "loomworks.volumes",
      "loomworks.jobs",
    ]);
  });

  it("alerts on the platform's volumes by default", () => {
    expect([...DEFAULT_VOLUME_CLAIMS].sort()).toEqual(
      [NAMES.postgresDataClaim, NAMES.postgresWalClaim, NAMES.postgresBackupsClaim, NAMES.filestore].sort(),
    );
  });
});

describe("Monitoring with ERP metrics, own labels and thresholds", () => {
  let objs: K8sObject[];
  let erpPodTemplate: { metadata: { labels: Record<string, string> }; spec: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
  beforeAll(async () => {
    [, objs] = await build(
      () =>
        new Monitoring("monitoring-erp", {
          ...BASE_ARGS,
          labels: { prometheus: "platform" },
          prometheus: { namespace: "observability" },
          scrapeInterval: "15s",
          runbookUrl: "https://git.example/loomworks/docs/operations/monitoring.md",
          rules: { connections: { warningRatio: 0.7, criticalRatio: 0.9 } },
          erpMetrics: { port: "http", path: "/metrics" },
        }),
    );
    const config = kubernetesConfigSchema.parse(
      minimalKubernetesSettings(NS, "registry.example.com/loomworks/erp:18.0-7"),
    );
    const [, erpObjs] = await build(
      () =>
        new OdooDeployment("erp-for-monitoring", {
          ...erpSettings(config),
          database: {
            host: "postgres",
            user: "loomworks_erp",
            password: "pw",
            peer: { podLabels: POSTGRES_LABELS },
          },
          adminPasswd: "admin",
          databases: [],
          tenants: [],
        }),
    );
    erpPodTemplate = one(erpObjs, "Deployment", NAMES.erp).spec.template;
  });

  it("adds the ERP PodMonitor and its NetworkPolicy, with the operator labels given", () => {
    expect(objs.map(kindName).sort()).toEqual([
      "NetworkPolicy/allow-prometheus-erp-metrics",
      "PodMonitor/loomworks-erp",
      "PrometheusRule/loomworks-alerts",
      "ServiceMonitor/loomworks-postgres",
    ]);
    for (const o of objs) assertValidK8sObject(o);
    for (const o of objs.filter((x) => x.apiVersion === MONITORING_API_VERSION)) {
      expect(o.metadata.labels, kindName(o)).toMatchObject({ prometheus: "platform" });
      expect(o.metadata.labels, kindName(o)).not.toHaveProperty("release");
    }
  });

  it("selects the ERP Deployment's pods and scrapes a port the ERP container declares", () => {
    const pm = one(objs, "PodMonitor", "loomworks-erp");
    expect(pm.spec.selector).toEqual({ matchLabels: ERP_LABELS });
    expect(matchesLabels(pm.spec.selector.matchLabels, erpPodTemplate.metadata.labels)).toBe(true);
    expect(pm.spec.podMetricsEndpoints).toEqual([
      { port: "http", path: "/metrics", interval: "15s", scheme: "http" },
    ]);
    const portNames = (erpPodTemplate.spec.containers as { ports?: { name: string }[] }[]).flatMap((c) =>
      (c.ports ?? []).map((p) => p.name),
    );
    expect(portNames).toContain(pm.spec.podMetricsEndpoints[0].port);
  });

  it("lets the configured Prometheus namespace reach the ERP metrics port", () => {
    const np = one(objs, "NetworkPolicy", "allow-prometheus-erp-metrics");
    expect(matchesLabels(np.spec.podSelector.matchLabels, erpPodTemplate.metadata.labels)).toBe(true);
    expect(np.spec.ingress).toEqual([
      {
        from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "observability" } } }],
        ports: [{ protocol: "TCP", port: "http" }],
      },
    ]);
  });

  it("lets only the Prometheus pods of namespace monitoring in by default, and policyTypes Ingress only", async () => {
    const [, own] = await build(
      () =>
        new Monitoring("monitoring-default-peer", {
          ...BASE_ARGS,
          erpMetrics: { port: "http", path: "/metrics" },
        }),
    );
    const np = one(own, "NetworkPolicy", "allow-prometheus-erp-metrics");
    expect(np.spec.policyTypes).toEqual(["Ingress"]);
    expect(np.spec.ingress[0].from).toEqual([
      {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
        podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } },
      },
    ]);
  });

  it("puts the thresholds and the runbook URL given into the rules", () => {
    const rules = one(objs, "PrometheusRule", "loomworks-alerts").spec.groups.flatMap(
      (g: { rules: unknown[] }) => g.rules,
    ) as { alert: string; expr: string; annotations: Record<string, string> }[];
    const high = rules.find((r) => r.alert === "LoomworksPostgresConnectionsHigh");
    expect(high?.expr).toMatch(/> 0\.7 and .* <= 0\.9$/);
    expect(high?.annotations.runbook_url).toBe(
      "https://git.example/loomworks/docs/operations/monitoring.md#loomworkspostgresconnectionshigh",
    );
  });
});

describe("the schema validator knows the Prometheus operator's kinds", () => {
  const serviceMonitor = (): K8sObject => ({
    apiVersion: MONITORING_API_VERSION,
    kind: "ServiceMonitor",
    metadata: { name: "x" },
    spec: { selector: { matchLabels: { app: "x" } }, endpoints: [{ port: "metrics" }] },
  });

  it("accepts a valid ServiceMonitor", () => {
    expect(k8sSchemaErrors(serviceMonitor())).toEqual([]);
  });

  it("rejects broken ServiceMonitor, PodMonitor and PrometheusRule objects", () => {
    const noSelector = serviceMonitor();
    delete noSelector.spec.selector;
    expect(k8sSchemaErrors(noSelector)).toEqual(["data/spec must have required property selector"]);
    const badScheme = serviceMonitor();
    badScheme.spec.endpoints[0].scheme = "ftp";
    expect(k8sSchemaErrors(badScheme).join("; ")).toMatch(
      /endpoints\/0\/scheme must be equal to one of the allowed values/,
    );
    const podMonitor: K8sObject = {
      apiVersion: MONITORING_API_VERSION,
      kind: "PodMonitor",
      metadata: { name: "x" },
      spec: { selector: {}, podMetricsEndpoints: [{ port: 8069 }] },
    };
    expect(k8sSchemaErrors(podMonitor).join("; ")).toMatch(/podMetricsEndpoints\/0\/port must be string/);
    const rule: K8sObject = {
      apiVersion: MONITORING_API_VERSION,
      kind: "PrometheusRule",
      metadata: { name: "x" },
      spec: { groups: [{ name: "g", rules: [{ alert: "A", expr: "up == 0", for: "five minutes" }] }] },
    };
    expect(k8sSchemaErrors(rule).join("; ")).toMatch(/rules\/0\/for must match pattern/);
    expect(() => assertValidK8sObject(noSelector)).toThrow(
      "monitoring.coreos.com/v1/ServiceMonitor x is invalid: data/spec must have required property selector",
    );
  });
});
