// The official Twilio and Telnyx Node SDKs, pointed at the carrier emulator,
// place, list, transfer and hang up calls and search, buy, list and release
// numbers; their own webhook validators accept what the emulator signs.
// If the emulator's wire format drifts from the carriers', these break.
//
// Run by ctest (tests/CMakeLists.txt) with CARRIER_EMULATOR_BINARY and
// CARRIER_EMULATOR_SCENARIO set; `npm ci` in this folder first (scripts/test.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

import twilio from 'twilio';
import Telnyx from 'telnyx';

const AUTH_TOKEN = 'sdk-test-auth-token';
const ACCOUNT_SID = 'AC' + '0123456789abcdef'.repeat(2);
const TELNYX_KEY = 'KEYsdktest';
const TELNYX_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';

let emulator;
let base;            // http://127.0.0.1:PORT
let telnyxPublicKey; // base64, as the emulator prints it
let webhooks;        // the receiver the emulator signs its webhooks for
const received = []; // {path, headers, body}

function waitFor(predicate, what, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = () => {
      const found = predicate();
      if (found) return resolve(found);
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 25);
    };
    poll();
  });
}

before(async () => {
  const binary = process.env.CARRIER_EMULATOR_BINARY;
  const scenario = process.env.CARRIER_EMULATOR_SCENARIO;
  assert.ok(binary, 'CARRIER_EMULATOR_BINARY must name the carrier-emulator binary');
  assert.ok(scenario, 'CARRIER_EMULATOR_SCENARIO must name a scenario file');

  webhooks = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  webhooks.listen(0, '127.0.0.1');
  await once(webhooks, 'listening');
  const hookBase = `http://127.0.0.1:${webhooks.address().port}`;

  emulator = spawn(binary, [
    '--port', '0', '--webhook-base', hookBase, '--twilio-auth-token', AUTH_TOKEN,
    '--telnyx-api-key', TELNYX_KEY, '--telnyx-private-key-seed-hex', TELNYX_SEED,
    '--scenario', scenario, '--time-scale', '0.05', '--seed', '7',
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(createInterface({ input: emulator.stdout }), 'line');
  const hello = JSON.parse(line);
  base = `http://127.0.0.1:${hello.port}`;
  telnyxPublicKey = hello.telnyx_public_key;
});

after(async () => {
  emulator?.kill('SIGTERM');
  if (emulator && emulator.exitCode === null) await once(emulator, 'exit');
  webhooks?.close();
});

// The SDK's own HTTP client, with the carrier's host swapped for the emulator:
// the SDK builds every path, body and header itself.
function twilioClient() {
  class EmulatorClient extends twilio.RequestClient {
    request(opts) {
      const original = new URL(opts.uri);
      return super.request({ ...opts, uri: base + original.pathname + original.search });
    }
  }
  return twilio(ACCOUNT_SID, AUTH_TOKEN, { httpClient: new EmulatorClient() });
}

function telnyxClient() {
  return new Telnyx({ apiKey: TELNYX_KEY, baseURL: `${base}/v2`, publicKey: telnyxPublicKey, maxRetries: 0 });
}

test('twilio SDK: place, fetch, list, transfer and hang up a call; signed status callbacks validate', async () => {
  const client = twilioClient();
  const callbackUrl = `http://127.0.0.1:${webhooks.address().port}/twilio/status`;
  const call = await client.calls.create({
    to: '+15550002001', from: '+15005550006', twiml: '<Response><Pause length="30"/></Response>',
    statusCallback: callbackUrl, statusCallbackEvent: ['initiated', 'ringing', 'answered', 'completed'],
    machineDetection: 'Enable', timeout: 20,
  });
  assert.match(call.sid, /^CA[0-9a-f]{32}$/);
  assert.equal(call.accountSid, ACCOUNT_SID);
  assert.equal(call.to, '+15550002001');
  assert.ok(['queued', 'initiated'].includes(call.status));

  const fetched = await client.calls(call.sid).fetch();
  assert.equal(fetched.sid, call.sid);

  const listed = await client.calls.list({ limit: 20 });
  assert.ok(listed.some((c) => c.sid === call.sid), 'the placed call is listed');
  const filtered = await client.calls.list({ to: '+15550002001', limit: 20 });
  assert.ok(filtered.every((c) => c.to === '+15550002001'));

  await waitFor(() => received.find((r) => r.path === '/twilio/status' && r.body.includes('CallStatus=in-progress')),
                'the in-progress callback');
  const transferred = await client.calls(call.sid).update({
    twiml: '<Response><Dial>+15550001001</Dial></Response>',
  });
  assert.equal(transferred.sid, call.sid);
  const hungUp = await client.calls(call.sid).update({ status: 'completed' });
  assert.equal(hungUp.status, 'completed');

  const actions = await (await fetch(`${base}/_emulator/calls`)).json();
  const recorded = actions.find((c) => c.id === call.sid);
  assert.deepEqual(recorded.actions.map((a) => a.action), ['redirect', 'status']);
  assert.match(recorded.actions[0].twiml, /<Dial>\+15550001001<\/Dial>/);

  // Ending a call twice is refused in Twilio's own error shape, which the SDK raises as a RestException.
  await assert.rejects(client.calls(call.sid).update({ twiml: '<Response/>' }), (error) => {
    assert.equal(error.status, 400);
    assert.equal(error.code, 21220);
    return true;
  });

  const final = await waitFor(
    () => received.find((r) => r.path === '/twilio/status' && r.body.includes('CallStatus=completed') &&
                               r.body.includes(call.sid)), 'the completed callback');
  for (const delivery of received.filter((r) => r.path === '/twilio/status')) {
    const params = Object.fromEntries(new URLSearchParams(delivery.body));
    assert.ok(twilio.validateRequest(AUTH_TOKEN, delivery.headers['x-twilio-signature'], callbackUrl, params),
              `the SDK validates the signature of ${params.CallStatus}`);
    assert.equal(twilio.validateRequest('wrong-token', delivery.headers['x-twilio-signature'], callbackUrl, params),
                 false);
  }
  assert.ok(final);
});

test('twilio SDK: an invalid number fails with the carrier error code', async () => {
  const client = twilioClient();
  await assert.rejects(
    client.calls.create({ to: '+15550001005', from: '+15005550006', url: 'http://127.0.0.1:1/twiml' }),
    (error) => error.status === 400 && error.code === 21217);
  await assert.rejects(
    twilio(ACCOUNT_SID, 'not-the-token', { httpClient: twilioClient().httpClient }).calls.list({ limit: 1 }),
    (error) => error.status === 401 && error.code === 20003);
});

test('twilio SDK: search, buy, list and release a number', async () => {
  const client = twilioClient();
  const available = await client.availablePhoneNumbers('US').local.list({ areaCode: 415, limit: 5 });
  assert.ok(available.length > 0, 'numbers are available in area code 415');
  const wanted = available[0].phoneNumber;
  assert.match(wanted, /^\+1415\d{7}$/);
  const tollFree = await client.availablePhoneNumbers('US').tollFree.list({ limit: 2 });
  assert.ok(tollFree.length > 0);

  const bought = await client.incomingPhoneNumbers.create({ phoneNumber: wanted });
  assert.match(bought.sid, /^PN[0-9a-f]{32}$/);
  assert.equal(bought.phoneNumber, wanted);
  const owned = await client.incomingPhoneNumbers.list({ phoneNumber: wanted });
  assert.deepEqual(owned.map((n) => n.sid), [bought.sid]);
  await assert.rejects(client.incomingPhoneNumbers.create({ phoneNumber: wanted }),
                       (error) => error.status === 400 && error.code === 21422);

  assert.equal(await client.incomingPhoneNumbers(bought.sid).remove(), true);
  const after = await client.incomingPhoneNumbers.list({ phoneNumber: wanted });
  assert.equal(after.length, 0);
  await assert.rejects(client.incomingPhoneNumbers(bought.sid).fetch(), (error) => error.status === 404);
});

test('telnyx SDK: dial, status, list active calls, transfer and hang up; signed webhooks unwrap', async () => {
  const client = telnyxClient();
  const dialed = await client.calls.dial({
    connection_id: 'conn-sdk', to: '+15550002002', from: '+15005550006',
    webhook_url: `http://127.0.0.1:${webhooks.address().port}/telnyx`, client_state: 'c2Rr',
    answering_machine_detection: 'detect', timeout_secs: 20,
  });
  const id = dialed.data.call_control_id;
  assert.ok(id);

  await waitFor(() => received.find((r) => r.path === '/telnyx' && r.body.includes('call.answered') &&
                                          r.body.includes(id)), 'call.answered');
  const status = await client.calls.retrieveStatus(id);
  assert.equal(status.data.call_control_id, id);
  assert.equal(status.data.is_alive, true);

  const active = [];
  for await (const call of client.connections.listActiveCalls('conn-sdk')) active.push(call);
  assert.ok(active.some((c) => c.call_control_id === id), 'the answered call is active on its connection');

  const transfer = await client.calls.actions.transfer(id, { to: '+15550001001' });
  assert.equal(transfer.data.result, 'ok');
  const hangup = await client.calls.actions.hangup(id, {});
  assert.equal(hangup.data.result, 'ok');
  await assert.rejects(client.calls.actions.hangup(id, {}), (error) => error.status === 422);

  await waitFor(() => received.find((r) => r.path === '/telnyx' && r.body.includes('call.hangup') &&
                                          r.body.includes(id)), 'call.hangup');
  for (const delivery of received.filter((r) => r.path === '/telnyx')) {
    const event = await client.webhooks.unwrap(delivery.body, { headers: delivery.headers });
    assert.ok(event.data.event_type.startsWith('call.'));
    const tampered = delivery.body.replace('"call.', '"calL.');
    await assert.rejects(client.webhooks.unwrap(tampered, { headers: delivery.headers }));
  }
  const gone = [];
  for await (const call of client.connections.listActiveCalls('conn-sdk')) gone.push(call);
  assert.ok(!gone.some((c) => c.call_control_id === id), 'a hung-up call is no longer active');
});

test('telnyx SDK: carrier errors surface as the SDK error classes', async () => {
  const client = telnyxClient();
  await assert.rejects(client.calls.dial({ connection_id: 'conn-sdk', to: '+15550001005', from: '+15005550006' }),
                       (error) => error instanceof Telnyx.UnprocessableEntityError);
  const stranger = new Telnyx({ apiKey: 'KEYwrong', baseURL: `${base}/v2`, maxRetries: 0 });
  await assert.rejects(stranger.calls.retrieveStatus('v3:nothing'),
                       (error) => error instanceof Telnyx.AuthenticationError);
});

test('telnyx SDK: search, order, list and release a number', async () => {
  const client = telnyxClient();
  const available = await client.availablePhoneNumbers.list({
    filter: { country_code: 'US', national_destination_code: '212', limit: 3 },
  });
  assert.ok(available.data.length > 0);
  const wanted = available.data[0].phone_number;
  assert.match(wanted, /^\+1212\d{7}$/);
  assert.equal(available.data[0].cost_information.currency, 'USD');

  const order = await client.numberOrders.create({ phone_numbers: [{ phone_number: wanted }] });
  assert.equal(order.data.status, 'success');
  const fetchedOrder = await client.numberOrders.retrieve(order.data.id);
  assert.equal(fetchedOrder.data.id, order.data.id);

  const owned = [];
  for await (const number of client.phoneNumbers.list({ filter: { phone_number: wanted } })) owned.push(number);
  assert.equal(owned.length, 1);
  const deleted = await client.phoneNumbers.delete(owned[0].id);
  assert.equal(deleted.data.phone_number, wanted);
  await assert.rejects(client.phoneNumbers.retrieve(owned[0].id), (error) => error instanceof Telnyx.NotFoundError);
});
