/**
 * The Kubernetes objects a component registers under the Pulumi mocks (test/helpers/pulumi-mocks.ts),
 * as they would be sent to the cluster: the registration's inputs with the secret envelopes removed.
 * Shared by the tests of the Kubernetes components.
 */
import { expect } from "vitest";
import { plain, type Registration } from "./pulumi-mocks";

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  [key: string]: unknown;
}

/** A registration of a Kubernetes object (not a component, not a dynamic resource). */
export const isK8s = (r: Registration): boolean => r.custom && r.type.startsWith("kubernetes:");
export const objectOf = (r: Registration): K8sObject => plain(r.inputs) as K8sObject;
export const kindName = (o: K8sObject): string => `${o.kind}/${o.metadata.name}`;

/** The one object of that kind and name (the test fails when there are none or several). */
export function one(objs: K8sObject[], kind: string, name: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && o.metadata.name === name);
  expect(found, `${kind}/${name}`).toHaveLength(1);
  return found[0];
}

/** The fewest `kubernetes` settings the schema accepts (Gateway API, DNS-01), for a component under test. */
export function minimalKubernetesSettings(namespace: string, image: string): Record<string, unknown> {
  return {
    namespace,
    image,
    gatewayClassName: "eg",
    proxy: { namespace: "gateway-system" },
    tls: {
      acmeEmail: "ops@loom.example",
      dns01: { provider: "cloudflare", apiTokenSecretRef: { name: "cf", key: "token" } },
    },
    filestore: { storageClass: "efs-sc", size: "10Gi" },
  };
}
