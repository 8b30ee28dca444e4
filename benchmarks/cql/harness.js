'use strict';
/*
The CQL baseline's engine side: cql-execution over cql-exec-fhir, driven by benchmarks/cql_peer.py with one
JSON object per line on stdin, one answer per line on stdout.

  node harness.js ELM_DIR VALUESET_DIR          (TZ=UTC: dateTimes without an offset read as UTC, as ours)
  {"op": "load", "id", "bundle", "drafts": [[coding, ...], ...], "t0", "params"} -> {"build_ms"}
  {"op": "eval", "id"}                  -> {"cards", "facts", "exec_ms"}
  {"op": "time", "id", "n", "warmup"}   -> {"ns": [one evaluation per sample]}
  {"op": "quit"}

The library, the code service and each patient's source and executor are built once; a timed call is only
`executor.exec(patientSource, executionDateTime)`.
*/
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const cql = require('cql-execution');
const cqlfhir = require('cql-exec-fhir');

const MAIN = 'HardwareRemoval';
const OUTPUT = 'Cards';
// Code systems whose codes extend their parent's characters, so `is-a` is a prefix test
// (cds_service/plans/terminology.py PREFIX_HIERARCHIES).
const PREFIX_HIERARCHIES = new Set([
  'http://hl7.org/fhir/sid/icd-10-cm',
  'http://hl7.org/fhir/sid/icd-10',
  'http://www.cms.gov/Medicare/Coding/ICD10',
  'http://www.whocc.no/atc',
]);
// Diagnostic facts returned by "eval" beside the cards, to say why two answers differ.
const FACTS = [
  'Any Red Flag', 'Elective Excluded', 'H1', 'H2', 'H3', 'Lucency Only Failure', 'Positive Hardware Block',
  'Imaging Correlation', 'Loose Screw', 'Hardware Failure Records',
];

function codeSet(parts) {
  const codes = new Set();
  const prefixes = [];
  for (const part of parts || []) {
    for (const concept of part.concept || []) codes.add(`${part.system}|${concept.code}`);
    for (const filter of part.filter || []) {
      if (!PREFIX_HIERARCHIES.has(part.system)) throw new Error(`is-a on ${part.system} needs listed codes`);
      prefixes.push({ system: part.system, prefix: filter.value, strict: filter.op === 'descendent-of' });
    }
  }
  return {
    matches(system, code) {
      if (codes.has(`${system}|${code}`)) return true;
      return prefixes.some(
        (p) => p.system === system && code.startsWith(p.prefix) && !(p.strict && code === p.prefix)
      );
    },
  };
}

function codesOf(value) {
  if (value == null) return [];
  if (Array.isArray(value)) return value.flatMap(codesOf);
  if (value.codes) return codesOf(value.codes); // a Concept
  return typeof value.code === 'string' ? [value] : [];
}

/** A ValueSet resource compiled to membership tests: listed codes, is-a prefixes, excludes. */
class RuleValueSet extends cql.ValueSet {
  constructor(resource) {
    super(resource.url, resource.version);
    this.include = codeSet((resource.compose || {}).include);
    this.exclude = codeSet((resource.compose || {}).exclude);
  }

  hasMatch(value) {
    return codesOf(value).some((c) => {
      const system = c.system == null ? '' : c.system;
      return this.include.matches(system, c.code) && !this.exclude.matches(system, c.code);
    });
  }
}

/** The terminology service: the rule set's own ValueSet resources, by canonical URL. */
class RuleCodeService {
  constructor(directory) {
    this.valueSets = new Map();
    for (const name of fs.readdirSync(directory).filter((n) => n.endsWith('.json')).sort()) {
      const resource = JSON.parse(fs.readFileSync(path.join(directory, name), 'utf8'));
      this.valueSets.set(resource.url, new RuleValueSet(resource));
    }
  }

  findValueSetsByOid(oid) {
    return this.valueSets.has(oid) ? [this.valueSets.get(oid)] : [];
  }

  findValueSet(oid) {
    return this.valueSets.get(oid) || null;
  }
}

/** A patient source over one prebuilt cql-exec-fhir Patient, rewound before each execution. */
class OnePatient {
  constructor(patient) {
    this.patient = patient;
    this.done = false;
  }

  rewind() {
    this.done = false;
    return this;
  }

  currentPatient() {
    return this.done ? undefined : this.patient;
  }

  nextPatient() {
    this.done = true;
    return undefined;
  }
}

function ms(started) {
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function loadLibrary(elmDir) {
  const started = process.hrtime.bigint();
  const libraries = {};
  for (const name of fs.readdirSync(elmDir).filter((n) => n.endsWith('.json'))) {
    libraries[path.basename(name, '.json')] = JSON.parse(fs.readFileSync(path.join(elmDir, name), 'utf8'));
  }
  const main = libraries[MAIN];
  delete libraries[MAIN];
  const library = new cql.Library(main, new cql.Repository(libraries));
  return { library, loadMs: ms(started) };
}

async function main() {
  const [elmDir, valueSetDir] = process.argv.slice(2);
  const { library, loadMs } = loadLibrary(elmDir);
  let started = process.hrtime.bigint();
  const codeService = new RuleCodeService(valueSetDir);
  const codeServiceMs = ms(started);
  const patients = new Map();
  const patientSource = cqlfhir.PatientSource.FHIRv401(); // parses the FHIR model info once
  const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
  send({ ready: true, library_load_ms: loadMs, code_service_ms: codeServiceMs, node: process.version });

  // cql-execution's own entry point: every define once per patient context (cached for the defines that
  // reference it). Its `exec_expression("Cards")` evaluated the shared defines again at each reference here
  // (212 retrieves instead of 30 on the 20-resource patient), so it is the slower of the two.
  const run = async (entry) => {
    const results = await entry.executor.exec(entry.source.rewind(), entry.t0);
    return results.patientResults[entry.patientId];
  };
  const handlers = {
    load(request) {
      started = process.hrtime.bigint();
      patientSource.reset();
      patientSource.loadBundles([request.bundle]);
      const patient = patientSource.currentPatient();
      const drafts = request.drafts.map(
        (codings) => new cql.Concept(codings.map((c) => new cql.Code(c.code, c.system)))
      );
      const parameters = { ...request.params, 'Draft Orders': drafts };
      patients.set(request.id, {
        patientId: patient.getId(),
        source: new OnePatient(patient),
        executor: new cql.Executor(library, codeService, parameters),
        t0: cql.DateTime.parse(request.t0),
      });
      return { build_ms: ms(started) };
    },
    async eval(request) {
      const entry = patients.get(request.id);
      started = process.hrtime.bigint();
      const result = await run(entry);
      const execMs = ms(started);
      const facts = Object.fromEntries(FACTS.map((name) => [name, result[name] === undefined ? null : result[name]]));
      return { cards: result[OUTPUT], facts, exec_ms: execMs };
    },
    async time(request) {
      const entry = patients.get(request.id);
      for (let i = 0; i < request.warmup; i++) await run(entry);
      const ns = [];
      for (let i = 0; i < request.n; i++) {
        const begin = process.hrtime.bigint();
        await run(entry);
        ns.push(Number(process.hrtime.bigint() - begin));
      }
      return { ns };
    },
  };

  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const request = JSON.parse(line);
    if (request.op === 'quit') break;
    try {
      const handler = handlers[request.op];
      if (!handler) throw new Error(`unknown op ${request.op}`);
      if (request.op !== 'load' && !patients.has(request.id)) throw new Error(`unknown patient ${request.id}`);
      send({ ok: true, ...(await handler(request)) });
    } catch (error) {
      send({ ok: false, error: `${error.name}: ${error.message}` });
    }
  }
}

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  });
}

module.exports = { RuleCodeService, OnePatient, loadLibrary };
