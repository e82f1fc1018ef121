// A small builder for Kubernetes structural schemas that also yields TypeScript types, so a
// custom resource is defined once (ADR 23): the same definition emits the CRD's
// openAPIV3Schema (CEL rules, int-or-string, defaults, list types) and, by type inference,
// the types the operator reads objects with. zod could give the types but not the
// Kubernetes extensions; see the ADR for the choice.
import { MeshworkError } from '@meshwork/contract';

/** A CEL rule (`x-kubernetes-validations`); `message` may be built from the field's path below spec or status. */
export interface ValidationRule {
  rule: string;
  message: string | ((field: string) => string);
  fieldPath?: string;
}

/** The keywords of a node itself, as they appear in the CRD (children are kept apart). */
interface Keywords {
  type?: 'string' | 'integer' | 'boolean' | 'object' | 'array';
  format?: string;
  description?: string;
  pattern?: string;
  enum?: readonly string[];
  default?: unknown;
  minimum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  'x-kubernetes-int-or-string'?: true;
  anyOf?: readonly { type: string }[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: readonly string[];
  additionalProperties?: { type: 'string' };
  maxProperties?: number;
}

/** The keywords a caller may add with `with()`: constraints and list semantics, not the type. */
export type Constraints = Pick<
  Keywords,
  | 'format'
  | 'pattern'
  | 'minimum'
  | 'minLength'
  | 'maxLength'
  | 'minItems'
  | 'maxItems'
  | 'maxProperties'
  | 'x-kubernetes-list-type'
  | 'x-kubernetes-list-map-keys'
>;

/** A JSON Schema object as the CRD carries it. */
export type JsonSchemaProps = { [keyword: string]: unknown };

/** A default may leave out fields of an object that its properties' own defaults fill. */
export type DefaultValue<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DefaultValue<T[K]> } : T;

/** Raised when a definition cannot be a structural schema (a bug in the definition, found when it is built). */
export class SchemaDefinitionError extends MeshworkError {
  constructor(message: string) {
    super('schema_definition_invalid', message);
  }
}

interface NodeState {
  keywords: Keywords;
  validations: readonly ValidationRule[];
  properties?: Readonly<Record<string, SchemaNode<unknown, boolean>>>;
  items?: SchemaNode<unknown, boolean>;
  required: boolean;
  present: boolean;
}

/**
 * One node of a schema. `T` is the TypeScript type of its value; `Present` says whether the
 * field is always there in an object read back from the API server (required, or defaulted).
 */
export class SchemaNode<T, Present extends boolean = false> {
  /** Type-level only: the value's TypeScript type, for `Infer`. */
  declare readonly infer: T;
  /** Type-level only: whether the field is always there once the API server has defaulted it. */
  declare readonly presence: Present;
  /** What `toOpenApi` and `applyDefaults` read: the node's keywords, rules and children. */
  readonly state: NodeState;

  constructor(state: NodeState) {
    this.state = state;
  }

  /** The field is listed in its object's `required`. */
  required(): SchemaNode<T, true> {
    return new SchemaNode({ ...this.state, required: true, present: true });
  }

  /** The API server fills the field with `value` when it is absent. */
  default(value: DefaultValue<T>): SchemaNode<T, true> {
    return new SchemaNode({ ...this.state, keywords: { ...this.state.keywords, default: value }, present: true });
  }

  /**
   * Keeps the field optional in the TypeScript type although the schema defaults it, for code
   * that builds partial values of it and fills the gaps itself.
   */
  optionalInType(): SchemaNode<T, false> {
    return new SchemaNode({ ...this.state, present: false });
  }

  /** The description `kubectl explain` shows. */
  describe(description: string): SchemaNode<T, Present> {
    return new SchemaNode({ ...this.state, keywords: { ...this.state.keywords, description } });
  }

  /** Adds constraints (lengths, counts, pattern, format, list semantics). */
  with(constraints: Constraints): SchemaNode<T, Present> {
    return new SchemaNode({ ...this.state, keywords: { ...this.state.keywords, ...constraints } });
  }

  /** Adds CEL rules, checked by the API server on every write. */
  validate(...rules: ValidationRule[]): SchemaNode<T, Present> {
    return new SchemaNode({ ...this.state, validations: [...this.state.validations, ...rules] });
  }
}

type AnyNode = SchemaNode<unknown, boolean>;

/** The TypeScript type of a node's value. */
export type Infer<N> = N extends { readonly infer: infer T } ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The type of an object node: present fields required, the others optional. */
export type InferObject<P extends Record<string, AnyNode>> = Simplify<
  { [K in keyof P as P[K] extends { readonly presence: true } ? K : never]: Infer<P[K]> } & {
    [K in keyof P as P[K] extends { readonly presence: true } ? never : K]?: Infer<P[K]>;
  }
>;

function node<T>(keywords: Keywords, children: Pick<NodeState, 'properties' | 'items'> = {}): SchemaNode<T> {
  return new SchemaNode<T>({ keywords, validations: [], required: false, present: false, ...children });
}

/** A string. */
export function string(): SchemaNode<string> {
  return node({ type: 'string' });
}

/** A string that must be one of `values`. */
export function oneOf<const V extends readonly string[]>(values: V): SchemaNode<V[number]> {
  return node({ type: 'string', enum: values });
}

/** An integer (int32 unless said otherwise). */
export function integer(format: 'int32' | 'int64' = 'int32'): SchemaNode<number> {
  return node({ type: 'integer', format });
}

/** A resource.Quantity (`2`, `500m`, `64Mi`): an integer or a string in Kubernetes' quantity syntax. */
export function quantity(): SchemaNode<string | number> {
  return node({
    'x-kubernetes-int-or-string': true,
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern: '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$',
  });
}

/** A boolean. */
export function boolean(): SchemaNode<boolean> {
  return node({ type: 'boolean' });
}

/** A map of strings to strings (annotations, for example). */
export function stringMap(): SchemaNode<Record<string, string>> {
  return node({ type: 'object', additionalProperties: { type: 'string' } });
}

/** A list of `items`. */
export function array<I extends AnyNode>(items: I): SchemaNode<Infer<I>[]> {
  return node({ type: 'array' }, { items });
}

/** An object with exactly these properties. */
export function object<P extends Record<string, AnyNode>>(properties: P): SchemaNode<InferObject<P>> {
  return node({ type: 'object' }, { properties });
}

/** An object whose content the schema leaves to the API server (metadata). */
export function opaqueObject(): SchemaNode<Record<string, unknown>> {
  return node({ type: 'object' });
}

// The order keywords are written in, so that the generated file reads top-down: what the field
// is, what it defaults to, what bounds it, then what it contains.
const keywordOrder = [
  'x-kubernetes-int-or-string',
  'anyOf',
  'type',
  'format',
  'description',
  'enum',
  'default',
  'pattern',
  'minimum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'maxProperties',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'required',
  'x-kubernetes-validations',
  'properties',
  'additionalProperties',
  'items',
] as const;

/**
 * The openAPIV3Schema of a node. `path` names the node from the resource's root (`spec`,
 * `throttling`, ...); a rule's message built from a function gets the path below spec or status.
 */
export function toOpenApi(root: AnyNode, path: readonly string[] = []): JsonSchemaProps {
  const { keywords, validations, properties, items } = root.state;
  const out: JsonSchemaProps = { ...keywords };
  const where = path.join('.') || 'the root';
  if (keywords.default !== undefined) checkDefault(root, keywords.default, where);
  if (keywords['x-kubernetes-list-type'] === 'map') {
    const keys = keywords['x-kubernetes-list-map-keys'] ?? [];
    const itemRequired = Object.entries(items?.state.properties ?? {})
      .filter(([, p]) => p.state.required)
      .map(([k]) => k);
    if (keys.length === 0 || keys.some((k) => !itemRequired.includes(k))) {
      throw new SchemaDefinitionError(`${where}: a map list needs map keys that its items require`);
    }
  }
  if (properties !== undefined) {
    out.properties = Object.fromEntries(Object.entries(properties).map(([name, child]) => [name, toOpenApi(child, [...path, name])]));
    const required = Object.entries(properties)
      .filter(([, child]) => child.state.required)
      .map(([name]) => name);
    if (required.length > 0) out.required = required;
  }
  if (items !== undefined) out.items = toOpenApi(items, path);
  if (validations.length > 0) {
    const field = path.slice(1).join('.');
    out['x-kubernetes-validations'] = validations.map((v) => ({
      rule: v.rule,
      message: typeof v.message === 'string' ? v.message : v.message(field),
      ...(v.fieldPath === undefined ? {} : { fieldPath: v.fieldPath }),
    }));
  }
  const ordered: JsonSchemaProps = {};
  for (const key of keywordOrder) if (out[key] !== undefined) ordered[key] = out[key];
  return ordered;
}

// A default the API server would reject (or silently prune) is a bug of the definition: find
// it here rather than at `kubectl apply` of the CRD.
function checkDefault(n: AnyNode, value: unknown, where: string): void {
  const { keywords, properties } = n.state;
  const fail = (why: string): never => {
    throw new SchemaDefinitionError(`${where}: default ${JSON.stringify(value)} ${why}`);
  };
  if (keywords['x-kubernetes-int-or-string']) {
    if (typeof value !== 'string' && !Number.isInteger(value)) fail('is neither an integer nor a string');
  } else if (keywords.type === 'string') {
    if (typeof value !== 'string') fail('is not a string');
    if (keywords.enum && !keywords.enum.includes(value as string)) fail(`is not one of ${keywords.enum.join(', ')}`);
  } else if (keywords.type === 'integer') {
    if (!Number.isInteger(value)) fail('is not an integer');
  } else if (keywords.type === 'boolean') {
    if (typeof value !== 'boolean') fail('is not a boolean');
  } else if (keywords.type === 'object' && properties !== undefined) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('is not an object');
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
      const child = properties[key];
      if (child === undefined) fail(`names ${key}, which is not a property`);
      else checkDefault(child, inner, `${where}.${key}`);
    }
  }
}

/**
 * Applies the schema's defaults to a value as the API server does: an absent field with a
 * default gets it, then defaulting goes on inside it (so `default: {}` fills from the
 * properties' own defaults). Returns a new value; the argument is left as it was.
 */
export function applyDefaults<N extends AnyNode>(root: N, value: unknown): unknown {
  const { properties, items } = root.state;
  if (properties !== undefined && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const [name, child] of Object.entries(properties)) {
      const fallback = child.state.keywords.default;
      if (out[name] === undefined && fallback !== undefined) out[name] = structuredClone(fallback);
      if (out[name] !== undefined) out[name] = applyDefaults(child, out[name]);
    }
    return out;
  }
  if (items !== undefined && Array.isArray(value)) return value.map((item) => applyDefaults(items, item));
  return value;
}

/** A rule that an integer lies in `[min, max]`, its message naming the field. */
export function between(min: number, max: number): ValidationRule {
  return { rule: `self >= ${min} && self <= ${max}`, message: (field) => `${field} must be between ${min} and ${max}` };
}

/** A rule that an integer is at least `min` (`0 or more` for 0), its message naming the field. */
export function atLeast(min: number): ValidationRule {
  return { rule: `self >= ${min}`, message: (field) => (min === 0 ? `${field} must be 0 or more` : `${field} must be at least ${min}`) };
}

/** A rule that a quantity is a whole number of bytes from `min` to `max` (quantities, `1Pi`). */
export function wholeBytes(min: string, max: string): ValidationRule {
  const q = 'quantity(string(self))';
  return {
    rule: `isQuantity(string(self)) && ${q}.isInteger() && ${q}.compareTo(quantity('${min}')) >= 0 && ${q}.compareTo(quantity('${max}')) <= 0`,
    message: (field) => `${field} must be a whole number of bytes from ${min} to ${max}`,
  };
}
