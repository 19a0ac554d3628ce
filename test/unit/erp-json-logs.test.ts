/**
 * The ERP's JSON logs (docker/addons/loomworks_json_logging): the formatter and its post-load hook
 * run in a real python3 (they import nothing from Odoo), logging through the standard logging
 * module into stdout as Odoo's handlers would. Each test checks the lines as a log collector would
 * read them: one JSON object per line, the fields, exceptions, non-ASCII text, multi-line messages.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../testkit/repo";

const ADDONS = path.join(repoRoot, "docker", "addons");

/** Runs `body` in python3 with the addon importable; returns stdout's lines. */
function python(body: string, env: Record<string, string> = {}): string[] {
  const prelude = [
    "import logging, sys, threading",
    `sys.path.insert(0, ${JSON.stringify(ADDONS)})`,
    "import loomworks_json_logging",
    "from loomworks_json_logging import json_formatter",
  ].join("\n");
  const r = spawnSync("python3", ["-c", `${prelude}\n${body}`], {
    encoding: "utf8",
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      PYTHONDONTWRITEBYTECODE: "1",
      PYTHONIOENCODING: "utf-8",
      ...env,
    },
    timeout: 30_000,
  });
  expect(r.error).toBeUndefined();
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split("\n").filter((l) => l !== "");
}

/** A logger writing to stdout through the JSON formatter, as the root logger's handler would. */
const JSON_LOGGER = `
handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(json_formatter.JsonFormatter())
log = logging.getLogger("odoo.addons.loomworks_test")
log.addHandler(handler)
log.setLevel(logging.DEBUG)
log.propagate = False
`;

interface Entry {
  time: string;
  level: string;
  logger: string;
  message: string;
  dbname: string | null;
  pid: number;
  exception?: string;
  [key: string]: unknown;
}

const parse = (lines: string[]): Entry[] => lines.map((l) => JSON.parse(l) as Entry);

describe("JsonFormatter", () => {
  it("writes one JSON object per record with time, level, logger, message, dbname and pid", () => {
    const before = Date.now();
    const lines = python(`${JSON_LOGGER}
log.info("tenant %s: %d users", "acme", 7)
log.warning("plain")
`);
    const after = Date.now();
    expect(lines).toHaveLength(2);
    const [info, warning] = parse(lines);
    expect(Object.keys(info).sort()).toEqual(["dbname", "level", "logger", "message", "pid", "time"]);
    expect(info).toMatchObject({
      level: "INFO",
      logger: "odoo.addons.loomworks_test",
      message: "tenant acme: 7 users",
      dbname: null,
    });
    expect(warning.level).toBe("WARNING");
    expect(info.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const t = Date.parse(info.time);
    expect(t).toBeGreaterThanOrEqual(before - 1000);
    expect(t).toBeLessThanOrEqual(after);
    expect(Number.isInteger(info.pid) && info.pid > 1).toBe(true);
    expect(warning.pid).toBe(info.pid);
  });

  it("takes the database from the record or, as Odoo does, from the thread; '?' means none", () => {
    const [fromRecord, fromThread, unknown] = parse(
      python(`${JSON_LOGGER}
log.info("a", extra={"dbname": "acme"})
threading.current_thread().dbname = "globex"
log.info("b")
threading.current_thread().dbname = "?"
log.info("c")
`),
    );
    expect(fromRecord.dbname).toBe("acme");
    expect(fromThread.dbname).toBe("globex");
    expect(unknown.dbname).toBeNull();
  });

  it("includes the exception's traceback, and the line stays one line", () => {
    const lines = python(`${JSON_LOGGER}
try:
    {}["missing-key"]
except KeyError:
    log.exception("lookup failed")
log.info("after")
`);
    expect(lines).toHaveLength(2);
    const [error, after] = parse(lines);
    expect(error.level).toBe("ERROR");
    expect(error.message).toBe("lookup failed");
    expect(error.exception).toMatch(/^Traceback \(most recent call last\):\n/);
    expect(error.exception).toMatch(/KeyError: 'missing-key'$/);
    expect(after.exception).toBeUndefined();
  });

  it("keeps multi-line messages on one line and non-ASCII text readable", () => {
    const message = 'Rechnung für Müller – 請求書 ✓\nsecond line\r\n\tthird "quoted" \\ line';
    const lines = python(`${JSON_LOGGER}
log.error(${JSON.stringify(message)})
`);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("Rechnung für Müller – 請求書 ✓");
    expect(lines[0]).not.toMatch(/[\r\t]/);
    expect(parse(lines)[0].message).toBe(message);
  });
});

describe("the post-load hook", () => {
  const HANDLERS = `
root = logging.getLogger()
root.handlers[:] = [logging.StreamHandler(sys.stdout), logging.StreamHandler(sys.stdout)]
root.setLevel(logging.INFO)
for h in root.handlers:
    h.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
loomworks_json_logging.post_load()
print("switched", sum(isinstance(h.formatter, json_formatter.JsonFormatter) for h in root.handlers))
logging.getLogger("odoo.service.server").info("HTTP service running")
`;

  it("switches every root handler to JSON when LOOMWORKS_LOG_FORMAT=json", () => {
    const [switched, ...records] = python(HANDLERS, { LOOMWORKS_LOG_FORMAT: "json" });
    expect(switched).toBe("switched 2");
    expect(records).toHaveLength(2);
    for (const e of parse(records)) {
      expect(e).toMatchObject({
        level: "INFO",
        logger: "odoo.service.server",
        message: "HTTP service running",
      });
    }
  });

  it("leaves Odoo's text format alone otherwise", () => {
    expect(python(HANDLERS)).toEqual([
      "switched 0",
      "INFO odoo.service.server: HTTP service running",
      "INFO odoo.service.server: HTTP service running",
    ]);
    expect(python(HANDLERS, { LOOMWORKS_LOG_FORMAT: "text" })[0]).toBe("switched 0");
  });

  it("is declared in the manifest of an installable module", () => {
    const [manifest] = python(`
import ast, json
text = open(${JSON.stringify(path.join(ADDONS, "loomworks_json_logging", "__manifest__.py"))}).read()
print(json.dumps(ast.literal_eval(text)))
`);
    expect(JSON.parse(manifest)).toMatchObject({
      post_load: "post_load",
      installable: true,
      license: "LGPL-3",
      version: expect.stringMatching(/^18\.0\./),
    });
  });
});
