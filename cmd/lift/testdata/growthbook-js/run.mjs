// Drives GrowthBook's JavaScript SDK, unchanged, against a lift server for
// cmd/lift/growthbook_e2e_test.go. One JSON job on stdin, JSON lines on stdout.
//
//   {"mode":"local","apiHost":…,"clientKey":…,"keys":[…],"users":[{attributes, track}]}
//       evaluates every key for every user from the payload (/api/features); users with
//       track send their exposures to /v1/events from the tracking callback, as
//       docs/sdk.md shows. Prints {"values":{id:{key:value}},"exposures":n,"failed":[…]}.
//   {"mode":"remote",…} the same with remote evaluation (/api/eval), a new SDK
//       instance per user. Prints the same, exposures counting callbacks that sent.
//   {"mode":"stream","apiHost":…,"clientKey":…,"key":…} streams (/sub) and prints
//       {"ready":value}, then {"changed":value} as soon as the key's value changes.
//   {"mode":"conditions","cases":[[condition, attributes, savedGroups], …]} evaluates
//       each condition with the SDK's evalCondition. Prints {"results":[bool, …]}.
import { GrowthBook, setPolyfills, clearCache, evalCondition } from "@growthbook/growthbook";
import { EventSource } from "eventsource";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const job = JSON.parse(Buffer.concat(chunks).toString("utf8"));
// Resolves once written: a pipe takes large writes asynchronously, and exit would cut them.
const print = (v) => new Promise((done) => process.stdout.write(JSON.stringify(v) + "\n", done));

const sends = [];
let tracking = false;
let sent = 0;
// The tracking callback of docs/sdk.md: one $exposure event per assignment, unless
// lift logged it already (remote evaluation).
function trackingCallback(experiment, result) {
  if (!tracking || experiment.liftLogged) return;
  sent++;
  sends.push(
    fetch(`${job.apiHost}/v1/events`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${job.clientKey}` },
      body: JSON.stringify({
        events: [
          {
            type: "$exposure",
            user_id: result.hashValue,
            properties: {
              experiment: experiment.key,
              variant: result.key,
              segment: experiment.phase || "",
              assignment_probability: experiment.weights[result.variationId],
            },
          },
        ],
      }),
    }).then((r) => (r.status === 202 ? null : `status ${r.status}`)),
  );
}

if (job.mode === "conditions") {
  const results = job.cases.map(([cond, attrs, groups]) => evalCondition(attrs, cond, groups || {}));
  await print({ results });
  process.exit(0);
} else if (job.mode === "stream") {
  setPolyfills({ EventSource });
  const gb = new GrowthBook({ apiHost: job.apiHost, clientKey: job.clientKey });
  await gb.init({ timeout: 5000, streaming: true });
  const first = gb.getFeatureValue(job.key, null);
  await print({ ready: first });
  const timer = setInterval(() => {
    const v = gb.getFeatureValue(job.key, null);
    if (JSON.stringify(v) !== JSON.stringify(first)) {
      clearInterval(timer);
      gb.destroy({ destroyAllStreams: true });
      print({ changed: v }).then(() => process.exit(0));
    }
  }, 5);
} else {
  const values = {};
  let gb = null;
  if (job.mode === "local") {
    gb = new GrowthBook({ apiHost: job.apiHost, clientKey: job.clientKey, trackingCallback });
    const res = await gb.init({ timeout: 5000 });
    if (!res.success) throw new Error("init: " + res.error);
  }
  for (const user of job.users) {
    if (job.mode === "remote") {
      clearCache();
      gb = new GrowthBook({ apiHost: job.apiHost, clientKey: job.clientKey, remoteEval: true, attributes: user.attributes, trackingCallback });
      const res = await gb.init({ timeout: 5000 });
      if (!res.success) throw new Error("init: " + res.error);
    } else {
      await gb.setAttributes(user.attributes);
    }
    tracking = !!user.track;
    const out = {};
    for (const key of job.keys) out[key] = gb.evalFeature(key).value;
    values[user.attributes.id] = out;
    if (job.mode === "remote") gb.destroy();
  }
  const failed = (await Promise.all(sends)).filter((e) => e);
  await print({ values, exposures: sent, failed });
  process.exit(0);
}
