/**
 * The NetworkPolicies of the platform's namespace, children of the OdooDeployment: deny everything,
 * then allow DNS, the proxies to the ERP, the ERP (and its module-update Job) to PostgreSQL and
 * Redis, and the ERP to the internet on the configured ports only.
 */
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import {
  ERP_LABELS,
  ODOO_GEVENT_PORT,
  ODOO_HTTP_PORT,
  REDIS_LABELS,
  REDIS_PORT,
  UPDATE_LABELS,
  objectLabels,
  proxyPeer,
  type ProxyPods,
} from "./common";

type NetworkPolicyPeer = k8s.types.input.networking.v1.NetworkPolicyPeer;

/** Address ranges the ERP's internet egress excludes: cluster-internal, private and link-local (cloud metadata). */
export const NON_INTERNET_V4 = [
  "10.0.0.0/8",
  "100.64.0.0/10",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
];
export const NON_INTERNET_V6 = ["fc00::/7", "fe80::/10"];

/** How the ERP's PostgreSQL is reached through the NetworkPolicies. */
export type PostgresPeer =
  /** Pods (of the PostgreSQL StatefulSet) selected by labels, in `namespace` (default: the platform's). */
  | { podLabels: Record<string, string>; namespace?: string }
  /** A server outside the cluster (managed PostgreSQL). */
  | { cidr: string };

export interface ErpNetworkPoliciesArgs {
  /** The platform's namespace: its name (as configured) and the namespace output objects go in. */
  namespaceName: string;
  namespace: pulumi.Input<string>;
  /** The Gateway's or ingress controller's proxy pods: the only source allowed to reach the ERP. */
  proxy: ProxyPods;
  postgres: PostgresPeer;
  postgresPort: number;
  /** TCP ports the ERP may reach on the internet. */
  internetEgressPorts: readonly number[];
}

/** Declares `<name>-netpol-<policy>` for each policy under `parent`. */
export function declareErpNetworkPolicies(
  parent: pulumi.Resource,
  name: string,
  args: ErpNetworkPoliciesArgs,
): void {
  const { namespace, postgres, postgresPort: dbPort } = args;
  const policy = (suffix: string, spec: k8s.types.input.networking.v1.NetworkPolicySpec) =>
    new k8s.networking.v1.NetworkPolicy(
      `${name}-netpol-${suffix}`,
      { metadata: { name: suffix, namespace, labels: objectLabels() }, spec },
      { parent },
    );
  const erpPods = { matchLabels: ERP_LABELS };
  const updatePods = { matchLabels: UPDATE_LABELS };
  const tcp = (port: number) => ({ protocol: "TCP", port });

  // Nothing in the namespace talks to anything unless a policy below allows it.
  policy("default-deny-all", { podSelector: {}, policyTypes: ["Ingress", "Egress"] });
  policy("allow-dns", {
    podSelector: {},
    policyTypes: ["Egress"],
    egress: [
      {
        to: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
            podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
          },
        ],
        ports: [
          { protocol: "UDP", port: 53 },
          { protocol: "TCP", port: 53 },
        ],
      },
    ],
  });
  policy("erp-from-proxy", {
    podSelector: erpPods,
    policyTypes: ["Ingress"],
    ingress: [{ from: [proxyPeer(args.proxy)], ports: [tcp(ODOO_HTTP_PORT), tcp(ODOO_GEVENT_PORT)] }],
  });

  const postgresPeer: NetworkPolicyPeer =
    "cidr" in postgres
      ? { ipBlock: { cidr: postgres.cidr } }
      : {
          podSelector: { matchLabels: postgres.podLabels },
          ...(postgres.namespace !== undefined
            ? { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": postgres.namespace } } }
            : {}),
        };
  policy("erp-egress", {
    podSelector: erpPods,
    policyTypes: ["Egress"],
    egress: [
      { to: [postgresPeer], ports: [tcp(dbPort)] },
      { to: [{ podSelector: { matchLabels: REDIS_LABELS } }], ports: [tcp(REDIS_PORT)] },
      // The internet (AI APIs over HTTPS), not the cluster, private networks or cloud metadata.
      {
        to: [
          { ipBlock: { cidr: "0.0.0.0/0", except: NON_INTERNET_V4 } },
          { ipBlock: { cidr: "::/0", except: NON_INTERNET_V6 } },
        ],
        ports: args.internetEgressPorts.map(tcp),
      },
    ],
  });
  policy("redis-from-erp", {
    podSelector: { matchLabels: REDIS_LABELS },
    policyTypes: ["Ingress"],
    ingress: [{ from: [{ podSelector: erpPods }, { podSelector: updatePods }], ports: [tcp(REDIS_PORT)] }],
  });
  // The module-update Job: PostgreSQL and Redis (the entrypoint waits for both), nothing else.
  policy("erp-update-egress", {
    podSelector: updatePods,
    policyTypes: ["Egress"],
    egress: [
      { to: [postgresPeer], ports: [tcp(dbPort)] },
      { to: [{ podSelector: { matchLabels: REDIS_LABELS } }], ports: [tcp(REDIS_PORT)] },
    ],
  });
  // PostgreSQL pods in this namespace are under its default deny too: let the ERP in.
  if (
    !("cidr" in postgres) &&
    (postgres.namespace === undefined || postgres.namespace === args.namespaceName)
  ) {
    policy("postgres-from-erp", {
      podSelector: { matchLabels: postgres.podLabels },
      policyTypes: ["Ingress"],
      ingress: [{ from: [{ podSelector: erpPods }, { podSelector: updatePods }], ports: [tcp(dbPort)] }],
    });
  }
}
