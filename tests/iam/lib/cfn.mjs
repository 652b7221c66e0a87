// CloudFormation templates of infra/, read as CloudFormation does and deployed on paper: short-form
// intrinsics parsed, conditions decided and every Ref, Sub, GetAtt, If, Join and Split resolved
// with concrete parameters, so that the policies the judge evaluates are the ones AWS would hold.

import { readFileSync } from 'node:fs'
import { parse } from 'yaml'

/** The short-form tags CloudFormation accepts, each in its scalar, sequence and mapping form. */
const INTRINSICS = ['Ref', 'Condition', 'Sub', 'GetAtt', 'If', 'Equals', 'Not', 'And', 'Or', 'Join',
  'Split', 'Select', 'FindInMap', 'Base64', 'Cidr', 'ImportValue', 'GetAZs']

const customTags = INTRINSICS.flatMap((name) => {
  const key = name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`
  const wrap = (value) => ({ [key]: name === 'GetAtt' && typeof value === 'string' ? value.split('.') : value })
  return [
    { tag: `!${name}`, resolve: (value) => wrap(value) },
    { tag: `!${name}`, collection: 'seq', resolve: (seq) => wrap(seq.toJSON()) },
    { tag: `!${name}`, collection: 'map', resolve: (map) => wrap(map.toJSON()) }
  ]
})

/** A template file as plain data, short-form intrinsics in their long form. */
export function readTemplate(path) {
  return parse(readFileSync(path, 'utf8'), { customTags, uniqueKeys: true })
}

const NO_VALUE = Symbol('AWS::NoValue')

/**
 * A template deployed into one account and region with the given parameters: its resources with
 * every property resolved, and the physical names and ARNs CloudFormation would give them.
 */
export class Stack {
  constructor({ path, stackName, account, region, partition = 'aws', parameters = {} }) {
    this.path = path
    this.stackName = stackName
    this.account = account
    this.region = region
    this.partition = partition
    this.template = readTemplate(path)
    this.parameters = {}
    for (const [name, spec] of Object.entries(this.template.Parameters ?? {})) {
      const value = parameters[name] ?? spec.Default
      if (value === undefined) throw new Error(`${path}: parameter ${name} has no value and no default`)
      if (spec.AllowedPattern && typeof value === 'string' && !new RegExp(spec.AllowedPattern).test(value)) {
        throw new Error(`${path}: parameter ${name}=${value} does not match ${spec.AllowedPattern}`)
      }
      this.parameters[name] = spec.Type === 'CommaDelimitedList' && typeof value === 'string'
        ? (value === '' ? [''] : value.split(','))
        : value
    }
    for (const name of Object.keys(parameters)) {
      if (!(name in this.parameters)) throw new Error(`${path}: no parameter ${name}`)
    }
    this.conditions = {}
    for (const name of Object.keys(this.template.Conditions ?? {})) this.condition(name)
    this.resources = {}
    for (const [id, resource] of Object.entries(this.template.Resources ?? {})) {
      if (resource.Condition && !this.condition(resource.Condition)) continue
      this.resources[id] = { type: resource.Type, raw: resource }
    }
    for (const [id, r] of Object.entries(this.resources)) {
      r.properties = this.resolve(r.raw.Properties ?? {}, `${id}.Properties`)
    }
  }

  condition(name) {
    if (!(name in this.conditions)) {
      const spec = this.template.Conditions?.[name]
      if (spec === undefined) throw new Error(`${this.path}: no condition ${name}`)
      this.conditions[name] = this.resolve(spec, `Conditions.${name}`)
    }
    return this.conditions[name]
  }

  /** The value of `Ref` on a parameter, pseudo parameter or resource. */
  ref(name, where) {
    const pseudo = {
      'AWS::AccountId': this.account,
      'AWS::Region': this.region,
      'AWS::Partition': this.partition,
      'AWS::StackName': this.stackName,
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::NoValue': NO_VALUE
    }
    if (name in pseudo) return pseudo[name]
    if (name in this.parameters) return this.parameters[name]
    if (name in this.resources) return this.physical(name).ref
    throw new Error(`${this.path}: ${where}: Ref to unknown ${name}`)
  }

  getAtt(id, attribute, where) {
    if (!(id in this.resources)) throw new Error(`${this.path}: ${where}: GetAtt on unknown ${id}`)
    const value = this.physical(id)[attribute]
    if (value === undefined) throw new Error(`${this.path}: ${where}: ${id} has no attribute ${attribute} here`)
    return value
  }

  /** Physical name, Ref value and attributes of a resource, as CloudFormation assigns them. */
  physical(id) {
    const r = this.resources[id]
    if (r.physicalCache) return r.physicalCache
    const raw = r.raw.Properties ?? {}
    const named = (key, fallback) => {
      const value = raw[key] === undefined ? undefined : this.resolve(raw[key], `${id}.${key}`)
      return value ?? fallback
    }
    const generated = `${this.stackName}-${id}-GENERATED`.slice(0, 64)
    const { partition: p, region, account } = this
    let out
    switch (r.type) {
      case 'AWS::IAM::Role': {
        const name = named('RoleName', generated)
        const path = named('Path', '/')
        out = { ref: name, name, path, Arn: `arn:${p}:iam::${account}:role${path}${name}` }
        break
      }
      case 'AWS::IAM::ManagedPolicy': {
        // Ref of a managed policy is its ARN (AWS::IAM::ManagedPolicy return values).
        const name = named('ManagedPolicyName', generated)
        const path = named('Path', '/')
        const arn = `arn:${p}:iam::${account}:policy${path}${name}`
        out = { ref: arn, name, path, PolicyArn: arn }
        break
      }
      case 'AWS::DynamoDB::Table': {
        const name = named('TableName', generated)
        out = { ref: name, name, Arn: `arn:${p}:dynamodb:${region}:${account}:table/${name}` }
        break
      }
      case 'AWS::SNS::Topic': {
        const name = named('TopicName', generated)
        const arn = `arn:${p}:sns:${region}:${account}:${name}`
        out = { ref: arn, name, TopicArn: arn, TopicName: name }
        break
      }
      case 'AWS::SQS::Queue': {
        const name = named('QueueName', generated)
        out = { ref: `https://sqs.${region}.amazonaws.com/${account}/${name}`, name, QueueName: name,
          Arn: `arn:${p}:sqs:${region}:${account}:${name}` }
        break
      }
      case 'AWS::KMS::Key': {
        const id = `${account.slice(0, 8)}-0000-4000-8000-${account}`
        out = { ref: id, name: id, KeyId: id, Arn: `arn:${p}:kms:${region}:${account}:key/${id}` }
        break
      }
      case 'AWS::Events::EventBus': {
        const name = named('Name', generated)
        out = { ref: name, name, Name: name, Arn: `arn:${p}:events:${region}:${account}:event-bus/${name}` }
        break
      }
      case 'AWS::Events::Rule': {
        const name = named('Name', generated)
        out = { ref: name, name, Arn: `arn:${p}:events:${region}:${account}:rule/${name}` }
        break
      }
      case 'AWS::Logs::LogGroup': {
        const name = named('LogGroupName', generated)
        // GetAtt Arn of a log group ends in ":*" (AWS::Logs::LogGroup return values).
        out = { ref: name, name, Arn: `arn:${p}:logs:${region}:${account}:log-group:${name}:*` }
        break
      }
      case 'AWS::Serverless::Function':
      case 'AWS::Lambda::Function': {
        const name = named('FunctionName', generated)
        out = { ref: name, name, Arn: `arn:${p}:lambda:${region}:${account}:function:${name}` }
        break
      }
      case 'AWS::CloudWatch::Alarm': {
        const name = named('AlarmName', generated)
        out = { ref: name, name, Arn: `arn:${p}:cloudwatch:${region}:${account}:alarm:${name}` }
        break
      }
      default:
        out = { ref: generated, name: generated }
    }
    r.physicalCache = out
    return out
  }

  /** Resolves every intrinsic function in `value`; `where` names it in errors. */
  resolve(value, where) {
    const out = this.#resolve(value, where)
    return out === NO_VALUE ? undefined : out
  }

  #resolve(value, where) {
    if (Array.isArray(value)) {
      return value.map((v, i) => this.#resolve(v, `${where}[${i}]`)).filter((v) => v !== NO_VALUE)
    }
    if (value === null || typeof value !== 'object') return value
    const keys = Object.keys(value)
    if (keys.length === 1 && (keys[0] === 'Ref' || keys[0] === 'Condition' || keys[0].startsWith('Fn::'))) {
      return this.#intrinsic(keys[0], value[keys[0]], where)
    }
    const out = {}
    for (const [k, v] of Object.entries(value)) {
      const resolved = this.#resolve(v, `${where}.${k}`)
      if (resolved !== NO_VALUE) out[k] = resolved
    }
    return out
  }

  #intrinsic(fn, arg, where) {
    const r = (v) => this.#resolve(v, `${where}.${fn}`)
    switch (fn) {
      case 'Ref':
        return this.ref(arg, where)
      case 'Condition':
        return this.condition(arg)
      case 'Fn::If': {
        const [name, whenTrue, whenFalse] = arg
        return this.condition(name) ? r(whenTrue) : r(whenFalse)
      }
      case 'Fn::Equals': {
        const [a, b] = arg.map(r)
        return JSON.stringify(a) === JSON.stringify(b)
      }
      case 'Fn::Not':
        return !r(arg[0])
      case 'Fn::And':
        return arg.map(r).every(Boolean)
      case 'Fn::Or':
        return arg.map(r).some(Boolean)
      case 'Fn::Join': {
        const [sep, items] = arg
        return r(items).join(sep)
      }
      case 'Fn::Split': {
        const [sep, text] = arg
        return r(text).split(sep)
      }
      case 'Fn::Select': {
        const [index, items] = arg
        return r(items)[Number(r(index))]
      }
      case 'Fn::GetAtt': {
        const [id, attribute] = Array.isArray(arg) ? arg : String(arg).split('.')
        return this.getAtt(id, attribute, where)
      }
      case 'Fn::Sub': {
        const [text, vars] = Array.isArray(arg) ? [arg[0], r(arg[1])] : [arg, {}]
        return text.replace(/\$\{([^}]+)\}/g, (whole, name) => {
          if (name.startsWith('!')) return `\${${name.slice(1)}}`
          if (name in vars) return vars[name]
          if (name.includes('.') && !name.startsWith('AWS::')) {
            const [id, attribute] = name.split('.')
            return this.getAtt(id, attribute, where)
          }
          const value = this.ref(name, where)
          if (Array.isArray(value)) throw new Error(`${this.path}: ${where}: \${${name}} is a list inside Fn::Sub`)
          return value
        })
      }
      default:
        throw new Error(`${this.path}: ${where}: ${fn} is not resolved by the judge`)
    }
  }

  /** Resources of one type, by logical id. */
  ofType(type) {
    return Object.entries(this.resources).filter(([, r]) => r.type === type)
  }
}
