/**
 * What a router test file runs its nginx instances against: the ERP's stand-ins (HTTP and
 * WebSocket, testkit/standin-upstreams.ts) and the state directories of its routers, each
 * router stopped and its directory removed at the end.
 */
import { promises as fs } from "node:fs";
import { stopRouter } from "../../lib/router";
import { makeStateDir } from "../../testkit/cluster";
import { startStandinHttp, startStandinWebsocket, type Standin } from "../../testkit/standin-upstreams";

export interface RouterBed {
  erpHttp: Standin;
  erpWs: Standin;
  /** A new state directory, cleaned up by close(). */
  newStateDir(prefix: string): Promise<string>;
  /** Forgets the requests the stand-ins recorded. */
  reset(): void;
  /** Stops every router started in the bed's directories, removes them, stops the stand-ins. */
  close(): Promise<void>;
}

export async function startRouterBed(): Promise<RouterBed> {
  const erpHttp = await startStandinHttp();
  const erpWs = await startStandinWebsocket();
  const dirs: string[] = [];
  return {
    erpHttp,
    erpWs,
    async newStateDir(prefix) {
      const dir = await makeStateDir(prefix);
      dirs.push(dir);
      return dir;
    },
    reset() {
      erpHttp.reset();
      erpWs.reset();
    },
    async close() {
      for (const dir of dirs) {
        await stopRouter(dir).catch(() => undefined);
        await fs.rm(dir, { recursive: true, force: true });
      }
      await erpHttp.close();
      await erpWs.close();
    },
  };
}
