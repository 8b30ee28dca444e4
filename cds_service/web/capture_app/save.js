// Saving: the service's $extract turns the answers into a FHIR transaction (the response, and the
// Observations and Procedures it stands for); the EHR's FHIR server then applies it whole or not at all.
// A second save of the same answers in the same launch creates nothing: every entry is a conditional create.

const FHIR_JSON = "application/fhir+json";

async function responseId(parts) {
  const bytes = new TextEncoder().encode(JSON.stringify(parts));
  const hex = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))]
    .map((byte) => byte.toString(16).padStart(2, "0"))
    .join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

// What a server said, in the form's words: the service names questions by linkId ('outside-care-start'),
// the clinician knows them by their text ("First session").
async function words(response, labels) {
  try {
    const body = await response.json();
    const said = (body.issue || []).map((issue) => issue.diagnostics || issue.details?.text).filter(Boolean);
    const named = said.map((text) =>
      text.replace(/'([\w.-]+)'/g, (quoted, linkId) => (labels.has(linkId) ? `“${labels.get(linkId)}”` : quoted)),
    );
    if (named.length) return `${named.join("; ")}.`;
  } catch {
    // not JSON: the status line is all there is
  }
  return `HTTP ${response.status} ${response.statusText}.`.replace(" .", ".");
}

async function send(url, init, failure, labels) {
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new Error(`${failure.unreachable} Nothing was saved; try again.`);
  }
  if (!response.ok) throw new Error(`${failure.refused} ${await words(response, labels)} Nothing was saved.`);
  return response.json();
}

function answerWords(answer) {
  if ("valueBoolean" in answer) return answer.valueBoolean ? "yes" : "no";
  if (answer.valueQuantity) return `${answer.valueQuantity.value} ${answer.valueQuantity.unit || ""}`.trim();
  if (answer.valueCoding) return answer.valueCoding.display || answer.valueCoding.code;
  const value = Object.entries(answer).find(([key]) => key.startsWith("value"));
  return value ? String(value[1]) : "";
}

function recorded(items, into = []) {
  for (const item of items || []) {
    if (item.answer?.length) {
      into.push(`${item.text || item.linkId} — ${item.answer.map(answerWords).join(", ")}`);
      item.answer.forEach((answer) => recorded(answer.item, into));
    }
    recorded(item.item, into);
  }
  return into;
}

export async function save(client, answered, { questionnaire, patientId, session, labels }) {
  const response = {
    ...answered,
    resourceType: "QuestionnaireResponse",
    questionnaire,
    status: "completed",
    subject: { reference: `Patient/${patientId}` },
    authored: new Date().toISOString(),
  };
  delete response.id; // not stored yet: the transaction stores it and links what it yields to it
  delete response.meta;
  response.identifier = {
    system: "urn:ietf:rfc:3986",
    value: `urn:uuid:${await responseId([session, questionnaire, patientId, answered.item])}`,
  };
  const user = client.user?.fhirUser;
  if (user) response.author = { reference: user };
  const server = client.state.serverUrl.replace(/\/+$/, "");
  const headers = {
    "Content-Type": FHIR_JSON,
    Accept: FHIR_JSON,
    Authorization: client.getAuthorizationHeader(),
  };
  const transaction = await send(
    "../fhir/QuestionnaireResponse/$extract",
    { method: "POST", headers: { ...headers, "X-FHIR-Server": server }, body: JSON.stringify(response) },
    {
      unreachable: "Could not reach the guideline service.",
      refused: "The answers could not be turned into records:",
    },
    labels,
  );
  const result = await send(
    server,
    { method: "POST", headers, body: JSON.stringify(transaction) },
    {
      unreachable: "Could not reach the health record.",
      refused: "The health record refused the save:",
    },
    labels,
  );
  const created = (result.entry || []).filter((entry) => entry.response?.status?.startsWith("201")).length;
  return {
    headline: created
      ? "Saved to the record; the card shows it from its next call:"
      : "Already in the record; nothing new was written:",
    recorded: recorded(response.item),
  };
}
