/**
 * Monitoring of the Kubernetes target through the Prometheus operator
 * (docs/architecture.md#kubernetes-and-docker): a
 * ServiceMonitor for postgres_exporter (the `metrics` port of the headless Service `postgres`),
 * optionally a PodMonitor for the ERP pods, the PrometheusRule with the platform's alerts
 * (lib/monitoring/rules.ts, the same objects the promtool tests run against), and with the
 * PodMonitor a NetworkPolicy letting Prometheus reach the ERP's metrics port through the
 * namespace's default-deny policy (the exporter's port is opened by PostgresServer's own policy,
 * given the monitoring namespace).
 *
 * The Loomworks image serves no Prometheus metrics of its own today (Odoo 18 has none), so the
 * ERP's PodMonitor is created only when `erpMetrics` names the port and path that serve them
 * (docs/operations/monitoring.md). Restarts and volume space of the ERP are alerted on from
 * kube-state-metrics and kubelet metrics either way.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { alertRuleGroups, type AlertRuleOptions, type RuleGroup } from "../../lib/monitoring/rules";
import { ERP_LABELS, POSTGRES_LABELS, objectLabels } from "./common";

export const MONITORING_API_VERSION = "monitoring.coreos.com/v1";
/** Selected by kube-prometheus-stack's default serviceMonitorSelector/podMonitorSelector/ruleSelector. */
export const DEFAULT_MONITORING_LABELS: Readonly<Record<string, string>> = {
  release: "kube-prometheus-stack",
};
export const DEFAULT_PROMETHEUS_PEER = {
  namespace: "monitoring",
  podLabels: { "app.kubernetes.io/name": "prometheus" },
} as const;
export const DEFAULT_SCRAPE_INTERVAL = "30s";
export const DEFAULT_RUNBOOK_URL = "docs/operations/monitoring.md";
/** Port name of the postgres_exporter sidecar and of the headless Service `postgres`. */
export const POSTGRES_METRICS_PORT = "metrics";

export const MONITORING_NAMES = {
  postgresServiceMonitor: "loomworks-postgres",
  erpPodMonitor: "loomworks-erp",
  rules: "loomworks-alerts",
  erpScrapePolicy: "allow-prometheus-erp-metrics",
} as const;

// Shapes of the Prometheus operator's resources (monitoring.coreos.com/v1): only the fields used
// here, so a misspelt field fails `tsc`; the unit tests validate against the full schemas.
interface Endpoint {
  port: string;
  path: string;
  interval: string;
  scheme?: "http" | "https";
}
interface ServiceMonitorSpec {
  selector: { matchLabels: Record<string, string> };
  namespaceSelector: { matchNames: pulumi.Input<string>[] };
  endpoints: Endpoint[];
}
interface PodMonitorSpec {
  selector: { matchLabels: Record<string, string> };
  namespaceSelector: { matchNames: pulumi.Input<string>[] };
  podMetricsEndpoints: Endpoint[];
}
interface PrometheusRuleSpec {
  groups: RuleGroup[];
}

export interface MonitoringArgs {
  /** The platform's namespace (where PostgreSQL, the ERP and the jobs run). */
  namespace: string;
  /** Labels on the ServiceMonitor, PodMonitor and PrometheusRule for the operator's selectors. */
  labels?: Record<string, string>;
  /** Where Prometheus runs: allowed in by the NetworkPolicies to the scraped ports. */
  prometheus?: { namespace: string; podLabels?: Record<string, string> };
  /** Default DEFAULT_SCRAPE_INTERVAL. */
  scrapeInterval?: string;
  /** PostgreSQL's archive_timeout (loomworks:platform.archiveTimeoutSeconds). */
  archiveTimeoutSeconds: number;
  /** The runbook (docs/operations/monitoring.md as your team can open it); anchors are appended. */
  runbookUrl?: string;
  /** Thresholds; defaults in lib/monitoring/rules.ts. */
  rules?: Omit<AlertRuleOptions, "namespace" | "runbookUrl" | "archiveTimeoutSeconds">;
  /** The ERP pods' metrics endpoint (container port name and path); absent: no ERP PodMonitor. */
  erpMetrics?: { port: string; path: string };
}

export class Monitoring extends pulumi.ComponentResource {
  /** The rule groups in the PrometheusRule (what test/unit/prometheus-rules.test.ts checks). */
  readonly ruleGroups: RuleGroup[];

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("loomworks:kubernetes:Monitoring", name, {}, opts);
    const parent = { parent: this };
    const namespace = args.namespace;
    const labels = { ...objectLabels(), ...(args.labels ?? DEFAULT_MONITORING_LABELS) };
    const interval = args.scrapeInterval ?? DEFAULT_SCRAPE_INTERVAL;
    const prometheus = args.prometheus ?? DEFAULT_PROMETHEUS_PEER;

    this.ruleGroups = alertRuleGroups({
      ...args.rules,
      namespace,
      runbookUrl: args.runbookUrl ?? DEFAULT_RUNBOOK_URL,
      archiveTimeoutSeconds: args.archiveTimeoutSeconds,
    });

    const postgresSpec: ServiceMonitorSpec = {
      selector: { matchLabels: POSTGRES_LABELS },
      namespaceSelector: { matchNames: [namespace] },
      endpoints: [{ port: POSTGRES_METRICS_PORT, path: "/metrics", interval, scheme: "http" }],
    };
    new k8s.apiextensions.CustomResource(
      `${name}-postgres`,
      {
        apiVersion: MONITORING_API_VERSION,
        kind: "ServiceMonitor",
        metadata: { name: MONITORING_NAMES.postgresServiceMonitor, namespace, labels },
        spec: postgresSpec,
      },
      parent,
    );

    if (args.erpMetrics) {
      const erpSpec: PodMonitorSpec = {
        selector: { matchLabels: ERP_LABELS },
        namespaceSelector: { matchNames: [namespace] },
        podMetricsEndpoints: [
          { port: args.erpMetrics.port, path: args.erpMetrics.path, interval, scheme: "http" },
        ],
      };
      new k8s.apiextensions.CustomResource(
        `${name}-erp`,
        {
          apiVersion: MONITORING_API_VERSION,
          kind: "PodMonitor",
          metadata: { name: MONITORING_NAMES.erpPodMonitor, namespace, labels },
          spec: erpSpec,
        },
        parent,
      );
      this.allowScrape(
        name,
        "erp",
        MONITORING_NAMES.erpScrapePolicy,
        ERP_LABELS,
        args.erpMetrics.port,
        namespace,
        prometheus,
      );
    }

    const rulesSpec: PrometheusRuleSpec = { groups: this.ruleGroups };
    new k8s.apiextensions.CustomResource(
      `${name}-rules`,
      {
        apiVersion: MONITORING_API_VERSION,
        kind: "PrometheusRule",
        metadata: { name: MONITORING_NAMES.rules, namespace, labels },
        spec: rulesSpec,
      },
      parent,
    );
    this.registerOutputs({});
  }

  /** Ingress from the Prometheus pods to one named port of the selected pods (the namespace denies all by default). */
  private allowScrape(
    name: string,
    suffix: string,
    policyName: string,
    podLabels: Record<string, string>,
    port: string,
    namespace: string,
    prometheus: { namespace: string; podLabels?: Record<string, string> },
  ): void {
    new k8s.networking.v1.NetworkPolicy(
      `${name}-${suffix}-scrape`,
      {
        metadata: { name: policyName, namespace, labels: objectLabels() },
        spec: {
          podSelector: { matchLabels: podLabels },
          policyTypes: ["Ingress"],
          ingress: [
            {
              from: [
                {
                  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": prometheus.namespace } },
                  ...(prometheus.podLabels ? { podSelector: { matchLabels: prometheus.podLabels } } : {}),
                },
              ],
              ports: [{ protocol: "TCP", port }],
            },
          ],
        },
      },
      { parent: this },
    );
  }
}
