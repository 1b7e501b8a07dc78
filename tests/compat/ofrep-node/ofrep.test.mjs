// The OpenFeature node server SDK with the official OFREP provider against a live Vexil: typed
// evaluations (boolean, string, number, object), targeting by context attributes, an unknown flag,
// a change seen on the next evaluation, and auth failures. Flags come from the management API.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { ErrorCode, OpenFeature } from '@openfeature/server-sdk'
import { OFREPProvider } from '@openfeature/ofrep-provider'
import { api, createFlag, project } from './lib.mjs'

const flags = {}
let client

const provider = (headers) => new OFREPProvider({ baseUrl: project.host, headers })

before(async () => {
  flags.bool = await createFlag('ofrep-node-pro', {
    groups: [{ properties: [{ key: 'plan', type: 'person', operator: 'exact', value: 'pro' }], rollout_percentage: 100 }],
    payloads: { true: '{"seats": 10}' },
  })
  flags.variant = await createFlag('ofrep-node-colour', {
    groups: [
      { properties: [{ key: 'country', type: 'person', operator: 'exact', value: 'FR' }], rollout_percentage: 100, variant: 'bleu' },
      { rollout_percentage: 100 },
    ],
    multivariate: { variants: [{ key: 'blue', rollout_percentage: 100 }, { key: 'bleu', rollout_percentage: 0 }] },
  })
  flags.number = await createFlag('ofrep-node-limit', { groups: [{ rollout_percentage: 100 }], payloads: { true: '42' } }, { is_remote_configuration: true })
  flags.object = await createFlag(
    'ofrep-node-theme',
    { groups: [{ rollout_percentage: 100 }], payloads: { true: '{"theme": "dark", "columns": [1, 2]}' } },
    { is_remote_configuration: true },
  )
  await OpenFeature.setProviderAndWait(provider({ Authorization: `Bearer ${project.token}` }))
  await OpenFeature.setProviderAndWait('x-api-key', provider([['X-API-Key', project.token]]))
  await OpenFeature.setProviderAndWait('wrong-token', provider({ Authorization: 'Bearer phc_not_a_project' }))
  client = OpenFeature.getClient()
})

after(() => OpenFeature.close())

const alice = { targetingKey: 'alice', plan: 'pro', country: 'FR' }
const bob = { targetingKey: 'bob', plan: 'free', country: 'DE' }

test('boolean: targeting by a context attribute, reason and metadata', async () => {
  const on = await client.getBooleanDetails('ofrep-node-pro', false, alice)
  assert.equal(on.value, true)
  assert.equal(on.reason, 'TARGETING_MATCH')
  assert.equal(on.errorCode, undefined)
  assert.deepEqual(on.flagMetadata, { flagId: flags.bool.id, version: flags.bool.version, payload: '{"seats": 10}' })
  const off = await client.getBooleanDetails('ofrep-node-pro', true, bob)
  assert.equal(off.value, false)
  assert.equal(off.reason, 'DEFAULT')
})

test('string: the variant key, chosen by attribute or by the variant split', async () => {
  const fr = await client.getStringDetails('ofrep-node-colour', 'none', alice)
  assert.deepEqual([fr.value, fr.variant], ['bleu', 'bleu'])
  const de = await client.getStringDetails('ofrep-node-colour', 'none', bob)
  assert.deepEqual([de.value, de.variant, de.reason], ['blue', 'blue', 'SPLIT'])
})

test('number and object: a remote-configuration payload, parsed', async () => {
  const limit = await client.getNumberDetails('ofrep-node-limit', 0, bob)
  assert.deepEqual([limit.value, limit.reason], [42, 'STATIC'])
  const theme = await client.getObjectDetails('ofrep-node-theme', {}, bob)
  assert.deepEqual(theme.value, { theme: 'dark', columns: [1, 2] })
  assert.equal(theme.reason, 'STATIC')
})

test('an unknown flag answers the default with FLAG_NOT_FOUND', async () => {
  const missing = await client.getBooleanDetails('ofrep-node-no-such-flag', true, alice)
  assert.equal(missing.value, true)
  assert.equal(missing.errorCode, ErrorCode.FLAG_NOT_FOUND)
  assert.equal(missing.reason, 'ERROR')
})

test('a value of the wrong type answers the default with TYPE_MISMATCH', async () => {
  const wrong = await client.getStringDetails('ofrep-node-pro', 'fallback', alice)
  assert.deepEqual([wrong.value, wrong.errorCode], ['fallback', ErrorCode.TYPE_MISMATCH])
})

test('no targetingKey answers the default with TARGETING_KEY_MISSING', async () => {
  const anonymous = await client.getBooleanDetails('ofrep-node-pro', true, { plan: 'pro' })
  assert.deepEqual([anonymous.value, anonymous.errorCode], [true, ErrorCode.TARGETING_KEY_MISSING])
})

test('a change is seen on the next evaluation (the server provider does not cache)', async () => {
  assert.equal(await client.getBooleanValue('ofrep-node-pro', false, bob), false)
  await api('PATCH', `feature_flags/${flags.bool.id}/`, {
    filters: { groups: [{ properties: [{ key: 'plan', type: 'person', operator: 'exact', value: 'free' }], rollout_percentage: 100 }] },
  })
  assert.equal(await client.getBooleanValue('ofrep-node-pro', false, bob), true)
  await api('PATCH', `feature_flags/${flags.bool.id}/`, { active: false })
  const disabled = await client.getBooleanDetails('ofrep-node-pro', true, bob)
  assert.deepEqual([disabled.value, disabled.reason], [false, 'DISABLED'])
})

test('the token in X-API-Key works; a wrong token answers defaults', async () => {
  const viaKey = await OpenFeature.getClient('x-api-key').getNumberValue('ofrep-node-limit', 0, bob)
  assert.equal(viaKey, 42)
  const refused = await OpenFeature.getClient('wrong-token').getBooleanDetails('ofrep-node-pro', true, alice)
  assert.equal(refused.value, true)
  assert.equal(refused.reason, 'ERROR')
  assert.ok(refused.errorCode, 'an error code')
})
