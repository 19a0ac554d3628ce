/**
 * The platform's alerting rules (lib/monitoring/rules.ts, the objects the PrometheusRule deploys)
 * under promtool: `promtool check rules` on the generated rules file and `promtool test rules` on
 * the unit tests in test/monitoring/*.test.yaml, which are copied next to the generated file in a
 * temporary directory. Every alert must have a case where it fires and one where it must not, and
 * a runbook section in docs/operations/monitoring.md. promtool comes from Debian's `prometheus`
 * package (scripts/setup.sh); without it these tests fail, they are not skipped.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  alertNames,
  alertRuleGroups,
  rulesFile,
  walLateThresholdSeconds,
  type AlertRuleOptions,
} from "../../lib/monitoring/rules";
import { repoRoot } from "../../testkit/repo";
import { promtool } from "../helpers/promtool";

const TESTS_DIR = path.join(repoRoot, "test", "monitoring");
const RULES_FILE = "loomworks-rules.json";
const DOC = path.join(repoRoot, "docs", "operations", "monitoring.md");
/** The options the YAML test files are written against (their header comments repeat them). */
const TEST_OPTIONS: AlertRuleOptions = {
  namespace: "loomworks",
  runbookUrl: "https://runbooks.example/monitoring.md",
  archiveTimeoutSeconds: 60,
};

const groups = alertRuleGroups(TEST_OPTIONS);
const testFiles = fs
  .readdirSync(TESTS_DIR)
  .filter((f) => f.endsWith(".test.yaml"))
  .sort();

/** A directory with the rules file generated from `options` and copies of `files`. */
function workDir(options: AlertRuleOptions, files: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loomworks-promtool-"));
  fs.writeFileSync(path.join(dir, RULES_FILE), rulesFile(alertRuleGroups(options)));
  for (const f of files) fs.copyFileSync(path.join(TESTS_DIR, f), path.join(dir, f));
  return dir;
}

interface AlertCase {
  alertname: string;
  fires: boolean;
}

/**
 * The `alert_rule_test` entries of a promtool test file: the alert name and whether any alert is
 * expected (`exp_alerts: []` or no `exp_alerts` means none). Line-based: the files are ours and
 * keep promtool's documented layout (no YAML library here).
 */
function alertCases(text: string): AlertCase[] {
  const lines = text.split("\n");
  const cases: AlertCase[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*(?:-\s+)?alertname:\s*(\S+)\s*$/.exec(lines[i]);
    if (!m) continue;
    const next = lines.slice(i + 1).find((l) => /^\s*(?:-\s+)?(?:exp_alerts|alertname|eval_time):/.test(l));
    const fires = next !== undefined && /^\s*exp_alerts:\s*$/.test(next);
    cases.push({ alertname: m[1], fires });
  }
  return cases;
}

const dirs: string[] = [];
let dir: string;

beforeAll(() => {
  dir = workDir(TEST_OPTIONS, testFiles);
  dirs.push(dir);
});
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe("promtool", () => {
  it("is installed", () => {
    const r = promtool(["--version"], { cwd: repoRoot });
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/promtool, version \d+\.\d+/);
  });

  it("accepts the generated rules file", () => {
    const r = promtool(["check", "rules", RULES_FILE], { cwd: dir });
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${alertNames(groups).length} rules found`);
  });

  it("passes every alert's unit tests", () => {
    expect(testFiles.length).toBeGreaterThan(0);
    const r = promtool(["test", "rules", ...testFiles], { cwd: dir });
    expect(r.status, r.output).toBe(0);
    for (const f of testFiles) expect(r.output).toContain(`Unit Testing:  ${f}`);
  });

  it("fails the unit tests when a threshold moves (the tests pin the deployed rules)", () => {
    const moved = workDir(
      { ...TEST_OPTIONS, podRestarts: { threshold: 20 }, volumes: { warningFreeRatio: 0.08 } },
      ["pods.test.yaml", "volumes.test.yaml"],
    );
    dirs.push(moved);
    const r = promtool(["test", "rules", "pods.test.yaml", "volumes.test.yaml"], { cwd: moved });
    expect(r.status).not.toBe(0);
    expect(r.output).toContain("alertname: LoomworksPodRestarting");
    expect(r.output).toContain("alertname: LoomworksVolumeSpaceLow");
  });
});

describe("test coverage of the rules", () => {
  const cases = testFiles.flatMap((f) =>
    alertCases(fs.readFileSync(path.join(TESTS_DIR, f), "utf8")).map((c) => ({ ...c, file: f })),
  );

  it("finds the cases in the test files", () => {
    expect(alertCases("      - eval_time: 5m\n        alertname: A\n        exp_alerts: []\n")).toEqual([
      { alertname: "A", fires: false },
    ]);
    expect(alertCases("  - alertname: B\n    exp_alerts:\n      - exp_labels: {}\n")).toEqual([
      { alertname: "B", fires: true },
    ]);
  });

  it.each(alertNames(groups))("%s has a case where it fires and one where it must not", (alert) => {
    const mine = cases.filter((c) => c.alertname === alert);
    expect(
      mine.some((c) => c.fires),
      `no test case in test/monitoring where ${alert} fires`,
    ).toBe(true);
    expect(
      mine.some((c) => !c.fires),
      `no test case in test/monitoring where ${alert} stays quiet`,
    ).toBe(true);
  });

  it("names no alert that the rules do not have", () => {
    const unknown = cases.filter((c) => !alertNames(groups).includes(c.alertname));
    expect(unknown).toEqual([]);
  });
});

describe("rule groups", () => {
  it("give every alert a severity, a for:, a summary, a description and a runbook anchor in the docs", () => {
    const doc = fs.readFileSync(DOC, "utf8");
    const headings = new Set([...doc.matchAll(/^#{2,4} (\S+)\s*$/gm)].map((m) => m[1].toLowerCase()));
    for (const rule of groups.flatMap((g) => g.rules)) {
      expect(["info", "warning", "critical"]).toContain(rule.labels.severity);
      expect(rule.for).toMatch(/^\d+m$/);
      expect(rule.annotations.summary).toMatch(/\{\{ \$labels\.\w+ \}\}/);
      expect(rule.annotations.description.length).toBeGreaterThan(40);
      const anchor = rule.alert.toLowerCase();
      expect(rule.annotations.runbook_url).toBe(`${TEST_OPTIONS.runbookUrl}#${anchor}`);
      expect(headings.has(anchor), `docs/operations/monitoring.md has no section "### ${rule.alert}"`).toBe(
        true,
      );
      expect(rule.expr).toContain('namespace="loomworks"');
    }
  });

  it("derives the WAL lateness threshold from archive_timeout, at least 10 minutes", () => {
    expect(walLateThresholdSeconds(60)).toBe(600);
    expect(walLateThresholdSeconds(300)).toBe(1500);
    const late = alertRuleGroups({ ...TEST_OPTIONS, archiveTimeoutSeconds: 300 })
      .flatMap((g) => g.rules)
      .find((r) => r.alert === "LoomworksWalArchivingLate");
    expect(late?.expr).toBe('pg_stat_archiver_last_archive_age{namespace="loomworks"} > 1500');
  });

  it("rejects thresholds that make no sense", () => {
    expect(() =>
      alertRuleGroups({ ...TEST_OPTIONS, connections: { warningRatio: 0.9, criticalRatio: 0.8 } }),
    ).toThrow(/warningRatio must be below/);
    expect(() => alertRuleGroups({ ...TEST_OPTIONS, volumes: { criticalFreeRatio: 1.5 } })).toThrow(
      /criticalFreeRatio must be between 0 and 1/,
    );
    expect(() => alertRuleGroups({ ...TEST_OPTIONS, backups: { cronJobs: [] } })).toThrow(
      /at least one CronJob/,
    );
    expect(() => alertRuleGroups({ ...TEST_OPTIONS, podRestarts: { threshold: 0 } })).toThrow(
      /podRestarts.threshold must be a positive number/,
    );
  });

  it("quotes names in the generated PromQL", () => {
    const rules = alertRuleGroups({
      ...TEST_OPTIONS,
      namespace: 'we"ird',
      volumes: { claims: ["data.v1"] },
    }).flatMap((g) => g.rules);
    const low = rules.find((r) => r.alert === "LoomworksVolumeSpaceLow");
    expect(low?.expr).toContain('namespace="we\\"ird"');
    expect(low?.expr).toContain('persistentvolumeclaim=~"data\\\\.v1"');
  });
});
