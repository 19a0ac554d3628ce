// @ts-check
/**
 * ESLint rule `loomworks/no-folder-cycle`: no folder imports, directly or through other folders,
 * a folder that imports it back (lib/a -> lib/b -> lib/a), even when no file-level cycle exists
 * (import-x/no-cycle catches only those). Every import counts, type-only ones too: a folder is a
 * unit a reader takes in whole, so its dependencies must point one way.
 *
 * The graph of the whole program (the files of the rule's `project` tsconfig, imports resolved as
 * TypeScript resolves them) is built once per ESLint process; the file being linted is read from
 * ESLint's buffer, the others from disk. Unit-tested in test/unit/no-folder-cycle.test.ts.
 */
import * as path from "node:path";
import ts from "typescript";

/**
 * @typedef {{ specifier: string, pos: number, target: string }} ImportEdge
 *   `target` is the imported file, relative to the root; `pos` the specifier's offset in the text.
 * @typedef {Map<string, Set<string>>} Graph  folder -> the folders it imports
 */

/**
 * The program files that `file` imports (import, export ... from, require("..."), import("...")).
 * @param {string} file  absolute path
 * @param {string} text
 * @param {string} root
 * @param {ts.CompilerOptions} options
 * @param {ts.ModuleResolutionCache} [cache]
 * @returns {ImportEdge[]}
 */
export function importEdges(file, text, root, options, cache) {
  const { importedFiles } = ts.preProcessFile(text, true, true);
  /** @type {ImportEdge[]} */
  const edges = [];
  for (const ref of importedFiles) {
    const resolved = ts.resolveModuleName(ref.fileName, file, options, ts.sys, cache).resolvedModule;
    if (!resolved || resolved.isExternalLibraryImport) continue;
    const target = path.relative(root, resolved.resolvedFileName);
    if (target.startsWith("..") || target.split(path.sep).includes("node_modules")) continue;
    edges.push({ specifier: ref.fileName, pos: ref.pos, target });
  }
  return edges;
}

/**
 * The folder of a root-relative file path, with "/" separators.
 * @param {string} file
 */
export function folderOf(file) {
  return path.dirname(file).split(path.sep).join("/");
}

/**
 * Folder graph of files and their import targets (root-relative); edges inside a folder are left out.
 * @param {Iterable<[string, string[]]>} fileImports  file -> files it imports
 * @returns {Graph}
 */
export function folderGraph(fileImports) {
  /** @type {Graph} */
  const graph = new Map();
  for (const [file, targets] of fileImports) {
    const from = folderOf(file);
    const out = graph.get(from) ?? new Set();
    graph.set(from, out);
    for (const target of targets) if (folderOf(target) !== from) out.add(folderOf(target));
  }
  return graph;
}

/**
 * The strongly connected components of more than one folder (Tarjan), each sorted.
 * @param {Graph} graph
 * @returns {string[][]}
 */
export function folderCycles(graph) {
  let next = 0;
  /** @type {Map<string, number>} */ const index = new Map();
  /** @type {Map<string, number>} */ const low = new Map();
  /** @type {string[]} */ const stack = [];
  const onStack = new Set();
  /** @type {string[][]} */ const cycles = [];
  /** @param {string} v */
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(/** @type {number} */ (low.get(v)), /** @type {number} */ (low.get(w))));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(/** @type {number} */ (low.get(v)), /** @type {number} */ (index.get(w))));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    /** @type {string[]} */ const component = [];
    let w;
    do {
      w = /** @type {string} */ (stack.pop());
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) cycles.push(component.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

/**
 * A shortest way back from `from` to `to` through the graph, both ends included (breadth first).
 * @param {Graph} graph
 * @param {string} from
 * @param {string} to
 * @returns {string[] | undefined}
 */
export function pathBetween(graph, from, to) {
  /** @type {Map<string, string>} */ const cameFrom = new Map();
  const queue = [from];
  const seen = new Set(queue);
  while (queue.length) {
    const v = /** @type {string} */ (queue.shift());
    if (v === to) {
      const way = [v];
      for (let c = v; c !== from;) way.unshift((c = /** @type {string} */ (cameFrom.get(c))));
      return way;
    }
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (seen.has(w)) continue;
      seen.add(w);
      cameFrom.set(w, v);
      queue.push(w);
    }
  }
  return undefined;
}

/**
 * @typedef {{ options: ts.CompilerOptions, cache: ts.ModuleResolutionCache, files: Map<string, string[]>, graph: Graph, cycles: string[][] }} Program
 * @type {Map<string, Program>}
 */
const programs = new Map();

/**
 * The files of a tsconfig and what each imports, read from disk once per process.
 * @param {string} root
 * @param {string} project  tsconfig path relative to root
 */
function programImports(root, project) {
  const key = path.join(root, project);
  const known = programs.get(key);
  if (known) return known;
  const config = ts.readConfigFile(key, ts.sys.readFile);
  if (config.error) throw new Error(`no-folder-cycle: cannot read ${key}`);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, path.dirname(key));
  const cache = ts.createModuleResolutionCache(root, (name) => name, parsed.options);
  /** @type {Map<string, string[]>} */
  const files = new Map();
  for (const file of parsed.fileNames) {
    const text = ts.sys.readFile(file) ?? "";
    const edges = importEdges(file, text, root, parsed.options, cache);
    files.set(
      path.relative(root, file),
      edges.map((e) => e.target),
    );
  }
  const graph = folderGraph(files);
  const program = { options: parsed.options, cache, files, graph, cycles: folderCycles(graph) };
  programs.set(key, program);
  return program;
}

/** @type {import("eslint").Rule.RuleModule} */
export const noFolderCycle = {
  meta: {
    type: "problem",
    docs: { description: "folders must not import each other, directly or through other folders" },
    schema: [
      {
        type: "object",
        properties: { project: { type: "string" } },
        additionalProperties: false,
      },
    ],
    messages: {
      cycle: "{{from}} imports {{to}}, which leads back to it ({{way}}): folders must not form a cycle",
    },
  },
  create(context) {
    const root = context.cwd;
    const file = path.relative(root, context.filename);
    if (file.startsWith("..")) return {};
    const project = context.options[0]?.project ?? "tsconfig.json";
    return {
      Program() {
        const program = programImports(root, project);
        const text = context.sourceCode.text;
        const edges = importEdges(context.filename, text, root, program.options, program.cache);
        const targets = edges.map((e) => e.target);
        let { graph, cycles } = program;
        if (String(program.files.get(file)) !== String(targets)) {
          // The buffer differs from the file on disk (an editor): the graph with the buffer's imports.
          graph = folderGraph(new Map(program.files).set(file, targets));
          cycles = folderCycles(graph);
        }
        const from = folderOf(file);
        const cycle = cycles.find((c) => c.includes(from));
        if (!cycle) return;
        for (const edge of edges) {
          const to = folderOf(edge.target);
          if (to === from || !cycle.includes(to)) continue;
          const way = pathBetween(graph, to, from) ?? [to, from];
          context.report({
            loc: context.sourceCode.getLocFromIndex(edge.pos),
            messageId: "cycle",
            data: { from, to, way: [from, ...way].join(" -> ") },
          });
        }
      },
    };
  },
};

/** The project's own ESLint plugin. */
export default { meta: { name: "loomworks" }, rules: { "no-folder-cycle": noFolderCycle } };
