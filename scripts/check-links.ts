/**
 * `npm run lint:links`: fails when a Markdown link or a path cited in a source file leads nowhere
 * (scripts/links.ts). Run from the checkout's root.
 */
import { checkRepository } from "./links";

const problems = checkRepository(process.cwd());
for (const p of problems) console.error(`${p.file}:${p.line}: ${p.message}`);
if (problems.length > 0) {
  console.error(`${problems.length} broken link(s) or cited path(s)`);
  process.exit(1);
}
