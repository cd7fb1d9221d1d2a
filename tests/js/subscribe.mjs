// One subscription through graphql-ws's client, as a frontend makes it, for
// tests/test_graphql_ws_client.py. What happens is printed as it happens, one JSON object a line
// on stdout, each with `at` (seconds since the epoch, the clock the server's tokens use):
//   {"event": "connectionParams", "call": n}      the client asks for its sign-in
//   {"event": "connected", "count": n}            acknowledged (n-th time)
//   {"event": "closed", "code": c, "reason": r}   the socket closed
//   {"event": "next", "payload": {...}}           a result ({data} or {errors})
//   {"event": "error", "code": c} | {"event": "error", "errors": [...]}   the subscription failed
//   {"event": "complete"}                         the subscription ended
// The process exits after "error" or "complete".
//
// Arguments: url, document, [variables as JSON]. Environment:
//   ROOST_TOKEN_FILE  read afresh each time the client asks for connectionParams (so the test can
//                     hand in a fresh token for a reconnect); left out, no connectionParams at all.
//   ROOST_RETRY_WAIT_MS  the wait before a reconnect (default 100: tests should not wait seconds).

import { readFileSync } from "node:fs";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, query, variablesJson] = process.argv.slice(2);
if (!url || !query) {
  process.stderr.write("usage: subscribe.mjs <ws url> <document> [variables json]\n");
  process.exit(2);
}
const tokenFile = process.env.ROOST_TOKEN_FILE;
const retryWaitMs = Number(process.env.ROOST_RETRY_WAIT_MS ?? "100");

function report(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, at: Date.now() / 1000, ...fields })}\n`);
}

let paramsCalls = 0;
let connections = 0;

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  // graphql-ws's default waits seconds, with jitter, before reconnecting.
  retryWait: () => new Promise((resolve) => setTimeout(resolve, retryWaitMs)),
  connectionParams:
    tokenFile === undefined
      ? undefined
      : async () => {
          paramsCalls += 1;
          report("connectionParams", { call: paramsCalls });
          const token = readFileSync(tokenFile, "utf8").trim();
          return { authorization: `Bearer ${token}` };
        },
  on: {
    connected: () => {
      connections += 1;
      report("connected", { count: connections });
    },
    closed: (event) => report("closed", { code: event?.code ?? null, reason: event?.reason ?? "" }),
  },
});

async function finish() {
  await client.dispose();
  process.exit(0);
}

client.subscribe(
  { query, variables: variablesJson ? JSON.parse(variablesJson) : undefined },
  {
    next: (payload) => report("next", { payload }),
    error: (failure) => {
      if (Array.isArray(failure)) {
        report("error", { errors: failure });
      } else if (failure && typeof failure === "object" && "code" in failure) {
        report("error", { code: failure.code, reason: failure.reason ?? "" });
      } else {
        report("error", { message: String(failure) });
      }
      void finish();
    },
    complete: () => {
      report("complete");
      void finish();
    },
  },
);
