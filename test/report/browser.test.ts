/**
 * The report page in headless Chromium (Debian's `chromium`, driven by playwright-core): it loads with no console
 * or page errors and no network requests, every chart has drawn its lines in its run's colours, and the slider
 * redraws. Fails (does not skip) when Chromium is missing. A screenshot of a fake 2-run report goes to the temp
 * directory; with NRT_UPDATE_SCREENSHOT=1 it also replaces docs/report-screenshot.png.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { PALETTE, pageCharts } from "../../src/report/_html.js";
import { buildReport } from "../../src/report/report.js";
import { writeFakeRun } from "./_fake-run.js";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SCREENSHOT = join(import.meta.dirname, "../../docs/report-screenshot.png");

const tmp = mkdtempSync(join(tmpdir(), "nrt-report-browser-"));
let context: BrowserContext | undefined;
afterAll(async () => {
  await context?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const hex = (c: string) => [1, 3, 5].map((i) => Number.parseInt(c.slice(i, i + 2), 16));

describe("the report page in headless Chromium", () => {
  const a = join(tmp, "nrt-ws");
  const b = join(tmp, "rlpr");
  const page = join(tmp, "report.html");
  let runs: ReturnType<typeof buildReport>["runs"];

  // Set up by the first test rather than in beforeAll, so that a missing Chromium fails each test by name.
  let ready: Promise<BrowserContext> | undefined;
  const browser = (): Promise<BrowserContext> => {
    ready ??= launch();
    return ready;
  };
  const launch = async (): Promise<BrowserContext> => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (the report's browser test needs it)`);
    writeFakeRun(a, { method: "nrt-ws", steps: 120, seed: 1, speed: 1.5, withEval: true, withSamples: true });
    writeFakeRun(b, { method: "rlpr", steps: 90, seed: 2, withEval: true, withAlarms: true });
    const r = buildReport([a, b], { title: "nrt report: nrt-ws vs rlpr (fake runs)" });
    runs = r.runs;
    writeFileSync(page, r.html);
    // --user-data-dir is Playwright's own argument here: a new temporary directory.
    context = await chromium.launchPersistentContext(mkdtempSync(join(tmp, "profile-")), {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1200, height: 800 },
      deviceScaleFactor: 1,
    });
    return context;
  };

  it("loads offline with no errors and every chart draws each run's lines", async () => {
    const p = await (await browser()).newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    p.on("console", (m) => {
      if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    p.on("pageerror", (e) => errors.push(`page: ${e.message}`));
    p.on("request", (r) => {
      if (!/^(file|data|blob):/.test(r.url())) requests.push(r.url());
    });
    await p.goto(pathToFileURL(page).href); // waits for "load": the inline scripts have run
    expect(errors).toEqual([]);
    const charts = pageCharts(runs);
    expect(await p.getAttribute("body", "data-ready")).toBe(String(charts.length));
    expect(await p.locator(".chart[data-drawn]").count()).toBe(charts.length);

    // Count, on each chart's canvas, the pixels of each run's colour (antialiased: α·colour + (1−α)·white).
    const counts = await p.evaluate(
      ({ ids, colors }) =>
        ids.map((id) => {
          const canvas = document.querySelector(`#chart-${id} canvas`) as HTMLCanvasElement;
          const px = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
          return colors.map((c) => {
            let n = 0;
            for (let i = 0; i < px.length; i += 4) {
              if (px[i + 3] === 0) continue;
              const alphas = [0, 1, 2].filter((j) => 255 - c[j] > 50).map((j) => (255 - px[i + j]) / (255 - c[j]));
              if (Math.min(...alphas) > 0.6 && Math.max(...alphas) - Math.min(...alphas) < 0.12) n++;
            }
            return n;
          });
        }),
      { ids: charts.map((c) => c.id), colors: runs.map((_, i) => hex(PALETTE[i])) },
    );
    charts.forEach((c, ci) => {
      for (let ri = 0; ri < runs.length; ri++) {
        const hasLine = c.series.some((s) => s.run === ri && s.values.some((v) => v !== null));
        const n = counts[ci][ri];
        if (hasLine) expect(n, `chart ${c.id}, run ${runs[ri].name}: pixels of its colour`).toBeGreaterThan(20);
        else expect(n, `chart ${c.id}, run ${runs[ri].name}: no line expected`).toBeLessThan(5);
      }
    });

    // The smoothing slider redraws without errors.
    await p.locator("#smooth").fill("0");
    expect(await p.textContent("#smooth-value")).toBe("off");

    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await p.close();
  });

  it("keeps a screenshot of a 2-run report", async () => {
    const p = await (await browser()).newPage();
    await p.goto(pathToFileURL(page).href);
    expect(await p.getAttribute("body", "data-ready")).not.toBeNull();
    const shot = join(tmp, "report-screenshot.png");
    await p.screenshot({ path: shot, clip: { x: 0, y: 0, width: 1200, height: 1000 } });
    const bytes = readFileSync(shot);
    expect(bytes.subarray(1, 4).toString()).toBe("PNG");
    expect(statSync(shot).size).toBeLessThan(300_000);
    if (process.env.NRT_UPDATE_SCREENSHOT === "1") copyFileSync(shot, SCREENSHOT);
    await p.close();
  });
});
