// The organization the judge evaluates requests in: its accounts and OUs, the SCPs attached to
// the root, the infra/ templates deployed where the README deploys them (with concrete
// parameters), and the principals and resources that are not Guardrail's but that every
// organization has (an admin agent, a person, break-glass, StackSets, waiver setters), each
// stated as an assumption in the report.

import { readdirSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { Stack } from './cfn.mjs'

export const ORG = 'o-exampleorg1'
export const ROOT = 'r-ab12'
export const REGION = 'us-east-1'
/** The SCP attached to the security account itself; every other file of infra/scp to the root. */
export const SECURITY_ACCOUNT_SCP = 'protect-security-account.json'

/** Account ids by role in the organization. `fresh` is a new account still in the root. */
export const A = {
  management: '111111111111',
  security: '222222222222',
  dev: '333333333333',
  prod: '444444444444',
  fresh: '555555555555',
  outside: '999999999999'
}

/** OU ids; the security account sits in an OU of its own. */
export const OU = {
  security: 'ou-ab12-security',
  dev: 'ou-ab12-dev00001',
  prod: 'ou-ab12-prod0001',
  landing: 'ou-ab12-landing1'
}

const PARENT = { security: OU.security, dev: OU.dev, prod: OU.prod, fresh: null }

export const arn = {
  role: (account, pathAndName) => `arn:aws:iam::${account}:role/${pathAndName}`,
  user: (account, name) => `arn:aws:iam::${account}:user/${name}`,
  ou: (id) => `arn:aws:organizations::${A.management}:ou/${ORG}/${id}`,
  account: (id) => `arn:aws:organizations::${A.management}:account/${ORG}/${id}`,
  root: () => `arn:aws:organizations::${A.management}:root/${ORG}/${ROOT}`,
  table: (name, account = A.security) => `arn:aws:dynamodb:${REGION}:${account}:table/${name}`,
  fn: (name, account = A.security) => `arn:aws:lambda:${REGION}:${account}:function:${name}`,
  queue: (name, account = A.security) => `arn:aws:sqs:${REGION}:${account}:${name}`,
  topic: (name, account = A.security) => `arn:aws:sns:${REGION}:${account}:${name}`,
  bus: (name, account = A.security) => `arn:aws:events:${REGION}:${account}:event-bus/${name}`,
  rule: (name, account = A.security, bus) =>
    `arn:aws:events:${REGION}:${account}:rule/${bus ? `${bus}/` : ''}${name}`,
  schedule: (name, account = A.security) => `arn:aws:scheduler:${REGION}:${account}:schedule/default/${name}`,
  param: (name, account = A.security) => `arn:aws:ssm:${REGION}:${account}:parameter${name}`,
  logGroup: (name, account = A.security) => `arn:aws:logs:${REGION}:${account}:log-group:${name}`,
  alarm: (name, account = A.security) => `arn:aws:cloudwatch:${REGION}:${account}:alarm:${name}`,
  ec2: (kind, id, account = A.dev) => `arn:aws:ec2:${REGION}:${account}:${kind}/${id}`,
  bucket: (name) => `arn:aws:s3:::${name}`,
  stack: (name, account = A.security) => `arn:aws:cloudformation:${REGION}:${account}:stack/${name}/0a1b2c3d-0000-4000-8000-0123456789ab`
}

/** The principals cases speak of, by who they are. */
export const WHO = {
  devAgent: arn.role(A.dev, 'agents/agent-runner'),
  quarantinedAgent: arn.role(A.dev, 'agents/agent-quarantined'),
  boundedAgent: arn.role(A.dev, 'agents/agent-bounded'),
  developer: arn.role(A.dev, 'developer'),
  devBreakGlass: arn.role(A.dev, 'break-glass-admin'),
  waiverSetter: arn.role(A.dev, 'security-waivers/waiver-setter'),
  stackSets: arn.role(A.dev, 'stacksets-exec-0123456789abcdef0123456789abcdef'),
  devBootstrap: arn.role(A.dev, 'OrganizationAccountAccessRole'),
  freshBootstrap: arn.role(A.fresh, 'OrganizationAccountAccessRole'),
  prodBootstrap: arn.role(A.prod, 'OrganizationAccountAccessRole'),
  prodAgent: arn.role(A.prod, 'agents/prod-agent'),
  agentUser: arn.user(A.dev, 'agent-bot'),
  quarantinedUser: arn.user(A.dev, 'quarantined-bot'),
  secAgent: arn.role(A.security, 'agents/sec-agent'),
  analyst: arn.role(A.security, 'security-analyst'),
  onCall: arn.role(A.security, 'guardrail-oncall'),
  deployer: arn.role(A.security, 'guardrail-deployer'),
  secBreakGlass: arn.role(A.security, 'break-glass-admin'),
  orgAdmin: arn.role(A.management, 'org-admin'),
  outsider: arn.role(A.outside, 'attacker'),
  // Guardrail's own roles, as the templates name them.
  baselineLambda: arn.role(A.security, 'guardrail-account-baseline-lambda'),
  tagsLambda: arn.role(A.security, 'guardrail-tag-enforcer-lambda'),
  quarantineLambda: arn.role(A.security, 'guardrail-agent-quarantine-lambda'),
  devBaseline: arn.role(A.dev, 'guardrail-account-baseline'),
  devTags: arn.role(A.dev, 'guardrail-tag-enforcer'),
  devQuarantine: arn.role(A.dev, 'guardrail-agent-quarantine'),
  devForwarding: arn.role(A.dev, 'guardrail-forwarding-us-east-1'),
  findingsToBus: arn.role(A.security, 'guardrail-findings-to-bus'),
  managementForwarding: arn.role(A.management, 'guardrail-management-forwarding'),
  prodQuarantine: arn.role(A.prod, 'guardrail-agent-quarantine'),
  management: arn.role(A.management, 'guardrail-management')
}

const ADMIN = { Version: '2012-10-17', Statement: [{ Sid: 'AdministratorAccess', Effect: 'Allow', Action: '*', Resource: '*' }] }
const FULL_AWS_ACCESS = { name: 'FullAWSAccess', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] } }
const SSO_BREAK_GLASS = `arn:aws:iam::${A.management}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_BreakGlass_0123456789abcdef`
const trustOnly = (principal, sid = 'ModelledTrust') => ({
  Version: '2012-10-17',
  Statement: [{ Sid: sid, Effect: 'Allow', Principal: { AWS: principal }, Action: 'sts:AssumeRole' }]
})

/**
 * Principals and resources of the organization that Guardrail's templates do not create, with
 * why they are modelled so. The report lists these as the assumptions the verdicts rest on.
 */
function modelled() {
  const dev = A.dev
  const sec = A.security
  const people = (account, pathAndName, why, extra = {}) => ({
    account, pathAndName, why, policies: [{ name: 'AdministratorAccess', policy: ADMIN }], ...extra
  })
  const quarantineDeny = {
    name: 'guardrail-quarantine',
    policy: { Version: '2012-10-17', Statement: [{ Sid: 'GuardrailQuarantine', Effect: 'Deny', Action: '*', Resource: '*' }] }
  }
  return [
    people(dev, 'agents/agent-runner', 'an AI agent with AdministratorAccess in a dev account (the principal to contain)'),
    people(dev, 'agents/agent-quarantined', 'an agent Guardrail has isolated: its quarantine tag and inline deny policy in place', {
      tags: { 'guardrail:quarantine': 'isolate 2026-12-01T00:00:00Z finding:abc' },
      policies: [{ name: 'AdministratorAccess', policy: ADMIN }, quarantineDeny]
    }),
    people(dev, 'agents/agent-bounded', 'an agent Guardrail has isolated through the boundary alone (its inline policy quota full, so no deny policy went on)', {
      tags: { 'guardrail:quarantine': 'isolate 2026-12-01T00:00:00Z finding:abc' },
      boundary: `arn:aws:iam::${dev}:policy/guardrail-isolate`
    }),
    people(dev, 'agents/guardrail-agent-quarantine-lambda', "a role an agent made with the name of Guardrail's execution role at another path"),
    people(dev, 'Break-Glass-Admin', 'a role an agent made with a break-glass name in other letter case'),
    people(dev, 'helper', 'a role an agent made for itself, trusting the account'),
    people(dev, 'developer', 'a person with AdministratorAccess in a dev account (neither exempt nor an agent)'),
    people(dev, 'break-glass-admin', 'a break-glass role, assumable only through an IAM Identity Center permission set', {
      trust: trustOnly(SSO_BREAK_GLASS, 'PeopleThroughIdentityCenter')
    }),
    people(dev, 'security-waivers/waiver-setter', 'a waiver setter (safety.waivers.setters); given AdministratorAccess so that only the SCP limits it'),
    people(dev, 'stacksets-exec-0123456789abcdef0123456789abcdef', 'the role service-managed StackSets create in every member account', {
      trust: trustOnly(`arn:aws:iam::${A.management}:role/aws-service-role/stacksets.cloudformation.amazonaws.com/AWSServiceRoleForCloudFormationStackSetsOrgAdmin`, 'StackSets')
    }),
    people(dev, 'OrganizationAccountAccessRole', 'the bootstrap role Organizations creates in every new account', {
      trust: trustOnly(`arn:aws:iam::${A.management}:root`, 'ManagementAccount')
    }),
    people(A.fresh, 'OrganizationAccountAccessRole', 'the bootstrap role of a new account still in the root', {
      trust: trustOnly(`arn:aws:iam::${A.management}:root`, 'ManagementAccount')
    }),
    people(A.prod, 'OrganizationAccountAccessRole', 'the bootstrap role of a placed prod account', {
      trust: trustOnly(`arn:aws:iam::${A.management}:root`, 'ManagementAccount')
    }),
    people(A.prod, 'agents/prod-agent', 'an AI agent with AdministratorAccess in a prod account'),
    people(sec, 'agents/sec-agent', 'an AI agent with AdministratorAccess in the security account itself'),
    people(sec, 'security-analyst', 'a person with AdministratorAccess in the security account who is not on call'),
    people(sec, 'guardrail-oncall', "the on-call role (member-roles' IncidentResponseRoleName and SweepOperatorRoleName): releases, approvals, redrives", {
      trust: trustOnly(`arn:aws:iam::${A.management}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_SecurityOnCall_0123456789abcdef`, 'PeopleOnCall')
    }),
    people(sec, 'guardrail-deployer', 'the role that runs make deploy (spared by the SCPs because of its guardrail- name)', {
      trust: trustOnly(`arn:aws:iam::${A.management}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Deploy_0123456789abcdef`, 'Pipeline')
    }),
    people(sec, 'break-glass-admin', 'a break-glass role of the security account', {
      trust: trustOnly(SSO_BREAK_GLASS, 'PeopleThroughIdentityCenter')
    }),
    people(A.management, 'org-admin', 'an administrator of the management account (SCPs never apply there)'),
    people(A.outside, 'attacker', 'an administrator of an account outside the organization'),
    { account: sec, resource: `arn:aws:kms:us-east-1:${sec}:key/33333333-0000-4000-8000-000000000000`, why: 'a key of another team in the security account, with the default key policy',
      policyName: 'team-key-policy', policy: { Version: '2012-10-17', Statement: [{ Sid: 'EnableIamUserPermissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${sec}:root` }, Action: 'kms:*', Resource: '*' }] } },
    { account: dev, resource: arn.alarm('agent-runner-spend', dev), why: "an owner's alarm that watches an agent (tagged guardrail:agent-role)",
      tags: { 'guardrail:agent-role': 'agents/agent-runner' } },
    { account: dev, user: 'agent-bot', why: 'an agent working as an IAM user with AdministratorAccess', policies: [{ name: 'AdministratorAccess', policy: ADMIN }] },
    { account: dev, user: 'quarantined-bot', why: 'an IAM user Guardrail has isolated', policies: [{ name: 'AdministratorAccess', policy: ADMIN }, quarantineDeny],
      tags: { 'guardrail:quarantine': 'isolate 2026-12-01T00:00:00Z rate:RunInstances' } }
  ]
}

/** The templates, deployed as the README's Deploy section says. */
function stacks(root) {
  const infra = (f) => join(root, 'infra', f)
  const bus = arn.bus('guardrail')
  const central = new Stack({
    path: infra('template.yaml'), stackName: 'guardrail', account: A.security, region: REGION,
    parameters: { OrganizationId: ORG, ManagementAccountId: A.management }
  })
  const members = ['security', 'dev', 'prod'].map((a) => new Stack({
    path: infra('member-roles.yaml'), stackName: 'StackSet-guardrail-member-roles-0001', account: A[a], region: REGION,
    parameters: { SecurityAccountId: A.security, IncidentResponseRoleName: 'guardrail-oncall', SweepOperatorRoleName: 'guardrail-oncall' }
  }))
  const forwarding = ['dev', 'prod'].map((a) => new Stack({
    path: infra('forwarding.yaml'), stackName: 'StackSet-guardrail-forwarding-0001', account: A[a], region: REGION,
    parameters: { CentralBusArn: bus }
  }))
  const management = new Stack({
    path: infra('management-role.yaml'), stackName: 'guardrail-management', account: A.management, region: REGION,
    parameters: {
      SecurityAccountId: A.security, OrganizationId: ORG, CentralBusArn: bus, RootId: ROOT,
      PlacementOuArns: [OU.dev, OU.prod].map(arn.ou).join(','),
      LandingOuPaths: `${ORG}/${ROOT}/${OU.landing}/`
    }
  })
  return [central, ...members, ...forwarding, management]
}

const asList = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])

export class World {
  constructor(root) {
    this.root = root
    this.stacks = stacks(root)
    this.scps = this.#readScps()
    /** ARN → { account, kind, name, policies, boundary, trust, tags, why, file } */
    this.principals = new Map()
    /** ARN → { account, policy, policyName, tags, file } */
    this.resources = new Map()
    /** ARN → { name, policy, file }: the templates' managed policies (permissions boundaries) */
    this.managedPolicies = new Map()
    this.assumptions = []
    for (const stack of this.stacks) this.#addStack(stack)
    for (const m of modelled()) this.#addModelled(m)
  }

  /** infra/scp/*.json, each attached where the README says: the security account's own to it. */
  #readScps() {
    const dir = join(this.root, 'infra', 'scp')
    return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => {
      const text = readFileSync(join(dir, f), 'utf8')
      const target = f === SECURITY_ACCOUNT_SCP ? A.security : ROOT
      return { file: `infra/scp/${f}`, name: `scp:${basename(f, '.json')}`, text, policy: JSON.parse(text), target }
    })
  }

  #addStack(stack) {
    const file = `infra/${basename(stack.path)}`
    for (const [, r] of stack.ofType('AWS::IAM::Role')) {
      const p = r.properties
      const { Arn, name } = stack.physical(Object.keys(stack.resources).find((k) => stack.resources[k] === r))
      this.principals.set(Arn, {
        account: stack.account, kind: 'role', name, file,
        policies: asList(p.Policies).map((x) => ({ name: `${name}`, policy: x.PolicyDocument })),
        tags: Object.fromEntries(asList(p.Tags).map((t) => [t.Key, t.Value]))
      })
      this.resources.set(Arn, { account: stack.account, policy: p.AssumeRolePolicyDocument, policyName: `trust:${name}`, file })
    }
    for (const [id, r] of stack.ofType('AWS::IAM::ManagedPolicy')) {
      const { PolicyArn, name } = stack.physical(id)
      this.managedPolicies.set(PolicyArn, { name, policy: r.properties.PolicyDocument, file })
    }
    for (const [id, r] of stack.ofType('AWS::KMS::Key')) {
      this.resources.set(stack.physical(id).Arn, { account: stack.account, policy: r.properties.KeyPolicy, policyName: 'key-policy', file })
    }
    for (const [id, r] of stack.ofType('AWS::DynamoDB::Table')) {
      const policy = r.properties.ResourcePolicy?.PolicyDocument
      const entry = { account: stack.account, policy, policyName: policy && `${stack.physical(id).name}-policy`, file }
      this.resources.set(stack.physical(id).Arn, entry)
    }
    for (const [, r] of stack.ofType('AWS::SNS::TopicPolicy')) {
      for (const topic of r.properties.Topics) this.resources.set(topic, { account: stack.account, policy: r.properties.PolicyDocument, policyName: 'topic-policy', file })
    }
    for (const [, r] of stack.ofType('AWS::SQS::QueuePolicy')) {
      for (const url of r.properties.Queues) {
        // Queues are named by URL (Ref of AWS::SQS::Queue); requests name the queue's ARN.
        const [, region, account, name] = url.match(/^https:\/\/sqs\.([^.]+)\.amazonaws\.com\/(\d{12})\/(.+)$/)
        const queue = `arn:aws:sqs:${region}:${account}:${name}`
        this.resources.set(queue, { account: stack.account, policy: r.properties.PolicyDocument, policyName: `queue-policy:${name}`, file })
      }
    }
    for (const [, r] of stack.ofType('AWS::Events::EventBusPolicy')) {
      const p = r.properties
      const busArn = arn.bus(p.EventBusName, stack.account)
      const statement = { Sid: p.StatementId, ...p.Statement }
      this.resources.set(busArn, { account: stack.account, policy: { Version: '2012-10-17', Statement: [statement] }, policyName: 'bus-policy', file })
    }
    for (const [, r] of stack.ofType('AWS::Organizations::ResourcePolicy')) {
      this.organizationsPolicy = { policy: r.properties.Content, policyName: 'organizations-delegation', file }
    }
  }

  #addModelled(m) {
    if (m.resource) {
      this.resources.set(m.resource, { account: m.account, tags: m.tags, policy: m.policy, policyName: m.policyName, file: 'modelled' })
      this.assumptions.push({ arn: m.resource, why: m.why })
      return
    }
    const principalArn = m.user ? arn.user(m.account, m.user) : arn.role(m.account, m.pathAndName)
    const name = m.user ?? m.pathAndName.split('/').at(-1)
    this.principals.set(principalArn, {
      account: m.account, kind: m.user ? 'user' : 'role', name, policies: m.policies, boundary: m.boundary, tags: m.tags ?? {}, why: m.why, file: 'modelled'
    })
    if (!m.user) {
      this.resources.set(principalArn, {
        account: m.account, tags: m.tags ?? {}, file: 'modelled', policyName: `trust:${name}`,
        policy: m.trust ?? trustOnly(`arn:aws:iam::${m.account}:root`, 'AccountAdministrators')
      })
    } else {
      this.resources.set(principalArn, { account: m.account, tags: m.tags ?? {}, file: 'modelled' })
    }
    this.assumptions.push({ arn: principalArn, why: m.why })
  }

  /** A principal's permissions boundary, which must be a managed policy of the templates. */
  boundaryOf(principal) {
    if (!principal?.boundary) return []
    const policy = this.managedPolicies.get(principal.boundary)
    if (!policy) throw new Error(`boundary ${principal.boundary} is no managed policy of infra/`)
    return [{ name: policy.name, policy: policy.policy }]
  }

  /** The SCPs that govern a principal of `account`: none in the management account. */
  scpsFor(account) {
    if (account === A.management || !this.inOrganization(account)) return []
    const attached = (target) => [FULL_AWS_ACCESS, ...this.scps.filter((s) => s.target === target).map((s) => ({ name: s.name, policy: s.policy }))]
    const levels = [{ orgIdentifier: ROOT, policies: attached(ROOT) }]
    const parent = this.parentOf(account)
    if (parent) levels.push({ orgIdentifier: parent, policies: attached(parent) })
    levels.push({ orgIdentifier: account, policies: attached(account) })
    return levels
  }

  inOrganization(account) {
    return account !== A.outside
  }

  parentOf(account) {
    const key = Object.keys(A).find((k) => A[k] === account)
    return PARENT[key] ?? null
  }

  /** aws:PrincipalOrgPaths / aws:ResourceOrgPaths of an account. */
  orgPath(account) {
    if (account === A.management) return `${ORG}/${ROOT}/`
    const parent = this.parentOf(account)
    return parent ? `${ORG}/${ROOT}/${parent}/` : `${ORG}/${ROOT}/`
  }

  /**
   * The resource-based policy that governs `action` on `resource` in `account`, if any. A call to
   * Organizations from a member account is decided by the management account's delegation
   * policy, whether the action has a resource type or not.
   */
  resourcePolicy(resource, action, account) {
    const toOrganizations = resource.startsWith('arn:aws:organizations::') ||
      (action.startsWith('organizations:') && account === A.management)
    if (toOrganizations && this.organizationsPolicy) {
      return { name: this.organizationsPolicy.policyName, policy: this.organizationsPolicy.policy }
    }
    const service = action.split(':')[0]
    const entry = this.resources.get(resource)
    if (!entry?.policy) return null
    if (resource.includes(':iam::') && service !== 'sts') return null // a role's trust policy governs only STS
    return { name: entry.policyName, policy: entry.policy }
  }

  /** Every Deny statement the judge must see used and shown not to block a near miss. */
  denyStatements() {
    const out = []
    const add = (policyName, file, doc) => {
      for (const [i, s] of asList(doc?.Statement).entries()) {
        if (s.Effect === 'Deny') out.push({ id: `${policyName}#${s.Sid ?? i + 1}`, file })
      }
    }
    for (const s of this.scps) add(s.name, s.file, s.policy)
    const seen = new Set()
    for (const [, p] of this.principals) {
      if (p.file === 'modelled') continue
      for (const pol of p.policies) {
        const key = `${pol.name}:${JSON.stringify(pol.policy)}`
        if (!seen.has(key)) {
          seen.add(key)
          add(pol.name, p.file, pol.policy)
        }
      }
    }
    for (const [, m] of this.managedPolicies) add(m.name, m.file, m.policy)
    const seenResource = new Set()
    for (const [, r] of this.resources) {
      if (r.file === 'modelled' || !r.policy || seenResource.has(r.policyName)) continue
      seenResource.add(r.policyName)
      add(r.policyName, r.file, r.policy)
    }
    if (this.organizationsPolicy) add(this.organizationsPolicy.policyName, this.organizationsPolicy.file, this.organizationsPolicy.policy)
    return out.filter((d, i) => out.findIndex((o) => o.id === d.id) === i)
  }
}
