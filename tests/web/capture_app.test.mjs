// The capture app's own logic, without a browser: node --test tests/web/capture_app.test.mjs
// (run by tests/web/test_capture_app_js.py).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { narrowed, unchangedDropped } from "../../cds_service/web/capture_app/questionnaire.js";

const screen = JSON.parse(
  await readFile(new URL("../../plandefinitions/questionnaires/post-fusion-screen.json", import.meta.url)),
);
const linkIds = (items) => (items || []).flatMap((item) => [item.linkId, ...linkIds(item.item)]);

test("the app opens on exactly the items the card asks for, inside their groups", () => {
  const shown = narrowed(screen, ["imaging-symptom-correlation", "rf-wound-drainage"]);
  assert.deepEqual(linkIds(shown.item), ["red-flags", "rf-wound-drainage", "pain-source", "imaging-symptom-correlation"]);
  assert.equal(shown.url, screen.url);
  assert.equal(shown.version, screen.version);
});

test("an item asked for keeps what belongs to it: a block's type, an outside course's fields", () => {
  const shown = narrowed(screen, ["diagnostic-block-relief", "outside-care"]);
  assert.ok(linkIds(shown.item).includes("block-type"));
  const course = shown.item.find((item) => item.linkId === "outside-care");
  assert.deepEqual(linkIds(course.item), linkIds(screen.item.find((item) => item.linkId === "outside-care").item));
});

test("a card that names no item opens the whole screen", () => {
  assert.deepEqual(narrowed(screen, []), screen);
});

const answer = (linkId, value) => ({ linkId, answer: [{ valueBoolean: value }] });
const group = (linkId, ...item) => ({ linkId, item });

test("answers filled in from the chart and left alone are not saved again", () => {
  const baseline = { item: [group("pain-source", answer("imaging-symptom-correlation", true))] };
  const now = {
    item: [group("pain-source", answer("imaging-symptom-correlation", true)), group("red-flags", answer("rf-wound-drainage", false))],
  };
  assert.deepEqual(unchangedDropped(now, baseline).item, [group("red-flags", answer("rf-wound-drainage", false))]);
});

test("an answer from the chart that the clinician changed is saved", () => {
  const baseline = { item: [group("pain-source", answer("imaging-symptom-correlation", true))] };
  const now = { item: [group("pain-source", answer("imaging-symptom-correlation", false))] };
  assert.deepEqual(unchangedDropped(now, baseline).item, now.item);
});

test("repeated groups are compared repetition by repetition", () => {
  const course = (sessions) => group("outside-care", { linkId: "outside-care-sessions", answer: [{ valueInteger: sessions }] });
  const baseline = { item: [course(6)] };
  const now = { item: [course(6), course(8)] };
  assert.deepEqual(unchangedDropped(now, baseline).item, [course(8)]);
});

test("with nothing from the chart every answer is kept", () => {
  const now = { item: [group("red-flags", answer("rf-progressive-weakness", true))] };
  assert.deepEqual(unchangedDropped(now, { resourceType: "QuestionnaireResponse" }).item, now.item);
});
