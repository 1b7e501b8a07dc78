// posthog-node against a live `vexil serve`: remote evaluation, local evaluation with a personal
// key, capture feeding evaluation, `$feature_flag_called`, flush and shutdown.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { PostHog } from 'posthog-node'

import {
  api,
  createFlag,
  createStaticCohort,
  inRollout,
  person,
  project,
  startProxy,
  variantFor,
  waitUntil,
} from './lib.mjs'

const DOMAIN = '@vexil.dev'
const VARIANTS = [
  { key: 'control', rollout_percentage: 50 },
  { key: 'test', rollout_percentage: 30 },
  { key: 'compact', rollout_percentage: 20 },
]
const PAYLOADS = { control: { layout: 'classic' }, test: { layout: 'grid' }, compact: { layout: 'compact' } }
const BETA_PAYLOAD = { banner: 'beta', limits: [1, 2] }
const VIPS = ['vip-node-1', 'vip-node-2']
const LOCAL_KEYS = ['beta-email', 'half-rollout', 'checkout-layout', 'company-flag', 'depends-on-beta']
const IDS = Array.from({ length: 40 }, (_, i) => `node-user-${i}`)

const clients = []
// The SDK reports failed requests only through its 'error' event: collect them (a client made
// with a wrong key on purpose passes expectErrors).
const sdkErrors = []
function client(options = {}, { expectErrors = false } = {}) {
  const c = new PostHog(project.token, {
    host: project.host,
    featureFlagsPollingInterval: 600000,
    requestTimeout: 10000,
    ...options,
  })
  if (!expectErrors) c.on('error', (e) => sdkErrors.push(String(e?.stack ?? e)))
  clients.push(c)
  return c
}

const catalog = {}
let remote

before(async () => {
  // Group types come from capture, as in PostHog.
  const setup = client()
  setup.groupIdentify({ groupType: 'company', groupKey: 'acme', properties: { plan: 'enterprise' } })
  setup.groupIdentify({ groupType: 'company', groupKey: 'globex', properties: { plan: 'free' } })
  await setup.flush()

  const personProp = (key, value, operator = 'exact') => ({ key, type: 'person', operator, value })
  catalog['beta-email'] = await createFlag('beta-email', {
    groups: [{ properties: [personProp('email', DOMAIN, 'icontains')], rollout_percentage: 100 }],
    payloads: { true: JSON.stringify(BETA_PAYLOAD) },
  })
  catalog['half-rollout'] = await createFlag('half-rollout', { groups: [{ properties: [], rollout_percentage: 50 }] })
  catalog['checkout-layout'] = await createFlag('checkout-layout', {
    groups: [{ properties: [], rollout_percentage: 100 }],
    multivariate: { variants: VARIANTS },
    payloads: Object.fromEntries(Object.entries(PAYLOADS).map(([k, v]) => [k, JSON.stringify(v)])),
  })
  catalog['company-flag'] = await createFlag('company-flag', {
    aggregation_group_type_index: 0,
    groups: [
      {
        properties: [{ key: 'plan', type: 'group', group_type_index: 0, operator: 'exact', value: ['enterprise'] }],
        rollout_percentage: 100,
      },
    ],
  })
  catalog['depends-on-beta'] = await createFlag('depends-on-beta', {
    groups: [
      {
        properties: [
          { key: String(catalog['beta-email'].id), type: 'flag', operator: 'flag_evaluates_to', value: true },
        ],
        rollout_percentage: 100,
      },
    ],
  })
  const vips = await createStaticCohort('VIPs', VIPS)
  catalog['vip-only'] = await createFlag('vip-only', {
    groups: [{ properties: [{ key: 'id', type: 'cohort', value: vips.id }], rollout_percentage: 100 }],
  })
  remote = client()
})

after(async () => {
  await Promise.all(clients.map((c) => c.shutdown()))
})

describe('remote evaluation', () => {
  it('isFeatureEnabled with person properties', async () => {
    const yes = { personProperties: { email: `ann${DOMAIN}` } }
    assert.equal(await remote.isFeatureEnabled('beta-email', 'n-1', yes), true)
    assert.equal(await remote.isFeatureEnabled('beta-email', 'n-2', { personProperties: { email: 'b@x.org' } }), false)
    assert.equal(await remote.isFeatureEnabled('no-such-flag', 'n-1'), undefined)
  })

  it('50% rollout and variants follow PostHog hashing', async () => {
    for (const id of IDS) {
      assert.equal(await remote.isFeatureEnabled('half-rollout', id), inRollout('half-rollout', id, 50), id)
      assert.equal(await remote.getFeatureFlag('checkout-layout', id), variantFor('checkout-layout', id, VARIANTS), id)
    }
  })

  it('getFeatureFlagPayload', async () => {
    assert.deepEqual(
      await remote.getFeatureFlagPayload('beta-email', 'n-3', undefined, { personProperties: { email: `c${DOMAIN}` } }),
      BETA_PAYLOAD,
    )
    for (const id of IDS.slice(0, 8)) {
      const variant = variantFor('checkout-layout', id, VARIANTS)
      assert.deepEqual(await remote.getFeatureFlagPayload('checkout-layout', id), PAYLOADS[variant], id)
    }
  })

  it('getAllFlags and getAllFlagsAndPayloads', async () => {
    const id = 'n-all'
    const options = { personProperties: { email: `all${DOMAIN}` } }
    const flags = await remote.getAllFlags(id, options)
    assert.equal(flags['beta-email'], true)
    assert.equal(flags['depends-on-beta'], true)
    assert.equal(flags['vip-only'], false)
    assert.equal(flags['company-flag'], false)
    assert.equal(flags['checkout-layout'], variantFor('checkout-layout', id, VARIANTS))
    const both = await remote.getAllFlagsAndPayloads(id, options)
    assert.deepEqual(both.featureFlags, flags)
    assert.deepEqual(both.featureFlagPayloads['beta-email'], BETA_PAYLOAD)
    assert.deepEqual(both.featureFlagPayloads['checkout-layout'], PAYLOADS[flags['checkout-layout']])
  })

  it('groups: request properties and stored group properties', async () => {
    assert.equal(
      await remote.isFeatureEnabled('company-flag', 'n-g', {
        groups: { company: 'initech' },
        groupProperties: { company: { plan: 'enterprise' } },
      }),
      true,
    )
    assert.equal(await remote.isFeatureEnabled('company-flag', 'n-g', { groups: { company: 'acme' } }), true)
    assert.equal(await remote.isFeatureEnabled('company-flag', 'n-g', { groups: { company: 'globex' } }), false)
  })

  it('static cohort members', async () => {
    for (const id of VIPS) assert.equal(await remote.isFeatureEnabled('vip-only', id), true, id)
    assert.equal(await remote.isFeatureEnabled('vip-only', 'nobody'), false)
  })
})

describe('local evaluation (personalApiKey)', () => {
  const contexts = Array.from({ length: 16 }, (_, i) => ({
    id: `node-local-${i}`,
    options: {
      personProperties: { email: i % 2 ? `l${i}${DOMAIN}` : `l${i}@example.com` },
      groups: { company: `co-${i}` },
      groupProperties: { company: { plan: i % 3 ? 'enterprise' : 'free' } },
    },
  }))

  // [value, payload] of a LOCAL_KEYS flag for one of `contexts`, from its definition above and
  // PostHog's hashing (lib.mjs's own implementation): a server that served wrong definitions and
  // answered wrongly the same way would not pass.
  const expected = (key, id, options) => {
    const beta = options.personProperties.email.toLowerCase().includes(DOMAIN)
    switch (key) {
      case 'beta-email':
        return [beta, beta ? BETA_PAYLOAD : undefined]
      case 'half-rollout':
        return [inRollout(key, id, 50), undefined]
      case 'checkout-layout': {
        const variant = variantFor(key, id, VARIANTS)
        return [variant, PAYLOADS[variant]]
      }
      case 'company-flag':
        return [options.groupProperties.company.plan === 'enterprise', undefined]
      case 'depends-on-beta':
        return [beta, undefined]
      default:
        throw new Error(`no expectation for ${key}`)
    }
  }

  it('the contexts tell a wrong answer from a right one', () => {
    for (const key of LOCAL_KEYS) {
      const answers = new Set(contexts.map(({ id, options }) => expected(key, id, options)[0]))
      assert.ok(answers.size >= 2, `${key}: ${[...answers]}`)
    }
  })

  for (const which of ['personalKey', 'secretKey']) {
    it(`answers equal the server's (${which})`, async () => {
      const local = client({ personalApiKey: project[which] })
      assert.equal(await local.waitForLocalEvaluationReady(10000), true, 'definitions did not load')
      for (const { id, options } of contexts) {
        for (const key of LOCAL_KEYS) {
          const here = await local.getFeatureFlag(key, id, { ...options, onlyEvaluateLocally: true })
          const there = await remote.getFeatureFlag(key, id, options)
          assert.notEqual(here, undefined, `${key} not evaluable locally`)
          assert.equal(here, there, `${key} for ${id}`)
          const [want, wantPayload] = expected(key, id, options)
          assert.equal(here, want, `${key} for ${id}`)
          const payload = await local.getFeatureFlagPayload(key, id, undefined, { ...options, onlyEvaluateLocally: true })
          assert.deepEqual(
            payload,
            await remote.getFeatureFlagPayload(key, id, undefined, options),
            `payload of ${key} for ${id}`,
          )
          assert.deepEqual(payload ?? undefined, wantPayload, `payload of ${key} for ${id}`)
        }
        const all = await local.getAllFlags(id, { ...options, onlyEvaluateLocally: true })
        assert.equal('vip-only' in all, false, 'a static-cohort flag cannot be evaluated locally')
        assert.deepEqual(
          Object.fromEntries(LOCAL_KEYS.map((key) => [key, all[key]])),
          Object.fromEntries(LOCAL_KEYS.map((key) => [key, expected(key, id, options)[0]])),
          `getAllFlags for ${id}`,
        )
      }
    })
  }

  it('falls back to the server for a static cohort', async () => {
    const local = client({ personalApiKey: project.personalKey })
    await local.waitForLocalEvaluationReady(10000)
    assert.equal(await local.getFeatureFlag('vip-only', VIPS[0], { onlyEvaluateLocally: true }), undefined)
    assert.equal(await local.getFeatureFlag('vip-only', VIPS[0]), true)
    // The cohort's members are known (created above), so is everyone else's answer.
    assert.equal(await local.getFeatureFlag('vip-only', VIPS[1]), true)
    assert.equal(await local.getFeatureFlag('vip-only', 'not-a-vip'), false)
  })

  it('reloadFeatureFlags picks up a change', async () => {
    const local = client({ personalApiKey: project.personalKey })
    await local.waitForLocalEvaluationReady(10000)
    assert.equal(await local.getFeatureFlag('node-reload-probe', 'x', { onlyEvaluateLocally: true }), undefined)
    const probe = await createFlag('node-reload-probe', { groups: [{ properties: [], rollout_percentage: 100 }] })
    await local.reloadFeatureFlags()
    assert.equal(await local.getFeatureFlag('node-reload-probe', 'x', { onlyEvaluateLocally: true }), true)
    await api('PATCH', `feature_flags/${probe.id}/`, { active: false })
    await local.reloadFeatureFlags()
    assert.equal(await local.getFeatureFlag('node-reload-probe', 'x', { onlyEvaluateLocally: true }), false)
  })

  it('background polling picks up changes', async () => {
    const local = client({ personalApiKey: project.secretKey, featureFlagsPollingInterval: 300 })
    await local.waitForLocalEvaluationReady(10000)
    const probe = await createFlag('node-poll-probe', { groups: [{ properties: [], rollout_percentage: 100 }] })
    const evaluate = () => local.getFeatureFlag('node-poll-probe', 'p', { onlyEvaluateLocally: true })
    await waitUntil(async () => (await evaluate()) === true, 'the poller to load the new flag')
    await api('PATCH', `feature_flags/${probe.id}/`, { filters: { groups: [{ properties: [], rollout_percentage: 0 }] } })
    await waitUntil(async () => (await evaluate()) === false, 'the poller to load the changed rollout')
  })

  it('a wrong key loads nothing', async () => {
    const local = client({ personalApiKey: 'phx_wrong' }, { expectErrors: true })
    assert.equal(await local.waitForLocalEvaluationReady(1000), false)
    assert.equal(await local.getFeatureFlag('half-rollout', 'x', { onlyEvaluateLocally: true }), undefined)
  })
})

describe('capture feeds evaluation', () => {
  it('identify with properties, then the remote answer changes', async () => {
    const c = client()
    const id = 'node-identify-1'
    assert.equal(await remote.isFeatureEnabled('beta-email', id), false)
    c.identify({ distinctId: id, properties: { email: `id${DOMAIN}` } })
    await c.flush()
    assert.equal(await remote.isFeatureEnabled('beta-email', id), true)
    const p = await person(id)
    assert.equal(p.properties.email, `id${DOMAIN}`)
  })

  it('capture with $set and identify with $anon_distinct_id merge persons', async () => {
    const c = client()
    const anon = 'node-anon-1'
    const user = 'node-user-merged'
    c.capture({ distinctId: anon, event: '$pageview', properties: { $set: { email: `anon${DOMAIN}` } } })
    await c.flush()
    assert.equal(await remote.isFeatureEnabled('beta-email', anon), true)
    assert.equal(await remote.isFeatureEnabled('beta-email', user), false)
    c.identify({ distinctId: user, properties: { $anon_distinct_id: anon } })
    await c.flush()
    assert.equal(await remote.isFeatureEnabled('beta-email', user), true)
  })

  it('unsetPersonProperties removes a stored property', async () => {
    const c = client()
    const id = 'node-unset-1'
    c.setPersonProperties({ distinctId: id, properties: { email: `un${DOMAIN}` } })
    await c.flush()
    assert.equal(await remote.isFeatureEnabled('beta-email', id), true)
    c.unsetPersonProperties({ distinctId: id, properties: ['email'] })
    await c.flush()
    assert.equal(await remote.isFeatureEnabled('beta-email', id), false)
    assert.equal('email' in (await person(id)).properties, false)
  })

  it('captureImmediate and identifyImmediate', async () => {
    const c = client()
    await c.identifyImmediate({ distinctId: 'node-immediate', properties: { plan: 'pro' } })
    await c.captureImmediate({
      distinctId: 'node-immediate',
      event: 'bought',
      properties: { $set: { email: `im${DOMAIN}` } },
    })
    assert.equal(await remote.isFeatureEnabled('beta-email', 'node-immediate'), true)
    assert.equal((await person('node-immediate')).properties.plan, 'pro')
  })

  it('evaluateFlags snapshot', async () => {
    const id = 'node-snapshot'
    const flags = await remote.evaluateFlags(id, { personProperties: { email: `s${DOMAIN}` } })
    assert.equal(flags.isEnabled('beta-email'), true)
    assert.equal(flags.getFlag('checkout-layout'), variantFor('checkout-layout', id, VARIANTS))
    assert.deepEqual(flags.getFlagPayload('beta-email'), BETA_PAYLOAD)
  })

  it('captureAiImmediate posts to /i/v0/ai/batch/', async () => {
    const proxy = await startProxy()
    try {
      const c = client({ host: proxy.url })
      await c.captureAiImmediate({
        distinctId: 'node-ai-1',
        event: '$ai_generation',
        properties: { $ai_model: 'small', $set: { email: `ai${DOMAIN}` } },
      })
      const posts = proxy.matching('/i/v0/ai/batch')
      assert.ok(posts.length > 0, JSON.stringify(proxy.exchanges.map((e) => e.path)))
      assert.ok(posts.every((e) => e.status === 200), JSON.stringify(posts.map((e) => e.status)))
      assert.equal(await remote.isFeatureEnabled('beta-email', 'node-ai-1'), true)
    } finally {
      await proxy.close()
    }
  })

  it('alias links a new distinct id', async () => {
    const c = client()
    c.setPersonProperties({ distinctId: 'node-alias-old', properties: { email: `al${DOMAIN}` } })
    await c.flush()
    c.alias({ distinctId: 'node-alias-old', alias: 'node-alias-new' })
    await c.flush()
    assert.equal(await remote.isFeatureEnabled('beta-email', 'node-alias-new'), true)
  })

  it('$feature_flag_called is sent and recorded (last_called_at)', async () => {
    const c = client()
    // A flag of its own, so that no other test has called it yet.
    const flag = await createFlag('node-called-probe', { groups: [{ properties: [], rollout_percentage: 100 }] })
    assert.equal(flag.last_called_at ?? null, null)
    assert.equal(await c.getFeatureFlag('node-called-probe', 'node-caller'), true)
    await c.flush()
    const after = await api('GET', `feature_flags/${flag.id}/`)
    assert.ok(after.last_called_at, `last_called_at not set: ${JSON.stringify(after)}`)
  })

  it('shutdown flushes queued events', async () => {
    const c = new PostHog(project.token, { host: project.host, flushAt: 100, flushInterval: 60000 })
    c.capture({ distinctId: 'node-shutdown', event: 'e', properties: { $set: { email: `sd${DOMAIN}` } } })
    await c.shutdown()
    assert.equal(await remote.isFeatureEnabled('beta-email', 'node-shutdown'), true)
  })

  it('$feature_flag_called carries the metadata of our /flags answer', async () => {
    const proxy = await startProxy()
    try {
      const c = client({ host: proxy.url })
      const id = 'node-called-remote'
      const variant = await c.getFeatureFlag('checkout-layout', id)
      assert.equal(variant, variantFor('checkout-layout', id, VARIANTS))
      await c.flush()
      const [flagsCall] = proxy.matching('/flags')
      assert.equal(flagsCall.status, 200)
      const called = proxy.events().filter((e) => e.event === '$feature_flag_called')
      assert.equal(called.length, 1, JSON.stringify(proxy.events()))
      const p = called[0].properties
      assert.equal(p.$feature_flag, 'checkout-layout')
      assert.equal(p.$feature_flag_response, variant)
      assert.equal(p[`$feature/checkout-layout`], variant)
      assert.equal(p.$feature_flag_id, catalog['checkout-layout'].id)
      assert.equal(p.$feature_flag_version, catalog['checkout-layout'].version)
      assert.equal(p.$feature_flag_reason, 'Matched condition set 1')
      assert.equal(p.$feature_flag_request_id, JSON.parse(flagsCall.responseBody).requestId)
      assert.equal(p.locally_evaluated, false)
      assert.ok(proxy.matching('/batch').every((e) => e.status === 200))
    } finally {
      await proxy.close()
    }
  })

  it('locally evaluated $feature_flag_called, and definitions polled with If-None-Match → 304', async () => {
    const proxy = await startProxy()
    try {
      const c = client({ host: proxy.url, personalApiKey: project.secretKey })
      assert.equal(await c.waitForLocalEvaluationReady(10000), true)
      // The first reload may join the initial load still in flight; the second is a new poll.
      await c.reloadFeatureFlags()
      await c.reloadFeatureFlags()
      const polls = proxy.matching('/flags/definitions')
      assert.ok(polls.length >= 2, polls.map((e) => e.path).join(' '))
      assert.equal(polls[0].status, 200)
      assert.ok(polls[0].responseHeaders.etag, 'definitions carry an ETag')
      assert.equal(polls.at(-1).requestHeaders['if-none-match'], polls[0].responseHeaders.etag)
      assert.equal(polls.at(-1).status, 304)
      // Definitions survive the 304.
      const id = 'node-called-local'
      const options = { personProperties: { email: `loc${DOMAIN}` } }
      assert.equal(await c.getFeatureFlag('beta-email', id, options), true)
      await c.flush()
      assert.equal(proxy.exchanges.filter((e) => /^\/flags\/?\?/.test(e.path)).length, 0, 'no remote evaluation was needed')
      const called = proxy.events().filter((e) => e.event === '$feature_flag_called')
      assert.equal(called.length, 1)
      assert.equal(called[0].properties.locally_evaluated, true)
      assert.equal(called[0].properties.$feature_flag_id, catalog['beta-email'].id)
      assert.equal(called[0].properties.$feature_flag_response, true)
    } finally {
      await proxy.close()
    }
  })
})

describe('the current SDK surface', () => {
  const EVERYONE = [{ properties: [], rollout_percentage: 100 }]
  const SETTINGS = { theme: 'dark', maxItems: 5 }
  const SECRET = { apiKey: 's3cret' }
  const calls = async (flag) => (await api('GET', `feature_flags/${flag}/calls/`)).results

  before(async () => {
    await createFlag('node-rc', { groups: EVERYONE, payloads: { true: JSON.stringify(SETTINGS) } }, {
      is_remote_configuration: true,
    })
    await createFlag('node-rc-secret', { groups: EVERYONE, payloads: { true: JSON.stringify(SECRET) } }, {
      is_remote_configuration: true,
      has_encrypted_payloads: true,
    })
    await createFlag('node-web', { groups: EVERYONE }, { evaluation_contexts: ['web'] })
    await createFlag('node-docs', { groups: EVERYONE }, { evaluation_contexts: ['docs'] })
  })

  it('getRemoteConfigPayload: plain with either key, encrypted only with the personal key', async () => {
    const options = { enableLocalEvaluation: false }
    const personal = client({ ...options, personalApiKey: project.personalKey })
    const secret = client({ ...options, personalApiKey: project.secretKey })
    assert.deepEqual(await personal.getRemoteConfigPayload('node-rc'), SETTINGS)
    assert.deepEqual(await secret.getRemoteConfigPayload('node-rc'), SETTINGS)
    assert.deepEqual(await personal.getRemoteConfigPayload('node-rc-secret'), SECRET)
    assert.equal(await secret.getRemoteConfigPayload('node-rc-secret'), '********* (encrypted)')
    // A plain remote-configuration flag is a flag of /flags too; an encrypted one is not.
    assert.deepEqual(await remote.getFeatureFlagPayload('node-rc', 'node-rc-user'), SETTINGS)
    assert.equal(await remote.getFeatureFlag('node-rc-secret', 'node-rc-user'), undefined)
  })

  it('evaluateFlags + getFlag: $feature_flag_called stored and queryable, flag_missing included', async () => {
    const c = client()
    const id = 'node-surface-caller'
    const flags = await c.evaluateFlags(id, { personProperties: { email: `s${DOMAIN}` } })
    assert.equal(flags.getFlag('beta-email'), true)
    assert.equal(flags.getFlag('node-no-such-flag'), undefined)
    await c.flush()
    const flag = catalog['beta-email']
    const mine = async (key) => {
      const found = (await calls(key)).filter((x) => x.distinct_id === id)
      return found.length ? found : null
    }
    const [call] = await waitUntil(() => mine(flag.id), 'the $feature_flag_called event of beta-email')
    assert.equal(call.response, true)
    assert.equal(call.locally_evaluated, false)
    assert.equal(call.flag_id, flag.id)
    assert.equal(call.flag_version, flag.version)
    assert.equal(call.reason, 'Matched condition set 1')
    assert.equal(call.has_experiment, false)
    assert.deepEqual(call.errors, [])
    assert.ok(call.request_id && call.evaluated_at, JSON.stringify(call))
    assert.equal(call.lib, 'posthog-node')
    const [missing] = await waitUntil(() => mine('node-no-such-flag'), 'the flag_missing call')
    assert.deepEqual(missing.errors, ['flag_missing'])
  })

  it('evaluationContexts: sent with /flags, and read from the definitions for local evaluation', async () => {
    const remoteWeb = client({ evaluationContexts: ['web'] })
    const flags = await remoteWeb.evaluateFlags('node-ctx-user')
    assert.equal(flags.isEnabled('node-web'), true)
    assert.equal(flags.getFlag('node-docs'), undefined, 'tagged for another context')
    assert.equal(flags.isEnabled('half-rollout') !== undefined, true, 'untagged flags stay')
    const localWeb = client({ evaluationContexts: ['web'], personalApiKey: project.secretKey })
    assert.equal(await localWeb.waitForLocalEvaluationReady(10000), true)
    const local = { onlyEvaluateLocally: true }
    assert.equal(await localWeb.getFeatureFlag('node-web', 'node-ctx-user', local), true)
    assert.equal(await localWeb.getFeatureFlag('node-docs', 'node-ctx-user', local), undefined)
  })
})

describe('the SDK reported no errors', () => {
  it('no error events from any client (checked last)', async () => {
    await Promise.all(clients.map((c) => c.flush()))
    assert.deepEqual(sdkErrors, [])
  })
})
