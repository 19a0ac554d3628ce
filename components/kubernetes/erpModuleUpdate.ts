/**
 * The module-update Job: once per image, before the Deployment rolls to it, the entrypoint's
 * `update` brings every listed tenant database up to the image's version. A child of the
 * OdooDeployment, with the list of databases in a ConfigMap of the same name.
 */
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import type { KubernetesConfig } from "../../infra/config/kubernetes";
import { NAMES, UPDATE_LABELS, contentHash, objectLabels } from "./common";
import { erpContainerBase, erpEnv, erpPodSpec, type ErpPodSettings } from "./erpPod";

/** The module-update Job's list of databases (a ConfigMap mounted as a directory). */
export const UPDATE_DIR = "/etc/loomworks-update";
export const UPDATE_DATABASES_FILE = "databases";

export interface ModuleUpdateArgs {
  namespace: pulumi.Input<string>;
  pod: ErpPodSettings;
  resources: KubernetesConfig["resources"];
  /** Tenant databases to update (not empty). */
  databases: readonly string[];
  /** What the Job waits for: odoo.conf and the Secrets it mounts. */
  dependsOn: pulumi.Resource[];
}

/** The Job's name: one per image. */
export function moduleUpdateName(image: string): string {
  return `${NAMES.erpUpdatePrefix}-${contentHash(image)}`;
}

/** Declares `<name>-update-databases` (ConfigMap) and `<name>-update` (Job) under `parent`. */
export function declareModuleUpdate(
  parent: pulumi.Resource,
  name: string,
  args: ModuleUpdateArgs,
): k8s.batch.v1.Job {
  const { namespace } = args;
  const jobName = moduleUpdateName(args.pod.image);
  const podSpec = erpPodSpec(args.pod);
  const containerBase = erpContainerBase(args.pod);
  // The list as a file (one name a line): thousands of tenants would pass the kernel's limit
  // on one environment variable (128 KiB).
  const databasesList = new k8s.core.v1.ConfigMap(
    `${name}-update-databases`,
    {
      metadata: { name: jobName, namespace, labels: objectLabels(UPDATE_LABELS) },
      data: { [UPDATE_DATABASES_FILE]: [...args.databases].sort().join("\n") + "\n" },
    },
    // Read once by the Job of this image: a later tenant list neither replaces it nor reruns the Job.
    { parent, ignoreChanges: ["data"] },
  );
  return new k8s.batch.v1.Job(
    `${name}-update`,
    {
      metadata: { name: jobName, namespace, labels: objectLabels(UPDATE_LABELS) },
      spec: {
        backoffLimit: 1,
        template: {
          metadata: { labels: objectLabels(UPDATE_LABELS) },
          spec: {
            ...podSpec,
            restartPolicy: "Never",
            volumes: [
              ...(podSpec.volumes as k8s.types.input.core.v1.Volume[]),
              { name: "databases", configMap: { name: jobName } },
            ],
            containers: [
              {
                ...containerBase,
                name: "update",
                args: ["update"],
                env: [
                  ...erpEnv(false),
                  { name: "LOOMWORKS_DATABASES_FILE", value: `${UPDATE_DIR}/${UPDATE_DATABASES_FILE}` },
                ],
                volumeMounts: [
                  ...containerBase.volumeMounts,
                  { name: "databases", mountPath: UPDATE_DIR, readOnly: true },
                ],
                resources: {
                  requests: { ...args.resources.requests },
                  limits: { ...args.resources.limits },
                },
              },
            ],
          },
        },
      },
    },
    {
      parent,
      dependsOn: [...args.dependsOn, databasesList],
      // One Job per image (its name): a later tenant list does not rerun it; the next image does.
      // A failed update fails `pulumi up` before the Deployment moves to the new image.
      ignoreChanges: ["spec"],
      customTimeouts: { create: "4h", update: "4h" },
    },
  );
}
