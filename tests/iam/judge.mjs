#!/usr/bin/env node
// Guardrail's IAM judge: the real infra/ templates and SCPs, deployed on paper into a model
// organization, and every request of cases/ decided by an independent IAM policy evaluator.
// Fails when the evaluator is wrong on a documented case, an SCP does not fit, a case's decision
// or deciding statement differs from what it expects, a Deny statement has no case or no near
// miss, or docs/SECURITY.md does not carry this run's table.
//
// Usage: node judge.mjs [--write] [--format json]
//   --write   rewrite the evaluated table in docs/SECURITY.md (make iam-report)

import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkActions } from './checks/actions.mjs'
import { checkEvaluator } from './checks/evaluator.mjs'
import { checkScpBudget } from './checks/scp-budget.mjs'
import { judge } from './lib/evaluate.mjs'
import { render, BEGIN, END } from './lib/report.mjs'
import { World } from './lib/world.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const args = process.argv.slice(2)
const write = args.includes('--write')
const json = args.includes('--format') && args[args.indexOf('--format') + 1] === 'json'

async function loadCases() {
  const dir = join(here, 'cases')
  const out = []
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.mjs')).sort()) {
    const module = await import(join(dir, file))
    const prefix = module.PREFIX ?? file.slice(0, 1).toUpperCase()
    module.default.forEach((c, i) => out.push({ ...c, id: `${prefix}${i + 1}`, section: module.SECTION ?? file }))
  }
  return out
}

const matches = (expect, verdict) =>
  expect.decision === verdict.decision && expect.by.every((id) => verdict.by.includes(id))

async function main() {
  const failures = []
  const evaluator = await checkEvaluator()
  for (const w of evaluator.wrong) failures.push(`evaluator: ${w.name}: expected ${w.expected}, got ${w.got}`)

  const world = new World(root)
  const budget = checkScpBudget(world.scps)
  failures.push(...budget.problems)
  const actions = await checkActions(world)
  failures.push(...actions.problems)

  const cases = await loadCases()
  const results = []
  for (const c of cases) {
    let verdict
    try {
      verdict = await judge(world, c.request)
    } catch (e) {
      failures.push(`${c.id} ${c.why}: ${e.message}`)
      continue
    }
    const ok = matches(c.expect, verdict)
    if (!ok) {
      failures.push(`${c.id} (${c.kind}) ${c.why}: expected ${c.expect.decision} by ${c.expect.by.join(', ') || 'anything'}, ` +
        `got ${verdict.decision} by ${verdict.by.join(', ')}`)
    }
    if (c.kind === 'probe' && verdict.decision === 'Allowed' && !c.residual) {
      failures.push(`${c.id} probe allowed without a residual risk and compensating control: ${c.why}`)
    }
    results.push({ ...c, verdict, ok })
  }

  // Every Deny is used, and stands beside legitimate work it must not block.
  const denies = world.denyStatements()
  for (const deny of denies) {
    const used = results.some((r) => r.verdict.decision === 'Denied' && r.verdict.by.includes(deny.id) && r.ok)
    const near = results.some((r) => r.kind === 'near-miss' && r.beside.includes(deny.id) && r.ok)
    if (!used) failures.push(`${deny.id} (${deny.file}): no case is denied by it`)
    if (!near) failures.push(`${deny.id} (${deny.file}): no near miss stands beside it`)
  }
  for (const r of results.filter((r) => r.kind === 'near-miss')) {
    for (const id of r.beside) {
      if (!denies.some((d) => d.id === id)) failures.push(`${r.id}: beside ${id}, which is no Deny statement of infra/`)
    }
  }

  const counts = {
    requests: results.length,
    claims: results.filter((r) => r.kind === 'claim').length,
    nearMisses: results.filter((r) => r.kind === 'near-miss').length,
    probes: results.filter((r) => r.kind === 'probe').length,
    probesDenied: results.filter((r) => r.kind === 'probe' && r.verdict.decision === 'Denied').length,
    open: results.filter((r) => r.kind === 'probe' && r.residual).length,
    denyStatements: denies.length,
    evaluatorChecks: evaluator.checked,
    actionsChecked: actions.checked,
    wildcardGrants: actions.wildcardGrants
  }
  const table = render({ results, counts, budget, world })
  const docPath = join(root, 'docs', 'SECURITY.md')
  const doc = readFileSync(docPath, 'utf8')
  const start = doc.indexOf(BEGIN)
  const stop = doc.indexOf(END)
  if (start < 0 || stop < start) {
    failures.push(`docs/SECURITY.md has no ${BEGIN} … ${END} section for the evaluated table`)
  } else {
    const current = doc.slice(start, stop + END.length)
    if (write && failures.length === 0) {
      writeFileSync(docPath, doc.slice(0, start) + table + doc.slice(stop + END.length))
    } else if (!write && current !== table) {
      failures.push('docs/SECURITY.md does not carry this run\'s table: run `make iam-report` and commit it')
    }
  }

  if (json) {
    console.log(JSON.stringify({ counts, sizes: budget.sizes, failures, results: results.map(summary) }, null, 2))
  } else {
    for (const s of budget.sizes) console.log(`scp ${s.file}: ${s.submitted} of 5120 characters, ${s.statements} statements`)
    console.log(`evaluator: ${evaluator.checked - evaluator.wrong.length} of ${evaluator.checked} documented cases right`)
    console.log(`actions: ${counts.actionsChecked} named in infra/ checked against the Service Authorization Reference; ` +
      `${counts.wildcardGrants} granted on "*", each without a resource type`)
    console.log(`requests ${counts.requests}: ${counts.claims} claims, ${counts.nearMisses} near misses, ` +
      `${counts.probes} probes (${counts.probesDenied} denied, ${counts.open} open with a compensating control); ` +
      `${counts.denyStatements} Deny statements covered`)
    for (const f of failures) console.log(`FAIL ${f}`)
  }
  if (failures.length) {
    if (!json) console.log(`iam-judge: ${failures.length} failure(s)`)
    // Not process.exit: it cuts off output still queued for a pipe (the JSON report).
    process.exitCode = 1
    return
  }
  if (!json) console.log(write ? 'iam-judge: all hold; docs/SECURITY.md rewritten' : 'iam-judge: all hold')
}

const summary = (r) => ({
  id: r.id, kind: r.kind, why: r.why, as: r.request.as, do: r.request.do, on: r.request.on,
  expected: r.expect.decision, decision: r.verdict.decision, by: r.verdict.by, residual: r.residual
})

main().catch((e) => {
  console.error(`iam-judge: ${e.stack ?? e}`)
  process.exit(2)
})
