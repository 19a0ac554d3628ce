/**
 * `npm run docs:config`: rewrites the generated stack-key reference of docs/configuration.md from
 * the configuration schemas (infra/config/reference.ts). Run from the checkout's root.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { withConfigReference } from "../infra/config/reference";

const file = "docs/configuration.md";
async function main(): Promise<void> {
  const before = readFileSync(file, "utf8");
  const after = await withConfigReference(before, file);
  if (after !== before) writeFileSync(file, after);
  console.log(after === before ? `${file} is up to date` : `${file} rewritten`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
