// An AI agent (or anyone who is not on call) with AdministratorAccess in the security account,
// where Guardrail itself runs: its functions, rules, schedules, table, ledger, queues, topic,
// key, logs, alarms and kill switch. Beside each Deny, what deploys, people on call and
// readers do there.

import { allowed, denied, nearMiss, probe, residual } from '../lib/cases.mjs'
import { A, WHO, arn } from '../lib/world.mjs'

export const SECTION = 'An admin agent in the security account'
export const PREFIX = 'S'

const ROOT_SCP = 'scp:protect-guardrail'
const SEC_SCP = 'scp:protect-security-account'
const EXEMPT = `${ROOT_SCP}#ExemptRolesStayExempt`
const RULES = `${ROOT_SCP}#ForwardingRulesStay`
const PLANE = `${SEC_SCP}#GuardrailControlPlaneStays`
const KEY = `${SEC_SCP}#GuardrailKeyStays`
const PAUSE = `${SEC_SCP}#OnlyPeopleOnCallPauseGuardrail`
const BUS = `${SEC_SCP}#BusPolicyStays`
const FINDINGS = `${SEC_SCP}#FindingsKeepFlowing`
const STACKSETS = `${SEC_SCP}#StackSetsAndLogPoliciesStay`
const ARTIFACTS = `${SEC_SCP}#ArtifactsStay`
const detector = `arn:aws:guardduty:us-east-1:${A.security}:detector/12abc34d567e8fa901bc2d34e56789f0`
const artifact = arn.bucket('guardrail-artifacts-222222222222-us-east-1/3f2c9a0b1d7e4f56a8b9c0d1e2f3a4b5')
const LEDGER_ENTRIES = 'guardrail-ledger-policy#EntriesAreNeverChangedOrDeleted'
const LEDGER_TABLE = 'guardrail-ledger-policy#TheLedgerItselfStays'

const agent = (action, on, context) => ({ as: WHO.secAgent, do: action, on, context })
const fn = arn.fn('guardrail-agent-quarantine')
const table = arn.table('guardrail')
const ledger = arn.table('guardrail-ledger')
const dlq = arn.queue('guardrail-agent-quarantine-dlq')
const topic = arn.topic('guardrail-alerts')
const key = `arn:aws:kms:us-east-1:${A.security}:key/22222222-0000-4000-8000-${A.security}`
const TEAM_KEY = `arn:aws:kms:us-east-1:${A.security}:key/33333333-0000-4000-8000-000000000000`
const aliases = { 'kms:ResourceAliases': ['alias/guardrail'] }
const logs = `${arn.logGroup('/aws/lambda/guardrail-agent-quarantine')}:log-stream:2026/12/07/abc`
const busRule = (name) => arn.rule(name, A.security, 'guardrail')

export default [
  // Running code as Guardrail.
  probe("replaces agent-quarantine's code (it would run as an execution role the SCPs spare)", agent('lambda:UpdateFunctionCode', fn), denied(PLANE)),
  probe("points agent-quarantine at another policy through its environment", agent('lambda:UpdateFunctionConfiguration', fn), denied(PLANE)),
  probe('throttles agent-quarantine to zero', agent('lambda:PutFunctionConcurrency', fn), denied(PLANE)),
  probe('deletes agent-quarantine', agent('lambda:DeleteFunction', fn), denied(PLANE)),
  probe("removes EventBridge's permission to invoke it", agent('lambda:RemovePermission', fn), denied(PLANE)),
  probe('lets another account invoke it', agent('lambda:AddPermission', fn), denied(PLANE)),
  probe('drops its failure destination', agent('lambda:PutFunctionEventInvokeConfig', fn), denied(PLANE)),
  probe('creates a function named like Guardrail\'s', agent('lambda:CreateFunction', arn.fn('guardrail-helper')), denied(PLANE)),
  probe('passes an execution role to a function of its own', agent('iam:PassRole', WHO.quarantineLambda, { 'iam:PassedToService': 'lambda.amazonaws.com' }), denied(EXEMPT)),
  probe("rewrites an execution role's trust", agent('iam:UpdateAssumeRolePolicy', WHO.quarantineLambda), denied(EXEMPT)),
  probe('creates itself an on-call role', agent('iam:CreateRole', arn.role(A.security, 'guardrail-oncall-2')), denied(EXEMPT)),
  probe('assumes the on-call role', agent('sts:AssumeRole', WHO.onCall), denied('implicit:resource')),
  probe("assumes an execution role", agent('sts:AssumeRole', WHO.quarantineLambda), denied('implicit:resource')),
  probe('passes the deploy role to a stack of its own', agent('iam:PassRole', WHO.deployer, { 'iam:PassedToService': 'cloudformation.amazonaws.com' }), denied(EXEMPT)),
  // Routing.
  probe("retargets the rule that feeds agent-quarantine (rule/guardrail/<name>)", agent('events:PutTargets', busRule('guardrail-agent-quarantine-calls')), denied(RULES)),
  probe('deletes the tag rule on the guardrail bus', agent('events:DeleteRule', busRule('guardrail-tag-enforcer')), denied(RULES)),
  probe('disables the account-creation rule', agent('events:DisableRule', busRule('guardrail-account-baseline')), denied(RULES)),
  // PutPermission and RemovePermission have no resource type (Service Authorization Reference):
  // they are denied on "*", which is why this SCP is attached to the security account only.
  probe("removes the bus policy that admits the organization's accounts", agent('events:RemovePermission', '*'), denied(BUS)),
  probe('opens the bus to anyone', agent('events:PutPermission', '*'), denied(BUS)),
  probe('deletes the bus', agent('events:DeleteEventBus', arn.bus('guardrail')), denied(RULES)),
  probe('deletes the rule forwarding GuardDuty findings', agent('events:DeleteRule', arn.rule('guardrail-findings-to-bus', A.security)), denied(RULES)),
  probe('deletes the findings role\'s policy', agent('iam:DeleteRolePolicy', arn.role(A.security, 'guardrail-findings-to-bus')), denied(EXEMPT)),
  probe('deletes the daily sweep', agent('scheduler:DeleteSchedule', arn.schedule('guardrail-tag-enforcer-sweep')), denied(PLANE)),
  probe('moves the sweep to never', agent('scheduler:UpdateSchedule', arn.schedule('guardrail-account-baseline-sweep')), denied(PLANE)),
  // State.
  probe('deletes a quarantine record', agent('dynamodb:DeleteItem', table), denied(PLANE)),
  probe('plants a replay record so an event is skipped', agent('dynamodb:PutItem', table), denied(PLANE)),
  probe('clears a breaker trip', agent('dynamodb:UpdateItem', table), denied(PLANE)),
  probe("deletes Guardrail's table", agent('dynamodb:DeleteTable', table), denied(PLANE)),
  probe("turns the ledger's deletion protection off", agent('dynamodb:UpdateTable', ledger), denied(PLANE, LEDGER_TABLE)),
  probe('deletes the ledger', agent('dynamodb:DeleteTable', ledger), denied(PLANE, LEDGER_TABLE)),
  probe("replaces the ledger's resource policy", agent('dynamodb:PutResourcePolicy', ledger), denied(PLANE, LEDGER_TABLE)),
  probe("deletes the ledger's resource policy", agent('dynamodb:DeleteResourcePolicy', ledger), denied(PLANE, LEDGER_TABLE)),
  probe('points TTL at another attribute to expire entries', agent('dynamodb:UpdateTimeToLive', ledger), denied(PLANE, LEDGER_TABLE)),
  probe('turns point-in-time recovery off', agent('dynamodb:UpdateContinuousBackups', ledger), denied(PLANE, LEDGER_TABLE)),
  probe('rewrites a ledger entry', agent('dynamodb:UpdateItem', ledger), denied(PLANE, LEDGER_ENTRIES)),
  probe('deletes ledger entries in a batch', agent('dynamodb:BatchWriteItem', ledger), denied(PLANE, LEDGER_ENTRIES)),
  probe('purges a dead-letter queue', agent('sqs:PurgeQueue', dlq), denied(PLANE)),
  probe("has EventBridge dead-letter into Guardrail's queue from a default-bus rule of its own", { as: 'events.amazonaws.com', do: 'sqs:SendMessage', on: dlq, context: { 'aws:SourceArn': arn.rule('guardrail-agent-quarantine-calls', A.security), 'aws:SourceAccount': A.security } },
    denied('implicit:resource')),
  probe('deletes a dead letter', agent('sqs:DeleteMessage', dlq), denied(PLANE)),
  probe('shortens the dead letters\' retention', agent('sqs:SetQueueAttributes', dlq), denied(PLANE)),
  probe('deletes the alert topic', agent('sns:DeleteTopic', topic), denied(PLANE)),
  probe("rewrites the topic's policy", agent('sns:SetTopicAttributes', topic), denied(PLANE)),
  probe('publishes a false alert', agent('sns:Publish', topic), denied(PLANE)),
  probe("schedules the deletion of Guardrail's key (the table becomes unreadable)", agent('kms:ScheduleKeyDeletion', key, aliases), denied(KEY)),
  probe('disables the key', agent('kms:DisableKey', key, aliases), denied(KEY)),
  probe('rewrites the key policy', agent('kms:PutKeyPolicy', key, aliases), denied(KEY)),
  probe('stops rotating the key', agent('kms:DisableKeyRotation', key, aliases), denied(KEY)),
  probe("revokes DynamoDB's grant on the key (the tables become unusable)", agent('kms:RevokeGrant', key, aliases), denied(KEY)),
  // The security account is GuardDuty's delegated administrator.
  probe("archives every finding about it with a suppression rule (suppressed findings never reach EventBridge)",
    agent('guardduty:CreateFilter', `${detector}/filter/quiet`), denied(FINDINGS)),
  probe('lists its own addresses as trusted, so no finding names them', agent('guardduty:CreateIPSet', '*'), denied(FINDINGS)),
  probe('stops GuardDuty from enrolling new accounts', agent('guardduty:UpdateOrganizationConfiguration', '*'), denied(FINDINGS)),
  probe('stops monitoring a member account', agent('guardduty:StopMonitoringMembers', '*'), denied(FINDINGS)),
  probe('runs a StackSet of its own across the organization as the security account (a StackSets delegated administrator)',
    agent('cloudformation:CreateStackSet', '*'), denied(STACKSETS)),
  probe("rewrites Guardrail's member-roles StackSet", agent('cloudformation:UpdateStackSet', '*'), denied(STACKSETS)),
  probe("masks Guardrail's log lines with an account-wide log policy", agent('logs:PutAccountPolicy', '*'), denied(STACKSETS)),
  probe("swaps a function's zip in the artifact bucket before a deploy or its rollback", agent('s3:PutObject', artifact), denied(ARTIFACTS)),
  probe('has the artifact bucket call it on every upload', agent('s3:PutBucketNotification', arn.bucket('guardrail-artifacts-222222222222-us-east-1')), denied(ARTIFACTS)),
  probe("freezes Guardrail's stack with a stack policy", agent('cloudformation:SetStackPolicy', arn.stack('guardrail')), denied('scp:protect-organization#GuardrailStacksStay')),
  probe('deletes the alias that the key is protected by (authorized on the key too)', agent('kms:DeleteAlias', key, aliases), denied(KEY)),
  probe("deletes agent-quarantine's log group", agent('logs:DeleteLogGroup', arn.logGroup('/aws/lambda/guardrail-agent-quarantine')), denied(PLANE)),
  probe('shortens log retention to a day', agent('logs:PutRetentionPolicy', arn.logGroup('/aws/lambda/guardrail-agent-quarantine')), denied(PLANE)),
  probe('writes false log lines', agent('logs:PutLogEvents', logs), denied(PLANE)),
  probe('deletes the dead-letter alarm', agent('cloudwatch:DeleteAlarms', arn.alarm('guardrail-agent-quarantine-dead-letters')), denied(PLANE)),
  probe('silences the errors alarm', agent('cloudwatch:DisableAlarmActions', arn.alarm('guardrail-function-errors')), denied(PLANE)),
  probe('pauses Guardrail', agent('ssm:PutParameter', arn.param('/guardrail/pause')), denied(PAUSE)),
  probe('deletes the kill switch to recreate it', agent('ssm:DeleteParameter', arn.param('/guardrail/pause')), denied(PAUSE)),
  probe('moves an account out of its OU through the delegation', agent('organizations:MoveAccount', arn.account(A.dev)), denied('implicit:resource')),
  probe('approves a plan as a person who is not on call', { as: WHO.analyst, do: 'dynamodb:UpdateItem', on: table, context: { 'dynamodb:LeadingKeys': ['approval#agent-quarantine-0a1b2c3d4e'] } },
    denied(PLANE)),
  residual("invokes a function with input of its own (say, a sweep)", agent('lambda:InvokeFunction', arn.fn('guardrail-account-baseline')),
    allowed('AdministratorAccess#AdministratorAccess'),
    'Scheduler and EventBridge invoke the functions as ordinary principals, so invoking stays open; every input goes through the decoder, the gate (freshness, aws.* sources) and the replay guard, and a sweep only restores the policy\'s baseline, paced per account'),
  // Deploys, people on call and readers.
  nearMiss('the deployer updates the functions\' code', [PLANE], { as: WHO.deployer, do: 'lambda:UpdateFunctionCode', on: fn }, allowed()),
  nearMiss('the deployer passes the execution roles to Lambda', [EXEMPT], { as: WHO.deployer, do: 'iam:PassRole', on: WHO.quarantineLambda, context: { 'iam:PassedToService': 'lambda.amazonaws.com' } }, allowed()),
  nearMiss("the deployer changes the bus's rules", [RULES], { as: WHO.deployer, do: 'events:PutRule', on: busRule('guardrail-tag-enforcer') }, allowed()),
  nearMiss("the deployer changes Guardrail's table", [PLANE], { as: WHO.deployer, do: 'dynamodb:UpdateTable', on: table }, allowed()),
  nearMiss('the deployer updates the key policy', [KEY], { as: WHO.deployer, do: 'kms:PutKeyPolicy', on: key, context: aliases }, allowed()),
  nearMiss("break-glass changes the ledger's resource policy", [LEDGER_TABLE, PLANE], { as: WHO.secBreakGlass, do: 'dynamodb:PutResourcePolicy', on: ledger }, allowed()),
  nearMiss("the deployer changes the ledger's table (CloudFormation sets its TTL and backups)", [LEDGER_TABLE, PLANE], { as: WHO.deployer, do: 'dynamodb:UpdateTimeToLive', on: ledger }, allowed()),
  nearMiss('the deployer uploads the zips', [ARTIFACTS], { as: WHO.deployer, do: 's3:PutObject', on: artifact }, allowed()),
  nearMiss('an analyst writes to a bucket of their own', [ARTIFACTS], { as: WHO.analyst, do: 's3:PutObject', on: arn.bucket('team-reports/2026/12/07.csv') }, allowed()),
  nearMiss('the deployer rolls out the member roles (a StackSets delegated administrator)', [STACKSETS], { as: WHO.deployer, do: 'cloudformation:UpdateStackSet', on: '*' }, allowed()),
  nearMiss('an analyst reads the account\'s log policies', [STACKSETS], { as: WHO.analyst, do: 'logs:DescribeAccountPolicies', on: '*' }, allowed()),
  nearMiss('an analyst archives a triaged finding', [FINDINGS], { as: WHO.analyst, do: 'guardduty:ArchiveFindings', on: '*' }, allowed()),
  nearMiss('the on-call role adds a suppression rule', [FINDINGS], { as: WHO.onCall, do: 'guardduty:CreateFilter', on: `${detector}/filter/known-scanner` }, allowed()),
  nearMiss('the deployer updates Guardrail\'s stack', ['scp:protect-organization#GuardrailStacksStay'], { as: WHO.deployer, do: 'cloudformation:UpdateStack', on: arn.stack('guardrail') }, allowed()),
  nearMiss('the deployer sets the bus policy', [BUS], { as: WHO.deployer, do: 'events:PutPermission', on: '*' }, allowed()),
  nearMiss('the on-call role approves (guardrail approve)', [PLANE], { as: WHO.onCall, do: 'dynamodb:UpdateItem', on: table, context: { 'dynamodb:LeadingKeys': ['approval#agent-quarantine-0a1b2c3d4e'] } }, allowed()),
  nearMiss('the on-call role closes a quarantine record (guardrail release)', [PLANE], { as: WHO.onCall, do: 'dynamodb:PutItem', on: table }, allowed()),
  nearMiss('the on-call role resets a breaker', [PLANE], { as: WHO.onCall, do: 'dynamodb:UpdateItem', on: table, context: { 'dynamodb:LeadingKeys': [`breaker#tags#${A.dev}`] } }, allowed()),
  nearMiss('the on-call role reads and deletes dead letters (guardrail redrive)', [PLANE], { as: WHO.onCall, do: 'sqs:DeleteMessage', on: dlq }, allowed()),
  nearMiss('the on-call role pauses Guardrail', [PAUSE], { as: WHO.onCall, do: 'ssm:PutParameter', on: arn.param('/guardrail/pause') }, allowed()),
  nearMiss('break-glass resumes Guardrail', [PAUSE], { as: WHO.secBreakGlass, do: 'ssm:PutParameter', on: arn.param('/guardrail/pause') }, allowed()),
  nearMiss('anyone reads the kill switch', [PAUSE], { as: WHO.analyst, do: 'ssm:GetParameter', on: arn.param('/guardrail/pause') }, allowed()),
  nearMiss('an analyst reads the ledger (guardrail audit)', [PLANE, LEDGER_ENTRIES, LEDGER_TABLE], { as: WHO.analyst, do: 'dynamodb:Query', on: ledger }, allowed()),
  nearMiss('an analyst lists pending approvals (guardrail approvals)', [PLANE], { as: WHO.analyst, do: 'dynamodb:Query', on: `${table}/index/pending` }, allowed()),
  nearMiss('an analyst decrypts what the key protects', [KEY], { as: WHO.analyst, do: 'kms:Decrypt', on: key, context: aliases }, allowed()),
  nearMiss('an analyst reads the functions\' logs', [PLANE], { as: WHO.analyst, do: 'logs:FilterLogEvents', on: arn.logGroup('/aws/lambda/guardrail-agent-quarantine') }, allowed()),
  nearMiss('an analyst reads the function\'s configuration', [PLANE], { as: WHO.analyst, do: 'lambda:GetFunctionConfiguration', on: fn }, allowed()),
  nearMiss('an analyst subscribes to the alerts', [PLANE], { as: WHO.analyst, do: 'sns:Subscribe', on: topic }, allowed()),
  nearMiss('an analyst reads the alarms', [PLANE], { as: WHO.analyst, do: 'cloudwatch:DescribeAlarms', on: arn.alarm('guardrail-function-errors') }, allowed()),
  nearMiss('an analyst reads a dead-letter queue\'s depth', [PLANE], { as: WHO.analyst, do: 'sqs:GetQueueAttributes', on: dlq }, allowed()),
  nearMiss('an analyst reads the schedules', [PLANE], { as: WHO.analyst, do: 'scheduler:GetSchedule', on: arn.schedule('guardrail-tag-enforcer-sweep') }, allowed()),
  nearMiss('an analyst works on a function of their own', [PLANE], { as: WHO.analyst, do: 'lambda:UpdateFunctionCode', on: arn.fn('team-report') }, allowed()),
  nearMiss('an analyst deletes items of a table of their own', [PLANE], { as: WHO.analyst, do: 'dynamodb:DeleteItem', on: arn.table('team-state') }, allowed()),
  nearMiss('an analyst schedules deletion of a key of their own', [KEY], { as: WHO.analyst, do: 'kms:ScheduleKeyDeletion', on: TEAM_KEY, context: { 'kms:ResourceAliases': ['alias/team'] } }, allowed())
]
