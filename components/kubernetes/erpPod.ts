/**
 * The pods of the ERP image (the server's and the module-update Job's): the same container base,
 * environment, volumes and security settings, so that the Job runs exactly what the server runs.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import type { KubernetesConfig } from "../../infra/config/kubernetes";
import { ERP_IMAGE } from "../../lib/odoo/image";
import { NAMES, restrictedContainerSecurity } from "./common";
import { CONFIG_DIR, RUN_VOLUME_DIR, SECRETS_DIR, SECRET_FILES, entrypointEnv } from "./odooConfig";

type PodSpec = k8s.types.input.core.v1.PodSpec;

/** Where the ERP keeps its filestore (`data_dir`): the ReadWriteMany volume. */
export const ERP_DATA_DIR = "/var/lib/odoo";

export interface ErpPodSettings {
  image: string;
  imagePullPolicy?: KubernetesConfig["imagePullPolicy"];
  imagePullSecrets: readonly string[];
  /** Numeric user and group of the image's non-root user; the filestore's fsGroup. */
  user: { uid: number; gid: number };
  /** The ConfigMap holding odoo.conf. */
  configMapName: pulumi.Input<string>;
}

/** The ERP container without its name, arguments, environment and resources. */
export function erpContainerBase(s: ErpPodSettings) {
  return {
    image: s.image,
    ...(s.imagePullPolicy ? { imagePullPolicy: s.imagePullPolicy } : {}),
    securityContext: restrictedContainerSecurity(),
    volumeMounts: [
      { name: "config", mountPath: CONFIG_DIR, readOnly: true },
      { name: "secrets", mountPath: SECRETS_DIR, readOnly: true },
      // A directory, never subPath: kubelet updates a Secret volume in place only without subPath.
      { name: "tenants", mountPath: ERP_IMAGE.tenantsDir, readOnly: true },
      { name: "run", mountPath: RUN_VOLUME_DIR },
      { name: "filestore", mountPath: ERP_DATA_DIR },
      { name: "tmp", mountPath: "/tmp" },
    ],
  };
}

/** The entrypoint's environment; `skipUpdates`: the server never updates modules itself. */
export function erpEnv(skipUpdates: boolean) {
  return [
    ...entrypointEnv(),
    ...(skipUpdates ? [{ name: "LOOMWORKS_SKIP_UPDATES", value: "1" }] : []),
    { name: "PYTHONDONTWRITEBYTECODE", value: "1" },
    { name: "XDG_CACHE_HOME", value: "/tmp/.cache" },
  ];
}

/** The pod spec of the ERP image without its containers. */
export function erpPodSpec(s: ErpPodSettings): Omit<PodSpec, "containers"> {
  const { uid, gid } = s.user;
  return {
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    ...(s.imagePullSecrets.length > 0
      ? { imagePullSecrets: s.imagePullSecrets.map((name) => ({ name })) }
      : {}),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: uid,
      runAsGroup: gid,
      fsGroup: gid,
      // The filestore can hold millions of files: never chown it recursively on start.
      fsGroupChangePolicy: "OnRootMismatch",
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumes: [
      { name: "config", configMap: { name: s.configMapName } },
      {
        name: "secrets",
        secret: {
          secretName: NAMES.erpSecrets,
          // Only the ERP's own keys (not Redis' requirepass), readable by the pod's group.
          items: Object.values(SECRET_FILES).map((key) => ({ key, path: key })),
          defaultMode: 0o440,
        },
      },
      { name: "tenants", secret: { secretName: NAMES.erpTenants, defaultMode: 0o440 } },
      { name: "run", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
      { name: "filestore", persistentVolumeClaim: { claimName: NAMES.filestore } },
      { name: "tmp", emptyDir: { sizeLimit: "2Gi" } },
    ],
  };
}
