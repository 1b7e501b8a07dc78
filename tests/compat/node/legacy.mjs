// An older posthog-node (4.x, still widely deployed) against the node project, after the main
// suite created its catalog: definitions come from the legacy `/api/feature_flag/local_evaluation`
// path (no trailing slash); remote evaluation uses `/flags/?v=2` in late 4.x (`/decide/?v=4` only for
// a list of excluded tokens; the legacy Python client covers `/decide`).
import assert from 'node:assert/strict'
import { after, it } from 'node:test'
import { PostHog } from 'posthog-node'

import { inRollout, project, startProxy, variantFor } from './lib.mjs'

const DOMAIN = '@vexil.dev'
const VARIANTS = [
  { key: 'control', rollout_percentage: 50 },
  { key: 'test', rollout_percentage: 30 },
  { key: 'compact', rollout_percentage: 20 },
]
const proxy = await startProxy()
const errors = []
const clients = []
function client(options = {}) {
  const c = new PostHog(project.token, { host: proxy.url, featureFlagsPollingInterval: 600000, ...options })
  c.on('error', (e) => errors.push(String(e?.stack ?? e)))
  clients.push(c)
  return c
}

after(async () => {
  await Promise.all(clients.map((c) => c.shutdown()))
  await proxy.close()
})

it('remote evaluation', async () => {
  const remote = client()
  assert.equal(await remote.isFeatureEnabled('beta-email', 'o-1', { personProperties: { email: `o${DOMAIN}` } }), true)
  assert.equal(await remote.isFeatureEnabled('beta-email', 'o-2', { personProperties: { email: 'o@x.org' } }), false)
  for (let i = 0; i < 20; i++) {
    const id = `old-node-${i}`
    assert.equal(await remote.isFeatureEnabled('half-rollout', id), inRollout('half-rollout', id, 50), id)
    assert.equal(await remote.getFeatureFlag('checkout-layout', id), variantFor('checkout-layout', id, VARIANTS), id)
  }
  assert.equal(await remote.isFeatureEnabled('vip-only', 'vip-node-1'), true)
  assert.equal(await remote.isFeatureEnabled('company-flag', 'o-3', { groups: { company: 'acme' } }), true)
  assert.deepEqual(await remote.getFeatureFlagPayload('beta-email', 'o-4', undefined, {
    personProperties: { email: `p${DOMAIN}` },
  }), { banner: 'beta', limits: [1, 2] })
  const calls = proxy.exchanges.filter((e) => /^\/(decide|flags)\/\?v=/.test(e.path))
  assert.ok(calls.length > 0 && calls.every((e) => e.status === 200), JSON.stringify(calls.map((e) => e.path)))
})

it('local evaluation from the legacy definitions path equals remote', async () => {
  const local = client({ personalApiKey: project.personalKey })
  const remote = client()
  await local.reloadFeatureFlags()
  const loads = proxy.matching('/api/feature_flag/local_evaluation')
  assert.ok(loads.length > 0 && loads[0].status === 200, JSON.stringify(proxy.exchanges.map((e) => e.path)))
  const options = {
    personProperties: { email: `l${DOMAIN}` },
    groups: { company: 'acme' },
    groupProperties: { company: { plan: 'enterprise' } },
  }
  for (let i = 0; i < 10; i++) {
    const id = `old-local-${i}`
    for (const key of ['beta-email', 'half-rollout', 'checkout-layout', 'company-flag']) {
      const here = await local.getFeatureFlag(key, id, { ...options, onlyEvaluateLocally: true })
      assert.notEqual(here, undefined, key)
      assert.equal(here, await remote.getFeatureFlag(key, id, options), `${key} for ${id}`)
    }
    // Flag dependencies are newer than 4.x: it cannot evaluate them locally, so it asks the server.
    const there = await remote.getFeatureFlag('depends-on-beta', id, options)
    assert.equal(await local.getFeatureFlag('depends-on-beta', id, { ...options, onlyEvaluateLocally: true }), undefined)
    assert.equal(await local.getFeatureFlag('depends-on-beta', id, options), there)
  }
})

it('capture then evaluate, and no SDK errors', async () => {
  const c = client()
  c.identify({ distinctId: 'old-node-identify', properties: { email: `i${DOMAIN}` } })
  await c.flush()
  assert.equal(await client().isFeatureEnabled('beta-email', 'old-node-identify'), true)
  assert.ok(proxy.matching('/batch').every((e) => e.status === 200))
  assert.deepEqual(errors, [])
})
