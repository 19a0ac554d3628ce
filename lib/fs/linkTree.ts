import { CommandError, runCommand } from "../process/run";

/**
 * Copies `src/.` into `dst` as hard links (`cp -al`; a plain copy across filesystems). `noClobber`
 * keeps existing files. Filestores are content-addressed (a file is never rewritten once written),
 * so linking is a safe copy.
 */
export async function linkTree(src: string, dst: string, noClobber: boolean): Promise<void> {
  const flags = noClobber ? "-aln" : "-al";
  const linked = await runCommand("cp", [flags, `${src}/.`, `${dst}/`], { timeoutMs: 60 * 60_000 });
  if (linked.code === 0) return;
  const copied = await runCommand("cp", [noClobber ? "-an" : "-a", `${src}/.`, `${dst}/`], {
    timeoutMs: 4 * 60 * 60_000,
  });
  if (copied.code !== 0) throw new CommandError(`cp ${flags} ${src}/. ${dst}/`, copied);
}
