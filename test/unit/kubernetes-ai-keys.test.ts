/**
 * `platform.ai.keys` on the kubernetes target (OdooDeployment under the Pulumi mocks): the keys in
 * one Secret, `loomworks-ai-keys`, sent as secrets; the ERP Deployment's container takes them as
 * environment through `envFrom`; no ConfigMap nor any other object holds a value; a rotated key
 * changes the pod template's hash annotation (the ERP rolls), and the annotation is a hash, not a value.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { type K8sObject, isK8s, kindName, objectOf, one } from "../helpers/k8s-objects";
import { k8sSchemaErrors } from "../helpers/k8s-validate";
import { installMocks, isSecretInput, plain, registered, type Registration } from "../helpers/pulumi-mocks";

const registrations = installMocks();

import { AI_KEYS_ANNOTATION } from "../../components/kubernetes/OdooDeployment";
import { minimalOdooDeployment } from "../helpers/odoo-deployment";

const ERP_IMAGE_REF = "registry.example.com/loomworks/erp:18.0-7";
const KEYS = {
  OPENAI_API_KEY: "sk-openai-test-0123456789abcdefghij",
  ANTHROPIC_API_KEY: "sk-ant-test-0123456789abcdefghij",
};

type Container = {
  name: string;
  image: string;
  envFrom?: { secretRef?: { name: string; optional?: boolean }; configMapRef?: { name: string } }[];
  env?: { name: string; value?: string }[];
};

async function build(
  name: string,
  namespace: string,
  keys?: Record<string, string>,
): Promise<Registration[]> {
  const first = registrations.length;
  const aiKeys = keys
    ? Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, pulumi.secret(v)]))
    : undefined;
  const erp = minimalOdooDeployment(name, namespace, ERP_IMAGE_REF, {
    databases: ["acme"],
    tenants: pulumi.secret([]),
    ...(aiKeys ? { aiKeys } : {}),
  });
  await registered(erp);
  return registrations.slice(first);
}

const erpContainer = (objs: K8sObject[]): Container =>
  (one(objs, "Deployment", "loomworks-erp").spec.template.spec.containers as Container[]).find(
    (c) => c.name === "erp",
  ) as Container;
const annotationsOf = (objs: K8sObject[]): Record<string, string> =>
  (one(objs, "Deployment", "loomworks-erp").spec.template.metadata.annotations ?? {}) as Record<
    string,
    string
  >;

describe("OdooDeployment: AI provider keys", () => {
  let regs: Registration[] = [];
  let objs: K8sObject[] = [];
  beforeAll(async () => {
    regs = await build("erp-ai", "loomworks-ai-test", KEYS);
    objs = regs.filter(isK8s).map(objectOf);
  });

  it("puts the keys, by name, in the Secret loomworks-ai-keys, each sent as a secret", () => {
    const reg = regs.find(
      (r) => isK8s(r) && objectOf(r).kind === "Secret" && objectOf(r).metadata.name === "loomworks-ai-keys",
    ) as Registration;
    expect(reg).toBeDefined();
    const raw = reg.inputs.stringData as Record<string, unknown>;
    for (const name of Object.keys(KEYS))
      expect(isSecretInput(raw) || isSecretInput(raw[name]), name).toBe(true);
    expect(plain(raw)).toEqual(KEYS);
  });

  it("gives the ERP container the Secret as its environment (envFrom), and no value inline", () => {
    const erp = erpContainer(objs);
    expect(erp.envFrom).toEqual([{ secretRef: { name: "loomworks-ai-keys" } }]);
    expect((erp.env ?? []).map((e) => e.name)).not.toContain("OPENAI_API_KEY");
  });

  it("puts no key value in any ConfigMap, nor in any object but that Secret", () => {
    const configMaps = objs.filter((o) => o.kind === "ConfigMap");
    expect(configMaps.length).toBeGreaterThan(0); // odoo.conf is one: the check below has something to read
    const others = JSON.stringify(objs.filter((o) => kindName(o) !== "Secret/loomworks-ai-keys"));
    for (const [name, value] of Object.entries(KEYS)) {
      expect(JSON.stringify(configMaps), name).not.toContain(value);
      expect(others, name).not.toContain(value);
    }
  });

  it("annotates the pod template with a plain hash of the keys, which a rotated key changes", async () => {
    const hash = annotationsOf(objs)[AI_KEYS_ANNOTATION];
    expect(hash).toMatch(/^[0-9a-f]{16}$/);
    const deployment = regs.find(
      (r) => isK8s(r) && kindName(objectOf(r)) === "Deployment/loomworks-erp",
    ) as Registration;
    // Sent in the clear (not a secret envelope, nor inside one): previews show that the ERP rolls.
    const sent = deployment.inputs.spec as {
      template?: { metadata?: { annotations?: Record<string, unknown> } };
    };
    expect(sent.template?.metadata?.annotations?.[AI_KEYS_ANNOTATION]).toBe(hash);
    for (const value of Object.values(KEYS)) expect(hash).not.toContain(value.slice(0, 8));

    const rotated = (
      await build("erp-ai-rotated", "loomworks-ai-test-b", {
        ...KEYS,
        OPENAI_API_KEY: "sk-openai-rotated-9876543210",
      })
    )
      .filter(isK8s)
      .map(objectOf);
    expect(annotationsOf(rotated)[AI_KEYS_ANNOTATION]).toMatch(/^[0-9a-f]{16}$/);
    expect(annotationsOf(rotated)[AI_KEYS_ANNOTATION]).not.toBe(hash);
    // Nothing else of the pod template moved: only the annotation rolls the pods.
    const template = (list: K8sObject[]) => {
      const t = structuredClone(one(list, "Deployment", "loomworks-erp").spec.template);
      delete t.metadata.annotations;
      return JSON.stringify(t).replaceAll("loomworks-ai-test-b", "loomworks-ai-test");
    };
    expect(template(rotated)).toBe(template(objs));
  });

  it("renders only schema-valid objects", () => {
    expect(objs.flatMap((o) => k8sSchemaErrors(o).map((e) => `${kindName(o)}: ${e}`))).toEqual([]);
  });

  it("declares no Secret, envFrom or annotation without keys", async () => {
    const none = (await build("erp-no-ai", "loomworks-ai-test-c")).filter(isK8s).map(objectOf);
    expect(none.some((o) => o.kind === "Secret" && o.metadata.name === "loomworks-ai-keys")).toBe(false);
    expect(erpContainer(none).envFrom).toBeUndefined();
    expect(annotationsOf(none)[AI_KEYS_ANNOTATION]).toBeUndefined();
  });
});
