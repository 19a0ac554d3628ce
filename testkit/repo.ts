import { existsSync } from "node:fs";
import * as path from "node:path";

/** The checkout's root: the nearest directory up holding Pulumi.yaml (from sources or from bin/). */
export const repoRoot = ((): string => {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "Pulumi.yaml"))) return dir;
  }
  throw new Error(`no Pulumi.yaml above ${__dirname}`);
})();
