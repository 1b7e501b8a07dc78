// The web UI's administration pages in a real browser: personal API keys (created in the UI,
// used with the management API, refused once revoked), the activity log (an edit's diff naming
// the user, one-click revert followed by /flags, a stale revert refused with the 409 view) and
// project settings (rotating a key refuses the old one at once; SDK snippets). axe-core on every
// new page at 1280 and 390 px; no console errors. Run by scripts/ui.sh with the same
// environment as ui.test.mjs. Ends with "ui/admin: N passed, M failed".
import { assert, axeBothWidths, check, finish, host, openBrowser, password, sdkValue, token } from "./harness.mjs";

/** A management-API call with a bearer key. */
async function api(method, path, key, body) {
  const r = await fetch(`${host}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const { browser, page, problems, external, shot } = await openBrowser({ clipboard: true });
const flagKey = "admin-rollout";
let projectUrl = "";
let userKey = "";
let flagId = 0;

await check("sign in", async () => {
  await page.goto(`${host}/ui/signin`);
  await page.getByLabel("E-mail").fill("admin@localhost");
  await page.getByLabel("Password").fill(password);
  await page.getByLabel("Password").press("Enter");
  await page.getByRole("heading", { name: "Feature flags" }).waitFor();
  projectUrl = page.url().replace(/\/flags$/, "");
});

await check("a personal key is created in the UI and shown once, with a copy button", async () => {
  await page.getByRole("link", { name: "API keys" }).click();
  await page.getByRole("heading", { name: "Personal API keys" }).waitFor();
  await axeBothWidths(page, "keys page");
  await page.getByLabel("Label").fill("ci deploys");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.locator("#new-key").waitFor();
  userKey = await page.getByLabel("Your new key").inputValue();
  assert(/^phx_[A-Za-z0-9]{43}$/.test(userKey), `the key: ${userKey}`);
  await page.getByRole("button", { name: "Copy" }).click();
  await page.getByRole("button", { name: "Copied ✓" }).waitFor();
  assert((await page.evaluate(() => navigator.clipboard.readText())) === userKey, "copied to the clipboard");
  await axeBothWidths(page, "keys page with a new key");
  await shot("keys");
  await page.goto(`${host}/ui/keys`);
  const listed = await page.locator("ul.cards").textContent();
  assert(listed.includes("ci deploys") && listed.includes(`phx_...${userKey.slice(-4)}`), `listed: ${listed}`);
  assert(!(await page.content()).includes(userKey), "the value is never shown again");
});

await check("the key works with the management API and is listed there without its value", async () => {
  const me = await api("GET", "/api/users/@me/", userKey);
  assert(me.status === 200 && me.body.email === "admin@localhost", `@me: ${JSON.stringify(me)}`);
  const created = await api("POST", "/api/projects/@current/feature_flags/", userKey, {
    key: flagKey,
    filters: { groups: [{ properties: [], rollout_percentage: 100 }] },
  });
  assert(created.status === 201, `create: ${JSON.stringify(created)}`);
  flagId = created.body.id;
  const keys = await api("GET", "/api/personal_api_keys/", userKey);
  assert(keys.status === 200 && keys.body.length === 1 && keys.body[0].label === "ci deploys" && !("value" in keys.body[0]), JSON.stringify(keys));
  assert(keys.body[0].last_used_at !== null, "last use recorded");
  const log = await api("GET", `/api/projects/@current/feature_flags/${flagId}/activity/`, userKey);
  const entry = log.body.results[0];
  assert(entry.user.email === "admin@localhost", `user: ${JSON.stringify(entry.user)}`);
  assert(entry.actor.type === "user_key" && entry.actor.key.label === "ci deploys", `actor: ${JSON.stringify(entry.actor)}`);
  assert(sdkValue(flagKey, "someone") === true, "the SDK sees the flag the key created");
});

await check("the activity page names the key, and an edit's diff names the user", async () => {
  await page.goto(`${projectUrl}/flags/${flagId}/edit`);
  // The structured form: the one condition set's rollout from 100 to 0 %.
  await page.getByLabel("Condition 1 rollout %", { exact: true }).fill("0");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("heading", { name: flagKey }).waitFor();
  assert(sdkValue(flagKey, "someone") === false, "rollout 0: false");
  await page.locator("main").getByRole("link", { name: "Activity", exact: true }).click();
  await page.getByRole("heading", { name: `Activity of ${flagKey}` }).waitFor();
  const newest = page.locator("ol.activity > li").first();
  const text = await newest.textContent();
  assert(text.includes("admin@localhost changed"), `who: ${text}`);
  assert(text.includes("filters") && text.includes('"rollout_percentage": 100') && text.includes('"rollout_percentage": 0'), `diff: ${text}`);
  const created = await page.locator("ol.activity > li").last().textContent();
  assert(created.includes("with the key") && created.includes("ci deploys"), `the key is named: ${created}`);
  await axeBothWidths(page, "flag activity");
  await shot("activity");
  await page.goto(`${projectUrl}/activity`);
  await page.getByRole("heading", { name: "Activity", exact: true }).waitFor();
  assert((await page.locator("ol.activity").textContent()).includes(flagKey), "the project log lists the flag");
  await axeBothWidths(page, "project activity");
});

await check("revert asks for confirmation, writes a new version and /flags follows", async () => {
  await page.goto(`${projectUrl}/flags/${flagId}/activity`);
  await page.locator("ol.activity > li").first().getByRole("link", { name: /^Revert/ }).click();
  await page.getByRole("heading", { name: `Revert this change to ${flagKey}?` }).waitFor();
  await axeBothWidths(page, "revert confirmation");
  await page.getByRole("button", { name: "Revert", exact: true }).click();
  await page.getByRole("heading", { name: `Activity of ${flagKey}` }).waitFor();
  assert(sdkValue(flagKey, "someone") === true, "reverted: true again");
  const entries = await page.locator("ol.activity > li").count();
  assert(entries === 3, `created, changed, reverted: ${entries} entries`);
  const newest = await page.locator("ol.activity > li").first().textContent();
  assert(newest.includes("admin@localhost changed") && newest.includes("version 3"), `the revert is logged: ${newest}`);
});

await check("reverting an entry of a flag changed since shows the 409 view and writes nothing", async () => {
  // The second entry (the edit to 0 %) was followed by the revert: reverting it again is stale.
  await page.locator("ol.activity > li").nth(1).getByRole("link", { name: /^Revert/ }).click();
  await page.getByRole("button", { name: "Revert", exact: true }).click();
  await page.locator("#conflict").waitFor();
  const text = await page.locator("#conflict").textContent();
  assert(text.includes("version 3"), `the conflict says what is stored: ${text}`);
  await axeBothWidths(page, "revert conflict");
  assert(sdkValue(flagKey, "someone") === true, "nothing was written");
  const log = await api("GET", `/api/projects/@current/feature_flags/${flagId}/activity/`, userKey);
  assert(log.body.total_count === 3, `still 3 entries: ${log.body.total_count}`);
});

await check("a revoked key is refused by the API at once", async () => {
  await page.goto(`${host}/ui/keys`);
  await page.getByRole("link", { name: "Revoke ci deploys" }).click();
  await page.getByRole("heading", { name: /Revoke the key/ }).waitFor();
  await axeBothWidths(page, "revoke confirmation");
  await page.getByRole("button", { name: "Revoke ci deploys" }).click();
  await page.getByText("You have no keys.").waitFor();
  const after = await api("GET", "/api/projects/@current/feature_flags/", userKey);
  assert(after.status === 401, `after revoking: ${after.status}`);
});

await check("settings: token with copy, SDK snippets with this host; rotating refuses the old key", async () => {
  await page.goto(`${projectUrl}/settings`);
  await page.getByRole("heading", { name: /^Settings of/ }).waitFor();
  assert((await page.locator("#project-token").inputValue()) === token, "the token");
  for (const id of ["snippet-js", "snippet-python", "snippet-node"]) {
    const code = await page.locator(`#${id}`).textContent();
    assert(code.includes(token) && code.includes(host), `${id}: ${code}`);
  }
  await axeBothWidths(page, "settings");
  await shot("settings");
  const rotate = async () => {
    await page.goto(`${projectUrl}/settings`);
    await page.getByRole("link", { name: "Rotate project secret key" }).click();
    await page.getByRole("heading", { name: "Rotate the project secret key?" }).waitFor();
    await axeBothWidths(page, "rotate confirmation");
    await page.getByRole("button", { name: "Rotate project secret key" }).click();
    await page.locator("#issued-key").waitFor();
    return page.getByLabel("The new key").inputValue();
  };
  const feed = (key) => fetch(`${host}/flags/definitions?token=${token}`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
  const first = await rotate();
  assert(first.startsWith("phs_"), first);
  assert((await feed(first)) === 200, "the new secret key reads the feed");
  const second = await rotate();
  await axeBothWidths(page, "settings with the new key shown");
  assert((await feed(first)) === 401, "the old one is refused at once");
  assert((await feed(second)) === 200, "the newest works");
});

await check("no console errors and no request left the server", async () => {
  assert(problems.length === 0, `console: ${problems.join("; ")}`);
  assert(external.length === 0, `external requests: ${external.join(", ")}`);
});

await browser.close();
finish("ui/admin");
