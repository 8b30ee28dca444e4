// The capture app, after the SMART launch: read the patient, show what the card found, render the
// Questionnaire items it could not find (LHC-Forms), and write the answers to the EHR's FHIR server in one
// transaction that the service's $extract builds. Nothing here decides anything clinical: the card says
// which items, the Questionnaire says how to ask, the service says what the answers become.
import { narrowed, unchangedDropped } from "./questionnaire.js";
import { save } from "./save.js";

const STATUS_WORDS = {
  met: "✓ met",
  "not-met": "✗ not met",
  "not-documented": "? not documented",
  "not-required": "– not required",
};
const $ = (id) => document.getElementById(id);

function say(text, kind = "") {
  const message = $("message");
  message.replaceChildren(document.createTextNode(text));
  message.className = kind;
}

function appContext(client) {
  const raw = client.state.tokenResponse?.appContext;
  if (!raw) return null;
  try {
    const parsed = typeof raw === "string" ? JSON.parse(raw) : raw;
    return parsed && typeof parsed === "object" ? parsed : null;
  } catch {
    return null; // an appContext that is not ours: open the whole screen
  }
}

function patientLine(patient) {
  const name = (patient.name || [])[0] || {};
  const words = [[...(name.given || []), name.family].filter(Boolean).join(" ") || "Unnamed patient"];
  if (patient.gender) words.push(patient.gender);
  if (patient.birthDate) words.push(`born ${patient.birthDate}`);
  return words.join(" · ");
}

function showChecklist(context) {
  if (!context?.checklist?.length) return;
  $("plan").textContent = context.plan || "";
  $("checklist").replaceChildren(
    ...context.checklist.map((line) => {
      const item = document.createElement("li");
      item.className = line.status;
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.textContent = STATUS_WORDS[line.status] || line.status;
      const text = document.createElement("span");
      text.textContent = line.text;
      item.append(mark, text);
      return item;
    }),
  );
  $("checklist-section").hidden = false;
}

// Two LHC-Forms 40 defects that assistive technology meets, repaired as the form changes: its add buttons'
// aria-controls and aria-describedby name a popover that exists only under the pointer (drop references to
// nothing), and a radio chosen with the keyboard is marked on its label but left unchecked itself (so a
// screen reader would say "not checked"): the input follows its label.
function repairAccessibility(root) {
  const repair = () => {
    for (const name of ["aria-controls", "aria-describedby"]) {
      for (const element of root.querySelectorAll(`[${name}]`)) {
        const ids = element.getAttribute(name).split(/\s+/).filter((id) => document.getElementById(id));
        if (ids.length) element.setAttribute(name, ids.join(" "));
        else element.removeAttribute(name);
      }
    }
    for (const wrapper of root.querySelectorAll(".ant-radio-wrapper")) {
      const input = wrapper.querySelector("input[type=radio]");
      const chosen = wrapper.classList.contains("ant-radio-wrapper-checked");
      if (input && input.checked !== chosen) input.checked = chosen;
    }
  };
  repair();
  // after the click's own dispatch too: a cancelled click puts the input back once its listeners have run
  root.addEventListener("click", () => setTimeout(repair, 0), true);
  new MutationObserver(repair).observe(root, {
    subtree: true,
    childList: true,
    attributeFilter: ["aria-controls", "aria-describedby", "class"],
  });
}

async function questionnaire(canonical) {
  const [url, version] = canonical.split("|");
  const query = new URLSearchParams({ url });
  if (version) query.set("version", version);
  const response = await fetch(`../fhir/Questionnaire?${query}`, {
    headers: { Accept: "application/fhir+json" },
  });
  if (!response.ok) throw new Error(`the form did not load (HTTP ${response.status})`);
  const found = (await response.json()).entry?.[0]?.resource;
  if (!found) throw new Error("the form the card names is not on this service");
  return found;
}

function labels(form) {
  const found = new Map();
  const visit = (items) =>
    (items || []).forEach((item) => {
      if (item.text) found.set(item.linkId, item.text);
      visit(item.item);
    });
  visit(form.item);
  return found;
}

function responseKey(patientId) {
  // One id per launch and patient: saving the same answers twice writes them once (conditional create).
  const key = `capture-session:${patientId}`;
  let session = sessionStorage.getItem(key);
  if (!session) {
    session = crypto.randomUUID();
    sessionStorage.setItem(key, session);
  }
  return session;
}

async function main() {
  const [client, config] = await Promise.all([
    FHIR.oauth2.ready(),
    fetch("config.json", { cache: "no-store" }).then((r) => r.json()),
  ]);
  const context = appContext(client);
  const canonical = context?.questionnaire || config.questionnaire;
  const [patient, form] = await Promise.all([client.patient.read(), questionnaire(canonical)]);
  $("patient").textContent = patientLine(patient);
  showChecklist(context);
  const items = Array.isArray(context?.items) ? context.items : [];
  $("form-hint").textContent = items.length
    ? "What the card is missing, as questions. Answer what you know; leave the rest blank."
    : "Opened without a card: the whole screen. Answers already in the record are filled in.";
  const shown = narrowed(form, items);
  const element = $("form");
  await customElements.whenDefined("wc-lhc-form");
  LForms.Util.setFHIRContext(client);
  await LForms.Util.addFormToPage(shown, element, { prepopulate: true });
  repairAccessibility(element);
  // A copy: what the chart filled in, before the user touches anything.
  const baseline = structuredClone(LForms.Util.getFormFHIRData("QuestionnaireResponse", "R4", element));
  const button = $("save");
  let finished = 0; // saves that ended, on the message as data-saves: what a watcher of the page waits for
  button.disabled = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const result = await saveAnswers(element, baseline, form, patient, client);
      const done = $("message");
      done.className = "done";
      const list = document.createElement("ul");
      list.append(
        ...result.recorded.map((words) => Object.assign(document.createElement("li"), { textContent: words })),
      );
      done.replaceChildren(document.createTextNode(result.headline), list);
    } catch (error) {
      say(error.message, "error");
    } finally {
      button.disabled = false;
      $("message").dataset.saves = String(++finished);
    }
  });
}

async function saveAnswers(element, baseline, form, patient, client) {
  // No LForms.Util.checkValidity here: it calls the required fields of an outside-care course that was
  // left empty missing. The service checks what was answered, and says so per question.
  const answered = unchangedDropped(
    LForms.Util.getFormFHIRData("QuestionnaireResponse", "R4", element),
    baseline,
  );
  if (!answered.item?.length) throw new Error("Nothing to save: no answer was given or changed.");
  say("Saving…");
  return save(client, answered, {
    questionnaire: `${form.url}|${form.version}`,
    patientId: patient.id,
    session: responseKey(patient.id),
    labels: labels(form),
  });
}

main().catch((error) => say(`The app could not open: ${error.message}`, "error"));
