// Before the evaluator judges Guardrail, it is checked on cases whose answers AWS documents
// (IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements: Condition
// operators"): if it gets one of these wrong, none of its verdicts count.

import { runSimulation } from '@cloud-copilot/iam-simulate'

const ACCOUNT = '123456789012'
const doc = (...Statement) => ({ Version: '2012-10-17', Statement })
const ADMIN = doc({ Effect: 'Allow', Action: '*', Resource: '*' })
const FULL = { name: 'FullAWSAccess', policy: ADMIN }
const role = (name) => `arn:aws:iam::${ACCOUNT}:role/${name}`

const KNOWN = [
  {
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
    name: 'an explicit deny in an identity policy overrides an allow',
    principal: role('a'), action: 's3:GetObject', resource: 'arn:aws:s3:::b/k',
    identity: [ADMIN, doc({ Effect: 'Deny', Action: 's3:*', Resource: '*' })],
    expect: 'ExplicitlyDenied'
  },
  {
    name: 'without any allow the request is implicitly denied',
    principal: role('a'), action: 's3:GetObject', resource: 'arn:aws:s3:::b/k',
    identity: [doc({ Effect: 'Allow', Action: 's3:PutObject', Resource: '*' })],
    expect: 'ImplicitlyDenied'
  },
  {
    // Condition operators: ArnLike checks each colon-delimited component; * spans "/".
    name: 'ArnLike: role/break-glass-* matches a role whose path starts with /break-glass-x/',
    principal: role('break-glass-x/anyone'), action: 'iam:TagRole', resource: role('t'),
    identity: [ADMIN],
    scp: [doc({ Effect: 'Deny', Action: '*', Resource: '*', Condition: { ArnNotLike: { 'aws:PrincipalArn': `arn:aws:iam::*:role/break-glass-*` } } })],
    context: { 'aws:PrincipalArn': role('break-glass-x/anyone') },
    expect: 'Allowed'
  },
  {
    name: 'ArnLike is case-sensitive: role/break-glass-* does not match role/Break-Glass-x',
    principal: role('Break-Glass-x'), action: 'iam:TagRole', resource: role('t'),
    identity: [ADMIN],
    scp: [doc({ Effect: 'Deny', Action: '*', Resource: '*', Condition: { ArnNotLike: { 'aws:PrincipalArn': `arn:aws:iam::*:role/break-glass-*` } } })],
    context: { 'aws:PrincipalArn': role('Break-Glass-x') },
    expect: 'ExplicitlyDenied'
  },
  {
    name: 'ForAnyValue:StringLike on aws:TagKeys matches when one key matches',
    principal: role('a'), action: 'iam:TagRole', resource: role('t'),
    identity: [ADMIN, doc({ Effect: 'Deny', Action: 'iam:TagRole', Resource: '*', Condition: { 'ForAnyValue:StringLike': { 'aws:TagKeys': 'guardrail:*' } } })],
    context: { 'aws:TagKeys': ['Owner', 'guardrail:waiver'] },
    expect: 'ExplicitlyDenied'
  },
  {
    name: 'StringLike is case-sensitive: guardrail:* misses Guardrail:Waiver',
    principal: role('a'), action: 'iam:TagRole', resource: role('t'),
    identity: [ADMIN, doc({ Effect: 'Deny', Action: 'iam:TagRole', Resource: '*', Condition: { 'ForAnyValue:StringLike': { 'aws:TagKeys': 'guardrail:*' } } })],
    context: { 'aws:TagKeys': ['Guardrail:Waiver'] },
    expect: 'Allowed'
  },
  {
    name: 'StringEqualsIgnoreCase matches GUARDRAIL:WAIVER to guardrail:waiver',
    principal: role('a'), action: 'iam:TagRole', resource: role('t'),
    identity: [ADMIN, doc({ Effect: 'Deny', Action: 'iam:TagRole', Resource: '*', Condition: { 'ForAnyValue:StringEqualsIgnoreCase': { 'aws:TagKeys': 'guardrail:waiver' } } })],
    context: { 'aws:TagKeys': ['GUARDRAIL:WAIVER'] },
    expect: 'ExplicitlyDenied'
  },
  {
    name: 'ForAnyValue on a missing key is false (a call without tags is not denied)',
    principal: role('a'), action: 'iam:TagRole', resource: role('t'),
    identity: [ADMIN, doc({ Effect: 'Deny', Action: 'iam:TagRole', Resource: '*', Condition: { 'ForAnyValue:StringLike': { 'aws:TagKeys': 'guardrail:*' } } })],
    context: {},
    expect: 'Allowed'
  },
  {
    name: 'Null "false" holds only when the key is present',
    principal: role('a'), action: 'iam:PutRolePolicy', resource: role('t'),
    identity: [ADMIN, doc({ Effect: 'Deny', Action: 'iam:PutRolePolicy', Resource: '*', Condition: { Null: { 'aws:ResourceTag/guardrail:quarantine': 'false' } } })],
    context: { 'aws:ResourceTag/guardrail:quarantine': 'isolate' },
    expect: 'ExplicitlyDenied'
  },
  {
    name: 'Null "false" does not hold when the key is absent',
    principal: role('a'), action: 'iam:PutRolePolicy', resource: role('t'),
    identity: [ADMIN, doc({ Effect: 'Deny', Action: 'iam:PutRolePolicy', Resource: '*', Condition: { Null: { 'aws:ResourceTag/guardrail:quarantine': 'false' } } })],
    context: {},
    expect: 'Allowed'
  },
  {
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html
    // "Condition key names are not case-sensitive", the tag key part included.
    name: 'a condition key name matches whatever the case of the tag key',
    principal: role('a'), action: 'iam:PutRolePolicy', resource: role('t'),
    identity: [ADMIN, doc({ Effect: 'Deny', Action: 'iam:PutRolePolicy', Resource: '*', Condition: { Null: { 'aws:ResourceTag/guardrail:quarantine': 'false' } } })],
    context: { 'aws:ResourceTag/Guardrail:Quarantine': 'isolate' },
    expect: 'ExplicitlyDenied'
  },
  {
    name: 'a resource policy Deny on Principal "*" denies a caller its identity policy allows',
    principal: role('a'), action: 'dynamodb:DeleteItem', resource: `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/t`,
    identity: [ADMIN],
    resourcePolicy: doc({ Effect: 'Deny', Principal: '*', Action: 'dynamodb:DeleteItem', Resource: `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/t` }),
    expect: 'ExplicitlyDenied'
  },
  {
    name: 'an SCP deny applies although the identity policy allows',
    principal: role('a'), action: 'ssm:PutParameter', resource: `arn:aws:ssm:us-east-1:${ACCOUNT}:parameter/guardrail/pause`,
    identity: [ADMIN],
    scp: [doc({ Effect: 'Deny', Action: 'ssm:PutParameter', Resource: 'arn:aws:ssm:*:*:parameter/guardrail/*' })],
    expect: 'ExplicitlyDenied'
  },
  {
    name: 'a NotAction deny spares the actions it lists',
    principal: role('a'), action: 'lambda:GetFunction', resource: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:guardrail-x`,
    identity: [ADMIN],
    scp: [doc({ Effect: 'Deny', NotAction: ['lambda:Get*', 'lambda:List*'], Resource: 'arn:aws:lambda:*:*:function:guardrail-*' })],
    expect: 'Allowed'
  },
  {
    name: 'a NotAction deny denies what it does not list',
    principal: role('a'), action: 'lambda:UpdateFunctionCode', resource: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:guardrail-x`,
    identity: [ADMIN],
    scp: [doc({ Effect: 'Deny', NotAction: ['lambda:Get*', 'lambda:List*'], Resource: 'arn:aws:lambda:*:*:function:guardrail-*' })],
    expect: 'ExplicitlyDenied'
  },
  {
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
    name: 'across accounts the resource policy must allow too',
    principal: 'arn:aws:iam::210987654321:role/a', action: 'sts:AssumeRole', resource: role('target'),
    identity: [ADMIN],
    resourcePolicy: doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' }),
    expect: 'ImplicitlyDenied'
  },
  {
    name: 'a service principal is allowed by a trust policy naming the service and its source account',
    principal: 'events.amazonaws.com', action: 'sts:AssumeRole', resource: role('fwd'),
    identity: [],
    resourcePolicy: doc({ Effect: 'Allow', Principal: { Service: 'events.amazonaws.com' }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } } }),
    context: { 'aws:SourceAccount': ACCOUNT },
    expect: 'Allowed'
  },
  {
    name: 'dynamodb:LeadingKeys with ForAllValues:StringLike refuses a key outside the list',
    principal: role('a'), action: 'dynamodb:PutItem', resource: `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/t`,
    identity: [doc({ Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: '*', Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['replay#mine#*'] } } })],
    context: { 'dynamodb:LeadingKeys': ['replay#theirs#1'] },
    expect: 'ImplicitlyDenied'
  }
]

/** Runs the known cases; returns the ones the evaluator gets wrong. */
export async function checkEvaluator() {
  const wrong = []
  for (const k of KNOWN) {
    const simulation = {
      request: {
        principal: k.principal,
        action: k.action,
        resource: { resource: k.resource, accountId: ACCOUNT },
        contextVariables: k.context ?? {}
      },
      identityPolicies: k.identity.map((policy, i) => ({ name: `identity${i}`, policy })),
      serviceControlPolicies: k.scp ? [{ orgIdentifier: 'r-0000', policies: [FULL, ...k.scp.map((policy, i) => ({ name: `scp${i}`, policy }))] }] : [],
      resourceControlPolicies: [],
      resourcePolicy: k.resourcePolicy
    }
    const response = await runSimulation(simulation, {})
    const got = response.resultType === 'error' ? `error ${JSON.stringify(response.errors)}` : response.overallResult
    if (got !== k.expect) wrong.push({ name: k.name, expected: k.expect, got })
  }
  return { checked: KNOWN.length, wrong }
}
