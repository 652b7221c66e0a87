// One request judged by the evaluator (@cloud-copilot/iam-simulate) in the world: the caller's
// identity policies and SCPs, the resource's policy, and the request context AWS would build,
// reduced to a decision and the statements that decided it.

import { runSimulation } from '@cloud-copilot/iam-simulate'
import { A, ORG, REGION } from './world.mjs'

/** When requests are made; revoke-sessions cut-offs are compared with token times around it. */
export const NOW = '2026-12-07T12:00:00Z'

/** The account a request's resource is in: its ARN's, else (`*`, S3 buckets) the caller's. */
function resourceAccountOf({ on, account }, principal) {
  if (account) return account
  const fromArn = on.split(':')[4]
  if (fromArn) return fromArn
  return on === '*' || on.startsWith('arn:aws:s3:::') ? principal?.account ?? null : null
}

/**
 * The context AWS builds for a request (global condition keys), for a principal of the world or
 * an AWS service principal, merged with what the case adds (tag keys, the item's key, ...).
 */
function context(world, request, principal, resourceAccount) {
  const ctx = {
    'aws:SecureTransport': 'true',
    'aws:CurrentTime': NOW,
    'aws:RequestedRegion': REGION
  }
  if (principal) {
    ctx['aws:PrincipalArn'] = request.as
    ctx['aws:PrincipalAccount'] = principal.account
    ctx['aws:PrincipalType'] = principal.kind === 'user' ? 'User' : 'AssumedRole'
    ctx['aws:PrincipalIsAWSService'] = 'false'
    ctx['aws:TokenIssueTime'] = '2026-12-07T11:00:00Z'
    if (world.inOrganization(principal.account)) {
      ctx['aws:PrincipalOrgID'] = ORG
      ctx['aws:PrincipalOrgPaths'] = [world.orgPath(principal.account)]
    }
    for (const [k, v] of Object.entries(principal.tags ?? {})) ctx[`aws:PrincipalTag/${k}`] = v
  } else {
    ctx['aws:PrincipalIsAWSService'] = 'true'
    ctx['aws:PrincipalServiceName'] = request.as
  }
  if (resourceAccount) {
    ctx['aws:ResourceAccount'] = resourceAccount
    if (world.inOrganization(resourceAccount)) {
      ctx['aws:ResourceOrgID'] = ORG
      ctx['aws:ResourceOrgPaths'] = [world.orgPath(resourceAccount)]
    }
  }
  const tags = request.resourceTags ?? world.resources.get(request.on)?.tags ?? {}
  for (const [k, v] of Object.entries(tags)) {
    ctx[`aws:ResourceTag/${k}`] = v
    if (request.on.includes(':iam::')) ctx[`iam:ResourceTag/${k}`] = v
  }
  return { ...ctx, ...(request.context ?? {}) }
}

/**
 * Judges one request `{ as, do, on, context?, resourceTags?, account? }`: `as` is a principal ARN
 * of the world or a service principal (`events.amazonaws.com`), `on` a resource ARN or `*`.
 * Returns `{ decision: 'Allowed' | 'Denied', by: [statement ids], detail }`.
 */
export async function judge(world, request) {
  const service = !request.as.startsWith('arn:')
  const principal = service ? null : world.principals.get(request.as)
  if (!service && !principal) throw new Error(`no principal ${request.as} in the world`)
  const resourceAccount = resourceAccountOf(request, principal)
  const resourcePolicy = world.resourcePolicy(request.on, request.do, resourceAccount)
  const simulation = {
    request: {
      principal: request.as,
      action: request.do,
      resource: { resource: request.on, accountId: resourceAccount ?? A.security },
      contextVariables: context(world, request, principal, resourceAccount)
    },
    identityPolicies: (principal?.policies ?? []).map((p, i) => ({ name: p.name ?? `policy${i}`, policy: p.policy })),
    serviceControlPolicies: principal ? world.scpsFor(principal.account) : [],
    resourceControlPolicies: [],
    resourcePolicy: resourcePolicy?.policy,
    permissionBoundaryPolicies: world.boundaryOf(principal)
  }
  // The evaluator names a resource policy by its statements only; remember whose it is.
  const response = await runSimulation(simulation, {})
  if (response.resultType === 'error') {
    throw new Error(`the evaluator refused ${request.do} on ${request.on}: ${JSON.stringify(response.errors)}`)
  }
  const results = response.resultType === 'single' ? [response.result] : response.results
  const analysis = results[0].analysis
  const decision = response.overallResult === 'Allowed' ? 'Allowed' : 'Denied'
  return {
    decision,
    by: decidedBy(analysis, decision, resourcePolicy?.name),
    ignored: results[0].ignoredContextKeys ?? []
  }
}

const statementId = (policyName, s) => `${policyName}#${s.statement?.Sid ?? s.explain?.identifier ?? '?'}`

/** The statements that decided: every matching Deny, else what was missing, else the Allows. */
function decidedBy(analysis, decision, resourcePolicyName) {
  const layers = [
    ['identity', analysis.identityAnalysis, null],
    ['boundary', analysis.permissionBoundaryAnalysis, null],
    ['resource', analysis.resourceAnalysis, resourcePolicyName ?? 'resource-policy']
  ]
  const denies = []
  const allows = []
  for (const [, layer, name] of layers) {
    for (const s of layer?.denyStatements ?? []) denies.push(statementId(name ?? s.policyId, s))
    for (const s of layer?.allowStatements ?? []) allows.push(statementId(name ?? s.policyId, s))
  }
  for (const ou of analysis.scpAnalysis?.ouAnalysis ?? []) {
    for (const s of ou.denyStatements ?? []) denies.push(statementId(s.policyId, s))
  }
  if (decision === 'Denied') {
    if (denies.length) return [...new Set(denies)]
    const missing = [
      ['identity', analysis.identityAnalysis], ['resource', analysis.resourceAnalysis],
      ['scp', analysis.scpAnalysis], ['rcp', analysis.rcpAnalysis], ['boundary', analysis.permissionBoundaryAnalysis]
    ].filter(([, layer]) => layer?.result === 'ImplicitlyDenied').map(([name]) => `implicit:${name}`)
    return missing.length ? missing : ['implicit:unknown']
  }
  return [...new Set(allows)]
}
