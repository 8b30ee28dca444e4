// What the app shows of a Questionnaire, and what of the answers it sends.

// Only the items the card asks for, inside the groups that hold them; all of them when it asks for none.
export function narrowed(questionnaire, wanted) {
  if (!wanted.length) return questionnaire;
  const keep = (items) =>
    (items || []).flatMap((item) => {
      if (wanted.includes(item.linkId)) return [item];
      if (item.type !== "group") return [];
      const inside = keep(item.item);
      return inside.length ? [{ ...item, item: inside }] : [];
    });
  return { ...questionnaire, item: keep(questionnaire.item) };
}

function numbered(items) {
  const count = {};
  return (items || []).map((item) => {
    count[item.linkId] = (count[item.linkId] || 0) + 1;
    return [`${item.linkId}#${count[item.linkId]}`, item];
  });
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// The response without the answers that LHC-Forms filled in from the chart and the user left as they were:
// the record already holds them, and saving them again would date an old finding today.
export function unchangedDropped(response, baseline) {
  const kept = (items, before) => {
    const old = new Map(numbered(before));
    return numbered(items).flatMap(([key, item]) => {
      const was = old.get(key);
      if (item.answer) return was?.answer && same(item.answer, was.answer) ? [] : [item];
      const inside = kept(item.item, was?.item);
      return inside.length ? [{ ...item, item: inside }] : [];
    });
  };
  return { ...response, item: kept(response.item, baseline?.item) };
}
