// What the web UI's browser suites (tests/ui/*.test.mjs) share: the environment scripts/ui.sh
// provides, named checks with a summary, axe-core and layout checks, the published
// posthog-python SDK, and a Chromium page whose console errors and off-server requests are
// collected.
//   VEXIL_HOST, VEXIL_TOKEN, VEXIL_ADMIN_PASSWORD   the server and the first start's credentials
//   CHROMIUM                                        the browser executable
//   UI_PYTHON                                       a python with posthog installed
//   UI_SCREENSHOTS                                  optional: directory to write screenshots into
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axePath = require.resolve("axe-core/axe.min.js");

export const host = process.env.VEXIL_HOST;
export const token = process.env.VEXIL_TOKEN;
export const password = process.env.VEXIL_ADMIN_PASSWORD;
const shots = process.env.UI_SCREENSHOTS;

let passed = 0;
let failed = 0;

/** Runs one named check; a throw fails it and the suite goes on. */
export async function check(name, body) {
  try {
    await body();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n     ${String(e && e.stack || e).split("\n").slice(0, 6).join("\n     ")}`);
  }
}

/** Prints "`label`: N passed, M failed" and exits with the suite's status. */
export function finish(label) {
  console.log(`${label}: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Runs axe-core on the page; throws on any serious or critical violation. */
export async function axe(page, label) {
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 3) }));
  });
  const serious = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert(serious.length === 0, `${label}: axe violations ${JSON.stringify(serious)}`);
}

/** axe-core at 1280 px and at 390 px, and no sideways scroll at either; back to 1280 px. */
export async function axeBothWidths(page, label) {
  try {
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
      await axe(page, `${label} at ${width} px`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(overflow <= 0, `${label} at ${width} px: horizontal overflow of ${overflow}px`);
    }
  } finally {
    await page.setViewportSize({ width: 1280, height: 900 });
  }
}

/** Runs a posthog-python snippet with (token, host, ...args); returns its last printed line. */
export function python(script, ...args) {
  const out = execFileSync(process.env.UI_PYTHON, ["-W", "ignore::DeprecationWarning", "-c", script, token, host, ...args], { encoding: "utf8" });
  return out.trim().split("\n").pop();
}

/** The flag's value for one person through the published posthog-python SDK. */
export function sdkValue(key, distinctId, properties = {}) {
  return JSON.parse(python(`
import json, sys
from posthog import Posthog
client = Posthog(sys.argv[1], host=sys.argv[2], disable_geoip=True)
print(json.dumps(client.get_feature_flag(sys.argv[3], sys.argv[4], person_properties=json.loads(sys.argv[5]))))
client.shutdown()
`, key, distinctId, JSON.stringify(properties)));
}

/**
 * Headless Chromium at 1280 px with one page open. Every page of the context is watched:
 * console errors and page errors go to `problems`, requests to anything but the server to
 * `external`. `shot(name)` screenshots the first page when UI_SCREENSHOTS is set.
 */
export async function openBrowser({ clipboard = false } = {}) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox"] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  if (clipboard) await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: host });
  const problems = [];
  const external = [];
  context.on("page", (page) => {
    page.on("console", (m) => {
      // A document answered 4xx on purpose (a re-rendered form's 400, the 409 view) is logged
      // by Chromium as an error too: that is not a page error.
      const own = m.location().url === page.url() && m.text().startsWith("Failed to load resource");
      if (m.type() === "error" && !own) problems.push(`${page.url()}: ${m.text()} (${m.location().url})`);
    });
    page.on("pageerror", (e) => problems.push(`${page.url()}: ${e.message}`));
    page.on("request", (r) => { if (!r.url().startsWith(host) && !r.url().startsWith("data:")) external.push(r.url()); });
  });
  const page = await context.newPage();
  const shot = async (name) => { if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true }); };
  return { browser, context, page, problems, external, shot };
}
