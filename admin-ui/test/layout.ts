// What makes a console screen wider than its window (it then scrolls
// sideways on a phone): the elements that stick out of the window while
// their parent does not, or nothing when the page fits.
import type { Page } from "playwright-core";

export function sticksOut(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const w = window.innerWidth;
    if (document.documentElement.scrollWidth <= w) return [];
    return [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > w + 1 && (e.parentElement?.getBoundingClientRect().right ?? 0) <= w + 1)
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join(".")} right=${Math.round(e.getBoundingClientRect().right)}`);
  });
}
