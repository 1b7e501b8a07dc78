// Run by scripts/compat.sh after the server was stopped (SIGTERM) and started again on the same
// data dir: the node project's flags, cohort, persons and keys still work with posthog-node.
import assert from 'node:assert/strict'
import { after, it } from 'node:test'
import { PostHog } from 'posthog-node'

import { api, inRollout, person, project } from './lib.mjs'

const DOMAIN = '@vexil.dev'
const clients = []
const client = (options = {}) => {
  const c = new PostHog(project.token, { host: project.host, featureFlagsPollingInterval: 600000, ...options })
  clients.push(c)
  return c
}

after(async () => {
  await Promise.all(clients.map((c) => c.shutdown()))
})

it('remote answers from stored flags, persons, groups and static cohort', async () => {
  const remote = client()
  // Persons written through capture before the restart.
  assert.equal(await remote.isFeatureEnabled('beta-email', 'node-identify-1'), true)
  assert.equal(await remote.isFeatureEnabled('beta-email', 'node-user-merged'), true)
  assert.equal(await remote.isFeatureEnabled('beta-email', 'node-alias-new'), true)
  assert.equal(await remote.isFeatureEnabled('depends-on-beta', 'node-shutdown'), true)
  assert.equal(await remote.isFeatureEnabled('beta-email', 'never-seen'), false)
  assert.equal(await remote.isFeatureEnabled('vip-only', 'vip-node-1'), true)
  assert.equal(await remote.isFeatureEnabled('company-flag', 'x', { groups: { company: 'acme' } }), true)
  for (let i = 0; i < 20; i++) {
    const id = `restart-${i}`
    assert.equal(await remote.isFeatureEnabled('half-rollout', id), inRollout('half-rollout', id, 50), id)
  }
  // The flag switched off before the restart stays off.
  assert.equal(await remote.getFeatureFlag('node-reload-probe', 'x'), undefined)
})

it('keys still authenticate: local evaluation with both keys, the management API', async () => {
  for (const key of [project.personalKey, project.secretKey]) {
    const local = client({ personalApiKey: key })
    assert.equal(await local.waitForLocalEvaluationReady(10000), true)
    assert.equal(
      await local.getFeatureFlag('beta-email', 'x', {
        personProperties: { email: `x${DOMAIN}` },
        onlyEvaluateLocally: true,
      }),
      true,
    )
  }
  const p = await person('node-identify-1')
  assert.equal(p.properties.email, `id${DOMAIN}`)
  const flags = await api('GET', 'feature_flags/?limit=100')
  assert.ok(flags.results.some((f) => f.key === 'beta-email'))
})
