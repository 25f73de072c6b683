// SPDX-License-Identifier: MIT
// An echo bot as a NATS JetStream worker for blazebot's nats plugin, in Node
// (nats.js). The same contract and reply ids as worker.c: see ../README.md.
// Settings from the environment: NATS_URL (comma list), NATS_TOKEN,
// BLAZEBOT_STREAM, BLAZEBOT_PREFIX, WORKER_DURABLE, WORKER_TEXT_PREFIX.
import { createHash } from "node:crypto";
import { AckPolicy, connect, nanos } from "nats";

const env = process.env;
const servers = (env.NATS_URL ?? "nats://127.0.0.1:4222").split(",");
const stream = env.BLAZEBOT_STREAM ?? "BLAZEBOT";
const prefix = env.BLAZEBOT_PREFIX ?? "blazebot";
const durable = env.WORKER_DURABLE ?? "blazebot-worker";
const textPrefix = env.WORKER_TEXT_PREFIX ?? "echo: ";

// The reply id: a version 5 UUID of "<incoming id>/<label>/1", as the daemon
// derives its own, so that a redelivered message gets the same reply id.
const NS = Buffer.from("6f8a3c1e-2b7d-4e59-9c0a-b1a2e0b0f00d".replaceAll("-", ""), "hex");
function replyId(incoming, label = "echo-worker", n = 1) {
  const h = createHash("sha1").update(NS).update(`${incoming.toLowerCase()}/${label}/${n}`).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

const nc = await connect({ servers, token: env.NATS_TOKEN, maxReconnectAttempts: -1 });
const jsm = await nc.jetstreamManager();
await jsm.consumers.add(stream, {
  durable_name: durable,
  ack_policy: AckPolicy.Explicit,
  filter_subject: `${prefix}.in.PLAIN_TEXT`,
  ack_wait: nanos(30_000),
});
const js = nc.jetstream();
const messages = await (await js.consumers.get(stream, durable)).consume({ max_messages: 32 });
let handled = 0, redelivered = 0;
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => messages.stop());
console.log("ready");

for await (const m of messages) {
  const msg = m.json();
  const text = Buffer.from(msg.data_base64 ?? msg.data, "base64"); // either alphabet
  const rid = replyId(msg.message_id);
  const reply = {
    conversation_id: msg.conversation_id,
    recipient_id: msg.user_id,
    message_id: rid,
    category: "PLAIN_TEXT",
    data_base64: Buffer.concat([Buffer.from(textPrefix), text]).toString("base64url"),
  };
  // Publish the reply and wait for JetStream's ack of it, then ack the message.
  await js.publish(`${prefix}.out`, JSON.stringify(reply), { msgID: rid }); // Nats-Msg-Id
  m.ack();
  handled++;
  if (m.redelivered) redelivered++;
}
await nc.drain();
console.log(`handled ${handled}, redelivered ${redelivered}`);
