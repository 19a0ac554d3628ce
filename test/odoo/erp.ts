/**
 * A real Odoo 18 server run beside a local test stack, as a platform engineer runs it:
 * `odoo -c <stateDir>/odoo/odoo.conf`; and HTTP through the stack's router with a tenant's Host.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { InstalledOdoo } from "../../lib/odoo/installed";

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** One request to 127.0.0.1:port with the given Host header. */
export function request(
  port: number,
  host: string,
  pathname: string,
  opts: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: pathname,
        method: opts.method ?? "GET",
        headers: { Host: host, ...(opts.headers ?? {}) },
        timeout: 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString("utf8") });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${host}${pathname}: timed out`)));
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** A JSON-RPC call (Odoo's `/web/...` JSON routes); returns the result and the session cookie. */
export async function jsonRpc(
  port: number,
  host: string,
  pathname: string,
  params: Record<string, unknown>,
  cookie?: string,
): Promise<{ result?: unknown; error?: { message: string; data?: { message?: string } }; cookie?: string }> {
  const r = await request(port, host, pathname, {
    method: "POST",
    body: JSON.stringify({ jsonrpc: "2.0", method: "call", params, id: 1 }),
    headers: { "Content-Type": "application/json", ...(cookie ? { Cookie: cookie } : {}) },
  });
  if (r.status !== 200) throw new Error(`${host}${pathname}: HTTP ${r.status}: ${r.text.slice(0, 500)}`);
  const setCookie = r.headers["set-cookie"]?.find((c) => c.startsWith("session_id="));
  const parsed = JSON.parse(r.text) as { result?: unknown; error?: { message: string } };
  return { ...parsed, cookie: setCookie ? setCookie.split(";")[0] : cookie };
}

/** An admin session on a tenant: `/web/session/authenticate`. */
export async function login(
  port: number,
  host: string,
  db: string,
  loginName: string,
  password: string,
): Promise<{ uid: number; cookie: string }> {
  const r = await jsonRpc(port, host, "/web/session/authenticate", { db, login: loginName, password });
  if (r.error) throw new Error(`login to ${db}: ${JSON.stringify(r.error)}`);
  return { uid: (r.result as { uid: number }).uid, cookie: r.cookie as string };
}

/** `call_kw` of a model method in a logged-in session. */
export async function callKw(
  port: number,
  host: string,
  cookie: string,
  model: string,
  method: string,
  args: unknown[],
  kwargs: Record<string, unknown> = {},
): Promise<unknown> {
  const r = await jsonRpc(
    port,
    host,
    `/web/dataset/call_kw/${model}/${method}`,
    { model, method, args, kwargs },
    cookie,
  );
  if (r.error) throw new Error(r.error.data?.message ?? r.error.message);
  return r.result;
}

export class RunningErp {
  private exited = false;
  private constructor(
    private readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    child.on("exit", () => (this.exited = true));
  }

  /** Starts `odoo -c conf` and waits until its HTTP port answers. */
  static async start(
    odoo: InstalledOdoo,
    conf: string,
    httpPort: number,
    logFile: string,
  ): Promise<RunningErp> {
    const out = fs.openSync(logFile, "a");
    const child = spawn(odoo.command, ["-c", conf], {
      stdio: ["ignore", out, out],
      detached: true,
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    fs.closeSync(out);
    const erp = new RunningErp(child, logFile);
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (erp.exited) throw new Error(`the ERP exited at start:\n${erp.log().slice(-3000)}`);
      const up = await request(httpPort, "localhost", "/web/health").then(
        (r) => r.status === 200,
        () => false,
      );
      if (up) return erp;
      if (Date.now() > deadline)
        throw new Error(`the ERP did not answer in 120 s:\n${erp.log().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  log(): string {
    return fs.readFileSync(this.logFile, "utf8");
  }

  async stop(): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    const done = new Promise((r) => this.child.once("exit", r));
    process.kill(-this.child.pid, "SIGTERM");
    const timer = setTimeout(() => this.child.pid && process.kill(-this.child.pid, "SIGKILL"), 15_000);
    await done;
    clearTimeout(timer);
  }
}

/** Runs the `odoo` command once (e.g. `-i crm --stop-after-init`) and returns its exit code and output. */
export function runOdoo(
  odoo: InstalledOdoo,
  args: string[],
  input?: string,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(odoo.command, args, { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
    child.stdin.end(input ?? "");
  });
}
