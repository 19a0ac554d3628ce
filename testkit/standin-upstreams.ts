/**
 * STAND-INS FOR THE ERP: tiny HTTP and WebSocket servers that take the place of Odoo's HTTP port
 * (8069) and its gevent WebSocket port (8072) behind the router in tests and benchmarks. Odoo
 * itself is not installable here. They record every request they receive (request line and
 * headers, exactly as nginx sent them), so tests can check what reached "the ERP" and that some
 * requests never did.
 *
 * The WebSocket side is a minimal RFC 6455 implementation written for these tests (no npm `ws`):
 * the opening handshake (Sec-WebSocket-Accept), unfragmented text frames echoed back with an
 * `echo:` prefix, and close frames. A matching minimal client (`websocketExchange`) and a raw
 * HTTP/1.1 client over a net.Socket (`rawRequest`, for request lines and duplicate headers that
 * Node's http client refuses to send) are here too.
 */
import { createHash, randomBytes } from "node:crypto";
import * as http from "node:http";
import * as net from "node:net";
import * as tls from "node:tls";

export interface RecordedRequest {
  /** Which stand-in received it: "http" or "websocket". */
  upstream: "http" | "websocket";
  method: string;
  /** The request target as received (nginx forwards the path, never an absolute URI). */
  url: string;
  httpVersion: string;
  /** Header names lowercased; repeated headers joined by Node's rules. */
  headers: http.IncomingHttpHeaders;
  /** Name/value pairs as sent, repeated headers kept apart. */
  rawHeaders: string[];
  upgrade: boolean;
}

export interface Standin {
  port: number;
  requests: RecordedRequest[];
  /** Forgets the recorded requests. */
  reset(): void;
  close(): Promise<void>;
}

/** Every value of one header as received (0, 1 or several). */
export function headerValues(req: RecordedRequest, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() === name.toLowerCase()) out.push(req.rawHeaders[i + 1]);
  }
  return out;
}

function record(
  upstream: RecordedRequest["upstream"],
  req: http.IncomingMessage,
  upgrade: boolean,
): RecordedRequest {
  return {
    upstream,
    method: req.method ?? "",
    url: req.url ?? "",
    httpVersion: req.httpVersion,
    headers: req.headers,
    rawHeaders: [...req.rawHeaders],
    upgrade,
  };
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (typeof address === "object" && address) resolve(address.port);
      else reject(new Error("stand-in: no port"));
    });
  });
}

function closeServer(server: http.Server, sockets: Set<net.Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface StandinHttpOptions {
  /** Do not record requests (benchmarks: millions of them). */
  record?: boolean;
}

/**
 * STAND-IN for the ERP's HTTP port: answers every request 200 with a small JSON body naming
 * itself and the host it was asked for, and records the request.
 */
export async function startStandinHttp(opts: StandinHttpOptions = {}): Promise<Standin> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<net.Socket>();
  const keep = opts.record ?? true;
  const server = http.createServer((req, res) => {
    if (keep) requests.push(record("http", req, false));
    const body = JSON.stringify({ standin: "erp-http", host: req.headers.host ?? null, url: req.url });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  // Longer than nginx's upstream keepalive_timeout (60 s), so nginx never reuses a closed connection.
  server.keepAliveTimeout = 75_000;
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  const port = await listen(server);
  return { port, requests, reset: () => void requests.splice(0), close: () => closeServer(server, sockets) };
}

// ---------------------------------------------------------------------------------------------
// RFC 6455 (minimal)

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
export const websocketAccept = (key: string): string =>
  createHash("sha1")
    .update(key + WS_GUID)
    .digest("base64");

export interface WsFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
  /** Bytes the frame took in the buffer. */
  length: number;
}

/** One frame from the start of `buf`, or undefined when it is not complete yet. */
export function parseFrame(buf: Buffer): WsFrame | undefined {
  if (buf.length < 2) return undefined;
  const fin = (buf[0] & 0x80) !== 0;
  const opcode = buf[0] & 0x0f;
  const masked = (buf[1] & 0x80) !== 0;
  let len = buf[1] & 0x7f;
  let offset = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    offset = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const maskLen = masked ? 4 : 0;
  if (buf.length < offset + maskLen + len) return undefined;
  const payload = Buffer.from(buf.subarray(offset + maskLen, offset + maskLen + len));
  if (masked) {
    const mask = buf.subarray(offset, offset + 4);
    for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
  }
  return { fin, opcode, payload, length: offset + maskLen + len };
}

/** A single unfragmented frame; clients must mask (RFC 6455 §5.3), servers must not. */
export function encodeFrame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const len = payload.length;
  const head: number[] = [0x80 | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (len < 126) head.push(maskBit | len);
  else if (len < 65536) head.push(maskBit | 126, (len >> 8) & 0xff, len & 0xff);
  else throw new Error("stand-in frames are small");
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i % 4];
  return Buffer.concat([Buffer.from(head), key, body]);
}

/**
 * STAND-IN for the ERP's WebSocket (gevent) port: accepts the RFC 6455 handshake on any path
 * and echoes each text frame as `echo:<text>`; plain HTTP requests (Odoo serves those on this
 * port too) get 200. Records every request, upgrades included.
 */
export async function startStandinWebsocket(): Promise<Standin> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    requests.push(record("websocket", req, false));
    const body = JSON.stringify({ standin: "erp-websocket-port", host: req.headers.host ?? null });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    requests.push(record("websocket", req, true));
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const key = req.headers["sec-websocket-key"];
    if (String(req.headers.upgrade).toLowerCase() !== "websocket" || typeof key !== "string") {
      socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${websocketAccept(key)}\r\n\r\n`,
    );
    let buf: Buffer = Buffer.from(head);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      for (let frame = parseFrame(buf); frame; frame = parseFrame(buf)) {
        buf = buf.subarray(frame.length);
        if (frame.opcode === 0x1) {
          socket.write(encodeFrame(0x1, Buffer.concat([Buffer.from("echo:"), frame.payload]), false));
        } else if (frame.opcode === 0x8) {
          socket.end(encodeFrame(0x8, frame.payload.subarray(0, 2), false));
        } else if (frame.opcode === 0x9) {
          socket.write(encodeFrame(0xa, frame.payload, false));
        }
      }
    };
    socket.on("data", onData);
    socket.on("error", () => undefined);
    if (buf.length > 0) onData(Buffer.alloc(0));
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  const port = await listen(server);
  return { port, requests, reset: () => void requests.splice(0), close: () => closeServer(server, sockets) };
}

// ---------------------------------------------------------------------------------------------
// Clients

export interface RawResponse {
  status: number;
  /** Header names lowercased; the last value wins. */
  headers: Record<string, string>;
  body: string;
  raw: string;
}

function parseHead(head: string): { status: number; headers: Record<string, string> } {
  const lines = head.split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? NaN);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status, headers };
}

/**
 * Sends `request` byte for byte (write `\r\n` yourself; end it with `Connection: close` or use
 * HTTP/1.0) and returns the response once the server closes the connection.
 */
export function rawRequest(port: number, request: string, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(request));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`rawRequest: no complete response within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString("utf8");
      const split = raw.indexOf("\r\n\r\n");
      const { status, headers } = parseHead(split >= 0 ? raw.slice(0, split) : raw);
      resolve({ status, headers, body: split >= 0 ? raw.slice(split + 4) : "", raw });
    });
  });
}

/** A GET with the given Host header (and extra header lines), `Connection: close`. */
export function getWithHost(
  port: number,
  host: string,
  pathname = "/",
  extraHeaders: string[] = [],
): Promise<RawResponse> {
  const lines = [`GET ${pathname} HTTP/1.1`, `Host: ${host}`, ...extraHeaders, "Connection: close", "", ""];
  return rawRequest(port, lines.join("\r\n"));
}

export interface WebsocketExchange {
  /** Status of the handshake response (101 when upgraded). */
  status: number;
  headers: Record<string, string>;
  /** Whether Sec-WebSocket-Accept matched our key. */
  acceptValid: boolean;
  /** The text frame the server sent back, when upgraded. */
  reply?: string;
  /** The response body when not upgraded. */
  body: string;
}

/** TLS for websocketExchange: the CA to verify the server with and the name to ask for (SNI). */
export interface ClientTls {
  ca: string;
  servername: string;
}

/**
 * Minimal WebSocket client: handshake on `pathname` with `Host: host`, one masked text frame,
 * one frame back, then a close frame. Over TLS when `clientTls` is given (the server's
 * certificate must verify against its CA).
 */
export function websocketExchange(
  port: number,
  host: string,
  pathname: string,
  message: string,
  extraHeaders: string[] = [],
  timeoutMs = 10_000,
  clientTls?: ClientTls,
): Promise<WebsocketExchange> {
  const key = randomBytes(16).toString("base64");
  const request = [
    `GET ${pathname} HTTP/1.1`,
    `Host: ${host}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${key}`,
    "Sec-WebSocket-Version: 13",
    ...extraHeaders,
    "",
    "",
  ].join("\r\n");
  return new Promise((resolve, reject) => {
    const onConnect = (): void => void socket.write(request);
    const socket = clientTls
      ? tls.connect({ port, host: "127.0.0.1", ...clientTls }, onConnect)
      : net.connect(port, "127.0.0.1", onConnect);
    let buf: Buffer = Buffer.alloc(0);
    let head: { status: number; headers: Record<string, string> } | undefined;
    let settled = false;
    const finish = (result: WebsocketExchange | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (result instanceof Error) {
        socket.destroy();
        reject(result);
      } else {
        resolve(result);
      }
    };
    const timer = setTimeout(
      () => finish(new Error(`websocketExchange: no reply within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on("error", (err) => finish(err));
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!head) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        head = parseHead(buf.subarray(0, end).toString("latin1"));
        buf = buf.subarray(end + 4);
        if (head.status === 101) socket.write(encodeFrame(0x1, Buffer.from(message), true));
      }
      if (head.status !== 101) {
        // Not upgraded: the body, as long as Content-Length says (or until the server closes).
        const length = Number(head.headers["content-length"] ?? NaN);
        if (Number.isFinite(length) && buf.length >= length) {
          socket.destroy();
          finish({
            status: head.status,
            headers: head.headers,
            acceptValid: false,
            body: buf.toString("utf8"),
          });
        }
        return;
      }
      const frame = parseFrame(buf);
      if (!frame) return;
      socket.end(encodeFrame(0x8, Buffer.from([0x03, 0xe8]), true));
      finish({
        status: 101,
        headers: head.headers,
        acceptValid: head.headers["sec-websocket-accept"] === websocketAccept(key),
        reply: frame.payload.toString("utf8"),
        body: "",
      });
    });
    socket.on("close", () => {
      if (head && head.status !== 101) {
        finish({
          status: head.status,
          headers: head.headers,
          acceptValid: false,
          body: buf.toString("utf8"),
        });
      } else {
        finish(new Error("websocketExchange: connection closed before a reply"));
      }
    });
  });
}
