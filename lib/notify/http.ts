/** One HTTP request with a deadline on the whole exchange; never throws (lib/notify's deliveries). */
import * as http from "node:http";
import * as https from "node:https";

export interface SendOutcome {
  /** The HTTP status, when there was an answer. */
  status?: number;
  /** Why there was none (an error code or the timeout; never the URL). */
  error?: string;
}

export interface SendRequest {
  method: "POST" | "PUT";
  contentType: string;
  body: string;
  timeoutMs: number;
}

export function sendOnce(url: URL, request: SendRequest): Promise<SendOutcome> {
  return new Promise((resolve) => {
    const client = url.protocol === "https:" ? https : http;
    let settled = false;
    const done = (outcome: SendOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const req = client.request(url, {
      method: request.method,
      headers: {
        "content-type": request.contentType,
        "content-length": Buffer.byteLength(request.body),
        "user-agent": "loomworks-notify/1",
      },
    });
    // The whole exchange, not only the socket's idleness: a receiver that trickles bytes is cut too.
    const timer = setTimeout(() => {
      done({ error: `no answer within ${request.timeoutMs} ms` });
      req.destroy();
    }, request.timeoutMs);
    req.on("response", (res) => {
      res.resume(); // the body is not needed; reading it frees the socket
      res.on("end", () => done({ status: res.statusCode ?? 0 }));
      res.on("error", () => done({ status: res.statusCode ?? 0 }));
    });
    req.on("error", (err: NodeJS.ErrnoException) => done({ error: err.code ?? "request failed" }));
    req.end(request.body);
  });
}

/** An HTTP answer worth another attempt: 5xx, 429 (rate limited) and 408 (request timeout). */
export function retriableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

export interface DeliveryOptions {
  /** Per attempt (default 10 s). */
  timeoutMs?: number;
  /** Attempts in all (default 4). */
  attempts?: number;
  /** Wait before the second attempt; doubled before each further one (default 1 s). */
  backoffMs?: number;
}

export interface DeliveryResult {
  delivered: boolean;
  attempts: number;
  /** The last attempt's HTTP status, when there was an answer. */
  status?: number;
  /** Why it was not delivered (no URL in it). */
  error?: string;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_ATTEMPTS = 4;
export const DEFAULT_BACKOFF_MS = 1_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends `request` until a 2xx answer, retrying network errors and retriable statuses with backoff,
 * at most `attempts` times; any other answer is final. Never throws.
 */
export async function deliver(
  target: URL,
  request: Omit<SendRequest, "timeoutMs">,
  opts: DeliveryOptions = {},
): Promise<DeliveryResult> {
  const attempts = Math.max(1, opts.attempts ?? DEFAULT_ATTEMPTS);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let last: SendOutcome = {};
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) await sleep((opts.backoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** (attempt - 2));
    last = await sendOnce(target, { ...request, timeoutMs });
    if (last.status !== undefined && last.status >= 200 && last.status < 300)
      return { delivered: true, attempts: attempt, status: last.status };
    if (last.status !== undefined && !retriableStatus(last.status))
      return { delivered: false, attempts: attempt, status: last.status, error: `HTTP ${last.status}` };
  }
  return {
    delivered: false,
    attempts,
    ...(last.status !== undefined ? { status: last.status, error: `HTTP ${last.status}` } : {}),
    ...(last.error !== undefined ? { error: last.error } : {}),
  };
}
