// The classroom live view in a real browser (Debian's chromium through playwright-core):
// replay the Almaty afternoon of 13 February 2014 at speed, see the outage start and end in
// the feed and the counters, keep screenshots of the key moments in test-artifacts/.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { startLab, type Lab } from "../../src/index.js";
import { ROOT } from "../helpers/cli.js";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find((p) => existsSync(p));
if (!CHROMIUM) console.warn("browser tests skipped: no chromium (Debian: apt-get install chromium)");
const ARTIFACTS = join(ROOT, "test-artifacts", "live-view");
const ALMATY = (hhmm: string): number => Date.parse(`2014-02-13T${hhmm}:00+06:00`);

describe.skipIf(!CHROMIUM)("live view (chromium)", () => {
  let lab: Lab;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    lab = await startLab({ profiles: ["kz-2014-02-13-almaty-messaging"], from: "2014-02-13T16:56:00+06:00", speed: 1 });
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1366, height: 1000 } });
    await page.goto(`http://127.0.0.1:${lab.endpoints.control!.port}/`);
    await page.locator("#title", { hasText: "Almaty" }).waitFor();
  });
  afterAll(async () => {
    await browser?.close();
    await lab?.stop();
  });

  const shot = async (name: string): Promise<void> => {
    const file = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    expect(statSync(file).size).toBeGreaterThan(10_000);
  };
  /** "Try it": an SMS between two subscribers of Kcell in Almaty; the result box's verdict. */
  const trySms = async (): Promise<string> => {
    await page.selectOption("#try-kind", "service");
    await page.selectOption("#try-service", "sms");
    await page.selectOption("#try-network", "kcell-almaty-mobile");
    await page.click("#try-form button[type=submit]");
    const box = page.locator("#try-result[data-observed]");
    await box.waitFor();
    const observed = (await box.getAttribute("data-observed"))!;
    await page.locator("#try-result").evaluate((e) => e.removeAttribute("data-observed"));
    return observed;
  };
  const runUntil = async (t: number, speed: string): Promise<void> => {
    await page.selectOption("#speed", speed);
    if ((await page.textContent("#play")) === "Play") await page.click("#play");
    await expect.poll(() => lab.clock.now(), { timeout: 30_000, interval: 100 }).toBeGreaterThan(t);
    await page.click("#play"); // pause
    await expect.poll(() => page.textContent("#clock-state")).toBe("paused");
  };

  it("shows the story, then the outage starting and ending, in the feed, the counters and the timeline", async () => {
    // Before 17:00: the regime's story and sources; a message gets through.
    expect(await page.textContent("#description")).toContain("17:00");
    expect(await page.locator("#sources li").count()).toBeGreaterThan(0);
    expect(await page.locator("#timeline .seg.blocking").count()).toBe(1);
    expect(await trySms()).toBe("false");
    await expect.poll(() => page.locator('#feed li[data-action="allow"]').count()).toBeGreaterThan(0);
    await shot("1-before-the-outage");

    // Play at x600 into the outage: the message centre refuses, the feed says by which rule.
    await runUntil(ALMATY("17:02"), "600");
    expect(await trySms()).toBe("service-unavailable");
    const reject = page.locator('#feed li[data-action="reject"][data-rule="sms-outage"]').first();
    await reject.waitFor();
    expect(await reject.textContent()).toMatch(/by kz-2014-02-13-almaty-messaging\/sms-outage, per /);
    await expect.poll(() => page.locator('#counters tr[data-action="reject"][data-network="kcell-almaty-mobile"]').count()).toBe(1);
    expect(await page.textContent("#lab-time")).toMatch(/13 Feb 2014, 17:0\d/);
    await shot("2-during-the-outage");

    // On at x3600 past 18:30: messages flow again.
    /** Where the now-marker stands on the timeline, in percent. */
    const marker = async (): Promise<number> => parseFloat(await page.locator("#now").evaluate((e) => (e as unknown as { style: { left: string } }).style.left));
    const during = await marker();
    await runUntil(ALMATY("18:31"), "3600");
    expect(await trySms()).toBe("false");
    await expect.poll(() => page.locator('#feed li[data-action="allow"]').count()).toBeGreaterThan(2);
    expect(await marker()).toBeGreaterThan(during);
    expect(await page.textContent("#lab-time")).toMatch(/13 Feb 2014, 18:3\d/);
    await shot("3-after-the-outage");

    // The counters are reset from the page.
    await page.click("#reset");
    await expect.poll(() => page.textContent("#total")).toBe("0");
  });

  it("on a 1024x768 projector: everything above the fold, decisions filled on load, a bad Go to says why, clocks say their zone", async () => {
    const small = await browser.newPage({ viewport: { width: 1024, height: 768 } });
    try {
      await small.goto(`http://127.0.0.1:${lab.endpoints.control!.port}/`);
      await small.locator("#title", { hasText: "Almaty" }).waitFor();
      // The decisions of the test above were made before this page opened: they are listed.
      await expect.poll(() => small.locator("#feed li").count()).toBeGreaterThan(0);
      for (const id of ["#feed", "#counters", "#try-form", "#timeline", "#play"]) {
        const box = await small.locator(id).boundingBox();
        expect(box, id).not.toBeNull();
        expect(box!.y, `${id} starts above the fold`).toBeLessThan(768 - 20);
      }
      expect(await small.textContent("#lab-time")).toMatch(/GMT\+6|UTC\+6/);
      await small.fill("#seek", "yesterday at noon");
      await small.click("#seek-form button[type=submit]");
      await expect.poll(() => small.textContent("#seek-error")).toMatch(/ISO instant/);
      await small.screenshot({ path: join(ARTIFACTS, "4-projector-1024x768.png") });
    } finally {
      await small.close();
    }
  });
});
