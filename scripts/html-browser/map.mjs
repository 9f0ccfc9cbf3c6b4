// Opens netmap-reduce's HTML map in Debian's chromium (driven by playwright-core, which downloads no browser)
// at an exact viewport, and for each requested view prints the page's published state (#netmap-state), after
// an optional hover, and writes an optional screenshot. tests/reduce_html.rs runs it; by hand:
//   node scripts/html-browser/map.mjs '{"page": "map.html", "viewport": [1400, 1000],
//                                       "views": [{"fragment": "group", "screenshot": "grouped.png"}]}'
// A view: {"fragment": "focus=NAME", "hover": "NAME.NAMESPACE" (optional), "screenshot": PATH (optional),
// "golden": PATH (optional: the screenshot is compared with it by compare.mjs, or, with UPDATE_GOLDEN set,
// written there)}. Prints a JSON array of states, one per view, each with `golden` ({matches, reason}) when
// asked; exits 1 with the reason when the browser or the page fails.
import { chromium } from "playwright-core";
import { copyFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { compare } from "./compare.mjs";

const spec = JSON.parse(process.argv[2] ?? "null");
if (!spec || !spec.page || !Array.isArray(spec.views)) {
  console.error("usage: map.mjs '{\"page\": PATH, \"viewport\": [W, H], \"views\": [{\"fragment\": ...}]}'");
  process.exit(2);
}
const [width, height] = spec.viewport ?? [1400, 1000];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  // No sandbox (tests run as root); nothing that phones home.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--font-render-hinting=none"],
});
const state = async (page) => JSON.parse(await page.locator("#netmap-state").textContent());
const results = [];
try {
  for (const view of spec.views) {
    // A fresh page each time: the fragment is read once, at load.
    const page = await browser.newPage({ viewport: { width, height }, deviceScaleFactor: 1 });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(pathToFileURL(spec.page).href + "#" + (view.fragment ?? ""));
    await page.waitForFunction(() => JSON.parse(document.getElementById("netmap-state").textContent || "{}").ready === true);
    let shown = await state(page);
    if (view.hover) {
      const dot = (shown.geometry?.dots ?? []).find((d) => d.node === view.hover);
      if (!dot) throw new Error(`no node ${view.hover} on screen to hover`);
      await page.mouse.move(dot.x, dot.y);
      await page.waitForFunction((name) => JSON.parse(document.getElementById("netmap-state").textContent).hovered === name, view.hover);
      shown = await state(page);
    }
    if (view.screenshot) await page.screenshot({ path: view.screenshot });
    if (view.golden) {
      if (process.env.UPDATE_GOLDEN) {
        copyFileSync(view.screenshot, view.golden);
        shown.golden = { matches: true, reason: "written (UPDATE_GOLDEN)" };
      } else {
        shown.golden = compare(view.screenshot, view.golden);
      }
    }
    shown.pageErrors = errors;
    results.push(shown);
    await page.close();
  }
} catch (e) {
  console.error(`map.mjs: ${e.message}`);
  await browser.close();
  process.exit(1);
}
await browser.close();
process.stdout.write(JSON.stringify(results));
