// Validates an AsyncAPI document with the official parser (and its Avro
// schema parser), then prints what the parser read back, as JSON: the
// channels (address, messages, owner) and the operations (action,
// channel, messages, actor, and a gateway's reply). Exit 1 with the diagnostics on any error.
//
//   node validate.mjs DOCUMENT.json
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";
import { AvroSchemaParser } from "@asyncapi/avro-schema-parser";

const parser = new Parser();
parser.registerSchemaParser(AvroSchemaParser());
const text = readFileSync(process.argv[2], "utf8");
const { document, diagnostics } = await parser.parse(text);
// Severity 0 is an error; 1 a warning, 2 information, 3 a hint.
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length > 0) {
  console.error(JSON.stringify(errors.map((d) => ({ code: d.code, message: d.message, path: d.path })), null, 2));
  process.exit(1);
}
const names = (messages) => messages.all().map((m) => m.name());
const summary = {
  version: document.version(),
  warnings: diagnostics.filter((d) => d.severity === 1).map((d) => `${d.code}: ${d.message} at ${d.path.join(".")}`),
  channels: document.channels().all().map((c) => ({
    id: c.id(),
    address: c.address(),
    messages: names(c.messages()),
    owner: c.extensions().get("x-scribe-owner")?.value() ?? null,
    pattern: c.extensions().get("x-scribe-pattern")?.value() ?? null,
    // How each message is written (Avro, JSON, outside bytes).
    contentTypes: c.messages().all().map((m) => m.contentType() ?? null),
    // What the Avro schema parser made of each payload: its fields.
    fields: c.messages().all().map((m) => (m.hasPayload() ? Object.keys(m.payload().properties() ?? {}) : [])),
  })),
  operations: document.operations().all().map((o) => ({
    id: o.id(),
    action: o.action(),
    channels: o.channels().all().map((c) => c.address() ?? c.id()),
    messages: names(o.messages()),
    actor: o.extensions().get("x-scribe-actor")?.value() ?? null,
    gateway: o.extensions().get("x-scribe-gateway")?.value() ?? null,
    reply: o.reply() ? { channel: o.reply().channel()?.address() ?? null, messages: names(o.reply().messages()) } : null,
  })),
};
console.log(JSON.stringify(summary, null, 2));
