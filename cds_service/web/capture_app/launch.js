// SMART App Launch: from the EHR (the URL has `iss` and `launch`) or standalone (only `iss`), ask the EHR's
// authorization server for access to one patient's chart, with PKCE. fhirclient reads both parameters.
"use strict";

(async () => {
  const message = document.getElementById("message");
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`the app's settings did not load (HTTP ${response.status})`);
    const config = await response.json();
    const query = new URLSearchParams(window.location.search);
    if (!query.get("iss")) throw new Error("the launch did not say which health record to open (no iss)");
    await FHIR.oauth2.authorize({
      clientId: config.clientId,
      scope: query.has("launch") ? config.scopes.ehr : config.scopes.standalone,
      redirectUri: "index.html",
      pkceMode: "required",
    });
  } catch (error) {
    message.textContent = `Could not connect to the health record: ${error.message}`;
    message.classList.add("error");
  }
})();
