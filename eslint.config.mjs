import js from "@eslint/js";
import { createNodeResolver, importX } from "eslint-plugin-import-x";
import tseslint from "typescript-eslint";
import loomworks from "./tools/eslint/no-folder-cycle.mjs";

/**
 * The layers, top to bottom: infra (the Pulumi program, its configuration, the ops CLI) may use
 * all; components -> dynamic-providers -> lib. Each zone forbids `target` to import from `from`.
 * Cycles are refused between files (import-x/no-cycle) and between folders (loomworks/no-folder-cycle).
 */
const layers = [
  {
    target: "./lib",
    from: ["./components", "./dynamic-providers", "./infra"],
    message: "lib is the bottom layer",
  },
  {
    target: "./dynamic-providers",
    from: ["./components", "./infra"],
    message: "providers sit below components and infra",
  },
  // The stack configuration's schema and types (infra/config) are the components' Args vocabulary.
  { target: "./components", from: "./infra", except: ["./config"], message: "components sit below infra" },
];

export default tseslint.config(
  { ignores: ["bin/", "node_modules/", ".tools/", ".loomworks/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { "import-x": importX, loomworks },
    languageOptions: {
      globals: { process: "readonly", console: "readonly", __dirname: "readonly", require: "readonly" },
      // Typed rules (floating promises) read the program's types: the type-check config covers every .ts file.
      parserOptions: { project: ["./tsconfig.test.json"], tsconfigRootDir: import.meta.dirname },
    },
    settings: {
      "import-x/extensions": [".ts", ".js"],
      "import-x/parsers": { "@typescript-eslint/parser": [".ts"] },
      "import-x/resolver-next": [createNodeResolver({ extensions: [".ts", ".js", ".json"] })],
    },
    rules: {
      "@typescript-eslint/no-require-imports": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
      "import-x/no-restricted-paths": ["error", { zones: layers }],
      "loomworks/no-folder-cycle": ["error", { project: "tsconfig.test.json" }],
    },
  },
  // Files outside tsconfig.test.json: linted without type information.
  { files: ["**/*.js", "eslint.config.mjs", "vitest.config.ts"], ...tseslint.configs.disableTypeChecked },
);
