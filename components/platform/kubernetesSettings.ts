/**
 * The `loomworks:platform.kubernetes` section cut down to what each Kubernetes component takes
 * (its narrow Args): the one place that knows both the stack's keys and the components' Args.
 */
import type { KubernetesConfig } from "../../infra/config/kubernetes";
import type { OdooDeploymentArgs } from "../kubernetes/OdooDeployment";
import type { KubernetesRouterArgs } from "../kubernetes/Router";

export type ErpSettings = Omit<
  OdooDeploymentArgs,
  "database" | "adminPasswd" | "databases" | "tenants" | "credentialRotation"
>;

export type RouterSettings = Pick<KubernetesRouterArgs, "routing" | "tls" | "errorPagesImage" | "proxy">;

/** OdooDeployment's settings from the section. */
export function erpSettings(k8s: KubernetesConfig): ErpSettings {
  return {
    namespace: { name: k8s.namespace, create: k8s.createNamespace, podSecurity: k8s.podSecurity },
    image: k8s.image,
    ...(k8s.imagePullPolicy !== undefined ? { imagePullPolicy: k8s.imagePullPolicy } : {}),
    imagePullSecrets: k8s.imagePullSecrets,
    addonsPath: k8s.addonsPath,
    user: k8s.erpUser,
    resources: k8s.resources,
    replicas: k8s.replicas,
    autoscaling: k8s.autoscaling,
    filestore: k8s.filestore,
    redis: k8s.redis,
    proxy: k8s.proxy,
    internetEgressPorts: k8s.internetEgressPorts,
  };
}

/** KubernetesRouter's settings from the section (the schema requires the routing mode's class name). */
export function routerSettings(k8s: KubernetesConfig): RouterSettings {
  return {
    routing: routing(k8s),
    tls: k8s.tls,
    errorPagesImage: k8s.errorPagesImage,
    proxy: k8s.proxy,
  };
}

function routing(k8s: KubernetesConfig): KubernetesRouterArgs["routing"] {
  if (k8s.routing === "gateway") {
    if (!k8s.gatewayClassName)
      throw new Error("kubernetes.gatewayClassName is required with routing: gateway");
    return { mode: "gateway", gatewayClassName: k8s.gatewayClassName };
  }
  if (!k8s.ingressClassName) throw new Error("kubernetes.ingressClassName is required with routing: ingress");
  return { mode: "ingress", ingressClassName: k8s.ingressClassName, annotations: k8s.ingressAnnotations };
}
