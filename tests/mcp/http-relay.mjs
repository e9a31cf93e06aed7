// SPDX-License-Identifier: MIT
// A Streamable HTTP front for 'sandpoolctl mcp', which speaks MCP on stdio
// only, so that the protocol's conformance suite (which tests servers at a
// URL) runs against the real server. Each HTTP session (an initialize
// without Mcp-Session-Id) gets its own 'sandpoolctl mcp' child, so its own
// sandbox session; messages are passed through unchanged, both ways, by the
// official SDK's two transports (StreamableHTTPServerTransport to the
// suite, StdioClientTransport to the child). The relay adds nothing to the
// protocol: a server notification that belongs to a request in flight (its
// progress token, or the only call in flight) is sent on that request's
// stream, as a server on HTTP would.
//
//   node http-relay.mjs PORT -- SANDPOOLCTL [ARGS...]
// Prints "listening http://127.0.0.1:PORT/mcp" once it listens (PORT 0: any).
import { randomUUID } from 'node:crypto';
import http from 'node:http';

import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

const [port, sep, command, ...args] = process.argv.slice(2);
if (sep !== '--' || !command) {
  console.error('usage: http-relay.mjs PORT -- SANDPOOLCTL [ARGS...]');
  process.exit(2);
}

const sessions = new Map(); // Mcp-Session-Id -> { http, child }

function relatedRequest(inflight, msg) {
  if (!('method' in msg) || 'id' in msg) return undefined; // only notifications
  const token = msg.params?.progressToken;
  for (const [id, t] of inflight) if (token !== undefined && t === token) return id;
  return inflight.size === 1 ? [...inflight.keys()][0] : undefined;
}

async function newSession() {
  const child = new StdioClientTransport({ command, args, env: process.env, stderr: 'inherit' });
  const inflight = new Map(); // request id -> progress token
  let httpT;
  httpT = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    onsessioninitialized: (id) => sessions.set(id, { http: httpT, child }),
    // the suite checks that a server on localhost refuses foreign Host headers
    enableDnsRebindingProtection: true,
    allowedHosts: [`127.0.0.1:${server.address().port}`, `localhost:${server.address().port}`],
  });
  httpT.onmessage = (msg) => {
    if ('method' in msg && 'id' in msg) inflight.set(msg.id, msg.params?._meta?.progressToken);
    child.send(msg).catch((e) => console.error('relay: to the server:', e.message));
  };
  child.onmessage = (msg) => {
    let opts;
    if ('id' in msg && !('method' in msg)) inflight.delete(msg.id);
    else {
      const rel = relatedRequest(inflight, msg);
      if (rel !== undefined) opts = { relatedRequestId: rel };
    }
    httpT.send(msg, opts).catch((e) => console.error('relay: to the client:', e.message));
  };
  const end = () => {
    if (httpT.sessionId) sessions.delete(httpT.sessionId);
    child.close().catch(() => {});
  };
  httpT.onclose = end;
  child.onclose = () => httpT.close().catch(() => {});
  await child.start();
  return httpT;
}

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const s = Buffer.concat(chunks).toString('utf8');
  try { return s ? JSON.parse(s) : undefined; } catch { return s; }
}

const server = http.createServer(async (req, res) => {
  try {
    if (new URL(req.url, 'http://x').pathname !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    const sid = req.headers['mcp-session-id'];
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    let t = sid ? sessions.get(sid)?.http : undefined;
    if (!t) {
      if (sid || req.method !== 'POST' || !isInitializeRequest(body)) {
        res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' }).end(JSON.stringify({
          jsonrpc: '2.0', id: null,
          error: { code: -32000, message: sid ? 'unknown session' : 'no session: initialize first' },
        }));
        return;
      }
      t = await newSession();
    }
    await t.handleRequest(req, res, body);
  } catch (e) {
    console.error('relay:', e);
    if (!res.headersSent) res.writeHead(500).end();
  }
});

const shutdown = async () => {
  for (const { child } of sessions.values()) await child.close().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${server.address().port}/mcp`);
});
