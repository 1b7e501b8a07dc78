// Cohorts and persons in a real browser: a property cohort built with the structured condition
// editor, a static cohort from a CSV upload (a bad line reported by number, a member removed),
// flags targeting both answered through the published posthog-python SDK, a person found by
// distinct id and by property with every flag's value, the variant sum refusing 90 %, axe-core
// at 1280 px and 390 px on every new page. Run by scripts/ui.sh (same environment as
// ui.test.mjs); ends with "ui: N passed, M failed".
import { assert, axe, axeBothWidths, check, finish, host, openBrowser, password, python, sdkValue } from "./harness.mjs";

const { browser, page, problems, external, shot } = await openBrowser();

let projectBase = "";
let proCohort = "";
let betaCohort = "";

await check("sign in and open Cohorts from the header", async () => {
  await page.goto(`${host}/ui/signin`);
  await page.getByLabel("E-mail").fill("admin@localhost");
  await page.getByLabel("Password").fill(password);
  await page.getByLabel("Password").press("Enter");
  await page.getByRole("heading", { name: "Feature flags" }).waitFor();
  projectBase = page.url().replace(/\/flags.*$/, "");
  await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "Cohorts" }).click();
  await page.getByRole("heading", { name: "Cohorts", exact: true }).waitFor();
});

await check("capture through posthog-python stores carol (plan: pro) and dave", async () => {
  python(`
import sys
from posthog import Posthog
client = Posthog(sys.argv[1], host=sys.argv[2], disable_geoip=True, sync_mode=True)
client.capture(event="signed_up", distinct_id="carol", properties={"$set": {"email": "carol@example.com", "plan": "pro", "seats": 12}})
client.capture(event="signed_up", distinct_id="dave", properties={"$set": {"plan": "free"}})
client.shutdown()
print("ok")
`);
  // Capture is written in batches: wait until carol is stored.
  for (let i = 0; i < 50; i++) {
    const r = await page.request.get(`${projectBase}/persons/view?distinct_id=carol`);
    if (r.status() === 200) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error("carol was never stored");
});

await check("a property cohort from the structured editor (key suggestions from stored persons)", async () => {
  await page.goto(`${projectBase}/cohorts/new`);
  await page.getByRole("heading", { name: "New cohort" }).waitFor();
  const suggested = await page.locator("#property-keys option").evaluateAll((os) => os.map((o) => o.value));
  assert(suggested.includes("plan") && suggested.includes("seats"), `suggestions: ${suggested}`);
  await page.getByLabel("Name", { exact: true }).fill("Pro plan");
  // An incomplete behavioural row is refused at that row.
  await page.getByLabel("Row 1: property, event or cohort id").fill("purchase");
  await page.getByLabel("Row 1 operator").selectOption("performed_event");
  await page.getByRole("button", { name: "Create cohort" }).click();
  await page.locator("#row-0-0-error").waitFor();
  assert((await page.locator("#row-0-0-error").textContent()).includes("window"), "the row's error");
  await axe(page, "new cohort with a row error");
  await page.getByLabel("Row 1: property, event or cohort id").fill("plan");
  await page.getByLabel("Row 1 operator").selectOption("exact");
  await page.getByLabel("Row 1 value (or N)").fill("pro");
  await shot("cohort-new");
  await page.getByRole("button", { name: "Create cohort" }).click();
  await page.getByRole("heading", { name: "Pro plan" }).waitFor();
  proCohort = page.url().split("/").pop().split(/[?#]/)[0];
  assert(/^\d+$/.test(proCohort), page.url());
  assert((await page.getByLabel("Row 1 value (or N)").inputValue()) === "pro", "the row reads back");
  await axeBothWidths(page, "cohort page");
});

await check("a behavioural cohort: performed an event at least N times in a window", async () => {
  await page.goto(`${projectBase}/cohorts/new`);
  await page.getByLabel("Name", { exact: true }).fill("Frequent buyers");
  await page.getByLabel("Row 1: property, event or cohort id").fill("purchase");
  await page.getByLabel("Row 1 operator").selectOption("performed_event_multiple:gte");
  await page.getByLabel("Row 1 value (or N)").fill("3");
  await page.getByLabel("Row 1 within the last").fill("7");
  await page.getByRole("button", { name: "Create cohort" }).click();
  await page.getByRole("heading", { name: "Frequent buyers" }).waitFor();
  const json = await page.locator("#filters").inputValue();
  assert(json.includes('"performed_event_multiple"') && json.includes('"operator_value": 3'), json);
  assert((await page.getByText("Behavioural", { exact: true }).count()) > 0, "typed behavioural");
});

await check("a static cohort from a CSV upload: a bad line is reported by number, then created", async () => {
  await page.goto(`${projectBase}/cohorts/new?static=1`);
  await page.getByLabel("Name", { exact: true }).fill("Beta testers");
  const long = "x".repeat(201);
  await page.getByLabel(/Members from a CSV file/).setInputFiles({ name: "beta.csv", mimeType: "text/csv", buffer: Buffer.from(`distinct_id\ndave\n${long}\nerin\n`) });
  await page.getByRole("button", { name: "Create cohort" }).click();
  await page.locator("#csv-error").waitFor();
  const error = await page.locator("#csv-error").textContent();
  assert(error.includes("Line 3") && error.includes("longer than 200"), error);
  await axe(page, "static cohort with a CSV error");
  await page.getByLabel(/Members from a CSV file/).setInputFiles({ name: "beta.csv", mimeType: "text/csv", buffer: Buffer.from("distinct_id\ndave\nerin\ndave\n") });
  await page.getByRole("button", { name: "Create cohort" }).click();
  await page.getByRole("heading", { name: "Beta testers" }).waitFor();
  betaCohort = page.url().split("/").pop().split(/[?#]/)[0];
  await page.getByRole("heading", { name: "Members (2)" }).waitFor();
  await shot("cohort-static");
  await axeBothWidths(page, "static cohort page");
});

await check("flags targeting both cohorts answer in /flags through posthog-python", async () => {
  for (const [key, cohort] of [["ui-pro-cohort", proCohort], ["ui-beta-cohort", betaCohort]]) {
    await page.goto(`${projectBase}/flags/new`);
    await page.getByLabel("Key", { exact: true }).fill(key);
    await page.getByRole("button", { name: "Create flag" }).click();
    await page.getByRole("heading", { name: key }).waitFor();
    await page.getByRole("link", { name: "Edit flag" }).click();
    // A cohort row in the structured form (the operator follows the row's type).
    await page.getByLabel("Condition 1 filter 1 type", { exact: true }).selectOption("cohort");
    await page.getByLabel("Condition 1 filter 1 cohort id", { exact: true }).fill(String(cohort));
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByRole("heading", { name: key }).waitFor();
  }
  assert(sdkValue("ui-pro-cohort", "carol") === true, "carol (stored plan pro) is in the property cohort");
  assert(sdkValue("ui-pro-cohort", "dave") === false, "dave (plan free) is not");
  assert(sdkValue("ui-beta-cohort", "erin") === true, "erin is a static member");
  assert(sdkValue("ui-beta-cohort", "carol") === false, "carol is not");
});

await check("the cohort page lists the flags that use it; removing a member takes effect in /flags", async () => {
  await page.goto(`${projectBase}/cohorts/${betaCohort}`);
  await page.getByRole("link", { name: "ui-beta-cohort" }).waitFor();
  await page.getByRole("button", { name: "Remove erin" }).click();
  await page.getByRole("heading", { name: "Members (1)" }).waitFor();
  assert(sdkValue("ui-beta-cohort", "erin") === false, "erin removed");
  assert(sdkValue("ui-beta-cohort", "dave") === true, "dave still a member");
});

await check("the cohort list searches by name", async () => {
  await page.goto(`${projectBase}/cohorts`);
  await page.getByLabel("Search by name").fill("beta");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.getByText("Showing 1–1 of 1 cohorts").waitFor();
  await page.goto(`${projectBase}/cohorts`);
  await page.getByText("Showing 1–3 of 3 cohorts").waitFor();
  await shot("cohorts");
  await axeBothWidths(page, "cohort list");
});

await check("find a person by distinct id: properties, ids and every flag's value with an explanation link", async () => {
  await page.goto(`${projectBase}/persons`);
  await page.getByLabel("Distinct id").fill("carol");
  await page.getByRole("button", { name: "Find by distinct id" }).click();
  await page.getByRole("heading", { name: "carol@example.com" }).waitFor();
  const row = page.locator("tr", { has: page.getByRole("link", { name: "ui-pro-cohort" }) });
  const text = await row.textContent();
  assert(text.includes("true") && text.includes("condition_match"), text);
  assert((await page.locator("td", { hasText: "seats" }).count()) === 1, "properties shown");
  await shot("person");
  await axeBothWidths(page, "person page");
  await row.getByRole("link", { name: "Explain ui-pro-cohort for this person" }).click();
  await page.locator(".answer").waitFor();
  assert((await page.locator(".answer").textContent()).includes("condition_match"), "the flag's explanation");
});

await check("find persons by a property value", async () => {
  await page.goto(`${projectBase}/persons`);
  await page.getByLabel("Property").fill("plan");
  await page.getByLabel("Value", { exact: true }).fill("pro");
  await page.getByRole("button", { name: "Find by property" }).click();
  await page.getByText("1 found").waitFor();
  await page.getByRole("link", { name: "carol@example.com" }).waitFor();
  await page.getByLabel("Property").fill("seats");
  await page.getByLabel("Value", { exact: true }).fill("12");
  await page.getByRole("button", { name: "Find by property" }).click();
  await page.getByText("1 found").waitFor();
  await axeBothWidths(page, "person search");
});

await check("the live variant sum refuses to submit 90 %", async () => {
  await page.goto(`${projectBase}/flags/new`);
  await page.getByLabel("Key", { exact: true }).fill("ui-sum-refused");
  await page.getByLabel("Condition 1 filter 1 key", { exact: true }).fill("plan");
  await page.getByLabel("Variant 1 key").fill("control");
  await page.getByLabel("Variant 1 rollout %").fill("50");
  await page.getByLabel("Variant 2 key").fill("test");
  await page.getByLabel("Variant 2 rollout %").fill("40");
  await page.getByRole("button", { name: "Create flag" }).click();
  const sum = await page.locator("#variant-sum").textContent();
  assert(sum.startsWith("Not saved") && sum.includes("90%"), sum);
  assert(page.url().endsWith("/flags/new"), `stayed on the editor: ${page.url()}`);
  assert((await page.evaluate(() => document.activeElement && document.activeElement.id)) === "variant-rollout-0", "focus moved to the variants");
});

await check("deleting a cohort asks first and names the flags that use it", async () => {
  await page.goto(`${projectBase}/cohorts/${proCohort}`);
  await page.getByRole("link", { name: "Delete cohort…" }).click();
  await page.getByText("ui-pro-cohort").waitFor();
  await axe(page, "delete cohort");
  await page.goto(`${projectBase}/cohorts`);
  const name = "Frequent buyers";
  await page.getByRole("link", { name }).click();
  await page.getByRole("link", { name: "Delete cohort…" }).click();
  await page.getByRole("button", { name: `Delete ${name}` }).click();
  await page.getByText("Showing 1–2 of 2 cohorts").waitFor();
});

await check("no console errors on the new pages and no request left the server", async () => {
  assert(problems.length === 0, `console: ${problems.join("; ")}`);
  assert(external.length === 0, `external requests: ${external.join(", ")}`);
});

await browser.close();
finish("ui");
