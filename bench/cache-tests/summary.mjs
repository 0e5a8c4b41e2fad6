// bench/cache-tests/summary.mjs: reads the JSON that the suite's CLI wrote
// and classifies every test the way cache-tests.fyi shows it
// (lib/display.mjs, determineTestResult, with dependencies honoured), then
// writes summary.json and prints the counts.
//
//   node summary.mjs SUITE_DIR RESULTS_JSON SUMMARY_JSON [THRESHOLD] [CACHE_MODE]
//
// SUITE_DIR is the installed package (node_modules/http-cache-tests): its
// test definitions give each test's kind and depends_on. THRESHOLD, when a
// number, is printed next to the count of required failures. CACHE_MODE
// ("on" or "off") is recorded in the summary as holdfast_cache.
//
// Exit status: 0 when the summary was written and the harness could drive
// every test, 2 on a harness error (a test missing from the results, or the
// configuration PUT through the proxy refused), 1 on bad input.

import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [suiteDir, resultsFile, summaryFile, thresholdArg, cacheMode] = process.argv.slice(2)
if (!suiteDir || !resultsFile || !summaryFile) {
  console.error('usage: node summary.mjs SUITE_DIR RESULTS_JSON SUMMARY_JSON [THRESHOLD] [CACHE_MODE]')
  process.exit(1)
}

const load = async rel => (await import(pathToFileURL(path.join(suiteDir, rel)).href)).default
// The same list as the suite's cli.mjs: tests/index.mjs plus Surrogate-Control.
const suites = [...await load('tests/index.mjs'), await load('tests/surrogate-control.mjs')]
const version = JSON.parse(fs.readFileSync(path.join(suiteDir, 'package.json'), 'utf8')).version

let results
try {
  results = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))
} catch (err) {
  console.error(`cannot read the suite's results from ${resultsFile}: ${err.message}`)
  process.exit(1)
}
if (results === null || typeof results !== 'object' || Array.isArray(results)) {
  console.error(`${resultsFile} is not the suite's results object`)
  process.exit(1)
}

const byId = new Map()
const suiteOf = new Map()
for (const suite of suites) {
  for (const test of suite.tests) {
    byId.set(test.id, test)
    suiteOf.set(test.id, suite.id)
  }
}

// kind: the test definitions say required, optimal or check; a test without
// a kind is required (lib/display.mjs treats undefined as required).
const kindOf = test => test.kind || 'required'

// classify mirrors determineTestResult in the suite's lib/display.mjs.
// honour=false leaves dependencies out: a test is judged on its own result.
function classify (id, honour) {
  const test = byId.get(id)
  const result = results[id]
  if (result === undefined) return 'untested'
  if (honour && test.depends_on !== undefined) {
    for (const dep of test.depends_on) {
      const r = byId.has(dep) ? classify(dep, true) : 'untested'
      if (r !== 'pass' && r !== 'yes') return 'dependency_fail'
    }
  }
  if (Array.isArray(result) && result[0] === 'Setup') {
    return result[1] === 'retry' ? 'retry' : 'setup_fail'
  }
  switch (kindOf(test)) {
    case 'required': return result === true ? 'pass' : 'fail'
    case 'optimal': return result === true ? 'pass' : 'optional_fail'
    case 'check': return result === true ? 'yes' : 'no'
    default: throw new Error(`test ${id}: unknown kind ${test.kind}`)
  }
}

const classes = ['pass', 'fail', 'optional_fail', 'yes', 'no', 'setup_fail', 'retry', 'dependency_fail', 'untested']
const byResult = Object.fromEntries(classes.map(c => [c, 0]))
const tests = []
const requiredFailures = []
const requiredFailuresAlone = []
const harnessErrors = []
const errors = []
let expected = 0
let passed = 0
let failed = 0
let required = 0

for (const suite of suites) {
  for (const test of suite.tests) {
    // The CLI leaves out the tests meant for browsers only.
    if (test.browser_only === true) continue
    expected++
    const raw = results[test.id]
    const result = classify(test.id, true)
    const alone = classify(test.id, false)
    byResult[result]++
    const kind = kindOf(test)
    if (kind === 'required') required++
    if (raw === true) passed++
    else failed++
    const message = Array.isArray(raw) ? String(raw[1]) : ''
    const entry = { id: test.id, suite: suite.id, kind, result, raw: raw === undefined ? null : raw }
    if (test.depends_on) entry.depends_on = test.depends_on
    tests.push(entry)
    if (result === 'fail') requiredFailures.push({ id: test.id, suite: suite.id, message })
    if (alone === 'fail') requiredFailuresAlone.push(test.id)
    if (raw === undefined) {
      harnessErrors.push({ id: test.id, message: 'no result: the suite did not run this test' })
    } else if (message.startsWith('PUT config resulted in')) {
      harnessErrors.push({ id: test.id, message })
    } else if (Array.isArray(raw) && raw[0] !== 'Assertion' && raw[0] !== 'Setup') {
      // A client-side exception (a connection reset, say): the suite's
      // display counts it as a failure of the test's kind; listed apart too.
      errors.push({ id: test.id, name: String(raw[0]), message })
    }
  }
}
for (const id of Object.keys(results)) {
  if (!byId.has(id)) harnessErrors.push({ id, message: 'a result for a test this version does not define' })
}

const threshold = /^\d+$/.test(thresholdArg || '') ? Number(thresholdArg) : null
const summary = {
  suite: 'http-cache-tests',
  version,
  holdfast_cache: cacheMode || null,
  counts: {
    tests: expected,
    passed,
    failed,
    required,
    required_failed: requiredFailures.length,
    required_failed_ignoring_dependencies: requiredFailuresAlone.length
  },
  threshold,
  by_result: byResult,
  required_failures: requiredFailures,
  required_failures_ignoring_dependencies: requiredFailuresAlone,
  harness_errors: harnessErrors,
  errors,
  tests
}
fs.writeFileSync(summaryFile, JSON.stringify(summary, null, 2) + '\n')

console.log(`passed ${passed}, failed ${failed}, required failed ${requiredFailures.length}`)
console.log('by result: ' + classes.map(c => `${c} ${byResult[c]}`).join(', '))
console.log(`required failed ignoring dependencies: ${requiredFailuresAlone.length}`)
if (threshold !== null) {
  const verdict = requiredFailures.length > threshold
    ? 'OVER the threshold'
    : requiredFailures.length < threshold ? 'under the threshold: lower it' : 'at the threshold'
  console.log(`threshold ${threshold}: ${verdict}`)
}
if (requiredFailures.length) {
  console.log('required failures:')
  for (const f of requiredFailures) console.log(`  ${f.id}: ${f.message}`)
}
if (harnessErrors.length) {
  console.log(`harness errors (${harnessErrors.length}): the suite could not drive every test through holdfast`)
  for (const e of harnessErrors.slice(0, 20)) console.log(`  ${e.id}: ${e.message}`)
  process.exit(2)
}
