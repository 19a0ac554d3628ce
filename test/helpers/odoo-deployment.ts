/**
 * An OdooDeployment on the smallest valid kubernetes settings, for tests that look at one aspect of
 * it (tenant files, AI keys) under the Pulumi mocks; `extra` holds the Args under test.
 */
import * as pulumi from "@pulumi/pulumi";
import { OdooDeployment, type OdooDeploymentArgs } from "../../components/kubernetes/OdooDeployment";
import { erpSettings } from "../../components/platform/kubernetesSettings";
import { kubernetesConfigSchema } from "../../infra/config/kubernetes";
import { minimalKubernetesSettings } from "./k8s-objects";

export function minimalOdooDeployment(
  name: string,
  namespace: string,
  image: string,
  extra: Pick<OdooDeploymentArgs, "databases" | "tenants"> & Partial<OdooDeploymentArgs>,
): OdooDeployment {
  return new OdooDeployment(name, {
    ...erpSettings(
      kubernetesConfigSchema.parse({
        ...minimalKubernetesSettings(namespace, image),
        createNamespace: false,
      }),
    ),
    database: {
      host: "postgres",
      user: "loomworks_erp",
      password: pulumi.secret("erp-db-password-0123456789"),
      peer: { podLabels: { app: "postgres" } },
    },
    adminPasswd: pulumi.secret("admin-passwd-0123456789abcdef"),
    ...extra,
  });
}
