// Screenshots in Debian's Chromium, for scripts/screenshots.py: node shoot.mjs JOB.json
//
// JOB.json: {chromium, pages: [{url, file, width}], cards: [{card, hook, case, rule, file, width}]}. Pages are
// opened as served, with JavaScript off (they must work without it). Each card is drawn the way the CDS
// Hooks sandbox draws one (src/components/CardList): the summary in bold in its indicator's colour, the
// source label as a link, the detail as GitHub-flavoured markdown with raw HTML passed through, each
// suggestion as a button, links as text buttons, and Dismiss / Override when the card has a uuid and
// override reasons.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { marked } from 'marked';
import { chromium } from 'playwright-core';

const SUMMARY_COLOURS = { info: '#0079be', warning: '#ffae42', critical: '#c00' };

const CARD_STYLE = `
body { margin: 0; padding: 12px; background: #f4f4f4; color: #1c1f21;
  font: 14px/1.43 "Helvetica Neue", Helvetica, Arial, sans-serif; }
.caption { margin: 0 10px 6px; color: #6f7477; font-size: 12px; }
.card { padding: 15px; margin: 10px; background: #fcfcfc; border: 2px solid #ddd; border-radius: 4px;
  border-left-width: 3px; }
.card.info { border-left-color: #0079be; } .card.warning { border-left-color: #ffae42; }
.card.critical { border-left-color: #c00; }
.summary { font-size: 18px; font-weight: 700; margin: 0 0 5px; }
.source { font-size: .85em; font-style: italic; margin: 0 0 5px; }
.source a { color: blue; text-decoration: none; margin-right: 8px; }
.detail table { border-collapse: collapse; } .detail td, .detail th { border: 1px solid #ddd; padding: 2px 6px; }
.detail ul { padding-left: 22px; } .detail li:has(> input[type=checkbox]) { list-style: none; margin-left: -18px; }
.buttons { margin-top: 8px; display: flex; flex-wrap: wrap; gap: 6px; }
button { font: inherit; border-radius: 3px; padding: 5px 12px; border: 1px solid #c8cacb; background: #fff;
  color: #1c1f21; }
button.emphasis { background: #007cc3; border-color: #006aa7; color: #fff; }
button.de-emphasis { border-color: transparent; background: transparent; color: #007cc3; }
select { font: inherit; padding: 4px; }
`;

const escape = (text) =>
  String(text ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function cardHtml({ card, hook, case: patient, rule }) {
  const indicator = SUMMARY_COLOURS[card.indicator] ? card.indicator : 'info';
  const source = card.source?.label
    ? `<div class="source">Source: <a href="${escape(card.source.url || '#')}">${escape(card.source.label)}</a></div>`
    : '';
  const detail = card.detail ? `<div class="detail">${marked.parse(card.detail, { gfm: true })}</div>` : '';
  const suggestions = (card.suggestions || [])
    .map((s) => `<button class="emphasis">${escape(s.label)}</button>`)
    .join('');
  const links = (card.links || []).map((l) => `<button class="de-emphasis">${escape(l.label)}</button>`).join('');
  const reasons = card.overrideReasons || [];
  const dismiss = card.uuid
    ? reasons.length
      ? `<select aria-label="Override reason"><option>Override…</option>${reasons
          .map((r) => `<option>Override: ${escape(r.display || r.code)}</option>`)
          .join('')}</select>`
      : '<button>Dismiss</button>'
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><style>${CARD_STYLE}</style></head><body>
<p class="caption">${escape(rule)} · ${escape(hook)} · synthetic patient ${escape(patient)}</p>
<div class="card ${indicator}">
<div class="summary" style="color:${SUMMARY_COLOURS[indicator]}">${escape(card.summary)}</div>
${source}${detail}
<div class="buttons">${suggestions}</div><div class="buttons">${links}${dismiss}</div>
</div></body></html>`;
}

// The viewport's height is only where a full-page shot starts: a card's is as tall as the card.
async function shoot(browser, { width, height }, file, load) {
  const context = await browser.newContext({ viewport: { width, height }, javaScriptEnabled: false });
  try {
    const page = await context.newPage();
    await load(page);
    await mkdir(dirname(file), { recursive: true });
    await page.screenshot({ path: file, fullPage: true });
    console.log(file);
  } finally {
    await context.close();
  }
}

const job = JSON.parse(await readFile(process.argv[2], 'utf8'));
const browser = await chromium.launch({ executablePath: job.chromium });
try {
  for (const { url, file, width } of job.pages) {
    await shoot(browser, { width, height: 800 }, file, async (page) => {
      const response = await page.goto(url, { waitUntil: 'load' });
      if (!response || response.status() !== 200) {
        throw new Error(`${url} answered ${response ? response.status() : 'nothing'}`);
      }
    });
  }
  for (const item of job.cards) {
    const draw = (page) => page.setContent(cardHtml(item), { waitUntil: 'load' });
    await shoot(browser, { width: item.width, height: 100 }, item.file, draw);
  }
} finally {
  await browser.close();
}
