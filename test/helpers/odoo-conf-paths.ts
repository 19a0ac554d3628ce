/**
 * Whether every path an odoo.conf names exists where the ERP runs: in the image (as far as its
 * Dockerfile tells, test/helpers/dockerfile-lint.ts `imagePaths`) or in a volume the pod mounts.
 * A path under a mount is looked up in the mount alone (the mount hides the image there); under a
 * Secret or ConfigMap volume it must be one of the volume's files.
 */
import { parseOdooConfig } from "../../lib/odoo/config";
import type { K8sObject } from "./k8s-objects";

export interface ConfPath {
  option: string;
  path: string;
}

/** Every absolute path in the file: an option's value, or an entry of a comma-separated list (addons_path). */
export function odooConfPaths(text: string): ConfPath[] {
  return Object.entries(parseOdooConfig(text)).flatMap(([option, value]) =>
    value
      .split(",")
      .map((entry) => entry.trim())
      .filter((entry) => entry.startsWith("/"))
      .map((path) => ({ option, path })),
  );
}

interface VolumeMount {
  name: string;
  mountPath: string;
}
interface Volume {
  name: string;
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  configMap?: { name: string; items?: { key: string; path: string }[] };
  [source: string]: unknown;
}

/** The files of a Secret or ConfigMap volume: its items, or every key of the object it names. */
function volumeFiles(volume: Volume, objects: K8sObject[]): string[] {
  const source = volume.secret ?? volume.configMap;
  if (!source) return [];
  if (source.items) return source.items.map((i) => i.path);
  const kind = volume.secret ? "Secret" : "ConfigMap";
  const name = volume.secret ? volume.secret.secretName : volume.configMap?.name;
  const object = objects.find((o) => o.kind === kind && o.metadata.name === name);
  return Object.keys({ ...object?.data, ...object?.stringData });
}

/**
 * Where `path` comes from in a container of `pod` (a PodSpec): `image`, `volume <name>`, or
 * undefined when nothing provides it.
 */
export function pathSource(
  path: string,
  pod: { containers: { volumeMounts?: VolumeMount[] }[]; volumes?: Volume[] },
  image: ReadonlySet<string>,
  objects: K8sObject[],
): string | undefined {
  const mounts = pod.containers[0].volumeMounts ?? [];
  const mount = mounts
    .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath.replace(/\/$/, "")}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount) return image.has(path) ? "image" : undefined;
  const volume = (pod.volumes ?? []).find((v) => v.name === mount.name);
  if (!volume) return undefined;
  if (path === mount.mountPath || !(volume.secret ?? volume.configMap)) return `volume ${mount.name}`;
  const file = path.slice(mount.mountPath.replace(/\/$/, "").length + 1);
  return volumeFiles(volume, objects).includes(file) ? `volume ${mount.name}` : undefined;
}

/** `option = path` of each path in the file that nothing provides in the pod. */
export function unprovidedConfPaths(
  text: string,
  pod: Parameters<typeof pathSource>[1],
  image: ReadonlySet<string>,
  objects: K8sObject[],
): string[] {
  return odooConfPaths(text)
    .filter((p) => pathSource(p.path, pod, image, objects) === undefined)
    .map((p) => `${p.option} = ${p.path}`);
}
