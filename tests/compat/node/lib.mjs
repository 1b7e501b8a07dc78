// Shared helpers of the posthog-node compatibility tests: environment, the management API and
// PostHog's bucketing hash (an independent implementation to check the server's answers).
import { createHash } from 'node:crypto'

export function env(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: run these tests through scripts/compat.sh`)
  return value
}

export const project = {
  host: env('VEXIL_HOST').replace(/\/$/, ''),
  id: Number(env('VEXIL_PROJECT_ID')),
  token: env('VEXIL_TOKEN'),
  secretKey: env('VEXIL_SECRET_KEY'),
  personalKey: env('VEXIL_PERSONAL_KEY'),
}

/** The management API (`/api/projects/@current/…`) with the personal key. */
export async function api(method, path, body, { expect = [200, 201] } = {}) {
  const url = path.startsWith('http') ? path : `${project.host}/api/projects/@current/${path}`
  const init = { method, headers: { Authorization: `Bearer ${project.personalKey}` } }
  if (body instanceof FormData) {
    init.body = body
  } else if (body !== undefined) {
    init.body = JSON.stringify(body)
    init.headers['Content-Type'] = 'application/json'
  }
  const res = await fetch(url, init)
  const text = await res.text()
  if (!expect.includes(res.status)) {
    throw new Error(`${method} ${url} -> ${res.status}: ${text.slice(0, 2000)}`)
  }
  return text ? JSON.parse(text) : null
}

export const createFlag = (key, filters, extra = {}) =>
  api('POST', 'feature_flags/', { key, name: key, filters, ...extra })

export async function createStaticCohort(name, distinctIds) {
  const form = new FormData()
  form.set('name', name)
  form.set('is_static', 'true')
  form.set('csv', new Blob([`distinct_id\n${distinctIds.join('\n')}\n`], { type: 'text/csv' }), 'members.csv')
  return api('POST', 'cohorts/', form)
}

export async function person(distinctId) {
  const page = await api('GET', `persons/?distinct_id=${encodeURIComponent(distinctId)}`)
  return page.results[0] ?? null
}

const LONG_SCALE = 0xfffffffffffffff

export function hash01(key, distinctId, salt = '') {
  const digest = createHash('sha1').update(`${key}.${distinctId}${salt}`, 'utf8').digest('hex')
  return parseInt(digest.slice(0, 15), 16) / LONG_SCALE
}

export const inRollout = (key, distinctId, percentage) => hash01(key, distinctId) <= percentage / 100

export function variantFor(key, distinctId, variants) {
  const h = hash01(key, distinctId, 'variant')
  let low = 0
  for (const v of variants) {
    const high = low + v.rollout_percentage / 100
    if (h >= low && h < high) return v.key
    low = high
  }
  return null
}

/** Polls `check` until it returns a truthy value. */
export async function waitUntil(check, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    last = await check()
    if (last) return last
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * A recording reverse proxy in front of the live server: shows what the SDK really sent (paths,
 * If-None-Match, event batches, gunzipped) and what it got back (status, ETag, body).
 */
export async function startProxy() {
  const { createServer, request } = await import('node:http')
  const { gunzipSync } = await import('node:zlib')
  const upstream = new URL(project.host)
  const exchanges = []
  const server = createServer((req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const headers = { ...req.headers, host: upstream.host }
      const out = request(
        { hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers },
        (up) => {
          const parts = []
          up.on('data', (c) => parts.push(c))
          up.on('end', () => {
            const data = Buffer.concat(parts)
            const gzipped = /gzip/.test(req.headers['content-encoding'] ?? '')
            exchanges.push({
              method: req.method,
              path: req.url,
              status: up.statusCode,
              requestHeaders: req.headers,
              requestBody: gzipped ? gunzipSync(body) : body,
              responseHeaders: up.headers,
              responseBody: data,
            })
            res.writeHead(up.statusCode, up.headers)
            res.end(data)
          })
        },
      )
      out.on('error', (e) => {
        res.writeHead(502)
        res.end(String(e))
      })
      out.end(body)
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    exchanges,
    matching: (prefix) => exchanges.filter((e) => e.path.startsWith(prefix)),
    events: () =>
      exchanges
        .filter((e) => e.path.startsWith('/batch'))
        .flatMap((e) => JSON.parse(e.requestBody.toString('utf8')).batch),
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}
