// The schema builder: what it emits for the CRD, the types it infers, the definitions it
// refuses, and the defaulting it does the way the API server does.
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  applyDefaults,
  array,
  atLeast,
  between,
  boolean,
  integer,
  object,
  oneOf,
  quantity,
  SchemaDefinitionError,
  string,
  stringMap,
  toOpenApi,
  wholeBytes,
  type Infer,
} from './schema.ts';

const limits = object({
  count: integer().default(2).validate(between(1, 9)),
  name: string().required().with({ maxLength: 8 }),
  size: quantity().default('1Gi').validate(wholeBytes('1', '1Ti')),
  mode: oneOf(['A', 'B']).default('A').optionalInType(),
  note: string(),
}).default({});

const root = object({
  spec: object({ limits, items: array(object({ key: string().required(), weight: integer().default(1) })) }).required(),
});

describe('toOpenApi', () => {
  it('lists required properties, writes keywords in a fixed order and names the field in rule messages', () => {
    const limitsSchema = (toOpenApi(root) as { properties: { spec: { properties: { limits: Record<string, unknown> } } } }).properties.spec
      .properties.limits;
    expect(limitsSchema).toEqual({
      type: 'object',
      default: {},
      properties: {
        count: {
          type: 'integer',
          format: 'int32',
          default: 2,
          'x-kubernetes-validations': [{ rule: 'self >= 1 && self <= 9', message: 'limits.count must be between 1 and 9' }],
        },
        name: { type: 'string', maxLength: 8 },
        size: {
          'x-kubernetes-int-or-string': true,
          anyOf: [{ type: 'integer' }, { type: 'string' }],
          default: '1Gi',
          pattern: expect.stringMatching(/^\^/) as unknown,
          'x-kubernetes-validations': [
            {
              rule:
                'isQuantity(string(self)) && quantity(string(self)).isInteger() && ' +
                "quantity(string(self)).compareTo(quantity('1')) >= 0 && quantity(string(self)).compareTo(quantity('1Ti')) <= 0",
              message: 'limits.size must be a whole number of bytes from 1 to 1Ti',
            },
          ],
        },
        mode: { type: 'string', enum: ['A', 'B'], default: 'A' },
        note: { type: 'string' },
      },
      required: ['name'],
    });
    expect(Object.keys(limitsSchema.properties as Record<string, Record<string, unknown>>).length).toBe(5);
    const count = (limitsSchema.properties as Record<string, Record<string, unknown>>).count!;
    expect(Object.keys(count)).toEqual(['type', 'format', 'default', 'x-kubernetes-validations']);
  });

  it('writes booleans and string maps', () => {
    const schema = object({ on: boolean().default(false), labels: stringMap().with({ maxProperties: 4 }) });
    expect(toOpenApi(schema)).toEqual({
      type: 'object',
      properties: {
        on: { type: 'boolean', default: false },
        labels: { type: 'object', maxProperties: 4, additionalProperties: { type: 'string' } },
      },
    });
    expectTypeOf<Infer<typeof schema>>().toEqualTypeOf<{ on: boolean; labels?: Record<string, string> }>();
  });

  it.each([
    [0, 'f must be 0 or more'],
    [1, 'f must be at least 1'],
  ])('words atLeast(%i) as "%s"', (min, message) => {
    expect(toOpenApi(object({ s: object({ f: integer().validate(atLeast(min)) }) }))).toMatchObject({
      properties: { s: { properties: { f: { 'x-kubernetes-validations': [{ rule: `self >= ${min}`, message }] } } } },
    });
  });

  it.each([
    ['a default outside the enum', object({ m: oneOf(['A', 'B']).default('C' as 'A') })],
    ['a default of the wrong type', object({ n: integer().default('3' as unknown as number) })],
    ['a fractional integer default', object({ n: integer().default(1.5) })],
    ['a boolean default that is a string', object({ b: boolean().default('true' as unknown as boolean) })],
    ['an object default naming an unknown property', object({ o: object({ a: integer() }).default({ b: 1 } as unknown as { a: number }) })],
    [
      'a map list whose key its items do not require',
      object({ l: array(object({ k: string() })).with({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['k'] }) }),
    ],
  ])('refuses %s', (_case, schema) => {
    expect(() => toOpenApi(schema)).toThrow(SchemaDefinitionError);
  });
});

describe('applyDefaults', () => {
  it('fills absent fields, goes on inside a defaulted {} and inside list items, and keeps what is set', () => {
    const input = { spec: { limits: { name: 'x', count: 5 }, items: [{ key: 'a' }, { key: 'b', weight: 3 }] } };
    expect(applyDefaults(root, input)).toEqual({
      spec: {
        limits: { name: 'x', count: 5, size: '1Gi', mode: 'A' },
        items: [
          { key: 'a', weight: 1 },
          { key: 'b', weight: 3 },
        ],
      },
    });
    expect(applyDefaults(root, { spec: {} })).toEqual({ spec: { limits: { count: 2, size: '1Gi', mode: 'A' } } });
  });

  it("leaves its argument and the schema's default values untouched", () => {
    const input = { spec: { items: [{ key: 'a' }] } };
    const out = applyDefaults(root, input) as { spec: { limits: Record<string, unknown> } };
    out.spec.limits.count = 7;
    expect(input).toEqual({ spec: { items: [{ key: 'a' }] } });
    expect(applyDefaults(root, { spec: {} })).toMatchObject({ spec: { limits: { count: 2 } } });
  });
});

describe('the inferred types', () => {
  it('make required and defaulted fields present and the others optional', () => {
    type Limits = Infer<typeof limits>;
    expectTypeOf<Limits>().toEqualTypeOf<{ count: number; name: string; size: string | number; mode?: 'A' | 'B'; note?: string }>();
    expectTypeOf<Infer<typeof root>['spec']['items']>().toEqualTypeOf<{ key: string; weight: number }[] | undefined>();
  });
});
