import type * as pulumi from "@pulumi/pulumi";
import { DockerHostPlatform } from "../components/platform/DockerHostPlatform";
import { KubernetesPlatform } from "../components/platform/KubernetesPlatform";
import { LocalPlatform } from "../components/platform/LocalPlatform";
import type { PlatformArgs, PlatformComponent } from "../components/platform/platform";

/** The stack's platform: the component of its target (`loomworks:platform.target`). */
export function declarePlatform(
  name: string,
  args: PlatformArgs,
  opts?: pulumi.ComponentResourceOptions,
): PlatformComponent {
  switch (args.config.platform.target) {
    case "docker":
      return new DockerHostPlatform(name, args, opts);
    case "kubernetes":
      return new KubernetesPlatform(name, args, opts);
    case "local":
      return new LocalPlatform(name, args, opts);
  }
}
