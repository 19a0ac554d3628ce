/**
 * The ERP's tenant map and tenant credentials on the kubernetes target (OdooDeployment under the
 * Pulumi mocks of test/helpers/pulumi-mocks.ts): one Secret with both files, rendered by
 * lib/odoo/tenantMap.ts as on every target, its values sent as secrets and in no other object,
 * mounted as a directory (never subPath, so kubelet swaps the files in place) in every pod of the
 * ERP image, named by odoo.conf together with the loomworks_tenants addon, and absent from the pod
 * templates: a tenant suspended or a password rotated restarts no pod (the addon re-reads).
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { type K8sObject, isK8s, kindName, objectOf, one } from "../helpers/k8s-objects";
import { k8sSchemaErrors } from "../helpers/k8s-validate";
import { installMocks, isSecretInput, plain, registered, type Registration } from "../helpers/pulumi-mocks";

const registrations = installMocks();

import { minimalOdooDeployment } from "../helpers/odoo-deployment";
import { parseOdooConfig } from "../../lib/odoo/config";
import { renderTenantCredentials, renderTenantMap, type ErpTenant } from "../../lib/odoo/tenantMap";

const NS = "loomworks-tenants-test";
const ERP_IMAGE_REF = "registry.example.com/loomworks/erp:18.0-7";
const TENANTS: ErpTenant[] = [
  {
    subdomain: "acme",
    database: "acme",
    roleName: "acme",
    password: "acme-pw-0123456789abcdef",
    state: "active",
  },
  {
    subdomain: "globex",
    database: "globex",
    roleName: "globex",
    password: "globex-pw-0123456789abcdef",
    state: "suspended",
  },
];

type Volume = {
  name: string;
  secret?: { secretName: string; items?: { key: string }[]; defaultMode?: number };
};
type Mount = { name: string; mountPath: string; subPath?: string; readOnly?: boolean };
type Container = { image: string; volumeMounts?: Mount[] };
type PodSpec = { containers: Container[]; initContainers?: Container[]; volumes?: Volume[] };

async function build(name: string, tenants: ErpTenant[], namespace = NS): Promise<Registration[]> {
  const first = registrations.length;
  const erp = minimalOdooDeployment(name, namespace, ERP_IMAGE_REF, {
    databases: tenants.filter((t) => t.state === "active").map((t) => t.database),
    tenants: pulumi.secret(tenants),
  });
  await registered(erp);
  return registrations.slice(first);
}

/** Every pod template of the ERP image (the Deployment's, the update Job's), by object. */
function erpPods(objs: K8sObject[]): [string, PodSpec][] {
  return objs
    .filter((o) => o.kind === "Deployment" || o.kind === "Job")
    .map((o) => [kindName(o), o.spec.template.spec as PodSpec] as [string, PodSpec])
    .filter(([, pod]) => pod.containers.some((c) => c.image === ERP_IMAGE_REF));
}

describe("OdooDeployment: the tenant map and credentials", () => {
  let regs: Registration[] = [];
  let objs: K8sObject[] = [];
  beforeAll(async () => {
    regs = await build("erp-tenants", TENANTS);
    objs = regs.filter(isK8s).map(objectOf);
  });

  it("renders both files into the Secret loomworks-erp-tenants, each value sent as a secret", () => {
    const reg = regs.find(
      (r) =>
        isK8s(r) && objectOf(r).kind === "Secret" && objectOf(r).metadata.name === "loomworks-erp-tenants",
    );
    expect(reg).toBeDefined();
    const raw = (reg as Registration).inputs.stringData as Record<string, unknown>;
    expect(Object.keys(plain(raw) as object).sort()).toEqual(["tenant-credentials.json", "tenants.json"]);
    for (const key of ["tenants.json", "tenant-credentials.json"])
      expect(isSecretInput(raw) || isSecretInput(raw[key]), key).toBe(true);
    const data = plain(raw) as Record<string, string>;
    expect(data["tenants.json"]).toBe(renderTenantMap(TENANTS));
    expect(data["tenant-credentials.json"]).toBe(renderTenantCredentials(TENANTS));
    // Every declared tenant with its state (the addon serves the active ones); no maintenance directory.
    expect(JSON.parse(data["tenants.json"])).toEqual({
      version: 1,
      tenants: [
        { subdomain: "acme", database: "acme", state: "active" },
        { subdomain: "globex", database: "globex", state: "suspended" },
      ],
    });
    expect(JSON.parse(data["tenant-credentials.json"]).databases).toEqual({
      acme: { user: "acme", password: TENANTS[0].password },
      globex: { user: "globex", password: TENANTS[1].password },
    });
  });

  it("puts no tenant password in any object but that Secret", () => {
    const others = JSON.stringify(objs.filter((o) => o.metadata.name !== "loomworks-erp-tenants"));
    for (const t of TENANTS) expect(others, t.subdomain).not.toContain(t.password);
  });

  it("mounts it as a directory (no subPath, both files) in every pod of the ERP image", () => {
    const pods = erpPods(objs);
    expect(pods.map(([name]) => name.replace(/-[0-9a-f]{10}$/, "-<hash>")).sort()).toEqual([
      "Deployment/loomworks-erp",
      "Job/loomworks-erp-update-<hash>",
    ]);
    for (const [name, pod] of pods) {
      const volume = (pod.volumes ?? []).find((v) => v.secret?.secretName === "loomworks-erp-tenants");
      expect(volume, name).toBeDefined();
      expect(volume?.secret?.items, name).toBeUndefined(); // both keys, and any added later
      expect(volume?.secret?.defaultMode, name).toBe(0o440); // the ERP's group (fsGroup) reads them
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])].filter(
        (x) => x.image === ERP_IMAGE_REF,
      )) {
        const mounts = (c.volumeMounts ?? []).filter((m) => m.name === volume?.name);
        expect(mounts, name).toEqual([
          { name: volume?.name, mountPath: "/etc/loomworks-tenants", readOnly: true },
        ]);
        // Not inside another volume's mount (a mount point in a read-only ConfigMap volume cannot be made).
        for (const other of (c.volumeMounts ?? []).filter((m) => m.name !== volume?.name))
          expect(
            "/etc/loomworks-tenants/".startsWith(`${other.mountPath}/`),
            `${name}: ${other.mountPath}`,
          ).toBe(false);
        expect(
          (c.volumeMounts ?? []).some((m) => m.subPath !== undefined),
          name,
        ).toBe(false);
      }
    }
  });

  it("names the mounted files in odoo.conf and loads the loomworks_tenants addon server-wide", () => {
    const cm = objs.find(
      (o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("loomworks-erp-config-"),
    );
    const options = parseOdooConfig(String(cm?.data?.["odoo.conf"]));
    expect(options.loomworks_tenant_map).toBe("/etc/loomworks-tenants/tenants.json");
    expect(options.loomworks_tenant_credentials).toBe("/etc/loomworks-tenants/tenant-credentials.json");
    expect(options.server_wide_modules.split(",")).toEqual([
      "base",
      "web",
      "loomworks_json_logging",
      "loomworks_tenants",
    ]);
    expect(options.db_user).toBe("loomworks_erp");
  });

  it("renders only schema-valid objects", () => {
    expect(objs.flatMap((o) => k8sSchemaErrors(o).map((e) => `${kindName(o)}: ${e}`))).toEqual([]);
  });

  it("changes no pod template (and no ConfigMap) when only a tenant's state or password changes", async () => {
    const changed: ErpTenant[] = [
      { ...TENANTS[0], state: "suspended" },
      { ...TENANTS[1], password: "globex-rotated-0123456789", state: "active" },
    ];
    const again = (await build("erp-tenants-changed", changed, `${NS}-b`)).filter(isK8s).map(objectOf);
    // Same objects in another namespace: compare with the namespace taken out.
    const templates = (list: K8sObject[]) =>
      JSON.stringify(
        list
          .filter((o) => o.kind === "Deployment" || o.kind === "Job" || o.kind === "ConfigMap")
          .filter((o) => !o.metadata.name.startsWith("loomworks-erp-update-") || o.kind === "Job")
          .map((o) => ({ kind: o.kind, name: o.metadata.name, template: o.spec?.template ?? o.data })),
      ).replaceAll(`${NS}-b`, NS);
    expect(templates(again)).toBe(templates(objs));
    const secretOf = (list: K8sObject[]) => one(list, "Secret", "loomworks-erp-tenants").stringData;
    expect(secretOf(again)).not.toEqual(secretOf(objs));
    expect(secretOf(again)?.["tenant-credentials.json"]).toContain("globex-rotated-0123456789");
  });
});
