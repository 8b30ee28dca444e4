// The capture app driven as a clinician would, in Debian's Chromium: node capture.mjs JOB.json
//
// JOB.json: {chromium, launchUrl, saves: [{answers: [{question, answer}], revoke}], shots: {dir, widths},
// axe, keyboard}. With `keyboard`, every answer and every save is made with the keyboard alone (focus, Space,
// Enter), as a clinician who does not use a mouse would. Follows the card's SMART link (launchUrl: the app's launch page with iss and launch) through the
// authorization server back to the app and waits until the form is ready; then for each save answers each
// question by its label (a radio group takes "Yes" or "No", a text box the text), first withdrawing the
// app's access token at the `revoke` URL (RFC 7009) when given, presses Save and waits for the outcome.
// Prints one JSON line: {url, title, questions (the labels the form shows), messages, violations, shots,
// console}. Each step is shot at every
// width; axe-core scans the app after it opened and after the first save (impact serious or critical).
import { mkdir, readFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const job = JSON.parse(await readFile(process.argv[2], 'utf8'));
const axeSource = await readFile(job.axe, 'utf8');
const browser = await chromium.launch({ executablePath: job.chromium, args: ['--no-sandbox'] });
const widths = job.shots.widths;
const result = { messages: [], violations: [], shots: [], console: [] };

async function shoot(page, step) {
  for (const width of widths) {
    await page.setViewportSize({ width, height: 900 });
    const file = `${job.shots.dir}/${step}-${width}.png`;
    await page.screenshot({ path: file, fullPage: true });
    result.shots.push(file);
  }
  await page.setViewportSize({ width: widths[0], height: 900 });
}

async function scan(page, step) {
  await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const report = await window.axe.run(document, { resultTypes: ['violations'] });
    return report.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((node) => node.target.join(' ')).slice(0, 5),
    }));
  });
  for (const violation of found) {
    if (violation.impact === 'serious' || violation.impact === 'critical') result.violations.push({ step, ...violation });
  }
}

async function answer(page, { question, answer }) {
  const group = page.getByRole('radiogroup', { name: question, exact: true });
  if (await group.count()) {
    // Ant Design's radios take the click on their label; the input follows once Angular has run.
    const radio = group.getByRole('radio', { name: answer, exact: true });
    if (job.keyboard) {
      await radio.focus();
      await page.keyboard.press('Space');
    } else {
      await radio.locator('xpath=ancestor::label[1]').click();
    }
    // What the user sees (Ant Design marks the chosen label) and what a screen reader reads (the input).
    const label = await radio.locator('xpath=ancestor::label[1]').elementHandle();
    await page.waitForFunction(
      (wrapper) => wrapper.classList.contains('ant-radio-wrapper-checked') && wrapper.querySelector('input').checked,
      label,
      { timeout: 5000 },
    );
    return;
  }
  const box = page.getByRole('textbox', { name: question, exact: true });
  await box.fill(String(answer));
  await box.press('Tab');
}

async function revoke(page, url) {
  const { token, server, patient } = await page.evaluate(() => {
    const state = JSON.parse(sessionStorage.getItem(JSON.parse(sessionStorage.getItem('SMART_KEY'))));
    return { token: state.tokenResponse.access_token, server: state.serverUrl, patient: state.tokenResponse.patient };
  });
  const response = await fetch(url, { method: 'POST', body: new URLSearchParams({ token }) });
  if (!response.ok) throw new Error(`revocation answered ${response.status}`);
  // The FHIR server may remember a token's introspection for a few seconds: wait until it refuses it.
  const deadline = Date.now() + 30000;
  for (;;) {
    const read = await fetch(`${server}/Patient/${patient}`, { headers: { Authorization: `Bearer ${token}` } });
    if (read.status === 401) return;
    if (Date.now() > deadline) throw new Error(`the FHIR server still accepts a revoked token (${read.status})`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function saved(page, count) {
  const button = page.getByRole('button', { name: 'Save to the record' });
  if (job.keyboard) {
    await button.focus();
    await page.keyboard.press('Enter');
  } else {
    await button.click();
  }
  await page.waitForFunction(
    (n) => {
      const message = document.getElementById('message');
      return message.dataset.saves === String(n) && /done|error/.test(message.className);
    },
    count,
    { timeout: 30000 },
  );
  return page.locator('#message').innerText();
}

try {
  await mkdir(job.shots.dir, { recursive: true });
  const context = await browser.newContext({ viewport: { width: widths[0], height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') result.console.push(m.text().slice(0, 300));
  });
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message.slice(0, 300)}`));
  await page.goto(job.launchUrl);
  await page.getByRole('button', { name: 'Save to the record' }).and(page.locator(':enabled')).waitFor({ timeout: 60000 });
  result.title = await page.title();
  result.questions = await page.locator('#form .lhc-form-body [id^="label-"]').allInnerTexts();
  result.url = new URL(page.url()).pathname;
  await shoot(page, '1-opened');
  await scan(page, 'opened');
  for (const [index, step] of job.saves.entries()) {
    const n = index + 1;
    if (step.revoke) await revoke(page, step.revoke);
    for (const item of step.answers) await answer(page, item);
    if (step.answers.length) await shoot(page, `${n + 1}-answered`);
    result.messages.push(await saved(page, n));
    await shoot(page, `${n + 1}-saved`);
    if (n === 1) await scan(page, 'saved');
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
