// The web UI in a real browser: headless Chromium driven by playwright-core against a live
// `vexil serve`, axe-core injected on every page, and the published posthog-python SDK checking
// what the UI wrote. Run by scripts/ui.sh (its environment: harness.mjs). Prints one line per
// check and ends with "ui: N passed, M failed".
import { assert, axe, check, finish, host, openBrowser, password, sdkValue } from "./harness.mjs";

const { browser, context, page, problems, external, shot } = await openBrowser();
const key = "ui-checkout";
let flagUrl = "";

await check("sign-in page: keyboard first stop is the skip link, no serious axe violations", async () => {
  await page.goto(`${host}/`);
  assert(page.url().endsWith("/ui/signin"), `/ redirects to sign-in, got ${page.url()}`);
  await page.keyboard.press("Tab");
  const first = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  assert(first === "Skip to content", `first focus: ${first}`);
  await axe(page, "sign-in");
  await shot("signin");
});

await check("a wrong password is refused, the right one signs in (keyboard only)", async () => {
  await page.getByLabel("E-mail").fill("admin@localhost");
  await page.getByLabel("Password").fill("not the password");
  await page.getByLabel("Password").press("Enter");
  await page.getByText("The e-mail or the password is wrong.").waitFor();
  await page.getByLabel("Password").fill(password);
  await page.getByLabel("Password").press("Enter");
  await page.getByRole("heading", { name: "Feature flags" }).waitFor();
  assert(/\/ui\/projects\/\d+\/flags$/.test(page.url()), page.url());
  await axe(page, "flag list");
});

await check("the editor creates a flag with a property condition and two variants", async () => {
  await page.getByRole("link", { name: "New flag" }).click();
  await page.getByRole("heading", { name: "New feature flag" }).waitFor();
  await page.getByLabel("Key", { exact: true }).fill(key);
  await page.getByLabel("Name (description)").fill("New checkout");
  await page.getByLabel("Condition 1 filter 1 key", { exact: true }).fill("email");
  await page.getByLabel("Condition 1 filter 1 operator", { exact: true }).selectOption("icontains");
  await page.getByLabel("Condition 1 filter 1 value", { exact: true }).fill("@example.com");
  await page.getByLabel("Variant 1 key").fill("control");
  await page.getByLabel("Variant 1 rollout %").fill("50");
  await page.getByLabel("Variant 2 key").fill("test");
  await page.getByLabel("Variant 2 rollout %").fill("40");
  const sum = page.locator("#variant-sum");
  assert((await sum.textContent()).includes("must be 100%"), `live sum: ${await sum.textContent()}`);
  await page.getByLabel("Variant 2 rollout %").fill("50");
  assert((await sum.textContent()).includes("100% ✓"), `live sum: ${await sum.textContent()}`);
  await page.getByLabel("Variant 1 payload (JSON)").fill('{"theme": "dark"}');
  await page.getByLabel("Payload (JSON, optional; boolean flags)").fill("{oops");
  assert((await page.locator("#payload-check").textContent()).startsWith("Not valid JSON"), "payload checked as typed");
  await page.getByLabel("Payload (JSON, optional; boolean flags)").fill("");
  await axe(page, "editor");
  await shot("editor");
  await page.getByRole("button", { name: "Create flag" }).click();
  await page.getByRole("heading", { name: key }).waitFor();
  flagUrl = page.url().split("?")[0].split("#")[0];
  await page.getByText("Evaluable locally").first().waitFor();
  await axe(page, "flag page");
  await shot("flag");
});

await check("the API's 400 is shown at the field it names (duplicate key)", async () => {
  await page.goto(flagUrl.replace(/\/\d+$/, "/new"));
  await page.getByLabel("Key", { exact: true }).fill(key);
  await page.getByRole("button", { name: "Create flag" }).click();
  await page.locator("#key-error").waitFor();
  assert((await page.locator("#key-error").textContent()).includes("already a feature flag with this key"), "at the key");
  assert((await page.getByLabel("Key", { exact: true }).getAttribute("aria-invalid")) === "true", "the field is marked invalid");
  await axe(page, "editor with errors");
});

await check("the published posthog-python SDK sees the flag in /flags", async () => {
  const alice = sdkValue(key, "alice", { email: "alice@example.com" });
  assert(alice === "control" || alice === "test", `alice: ${alice}`);
  const bob = sdkValue(key, "bob", { email: "bob@elsewhere.org" });
  assert(bob === false, `bob: ${bob}`);
});

await check("the flag page and the list show evaluations per day and when it was last evaluated", async () => {
  // The SDK's two /flags answers are counted in memory and written every 250 ms (ui.sh's
  // --flag-usage-flush-interval); its two $feature_flag_called events arrive through capture.
  let evaluations = 0;
  let calls = 0;
  for (let i = 0; i < 80 && (evaluations < 2 || calls < 2); i++) {
    if (i > 0) await page.waitForTimeout(250);
    await page.goto(flagUrl);
    evaluations = Number(await page.locator("#usage-evaluations").textContent());
    calls = Number(await page.locator("#usage-calls").textContent());
  }
  assert(evaluations === 2, `server evaluations this week: ${evaluations}`);
  assert(calls === 2, `reported calls this week: ${calls}`);
  const last = await page.locator("#last-evaluated").textContent();
  assert(last === "just now", `last evaluated: ${last}`);
  await axe(page, "flag page with usage");
  await page.goto(flagUrl.replace(/\/\d+$/, ""));
  const row = await page.getByRole("row", { name: new RegExp(key) }).textContent();
  assert(row.includes("2 evaluated · 2 reported") && row.includes("just now"), `list row: ${row}`);
});

await check("test a user explains a match, with the value used and the bucket", async () => {
  await page.goto(flagUrl);
  await page.getByLabel("Distinct id").fill("alice");
  await page.getByLabel("Person properties (JSON, optional)").fill('{"email": "alice@example.com"}');
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.locator(".answer").waitFor();
  const text = await page.locator(".answer").textContent();
  assert(text.includes("condition_match"), text);
  assert(text.includes("matched ✓") && text.includes('"alice@example.com"'), text);
  assert(text.includes("Rollout bucket"), text);
  await axe(page, "test a user (match)");
  await shot("test-a-user");
});

await check("test a user explains a non-match", async () => {
  await page.getByLabel("Distinct id").fill("bob");
  await page.getByLabel("Person properties (JSON, optional)").fill('{"email": "bob@elsewhere.org"}');
  await page.getByRole("button", { name: "Test", exact: true }).click();
  await page.locator(".answer").waitFor();
  const text = await page.locator(".answer").textContent();
  assert(text.includes("no_condition_match") && text.includes("did not match ✗"), text);
});

await check("the kill switch disables the flag after a confirmation; the SDK sees false", async () => {
  await page.goto(flagUrl);
  await page.getByRole("link", { name: "Disable flag…" }).click();
  await page.getByRole("heading", { name: `Disable ${key}?` }).waitFor();
  await axe(page, "kill switch confirmation");
  await page.getByRole("button", { name: `Disable ${key}` }).click();
  await page.getByRole("button", { name: "Enable flag" }).waitFor();
  const alice = sdkValue(key, "alice", { email: "alice@example.com" });
  // A disabled flag is left out of /flags: the SDK answers None (falsy), as with PostHog.
  assert(alice === false || alice === null, `after the kill switch: ${alice}`);
});

await check("an edit saved from a stale second tab shows the conflict, then re-applies", async () => {
  const editUrl = `${flagUrl}/edit`;
  await page.goto(editUrl);
  const second = await context.newPage();
  await second.goto(editUrl);
  await second.getByLabel("Name (description)").fill("Changed in the second tab");
  await second.getByRole("button", { name: "Save" }).click();
  await second.getByRole("heading", { name: key }).waitFor();
  await second.close();
  await page.getByLabel("Name (description)").fill("Changed in the first tab");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#conflict").waitFor();
  const text = await page.locator("#conflict").textContent();
  assert(text.includes("Changed in the second tab"), `the stored change is shown: ${text}`);
  await axe(page, "edit conflict");
  await shot("conflict");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Changed in the first tab").first().waitFor();
  assert(!page.url().endsWith("/edit"), page.url());
});

await check("the structured form edits an existing flag's conditions; posthog-python sees the result", async () => {
  await page.goto(`${flagUrl}/edit`);
  await page.getByLabel("Enabled", { exact: true }).check();
  await page.getByLabel("Condition 1 filter 1 value", { exact: true }).fill("@vexil.dev");
  // The spare condition set becomes the second one once it has a filter.
  await page.getByLabel("Condition 2 filter 1 key", { exact: true }).fill("plan");
  await page.getByLabel("Condition 2 filter 1 value", { exact: true }).fill("pro");
  await page.getByLabel("Condition 2 rollout %", { exact: true }).fill("100");
  await page.getByLabel("Condition 2 variant override", { exact: true }).selectOption("test");
  const sum = page.locator("#variant-sum");
  await page.getByLabel("Variant 2 rollout %", { exact: true }).fill("40");
  assert((await sum.textContent()).includes("must be 100%"), `live sum: ${await sum.textContent()}`);
  await page.getByLabel("Variant 2 rollout %", { exact: true }).fill("50");
  await axe(page, "structured editor");
  await shot("edit");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("heading", { name: key }).waitFor();
  assert(!page.url().endsWith("/edit"), `saved: ${page.url()}`);
  const carol = sdkValue(key, "carol", { email: "carol@vexil.dev" });
  assert(carol === "control" || carol === "test", `carol (condition 1): ${carol}`);
  const alice = sdkValue(key, "alice", { email: "alice@example.com" });
  assert(alice === false || alice === null, `alice (no longer matching): ${alice}`);
  const dave = sdkValue(key, "dave", { email: "dave@elsewhere.org", plan: "pro" });
  assert(dave === "test", `dave (condition 2, variant override): ${dave}`);
});

await check("the list searches on the server and is usable at 390 px wide", async () => {
  await page.goto(flagUrl.replace(/\/\d+$/, ""));
  await page.getByLabel("Search key or name").fill("checkout");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.getByText("Showing 1–1 of 1 flags").waitFor();
  await shot("flags");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 0, `horizontal overflow of ${overflow}px at 390 px`);
  await axe(page, "flag list at 390 px");
  await page.goto(flagUrl);
  const flagOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(flagOverflow <= 0, `flag page overflows by ${flagOverflow}px at 390 px`);
  await page.setViewportSize({ width: 1280, height: 900 });
});

await check("sign-out ends the session", async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to Vexil" }).waitFor();
  await page.goto(flagUrl);
  assert(page.url().endsWith("/ui/signin"), page.url());
});

await check("no console errors and no request left the server", async () => {
  assert(problems.length === 0, `console: ${problems.join("; ")}`);
  assert(external.length === 0, `external requests: ${external.join(", ")}`);
});

await browser.close();
finish("ui");
