// Headless Chromium (Debian's `chromium`, driven by playwright-core) on pages served from a
// second local origin, with everything that would make a browser user unhappy recorded: console
// errors, uncaught exceptions, and requests to Vexil that failed or were answered >= 400.
import http from 'node:http'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { chromium } from 'playwright-core'
import { project } from './lib.mjs'

const require = createRequire(import.meta.url)

/**
 * A file of an installed package (`name/path/in/package`, resolved from this directory's
 * node_modules), whether or not the package's `exports` name it.
 */
export function packageFile(spec) {
  const parts = spec.split('/')
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
  const main = require.resolve(name)
  const marker = `node_modules/${name}/`
  return main.slice(0, main.lastIndexOf(marker) + marker.length) + spec.slice(name.length + 1)
}

/**
 * Serves `routes` (`{path: {type, body}}` or `{path: {type, file}}`) on 127.0.0.1 at a free
 * port: the page's origin, never Vexil's. Resolves to `{origin, close}`.
 */
export async function pageServer(routes) {
  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname
    const route = routes[path]
    if (!route) {
      res.writeHead(404).end()
      return
    }
    const body = route.file ? await readFile(route.file) : route.body
    res.writeHead(200, { 'Content-Type': route.type, 'Cache-Control': 'no-store' }).end(body)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${server.address().port}`
  return { origin, close: () => new Promise((resolve) => server.close(resolve)) }
}

export async function launch() {
  const executablePath = process.env.CHROMIUM
  if (!executablePath) throw new Error('CHROMIUM is not set: run these tests through scripts/compat.sh')
  return chromium.launch({ executablePath, args: ['--no-sandbox'] })
}

/**
 * Opens `url` in a fresh context (no cookies, no storage) and records what went wrong, and every
 * request to Vexil (`requests`: `{method, path, search, status, contentType, body}`).
 */
export async function open(browser, url) {
  const context = await browser.newContext()
  const page = await context.newPage()
  const problems = []
  const requests = []
  const vexil = project.host
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`)
  })
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`))
  page.on('requestfailed', (req) => {
    if (req.url().startsWith(vexil)) problems.push(`failed: ${req.method()} ${req.url()} ${req.failure()?.errorText}`)
  })
  page.on('requestfinished', async (req) => {
    if (!req.url().startsWith(vexil)) return
    const res = await req.response()
    const u = new URL(req.url())
    const entry = {
      method: req.method(),
      path: u.pathname,
      search: u.search,
      status: res?.status(),
      contentType: req.headers()['content-type'],
      body: req.postDataBuffer(),
    }
    requests.push(entry)
    if (entry.status >= 400) problems.push(`${entry.method} ${u.pathname} answered ${entry.status}`)
  })
  await page.goto(url)
  return { page, context, problems, requests }
}
