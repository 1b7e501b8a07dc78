// The OpenFeature web SDK with the official OFREP web provider in headless Chromium, on a page of
// another origin, against a live Vexil: boolean, string, number and object flags, targeting by
// context attributes, an unknown flag → the default with FLAG_NOT_FOUND, and a change made through
// the management API seen after the provider's refetch (its SSE stream, which it follows from the
// bulk response's eventStreams, or its poll). No console errors, no failed requests to Vexil.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { api, createFlag, project } from './lib.mjs'
import { launch, open, packageFile, pageServer } from './browser.mjs'

let browser
let site
let opened
const flags = {}

const modules = {
  '@openfeature/core': '/m/core.js',
  '@openfeature/web-sdk': '/m/web-sdk.js',
  '@openfeature/ofrep-core': '/m/ofrep-core.js',
  '@openfeature/ofrep-web-provider': '/m/ofrep-web-provider.js',
}

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>OFREP web provider on Vexil</title>
<script type="importmap">${JSON.stringify({ imports: modules })}</script>
<script type="module">
  import { OpenFeature } from '@openfeature/web-sdk'
  import { OFREPWebProvider } from '@openfeature/ofrep-web-provider'
  window.start = async (host, token, context) => {
    await OpenFeature.setContext(context)
    await OpenFeature.setProviderAndWait(new OFREPWebProvider({
      baseUrl: host, headers: [['Authorization', 'Bearer ' + token]], pollInterval: 1000,
    }))
    window.client = OpenFeature.getClient()
  }
  window.setContext = (context) => OpenFeature.setContext(context)
  window.ready = true
</script></head><body><p>OpenFeature web SDK compatibility page</p></body></html>`

before(async () => {
  flags.bool = await createFlag('ofw-pro', {
    groups: [{ properties: [{ key: 'plan', type: 'person', operator: 'exact', value: ['pro'] }], rollout_percentage: 100 }],
  })
  flags.string = await createFlag('ofw-colour', {
    groups: [
      { properties: [{ key: 'country', type: 'person', operator: 'exact', value: ['FR'] }], rollout_percentage: 100, variant: 'bleu' },
      { rollout_percentage: 100 },
    ],
    multivariate: { variants: [{ key: 'blue', rollout_percentage: 100 }, { key: 'bleu', rollout_percentage: 0 }] },
  })
  flags.number = await createFlag('ofw-limit', { groups: [{ rollout_percentage: 100 }], payloads: { true: '42' } }, { is_remote_configuration: true })
  flags.object = await createFlag(
    'ofw-theme',
    { groups: [{ rollout_percentage: 100 }], payloads: { true: '{"theme": "dark", "columns": [1, 2]}' } },
    { is_remote_configuration: true },
  )
  browser = await launch()
  site = await pageServer({
    '/': { type: 'text/html', body: PAGE },
    '/favicon.ico': { type: 'image/x-icon', body: '' },
    '/m/core.js': { type: 'text/javascript', file: packageFile('@openfeature/core/dist/esm/index.js') },
    '/m/web-sdk.js': { type: 'text/javascript', file: packageFile('@openfeature/web-sdk/dist/esm/index.js') },
    '/m/ofrep-core.js': { type: 'text/javascript', file: packageFile('@openfeature/ofrep-core/index.esm.js') },
    '/m/ofrep-web-provider.js': { type: 'text/javascript', file: packageFile('@openfeature/ofrep-web-provider/index.esm.js') },
  })
  opened = await open(browser, site.origin + '/')
  await opened.page.waitForFunction(() => window.ready)
  await opened.page.evaluate(([host, token]) => window.start(host, token, { targetingKey: 'alice', plan: 'pro', country: 'FR' }), [project.host, project.token])
})

after(async () => {
  assert.deepEqual(opened?.problems ?? [], [], 'console errors or failed requests')
  await browser?.close()
  await site?.close()
})

const details = (method, key, fallback) =>
  opened.page.evaluate(([method, key, fallback]) => {
    const d = window.client[method](key, fallback)
    return { value: d.value, variant: d.variant, reason: d.reason, errorCode: d.errorCode, flagMetadata: d.flagMetadata }
  }, [method, key, fallback])

test('boolean, string, number and object flags for the context', async () => {
  const bool = await details('getBooleanDetails', 'ofw-pro', false)
  assert.deepEqual([bool.value, bool.reason, bool.errorCode], [true, 'TARGETING_MATCH', undefined])
  assert.equal(bool.flagMetadata.flagId, flags.bool.id)
  const colour = await details('getStringDetails', 'ofw-colour', 'none')
  assert.deepEqual([colour.value, colour.variant], ['bleu', 'bleu'])
  assert.equal((await details('getNumberDetails', 'ofw-limit', 0)).value, 42)
  assert.deepEqual((await details('getObjectDetails', 'ofw-theme', {})).value, { theme: 'dark', columns: [1, 2] })
})

test('targeting by context attributes: a new context is evaluated again', async () => {
  await opened.page.evaluate(() => window.setContext({ targetingKey: 'bob', plan: 'free', country: 'DE' }))
  const bool = await details('getBooleanDetails', 'ofw-pro', true)
  assert.equal(bool.value, false)
  const colour = await details('getStringDetails', 'ofw-colour', 'none')
  assert.deepEqual([colour.value, colour.reason], ['blue', 'SPLIT'])
  await opened.page.evaluate(() => window.setContext({ targetingKey: 'alice', plan: 'pro', country: 'FR' }))
  assert.equal((await details('getBooleanDetails', 'ofw-pro', false)).value, true)
})

test('an unknown flag: the default value with FLAG_NOT_FOUND', async () => {
  const missing = await details('getStringDetails', 'ofw-no-such-flag', 'fallback')
  assert.deepEqual([missing.value, missing.errorCode, missing.reason], ['fallback', 'FLAG_NOT_FOUND', 'ERROR'])
})

test('a change through the management API is seen after the provider refetches', async () => {
  await api('PATCH', `feature_flags/${flags.bool.id}/`, { active: false })
  await opened.page.waitForFunction(() => window.client.getBooleanValue('ofw-pro', true) === false, null, { timeout: 15000 })
  const streamed = opened.requests.some((r) => r.path === '/ofrep/v1/stream')
  console.log(`# change picked up ${streamed ? 'through the OFREP SSE stream' : 'by polling'}`)
})
