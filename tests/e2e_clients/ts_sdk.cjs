// The TypeScript SDK (@anthropic-ai/sdk) against interlock, for tests/e2e_clients/test_clients.py.
// usage: node ts_sdk.cjs SCENARIO   with ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY and NODE_PATH set.
// Prints one JSON line: {ok, scenario, seconds, ...}; errors as {error: class name, status, ...}.
"use strict";
const sdk = require("@anthropic-ai/sdk");
const Anthropic = sdk.Anthropic || sdk.default;

const scenario = process.argv[2];
const model = process.env.E2E_MODEL || "claude-sonnet-4-6";
// default maxRetries and timeout unless the test sets them: the SDK as people use it
const client = new Anthropic({
  baseURL: process.env.ANTHROPIC_BASE_URL,
  apiKey: process.env.ANTHROPIC_API_KEY,
});
const messages = [{ role: "user", content: "say hi" }];

function errorInfo(err) {
  const classes = ["NotFoundError", "AuthenticationError", "RateLimitError", "BadRequestError",
    "PermissionDeniedError", "InternalServerError", "APIConnectionError",
    "APIConnectionTimeoutError", "APIError"];
  const matches = classes.filter((name) => sdk[name] && err instanceof sdk[name]);
  return {
    error: err && err.constructor ? err.constructor.name : String(err),
    instance_of: matches,
    status: err && err.status,
    message: err && err.message,
    headers: err && err.headers ? Object.fromEntries(
      ["retry-after", "x-should-retry", "request-id"].map((h) => [h, err.headers.get ? err.headers.get(h) : err.headers[h]])
    ) : null,
  };
}

async function main() {
  const start = Date.now();
  const out = { scenario };
  try {
    if (scenario === "create" || scenario === "not-found" || scenario === "auth" || scenario === "rate-limit") {
      const msg = await client.messages.create({
        model: scenario === "not-found" ? "gpt-4o" : model,
        max_tokens: 64,
        messages,
      });
      Object.assign(out, { ok: true, id: msg.id, model: msg.model, stop_reason: msg.stop_reason,
        text: msg.content.filter((b) => b.type === "text").map((b) => b.text).join("") });
    } else if (scenario === "stream") {
      const stream = client.messages.stream({ model, max_tokens: 64, messages });
      const pieces = [];
      const events = [];
      stream.on("text", (t) => pieces.push(t));
      stream.on("streamEvent", (e) => events.push(e.type));
      const final = await stream.finalMessage();
      Object.assign(out, { ok: true, text: pieces.join(""), events, stop_reason: final.stop_reason,
        final_text: final.content.filter((b) => b.type === "text").map((b) => b.text).join("") });
    } else {
      throw new Error(`unknown scenario ${scenario}`);
    }
  } catch (err) {
    Object.assign(out, { ok: false }, errorInfo(err));
  }
  out.seconds = (Date.now() - start) / 1000;
  process.stdout.write(JSON.stringify(out) + "\n");
}

main();
